"""Evaluation and re-ranking speed / peak memory: one JSON line per case, then a summary.

Synthetic cases with the sizes of the real sets; 1024-d L2-normalised features clustered
by id (so there are real matches), 6 cameras:

* `market`: 3,368 queries (751 ids); gallery 15,913 (13,115 of the 751 ids + 2,798
  distractors, pid 0) + 3,819 junk (pid −1).
* `msmt`: MSMT17's test split, 11,659 queries × 82,161 gallery, 3,060 ids.
* `60k`: Market's queries, a 56,632 gallery (2,674 ids, 9,932 distractors), 60,000 in all.

Cases (each in its own subprocess, so peak RSS (`ru_maxrss`) does not mix; `rss_before_mib`
is the child's RSS after imports and data generation, before the timed call):

* `evaluate`: `evaluate_rank` on the Market q×g (junk included) matrix, the sort-free
  path (`method="count"`) and the sorted path (`method="sort"`) interleaved in one
  process, `--repeats` times each (median; the kernel is compiled/loaded before); checks
  they are bit-for-bit equal.
* `evaluate_baseline`: the classic per-query Python loop (torchreid `eval_market1501`,
  plus junk removal and fast-reid's mINP) on the same matrix.
* `evaluate_msmt`: `evaluate_features` (blockwise, default memory limit) on the MSMT17-sized
  case; then the same blocks again with the distance products and the ranking timed apart. `evaluate_msmt_sort`: the same with
  `method="sort"` (not run by default).
* `rerank:<size>:<knn_mode>`: `re_rank_features` (junk dropped, as torchreid's loaders do);
  sizes 20k (Market), 60k, 94k (MSMT17); knn_mode exact (the default, = auto) / ivf
  (approximate) / dense / flat. `mAP_before` etc. are the scores without re-ranking.
* `rerank_baseline`: the classic dense N×N re-ranking (`sal_tf.evaluation.rerank_classic`,
  torchreid's `utils/rerank.py`) at 20k (~9 GiB; not run by default).

The machine is shared, so compare figures within one run (the ratios).

    python -m benchmarks.evaluation [--quick] [--cases evaluate,evaluate_msmt,rerank:94k:exact,rerank:94k:ivf]
"""

import json
import os
import resource
import subprocess
import sys
import time

import numpy as np
from absl import app, flags

DEFAULT_CASES = [
    "evaluate",
    "evaluate_baseline",
    "evaluate_msmt",
    "rerank:20k:exact",
    "rerank:20k:ivf",
    "rerank:60k:exact",
    "rerank:60k:ivf",
    "rerank:94k:exact",
    "rerank:94k:ivf",
]
flags.DEFINE_bool("quick", False, "Sizes / 10 and 128-d features, for a smoke run.")
flags.DEFINE_list("cases", DEFAULT_CASES, "Cases to run (see the module docstring).")
flags.DEFINE_integer("repeats", 5, "Timed repeats of each method in `evaluate`.")
flags.DEFINE_string("child", None, "Internal: run one case in this process.")
FLAGS = flags.FLAGS

PRESETS = {
    "market": dict(num_query=3368, query_ids=751, num_ids=751, num_labeled=13115, num_distractors=2798, num_junk=3819),
    "60k": dict(num_query=3368, query_ids=751, num_ids=2674, num_labeled=46700, num_distractors=9932, num_junk=0),
    "msmt": dict(num_query=11659, query_ids=3060, num_ids=3060, num_labeled=82161, num_distractors=0, num_junk=0),
}
RERANK_SIZES = {"20k": "market", "60k": "60k", "94k": "msmt"}
NUM_CAMERAS = 6
NOISE = 2.6  # per-image noise vs the id centres (1024-d): Market-sized mAP ≈ 0.8, Rank-1 ≈ 0.99
GIB = 1024.0


