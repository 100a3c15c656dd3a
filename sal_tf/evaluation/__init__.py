"""Re-ID evaluation: distances, CMC/mAP/mINP, k-reciprocal re-ranking, features, rank lists.

Names are resolved on first use, so `import sal_tf.evaluation` loads neither TensorFlow
(`extract_features`) nor matplotlib (`rank_list_image`, `save_rank_lists`): scoring saved features
needs only numpy (and numba / faiss where the module says so).
"""

_LAZY = {
    "RankResult": "sal_tf.evaluation.rank",
    "evaluate_rank": "sal_tf.evaluation.rank",
    "format_rank_table": "sal_tf.evaluation.rank",
    "evaluate_features": "sal_tf.evaluation.blockwise",
    "distance_matrix": "sal_tf.evaluation.distance",
    "extract_features": "sal_tf.evaluation.features",
    "re_rank_distances": "sal_tf.evaluation.rerank",
    "re_rank_features": "sal_tf.evaluation.rerank",
    "rank_list_image": "sal_tf.evaluation.visualize",
    "save_rank_lists": "sal_tf.evaluation.visualize",
}
_DEPRECATED = {"format_table": "format_rank_table"}  # old name → new name; removed in the next release

__all__ = sorted(_LAZY)


def __getattr__(name):
    import importlib

    if name in _DEPRECATED:
        import warnings

        warnings.warn(
            f"sal_tf.evaluation.{name} is renamed {_DEPRECATED[name]}; the old name goes in the next release.",
            DeprecationWarning,
            stacklevel=2,
        )
        name = _DEPRECATED[name]
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'sal_tf.evaluation' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_LAZY))
