"""Run operating points in batches: serially, in a process pool, or fanned out over Ray.

Every executor runs :func:`run_batch` (``run_point`` over a list of points) inside long-lived workers, so
imports and compiled step costs are paid once per worker, not once per point. Rows come back per batch and
are written as one shard each (:mod:`.store`), so a killed sweep loses at most the batches in flight.

* ``serial``: in this process.
* ``process``: a ``ProcessPoolExecutor`` (spawn start method: polars' thread pool does not survive fork).
  A worker that dies (``BrokenProcessPool``) is replaced and its batch retried.
* ``ray``: by default an embedded local Ray started for the sweep and stopped after it, with
  ``RAY_AUTH_MODE=disabled`` (Ray 2.60 otherwise writes ``~/.ray/auth_token``), its own temporary
  directory (deleted afterwards) and no dashboard. ``--ray-address`` (or ``RAY_ADDRESS``) joins an
  existing cluster instead, whose nodes must have this package installed. Ray retries a batch whose
  worker died (``max_retries``).

After ``MAX_ATTEMPTS`` failed attempts a batch's points are stored with ``status="error"`` and the reason,
and the sweep goes on. Rows are identical whatever the executor, except :data:`~latentmoe_sim.point.TIMING_COLUMNS`.
"""

from __future__ import annotations

import math
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterable

from ..errors import InputError
from ..point import OperatingPoint, run_point

EXECUTORS = ("serial", "process", "ray")
#: attempts per batch before its points are stored as errors
MAX_ATTEMPTS = 3
#: test hook: a path; the first worker to see it absent creates it and dies (simulates a crashed worker)
CRASH_ONCE_ENV = "LMSIM_TEST_CRASH_ONCE"
#: the temporary directory the last embedded Ray used (deleted when it stopped; for tests)
last_ray_temp_dir: str | None = None


def run_batch(points: list[OperatingPoint]) -> list[dict]:
    """Rows of ``points``; runs in a worker."""
    marker = os.environ.get(CRASH_ONCE_ENV)
    if marker and not os.path.exists(marker):
        open(marker, "w").close()
        os._exit(3)
    return [run_point(p) for p in points]


def _error_rows(points: list[OperatingPoint], reason: str) -> list[dict]:
    from .. import __version__

    return [{"point_id": p.point_id, **p.columns(), "version": __version__, "status": "error", "reason": reason}
            for p in points]


def batches(points: list[OperatingPoint], workers: int, batch_size: int | None) -> list[list[OperatingPoint]]:
    """Split into batches: ``batch_size`` points, or by default enough batches for ~8 per worker, at most
    100 points each (the stack note's measured sweet spot for Ray tasks)."""
    if not points:
        return []
    size = batch_size or max(1, min(100, math.ceil(len(points) / (8 * workers))))
    return [points[i:i + size] for i in range(0, len(points), size)]


def execute(points: list[OperatingPoint], *, executor: str, workers: int, on_rows: Callable[[list[dict]], None],
            batch_size: int | None = None, ray_address: str | None = None) -> None:
    """Run ``points`` and hand each finished batch's rows to ``on_rows`` (in completion order)."""
    if executor not in EXECUTORS:
        raise InputError(f"--executor {executor!r}: must be one of {', '.join(EXECUTORS)}")
    if workers < 1:
        raise InputError(f"--workers = {workers} must be >= 1")
    work = batches(points, workers, batch_size)
    if executor == "serial":
        for b in work:
            on_rows(run_batch(b))
    elif executor == "process":
        _process(work, workers, on_rows)
    else:
        _ray(work, workers, on_rows, ray_address or os.environ.get("RAY_ADDRESS"))


def _process(work: list[list[OperatingPoint]], workers: int, on_rows) -> None:
    import multiprocessing
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
    from concurrent.futures.process import BrokenProcessPool

    attempts = [0] * len(work)
    pending = list(range(len(work)))
    ctx = multiprocessing.get_context("spawn")
    while pending:
        pool = ProcessPoolExecutor(max_workers=min(workers, len(pending)), mp_context=ctx)
        futures = {pool.submit(run_batch, work[i]): i for i in pending}
        pending = []
        broken = False
        try:
            remaining = set(futures)
            while remaining:
                done, remaining = wait(remaining, return_when=FIRST_COMPLETED)
                for f in done:
                    i = futures[f]
                    try:
                        on_rows(f.result())
                    except BrokenProcessPool:
                        broken = True
                        _retry(i, attempts, pending, work, on_rows, "worker process died")
                    except Exception as exc:  # noqa: BLE001 - stored with the batch, the sweep goes on
                        _retry(i, attempts, pending, work, on_rows, f"{type(exc).__name__}: {exc}")
        finally:
            pool.shutdown(wait=not broken, cancel_futures=True)


def _retry(i: int, attempts: list[int], pending: list[int], work, on_rows, reason: str) -> None:
    attempts[i] += 1
    if attempts[i] < MAX_ATTEMPTS:
        pending.append(i)
    else:
        on_rows(_error_rows(work[i], f"batch failed {attempts[i]} times: {reason}"))


