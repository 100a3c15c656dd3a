"""Re-ID evaluation: distances, CMC/mAP/mINP, k-reciprocal re-ranking, features, rank lists."""

from sal_tf.evaluation.blockwise import evaluate_features
from sal_tf.evaluation.distance import distance_matrix
from sal_tf.evaluation.features import extract_features
from sal_tf.evaluation.rank import RankResult, evaluate_rank, format_table
from sal_tf.evaluation.rerank import re_rank_distances, re_rank_features
from sal_tf.evaluation.visualize import rank_list_image, save_rank_lists

__all__ = [
    "RankResult",
    "evaluate_features",
    "evaluate_rank",
    "extract_features",
    "format_table",
    "distance_matrix",
    "rank_list_image",
    "re_rank_features",
    "re_rank_distances",
    "save_rank_lists",
]
