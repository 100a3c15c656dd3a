"""A small progress bar on stderr: redrawn in place on a terminal, one line per update otherwise."""

import sys
import time


class Progress:
    """`Progress(total, "images")`, then `update(done)` and `close()`.

    On a TTY the line is redrawn at most every `tty_interval` seconds; otherwise (a log file, CI)
    a full line is printed at most every `log_interval` seconds, plus the final one.
    """

    def __init__(self, total, unit="images", stream=None, enabled=True, tty_interval=0.2, log_interval=10.0):
        self.total, self.unit, self.enabled = int(total), unit, enabled
        self.stream = stream or sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.interval = tty_interval if self.tty else log_interval
        self.start = time.monotonic()
        self.last = -float("inf")
        self.done = 0
        self.shown = None  # `done` when the line was last written

    def _line(self):
        elapsed = time.monotonic() - self.start
        rate = self.done / elapsed if elapsed > 0 else 0.0
        frac = self.done / self.total if self.total else 1.0
        bar = "#" * int(30 * frac)
        return f"[{bar:<30s}] {self.done}/{self.total} {self.unit} {100 * frac:5.1f}% {rate:8.1f} {self.unit}/s"

    def update(self, done, force=False):
        self.done = int(done)
        now = time.monotonic()
        if not self.enabled or (not force and now - self.last < self.interval):
            return
        self.last, self.shown = now, self.done
        if self.tty:
            self.stream.write("\r" + self._line())
        else:
            self.stream.write(self._line() + "\n")
        self.stream.flush()

    def close(self):
        if self.shown != self.done:
            self.update(self.done, force=True)
        if self.enabled and self.tty:
            self.stream.write("\n")
            self.stream.flush()
