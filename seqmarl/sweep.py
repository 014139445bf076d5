"""``seqmarl sweep algo=happo,mappo env=matrix/xor seed=0:5 algo.lr=5e-4,1e-3`` — a grid of ``seqmarl train`` runs.

Grammar (one ``key=VALUES`` per argument, keys as in ``seqmarl train``):

* ``VALUES`` is a comma list ``v1,v2,...``; the grid is the Cartesian product of the lists, so it has
  ``prod_k len(VALUES_k)`` runs, in the order the keys were given (the last key varies fastest).
* An item ``a:b`` of integers is the half-open range ``a, a+1, ..., b-1`` (Python's ``range``: ``seed=0:5``
  is the five seeds 0..4). Other colons are literal (``device=cuda:1``).
* A value that itself contains commas (a tuple such as ``algo.hidden``) is written in brackets:
  ``algo.hidden=(64,64),(128,128)`` is two values. Quote characters that reach the program
  (``algo.hidden='"64,64"'``) are refused with that hint: quotes are shell syntax, not grid syntax.
* A key given twice, an empty item, a repeated value, ``run_dir`` or ``resume`` (the sweep owns those) are
  errors naming the argument.

Layout of ``SWEEP_DIR`` (default ``sweeps/sweep-<hash of the grid>``, so the same command finds its sweep again):

* ``sweep.json`` — the manifest: the grid and every run's name and ``seqmarl train`` arguments.
* ``runs/<name>/`` — one ``seqmarl train`` run directory per grid point; ``<name>`` is the point's
  ``key=value`` pairs joined by ``,`` (the keys that vary, plus ``algo``, ``env`` and ``seed`` when given),
  with ``/`` and commas inside a value written ``-``, brackets dropped and other characters outside
  ``[A-Za-z0-9._=+-]`` written ``_`` (names that collide after this get a hash suffix). Besides the trainer's files it holds ``attempts.jsonl`` (one line
  per start, first update and end of every attempt) and ``done.json``, written atomically after the run
  finished.
* ``summary.json`` — the outcome of the last invocation.

Run states: ``done.json`` present → finished, skipped; ``config.yaml`` present but no ``done.json`` →
interrupted, continued with ``seqmarl train resume=<run dir>`` (from ``checkpoints/last.pt``; the trainer
truncates the metrics logged after it); otherwise → started fresh. So an interrupted sweep is resumed by
running the same command again, and a failed attempt is retried from the run's last checkpoint.

Backends: ``local`` (default) — a ``concurrent.futures.ProcessPoolExecutor`` (forkserver start method) of
``--workers`` processes (default ``os.cpu_count()``), one torch thread each; a failed attempt (an exception, or
a worker process that died) is retried up to ``--retries`` times. ``ray`` — Ray core is the scheduler: one
``@ray.remote(num_cpus=1)`` task per run with ``max_retries`` and ``retry_exceptions`` (Ray re-runs a task
whose worker died or that raised; the re-run resumes from the checkpoint), ``ray.init`` with the dashboard
off; ``--address`` joins a running cluster (its nodes must share ``SWEEP_DIR``), otherwise a local Ray runtime
with ``--num-cpus`` CPUs is started. Failures are listed in the summary and the exit code is 1.

Testing hook: ``SEQMARL_SWEEP_CRASH_ONCE=K`` (or ``K:exit``) makes every run's first attempt raise (or kill
its process with ``os._exit``) at update ``K`` before that update is logged or checkpointed; it fires once per
run (a marker file in the run directory), so the retry shows the resume.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import itertools
import json
import os
import re
import socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from seqmarl.cli import command

MANIFEST = "sweep.json"
SUMMARY = "summary.json"
DONE = "done.json"
ATTEMPTS = "attempts.jsonl"
CRASH_ENV = "SEQMARL_SWEEP_CRASH_ONCE"
_CRASH_MARKER = ".sweep_crash_hook_fired"
_RESERVED = ("run_dir", "resume")
_NAME_KEYS = ("algo", "env", "seed")
_RANGE = re.compile(r"^(-?\d+):(-?\d+)$")
_SAFE = re.compile(r"[^A-Za-z0-9._=+-]")
_MAX_NAME = 180


class SweepError(ValueError):
    """A sweep argument or sweep directory is not valid (the CLI prints it and exits with code 2)."""


Grid = list[tuple[str, list[str]]]


@dataclass(frozen=True)
class GridPoint:
    """One run of the grid: its directory name and its ``key=value`` assignment (raw strings, in grid order)."""

    name: str
    values: tuple[tuple[str, str], ...]

    def overrides(self) -> list[str]:
        """The ``seqmarl train`` arguments of this point."""
        return [f"{k}={v}" for k, v in self.values]


# ------------------------------------------------------------------------------------------------ the grid
def split_values(key: str, raw: str) -> list[str]:
    """The values of one ``key=VALUES`` argument: split at commas outside brackets, ranges ``a:b`` expanded."""
    if any(q in raw for q in "\"'"):
        raise SweepError(f"{key}={raw}: quote characters are not part of the grid syntax; a value that contains "
                         f"commas is written in brackets, e.g. {key}=(64,64),(128,128)")
    items, depth, current = [], 0, ""
    for ch in raw:
        if ch in "([":
            depth += 1
        elif ch in ")]":
            depth -= 1
            if depth < 0:
                raise SweepError(f"{key}={raw}: unbalanced brackets")
        if ch == "," and depth == 0:
            items.append(current)
            current = ""
        else:
            current += ch
    if depth != 0:
        raise SweepError(f"{key}={raw}: unbalanced brackets")
    items.append(current)
    values: list[str] = []
    for item in items:
        item = item.strip()
        if not item:
            raise SweepError(f"{key}={raw}: empty value in the comma list (expected v1,v2,... without empty entries)")
        m = _RANGE.match(item)
        if m:
            lo, hi = int(m.group(1)), int(m.group(2))
            if hi <= lo:
                raise SweepError(f"{key}={raw}: the range {item} is empty; a:b means a, a+1, ..., b-1 and needs b > a")
            values.extend(str(v) for v in range(lo, hi))
        else:
            values.append(item)
    seen: set[str] = set()
    for v in values:
        if v in seen:
            hint = f" (a tuple value is written in brackets: {key}=({raw}))" if "," in raw else ""
            raise SweepError(f"{key}={raw}: the value {v!r} is listed twice{hint}")
        seen.add(v)
    return values


def parse_grid(args: Sequence[str]) -> Grid:
    """``["algo=happo,mappo", "seed=0:2"]`` -> ``[("algo", ["happo", "mappo"]), ("seed", ["0", "1"])]``."""
    grid: Grid = []
    keys: set[str] = set()
    for arg in args:
        if "=" not in arg:
            raise SweepError(f"expected key=v1,v2,... got {arg!r}")
        key, raw = arg.split("=", 1)
        key = key.strip()
        if not key:
            raise SweepError(f"expected key=v1,v2,... got {arg!r} (empty key)")
        if key in _RESERVED:
            raise SweepError(f"{key} cannot be swept: the sweep puts every run in SWEEP_DIR/runs/<name> and resumes "
                             "interrupted runs itself (choose SWEEP_DIR with --out)")
        if key in keys:
            raise SweepError(f"the key {key} is given twice; list its values once: {key}=v1,v2,...")
        keys.add(key)
        grid.append((key, split_values(key, raw)))
    return grid


def _sanitise(text: str) -> str:
    """A key or value as part of a directory name: ``/`` and ``,`` become ``-``, brackets go, any other
    character outside ``[A-Za-z0-9._=+-]`` becomes ``_``."""
    text = text.replace("/", "-").replace(",", "-")
    return _SAFE.sub("_", re.sub(r"[()\[\]]", "", text))


def _digest(text: str, n: int = 8) -> str:
    return hashlib.sha1(text.encode()).hexdigest()[:n]


def expand(grid: Grid) -> list[GridPoint]:
    """Every point of the grid (Cartesian product, last key fastest) with a unique, filesystem-safe name."""
    keys = [k for k, _ in grid]
    named = [k for k, vals in grid if len(vals) > 1 or k in _NAME_KEYS]
    points = []
    for combo in itertools.product(*(vals for _, vals in grid)):
        values = tuple(zip(keys, combo))
        raw = ",".join(f"{k}={v}" for k, v in values if k in named) or "run"
        name = ",".join(f"{_sanitise(k)}={_sanitise(v)}" for k, v in values if k in named) or "run"
        if len(name) > _MAX_NAME:
            name = f"{name[:_MAX_NAME]}-{_digest(raw)}"
        points.append((name, raw, values))
    counts: dict[str, int] = {}
    for name, _, _ in points:
        counts[name] = counts.get(name, 0) + 1
    out = [GridPoint(name if counts[name] == 1 else f"{name}-{_digest(raw)}", values) for name, raw, values in points]
    if len({p.name for p in out}) != len(out):  # a hash collision of two different points: practically impossible
        raise SweepError("two grid points got the same run name; rename a value")
    return out


def grid_digest(grid: Grid) -> str:
    return _digest(json.dumps(grid), 8)


# ------------------------------------------------------------------------------------------------ one run
def run_state(run_dir: Path) -> str:
    """``done`` (done.json written), ``interrupted`` (a run was started: config.yaml) or ``new``."""
    if (run_dir / DONE).is_file():
        return "done"
    if (run_dir / "config.yaml").is_file():
        return "interrupted"
    return "new"


def _append_attempt(run_dir: Path, record: dict[str, Any]) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    with (run_dir / ATTEMPTS).open("a") as fh:
        fh.write(json.dumps(record) + "\n")
        fh.flush()
        os.fsync(fh.fileno())


def read_attempts(run_dir: Path) -> list[dict[str, Any]]:
    path = Path(run_dir) / ATTEMPTS
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _crash_hook(run_dir: Path, spec: str | None) -> Callable | None:
    """The testing hook of :data:`CRASH_ENV` (module docstring)."""
    if not spec or (run_dir / _CRASH_MARKER).exists():
        return None
    at, _, mode = spec.partition(":")
    at_update = int(at)

    def hook(iteration: int, agent: Any, row: dict) -> None:
        if iteration == at_update and not (run_dir / _CRASH_MARKER).exists():
            (run_dir / _CRASH_MARKER).write_text(str(iteration))
            if mode == "exit":
                os._exit(3)
            raise RuntimeError(f"{CRASH_ENV}: crash at update {iteration} (testing hook)")

    return hook


class _NotRetryable(Exception):
    pass


def execute_run(spec: dict[str, Any]) -> dict[str, Any]:
    """Run (or continue, or skip) one grid point; returns ``{"name", "status", ...}``.

    ``spec``: ``name``, ``run_dir`` (absolute), ``overrides`` (``seqmarl train`` arguments), ``crash`` (the
    testing hook or None). A configuration, checkpoint or divergence error is returned as ``failed`` (a retry
    cannot help); any other exception propagates, so the backend retries the run (from its checkpoint)."""
    import torch

    torch.set_num_threads(1)
    name, run_dir = spec["name"], Path(spec["run_dir"])
    state = run_state(run_dir)
    if state == "done":
        return {"name": name, "status": "skipped", "final": json.loads((run_dir / DONE).read_text()).get("final")}
    from seqmarl import tuned
    from seqmarl import train as train_mod
    from seqmarl.algos.trainer import CheckpointError, DivergenceError, _atomic_write_text
    from seqmarl.config import ConfigError

    resumed = state == "interrupted"
    if resumed:
        args = [f"resume={run_dir}", "progress=false"]
    else:
        args = list(spec["overrides"]) + [f"run_dir={run_dir}"]
        if not any(a.split("=", 1)[0] == "progress" for a in args):
            args.append("progress=false")
    attempt = 1 + sum(1 for r in read_attempts(run_dir) if r.get("event") == "start")
    _append_attempt(run_dir, {"event": "start", "attempt": attempt, "resume": resumed, "pid": os.getpid(),
                              "host": socket.gethostname(), "time": time.time()})
    first: list[int] = []

    def note_first(iteration: int, agent: Any, row: dict) -> None:
        if not first:
            first.append(iteration)
            _append_attempt(run_dir, {"event": "first_update", "attempt": attempt, "iteration": iteration})

    callbacks = [note_first]
    hook = _crash_hook(run_dir, spec.get("crash"))
    if hook is not None:
        callbacks.append(hook)
    quiet = lambda text: None  # noqa: E731
    try:
        if hasattr(train_mod, "run_args"):  # seqmarl train's own argument handling (output keys such as logger=)
            trainer, history = train_mod.run_args(args, callbacks=callbacks, say=quiet)
        else:
            trainer, history = tuned.run_with_config(args, lambda cfg: train_mod.run(cfg, callbacks=callbacks, say=quiet))
    except (ConfigError, CheckpointError, DivergenceError, FileNotFoundError) as exc:
        _append_attempt(run_dir, {"event": "end", "attempt": attempt, "status": "failed", "error": str(exc)})
        return {"name": name, "status": "failed", "attempts": attempt, "error": f"{type(exc).__name__}: {exc}",
                "retryable": False}
    except BaseException as exc:
        _append_attempt(run_dir, {"event": "end", "attempt": attempt, "status": "crashed",
                                  "error": f"{type(exc).__name__}: {exc}"})
        raise
    rows = trainer.logger.rows() if trainer.logger is not None else list(history)
    final = rows[-1] if rows else {}
    _atomic_write_text(run_dir / DONE, json.dumps({"name": name, "iteration": trainer.iteration,
                                                   "env_steps": trainer.env_steps, "final": final,
                                                   "attempts": attempt, "time": time.time()}, indent=1))
    _append_attempt(run_dir, {"event": "end", "attempt": attempt, "status": "done"})
    return {"name": name, "status": "done", "attempts": attempt, "resumed": resumed, "final": final}


# ------------------------------------------------------------------------------------------------ backends
def _failed(name: str, exc: BaseException | str, attempts: int) -> dict[str, Any]:
    text = exc if isinstance(exc, str) else f"{type(exc).__name__}: {exc}"
    return {"name": name, "status": "failed", "attempts": attempts, "error": text.strip().splitlines()[-1] if text.strip() else text}


def run_local(specs: list[dict[str, Any]], workers: int, retries: int,
              say: Callable[[str], None]) -> list[dict[str, Any]]:
    """Run the specs on a process pool; an attempt that raised, or whose process died, is resubmitted while it
    has had at most ``retries`` failed attempts (a pool broken by a dead process is replaced; every run that
    was in flight on it counts one failed attempt)."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    # forkserver: a clean single-threaded server process imports seqmarl and torch once, every worker forks from
    # it (plain fork after torch started threads is unsafe; spawn re-imports torch in every worker and pool)
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["seqmarl.sweep", "seqmarl.train", "seqmarl.algos", "seqmarl.envs", "seqmarl.plots"])
    results: dict[str, dict[str, Any]] = {}
    tries: dict[str, int] = {s["name"]: 0 for s in specs}
    queue = list(specs)
    size = max(1, min(workers, len(specs)))
    with _terminate_raises_interrupt():
        while queue:
            with ProcessPoolExecutor(max_workers=size, mp_context=ctx) as pool, _stop_workers_on_interrupt(pool):
                queue = _run_pool(pool, queue, results, tries, retries, say)
    return [results[s["name"]] for s in specs]


