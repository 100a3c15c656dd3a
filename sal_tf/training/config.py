"""Training configuration (TF-Model-Garden style dataclasses) and the one home of every default.

* `StageConfig`: how one stage is optimised and batched (its own global batch).
* `Stage`: a resolved stage of a run — its number, `StageConfig`, the loss terms it optimises
  (`SALObjective` arguments) and the stage whose model it starts from.
* `TrainConfig`: a re-ID run. Field defaults are the paper's values (§4.1); `TrainConfig.demo()`
  gives the synthetic-demo values; `TrainConfig.stages()` turns the Table 1 `loss` setting into
  stages:

  - stage 1: softmax (+ SAC when `sac`), random batches — only if the loss has a softmax term;
  - stage 2: the full `loss` (+ SAC), P×K batches, from the stage-1 model — only if the loss has a
    metric term (quadruplet / triplet); without softmax it starts from the backbone weights;
  - with `single_stage` (BoT's training, `sal_tf/training/recipes.py`): one stage with every term,
    numbered 1, on stage 1's schedule and sampling.

* `CifarTrainConfig`: the CIFAR-100 run of Table 4 (stage 1, softmax, `cifar` preset).
"""

import dataclasses
import json
import os

from sal_tf.data.samplers import SAMPLINGS
from sal_tf.models.architecture import DEPTHS, IMAGENET_DEPTHS, check_width_divisor
from sal_tf.models.presets import PRESETS
from sal_tf.training.recipes import RECIPE_NAMES

LOSSES = ("softmax", "quadruplet", "triplet", "softmax+quadruplet", "softmax+triplet")
STRATEGIES = ("default", "mirrored", "multi_worker")
STAGES = ("1", "2", "all")
WEIGHT_DECAY_MODES = ("coupled", "decoupled")
OPTIMIZERS = ("sgd", "adam")
# Fields with a fixed set of values → that set (`validate` checks them, the flags offer them).
CHOICES = dict(
    loss=LOSSES,
    strategy=STRATEGIES,
    stage=STAGES,
    depth=DEPTHS,
    preset=tuple(PRESETS),
    sampling=SAMPLINGS,
    weight_decay_mode=WEIGHT_DECAY_MODES,
    optimizer=OPTIMIZERS,
    recipe=RECIPE_NAMES,
    last_stride=(1, 2),
)

RUNS_DIR = "runs"  # where a run's --model_dir goes by default: runs/<dataset>


def run_folder(name):
    """The default --model_dir of a run called `name` (a dataset, "demo", "ablation_<dataset>")."""
    return os.path.join(RUNS_DIR, name)


# Fields that may change between the runs that share a --model_dir (how the run executes or is
# evaluated); every other field must match the stored config.json, or the run is refused.
RUNTIME_FIELDS = (
    "model_dir",  # where the folder is now: a moved or copied run resumes
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
    "drop_bad_eval_images",
    "max_eval_images",
)


class ConfigMismatch(ValueError):
    """A folder holds a run (or a result) made with another configuration."""


@dataclasses.dataclass
class StageConfig:
    """Optimisation and batches of one training stage (paper §4.1).

    `batch_size` is the global batch (all replicas). With `sampling="pk"` a batch holds
    P = batch_size / num_instances identities × K = num_instances images. The SGD update is
    PyTorch's (`weight_decay_mode="coupled"`, the field's 5e-4) or Keras' decoupled one; see
    `sal_tf.training.optimizer`.
    """

    epochs: int = 120
    learning_rate: float = 0.1
    batch_size: int = 128
    sampling: str = "random"
    num_instances: int = 4
    decay_every_epochs: int = 50  # lr ×decay_rate every N epochs (paper: ×0.1 every 50)
    decay_rate: float = 0.1
    warmup_epochs: int = 0  # linear lr warm-up (not in the paper; the demo uses it)
    momentum: float = 0.9
    weight_decay: float = 5e-4
    weight_decay_mode: str = "coupled"
    optimizer: str = "sgd"  # sgd (paper) | adam (BoT)
    warmup_start: float = 0.0  # warm-up starts at lr × this (BoT: 0.1); 0 = the ramp (step + 1) / warm-up steps
    decay_milestones: list = dataclasses.field(
        default_factory=list
    )  # epochs of the ×decay_rate steps (BoT: 40, 70); replaces decay_every_epochs

    @property
    def num_ids(self):
        """P of a P×K batch."""
        return self.batch_size // self.num_instances

    def validate(self, name):
        if self.epochs < 0 or self.learning_rate <= 0 or self.batch_size < 1 or self.num_instances < 1:
            raise ValueError(f"Invalid {name} settings (epochs >= 0, lr > 0, batch >= 1 expected): {self}")
        if self.sampling not in SAMPLINGS:
            raise ValueError(f"{name}: sampling must be one of {SAMPLINGS}. Received: {self.sampling!r}")
        if self.sampling == "pk" and self.batch_size % self.num_instances:
            raise ValueError(
                f"{name}: a P×K batch ({self.batch_size}) must be a multiple of K (--num_instances="
                f"{self.num_instances})."
            )
        if (
            self.optimizer not in OPTIMIZERS
            or not 0 <= self.warmup_start <= 1
            or min(self.decay_milestones, default=0) < 0
        ):
            raise ValueError(
                f"{name}: --optimizer must be one of {'|'.join(OPTIMIZERS)}, --warmup_start in [0, 1] and "
                f"--lr_milestones >= 0. Received: {self.optimizer!r}, {self.warmup_start}, {self.decay_milestones}"
            )
        if self.weight_decay < 0 or self.weight_decay_mode not in WEIGHT_DECAY_MODES:
            raise ValueError(
                f"{name}: --weight_decay must be >= 0 and --weight_decay_mode one of "
                f"{'|'.join(WEIGHT_DECAY_MODES)}. Received: {self.weight_decay}, {self.weight_decay_mode!r}"
            )


