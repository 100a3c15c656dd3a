"""Progress of long loops: a live bar on a terminal, one line per loop in a file or pipe.

On a TTY this is `keras.utils.Progbar` (running means of the values). When stdout is a file or a
pipe (logs, CI, `nohup`), redrawing would fill it with ANSI escapes, so nothing is printed until
`finish()`, which prints one line with the step count, the time and the mean of each value.
"""

import sys
import time


class Progress:
    """`update(step, values)` after each step; `finish()` at the end of the loop.

    Args:
        total: number of steps (None when unknown).
        title: printed before the bar / at the start of the summary line.
        verbose: False prints nothing.
        start: the step the loop starts at (a resumed epoch).
        unit: what a step is called ("step", "batch", "image").
    """

    def __init__(self, total, title="", verbose=True, start=0, unit="step", stream=None):
        self.total, self.title, self.verbose, self.unit = total, title, bool(verbose), unit
        self.stream = stream or sys.stdout
        self.live = self.verbose and getattr(self.stream, "isatty", lambda: False)()
        self.step, self.sums, self.counts = start, {}, {}
        self.start_time = time.perf_counter()
        self.bar = None
        if self.live:
            import keras

            if title:
                print(title, file=self.stream)
            self.bar = keras.utils.Progbar(total, unit_name=unit)
            self.bar.update(start)

    def update(self, step, values=None):
        self.step = step
        for k, v in (values or {}).items():
            self.sums[k] = self.sums.get(k, 0.0) + float(v)
            self.counts[k] = self.counts.get(k, 0) + 1
        if self.bar is not None:
            self.bar.update(step, values=list((values or {}).items()))

    def finish(self):
        if not self.verbose or self.live:
            return
        seconds = time.perf_counter() - self.start_time
        total = f"/{self.total}" if self.total else ""
        means = " - ".join(f"{k}: {self.sums[k] / self.counts[k]:.4g}" for k in self.sums)
        head = f"{self.title}: " if self.title else ""
        print(
            f"{head}{self.step}{total} {self.unit}s, {seconds:.1f} s" + (f" - {means}" if means else ""),
            file=self.stream,
            flush=True,
        )
