"""The Table 1 ablation tables (markdown and JSON) beside the paper's numbers."""

from sal_tf.experiments.report_notes import schedule_notes
from sal_tf.experiments.table1 import SETTINGS

# The paper's Table 1 is on Market-1501; other datasets get no paper column.
PAPER_DATASETS = ("market1501", "demo")  # the demo data has the Market-1501 layout


def _check(flag):
    return "✓" if flag else "–"


def _pct(value):
    return "–" if value is None else f"{value:.1f}"


def _pct_std(value, std):
    """'58.2' or, over several seeds, '58.2 ± 1.3'."""
    return _pct(value) if std is None or value is None else f"{value:.1f} ± {std:.1f}"


def _percent(values, key):
    return None if not values or values.get(key) is None else 100 * values[key]


def _row(sid, setting, result, with_paper):
    rerank = (result or {}).get("rerank") or {}
    paper = setting["paper"] if with_paper and setting["paper"] else (None, None)
    return {
        "setting": sid if sid != "3T" else "3(T)",
        "recipe": setting["recipe"],
        **{k: setting[k] for k in ("loss", "dilation", "multi_level", "stage6", "sac")},
        **{key: _percent(result, key) for key in ("mAP", "rank1", "mAP_std", "rank1_std")},
        **{f"rerank_{key}": _percent(rerank, key) for key in ("mAP", "rank1", "mAP_std", "rank1_std")},
        "seeds": (result or {}).get("seeds"),
        "paper_mAP": paper[0],
        "paper_rank1": paper[1],
        "status": "pending" if result is None else "done",
    }


def _seeds_note(rows):
    counts = sorted({len(row["seeds"]) for row in rows if row["seeds"]})
    if not counts or counts == [1]:
        return ""
    return f" Mean ± sample std over {'/'.join(str(c) for c in counts)} seeds."


def build_tables(base, settings, results, dataset_name):
    """(markdown text, json dict) of the settings in order; unfinished ones are marked pending.

    Args:
        base: the base `TrainConfig`; settings: ids of `SETTINGS` in order; results: {id: setting
        result}; dataset_name: shown in the notes.
    """
    with_paper = base.dataset in PAPER_DATASETS
    rows = [_row(sid, SETTINGS[sid], results.get(sid), with_paper) for sid in settings]
    notes = f"dataset: {dataset_name}; {schedule_notes(base)}"
    paper_note = "; paper: Market-1501, ResNet50, ImageNet init." if with_paper else (
        "; the paper reports Table 1 on Market-1501 only.")  # fmt: skip
    lines = [
        f"Table 1 ablation ({notes}). mAP / Rank-1 in %, single query, no re-ranking{paper_note}{_seeds_note(rows)}",
        "",
        "| setting | recipe | loss | DIL | multi-level | stage6 | SAC | mAP | Rank-1 | paper mAP | paper Rank-1 |",
        "| --- | --- | --- | :-: | :-: | :-: | :-: | --: | --: | --: | --: |",
    ]
    for row in rows:
        ours = [_pct_std(row[k], row[f"{k}_std"]) for k in ("mAP", "rank1")]
        ours = ("pending", "pending") if row["status"] == "pending" else ours
        switches = " | ".join(_check(row[k]) for k in ("dilation", "multi_level", "stage6", "sac"))
        lines.append(
            f"| {row['setting']} | {row['recipe']} | {row['loss'].replace('+', ' + ')} | {switches} | {ours[0]} | "
            f"{ours[1]} | {_pct(row['paper_mAP'])} | {_pct(row['paper_rank1'])} |"
        )
    return "\n".join(lines) + "\n", {"dataset": dataset_name, "notes": notes, "settings": rows}
