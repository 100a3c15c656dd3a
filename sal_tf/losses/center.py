"""Center loss (Wen et al., ECCV 2016), as BoT (Luo et al. 2019) uses it beside the triplet loss.

Each class j has a learnt centre c_j; a sample pays its squared distance to its class's centre:

    L_C = 1/B · Σ_i ||x_i − c_{y_i}||²

(BoT's `CenterLoss`: the batch mean of the squared distances, without Wen et al.'s factor ½). The
centres are a Keras layer's variable, kept out of the model (they are not part of what is served).
BoT updates them with their own SGD (lr 0.5) on the gradient of L_C itself — the gradient of
w·L_C divided by the loss weight w, so a small w (BoT: 0.0005) slows the features, not the centres:

    c_j ← c_j − lr · ∂L_C/∂c_j,   ∂L_C/∂c_j = 2/B · Σ_{i: y_i = j} (c_j − x_i)

`sal_tf.training.loop` applies that update in the train step.
"""

import keras
from keras import ops

from sal_tf.losses import mining


def center_loss_terms(labels, features, centers):
    """Per-sample squared distance to the class centre, `[B]` float32.

    Args:
        labels: integer ids `[B]` in [0, C).
        features: `[B, D]` (computed in float32).
        centers: `[C, D]`.
    """
    labels = mining.as_labels(labels)
    features = ops.cast(features, "float32")
    own = ops.take(ops.cast(centers, "float32"), labels, axis=0)
    return ops.sum(ops.square(features - own), axis=-1)


@keras.saving.register_keras_serializable(package="sal_tf")
class CenterLoss(keras.layers.Layer):
    """Holds the centres `[num_classes, dim]`; `layer(labels, features)` returns the per-sample terms `[B]`.

    The centres start from a standard normal (BoT's `torch.randn`). They are built when the layer
    is constructed (inside a distribution strategy's scope when there is one), so a train step
    traced later finds them.

    Args:
        num_classes: C >= 1, the training identities.
        dim: D >= 1, the size of the feature the loss is on.

    Example:
        >>> layer = CenterLoss(num_classes=3, dim=2)
        >>> layer.centers.shape
        (3, 2)
    """

    def __init__(self, num_classes, dim, **kwargs):
        super().__init__(**kwargs)
        if int(num_classes) < 1 or int(dim) < 1:
            raise ValueError(f"CenterLoss needs num_classes >= 1 and dim >= 1. Received: {num_classes}, {dim}")
        self.num_classes, self.dim = int(num_classes), int(dim)
        self.centers = self.add_weight(
            shape=(self.num_classes, self.dim),
            initializer=keras.initializers.RandomNormal(stddev=1.0),
            dtype="float32",
            name="centers",
        )
        self.built = True

    def call(self, labels, features):
        return center_loss_terms(labels, features, self.centers)

    def get_config(self):
        return {**super().get_config(), "num_classes": self.num_classes, "dim": self.dim}
