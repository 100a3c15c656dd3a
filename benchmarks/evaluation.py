"""Evaluation and re-ranking speed / peak memory (SPEC §7, §10): one JSON line per case.

A Market-sized synthetic case: 3,368 queries; a gallery of 15,913 images (13,115 of 751
ids + 2,798 distractors, pid 0) plus 3,819 junk (pid −1); 6 cameras; 1024-d L2-normalised
features clustered by id (so there are real matches). `scale` multiplies the gallery
(ids, distractors and junk); the queries stay the same.

Cases (each in its own subprocess, so peak RSS (`ru_maxrss`) does not mix; `rss_before_mib`
is the child's RSS after imports and data generation, before the timed call):

* `evaluate`: `evaluate_rank` on the query × gallery (junk included) distance matrix,
  at scales 1, 2, 4.
* `evaluate_baseline`: the classic per-query Python loop (torchreid `eval_market1501`,
  plus junk removal and fast-reid's mINP), at scales 1, 2, 4.
* `rerank`: `re_rank_features` from the features (junk dropped, as torchreid's loaders do), scales 1, 2, 4.
* `rerank_baseline`: the classic dense N×N re-ranking (torchreid `utils/rerank.py`), timed
  with the dense distance matrices it needs; scale 1 only (~8 GiB).

Both re-ranking cases report the mAP/Rank-1 of their output, which must agree. A last
`summary` line gives the ratios against the goals (evaluation >= 20× faster and <= 5 s;
re-ranking >= 3× faster with <= 1/3 of the peak memory; a 60,000-image gallery within 8 GiB).

    python -m benchmarks.evaluation [--quick] [--cases evaluate,rerank] [--scales 1,2,4]
"""

import json
import os
import resource
import subprocess
import sys
import time

import numpy as np
from absl import app, flags

flags.DEFINE_bool("quick", False, "A small case (about 1/10 of Market, 128-d) for a smoke run.")
flags.DEFINE_list("cases", ["evaluate", "evaluate_baseline", "rerank", "rerank_baseline"], "Cases to run.")
flags.DEFINE_list("scales", ["1", "2", "4"], "Gallery scales.")
flags.DEFINE_string("child", None, "Internal: run one case in this process.")
flags.DEFINE_integer("scale", 1, "Internal: the child's gallery scale.")
FLAGS = flags.FLAGS

MARKET = dict(num_query=3368, num_ids=751, num_labeled=13115, num_distractors=2798, num_junk=3819, dim=1024)
QUICK = dict(num_query=340, num_ids=75, num_labeled=1310, num_distractors=280, num_junk=380, dim=128)
NUM_CAMERAS = 6
NOISE = dict(market=2.6, quick=1.6)  # per-image noise vs the id centres: mAP ≈ 0.8, Rank-1 ≈ 0.99 at scale 1


# -------------------------------------------------------------------------------- data
def make_case(scale, quick, seed=0):
    """Synthetic features/labels: dict of q/g features, pids, camids (gallery incl. junk)."""
    cfg = QUICK if quick else MARKET
    rng = np.random.default_rng(seed)
    dim, n_ids = cfg["dim"], cfg["num_ids"] * scale
    sigma = NOISE["quick" if quick else "market"]

    def unit(x):
        return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)

    centres = unit(rng.standard_normal((n_ids, dim), dtype=np.float32))

    def images(pids):
        noise = rng.standard_normal((len(pids), dim), dtype=np.float32) * (sigma / np.sqrt(dim))
        return unit(centres[pids - 1] + noise)

    q_pids = rng.integers(1, cfg["num_ids"] + 1, cfg["num_query"])  # queries: the first 751 ids
    labeled = rng.integers(1, n_ids + 1, cfg["num_labeled"] * scale)
    n_dis, n_junk = cfg["num_distractors"] * scale, cfg["num_junk"] * scale
    g_pids = np.concatenate([labeled, np.zeros(n_dis, np.int64), np.full(n_junk, -1)])
    g_feats = np.concatenate([images(labeled), unit(rng.standard_normal((n_dis + n_junk, dim), dtype=np.float32))])
    perm = rng.permutation(len(g_pids))
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


