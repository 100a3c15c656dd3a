"""`sal_tf.mtmc.linking` / `tracklets` / `metrics` on hand-made tracklets: constraints, clustering, pooling, re-entries."""

import numpy as np
import pytest

from sal_tf.mtmc import linking, metrics, tracklets, transit
from sal_tf.mtmc.sources import Camera


def _tracklet(camera, track, first, last, feature, fps=10.0, offset=0.0):
    frames = np.arange(first, last + 1)
    f = np.asarray(feature, np.float32)
    return tracklets.Tracklet(
        camera, track, frames, np.tile([10.0, 10.0, 40.0, 100.0], (len(frames), 1)), np.ones(len(frames)),
        np.ones(len(frames)), f / np.linalg.norm(f), offset + (first - 1) / fps, offset + (last - 1) / fps,
    )  # fmt: skip


A, B, C = np.eye(3)


def test_constraints_never_two_places_at_once_nor_two_tracks_of_a_camera_at_once():
    ts = [
        _tracklet("c1", 1, 1, 50, A),
        _tracklet("c1", 2, 40, 90, A),  # shares frames 40-50 with track 1: two people
        _tracklet("c2", 1, 45, 60, A, offset=0.0),  # c2 at 4.4-5.9 s while c1 track 1 runs to 4.9 s: elsewhere
        _tracklet("c2", 2, 120, 150, A),  # later: may be anyone
    ]
    blocked = linking.conflicts(ts)
    assert blocked[0, 1] and blocked[0, 2] and blocked[1, 2] and not blocked[0, 3] and not blocked[1, 3]
    groups = linking.link(ts, threshold=0.5)  # identical features: only the constraints keep them apart
    assert len(groups) == 3 and [3] not in groups  # c2's later track joins one of them (all tie at distance 0)
    assert not any(blocked[i, j] for g in groups for i in g for j in g)  # never a blocked pair in one group


def test_transit_windows_minimum_and_maximum():
    windows = linking.parse_transit(["c1:c2:5:20"])
    assert windows == {("c1", "c2"): (5.0, 20.0), ("c2", "c1"): (5.0, 20.0)}
    early = [_tracklet("c1", 1, 1, 10, A), _tracklet("c2", 1, 30, 40, A)]  # 2 s after: faster than 5 s
    assert linking.conflicts(early, windows)[0, 1] and len(linking.link(early, 0.5, windows)) == 2
    on_time = [_tracklet("c1", 1, 1, 10, A), _tracklet("c2", 1, 100, 110, A)]  # 9 s after
    assert len(linking.link(on_time, 0.5, windows)) == 1
    late = [_tracklet("c1", 1, 1, 10, A), _tracklet("c2", 1, 400, 410, A)]  # 39 s after: beyond 20 s
    assert len(linking.link(late, 0.5, windows)) == 2 and len(linking.link(late, 0.5)) == 1
    for bad in ("c1:c2:5", "c1:c1:1:2", "c1:c2:9:3", "c1:c2:a:3"):
        with pytest.raises(ValueError, match="--transit"):
            linking.parse_transit([bad])
    with pytest.raises(ValueError, match=r"--transit names \['c9'\]"):
        linking.check_transit_cameras(linking.parse_transit(["c1:c9:1:2"]), ["c1", "c2"])


def test_clustering_by_appearance_within_and_across_cameras():
    noisy = lambda base, k: base + 0.05 * np.array([k, -k, k])  # noqa: E731
    ts = [
        _tracklet("c1", 1, 1, 30, noisy(A, 1)),  # person A
        _tracklet("c1", 2, 5, 40, noisy(B, 1)),  # person B, at the same time
        _tracklet("c1", 3, 60, 80, noisy(A, -1)),  # A back in camera 1 after an exit
        _tracklet("c2", 1, 150, 190, noisy(B, -1)),  # B, then A, in camera 2
        _tracklet("c2", 2, 200, 230, noisy(A, 2)),
        _tracklet("c2", 3, 210, 240, C),  # someone else
    ]
    groups = linking.link(ts, threshold=0.3)
    assert sorted(sorted(g) for g in groups) == [[0, 2, 4], [1, 3], [5]]
    assert sorted(groups[0]) == [0, 2, 4]  # groups in order of first appearance
    camera_only = linking.link(ts, threshold=0.3, across=False)
    assert sorted(sorted(g) for g in camera_only) == [[0, 2], [1], [3], [4], [5]]
    assert len(linking.link(ts, threshold=None)) == 6  # no linking
    assert len(linking.link(ts, threshold=0.3, relink_gap=1.0, across=False)) == 6  # A's exit was longer than 1 s


