"""The paper's Tables 2 and 3 (§4.4) beside measured numbers: values, dataset folders, the report.

Table 2 (Market-1501, single query) and Table 3 (DukeMTMC-reID) rows of the paper's method, mAP /
Rank-1 in %: "Ours" 81.6 / 92.8 and 65.4 / 82.1; "Ours + re-rank" (k-reciprocal re-ranking, Zhong
et al. 2017) 91.2 / 93.3 and 72.9 / 85.1. Pure data and formatting (no TensorFlow), like
`sal_tf/experiments/table1.py`; `sal_tf/experiments/paper_run.py` trains and fills the measured side.
"""

import os

# dataset → (table, dataset name, {row: (paper mAP, paper Rank-1)}, folder names searched under --data_root)
PAPER_TABLES = {
    "market1501": (
        "Table 2",
        "Market-1501",
        {"Ours": (81.6, 92.8), "Ours + re-rank": (91.2, 93.3)},
        ("Market-1501-v15.09.15", "Market-1501", "market1501", "Market1501", "market-1501"),
    ),
    "dukemtmc": (
        "Table 3",
        "DukeMTMC-reID",
        {"Ours": (65.4, 82.1), "Ours + re-rank": (72.9, 85.1)},
        ("DukeMTMC-reID", "dukemtmc-reid", "DukeMTMC", "dukemtmc"),
    ),
}
DATASET_IDS = tuple(PAPER_TABLES)
ROW_VARIANTS = {"Ours": "plain", "Ours + re-rank": "re-ranked"}  # row → measured variant (seeds summary)
REPORT_MD, REPORT_JSON = "paper_tables.md", "paper_tables.json"


def find_dataset(dataset, data_root, override=None):
    """The folder of `dataset`: `override` when given, else the first usual folder name under `data_root`.

    Raises:
        ValueError: not found (the message names the folders looked for and the flag to pass).
    """
    flag = f"--{'market' if dataset == 'market1501' else 'duke'}_dir"
    if override:
        if not os.path.isdir(override):
            raise ValueError(f"{flag}={override} is not a folder.")
        return os.path.abspath(override)
    names = PAPER_TABLES[dataset][3]
    for name in names:
        path = os.path.join(data_root or "", name)
        if data_root and os.path.isdir(path):
            return os.path.abspath(path)
    raise ValueError(
        f"{PAPER_TABLES[dataset][1]} not found under --data_root={data_root!r} (looked for {', '.join(names)}); "
        f"pass {flag}=PATH, or --datasets without {dataset}."
    )


def parse_datasets(text):
    """'market1501,dukemtmc' (also 'market', 'duke') → ordered dataset ids."""
    aliases = {"market": "market1501", "market1501": "market1501", "duke": "dukemtmc", "dukemtmc": "dukemtmc"}
    ids = []
    for raw in str(text or "").split(","):
        name = raw.strip().lower()
        if name and name not in aliases:
            raise ValueError(f"--datasets: unknown dataset {raw.strip()!r}; expected market1501 and/or dukemtmc.")
        if name and aliases[name] not in ids:
            ids.append(aliases[name])
    if not ids:
        raise ValueError(f"--datasets={text!r} names no dataset; expected market1501,dukemtmc.")
    return ids


def _pct(spread):
    if spread is None:
        return "pending"
    if spread["n"] == 1:
        return f"{100 * spread['mean']:.1f}"
    return f"{100 * spread['mean']:.1f} ± {100 * spread['std']:.1f}"


def report_rows(dataset, summary):
    """JSON rows of one dataset's table; `summary` is a seeds summary (`sal_tf.training.seeds`) or None."""
    table, name, rows, _ = PAPER_TABLES[dataset]
    final = None
    if summary and summary["stages"]:
        final = summary["stages"].get("stage2") or summary["stages"][list(summary["stages"])[-1]]
    out = []
    for row, (paper_map, paper_r1) in rows.items():
        measured = (final or {}).get(ROW_VARIANTS[row])
        out.append(
            {
                "table": table,
                "dataset": name,
                "row": row,
                "paper_mAP": paper_map,
                "paper_rank1": paper_r1,
                "mAP": measured["mAP"] if measured else None,
                "rank1": measured["rank1"] if measured else None,
                "mINP": measured["mINP"] if measured else None,
            }
        )
    return out


def build_report(datasets, summaries, notes):
    """(markdown, json) of the tables of `datasets`, measured beside the paper; `summaries`: {dataset: summary}."""
    lines = [f"The paper's Tables 2 and 3 beside measured numbers ({notes}). mAP / Rank-1 in %, single query; "
             "measured: mean ± sample std over seeds when several.", ""]  # fmt: skip
    rows = []
    for dataset in datasets:
        table, name = PAPER_TABLES[dataset][:2]
        lines += [f"### {table}: {name}", "", "| method | paper mAP | paper Rank-1 | mAP | Rank-1 | mINP |",
                  "| --- | --: | --: | --: | --: | --: |"]  # fmt: skip
        for row in report_rows(dataset, summaries.get(dataset)):
            lines.append(
                f"| {row['row']} | {row['paper_mAP']:.1f} | {row['paper_rank1']:.1f} | {_pct(row['mAP'])} | "
                f"{_pct(row['rank1'])} | {_pct(row['mINP'])} |"
            )
            rows.append(row)
        lines.append("")
    return "\n".join(lines), {"notes": notes, "rows": rows}