@contextlib.contextmanager
def _terminate_raises_interrupt() -> Iterator[None]:
    """SIGTERM (``kill PID``) in this block raises ``KeyboardInterrupt`` like Ctrl-C, so the sweep stops its
    worker processes instead of leaving them training on (main thread only; the old handler is restored)."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    old = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


@contextlib.contextmanager
def _stop_workers_on_interrupt(pool: Any) -> Iterator[None]:
    """On ``KeyboardInterrupt`` (Ctrl-C, or SIGTERM via :func:`_terminate_raises_interrupt`) terminate the pool's
    worker processes before leaving (a run loses at most the updates since its last checkpoint: checkpoints and
    logs are written atomically, and running the sweep again resumes it); then re-raise."""
    try:
        yield
    except KeyboardInterrupt:
        for proc in list(getattr(pool, "_processes", {}).values()):  # the executor's worker processes
            with contextlib.suppress(Exception):
                proc.terminate()
        with contextlib.suppress(Exception):
            pool.shutdown(wait=False, cancel_futures=True)
        raise


def _run_pool(pool: Any, queue: list[dict[str, Any]], results: dict[str, dict[str, Any]], tries: dict[str, int],
              retries: int, say: Callable[[str], None]) -> list[dict[str, Any]]:
    """Run ``queue`` on ``pool`` (:func:`run_local`); returns the specs to run again on a fresh pool (those in flight
    when a worker died and broke the pool)."""
    from concurrent.futures import FIRST_COMPLETED, wait
    from concurrent.futures.process import BrokenProcessPool

    running = {pool.submit(execute_run, s): s for s in queue}
    queue = []
    broken = False
    while running:
        done, _ = wait(running, return_when=FIRST_COMPLETED)
        for fut in done:
            spec = running.pop(fut)
            name = spec["name"]
            tries[name] += 1
            try:
                res = fut.result()
            except BaseException as exc:  # noqa: BLE001 — a crashed attempt (BrokenProcessPool if it died)
                broken = broken or isinstance(exc, BrokenProcessPool)
                if tries[name] <= retries:
                    say(f"{name}: attempt {tries[name]} failed ({type(exc).__name__}: {exc}); "
                        "retrying from its last checkpoint")
                    if broken:
                        queue.append(spec)
                    else:
                        running[pool.submit(execute_run, spec)] = spec
                else:
                    results[name] = _failed(name, exc, tries[name])
                    say(f"{name}: failed after {tries[name]} attempt(s)")
                continue
            results[name] = res
            say(f"{name}: {res['status']}")
    return queue


def run_ray(specs: list[dict[str, Any]], retries: int, address: str | None, num_cpus: int | None,
            say: Callable[[str], None]) -> list[dict[str, Any]]:
    """Run the specs as Ray tasks (``num_cpus=1`` each, ``max_retries=retries``, ``retry_exceptions=True``).

    Uses the Ray runtime already initialised in this process if there is one; otherwise ``ray.init`` with
    ``include_dashboard=False`` (``address`` joins a cluster; without it a local runtime with ``num_cpus``)
    and ``ray.shutdown`` at the end."""
    try:
        import ray
    except ImportError:
        raise SweepError("--backend ray needs Ray: pip install 'seqmarl[ray]'") from None
    own = not ray.is_initialized()
    if own:
        kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
        if address:
            kwargs["address"] = address
        elif num_cpus is not None:
            kwargs["num_cpus"] = num_cpus
        try:
            ray.init(**kwargs)
        except (ConnectionError, ValueError, RuntimeError) as exc:
            raise SweepError(f"--address {address}: cannot start or join Ray: {exc}") from None
    try:
        task = ray.remote(num_cpus=1, max_retries=retries, retry_exceptions=True)(execute_run)
        refs = {task.remote(s): s for s in specs}
        results: dict[str, dict[str, Any]] = {}
        remaining = list(refs)
        while remaining:
            done, remaining = ray.wait(remaining, num_returns=1)
            spec = refs[done[0]]
            try:
                res = ray.get(done[0])
            except ray.exceptions.RayError as exc:
                attempts = sum(1 for r in read_attempts(Path(spec["run_dir"])) if r.get("event") == "start")
                cause = getattr(exc, "cause", None) or exc
                res = _failed(spec["name"], cause, attempts)
            results[spec["name"]] = res
            say(f"{spec['name']}: {res['status']}")
        return [results[s["name"]] for s in specs]
    finally:
        if own:
            ray.shutdown()


# ------------------------------------------------------------------------------------------------ the sweep
def validate_points(points: list[GridPoint]) -> None:
    """Resolve every point's configuration before anything runs (a bad value fails the sweep up front)."""
    from seqmarl import tuned
    from seqmarl.config import ConfigError, resolve

    from seqmarl import train as train_mod

    split = getattr(train_mod, "split_output_overrides", None)  # progress=, log_every_s=, logger= (train's own)
    for p in points:
        try:
            args = split(p.overrides())[0] if split is not None else p.overrides()
            resolve(tuned.parse_train_args(args))
        except ConfigError as exc:
            raise SweepError(f"run {p.name}: {exc}") from None


