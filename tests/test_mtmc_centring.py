"""`sal_tf.mtmc.centring`: each camera's mean embedding taken out before linking, distances scaled by its factor."""

import numpy as np
import pytest

from sal_tf.mtmc import centring, run, tracklets


def _tracklet(camera, track, first, last, feature, fps=10.0):
    frames = np.arange(first, last + 1)
    f = np.asarray(feature, np.float32)
    return tracklets.Tracklet(
        camera, track, frames, np.tile([10.0, 10.0, 40.0, 100.0], (len(frames), 1)), np.ones(len(frames)),
        np.ones(len(frames)), f / np.linalg.norm(f), (first - 1) / fps, (last - 1) / fps,
    )  # fmt: skip


def _cast_cameras(rng, people=4, dim=12, cast=1.2):
    """Each person once in c1 (frames 1-50) and once in c2 (frames 101-150), every camera's features moved by
    its own strong cast: raw, a person is nearer to the other people of its camera than to itself elsewhere."""
    identity, casts = rng.normal(size=(people, dim)), rng.normal(size=(2, dim))
    identity /= np.linalg.norm(identity, axis=1, keepdims=True)
    casts *= cast / np.linalg.norm(casts, axis=1, keepdims=True)
    return [
        _tracklet(f"c{c + 1}", p + 1, 1 + 100 * c, 50 + 100 * c, identity[p] + casts[c] + 0.05 * rng.normal(size=dim))
        for c in range(2)
        for p in range(people)
    ]


def test_centring_takes_out_each_cameras_cast_and_scales_distances_by_its_factor():
    rng = np.random.default_rng(0)
    ts = _cast_cameras(rng, people=30)
    raw = np.stack([t.feature for t in ts]).astype(np.float64)
    centred, factor = centring.camera_centred(ts)
    g = np.stack([t.feature for t in centred]).astype(np.float64)
    np.testing.assert_allclose(np.linalg.norm(g, axis=1), 1.0, rtol=1e-5)
    same_person = np.array([1 - g[p] @ g[30 + p] for p in range(30)])
    other = np.array([1 - g[p] @ g[30 + (p + 1) % 30] for p in range(30)])
    assert same_person.max() < other.min()  # across cameras, each person nearest to itself once the casts are out
    one_camera = np.triu_indices(30, 1)  # within a camera the ratio of centred to raw distances is about the factor
    ratio = (1 - g[:30] @ g[:30].T)[one_camera] / (1 - raw[:30] @ raw[:30].T)[one_camera]
    assert factor > 1.5 and np.median(ratio) == pytest.approx(factor, rel=0.1)
    assert [t.rows for t in centred] == [t.rows for t in ts] and centring.camera_centred([]) == ([], 1.0)


def test_linking_on_centred_features_follows_people_across_cameras():
    ts = _cast_cameras(np.random.default_rng(1))
    options = dict(calibration={"thresholds": [{"fmr": 0.01, "distance": 0.3}]}, learn_transit=False)
    found, groups, threshold, how = run.link_tracklets(ts, run.Options(**options))
    assert sorted(sorted(g) for g in groups) == [[p, 4 + p] for p in range(4)]  # each person one id in c1 and c2
    assert threshold > 0.3 and how.startswith("calibration at FMR 0.01 x ") and found[0].feature is ts[0].feature
    _, raw_groups, raw_threshold, _ = run.link_tracklets(ts, run.Options(camera_centring=False, **options))
    assert raw_threshold == 0.3 and len(raw_groups) == 8  # the casts keep every view apart
