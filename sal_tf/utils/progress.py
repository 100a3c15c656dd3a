"""Progress of long loops: a live bar on a terminal; in a file or pipe, whole lines only.

On a TTY this is `keras.utils.Progbar` (running means of the values). When the stream is a file
or a pipe (logs, CI, `nohup`), redrawing would fill it with ANSI escapes, so only whole lines are
written: one at `finish()` with the step count, the time and the mean of each value, and, with
`log_every=seconds`, one at most every that many seconds in between (for work of many minutes).
"""

import sys
import time


class Progress:
    """`update(step, values)` after each step; `finish()` at the end of the loop.

    Args:
        total: number of steps (None when unknown).
        title: printed before the bar / at the start of each line.
        verbose: False prints nothing.
        start: the step the loop starts at (a resumed epoch).
        unit: what a step is called ("step", "batch", "image").
        stream: where to write (default stdout; commands whose stdout is data use stderr).
        log_every: seconds between interim lines when not on a terminal (None: only at the end).
    """

    def __init__(self, total, title="", verbose=True, start=0, unit="step", stream=None, log_every=None):
        self.total, self.title, self.verbose, self.unit = total, title, bool(verbose), unit
        self.stream = stream or sys.stdout
        self.live = self.verbose and getattr(self.stream, "isatty", lambda: False)()
        self.log_every = log_every
        self.step, self.sums, self.counts = start, {}, {}
        self.start_time = self.last_line = time.perf_counter()
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
        elif self.verbose and self.log_every and time.perf_counter() - self.last_line >= self.log_every:
            self._line()

    def finish(self):
        if self.verbose and not self.live:
            self._line()

    def _line(self):
        self.last_line = time.perf_counter()
        seconds = self.last_line - self.start_time
        total = f"/{self.total}" if self.total else ""
        units = self.unit + ("es" if self.unit.endswith(("ch", "sh", "s")) else "s")
        rate = f" ({self.step / seconds:.1f} {units}/s)" if seconds > 0 and self.step else ""
        means = " - ".join(f"{k}: {self.sums[k] / self.counts[k]:.4g}" for k in self.sums)
        head = f"{self.title}: " if self.title else ""
        line = f"{head}{self.step}{total} {units}, {seconds:.1f} s{rate}" + (f" - {means}" if means else "")
        print(line, file=self.stream, flush=True)
