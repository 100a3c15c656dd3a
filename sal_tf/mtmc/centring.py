"""Camera-aware feature normalisation: each camera's mean tracklet embedding taken out before linking.

A camera's light, colour cast, scale and background move every embedding of that camera the same
way; the gray-world white balance (`tracklets.gray_world`) undoes part of it on the pixels, the rest
stays in the features. Subtracting each camera's mean embedding and re-normalising — per-camera
feature statistics as in camera-based batch normalisation (Zhuang et al., "Rethinking the
Distribution Gap of Person Re-identification with Camera-based Batch Normalization", ECCV 2020),
here applied at test time to the tracklets of one run — leaves what tells the camera's people apart:

    g = (f − μ_c) / ‖f − μ_c‖,   μ_c = Σ_{t in camera c} n_t f_t / Σ n_t

(f_t a tracklet's pooled unit embedding, n_t its number of boxes: μ_c is about the mean of the
camera's box embeddings).

**Distances keep their meaning up to a factor.** For unit f, g of one camera with f·μ ≈ g·μ ≈ |μ|²
= m² (true on average: the box-weighted mean of f·μ_c is |μ_c|²), (f − μ)·(g − μ) ≈ f·g − m² and
‖f − μ‖² ≈ 1 − m², so the centred cosine distance is d' ≈ d / (1 − m²). The calibration's
distances (`sal_tf.evaluation.calibration`, measured on raw embeddings) are therefore scaled by
`factor` = 1 / (1 − m̄²), m̄² the box-weighted mean of f_t·μ_c over all tracklets, before they are
used on centred features (`sal_tf.mtmc.run.link_tracklets`). Measured on the tuning cameras in
BUILD.md "Multi-camera tracking".
"""

import dataclasses

import numpy as np


def camera_centred(tracklets):
    """(tracklets with centred unit features, distance factor): see the module docstring.

    Only `feature` changes (rows, crops and boxes stay); a camera whose features all equal its mean
    (e.g. one tracklet) keeps its raw features. The factor is 1.0 when nothing is centred.
    """
    if not tracklets:
        return [], 1.0
    features = np.stack([t.feature for t in tracklets]).astype(np.float64)
    boxes = np.array([len(t.frames) for t in tracklets], np.float64)
    cameras = np.array([t.camera for t in tracklets])
    centred, overlap = features.copy(), np.zeros(len(tracklets))
    for camera in np.unique(cameras):
        mine = cameras == camera
        mean = boxes[mine] @ features[mine] / boxes[mine].sum()
        centred[mine] = features[mine] - mean
        overlap[mine] = features[mine] @ mean
    norms = np.linalg.norm(centred, axis=1, keepdims=True)
    kept = norms[:, 0] > 1e-6
    centred = np.where(kept[:, None], centred / np.maximum(norms, 1e-12), features)
    factor = 1.0 / (1.0 - np.average(overlap[kept], weights=boxes[kept])) if kept.any() else 1.0
    out = [dataclasses.replace(t, feature=g.astype(np.float32)) for t, g in zip(tracklets, centred)]
    return out, float(factor)
