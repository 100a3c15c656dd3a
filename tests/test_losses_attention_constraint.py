"""sal_tf.losses.attention_constraint (SAC) against the brute-force float64 reference `ref_sac`
(`tests/loss_references.py`): values, S = 2 maps, gradients, config, input checks."""

import numpy as np
import pytest

from sal_tf.losses import SelfAttentionConstraint, self_attention_constraint_terms
from tests.loss_references import (
    ATOL,
    assert_config_round_trip,
    assert_gradient_matches_finite_differences,
    exact_mean,
    ref_sac,
    to_numpy,
)


def test_ref_self_attention_constraint():
    rng = np.random.default_rng(3)
    att = np.abs(rng.standard_normal((5, 3, 32))).astype(np.float32)
    att /= np.linalg.norm(att, axis=-1, keepdims=True)
    want = ref_sac(att)
    np.testing.assert_allclose(to_numpy(self_attention_constraint_terms(att)), want, atol=ATOL)
    for y_true in (None, np.zeros(5), "ignored"):
        np.testing.assert_allclose(float(SelfAttentionConstraint()(y_true, att)), want.mean(), atol=ATOL)
    same = np.repeat(att[:, :1], 3, axis=1)
    assert float(SelfAttentionConstraint()(None, same)) == 0.0


def test_ref_sac_gradient_matches_finite_differences():
    rng = np.random.default_rng(8)
    att = rng.standard_normal((2, 3, 5))
    assert_gradient_matches_finite_differences(lambda a: exact_mean(self_attention_constraint_terms(a)), att)


def test_sac_with_two_stage_maps_is_the_stage5_to_stage4_distance():
    """A model without stage6 has S = 2 maps: the deepest (stage5) guides stage4."""
    rng = np.random.default_rng(5)
    att = rng.random((4, 2, 12)).astype(np.float32)
    att /= np.linalg.norm(att, axis=-1, keepdims=True)
    expected = np.sum((att[:, 1] - att[:, 0]) ** 2, axis=-1)
    np.testing.assert_allclose(to_numpy(self_attention_constraint_terms(att)), expected, rtol=1e-5, atol=ATOL)
    with pytest.raises(ValueError, match="S >= 2"):
        self_attention_constraint_terms(att[:, :1])


def test_get_config_round_trip():
    assert_config_round_trip(SelfAttentionConstraint(name="sac"))


def test_bad_attention_shape_raises_a_clear_error():
    with pytest.raises(ValueError, match=r"attention.*\[B, S, HW\]"):
        self_attention_constraint_terms(np.zeros((2, 1, 4), np.float32))
