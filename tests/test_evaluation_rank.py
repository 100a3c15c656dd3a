"""evaluate_rank: hand-computed cases, each protocol convention, and a per-query reference."""

import numpy as np
import pytest

from sal_tf.evaluation import RankResult, evaluate_rank, format_rank_table


# --------------------------------------------------------------------------- reference
def reference_eval(distmat, q_pids, g_pids, q_camids, g_camids, max_rank=50, official=False):
    """Per-query loop in the style of torchreid `eval_market1501` / fast-reid `evaluate_py`
    (stable sort, junk removed), plus a transliteration of Market's `compute_AP.m`."""
    indices = np.argsort(distmat, axis=1, kind="stable")
    all_cmc, all_ap, all_inp = [], [], []
    for q in range(distmat.shape[0]):
        order = indices[q]
        remove = (g_pids[order] == q_pids[q]) & (g_camids[order] == q_camids[q])
        remove |= g_pids[order] == -1
        raw = (g_pids[order] == q_pids[q])[~remove].astype(np.int32)
        if not raw.any():
            continue
        cmc = raw.cumsum()
        cmc[cmc > 1] = 1
        cmc = np.concatenate([cmc, np.ones(max(0, max_rank - len(cmc)), np.int32)])[:max_rank]
        all_cmc.append(cmc)
        num_rel = raw.sum()
        if official:
            old_recall, old_precision, ap, hits, j = 0.0, 1.0, 0.0, 0, 0
            for n in range(len(order)):
                if remove[n]:
                    continue  # junk image
                if g_pids[order[n]] == q_pids[q]:
                    hits += 1
                recall = hits / num_rel
                precision = hits / (j + 1)
                ap += (recall - old_recall) * ((old_precision + precision) / 2)
                old_recall, old_precision = recall, precision
                j += 1
                if hits == num_rel:
                    break
        else:
            tmp = raw.cumsum() / (np.arange(len(raw)) + 1.0) * raw
            ap = tmp.sum() / num_rel
        all_ap.append(ap)
        last = np.where(raw == 1)[0].max()
        all_inp.append(raw.cumsum()[last] / (last + 1.0))
    cmc = np.asarray(all_cmc, np.float64).sum(0) / len(all_cmc)
    return cmc, np.mean(all_ap), np.mean(all_inp), np.asarray(all_ap), np.asarray(all_inp)


def _ev(d, qp, gp, qc, gc, **kw):
    return evaluate_rank(
        np.asarray(d, np.float32), np.asarray(qp), np.asarray(gp), np.asarray(qc), np.asarray(gc), **kw
    )


# ----------------------------------------------------------------- hand-computed case
# One query (pid 1, camera 0). Gallery, with the sorted order by distance:
#   g1 pid 1 cam 0  d .05  -> removed (same pid, same camera)
#   g0 pid 2 cam 0  d .10  -> negative (same camera, other pid: kept)
#   g3 pid -1       d .15  -> removed (junk)
#   g2 pid 1 cam 1  d .20  -> hit
#   g4 pid 0 cam 1  d .30  -> negative (distractor)
#   g5 pid 1 cam 2  d .40  -> hit
# Remaining list: [neg, hit, neg, hit]; hits at 0-based positions 1 and 3.
HAND = dict(
    d=[[0.10, 0.05, 0.20, 0.15, 0.30, 0.40]],
    qp=[1],
    gp=[2, 1, 1, -1, 0, 1],
    qc=[0],
    gc=[0, 0, 1, 1, 1, 2],
)


def test_hand_computed_ap_cmc_inp():
    r = _ev(**HAND, max_rank=5)
    assert r.num_valid_queries == 1
    np.testing.assert_allclose(r.cmc, [0, 1, 1, 1, 1])
    assert r.mAP == pytest.approx(0.5 * (1 / 2 + 2 / 4))  # 0.5
    assert r.mINP == pytest.approx(2 / 4)
    np.testing.assert_allclose(r.all_AP, [0.5])
    np.testing.assert_allclose(r.all_INP, [0.5])