def baseline_re_ranking(q_g, q_q, g_g, k1=20, k2=6, lambda_value=0.3):
    """The classic dense re-ranking (Zhong et al., as in torchreid `utils/rerank.py`): N×N
    float32 matrices, a full argsort per row, Python loops over items."""
    dist = np.concatenate([np.concatenate([q_q, q_g], 1), np.concatenate([q_g.T, g_g], 1)], 0)
    dist = np.power(dist, 2).astype(np.float32)
    dist = np.transpose(1.0 * dist / np.max(dist, axis=0))
    n, nq = dist.shape[0], q_g.shape[0]
    V = np.zeros_like(dist, dtype=np.float32)
    rank = np.argsort(dist).astype(np.int32)
    k_half = int(np.around(k1 / 2.0))
    for i in range(n):
        forward = rank[i, : k1 + 1]
        recip = forward[np.where(rank[forward, : k1 + 1] == i)[0]]
        expanded = recip
        for c in recip:
            c_forward = rank[c, : k_half + 1]
            c_recip = c_forward[np.where(rank[c_forward, : k_half + 1] == c)[0]]
            if len(np.intersect1d(c_recip, recip)) > 2.0 / 3 * len(c_recip):
                expanded = np.append(expanded, c_recip)
        expanded = np.unique(expanded)
        weight = np.exp(-dist[i, expanded])
        V[i, expanded] = weight / np.sum(weight)
    dist = dist[:nq]
    if k2 != 1:
        V_qe = np.zeros_like(V, dtype=np.float32)
        for i in range(n):
            V_qe[i] = np.mean(V[rank[i, :k2]], axis=0)
        V = V_qe
        del V_qe
    del rank
    inv_index = [np.where(V[:, j] != 0)[0] for j in range(n)]
    jaccard = np.zeros_like(dist, dtype=np.float32)
    for i in range(nq):
        t_min = np.zeros(n, dtype=np.float32)
        for j in np.where(V[i] != 0)[0]:
            t_min[inv_index[j]] += np.minimum(V[i, j], V[inv_index[j], j])
        jaccard[i] = 1 - t_min / (2.0 - t_min)
    final = jaccard * (1 - lambda_value) + dist * lambda_value
    return final[:, nq:]


# ------------------------------------------------------------------------------ child
def _rss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def _current_rss_mib():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def run_child(case, scale, quick):
    from sal_tf.evaluation import distance_matrix, evaluate_rank, re_rank_features

    data = make_case(scale, quick)
    info = dict(
        case=case,
        scale=scale,
        quick=quick,
        num_query=len(data["q_pids"]),
        dim=int(data["q_feats"].shape[1]),
        cpus=os.cpu_count(),
        load_avg_1m=round(os.getloadavg()[0], 2),
    )
    labels = (data["q_pids"], data["g_pids"], data["q_camids"], data["g_camids"])
    if case in ("evaluate", "evaluate_baseline"):
        info.update(num_gallery=int((data["g_pids"] >= 0).sum()), num_junk=int((data["g_pids"] < 0).sum()))
        distmat = distance_matrix(data["q_feats"], data["g_feats"])
        info["rss_before_mib"] = round(_current_rss_mib(), 1)
        start = time.perf_counter()
        if case == "evaluate":
            r = evaluate_rank(distmat, *labels)
            cmc, mAP, mINP = r.cmc, r.mAP, r.mINP
        else:
            cmc, mAP, mINP = baseline_eval(distmat, *labels)
        info["seconds"] = round(time.perf_counter() - start, 3)
    elif case in ("rerank", "rerank_baseline"):
        keep = data["g_pids"] >= 0  # torchreid drops junk at load time
        g_feats = data["g_feats"][keep]
        g_labels = (data["q_pids"], data["g_pids"][keep], data["q_camids"], data["g_camids"][keep])
        info.update(num_gallery=int(keep.sum()), num_junk=0)
        info["rss_before_mib"] = round(_current_rss_mib(), 1)
        start = time.perf_counter()
        if case == "rerank":
            out = re_rank_features(data["q_feats"], g_feats)
        else:
            mats = baseline_distances(data["q_feats"], g_feats)
            info["distance_seconds"] = round(time.perf_counter() - start, 3)
            out = baseline_re_ranking(*mats)
            del mats
        info["seconds"] = round(time.perf_counter() - start, 3)
        peak = _rss_mib()
        r = evaluate_rank(out, *g_labels)
        cmc, mAP, mINP = r.cmc, r.mAP, r.mINP
        info["peak_rss_mib"] = round(peak, 1)
        base = evaluate_rank(distance_matrix(data["q_feats"], g_feats), *g_labels)
        info.update(mAP_before=round(base.mAP, 6), rank1_before=round(float(base.cmc[0]), 6))
    else:
        raise ValueError(
            f"--child must be one of evaluate, evaluate_baseline, rerank, rerank_baseline. Received: {case}"
        )
    info.setdefault("peak_rss_mib", round(_rss_mib(), 1))
    info.update(mAP=round(float(mAP), 6), mINP=round(float(mINP), 6), rank1=round(float(cmc[0]), 6))
    print(json.dumps(info), flush=True)


