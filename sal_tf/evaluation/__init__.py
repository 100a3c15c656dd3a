"""Re-ID evaluation: distances, CMC/mAP/mINP, k-reciprocal re-ranking, features, rank lists."""

from sal_tf.evaluation.distance import pairwise_distance
from sal_tf.evaluation.features import extract_features
from sal_tf.evaluation.rank import RankResult, evaluate_rank, format_table
from sal_tf.evaluation.rerank import re_rank, re_ranking
from sal_tf.evaluation.visualize import rank_list_image, save_rank_lists

__all__ = [
    "RankResult",
    "evaluate_rank",
    "extract_features",
    "format_table",
    "pairwise_distance",
    "rank_list_image",
    "re_rank",
    "re_ranking",
    "save_rank_lists",
]
