"""The paper's training objective (eq. 6): w_cls * L_cls + w_metric * L_metric + w_sac * L_sac.

`SALObjective(labels [B] int, outputs) -> dict` of float32 scalars, where `outputs` is the model's
dict (`"logits"` [B, C], `"embedding"` [B, D], `"attention"` [B, S, HW], and with a BNNeck
`"pre_bn_embedding"` [B, D]). Returned keys:

* `"loss"`: the weighted total;
* one per active term: `"softmax"`, `"quadruplet"` or `"triplet"`, `"center"`, `"sac"` (unweighted);
* `"accuracy"`: top-1 of the logits (when softmax is on);
* mining statistics: `"quadruplet_active_1"` / `"quadruplet_active_2"` (fraction of anchors whose
  term-1 / term-2 hinge is > 0) or `"triplet_active"`.

Every term is a mean over the local batch; under a distribution strategy the trainer divides by the
number of replicas itself. Inputs in float16/bfloat16 are computed in float32.

Options of the strong baseline (BoT, Luo et al. 2019): label smoothing of the softmax term
(`label_smoothing.py`), the soft-margin triplet, and the center loss (`center.py`, weight
`center_weight`, its centres a `CenterLoss` layer passed in as `centers`). The metric and center
terms take `outputs["pre_bn_embedding"]` when the model has a BNNeck (BoT: the metric losses on the
feature before the BatchNorm, the classifier and retrieval after it), else `outputs["embedding"]`.
"""

import keras
from keras import ops

from sal_tf.losses import mining
from sal_tf.losses.attention_constraint import self_attention_constraint_terms
from sal_tf.losses.label_smoothing import check_epsilon, label_smoothed_cross_entropy
from sal_tf.losses.quadruplet import quadruplet_hard_terms
from sal_tf.losses.triplet import triplet_hard_terms
from sal_tf.utils.checks import check_non_negative

METRIC_LOSSES = ("quadruplet", "triplet")
PRE_BN = "pre_bn_embedding"  # the model output the metric and center losses use when there is a BNNeck


def _fraction_positive(values):
    return ops.mean(ops.cast(values > 0, "float32"))