def load_or_write_manifest(sweep_dir: Path, grid: Grid, points: list[GridPoint]) -> None:
    """Write ``sweep.json``; if the directory already holds a sweep it must be the same grid (resume)."""
    manifest = {"format": 1, "grid": [[k, v] for k, v in grid],
                "runs": [{"name": p.name, "overrides": p.overrides()} for p in points]}
    path = sweep_dir / MANIFEST
    if path.is_file():
        old = json.loads(path.read_text())
        if old.get("grid") != manifest["grid"]:
            raise SweepError(f"--out {sweep_dir} holds another sweep (its grid: "
                             f"{' '.join(k + '=' + ','.join(v) for k, v in old.get('grid', []))}); choose another --out")
        return
    sweep_dir.mkdir(parents=True, exist_ok=True)
    from seqmarl.algos.trainer import _atomic_write_text

    _atomic_write_text(path, json.dumps(manifest, indent=1))


def read_manifest(sweep_dir: Path) -> Grid:
    path = Path(sweep_dir) / MANIFEST
    if not path.is_file():
        raise SweepError(f"{sweep_dir} has no {MANIFEST}: give the grid (key=v1,v2 ...) to start a sweep there")
    return [(k, list(v)) for k, v in json.loads(path.read_text())["grid"]]


def run_sweep(grid: Grid, sweep_dir: str | Path, backend: str = "local", workers: int | None = None,
              retries: int = 2, address: str | None = None, num_cpus: int | None = None,
              say: Callable[[str], None] = lambda t: print(t, file=sys.stderr)) -> list[dict[str, Any]]:
    """Expand, validate, write the manifest, run what is not finished; returns one result per grid point
    (``status``: done / skipped / failed) and writes ``summary.json``."""
    if backend not in ("local", "ray"):
        raise SweepError(f"--backend must be local or ray, got {backend!r}")
    if retries < 0:
        raise SweepError(f"--retries must be >= 0, got {retries}")
    points = expand(grid)
    validate_points(points)
    sweep_dir = Path(sweep_dir).resolve()
    if sweep_dir.exists() and not sweep_dir.is_dir():
        raise SweepError(f"--out {sweep_dir} is a file, not a directory")
    load_or_write_manifest(sweep_dir, grid, points)
    crash = os.environ.get(CRASH_ENV) or None
    specs = [{"name": p.name, "run_dir": str(sweep_dir / "runs" / p.name), "overrides": p.overrides(),
              "crash": crash} for p in points]
    todo = [s for s in specs if run_state(Path(s["run_dir"])) != "done"]
    skipped = [{"name": s["name"], "status": "skipped",
                "final": json.loads((Path(s["run_dir"]) / DONE).read_text()).get("final")} for s in specs if s not in todo]
    say(f"sweep {sweep_dir}: {len(specs)} run(s), {len(skipped)} already finished, {len(todo)} to run "
        f"({sum(run_state(Path(s['run_dir'])) == 'interrupted' for s in todo)} resumed) on the {backend} backend")
    if not todo:
        ran: list[dict[str, Any]] = []
    elif backend == "local":
        ran = run_local(todo, workers or os.cpu_count() or 1, retries, say)
    else:
        ran = run_ray(todo, retries, address, num_cpus, say)
    by_name = {r["name"]: r for r in ran + skipped}
    results = [by_name[s["name"]] for s in specs]
    from seqmarl.algos.trainer import _atomic_write_text

    _atomic_write_text(sweep_dir / SUMMARY, json.dumps({"backend": backend, "results": results}, indent=1, default=str))
    return results