def test_one_pass_over_all_cameras_keeps_a_cameras_look_alikes_apart():
    """X (person A) and Y (person B) in c1 look alike (0.25 apart); c2 sees both at once, each close to its own.

    Linking within c1 first merged X and Y before c2's views could tell them apart; one pass over
    all cameras joins X to X' and Y to Y' first, and then X' and Y' (one camera, one time) keep the
    two groups apart."""
    x, y = np.array([1.0, 0.0, 0.0]), np.array([np.cos(0.7227), np.sin(0.7227), 0.0])  # cosine distance 0.25
    ts = [
        _tracklet("c1", 1, 1, 30, x),
        _tracklet("c1", 2, 40, 70, y),
        _tracklet("c2", 1, 150, 190, x + 0.02 * y),
        _tracklet("c2", 2, 150, 190, y + 0.02 * x),
    ]
    assert 1 - ts[0].feature @ ts[1].feature == pytest.approx(0.25, abs=1e-3)
    assert sorted(sorted(g) for g in linking.link(ts, threshold=0.3)) == [[0, 2], [1, 3]]
    assert sorted(sorted(g) for g in linking.link(ts, threshold=0.3, across=False)) == [[0, 1], [2], [3]]


def test_tracklets_are_linked_where_the_calibrated_probability_is_at_least_one_half():
    from sal_tf.mtmc import run

    cal = {"thresholds": [{"fmr": 0.01, "distance": 0.15}],
           "knots": {"distance": [0.1, 0.2, 0.3, 0.4], "probability": [0.9, 0.7, 0.5, 0.2]}}  # fmt: skip
    assert run.probability_distance(cal, 0.5) == 0.3 and run.probability_distance(cal, 0.95) == 0.1
    y = np.array([np.cos(0.6435), np.sin(0.6435), 0.0])  # cosine distance 0.2 from A
    ts = [_tracklet("c1", 1, 1, 30, A), _tracklet("c2", 1, 100, 130, y)]
    found, groups, threshold, how = run.link_tracklets(ts, run.Options(calibration=cal))
    assert threshold == 0.3 and how.startswith("calibration at P(same) >= 0.5") and len(groups) == 1
    found, groups, threshold, how = run.link_tracklets(ts, run.Options(calibration=cal, probability=None))
    assert threshold == 0.15 and how == "calibration at FMR 0.01" and len(groups) == 2
    assert run.link_tracklets(ts, run.Options(calibration=cal, threshold=0.1))[2] == 0.1  # --threshold wins


def test_observed_threshold_from_tracklets_of_two_cameras_at_once():
    rng = np.random.default_rng(0)
    ts = [_tracklet(f"c{k % 2}", k, 1 + 3 * k, 40 + 3 * k, rng.normal(size=8)) for k in range(40)]
    t = linking.observed_threshold(ts, fmr=0.1)
    f = np.stack([x.feature for x in ts])
    cams = np.array([x.camera for x in ts])
    pairs = np.triu(linking.conflicts(ts) & (cams[:, None] != cams[None, :]), 1)
    assert np.mean((1 - f @ f.T)[pairs] <= t) == pytest.approx(0.1, abs=0.01)
    assert linking.observed_threshold(ts[:2]) is None


