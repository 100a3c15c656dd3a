"""`ServiceProcess`: `sal-serve` as a child process, for the benchmarks and the tests of a checkout.

    from benchmarks.service_process import ServiceProcess     # the checkout's root on sys.path
    with ServiceProcess(["--model=runs/demo", "--store=gallery_store"], log_path="serve.log") as service:
        urllib.request.urlopen(service.url + "/healthz")

It runs `python -m sal_tf.cli.serve --port=0 ...` (a free loopback port, read back from the URL the
service prints once it is ready), waits until `/healthz` answers, and stops it with SIGTERM
(uvicorn drains the requests and the store closes), SIGKILL only if it hangs. It is a harness,
not part of the installed package: `benchmarks/search_service.py` and `tests/serve_support.py`
use it.
"""

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request

URL_LINE = re.compile(r"(http://127\.0\.0\.1:\d+)/")


class ServiceProcess:
    """A running `sal-serve` child; `.url` (no trailing slash), `.start_line` (the line that printed it), `.pid`,
    `stop()`, `kill9()`, `peak_rss_bytes()`."""

    def __init__(self, args, log_path, env=None, start_timeout=300, cwd=None):
        self.log_path = log_path
        self._log = open(log_path, "ab")
        cmd = [sys.executable, "-m", "sal_tf.cli.serve", "--port=0", "--noprogress", *args]
        full_env = {**os.environ, **(env or {})}
        self.proc = subprocess.Popen(cmd, cwd=cwd, env=full_env, stdout=subprocess.PIPE, stderr=self._log)
        self.pid = self.proc.pid
        self._lines = queue.Queue()
        threading.Thread(target=self._read_stdout, daemon=True).start()
        self.url = self._wait_for_url(start_timeout)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    def _read_stdout(self):
        for line in self.proc.stdout:
            self._lines.put(line.decode("utf-8", "replace"))
        self._lines.put(None)

    def _wait_for_url(self, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self._lines.get(timeout=1)
            except queue.Empty:
                continue
            if line is None:
                break
            match = URL_LINE.search(line)
            if match and self._healthy(match.group(1)):
                self.start_line = line.strip()
                return match.group(1)
        self.stop()
        raise RuntimeError(f"sal-serve did not start (exit {self.proc.returncode}):\n{self.log_tail()}")

    @staticmethod
    def _healthy(url):
        with urllib.request.urlopen(url + "/healthz", timeout=30) as response:
            return response.status == 200

    def log_tail(self, chars=3000):
        if not self._log.closed:
            self._log.flush()
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")[-chars:]

    def peak_rss_bytes(self):
        """The child's peak resident memory so far (`VmHWM` of /proc/<pid>/status), or None."""
        try:
            with open(f"/proc/{self.pid}/status") as f:
                for line in f:
                    if line.startswith("VmHWM:"):
                        return int(line.split()[1]) * 1024
        except OSError:
            return None
        return None

    def stop(self, timeout=30):
        """SIGTERM, then SIGKILL after `timeout` s; returns the exit status (uvicorn re-raises SIGTERM: -15)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._close_log()
        return self.proc.returncode

    def kill9(self):
        """SIGKILL now (a crash, for durability tests)."""
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self._close_log()

    def _close_log(self):
        if not self._log.closed:
            self._log.close()