@dataclasses.dataclass(frozen=True)
class Stage:
    """One stage of a run, resolved from a config: a value, not a ternary.

    Attributes:
        number: 1 or 2; names the stage's files (`stage1.keras`, `stage1/ckpt-*`).
        config: its `StageConfig`.
        losses: keyword arguments of `sal_tf.losses.SALObjective`.
        init_from: number of the stage whose final model it starts from, or None (backbone weights).
        seed_offset: added to the run's seed for this stage's batches.
    """

    number: int
    config: StageConfig
    losses: dict
    init_from: int | None = None
    seed_offset: int = 0

    @property
    def name(self):
        return f"stage{self.number}"


def _paper_stage1():
    return StageConfig(epochs=120, learning_rate=0.1, batch_size=128)


def _paper_stage2():
    return StageConfig(epochs=60, learning_rate=1e-4, batch_size=18 * 4, sampling="pk", num_instances=4)


# The synthetic demo (no --data_dir): the `tiny` preset from scratch; values chosen to pass
# mAP >= 0.6 within a few minutes on 2 CPU cores (BUILD.md "Training").
DEMO = dict(
    preset="tiny",
    backbone_weights="none",
    eval_untrained=True,
    checkpoint_every_steps=100,
    stage1=dict(epochs=24, learning_rate=0.05, warmup_epochs=3, decay_every_epochs=18, batch_size=64),
    stage2=dict(epochs=10, learning_rate=1e-3, decay_every_epochs=50, batch_size=16 * 4),
)