# ----------------------------------------------------------------------------- parent
def _spawn(case, scale, quick):
    cmd = [sys.executable, "-m", "benchmarks.evaluation", f"--child={case}", f"--scale={scale}"]
    if quick:
        cmd.append("--quick")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        return dict(case=case, scale=scale, error=f"exit code {proc.returncode}", stderr=proc.stderr[-2000:])
    return json.loads(lines[-1])


def _summary(results):
    def get(case, scale=1):
        return next((r for r in results if r["case"] == case and r["scale"] == scale and "seconds" in r), None)

    out = dict(case="summary")
    for scale in sorted({r["scale"] for r in results}):
        ev, evb = get("evaluate", scale), get("evaluate_baseline", scale)
        if ev and evb:
            out[f"evaluate_speedup_x{scale}"] = round(evb["seconds"] / ev["seconds"], 1)
    ev, evb = get("evaluate"), get("evaluate_baseline")
    if ev and evb:
        out["evaluate_goal_met"] = out["evaluate_speedup_x1"] >= 20 and ev["seconds"] <= 5
    rr, rrb = get("rerank"), get("rerank_baseline")
    if rr and rrb:
        out["rerank_speedup"] = round(rrb["seconds"] / rr["seconds"], 1)
        out["rerank_peak_memory_ratio"] = round(rr["peak_rss_mib"] / rrb["peak_rss_mib"], 3)
        out["rerank_same_result"] = abs(rr["mAP"] - rrb["mAP"]) < 1e-4
        out["rerank_goal_met"] = out["rerank_speedup"] >= 3 and out["rerank_peak_memory_ratio"] <= 1 / 3
    big = [r for r in results if r["case"] == "rerank" and "peak_rss_mib" in r and r["num_gallery"] >= 60000]
    if big:
        out["rerank_60k_gallery_peak_gib"] = round(big[0]["peak_rss_mib"] / 1024, 2)
        out["rerank_60k_goal_met"] = big[0]["peak_rss_mib"] <= 8 * 1024
    return out


def main(argv):
    del argv
    if FLAGS.child:
        run_child(FLAGS.child, FLAGS.scale, FLAGS.quick)
        return
    results = []
    for case in FLAGS.cases:
        scales = [1] if case == "rerank_baseline" else [int(s) for s in FLAGS.scales]
        for scale in scales:
            r = _spawn(case, scale, FLAGS.quick)
            results.append(r)
            print(json.dumps(r), flush=True)
    print(json.dumps(_summary(results)), flush=True)


if __name__ == "__main__":
    app.run(main)
