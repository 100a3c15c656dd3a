"""Re-ID evaluation: distances, CMC/mAP/mINP, k-reciprocal re-ranking, features, rank lists.

Names are resolved on first use, so `import sal_tf.evaluation` loads neither TensorFlow
(`extract_features`) nor matplotlib (`rank_list_image`, `save_rank_lists`): scoring saved features
needs only numpy (and numba / faiss where the module says so).
"""

from sal_tf.utils.lazy import lazy_module_attrs

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


__getattr__, __dir__ = lazy_module_attrs(_LAZY, __name__, deprecated=_DEPRECATED)