@dataclasses.dataclass
class TrainConfig:
    """One re-ID training run (both stages). Defaults are the paper's values (§4.1)."""

    model_dir: str = run_folder("market1501")
    dataset: str = "market1501"  # market1501 | dukemtmc | custom | demo
    data_dir: str = ""
    preset: str = "paper"
    depth: int = 50
    dilation: bool = True
    multi_level: bool = True
    stage6: bool = True
    sac: bool = True
    loss: str = "softmax+quadruplet"
    backbone_weights: str = "imagenet"
    stage: str = "all"  # 1 | 2 | all
    stage1: StageConfig = dataclasses.field(default_factory=_paper_stage1)
    stage2: StageConfig = dataclasses.field(default_factory=_paper_stage2)
    margin1: float = 0.5
    margin2: float = 0.2
    triplet_margin: float = 0.5
    softmax_weight: float = 1.0
    metric_weight: float = 1.0
    sac_weight: float = 1.0
    pad_crop: bool = True
    random_erasing: bool = False
    color_jitter: float = 0.0  # camera colour / light jitter strength (sal_tf/data/pipelines.py camera_jitter)
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
    drop_bad_eval_images: bool = False
    checkpoint_every_steps: int = 500
    log_every_steps: int = 10
    max_steps_per_epoch: int = 0  # 0 = a full epoch (tests / smoke runs set it)
    max_eval_images: int = 0  # 0 = every evaluation image (CIFAR smoke runs set it)
    verbose: int = 1
    # The strong baseline's options (BoT, Luo et al. 2019; `sal_tf/training/recipes.py` sets them together).
    recipe: str = "paper"  # paper | bot | sal_bot: the recipe the other fields started from
    bnneck: bool = False  # BatchNorm neck: metric losses before it, classifier and retrieval after it
    last_stride: int = 2  # conv5's stride without DIL (BoT: 1)
    label_smoothing: float = 0.0  # ε of the softmax term (BoT: 0.1)
    triplet_soft_margin: bool = False  # softplus(d_ap − d_an) instead of the triplet hinge
    center_weight: float = 0.0  # center loss (Wen et al. 2016) weight, with the metric term (BoT: 0.0005)
    center_lr: float = 0.5  # SGD learning rate of the centres (BoT: 0.5)
    single_stage: bool = False  # every loss term in one stage (stage1's schedule, BoT) instead of the paper's two

    @classmethod
    def demo(cls, **changes):
        """The demo run's config (`DEMO` over the paper defaults), with `changes` on top."""
        values = {k: v for k, v in DEMO.items() if k not in ("stage1", "stage2")}
        values["stage1"] = dataclasses.replace(_paper_stage1(), **DEMO["stage1"])
        values["stage2"] = dataclasses.replace(_paper_stage2(), **DEMO["stage2"])
        return cls(**{"model_dir": run_folder("demo"), "dataset": "demo", **values, **changes})

    def __post_init__(self):
        for name in ("stage1", "stage2"):
            if isinstance(getattr(self, name), dict):
                setattr(self, name, StageConfig(**getattr(self, name)))
        self.validate()

    def validate(self):
        for name in ("loss", "strategy", "stage", "depth", "preset"):
            value, allowed = getattr(self, name), CHOICES[name]
            if (str(value) if name == "stage" else value) not in allowed:
                expected = "|".join(str(a) for a in allowed)
                raise ValueError(f"--{name} must be one of {expected}. Received: --{name}={value!r}")
        if self.backbone_weights == "imagenet" and self.depth not in IMAGENET_DEPTHS:
            raise ValueError(
                f"--depth={self.depth} has no ImageNet weights (Keras publishes ResNet"
                f"{'/'.join(map(str, IMAGENET_DEPTHS))}): pass --backbone_weights=none to train it from scratch."
            )
        self.stage1.validate("stage 1")
        self.stage2.validate("stage 2")
        self._validate_tricks()

    def _validate_tricks(self):
        if self.recipe not in RECIPE_NAMES:
            raise ValueError(f"--recipe must be one of {'|'.join(RECIPE_NAMES)}. Received: --recipe={self.recipe!r}")
        if self.last_stride not in (1, 2):
            raise ValueError(f"--last_stride must be 1 or 2. Received: --last_stride={self.last_stride!r}")
        if not 0 <= self.color_jitter < 1:
            raise ValueError(f"--color_jitter must be in [0, 1). Received: --color_jitter={self.color_jitter}")
        if not 0 <= self.label_smoothing < 1:
            raise ValueError(f"--label_smoothing must be in [0, 1). Received: --label_smoothing={self.label_smoothing}")
        if self.center_weight < 0 or self.center_lr <= 0:
            raise ValueError(
                f"--center_weight must be >= 0 and --center_lr > 0. Received: {self.center_weight}, {self.center_lr}"
            )

    @property
    def metric(self):
        """'quadruplet', 'triplet' or None."""
        return next((m for m in ("quadruplet", "triplet") if m in self.loss), None)

    def model_options(self):
        """`sal_tf.models.build_model` keyword arguments beyond the preset."""
        return dict(
            depth=self.depth,
            dilation=self.dilation,
            multi_level=self.multi_level,
            stage6=self.stage6,
            bnneck=self.bnneck,
            last_stride=self.last_stride,
        )

    def loss_options(self, softmax, metric):
        """`SALObjective` keyword arguments of a stage that uses `softmax` / `metric`."""
        return dict(
            softmax=softmax,
            metric=metric,
            sac=self.sac,
            softmax_weight=self.softmax_weight,
            metric_weight=self.metric_weight,
            sac_weight=self.sac_weight,
            margin1=self.margin1,
            margin2=self.margin2,
            triplet_margin=self.triplet_margin,
            label_smoothing=self.label_smoothing,
            triplet_soft_margin=self.triplet_soft_margin,
            center_weight=self.center_weight if metric else 0.0,  # the center loss goes with the metric term
        )

    def all_stages(self):
        """Every stage this loss setting has, in order (see the module docstring)."""
        softmax = self.loss.startswith("softmax")
        if self.single_stage:  # BoT: all terms at once, stage 1's schedule and sampling
            return [Stage(1, self.stage1, self.loss_options(softmax, self.metric))]
        stages = []
        if softmax:
            stages.append(Stage(1, self.stage1, self.loss_options(True, None)))
        if self.metric:
            stages.append(Stage(2, self.stage2, self.loss_options(softmax, self.metric), 1 if softmax else None, 1))
        return stages

    def stages(self):
        """The stages `--stage` asks for; a clear error when this loss setting has no such stage."""
        available = self.all_stages()
        if str(self.stage) == "all":
            return available
        chosen = [s for s in available if s.number == int(self.stage)]
        if not chosen:
            raise ValueError(
                f"--stage={self.stage} has nothing to train with --loss={self.loss}: stage 1 trains the softmax "
                "term, stage 2 the metric term (quadruplet/triplet)."
            )
        return chosen

    def eval_settings(self):
        """What an evaluation result depends on beyond the model (results older than these are stale)."""
        return dict(rerank=self.rerank, flip=self.flip_eval, max_eval_images=self.max_eval_images)

    def to_dict(self):
        return dataclasses.asdict(self)

    def to_json(self):
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    def differences(self, other):
        """{field: (stored, now)} of the non-runtime fields whose values differ from `other` (a dict).

        A field missing from `other` (a config.json written before the field existed) counts as its
        default, so a folder of an older version resumes when the new field keeps its default.
        """
        mine = self.to_dict()
        other = _with_defaults(other, type(self))
        return {
            key: (other.get(key), mine.get(key))
            for key in sorted(set(mine) | set(other))
            if key not in RUNTIME_FIELDS and mine.get(key) != other.get(key)
        }

    def check_same_as(self, stored, what):
        """Raises `ConfigMismatch` listing the fields that differ from `stored` (a config dict).

        `what` starts the message: "<what> with a different configuration: ...".
        """
        diffs = self.differences(stored)
        if diffs:
            lines = "\n".join(f"  {key}: stored {a!r}, now {b!r}" for key, (a, b) in diffs.items())
            raise ConfigMismatch(
                f"{what} with a different configuration:\n{lines}\n"
                "Use another --model_dir, or rerun with the stored settings to resume."
            )


