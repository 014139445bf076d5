"""Step CPU-heavy simulators (MuJoCo, MPE, GRF, ...) in ``W`` worker processes through shared memory.

A batched adapter (e.g. :class:`seqmarl.envs.mamujoco.MaMuJoCoEnv`) keeps ``B`` independent simulator
instances. Stepping them one after another in the trainer's process is ``workers=0``; with ``workers=W`` the
``B`` instances are split into ``W`` contiguous slices (sizes differ by at most one) and every worker process
steps its slice. Everything that changes per step (actions, observations, rewards, flags, reset seeds) lives
in ONE block of shared memory; a step costs one byte sent to every worker and one byte back (no per-step
pickling of arrays). Only the worker's start-up arguments are pickled, once.

Protocol between an adapter and this module
-------------------------------------------
* The adapter describes its per-instance buffers as :class:`Field` s (name, per-instance shape, numpy dtype).
  Every field gets a ``[B, *shape]`` array; a slice for instances ``[start, stop)`` sees rows ``start:stop``.
  The field names ``"seeds"`` (int64, shape ``()``) must exist: :meth:`VectorBackend.reset` writes the seeds
  there before the slices reset.
* The simulator side is a :class:`SliceSimulator`: built *inside* the worker by a picklable
  ``factory(num_instances)`` (a module-level function or a :func:`functools.partial` of one), bound to its row
  views with ``bind(buffers)``, then driven by ``reset()`` (read ``buffers["seeds"]``, start every instance)
  and ``step()`` (read the inputs, e.g. ``buffers["actions"]``, write the outputs, auto-reset as the adapter
  defines). In-process stepping (:class:`InProcessBackend`) runs the very same slice code on the full arrays,
  which is why pool and in-process trajectories are identical (tested in ``tests/envs/test_workers.py``).

Process hygiene: workers use the ``spawn`` start method by default (safe with the threads of torch/jax;
``fork`` and ``forkserver`` can be chosen), are daemonic, exit on their own when the parent's pipe closes, and
are joined by :meth:`WorkerPool.close` (also called by ``atexit`` and by the garbage collector). An exception
in a worker is sent back as its formatted traceback and raised in the parent as :class:`WorkerError`; the pool
is then closed (the slices' states are no longer consistent). A worker that dies without a word (e.g. a
segfault in the simulator) raises :class:`WorkerError` with its exit code.
"""

from __future__ import annotations

import atexit
import ctypes
import multiprocessing as mp
import os
import threading
import traceback
import weakref
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Protocol, Sequence

import numpy as np

__all__ = [
    "Field",
    "SliceSimulator",
    "VectorBackend",
    "InProcessBackend",
    "WorkerPool",
    "WorkerError",
    "make_backend",
    "split_evenly",
    "CountingSimulator",
]

_ALIGN = 64  # every field starts on a cache line
_STEP, _RESET, _CLOSE, _OK, _ERR = b"S", b"R", b"C", b"K", b"E"


class WorkerError(RuntimeError):
    """A worker process failed; the message carries the worker's own traceback text."""


@dataclass(frozen=True)
class Field:
    """One per-instance shared buffer: ``[B, *shape]`` of numpy ``dtype``."""

    name: str
    shape: tuple[int, ...]
    dtype: str

    def nbytes(self, num_envs: int) -> int:
        return int(np.dtype(self.dtype).itemsize * num_envs * int(np.prod(self.shape, dtype=np.int64)))


class SliceSimulator(Protocol):
    """The simulator side: a slice of ``k`` instances stepped in one process (module docstring)."""

    def bind(self, buffers: Mapping[str, np.ndarray]) -> None: ...

    def reset(self) -> None: ...

    def step(self) -> None: ...

    def close(self) -> None: ...


def split_evenly(num_envs: int, workers: int) -> list[tuple[int, int]]:
    """``[start, stop)`` of each worker's slice: contiguous, sizes differing by at most one, none empty."""
    if workers < 1 or workers > num_envs:
        raise ValueError(f"workers must be in [1, num_envs={num_envs}], got {workers}")
    base, extra = divmod(num_envs, workers)
    bounds, start = [], 0
    for w in range(workers):
        stop = start + base + (1 if w < extra else 0)
        bounds.append((start, stop))
        start = stop
    return bounds