def test_hand_computed_official_ap():
    # hit 1 at n=1: p=1/2, old=0/1 -> 1/4; hit 2 at n=3: p=2/4, old=1/3 -> 5/12; /2 hits.
    r = _ev(**HAND, ap="official")
    assert r.mAP == pytest.approx(0.5 * (1 / 4 + 5 / 12))  # 1/3
    assert r.ap == "official"
    # a perfect list reads 1.0 in both conventions
    perfect = _ev([[0.1, 0.2, 0.9]], [1], [1, 1, 2], [0], [1, 2, 1], ap="official")
    assert perfect.mAP == pytest.approx(1.0)


def test_same_id_same_camera_removed_but_same_camera_other_id_kept():
    # If g1 (same pid, same cam, ranked first) were kept, Rank-1 would be 1.
    # If g0 (same cam, other pid) were dropped, the first hit would be at position 0.
    r = _ev(**HAND)
    assert r.cmc[0] == 0.0 and r.cmc[1] == 1.0


def test_junk_removed_and_distractor_is_a_negative():
    r = _ev(**HAND)
    # junk kept   -> hits at 2 and 4: AP = (1/3 + 2/5) / 2
    # pid 0 dropped -> hits at 1 and 2: AP = (1/2 + 2/3) / 2
    assert r.mAP == pytest.approx(0.5)
    assert r.mAP != pytest.approx((1 / 3 + 2 / 5) / 2)
    assert r.mAP != pytest.approx((1 / 2 + 2 / 3) / 2)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_ties_broken_by_lower_gallery_index(dtype):
    # Equal distances: the lower gallery index ranks first.
    d = np.array([[0.5, 0.5, 0.9]], dtype)
    miss_first = evaluate_rank(d, np.array([1]), np.array([2, 1, 3]), np.array([0]), np.array([1, 1, 1]))
    hit_first = evaluate_rank(d, np.array([1]), np.array([1, 2, 3]), np.array([0]), np.array([1, 1, 1]))
    assert miss_first.cmc[0] == 0.0 and miss_first.mAP == pytest.approx(0.5)
    assert hit_first.cmc[0] == 1.0 and hit_first.mAP == pytest.approx(1.0)


def test_negative_zero_ties_with_zero():
    # -0.0 == +0.0: the tie goes to the lower index (a bit-pattern sort would not).
    d = np.array([[0.0, -0.0, 1.0]], np.float32)
    r = evaluate_rank(d, np.array([1]), np.array([2, 1, 3]), np.array([0]), np.array([1, 1, 1]))
    assert r.cmc[0] == 0.0


def test_query_without_match_is_skipped():
    # Query 1 (pid 7) only has a same-camera gallery image: skipped, not counted as 0.
    d = np.vstack([HAND["d"][0], [0.3, 0.1, 0.2, 0.4, 0.5, 0.6]])
    gp = [2, 1, 1, -1, 0, 7]
    gc = [0, 0, 1, 1, 1, 3]
    r = _ev(d, [1, 7], gp, [0, 3], gc)
    assert r.num_valid_queries == 1
    np.testing.assert_array_equal(r.valid, [True, False])
    # with pid 7 gone from g5, query 0 has a single hit at position 1: AP 1/2
    assert r.mAP == pytest.approx(0.5) and r.cmc[0] == 0.0


def test_no_valid_query_raises():
    with pytest.raises(ValueError, match="No valid query"):
        _ev([[0.1, 0.2]], [1], [1, 2], [0], [0, 1])
    with pytest.raises(ValueError, match="No valid query"):
        _ev([[0.1, 0.2]], [-1], [-1, 2], [0], [1, 1])  # junk never matches


def test_fewer_gallery_items_than_max_rank():
    r = _ev(**HAND, max_rank=50)
    assert r.cmc.shape == (50,)
    assert r.cmc[0] == 0.0 and np.all(r.cmc[1:] == 1.0)


