"""Pairwise distances between embeddings, computed in blocks of query rows.

Conventions (those of torchreid / fast-reid):

* `euclidean`:   sqrt(max(|q|² + |g|² − 2 q·g, 0))
* `sqeuclidean`: max(|q|² + |g|² − 2 q·g, 0)
* `cosine`:      clip(1 − cos(q, g), 0, 2), with cos computed on L2-normalised rows
  (a zero row has cosine 0 to everything, i.e. distance 1).

Everything is float32. `re_rank_features` uses the same formulas (its first pass in
TensorFlow, `pair_distances` for a few matched pairs), so its distances are those of
`distance_matrix` up to float rounding.

Searches (`sal_tf.gallery`: the stores and the index folders) hold unit vectors and rank by their
inner product `ip` (the cosine); they report one of `DISTANCES`: `euclidean` sqrt(max(2 − 2·ip, 0))
(the default, as evaluation) or `cosine` clip(1 − ip, 0, 2) (`to_distance`), on rows made unit by
`normalise`. `as_matrix` is the one check of a matrix argument (2-D, numeric) that all of them use.
"""

import numpy as np

DISTANCE_METRICS = ("euclidean", "sqeuclidean", "cosine")
DISTANCES = ("euclidean", "cosine")  # what a search over unit vectors reports (module docstring)
_EPS = 1e-12


def check_metric(metric):
    if metric not in DISTANCE_METRICS:
        raise ValueError(f"`metric` must be one of {DISTANCE_METRICS}. Received: metric={metric!r}")


def as_matrix(x, name, shape="2-D [num_items, dim]", columns=None, rows=None):
    """`x` (an array, or a tensor with `.numpy()`) as a numeric 2-D ndarray, unconverted.

    Raises:
        ValueError naming `name`: not 2-D (or not `rows` high / `columns` wide: `shape` says what is
            expected), or not numeric (bool, object, strings).
    """
    if hasattr(x, "numpy"):
        x = x.numpy()
    x = np.asarray(x)
    if x.ndim != 2 or (rows is not None and x.shape[0] != rows) or (columns is not None and x.shape[1] != columns):
        raise ValueError(f"`{name}` must be a {shape} matrix. Received shape: {x.shape}")
    if not (np.issubdtype(x.dtype, np.floating) or np.issubdtype(x.dtype, np.integer)):
        raise ValueError(f"`{name}` must be numeric. Received dtype: {x.dtype}")
    return x


def as_features(x, name):
    """Returns `x` as a finite float32 C-contiguous [n, d] array."""
    x = np.ascontiguousarray(as_matrix(x, name, "2-D [num_items, dim] feature"), dtype=np.float32)
    if not np.isfinite(x).all():
        raise ValueError(f"`{name}` contains NaN or infinite values.")
    return x


def as_feature_pair(q_feats, g_feats):
    """`as_features` of both, checked to share their feature dimension."""
    q, g = as_features(q_feats, "q_feats"), as_features(g_feats, "g_feats")
    if q.shape[1] != g.shape[1]:
        raise ValueError(
            "`q_feats` and `g_feats` must have the same feature dimension. "
            f"Received: q_feats.shape={q.shape}, g_feats.shape={g.shape}"
        )
    return q, g


def prepare(x, metric):
    """Per-row data the block functions need: (rows, squared norms or None)."""
    if metric == "cosine":
        norms = np.sqrt(np.einsum("ij,ij->i", x, x))
        return x / np.maximum(norms, _EPS)[:, None], None
    return x, np.einsum("ij,ij->i", x, x)


def _finish(m, metric):
    """In place: turns `m` (q·g products, or cosines) into distances."""
    if metric == "cosine":
        np.subtract(1.0, m, out=m)
        np.clip(m, 0.0, 2.0, out=m)
    else:
        np.maximum(m, 0.0, out=m)
        if metric == "euclidean":
            np.sqrt(m, out=m)
    return m


def distance_block(a, a_sq, b, b_sq, metric):
    """Distances of every row of `a` to every row of `b`: float32 [len(a), len(b)]."""
    m = a @ b.T
    if metric != "cosine":
        m *= -2.0
        m += a_sq[:, None]
        m += b_sq[None, :]
    return _finish(m, metric)


def pair_distances(a, a_sq, b, b_sq, metric):
    """Distances of row i of `a` to row i of `b` (same arithmetic as `distance_block`)."""
    m = np.einsum("ij,ij->i", a, b)
    if metric != "cosine":
        m *= -2.0
        m += a_sq
        m += b_sq
    return _finish(m, metric)


def distance_matrix(q, g, metric="euclidean", block_size=1024):
    """Distances between query and gallery embeddings, `block_size` query rows at a time.

    Args:
        q: float [num_query, dim] (numpy or tf tensor).
        g: float [num_gallery, dim].
        metric: "euclidean", "sqeuclidean" or "cosine" (= 1 − cos).
        block_size: query rows per matrix product (bounds the temporaries).

    Returns:
        np.float32 [num_query, num_gallery].
    """
    check_metric(metric)
    if int(block_size) < 1:
        raise ValueError(f"`block_size` must be >= 1. Received: block_size={block_size}")
    q = as_features(q, "q")
    g = as_features(g, "g")
    if q.shape[1] != g.shape[1]:
        raise ValueError(
            f"`q` and `g` must have the same feature dimension. Received: q.shape={q.shape}, g.shape={g.shape}"
        )
    q, q_sq = prepare(q, metric)
    g, g_sq = prepare(g, metric)
    out = np.empty((q.shape[0], g.shape[0]), dtype=np.float32)
    bs = int(block_size)
    for s in range(0, q.shape[0], bs):
        e = min(s + bs, q.shape[0])
        out[s:e] = distance_block(q[s:e], None if q_sq is None else q_sq[s:e], g, g_sq, metric)
    return out


def check_distance(distance, name="distance"):
    """`distance` if it is one of `DISTANCES`, else ValueError naming `name`."""
    if distance not in DISTANCES:
        raise ValueError(f"`{name}` must be one of {DISTANCES}. Received: {distance!r}")
    return distance


def normalise(x, name="embeddings"):
    """float32 C-contiguous [n, d] unit rows of a finite numeric matrix (zero rows stay zero).

    The norms are taken in float64, so a row given in float64 is as exact as float32 can hold it.
    """
    x = np.asarray(as_matrix(x, name, "[count, dim]"), np.float64)
    if not np.isfinite(x).all():
        raise ValueError(f"`{name}` contains NaN or infinite values.")
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return np.ascontiguousarray(x / np.where(norms > 0, norms, 1.0), np.float32)


def to_distance(ip, distance="euclidean"):
    """Inner products of unit vectors → distances in the `distance` convention (module docstring)."""
    ip = np.asarray(ip, np.float32)
    if check_distance(distance) == "euclidean":
        return np.sqrt(np.maximum(2.0 - 2.0 * ip, 0.0))
    return np.clip(1.0 - ip, 0.0, 2.0)
