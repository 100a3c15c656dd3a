"""What the benchmark drivers share: each case run in a child process, every figure a JSON line.

    from benchmarks.json_lines import JsonLines, child_lines, machine_line   # the checkout's root on sys.path

    out = JsonLines(args.output)                      # prints each line at once; `save` writes the file
    out.emit(machine_line("gallery_store_setup", ("faiss", "numpy"), model=args.model))
    for line in child_lines([sys.executable, __file__, "--case=store"], case=["--case=store"]):
        out.emit(line)
    out.save()

A child process per case keeps `peak_rss_mib` (that process's `ru_maxrss`) the case's own figure
(`benchmarks/embed_search.py`, `benchmarks/gallery_store.py`).
"""

import importlib
import json
import os
import resource
import subprocess

CPU_FEATURES = ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_int8", "amx_bf16")


def cpu_features():
    """The `CPU_FEATURES` flags /proc/cpuinfo lists (empty where it cannot be read): what a speed figure used."""
    from sal_tf.inference.backend import cpu_flags

    return [feature for feature in CPU_FEATURES if feature in cpu_flags()]


def load_average():
    """The 1, 5 and 15 minute load averages, rounded (a shared machine's figures move with it)."""
    return [round(v, 2) for v in os.getloadavg()]


def peak_rss_mib():
    """This process's peak resident memory (`ru_maxrss`), MiB."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def machine_line(benchmark, libraries=(), **facts):
    """The setup line a driver prints first: `benchmark`, cores, load average, the `__version__` of each
    module named in `libraries`, then `facts`."""
    versions = {name: importlib.import_module(name).__version__ for name in libraries}
    return {"benchmark": benchmark, "cpus": os.cpu_count(), "load_average": load_average(), **versions, **facts}


def child_lines(cmd, case, env=None):
    """The JSON lines (those starting with "{") a child benchmark `cmd` printed; if it failed, then a
    line {"benchmark": "error", "case", "returncode", "stderr": its last 2,000 characters}."""
    run = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, **(env or {})})
    lines = [json.loads(s) for s in run.stdout.splitlines() if s.startswith("{")]
    if run.returncode != 0:
        lines.append({"benchmark": "error", "case": case, "returncode": run.returncode, "stderr": run.stderr[-2000:]})
    return lines


class JsonLines:
    """A driver's output: `emit` prints a line (flushed) and keeps it; `save` writes them all to `path`, if any."""

    def __init__(self, path=None):
        self.path, self.lines = path, []

    def emit(self, line):
        self.lines.append(line)
        print(json.dumps(line), flush=True)

    def save(self):
        if self.path:
            with open(self.path, "w") as f:
                f.writelines(json.dumps(line) + "\n" for line in self.lines)