def _layout(fields: Sequence[Field], num_envs: int) -> tuple[dict[str, int], int]:
    offsets, total = {}, 0
    for f in fields:
        offsets[f.name] = total
        total += -(-f.nbytes(num_envs) // _ALIGN) * _ALIGN
    return offsets, max(total, _ALIGN)


def _views(raw: Any, fields: Sequence[Field], num_envs: int, start: int = 0, stop: int | None = None) -> dict[str, np.ndarray]:
    """Numpy views ``[stop - start, *shape]`` of every field inside the byte buffer ``raw`` (no copies)."""
    stop = num_envs if stop is None else stop
    flat = np.frombuffer(raw, dtype=np.uint8)
    offsets, _ = _layout(fields, num_envs)
    out = {}
    for f in fields:
        n = f.nbytes(num_envs)
        full = flat[offsets[f.name]: offsets[f.name] + n].view(np.dtype(f.dtype)).reshape((num_envs, *f.shape))
        out[f.name] = full[start:stop]
    return out


def _check_fields(fields: Sequence[Field]) -> tuple[Field, ...]:
    fields = tuple(fields)
    names = [f.name for f in fields]
    if len(set(names)) != len(names):
        raise ValueError(f"fields must have distinct names, got {names}")
    if "seeds" not in names:
        raise ValueError("fields must include Field('seeds', (), 'int64') (reset() writes the seeds there)")
    return fields


class VectorBackend:
    """Common interface of :class:`InProcessBackend` and :class:`WorkerPool`: ``buffers`` (the full ``[B, ...]``
    arrays), ``reset(seeds)``, ``step()``, ``close()``."""

    buffers: dict[str, np.ndarray]
    num_envs: int
    workers: int

    def reset(self, seeds: np.ndarray) -> None:
        raise NotImplementedError

    def step(self) -> None:
        raise NotImplementedError

    def step_begin(self) -> None:
        """Start :meth:`step` (the worker pool returns at once; in-process stepping happens here);
        :meth:`step_end` waits for it. ``step_begin(); step_end()`` is ``step()``."""
        self.step()

    def step_end(self) -> None:
        """Wait for the step begun by :meth:`step_begin`."""

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> "VectorBackend":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class InProcessBackend(VectorBackend):
    """``workers=0``: one slice of all ``B`` instances, stepped in this process on plain numpy arrays."""

    def __init__(self, factory: Callable[[int], SliceSimulator], num_envs: int, fields: Sequence[Field]) -> None:
        self.fields = _check_fields(fields)
        self.num_envs = int(num_envs)
        self.workers = 0
        self.buffers = {f.name: np.zeros((self.num_envs, *f.shape), dtype=np.dtype(f.dtype)) for f in self.fields}
        self._sim: SliceSimulator | None = factory(self.num_envs)
        self._sim.bind(self.buffers)

    def reset(self, seeds: np.ndarray) -> None:
        self.buffers["seeds"][:] = seeds
        self._require().reset()

    def step(self) -> None:
        self._require().step()

    def _require(self) -> SliceSimulator:
        if self._sim is None:
            raise RuntimeError("the environment is closed")
        return self._sim

    def close(self) -> None:
        if self._sim is not None:
            sim, self._sim = self._sim, None
            sim.close()


# ------------------------------------------------------------------------------------------------------
# the worker process
# ------------------------------------------------------------------------------------------------------
def _worker_main(conn: Any, raw: Any, fields: tuple[Field, ...], num_envs: int, start: int, stop: int,
                 factory: Callable[[int], SliceSimulator]) -> None:
    """Body of one worker: build the slice, then serve one-byte commands until told to close."""
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    sim = None
    try:
        sim = factory(stop - start)
        sim.bind(_views(raw, fields, num_envs, start, stop))
        conn.send_bytes(_OK)
    except BaseException:  # noqa: BLE001 - everything goes back to the parent
        _send_error(conn, "while building its simulators")
        return
    try:
        while True:
            try:
                cmd = conn.recv_bytes()
            except (EOFError, OSError):  # the parent is gone
                break
            if cmd == _STEP or cmd == _RESET:
                try:
                    sim.step() if cmd == _STEP else sim.reset()
                except BaseException:  # noqa: BLE001
                    _send_error(conn, "in step()" if cmd == _STEP else "in reset()")
                    break
                conn.send_bytes(_OK)
            elif cmd == _CLOSE:
                break
    finally:
        try:
            sim.close()
        except BaseException:  # noqa: BLE001 - closing is best effort
            pass
        conn.close()


def _send_error(conn: Any, where: str) -> None:
    text = f"{where} (pid {os.getpid()}):\n{traceback.format_exc()}"
    try:
        conn.send_bytes(_ERR + text.encode("utf-8", "replace"))
    except (OSError, ValueError):
        pass


_LIVE_POOLS: "weakref.WeakSet[WorkerPool]" = weakref.WeakSet()


@atexit.register
def _close_live_pools() -> None:
    for pool in list(_LIVE_POOLS):
        pool.close()


class WorkerPool(VectorBackend):
    """``W`` worker processes, each stepping a contiguous slice of the ``B`` instances (module docstring).

    Args:
        factory: picklable ``factory(k) -> SliceSimulator`` run inside each worker.
        num_envs: ``B``.
        fields: the shared buffers (must include ``Field("seeds", (), "int64")``).
        workers: ``W`` (1 <= W <= B).
        start_method: ``"spawn"`` (default), ``"forkserver"`` or ``"fork"``.
        timeout: seconds to wait for a worker's answer before raising :class:`WorkerError` (None waits forever).
    """

    def __init__(self, factory: Callable[[int], SliceSimulator], num_envs: int, fields: Sequence[Field], workers: int,
                 start_method: str = "spawn", timeout: float | None = None) -> None:
        self.fields = _check_fields(fields)
        self.num_envs = int(num_envs)
        self.workers = int(workers)
        self.timeout = timeout
        self._closed = False
        self._lock = threading.Lock()
        self.slices = split_evenly(self.num_envs, self.workers)
        if start_method not in mp.get_all_start_methods():
            raise ValueError(f"start_method must be one of {mp.get_all_start_methods()}, got {start_method!r}")
        ctx = mp.get_context(start_method)
        if start_method == "forkserver":  # the server imports this module once; workers then fork from it
            ctx.set_forkserver_preload(["seqmarl.envs.workers"])
        _, nbytes = _layout(self.fields, self.num_envs)
        # A RawArray lives in an already-unlinked file (no name to leak, no resource-tracker entry) and is
        # handed to the children at start-up.
        self._raw = ctx.RawArray(ctypes.c_uint8, nbytes)
        self.buffers = _views(self._raw, self.fields, self.num_envs)
        self._procs: list[Any] = []
        self._conns: list[Any] = []
        _LIVE_POOLS.add(self)
        try:
            for w, (start, stop) in enumerate(self.slices):
                parent, child = ctx.Pipe(duplex=True)
                proc = ctx.Process(target=_worker_main, name=f"seqmarl-worker-{w}",
                                   args=(child, self._raw, self.fields, self.num_envs, start, stop, factory), daemon=True)
                proc.start()
                child.close()
                self._procs.append(proc)
                self._conns.append(parent)
            self._collect("starting")
        except BaseException:
            self.close()
            raise

    @property
    def pids(self) -> list[int]:
        """Process ids of the workers (empty once closed)."""
        return [p.pid for p in self._procs if p.pid is not None]

    def reset(self, seeds: np.ndarray) -> None:
        self._require()
        self.buffers["seeds"][:] = seeds
        self._broadcast(_RESET, "reset")

    def step(self) -> None:
        self._require()
        self._broadcast(_STEP, "step")

    def step_begin(self) -> None:
        """Send the step command to every worker and return while they step (the lock is held until
        :meth:`step_end` has collected every answer)."""
        self._require()
        self._lock.acquire()
        try:
            self._send(_STEP, "step")
        except BaseException:
            self._lock.release()
            raise
        self._stepping = True

    def step_end(self) -> None:
        if not getattr(self, "_stepping", False):
            raise RuntimeError("step_end() without step_begin()")
        self._stepping = False
        try:
            self._collect("step")
        finally:
            self._lock.release()

    def _require(self) -> None:
        if self._closed:
            raise RuntimeError("the environment is closed (its worker pool was shut down)")

    def _send(self, cmd: bytes, what: str) -> None:
        for w, conn in enumerate(self._conns):
            try:
                conn.send_bytes(cmd)
            except (OSError, ValueError):
                self._fail(w, what)

    def _broadcast(self, cmd: bytes, what: str) -> None:
        with self._lock:
            self._send(cmd, what)
            self._collect(what)

    def _collect(self, what: str) -> None:
        errors = []
        for w, conn in enumerate(self._conns):
            try:
                if self.timeout is not None and not conn.poll(self.timeout):
                    errors.append(f"worker {w} (pid {self._procs[w].pid}) gave no answer to {what} within {self.timeout} s")
                    continue
                msg = conn.recv_bytes()
            except (EOFError, OSError):
                errors.append(self._death_note(w, what))
                continue
            if msg[:1] == _ERR:
                errors.append(f"worker {w} (instances {self.slices[w][0]}..{self.slices[w][1] - 1}) failed "
                              + msg[1:].decode("utf-8", "replace"))
        if errors:
            self.close()
            raise WorkerError("\n".join(errors))

    def _death_note(self, w: int, what: str) -> str:
        proc = self._procs[w]
        proc.join(timeout=1.0)
        hint = ""
        if what == "starting":
            hint = ("; with start_method 'spawn' or 'forkserver' a worker re-imports the main script, so a script "
                    "must build environments under `if __name__ == \"__main__\":` (its stderr shows the child's error)")
        return (f"worker {w} (pid {proc.pid}, instances {self.slices[w][0]}..{self.slices[w][1] - 1}) died during "
                f"{what} with exit code {proc.exitcode} and no traceback (killed, or crashed in native code){hint}")

    def _fail(self, w: int, what: str) -> None:
        note = self._death_note(w, what)
        self.close()
        raise WorkerError(note)

    def close(self) -> None:
        """Stop and join every worker (idempotent). Workers that do not exit within 5 s are terminated,
        then killed."""
        if self._closed:
            return
        self._closed = True
        for conn in self._conns:
            try:
                conn.send_bytes(_CLOSE)
            except (OSError, ValueError):
                pass
        for proc in self._procs:
            proc.join(timeout=5.0)
            if proc.is_alive():
                proc.terminate()
                proc.join(timeout=2.0)
            if proc.is_alive():
                proc.kill()
                proc.join()
        for conn in self._conns:
            conn.close()
        self._procs, self._conns = [], []
        _LIVE_POOLS.discard(self)

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # noqa: BLE001 - interpreter shutdown
            pass


def make_backend(factory: Callable[[int], SliceSimulator], num_envs: int, fields: Sequence[Field], workers: int = 0,
                 start_method: str = "spawn") -> VectorBackend:
    """``workers=0``: :class:`InProcessBackend`; ``workers=W >= 1``: :class:`WorkerPool` (``W`` is capped at
    ``num_envs``). Raises ``ValueError`` naming ``workers`` for a negative or non-integer value."""
    if isinstance(workers, bool) or not isinstance(workers, (int, np.integer)):
        raise TypeError(f"workers must be an integer (0 = step in this process), got {type(workers).__name__}")
    if workers < 0:
        raise ValueError(f"workers must be >= 0 (0 = step in this process), got {workers}")
    if workers == 0:
        return InProcessBackend(factory, num_envs, fields)
    return WorkerPool(factory, num_envs, fields, min(int(workers), int(num_envs)), start_method=start_method)


# ------------------------------------------------------------------------------------------------------
# a reference slice (documentation and tests of the pool)
# ------------------------------------------------------------------------------------------------------
class CountingSimulator:
    """A tiny deterministic :class:`SliceSimulator` (pure numpy) showing the protocol; used by the pool's tests.

    Fields: ``seeds`` int64, ``actions`` float32 ``[n]``, ``obs`` float32 ``[n]``, ``reward`` float64,
    ``done`` bool, ``pid`` int64 (the process that stepped the instance). Each instance holds ``x`` (start:
    ``seed % 7`` in every agent); a step adds the actions, ``reward = x.sum()``, and the episode ends after
    ``horizon`` steps (then ``x`` restarts at ``(seed + episode) % 7``). ``fail_at = (seed, step)``: the slice
    holding the instance reset with that seed raises ``ValueError`` at that step (counted from the last
    reset); ``exit_at`` likewise calls ``os._exit(3)`` (a death without traceback).
    """

    def __init__(self, k: int, n: int = 2, horizon: int = 5,
                 fail_at: tuple[int, int] | None = None, exit_at: tuple[int, int] | None = None) -> None:
        self.k, self.n, self.horizon = k, n, horizon
        self.fail_at, self.exit_at = fail_at, exit_at
        self.buffers: Mapping[str, np.ndarray] = {}
        self.x = np.zeros((k, n))
        self.t = np.zeros(k, dtype=np.int64)
        self.episode = np.zeros(k, dtype=np.int64)
        self.steps = 0

    @staticmethod
    def fields(n: int = 2) -> list[Field]:
        return [Field("seeds", (), "int64"), Field("actions", (n,), "float32"), Field("obs", (n,), "float32"),
                Field("reward", (), "float64"), Field("done", (), "bool"), Field("pid", (), "int64")]

    def bind(self, buffers: Mapping[str, np.ndarray]) -> None:
        self.buffers = buffers

    def reset(self) -> None:
        seeds = self.buffers["seeds"]
        self.x[:] = (seeds % 7)[:, None]
        self.t[:] = 0
        self.episode[:] = 0
        self.steps = 0
        self.buffers["obs"][:] = self.x
        self.buffers["pid"][:] = os.getpid()

    def step(self) -> None:
        self.steps += 1
        for seed in self.buffers["seeds"].tolist():
            if self.fail_at is not None and (seed, self.steps) == tuple(self.fail_at):
                raise ValueError(f"CountingSimulator: planned failure of the instance seeded {seed} at step {self.steps}")
            if self.exit_at is not None and (seed, self.steps) == tuple(self.exit_at):
                os._exit(3)
        self.x += self.buffers["actions"]
        self.t += 1
        self.buffers["reward"][:] = self.x.sum(axis=1)
        done = self.t >= self.horizon
        self.buffers["done"][:] = done
        self.episode += done
        restart = (self.buffers["seeds"] + self.episode) % 7
        self.x[done] = restart[done, None]
        self.t[done] = 0
        self.buffers["obs"][:] = self.x
        self.buffers["pid"][:] = os.getpid()

    def close(self) -> None:
        pass
