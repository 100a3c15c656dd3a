"""`sal_tf.serve.batching.Coalescer`: concurrent submissions joined into few calls, each getting its own answer."""

import threading
import time

import pytest

from sal_tf.serve.batching import Coalescer


class SlowDoubler:
    """run(key, payloads) → [key + 2·p]: slow enough for submissions to pile up; records each call."""

    def __init__(self, fail_key=None):
        self.calls, self.fail_key, self.running = [], fail_key, 0

    def __call__(self, key, payloads):
        self.running += 1
        assert self.running == 1, "two calls at once"
        self.calls.append((key, list(payloads)))
        time.sleep(0.02)
        self.running -= 1
        if key == self.fail_key:
            raise ValueError(f"bad key {key}")
        return [key + 2 * p for p in payloads]


def submit_all(coalescer, jobs):
    """Submits (key, payload) jobs from one thread each; returns {job: result or the exception}."""
    out, barrier = {}, threading.Barrier(len(jobs))

    def one(job):
        barrier.wait()
        try:
            out[job] = coalescer.submit(*job)
        except ValueError as e:
            out[job] = e

    threads = [threading.Thread(target=one, args=(job,)) for job in jobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return out


def test_each_submission_gets_its_own_result_in_fewer_calls():
    run = SlowDoubler()
    jobs = [(key, p) for key in (0, 1000) for p in range(12)]
    out = submit_all(Coalescer(run, max_weight=64), jobs)
    assert out == {(key, p): key + 2 * p for key, p in jobs}
    assert len(run.calls) < len(jobs)  # batched
    assert {key for key, _ in run.calls} == {0, 1000}  # one call per key and round
    assert sorted(p for key, ps in run.calls if key == 0 for p in ps) == list(range(12))


def test_max_weight_bounds_a_call_and_a_heavy_payload_runs_alone():
    run = SlowDoubler()
    jobs = [(0, p) for p in range(10)]
    submit_all(Coalescer(run, max_weight=3), jobs)
    assert max(len(ps) for _, ps in run.calls) <= 3
    heavy = SlowDoubler()
    assert Coalescer(heavy, max_weight=2, weight=lambda p: p).submit(0, 5) == 10 and heavy.calls == [(0, [5])]


def test_a_failing_call_fails_only_its_own_key():
    run = SlowDoubler(fail_key=1)
    jobs = [(key, p) for key in (0, 1) for p in range(6)]
    out = submit_all(Coalescer(run), jobs)
    assert all(out[(0, p)] == 2 * p for p in range(6))
    assert all(isinstance(out[(1, p)], ValueError) for p in range(6))


def test_a_lone_submission_runs_at_once():
    run = SlowDoubler()
    start = time.perf_counter()
    assert Coalescer(run).submit(3, 4) == 11
    assert time.perf_counter() - start == pytest.approx(0.02, abs=0.5) and len(run.calls) == 1