# -------------------------------------------------------------------------------- data
def make_case(preset, quick, seed=0):
    """Synthetic features/labels: dict of q/g features, pids, camids (gallery incl. junk)."""
    cfg = dict(PRESETS[preset])
    if quick:
        cfg = {k: max(1, v // 10) if v else 0 for k, v in cfg.items()}
    dim = 128 if quick else 1024
    rng = np.random.default_rng(seed)

    def unit(x):
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        return x

    centres = unit(rng.standard_normal((cfg["num_ids"], dim), dtype=np.float32))

    def images(pids):
        out = np.empty((len(pids), dim), np.float32)
        for s in range(0, len(pids), 8192):  # in chunks: the data's own peak stays small
            p = pids[s : s + 8192]
            noise = rng.standard_normal((len(p), dim), dtype=np.float32) * np.float32(NOISE / np.sqrt(dim))
            out[s : s + len(p)] = unit(centres[p - 1] + noise)
        return out

    q_pids = rng.integers(1, cfg["query_ids"] + 1, cfg["num_query"])
    labeled = rng.integers(1, cfg["num_ids"] + 1, cfg["num_labeled"])
    n_dis, n_junk = cfg["num_distractors"], cfg["num_junk"]
    g_pids = np.concatenate([labeled, np.zeros(n_dis, np.int64), np.full(n_junk, -1)])
    perm = rng.permutation(len(g_pids))
    g_feats = np.concatenate([images(labeled), unit(rng.standard_normal((n_dis + n_junk, dim), dtype=np.float32))])
    return dict(
        q_feats=images(q_pids),
        q_pids=q_pids,
        q_camids=rng.integers(0, NUM_CAMERAS, len(q_pids)),
        g_feats=g_feats[perm],
        g_pids=g_pids[perm],
        g_camids=rng.integers(0, NUM_CAMERAS, len(g_pids)),
    )


# --------------------------------------------------------------------------- baselines
def baseline_eval(distmat, q_pids, g_pids, q_camids, g_camids, max_rank=50):
    """The classic per-query loop (torchreid `eval_market1501`), junk removed, with mINP."""
    num_q, num_g = distmat.shape
    indices = np.argsort(distmat, axis=1)
    matches = (g_pids[indices] == q_pids[:, np.newaxis]).astype(np.int32)
    all_cmc, all_ap, all_inp = [], [], []
    for q_idx in range(num_q):
        order = indices[q_idx]
        remove = (g_pids[order] == q_pids[q_idx]) & (g_camids[order] == q_camids[q_idx])
        remove |= g_pids[order] == -1
        raw_cmc = matches[q_idx][~remove]
        if not np.any(raw_cmc):
            continue
        cmc = raw_cmc.cumsum()
        pos_idx = np.where(raw_cmc == 1)
        max_pos_idx = np.max(pos_idx)
        all_inp.append(cmc[max_pos_idx] / (max_pos_idx + 1.0))
        cmc[cmc > 1] = 1
        all_cmc.append(cmc[:max_rank])
        num_rel = raw_cmc.sum()
        tmp_cmc = raw_cmc.cumsum()
        tmp_cmc = np.asarray([x / (i + 1.0) for i, x in enumerate(tmp_cmc)]) * raw_cmc
        all_ap.append(tmp_cmc.sum() / num_rel)
    all_cmc = np.asarray(all_cmc).astype(np.float32).sum(0) / len(all_cmc)
    return all_cmc, float(np.mean(all_ap)), float(np.mean(all_inp))


def baseline_distances(q, g):
    """Dense q×g, q×q and g×g Euclidean distances, computed the usual (addmm) way."""

    def dist(a, b):
        d = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * (a @ b.T)
        return np.sqrt(np.maximum(d, 0.0))

    return dist(q, g), dist(q, q), dist(g, g)


# ------------------------------------------------------------------------------ child
def _rss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def _current_rss_mib():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def _scores(r):
    return dict(mAP=round(float(r.mAP), 6), mINP=round(float(r.mINP), 6), rank1=round(float(r.cmc[0]), 6))


def _timed(fn, *args, **kwargs):
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - start


def child_evaluate(data, info, labels, repeats):
    from sal_tf.evaluation import distance_matrix, evaluate_rank
    from sal_tf.evaluation.rank_count import num_threads

    distmat = distance_matrix(data["q_feats"], data["g_feats"])
    info["rss_before_mib"] = round(_current_rss_mib(), 1)
    q_pids, g_pids, q_cams, g_cams = labels
    _, info["kernel_load_seconds"] = _timed(evaluate_rank, distmat[:8], q_pids[:8], g_pids, q_cams[:8], g_cams)
    times = {"count": [], "sort": []}
    res = {}
    for _ in range(repeats):
        for method in times:
            res[method], dt = _timed(evaluate_rank, distmat, *labels, method=method)
            times[method].append(dt)
    a, b = res["count"], res["sort"]
    info.update(
        threads=num_threads(),
        seconds=round(float(np.median(times["count"])), 4),
        seconds_min=round(min(times["count"]), 4),
        sort_seconds=round(float(np.median(times["sort"])), 4),
        sort_seconds_min=round(min(times["sort"]), 4),
        speedup_vs_sort=round(float(np.median(times["sort"]) / np.median(times["count"])), 2),
        bit_identical=bool(
            np.array_equal(a.all_AP, b.all_AP) and np.array_equal(a.all_INP, b.all_INP) and np.array_equal(a.cmc, b.cmc)
        ),
    )
    return a


def child_evaluate_msmt(data, info, labels, method):
    from sal_tf.evaluation import evaluate_features, evaluate_rank
    from sal_tf.evaluation.blockwise import block_rows
    from sal_tf.evaluation.distance import distance_block, prepare
    from sal_tf.evaluation.rank import HitBlocks, check_labels

    q, g = data["q_feats"], data["g_feats"]
    evaluate_rank(np.zeros((2, 3), np.float32), [1, 2], [1, 2, 3], [0, 0], [1, 1, 1], method=method)  # load kernel
    info["rss_before_mib"] = round(_current_rss_mib(), 1)
    r, info["seconds"] = _timed(evaluate_features, q, g, *labels, method=method)
    info["peak_rss_mib"] = round(_rss_mib(), 1)
    step = block_rows(len(q), len(g), method=method)
    info.update(block_rows=step, blocks=-(-len(q) // step), full_matrix_gib=round(len(q) * len(g) * 4 / 2**30, 2))
    # the same blocks again, timing the distance products and the ranking apart
    (qp, q_sq), (gp, g_sq) = prepare(q, "euclidean"), prepare(g, "euclidean")
    hits = HitBlocks(*check_labels(len(q), len(g), *labels), method=method)
    info["distance_seconds"] = info["rank_seconds"] = 0.0
    for s in range(0, len(q), step):
        d, dt = _timed(distance_block, qp[s : s + step], q_sq[s : s + step], gp, g_sq, "euclidean")
        info["distance_seconds"] += dt
        info["rank_seconds"] += _timed(hits.add, d, s)[1]
        del d
    same = hits.result(50, "noninterpolated")
    info["rank_ns_per_distance"] = round(info["rank_seconds"] / (len(q) * len(g)) * 1e9, 2)
    info["same_as_evaluate_features"] = bool(np.array_equal(same.all_AP, r.all_AP))
    return r


def child_rerank(data, info, mode):
    from sal_tf.evaluation import evaluate_features, evaluate_rank, re_rank_features
    from sal_tf.evaluation.rerank_classic import classic_re_ranking

    keep = data["g_pids"] >= 0  # torchreid drops junk at load time
    g = data["g_feats"][keep]
    labels = (data["q_pids"], data["g_pids"][keep], data["q_camids"], data["g_camids"][keep])
    info.update(num_gallery=int(keep.sum()), num_junk=0, num_items=int(len(data["q_pids"]) + keep.sum()))
    info["rss_before_mib"] = round(_current_rss_mib(), 1)
    if mode == "baseline":
        start = time.perf_counter()
        mats = baseline_distances(data["q_feats"], g)
        info["distance_seconds"] = round(time.perf_counter() - start, 3)
        out = classic_re_ranking(*mats)
        del mats
        info["seconds"] = round(time.perf_counter() - start, 3)
    else:
        out, info["seconds"] = _timed(re_rank_features, data["q_feats"], g, knn_mode=mode)
    info["peak_rss_mib"] = round(_rss_mib(), 1)
    r = evaluate_rank(out, *labels)
    del out
    base = evaluate_features(data["q_feats"], g, *labels)
    info.update({f"{k}_before": v for k, v in _scores(base).items()})
    return r


def run_child(case, quick):
    name, *rest = case.split(":")
    preset = "msmt" if name.startswith("evaluate_msmt") else "market"
    if name == "rerank":
        preset = RERANK_SIZES[rest[0]]
    elif name == "rerank_baseline":
        rest = ["20k", "baseline"]
    data = make_case(preset, quick)
    info = dict(
        case=case,
        preset=preset,
        quick=quick,
        num_query=len(data["q_pids"]),
        num_gallery=int((data["g_pids"] >= 0).sum()),
        num_junk=int((data["g_pids"] < 0).sum()),
        dim=int(data["q_feats"].shape[1]),
        cpus=os.cpu_count(),
        load_avg_1m=round(os.getloadavg()[0], 2),
    )
    labels = (data["q_pids"], data["g_pids"], data["q_camids"], data["g_camids"])
    if name == "evaluate":
        r = child_evaluate(data, info, labels, FLAGS.repeats)
    elif name == "evaluate_baseline":
        from sal_tf.evaluation import distance_matrix

        distmat = distance_matrix(data["q_feats"], data["g_feats"])
        info["rss_before_mib"] = round(_current_rss_mib(), 1)
        (cmc, mAP, mINP), info["seconds"] = _timed(baseline_eval, distmat, *labels)
        info.update(mAP=round(mAP, 6), mINP=round(mINP, 6), rank1=round(float(cmc[0]), 6))
        r = None
    elif name in ("evaluate_msmt", "evaluate_msmt_sort"):
        r = child_evaluate_msmt(data, info, labels, "sort" if name.endswith("sort") else "count")
    elif name in ("rerank", "rerank_baseline"):
        r = child_rerank(data, info, rest[1])
    else:
        raise ValueError(f"Unknown case {case!r}; see the module docstring.")
    info.setdefault("peak_rss_mib", round(_rss_mib(), 1))
    if r is not None:
        info.update(_scores(r))
    for k in ("seconds", "sort_seconds", "distance_seconds", "rank_seconds", "kernel_load_seconds"):
        if k in info:
            info[k] = round(info[k], 4)
    print(json.dumps(info), flush=True)


# ----------------------------------------------------------------------------- parent
def _spawn(case, quick):
    cmd = [sys.executable, "-m", "benchmarks.evaluation", f"--child={case}", f"--repeats={FLAGS.repeats}"]
    if quick:
        cmd.append("--quick")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        return dict(case=case, error=f"exit code {proc.returncode}", stderr=proc.stderr[-2000:])
    return json.loads(lines[-1])


def _summary(results):
    """Measured figures against the goals (2 cores): Market-size eval <= 0.25 s and >= 3.5×
    the sorted path; MSMT17-size eval <= 10 s within 8 GiB; 94k exact re-ranking within 8 GiB
    and no slower than the approximate (ivf) one in the same run."""
    by = {r["case"]: r for r in results if "seconds" in r}
    out = dict(case="summary")
    ev, evb = by.get("evaluate"), by.get("evaluate_baseline")
    if ev:
        out.update(market_eval_seconds=ev["seconds"], market_sort_seconds=ev["sort_seconds"])
        out.update(market_speedup_vs_sort=ev["speedup_vs_sort"], market_bit_identical=ev["bit_identical"])
        out["market_goal_met"] = ev["seconds"] <= 0.25 and ev["speedup_vs_sort"] >= 3.5
        if evb:
            out["market_speedup_vs_loop"] = round(evb["seconds"] / ev["seconds"], 1)
    ms = by.get("evaluate_msmt")
    if ms:
        out.update(msmt_eval_seconds=ms["seconds"], msmt_peak_gib=round(ms["peak_rss_mib"] / GIB, 2))
        out.update(msmt_distance_seconds=ms["distance_seconds"], msmt_rank_seconds=ms["rank_seconds"])
        out["msmt_goal_met"] = ms["seconds"] <= 10 and ms["peak_rss_mib"] <= 8 * GIB
    for r in results:
        if r["case"].startswith("rerank") and "seconds" in r:
            key = r["case"].replace(":", "_")
            out[f"{key}_seconds"] = r["seconds"]
            out[f"{key}_peak_gib"] = round(r["peak_rss_mib"] / GIB, 2)
    for size in RERANK_SIZES:
        exact, ivf = by.get(f"rerank:{size}:exact"), by.get(f"rerank:{size}:ivf")
        if exact and ivf:
            out[f"rerank_{size}_ivf_mAP_minus_exact"] = round(ivf["mAP"] - exact["mAP"], 5)
            out[f"rerank_{size}_ivf_over_exact_seconds"] = round(ivf["seconds"] / exact["seconds"], 2)
    big, big_ivf = by.get("rerank:94k:exact") or by.get("rerank:94k:auto"), by.get("rerank:94k:ivf")
    if big:
        fast = big_ivf is None or big["seconds"] <= big_ivf["seconds"]
        out["rerank_94k_goal_met"] = big["peak_rss_mib"] <= 8 * GIB and fast
    return out


def main(argv):
    del argv
    if FLAGS.child:
        run_child(FLAGS.child, FLAGS.quick)
        return
    results = []
    for case in FLAGS.cases:
        r = _spawn(case, FLAGS.quick)
        results.append(r)
        print(json.dumps(r), flush=True)
    print(json.dumps(_summary(results)), flush=True)


if __name__ == "__main__":
    app.run(main)