def format_summary(results: list[dict[str, Any]]) -> str:
    width = max([len(r["name"]) for r in results] + [4])
    lines = [f"{'run':{width}s}  status   attempts  final episode_return"]
    for r in results:
        final = (r.get("final") or {}).get("episode_return")
        shown = "" if final is None else f"{final:.4f}"
        lines.append(f"{r['name']:{width}s}  {r['status']:8s} {str(r.get('attempts', '-')):>8s}  {shown}")
        if r["status"] == "failed":
            lines.append(f"{'':{width}s}  error: {r.get('error', '')}")
    failed = sum(r["status"] == "failed" for r in results)
    lines.append(f"{len(results)} run(s): {sum(r['status'] == 'done' for r in results)} done, "
                 f"{sum(r['status'] == 'skipped' for r in results)} skipped (finished before), {failed} failed")
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------------ CLI
def _positive(name: str) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be a positive integer, got {text!r}") from None
        if value < (0 if name == "--retries" else 1):
            raise argparse.ArgumentTypeError(f"{name} must be {'>= 0' if name == '--retries' else '>= 1'}, got {text!r}")
        return value

    return parse


def _args(p: argparse.ArgumentParser) -> None:
    p.usage = "seqmarl sweep [options] key=v1,v2 ... (e.g. algo=happo,mappo env=matrix/xor seed=0:5 algo.lr=5e-4,1e-3)"
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.epilog = ("a:b is the integer range a..b-1; a value containing commas goes in brackets: algo.hidden=(64,64),(32,32).\n"
                "Running the same command again resumes the sweep: finished runs are skipped, interrupted ones continue "
                "from their last checkpoint. docs/sweeps.md")
    p.add_argument("--out", metavar="SWEEP_DIR", help="sweep directory (default sweeps/sweep-<hash of the grid>); "
                   "with no grid arguments, resumes the sweep saved there")
    p.add_argument("--backend", choices=("local", "ray"), default="local",
                   help="local: a process pool on this machine (default); ray: Ray tasks")
    p.add_argument("--workers", type=_positive("--workers"), default=None,
                   help="local backend: parallel runs (default: the number of CPU cores)")
    p.add_argument("--address", default=None, help="ray backend: address of a running Ray cluster (default: start "
                   "a local Ray runtime)")
    p.add_argument("--num-cpus", type=_positive("--num-cpus"), default=None,
                   help="ray backend without --address: CPUs of the local Ray runtime (default: all)")
    p.add_argument("--retries", type=_positive("--retries"), default=2,
                   help="retries of a failed run, each from its last checkpoint (default 2)")
    p.add_argument("--dry-run", action="store_true", help="print the grid (run names and arguments) and exit")


