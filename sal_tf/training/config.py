"""Training configuration dataclasses (TF-Model-Garden style) and their defaults.

`TrainConfig` holds everything a run needs; the absl entry points in
`trainers/` fill it from flags. `stage_losses` maps a Table 1 `loss` setting
to what each training stage optimises:

* stage 1: softmax (+ SAC when `sac`) — only if the loss has a softmax term;
* stage 2: the full `loss` (+ SAC) from the stage-1 weights — only if the loss
  has a metric term (quadruplet / triplet).
"""

import dataclasses
import json

LOSSES = ("softmax", "quadruplet", "triplet", "softmax+quadruplet", "softmax+triplet")
STRATEGIES = ("default", "mirrored", "multi_worker")

# Fields that may change between the runs that share a --model_dir (runtime knobs);
# every other field must match the stored config.json, or the run is refused.
RUNTIME_FIELDS = (
    "strategy",
    "eval_every",
    "checkpoint_every_steps",
    "log_every_steps",
    "rerank",
    "verbose",
    "eval_untrained",
    "flip_eval",
    "eval_batch_size",
    "stage",
    "max_steps_per_epoch",
    "num_workers_hint",
)


@dataclasses.dataclass
class StageConfig:
    """Optimisation of one training stage (paper §4.1)."""

    epochs: int
    learning_rate: float
    decay_every_epochs: int = 50  # lr ×0.1 every N epochs (paper)
    decay_rate: float = 0.1
    warmup_epochs: int = 0  # linear lr warm-up (not in the paper; the demo uses it)
    momentum: float = 0.9
    weight_decay: float = 5e-4
    batch_size: int = 128  # stage 1: random batches
    num_ids: int = 18  # stage 2: P identities per batch
    num_instances: int = 4  # stage 2: K images per identity


@dataclasses.dataclass
class TrainConfig:
    """One training run (both stages). Defaults are the paper's values."""

    model_dir: str = "runs/market"
    dataset: str = "market1501"  # market1501 | dukemtmc | custom | demo
    data_dir: str = ""
    preset: str = "paper"
    dilation: bool = True
    multi_level: bool = True
    sac: bool = True
    loss: str = "softmax+quadruplet"
    backbone_weights: str = "imagenet"
    stage: str = "all"  # 1 | 2 | all
    stage1: StageConfig = dataclasses.field(
        default_factory=lambda: StageConfig(epochs=120, learning_rate=0.1, batch_size=128)
    )
    stage2: StageConfig = dataclasses.field(
        default_factory=lambda: StageConfig(epochs=60, learning_rate=1e-4, num_ids=18, num_instances=4)
    )
    margin1: float = 0.5
    margin2: float = 0.2
    triplet_margin: float = 0.5
    softmax_weight: float = 1.0
    metric_weight: float = 1.0
    sac_weight: float = 1.0
    pad_crop: bool = True
    random_erasing: bool = False
    strategy: str = "default"
    mixed_precision: bool = False
    jit_compile: bool = False
    seed: int = 0
    deterministic: bool = False
    eval_every: int = 0  # epochs; 0 = only at the end of each stage
    eval_untrained: bool = False  # evaluate the initial model before the first stage
    eval_batch_size: int = 128
    rerank: bool = True
    flip_eval: bool = False
    checkpoint_every_steps: int = 200
    log_every_steps: int = 10
    max_steps_per_epoch: int = 0  # 0 = a full epoch (tests / smoke runs set it)
    verbose: int = 1
    num_workers_hint: int = 0

    def __post_init__(self):
        if isinstance(self.stage1, dict):
            self.stage1 = StageConfig(**self.stage1)
        if isinstance(self.stage2, dict):
            self.stage2 = StageConfig(**self.stage2)
        self.validate()

    def validate(self):
        if self.loss not in LOSSES:
            raise ValueError(f"--loss must be one of {'|'.join(LOSSES)}. Received: --loss={self.loss!r}")
        if self.strategy not in STRATEGIES:
            raise ValueError(
                f"--strategy must be one of {'|'.join(STRATEGIES)}. Received: --strategy={self.strategy!r}"
            )
        if str(self.stage) not in ("1", "2", "all"):
            raise ValueError(f"--stage must be 1, 2 or all. Received: --stage={self.stage!r}")
        for name in ("stage1", "stage2"):
            s = getattr(self, name)
            if s.epochs < 0 or s.learning_rate <= 0 or s.batch_size < 1 or s.num_ids < 1 or s.num_instances < 1:
                raise ValueError(f"Invalid {name} settings: {s}")

    @property
    def has_softmax(self):
        return self.loss.startswith("softmax")

    @property
    def metric(self):
        """'quadruplet', 'triplet' or None."""
        for m in ("quadruplet", "triplet"):
            if m in self.loss:
                return m
        return None

    def stages_to_run(self):
        """The stages `--stage` asks for that this loss setting has."""
        available = []
        if self.has_softmax:
            available.append(1)
        if self.metric:
            available.append(2)
        if str(self.stage) == "all":
            return available
        stage = int(self.stage)
        if stage not in available:
            raise ValueError(
                f"--stage={stage} has nothing to train with --loss={self.loss}: stage 1 trains the softmax "
                "term, stage 2 the metric term (quadruplet/triplet)."
            )
        return [stage]

    def stage_loss(self, stage):
        """kwargs of `SALObjective` for a stage."""
        common = dict(
            sac=self.sac,
            softmax_weight=self.softmax_weight,
            metric_weight=self.metric_weight,
            sac_weight=self.sac_weight,
            margin1=self.margin1,
            margin2=self.margin2,
            triplet_margin=self.triplet_margin,
        )
        if stage == 1:
            return dict(softmax=True, metric=None, **common)
        return dict(softmax=self.has_softmax, metric=self.metric, **common)

    def to_dict(self):
        return dataclasses.asdict(self)

    def to_json(self):
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, d):
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})

    def differences(self, other):
        """Non-runtime fields whose values differ from `other` (a dict)."""
        mine = self.to_dict()
        diffs = {}
        for key in sorted(set(mine) | set(other)):
            if key in RUNTIME_FIELDS:
                continue
            if mine.get(key) != other.get(key):
                diffs[key] = (other.get(key), mine.get(key))
        return diffs