def _with_defaults(stored, cls):
    """`stored` (a config dict) with the fields of `cls` it lacks, stages' fields too, set to `cls()`'s values."""
    defaults = cls().to_dict()
    filled = {**defaults, **stored}
    for name in ("stage1", "stage2"):
        if isinstance(filled[name], dict):
            filled[name] = {**defaults[name], **filled[name]}
    return filled


# CIFAR-100 (paper §4.5, Table 4). The paper gives no CIFAR schedule; these are the usual CIFAR
# ResNet recipe in the paper's schedule form.
CIFAR_STAGE1 = dict(epochs=150, learning_rate=0.1, decay_every_epochs=50, batch_size=128, weight_decay=5e-4)
# Table 4 rows: (row name, build options, SAC, paper test error %). "Soft" rows are plain ResNets
# (no dilation, no stage6, no multi-level feature; §3.1: stage6 exists to undo dilation's gridding).
TABLE4_ROWS = {
    "resnet50_soft": ("ResNet50 (Soft)", dict(depth=50, dilation=False, multi_level=False, stage6=False), False, 22.02),
    "resnet101_soft": (
        "ResNet101 (Soft)",
        dict(depth=101, dilation=False, multi_level=False, stage6=False),
        False,
        21.95,
    ),
    "resnet50_soft_dil_sac": ("ResNet50 (Soft + DIL + SAC)", dict(depth=50), True, 21.75),
}


@dataclasses.dataclass
class CifarTrainConfig(TrainConfig):
    """CIFAR-100 classification: stage 1, softmax (+ SAC), `cifar` preset, no ImageNet weights.

    Extra field: `width_divisor` (model widths ÷ N; 1 = ResNet; smoke runs use 8).
    """

    model_dir: str = run_folder("cifar100")
    dataset: str = "cifar100"
    preset: str = "cifar"
    loss: str = "softmax"
    backbone_weights: str = "none"
    stage: str = "1"
    stage1: StageConfig = dataclasses.field(default_factory=lambda: StageConfig(**CIFAR_STAGE1))
    rerank: bool = False
    checkpoint_every_steps: int = 500
    eval_every: int = 10
    eval_batch_size: int = 256
    width_divisor: int = 1

    def validate(self):
        super().validate()
        if self.loss != "softmax" or str(self.stage) != "1":
            raise ValueError(
                f"CIFAR-100 trains stage 1 with loss=softmax (Table 4); got loss={self.loss!r}, stage={self.stage!r}."
            )
        check_width_divisor(self.width_divisor, "--width_divisor")
        if self.max_eval_images < 0:
            raise ValueError(f"--max_eval_images must be >= 0. Received: {self.max_eval_images}")

    def model_options(self):
        return dict(super().model_options(), width_divisor=self.width_divisor)

    @property
    def table4_row(self):
        """(key of `TABLE4_ROWS` or None, row name)."""
        for key, (name, options, sac, _) in TABLE4_ROWS.items():
            if sac == self.sac and all(getattr(self, k) == v for k, v in options.items()):
                return key, name
        plain = not self.dilation
        name = f"ResNet{self.depth} (Soft" + ("" if plain else " + DIL") + (" + SAC" if self.sac else "") + ")"
        return None, name