@command("sweep", "run a grid of training runs locally or on Ray: seqmarl sweep algo=happo,mappo seed=0:3", _args)
def _main(ns: argparse.Namespace) -> int:
    overrides = list(getattr(ns, "overrides", []) or [])
    try:
        if not overrides:
            if ns.out and (Path(ns.out) / MANIFEST).is_file():
                grid = read_manifest(Path(ns.out))
            else:
                print("error: give the grid as key=v1,v2 ... (or --out SWEEP_DIR of an existing sweep to resume it); "
                      "see seqmarl sweep --help", file=sys.stderr)
                return 2
        else:
            grid = parse_grid(overrides)
        if ns.backend == "local" and (ns.address or ns.num_cpus):
            raise SweepError("--address and --num-cpus belong to --backend ray")
        sweep_dir = Path(ns.out) if ns.out else Path("sweeps") / f"sweep-{grid_digest(grid)}"
        if ns.dry_run:
            points = expand(grid)
            print(f"{len(points)} run(s) into {sweep_dir}/runs/:")
            for p in points:
                print(f"  {p.name}: seqmarl train {' '.join(p.overrides())}")
            return 0
        results = run_sweep(grid, sweep_dir, backend=ns.backend, workers=ns.workers, retries=ns.retries,
                            address=ns.address, num_cpus=ns.num_cpus)
    except SweepError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # Ctrl-C or SIGTERM: the local backend has stopped its workers
        print("interrupted: the runs were stopped (each keeps its last checkpoint); run the same command again to "
              "resume them (finished runs are skipped)", file=sys.stderr)
        return 130
    print(format_summary(results))
    print(f"sweep dir: {sweep_dir}  (report: seqmarl report {sweep_dir})")
    return 1 if any(r["status"] == "failed" for r in results) else 0
