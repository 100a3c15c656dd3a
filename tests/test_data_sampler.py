"""Sample-order logic of the train pipeline (pure numpy): P×K and shuffled epochs."""

import collections

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from sal_tf.data.samplers import pk_epoch_indices, pk_steps_per_epoch, random_epoch_indices

SETTINGS = settings(max_examples=60, deadline=None, derandomize=True)


@st.composite
def pk_cases(draw):
    """(labels, P, K, R, seed, epoch): ids with 1..9 images each, shuffled, arbitrary id values."""
    replicas = draw(st.sampled_from([1, 2, 3]))
    p = replicas * draw(st.integers(1, 4))
    k = draw(st.integers(1, 5))
    counts = draw(st.lists(st.integers(1, 9), min_size=p, max_size=p + 12))
    ids = draw(st.lists(st.integers(-5, 10_000), min_size=len(counts), max_size=len(counts), unique=True))
    labels = np.repeat(ids, counts)
    labels = labels[np.random.default_rng(draw(st.integers(0, 99))).permutation(len(labels))]
    return labels, p, k, replicas, draw(st.integers(0, 2**31)), draw(st.integers(0, 500))


@SETTINGS
@given(pk_cases())
def test_pk_batches_hold_p_distinct_ids_times_k_and_whole_ids_per_replica(case):
    labels, p, k, replicas, seed, epoch = case
    batches = pk_epoch_indices(labels, p * k, k, seed, epoch, num_replicas=replicas)
    assert batches.shape == (pk_steps_per_epoch(labels, p * k, k, replicas), p * k)
    assert batches.min() >= 0 and batches.max() < len(labels)
    per_slice = p * k // replicas
    for batch in batches:
        blocks = labels[batch].reshape(p, k)
        assert (blocks == blocks[:, :1]).all()  # K contiguous images of one id
        assert len(set(blocks[:, 0])) == p  # P distinct ids
        slice_ids = [set(labels[batch[r * per_slice : (r + 1) * per_slice]]) for r in range(replicas)]
        assert all(len(s) == p // replicas for s in slice_ids)  # whole ids per replica slice
        assert len(set().union(*slice_ids)) == p


@SETTINGS
@given(pk_cases())
def test_pk_epoch_visits_every_id_and_spreads_images(case):
    labels, p, k, replicas, seed, epoch = case
    batches = pk_epoch_indices(labels, p * k, k, seed, epoch, num_replicas=replicas)
    ids = np.unique(labels)
    rounds = max(1, int(np.floor(len(labels) / (len(ids) * k) + 0.5)))
    assert len(batches) == rounds * -(-len(ids) // p)
    visits = collections.Counter(labels[batches[:, ::k].ravel()])
    assert set(visits) == set(ids) and min(visits.values()) >= rounds
    # Each pass tops up at most P-1 ids: total visits = batches·P.
    assert sum(visits.values()) == len(batches) * p
    uses = collections.Counter(batches.ravel().tolist())
    for pid in ids:
        members = np.flatnonzero(labels == pid)
        counts = np.array([uses.get(i, 0) for i in members])
        if len(members) >= k:
            assert counts.max() - counts.min() <= 1  # cycles through an id's images
            for batch in batches:  # no image twice in one K-block
                block = [i for i in batch if labels[i] == pid]
                assert len(block) in (0, k) and len(set(block)) == len(block)
        else:
            assert counts.min() >= 1  # every image of a small id is used


@SETTINGS
@given(pk_cases())
def test_pk_is_deterministic_per_seed_and_epoch(case):
    labels, p, k, replicas, seed, epoch = case
    first = pk_epoch_indices(labels, p * k, k, seed, epoch, num_replicas=replicas)
    np.testing.assert_array_equal(first, pk_epoch_indices(labels, p * k, k, seed, epoch, num_replicas=replicas))
    assume(len(np.unique(labels)) >= 8)  # enough orderings that a repeat is (practically) impossible
    assert not np.array_equal(first, pk_epoch_indices(labels, p * k, k, seed, epoch + 1, num_replicas=replicas))
    assert not np.array_equal(first, pk_epoch_indices(labels, p * k, k, seed + 1, epoch, num_replicas=replicas))


def test_pk_small_ids_use_all_images_then_replacement():
    labels = np.array([5] * 2 + [6] * 10 + [7] * 10)
    batches = pk_epoch_indices(labels, 8, 4, seed=3, epoch=0)
    for batch in batches:
        block = [i for i in batch if labels[i] == 5]
        if block:
            assert sorted(set(block)) == [0, 1] and len(block) == 4


def test_pk_rejects_bad_layouts_with_the_numbers():
    labels = np.repeat(np.arange(10), 4)
    with pytest.raises(ValueError, match=r"P=18 .*num_replicas=4"):
        pk_epoch_indices(np.repeat(np.arange(40), 4), 72, 4, num_replicas=4)
    with pytest.raises(ValueError, match=r"batch_size=10 .*num_instances=4"):
        pk_epoch_indices(labels, 10, 4)
    with pytest.raises(ValueError, match=r"P=12 .*only 10"):
        pk_epoch_indices(labels, 48, 4)
    with pytest.raises(ValueError, match="seed and epoch"):
        pk_epoch_indices(labels, 8, 4, seed=-1)


@SETTINGS
@given(st.integers(1, 300), st.integers(1, 64), st.integers(0, 1000), st.integers(0, 1000))
def test_random_epoch_is_a_shuffled_prefix_without_repeats(n, batch, seed, epoch):
    if n < batch:
        with pytest.raises(ValueError, match=f"batch_size={batch}"):
            random_epoch_indices(n, batch, seed, epoch)
        return
    order = random_epoch_indices(n, batch, seed, epoch)
    assert order.shape == (n // batch, batch)
    assert len(set(order.ravel().tolist())) == order.size and order.max() < n
    np.testing.assert_array_equal(order, random_epoch_indices(n, batch, seed, epoch))
    if n >= 20:
        assert not np.array_equal(order, random_epoch_indices(n, batch, seed, epoch + 1))


def test_pk_cycles_stay_balanced_when_k_does_not_divide_an_ids_images():
    """Hypothesis found it: 3 images, K = 2 — the next cycle used to start with an image just used."""
    labels = np.array([1, -2, 1, -2, 0, -1, -2, 2, -2, -2, -2, -2, -2, -2, 1])
    for seed in range(20):
        batches = pk_epoch_indices(labels, 4, 2, seed, 0)
        uses = collections.Counter(batches.ravel().tolist())
        for pid in np.unique(labels):
            members = np.flatnonzero(labels == pid)
            counts = np.array([uses.get(i, 0) for i in members])
            if len(members) >= 2:
                assert counts.max() - counts.min() <= 1, (seed, pid, counts)