def test_quality_weights_and_pooling():
    boxes = np.array([[0, 10, 20, 70], [100, 10, 140, 130], [110, 10, 150, 130], [300, 10, 340, 130]], float)
    w = tracklets.quality(boxes, np.array([0.9, 0.9, 0.9, 0.5]), (240, 320))
    assert w[0] < w[3] and w[1] < w[3] / 0.5 * 0.9  # cut by the edge (and small) / overlapping: lower
    assert w[3] == pytest.approx(0.5 * 120 / 128 * 0.5, rel=1e-3)  # at the right edge: halved
    pooled = tracklets.pooled(np.array([[1.0, 0], [0, 1.0]]), np.array([3.0, 1.0]))
    np.testing.assert_allclose(pooled, np.array([3, 1]) / np.sqrt(10), rtol=1e-6)


def test_reentries_keep_or_lose_their_id():
    cams = [Camera("c1", type("S", (), {"fps": 10.0, "length": 100})(), None, 0.0),
            Camera("c2", type("S", (), {"fps": 10.0, "length": 100})(), None, 20.0)]  # fmt: skip
    box = [10, 10, 30, 80]
    gt = {"c1": np.array([[f, 7, *box, 1, 1, 1] for f in [*range(1, 21), *range(50, 61)]], float),
          "c2": np.array([[f, 7, *box, 1, 1, 1] for f in range(1, 11)], float)}  # fmt: skip
    same_id = {c: np.array([[r[0], 3, *box, 1, -1, -1, -1] for r in gt[c]], float) for c in gt}
    kept = metrics.reentries(cams, gt, same_id)
    assert kept["same_camera"] == {"reentries": 1, "kept": 1, "share": 1.0} and kept["other_camera"]["kept"] == 1
    new_id_in_c2 = {**same_id, "c2": same_id["c2"].copy()}
    new_id_in_c2["c2"][:, 1] = 4
    lost = metrics.reentries(cams, gt, new_id_in_c2)
    assert lost["all"] == {"reentries": 2, "kept": 1, "share": 0.5}
    summary = metrics.summarize(metrics.accumulators(cams, gt, new_id_in_c2))
    assert summary["c2"]["idf1"] == 1.0 and summary["cross-camera"]["idf1"] < 1.0
    assert summary["cross-camera"]["idr"] == pytest.approx(31 / 41)


def test_a_track_that_jumps_to_another_person_is_split_and_relinked():
    rows = np.concatenate([np.tile(A, (20, 1)), np.tile(B, (15, 1))]).astype(np.float32)
    t = _tracklet("c1", 4, 1, 35, A)
    t.rows, t.crops = rows, [(1.0, 30, np.zeros((4, 2, 3), np.uint8)), (0.5, 3, np.ones((4, 2, 3), np.uint8))]
    first, second = tracklets.split(t, threshold=0.3)
    assert (first.track, second.track) == (4, 100004) and first.last == 20 and second.first == 21
    np.testing.assert_allclose(first.feature, A)
    np.testing.assert_allclose(second.feature, B)
    assert [c[1] for c in first.crops] == [3] and [c[1] for c in second.crops] == [30]
    assert second.start == pytest.approx(2.0) and first.end == pytest.approx(1.9)
    t.rows = np.tile(A, (35, 1)).astype(np.float32)
    assert tracklets.split(t, threshold=0.3) == [t]
    later = _tracklet("c1", 9, 60, 90, B)  # the second person again, after an exit
    groups = linking.link([first, second, later], threshold=0.3)
    assert sorted(sorted(g) for g in groups) == [[0], [1, 2]]


def test_by_default_a_track_that_switched_person_is_cut_before_linking():
    """A c1 track that went from A to B at a crossing: cut (× run.SPLIT_FACTOR the FMR distance), each part is then
    linked to its own person's c2 view; left whole, its mixed mean matches neither."""
    from sal_tf.mtmc import run

    switched = _tracklet("c1", 4, 1, 35, 20 * A + 15 * B)  # its pooled embedding: 0.2 from A, 0.4 from B
    switched.rows = np.concatenate([np.tile(A, (20, 1)), np.tile(B, (15, 1))]).astype(np.float32)
    ts = [switched, _tracklet("c2", 1, 100, 130, A), _tracklet("c2", 2, 100, 130, B)]
    options = dict(calibration={"thresholds": [{"fmr": 0.01, "distance": 0.15}]}, camera_centring=False)
    found, groups, _, _ = run.link_tracklets(ts, run.Options(learn_transit=False, **options))
    assert run.SPLIT_FACTOR * 0.15 < 1.0 and len(found) == 4  # A and B are 1.0 apart: a cut
    assert sorted(sorted((found[i].camera, found[i].first) for i in g) for g in groups) == [
        [("c1", 1), ("c2", 100)], [("c1", 21), ("c2", 100)]
    ]  # fmt: skip
    found, groups, _, _ = run.link_tracklets(ts, run.Options(learn_transit=False, split_factor=None, **options))
    assert len(found) == 3 and len(groups) == 3