def _ray(work: list[list[OperatingPoint]], workers: int, on_rows, address: str | None) -> None:
    tmp = None
    saved = os.environ.get("RAY_AUTH_MODE")
    if address is None:
        os.environ["RAY_AUTH_MODE"] = "disabled"  # else Ray 2.60 writes ~/.ray/auth_token (stack.md §3)
        tmp = tempfile.mkdtemp(prefix="lmsim-ray-", dir="/tmp")  # short: Ray's socket paths must fit 107 bytes
        global last_ray_temp_dir
        last_ray_temp_dir = tmp
    import ray

    try:
        if address is None:
            ray.init(num_cpus=workers, include_dashboard=False, _temp_dir=tmp, log_to_driver=False,
                     configure_logging=False)
        else:
            ray.init(address=address, log_to_driver=False)
        task = ray.remote(max_retries=MAX_ATTEMPTS - 1, retry_exceptions=False)(run_batch)
        refs = {task.remote(b): i for i, b in enumerate(work)}
        remaining = list(refs)
        while remaining:
            done, remaining = ray.wait(remaining, num_returns=1)
            for ref in done:
                try:
                    on_rows(ray.get(ref))
                except ray.exceptions.RayError as exc:
                    msg = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
                    on_rows(_error_rows(work[refs[ref]], f"batch failed on Ray: {msg}"))
    finally:
        ray.shutdown()
        if tmp is not None:
            _remove_tree(tmp)
            if saved is None:
                os.environ.pop("RAY_AUTH_MODE", None)
            else:
                os.environ["RAY_AUTH_MODE"] = saved


def _remove_tree(path: str, attempts: int = 50, pause_s: float = 0.1) -> None:
    """Delete Ray's temporary folder. Its last processes can still write logs for a moment after
    ``ray.shutdown()`` returns, so one ``rmtree`` may race them: retry until the folder is gone (5 s at most)."""
    for _ in range(attempts):
        shutil.rmtree(path, ignore_errors=True)
        if not os.path.exists(path):
            return
        time.sleep(pause_s)


class Progress:
    """One status line: points done, points/s and ETA (redrawn in place on a terminal, else every ~10 s)."""

    def __init__(self, total: int, stream=None, label: str = "sweep"):
        self.total, self.done, self.label = total, 0, label
        self.stream = stream or sys.stderr
        self.t0 = self._last = time.perf_counter()
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()

    def update(self, n: int) -> None:
        self.done += n
        now = time.perf_counter()
        if self.tty or now - self._last >= 10.0 or self.done == self.total:
            self._last = now
            self.stream.write(("\r" if self.tty else "") + self.line() + ("" if self.tty else "\n"))
            self.stream.flush()

    def line(self) -> str:
        dt = time.perf_counter() - self.t0
        rate = self.done / dt if dt > 0 else 0.0
        eta = (self.total - self.done) / rate if rate > 0 else math.inf
        bar_w = 24
        filled = int(bar_w * self.done / self.total) if self.total else bar_w
        eta_s = f"{eta:.0f} s" if math.isfinite(eta) else "?"
        return (f"{self.label} [{'#' * filled}{'.' * (bar_w - filled)}] {self.done}/{self.total} points, "
                f"{rate:.1f} points/s, ETA {eta_s}")

    def close(self) -> None:
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()


def _warm_engine(progress: bool) -> None:
    """Compile the compiled engine's kernel once here (or load it from numba's cache) before the workers start,
    so that on a fresh machine they load it from the cache instead of each compiling it
    (sim/engine/compiled_loop.py; one kernel serves aggregated and disaggregated points)."""
    from latentmoe_sim.engine import compiled

    if not compiled.AVAILABLE:
        return
    cold = not compiled.cache_is_warm()
    if cold and progress:
        print("compiling the engine (first run on this machine, about 30 s; cached for later runs)...",
              file=sys.stderr, flush=True)
    took = compiled.warm_up()
    if cold and progress:
        print(f"compiled in {took:.0f} s", file=sys.stderr, flush=True)


def run_sweep(points: Iterable[OperatingPoint], store, *, executor: str = "ray", workers: int | None = None,
              batch_size: int | None = None, ray_address: str | None = None, progress: bool = True) -> dict:
    """Run the points not yet in ``store`` and stream their rows into it. Returns counts and timing."""
    points = list(points)
    done = store.done_ids()
    todo = [p for p in points if p.point_id not in done]
    workers = workers or os.cpu_count() or 1
    bar = Progress(len(todo)) if progress and todo else None
    t0 = time.perf_counter()

    def on_rows(rows: list[dict]) -> None:
        store.write(rows)
        if bar:
            bar.update(len(rows))

    if todo and executor != "serial":
        _warm_engine(progress)
    execute(todo, executor=executor, workers=workers, on_rows=on_rows, batch_size=batch_size, ray_address=ray_address)
    if bar:
        bar.close()
    wall = time.perf_counter() - t0
    return {"points": len(points), "already_done": len(points) - len(todo), "ran": len(todo), "wall_s": wall,
            "points_per_s": len(todo) / wall if wall > 0 and todo else None, "executor": executor, "workers": workers}
