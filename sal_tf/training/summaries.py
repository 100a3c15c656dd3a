"""TensorBoard image helpers: attention maps overlaid on images (paper Fig. 3)."""

import numpy as np


def jet_colormap(values):
    """Maps values in [0, 1] to RGB floats [..., 3] with the classic 'jet' ramp."""
    v = np.clip(np.asarray(values, np.float32), 0.0, 1.0)
    r = np.clip(1.5 - np.abs(4.0 * v - 3.0), 0.0, 1.0)
    g = np.clip(1.5 - np.abs(4.0 * v - 2.0), 0.0, 1.0)
    b = np.clip(1.5 - np.abs(4.0 * v - 1.0), 0.0, 1.0)
    return np.stack([r, g, b], axis=-1)


def _upsample(att, height, width):
    """Nearest-neighbour upsampling of [h, w] to [height, width]."""
    h, w = att.shape
    rows = (np.arange(height) * h // height).clip(0, h - 1)
    cols = (np.arange(width) * w // width).clip(0, w - 1)
    return att[rows][:, cols]


def attention_overlays(images, attention, map_size, alpha=0.5):
    """Side-by-side panels: the image, then each stage's attention overlaid on it.

    Args:
        images: float or uint8 RGB [N, H, W, 3] in [0, 255].
        attention: [N, S, h·w] attention maps (S stages, row-major positions).
        map_size: (h, w) of the attention grid.
        alpha: heat-map opacity.

    Returns:
        uint8 [N, H, W·(S+1), 3].
    """
    images = np.asarray(images, np.float32)
    attention = np.nan_to_num(np.asarray(attention, np.float32))
    n, height, width, _ = images.shape
    panels = []
    for i in range(n):
        row = [images[i]]
        for s in range(attention.shape[1]):
            a = attention[i, s].reshape(map_size)
            a = (a - a.min()) / max(float(a.max() - a.min()), 1e-12)
            heat = jet_colormap(_upsample(a, height, width)) * 255.0
            row.append((1 - alpha) * images[i] + alpha * heat)
        panels.append(np.concatenate(row, axis=1))
    return np.clip(np.stack(panels), 0, 255).astype(np.uint8)