def test_a_lost_track_taken_up_again_is_cut_and_parts_keep_unique_ids():
    t = _tracklet("c1", 7, 1, 60, A)
    t.frames = np.concatenate([np.arange(1, 31), np.arange(61, 91)])  # unseen for 3 s after frame 30
    t.rows = np.tile(A, (60, 1)).astype(np.float32)
    first, second = tracklets.split_gaps(t, seconds=2.0)
    assert (first.last, second.first) == (30, 61) and second.start == pytest.approx(6.0)
    assert tracklets.split_gaps(t, seconds=4.0) == [t]
    third = tracklets.split(second, threshold=0.3)[0]  # a part of a part: numbered like `split`'s first part
    parts = tracklets.renumbered([second, first, third, _tracklet("c2", 7, 1, 5, A)])
    assert sorted((p.camera, p.track) for p in parts) == [("c1", 7), ("c1", 100007), ("c1", 200007), ("c2", 7)]


def test_a_short_tracklet_attaches_after_the_clustering_instead_of_blocking_it():
    """s (3 boxes, in c1 while a2 is in c2) is closest to a1; clustered first, it joins a1 and then blocks a1 + a2."""
    a2_feature = np.array([np.cos(0.64), np.sin(0.64), 0.0])  # cosine distance 0.2 from A
    a1, a2 = _tracklet("c1", 1, 1, 40, A), _tracklet("c2", 1, 100, 140, a2_feature)
    s = _tracklet("c1", 2, 110, 112, A + 0.01 * C)
    assert linking.conflicts([a1, a2, s])[1, 2]
    assert sorted(sorted(g) for g in linking.link([a1, a2, s], 0.3, min_boxes=1)) == [[0, 2], [1]]
    assert sorted(sorted(g) for g in linking.link([a1, a2, s], 0.3)) == [[0, 1], [2]]
    far = _tracklet("c3", 1, 300, 302, C)
    assert sorted(sorted(g) for g in linking.link([a1, a2, far], 0.3)) == [[0, 1], [2]]  # too far: alone
    near = _tracklet("c3", 1, 300, 302, A)
    assert sorted(sorted(g) for g in linking.link([a1, a2, near], 0.3)) == [[0, 1, 2]]


