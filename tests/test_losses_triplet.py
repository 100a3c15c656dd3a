"""sal_tf.losses.triplet against the brute-force float64 reference `ref_triplet`
(`tests/loss_references.py`): random, clustered and property-based batches, gradients, config."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sal_tf.losses import TripletHardLoss, triplet_hard_terms
from tests.loss_references import (
    HYPOTHESIS,
    assert_config_round_trip,
    assert_gradient_matches_finite_differences,
    assert_triplet_matches,
    clustered_batch,
    distinct_id_batches,
    exact_mean,
    gradient_batch,
    grid_batches,
    one_id_batches,
    random_batch,
    random_float_batch,
)


@pytest.mark.parametrize("seed", [0, 1])
def test_ref_random_batches(seed):
    labels, x = random_batch(seed)
    want = assert_triplet_matches(labels, x, check_loss_class=True)
    assert want.max() > 0  # random ids: hinges are active, so the check is not vacuous


@pytest.mark.parametrize("seed", [0, 1])
def test_ref_clustered_batches(seed):
    labels, x = clustered_batch(seed)
    assert_triplet_matches(labels, x, margin=0.3, check_loss_class=True)


@HYPOTHESIS
@given(grid_batches())
def test_ref_property_duplicates_and_ties(batch):
    labels, x = batch
    assert_triplet_matches(labels, x)


@HYPOTHESIS
@given(st.one_of(one_id_batches(), distinct_id_batches()))
def test_ref_property_one_id_only_or_every_id_once(batch):
    labels, x = batch
    want = assert_triplet_matches(labels, x)
    assert not want.any()  # one id: no negatives; every id once: no positives; all zero


@HYPOTHESIS
@given(st.integers(0, 2**31 - 1), st.integers(2, 8), st.integers(1, 4))
def test_ref_property_random_floats(seed, size, num_ids):
    assert_triplet_matches(*random_float_batch(seed, size, num_ids))


def test_ref_gradients_match_finite_differences():
    labels, x = gradient_batch()
    value, grad = assert_gradient_matches_finite_differences(
        lambda x: exact_mean(triplet_hard_terms(labels, x, 0.5)), x
    )
    assert value > 0 and np.abs(grad).max() > 0


def test_get_config_round_trip():
    assert_config_round_trip(TripletHardLoss(margin=0.3))