@keras.saving.register_keras_serializable(package="sal_tf")
class SALObjective:
    """Softmax + quadruplet/triplet + self-attention constraint, each optional and weighted.

    Args:
        softmax: use sparse categorical cross-entropy on `outputs["logits"]`.
        metric: `"quadruplet"` (paper), `"triplet"` (Table 1 setting 3(T)) or None / `"none"`.
        sac: use the self-attention constraint on `outputs["attention"]`.
        softmax_weight, metric_weight, sac_weight: weights >= 0 (paper: all 1).
        margin1, margin2: quadruplet margins (paper: 0.5, 0.2).
        triplet_margin: triplet margin (default 0.5, the paper's epsilon_1).
        label_smoothing: ε of the softmax term (0: the paper's cross-entropy; BoT 0.1).
        triplet_soft_margin: softplus(d_ap - d_an) instead of the triplet hinge.
        center_weight: weight of the center loss (0: off; BoT 0.0005); needs `centers`.
        centers: a `sal_tf.losses.CenterLoss` layer (its centres), or None.

    Example (stage 2 of the paper, §4.1):
        >>> objective = SALObjective(softmax=True, metric="quadruplet", sac=True)
        >>> objective.terms
        ('softmax', 'quadruplet', 'sac')
    """

    def __init__(
        self,
        softmax=True,
        metric="quadruplet",
        sac=True,
        softmax_weight=1.0,
        metric_weight=1.0,
        sac_weight=1.0,
        margin1=0.5,
        margin2=0.2,
        triplet_margin=0.5,
        label_smoothing=0.0,
        triplet_soft_margin=False,
        center_weight=0.0,
        centers=None,
    ):
        if isinstance(metric, str) and metric.lower() == "none":
            metric = None
        if metric is not None and metric not in METRIC_LOSSES:
            raise ValueError(f"`metric` must be one of {METRIC_LOSSES} or None. Received: metric={metric!r}")
        self.softmax = bool(softmax)
        self.metric = metric
        self.sac = bool(sac)
        if not (self.softmax or self.metric or self.sac):
            raise ValueError(
                "SALObjective needs at least one term: pass softmax=True, metric='quadruplet' or "
                "'triplet', or sac=True. Received: softmax=False, metric=None, sac=False"
            )
        self.softmax_weight = check_non_negative(softmax_weight, "softmax_weight")
        self.metric_weight = check_non_negative(metric_weight, "metric_weight")
        self.sac_weight = check_non_negative(sac_weight, "sac_weight")
        self.margin1 = check_non_negative(margin1, "margin1")
        self.margin2 = check_non_negative(margin2, "margin2")
        self.triplet_margin = check_non_negative(triplet_margin, "triplet_margin")
        self.label_smoothing = check_epsilon(label_smoothing)
        self.triplet_soft_margin = bool(triplet_soft_margin)
        self.center_weight = check_non_negative(center_weight, "center_weight")
        if self.center_weight and centers is None:
            raise ValueError("SALObjective(center_weight > 0) needs `centers`, a sal_tf.losses.CenterLoss layer.")
        self.centers = centers if self.center_weight else None

    @property
    def terms(self):
        """Names of the active terms, in the order they are summed."""
        candidates = (
            ("softmax", self.softmax),
            (self.metric, self.metric),
            ("center", self.centers is not None),
            ("sac", self.sac),
        )
        return tuple(name for name, on in candidates if on)

    def _output(self, outputs, key, shape):
        if not hasattr(outputs, "keys") or key not in outputs:
            found = sorted(outputs.keys()) if hasattr(outputs, "keys") else type(outputs).__name__
            raise ValueError(
                f"SALObjective with terms {self.terms} needs outputs[{key!r}] of shape {shape}. "
                f"Received outputs with keys: {found}"
            )
        return outputs[key]

    def _metric_input(self, outputs):
        """The feature of the metric and center terms: before the BNNeck when the model has one."""
        if hasattr(outputs, "keys") and PRE_BN in outputs:
            return outputs[PRE_BN]
        return self._output(outputs, "embedding", "[B, D]")

    def _softmax_terms(self, labels, outputs, results):
        logits = ops.cast(self._output(outputs, "logits", "[B, C]"), "float32")
        if len(logits.shape) != 2:
            raise ValueError(f"outputs['logits'] must have shape [B, C]. Received: shape={tuple(logits.shape)}")
        if self.label_smoothing:
            cross_entropy = label_smoothed_cross_entropy(labels, logits, self.label_smoothing)
        else:
            cross_entropy = ops.sparse_categorical_crossentropy(labels, logits, from_logits=True)
        results["softmax"] = ops.mean(cross_entropy)
        predicted = ops.cast(ops.argmax(logits, axis=-1), "int32")
        results["accuracy"] = ops.mean(ops.cast(predicted == labels, "float32"))
        return self.softmax_weight * results["softmax"]

    def _metric_terms(self, labels, outputs, results):
        embedding = self._metric_input(outputs)
        if self.metric == "quadruplet":
            term1, term2 = quadruplet_hard_terms(labels, embedding, self.margin1, self.margin2)
            term1, term2 = ops.cast(term1, "float32"), ops.cast(term2, "float32")
            results["quadruplet"] = ops.mean(term1 + term2)
            results["quadruplet_active_1"] = _fraction_positive(term1)
            results["quadruplet_active_2"] = _fraction_positive(term2)
            return self.metric_weight * results["quadruplet"]
        term = triplet_hard_terms(labels, embedding, self.triplet_margin, self.triplet_soft_margin)
        term = ops.cast(term, "float32")
        results["triplet"] = ops.mean(term)
        results["triplet_active"] = _fraction_positive(term)
        return self.metric_weight * results["triplet"]

    def __call__(self, labels, outputs):
        """Returns the dict of float32 scalars described in the module docstring."""
        labels = mining.as_labels(labels)
        results = {}
        total = ops.zeros((), "float32")
        if self.softmax:
            total = total + self._softmax_terms(labels, outputs, results)
        if self.metric:
            total = total + self._metric_terms(labels, outputs, results)
        if self.centers is not None:
            results["center"] = ops.mean(self.centers(labels, self._metric_input(outputs)))
            total = total + self.center_weight * results["center"]
        if self.sac:
            attention = self._output(outputs, "attention", "[B, 3, HW]")
            sac = ops.cast(self_attention_constraint_terms(attention), "float32")
            results["sac"] = ops.mean(sac)
            total = total + self.sac_weight * results["sac"]
        results["loss"] = total
        return {key: ops.cast(value, "float32") for key, value in results.items()}

    def get_config(self):
        return {
            "softmax": self.softmax,
            "metric": self.metric,
            "sac": self.sac,
            "softmax_weight": self.softmax_weight,
            "metric_weight": self.metric_weight,
            "sac_weight": self.sac_weight,
            "margin1": self.margin1,
            "margin2": self.margin2,
            "triplet_margin": self.triplet_margin,
            "label_smoothing": self.label_smoothing,
            "triplet_soft_margin": self.triplet_soft_margin,
            "center_weight": 0.0 if self.centers is None else self.center_weight,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"SALObjective({args})"