def test_transit_times_learned_from_confident_links_uncross_two_look_alikes():
    """Six people walk c1 → c2 in 3 s and look like nobody else: their links teach the transit. P and Q look alike:
    each one's c1 view is closer to the other's c2 view (0.15) than to their own (0.25), so plain average linkage
    crosses them (P in c1 with Q in c2, 23 s later); with the learned transits P_c1 → P_c2 (3 s) is the likely
    link, P_c1 → Q_c2 (23 s) an unlikely one, and the second clustering joins each to themselves."""
    a, b, c = 0.85, 0.75, 0.62  # cosines: crossed, own, the two people in one camera
    gram = np.array([[1, b, c, a], [b, 1, a, c], [c, a, 1, b], [a, c, b, 1]])  # P_c1, P_c2, Q_c1, Q_c2
    values, vectors = np.linalg.eigh(gram)
    look_alike = np.zeros((4, 11))
    look_alike[:, :4] = vectors * np.sqrt(np.clip(values, 0, None))
    frame = lambda seconds: int(round(seconds * 10)) + 1  # noqa: E731
    spans = [("c1", 10, 15), ("c2", 18, 23), ("c1", 30, 35), ("c2", 38, 43)]
    ts = [_tracklet(cam, k + 1, frame(s), frame(e), look_alike[k]) for k, (cam, s, e) in enumerate(spans)]
    for person in range(6):  # the confident ones: c1 for 5 s, 3 s to c2, c2 for 5 s
        feature, t0 = np.eye(11)[4 + person], 50 + 12 * person
        ts += [_tracklet("c1", 10 + person, frame(t0), frame(t0 + 5), feature),
               _tracklet("c2", 10 + person, frame(t0 + 8), frame(t0 + 13), feature)]  # fmt: skip
    # R (index 16) seen in c1 only; a 5-box s (17) in c2 3 s later, a little closer to person 0 (0.26) than to R
    ts += [_tracklet("c1", 20, frame(122), frame(127), np.eye(11)[10]),
           _tracklet("c2", 20, frame(130), frame(130.4), 1.1 * np.eye(11)[4] + np.eye(11)[10])]  # fmt: skip
    plain = sorted(sorted(g) for g in linking.link(ts, 0.3))
    assert [0, 3] in plain and [1, 2] in plain  # crossed: P_c1 with Q_c2
    assert [4, 5, 17] in plain  # s attached to person 0, 67 s after they left c2
    learning = transit.Learning(confident=0.1, scale=0.08)
    learned = sorted(sorted(g) for g in linking.link(ts, 0.3, learning=learning))
    assert [0, 1] in learned and [2, 3] in learned and [16, 17] in learned and len(learned) == 9
    model = transit.Model(ts, [[0, 3], [1, 2]] + [[4 + 2 * k, 5 + 2 * k] for k in range(6)] + [[16], [17]],
                          1.0 - np.stack([t.feature for t in ts]) @ np.stack([t.feature for t in ts]).T,
                          linking.conflicts(ts), learning)  # fmt: skip
    assert model.samples == 6  # the crossed links (0.15 apart) are not confident: never samples
    assert model.log_ratio(0, 1) > np.log(5)  # 3 s: the learned transit (clipped at log MAX_RATIO)
    assert model.log_ratio(0, 3) < -1.0  # 23 s: nobody took that long
    assert linking.link(ts, 0.3, learning=learning, across=False) == linking.link(ts, 0.3, across=False)


def test_transit_scales_from_a_calibration_or_the_observed_pairs():
    distance = np.linspace(0.0, 1.0, 101)
    calibration = {
        "knots": {"distance": distance.tolist(), "probability": (1 / (1 + np.exp(10 * (distance - 0.4)))).tolist()}
    }
    assert transit.log_odds_scale(calibration) == pytest.approx(0.1, rel=1e-3)  # logit P falls 10 per unit distance
    assert (
        transit.log_odds_scale(None) is None
        and transit.log_odds_scale({"knots": {"distance": [0.1], "probability": [0.5]}}) is None
    )
    assert transit.observed_scale(np.linspace(0, 1, 10001)) == pytest.approx(0.09 / np.log(10), rel=1e-2)
    assert transit.observed_scale([0.5]) is None


def test_gray_world_removes_a_cameras_colour_cast():
    rng = np.random.default_rng(0)
    scene = rng.uniform(40, 200, (2, 30, 40, 3))
    warm = np.clip(scene * [1.25, 1.0, 0.75], 0, 255).astype(np.uint8)
    cool = np.clip(scene * [0.8, 1.0, 1.2], 0, 255).astype(np.uint8)
    fixed = [tracklets.balanced(f, tracklets.gray_world(f[None])) for f in (warm[0], cool[0])]
    for f in fixed:
        np.testing.assert_allclose(f.reshape(-1, 3).mean(0), tracklets.GREY_LEVEL, atol=1.5)
    assert np.abs(fixed[0].astype(float) - fixed[1]).mean() < 0.2 * np.abs(warm[0].astype(float) - cool[0]).mean()


def test_a_camera_without_ground_truth_has_no_rates_instead_of_nan():
    from sal_tf.tracking import metrics as single

    empty = np.zeros((0, 10))
    (row,) = metrics.summarize({"c9": single.accumulate(empty, empty, 5)}).values()
    assert row["idf1"] is None and row["mota"] is None and row["id_switches"] == 0 and row["ground_truth_ids"] == 0