def test_cmc_is_first_match_position():
    # first match at 0-based position k -> cmc[:k] == 0, cmc[k:] == 1 (a single query)
    for k in range(4):
        gp = [9] * 4
        gp[k] = 1
        d = [[0.1, 0.2, 0.3, 0.4]]
        r = _ev(d, [1], gp, [0], [1, 1, 1, 1], max_rank=4)
        np.testing.assert_array_equal(r.cmc, [0.0] * k + [1.0] * (4 - k))
        assert r.mINP == pytest.approx(1 / (k + 1))


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_matches_per_query_reference_with_ties(seed, dtype):
    rng = np.random.default_rng(seed)
    nq, ng = rng.integers(10, 40), rng.integers(20, 80)
    d = rng.integers(0, 6, size=(nq, ng)).astype(dtype)  # many ties
    q_pids = rng.integers(0, 6, nq)
    g_pids = rng.integers(-1, 6, ng)
    q_cams = rng.integers(0, 3, nq)
    g_cams = rng.integers(0, 3, ng)
    for official in (False, True):
        ref = reference_eval(d, q_pids, g_pids, q_cams, g_cams, 20, official)
        got = evaluate_rank(
            d,
            q_pids,
            g_pids,
            q_cams,
            g_cams,
            max_rank=20,
            ap="official" if official else "noninterpolated",
            block_size=int(rng.integers(1, 8)),
        )
        np.testing.assert_allclose(got.cmc, ref[0], rtol=0, atol=1e-12)
        assert got.mAP == pytest.approx(ref[1], abs=1e-12)
        assert got.mINP == pytest.approx(ref[2], abs=1e-12)
        np.testing.assert_allclose(got.all_AP, ref[3], atol=1e-12)
        np.testing.assert_allclose(got.all_INP, ref[4], atol=1e-12)
        assert got.num_valid_queries == len(ref[3])


def test_official_ap_reads_lower_on_a_realistic_case():
    rng = np.random.default_rng(0)
    nq, ng, nid = 60, 400, 30
    g_pids = rng.integers(1, nid, ng)
    q_pids = rng.integers(1, nid, nq)
    centers = rng.standard_normal((nid, 16))
    qf = centers[q_pids] + rng.standard_normal((nq, 16))
    gf = centers[g_pids] + rng.standard_normal((ng, 16))
    d = np.linalg.norm(qf[:, None] - gf[None], axis=-1).astype(np.float32)
    args = (d, q_pids, g_pids, rng.integers(0, 6, nq), rng.integers(0, 6, ng))
    a, b = evaluate_rank(*args), evaluate_rank(*args, ap="official")
    assert 0 < a.mAP - b.mAP < 0.05
    np.testing.assert_array_equal(a.cmc, b.cmc)


def test_result_dict_and_table():
    r = _ev(**HAND, max_rank=10)
    assert isinstance(r, RankResult)
    d = r.to_dict()
    assert d == {"mAP": 0.5, "mINP": 0.5, "rank1": 0.0, "rank5": 1.0, "rank10": 1.0, "num_valid_queries": 1}
    table = format_rank_table(r, name="market1501")
    lines = table.splitlines()
    assert len(lines) == 3
    assert [c.strip() for c in lines[0].strip("|").split("|")] == [
        "dataset",
        "mAP",
        "mINP",
        "Rank-1",
        "Rank-5",
        "Rank-10",
    ]
    assert [c.strip() for c in lines[2].strip("|").split("|")] == [
        "market1501",
        "50.00",
        "50.00",
        "0.00",
        "100.00",
        "100.00",
    ]


def test_bad_input_is_rejected():
    d = np.zeros((2, 3), np.float32)
    ok = dict(q_pids=[1, 2], g_pids=[1, 2, 3], q_camids=[0, 0], g_camids=[1, 1, 1])
    with pytest.raises(ValueError, match="g_pids"):
        evaluate_rank(d, **{**ok, "g_pids": [1, 2]})
    with pytest.raises(ValueError, match="q_camids"):
        evaluate_rank(d, **{**ok, "q_camids": [0.5, 1.0]})
    with pytest.raises(ValueError, match="distmat"):
        evaluate_rank(np.zeros(3), **ok)
    with pytest.raises(ValueError, match="NaN"):
        evaluate_rank(np.full((2, 3), np.nan, np.float32), **ok)
    with pytest.raises(ValueError, match="ap"):
        evaluate_rank(d, **ok, ap="interpolated")
    with pytest.raises(ValueError, match="max_rank"):
        evaluate_rank(d, **ok, max_rank=0)


