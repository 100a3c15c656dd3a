"""sal_tf.losses.quadruplet against the brute-force float64 reference `ref_quadruplet`
(`tests/loss_references.py`): random, clustered and property-based batches, gradients, config."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from keras import ops

from sal_tf.losses import QuadrupletHardLoss, quadruplet_hard_terms
from tests.loss_references import (
    HYPOTHESIS,
    assert_config_round_trip,
    assert_gradient_matches_finite_differences,
    assert_quadruplet_matches,
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
    want1, want2 = assert_quadruplet_matches(labels, x, check_loss_class=True)
    assert want1.max() > 0  # random ids: hinges are active, so the check is not vacuous


@pytest.mark.parametrize("seed", [0, 1])
def test_ref_clustered_batches(seed):
    labels, x = clustered_batch(seed)
    want1, want2 = assert_quadruplet_matches(labels, x, margin1=0.4, check_loss_class=True)
    # The clusters are tuned so that each term is active for some anchors and zero for others.
    for want in (want1, want2):
        assert 0.0 < np.mean(want > 0) < 1.0, np.mean(want > 0)


@HYPOTHESIS
@given(grid_batches())
def test_ref_property_duplicates_and_ties(batch):
    labels, x = batch
    assert_quadruplet_matches(labels, x)
    assert_quadruplet_matches(labels, x, margin1=0.0, margin2=1.5)


@HYPOTHESIS
@given(st.one_of(one_id_batches(), distinct_id_batches()))
def test_ref_property_one_id_only_or_every_id_once(batch):
    labels, x = batch
    want1, want2 = assert_quadruplet_matches(labels, x)
    assert not want1.any() and not want2.any()  # one id: no negatives; every id once: no positives; all zero


@HYPOTHESIS
@given(st.integers(0, 2**31 - 1), st.integers(2, 8), st.integers(1, 4))
def test_ref_property_random_floats(seed, size, num_ids):
    assert_quadruplet_matches(*random_float_batch(seed, size, num_ids))


def test_ref_gradients_match_finite_differences():
    labels, x = gradient_batch()

    def loss(x):
        return exact_mean(ops.add(*quadruplet_hard_terms(labels, x, 0.5, 0.2)))

    value, grad = assert_gradient_matches_finite_differences(loss, x)
    assert value > 0 and np.abs(grad).max() > 0


def test_get_config_round_trip():
    assert_config_round_trip(QuadrupletHardLoss(margin1=0.7, margin2=0.1, name="quad"))


def test_bad_margin_raises_a_clear_error():
    with pytest.raises(ValueError, match="margin2"):
        QuadrupletHardLoss(margin2=-1)