# ------------------------------------------------- sort-free (count) vs sorted (reference)
def _random_case(rng, dtype, nq=None, ng=None):
    """Labels with junk, distractors, same-camera matches and queries without a match;
    distances with many exact ties (and ±0.0)."""
    nq = nq or int(rng.integers(5, 60))
    ng = ng or int(rng.integers(1, 120))
    d = rng.integers(0, 5, size=(nq, ng)).astype(dtype) * rng.choice([-1, 1], size=(nq, ng)).astype(dtype)
    q_pids = rng.integers(-1, 8, nq)
    g_pids = rng.integers(-1, 8, ng)
    q_cams = rng.integers(0, 3, nq)
    g_cams = rng.integers(0, 3, ng)
    return d, q_pids, g_pids, q_cams, g_cams


def _assert_same(a, b):
    np.testing.assert_array_equal(a.all_AP, b.all_AP)  # bit for bit, not approx
    np.testing.assert_array_equal(a.all_INP, b.all_INP)
    np.testing.assert_array_equal(a.cmc, b.cmc)
    np.testing.assert_array_equal(a.valid, b.valid)
    assert (a.mAP, a.mINP, a.num_valid_queries) == (b.mAP, b.mINP, b.num_valid_queries)


@pytest.mark.parametrize("seed", range(20))
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16, np.int32])
def test_count_equals_sort_bit_for_bit(seed, dtype):
    rng = np.random.default_rng(seed)
    args = _random_case(rng, dtype)
    for ap in ("noninterpolated", "official"):
        kw = dict(max_rank=int(rng.integers(1, 30)), ap=ap)
        try:
            ref = evaluate_rank(*args, method="sort", **kw)
        except ValueError as err:  # no valid query: both must say so
            assert "No valid query" in str(err)
            with pytest.raises(ValueError, match="No valid query"):
                evaluate_rank(*args, method="count", **kw)
            continue
        _assert_same(evaluate_rank(*args, method="count", **kw), ref)
        _assert_same(evaluate_rank(*args, method="count", block_size=int(rng.integers(1, 9)), **kw), ref)


def test_count_path_positions_equal_sort_path_on_a_realistic_case():
    from sal_tf.evaluation.rank import sorted_block_hits
    from sal_tf.evaluation.rank_count import HitCounter

    rng = np.random.default_rng(5)
    nq, ng, nid = 200, 3000, 120
    q_pids, g_pids = rng.integers(1, nid, nq), rng.integers(-1, nid, ng)
    q_cams, g_cams = rng.integers(0, 6, nq), rng.integers(0, 6, ng)
    centers = rng.standard_normal((nid, 8))
    d = np.linalg.norm(centers[q_pids][:, None] - centers[np.abs(g_pids)][None], axis=-1)
    d = np.round(d + 0.5 * rng.random((nq, ng)), 2).astype(np.float32)  # ties at 0.01 steps
    r_sort, pos_sort, _ = sorted_block_hits(d, q_pids, g_pids, q_cams, g_cams)
    for threads in (1, 3):
        r, pos, bad = HitCounter(g_pids, g_cams, threads=threads).positions(d, q_pids, q_cams)
        assert bad == -1
        np.testing.assert_array_equal(r, r_sort)
        np.testing.assert_array_equal(pos, pos_sort)


def test_count_path_conventions_on_the_hand_case():
    for method in ("count", "sort"):
        r = _ev(**HAND, max_rank=5, method=method)
        np.testing.assert_allclose(r.cmc, [0, 1, 1, 1, 1])
        assert r.mAP == pytest.approx(0.5) and r.mINP == pytest.approx(0.5)


@pytest.mark.parametrize("method", ["count", "sort"])
def test_nan_is_reported_with_its_row(method):
    d = np.ones((4, 5), np.float32)
    d[2, 3] = np.nan
    args = ([1, 2, 3, 9], [1, 2, 3, 4, 5], [0, 0, 0, 0], [1, 1, 1, 1, 1])  # query 3: no match
    with pytest.raises(ValueError, match="NaN \\(first in query row 2\\)"):
        evaluate_rank(d, *(np.asarray(a) for a in args), method=method)
    d[2, 3] = 1.0
    d[3, 0] = np.nan  # the row without a match is checked too
    with pytest.raises(ValueError, match="row 3"):
        evaluate_rank(d, *(np.asarray(a) for a in args), method=method)


def test_unknown_method_is_rejected():
    with pytest.raises(ValueError, match="method"):
        _ev(**HAND, method="heap")
