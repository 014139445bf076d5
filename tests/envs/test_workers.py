"""seqmarl.envs.workers: the shared-memory worker pool gives the in-process trajectories, sends one byte per step,
propagates a worker's traceback, and leaves no child process behind (close, errors, interpreter exit)."""

from __future__ import annotations

import functools
import multiprocessing as mp
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from seqmarl.envs.workers import CountingSimulator, Field, InProcessBackend, WorkerError, WorkerPool, make_backend, split_evenly

B, N = 5, 2
FAST = "forkserver"  # pool tests of the toy simulator: one server start, then cheap forks (spawn is tested below)


def _alive(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie (Linux /proc)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(") ")[1][0] != "Z"
    except FileNotFoundError:
        return False


def _run(backend, steps: int, seeds: np.ndarray) -> list[dict[str, np.ndarray]]:
    backend.reset(seeds)
    out = [{k: v.copy() for k, v in backend.buffers.items()}]
    rng = np.random.default_rng(0)
    for _ in range(steps):
        backend.buffers["actions"][:] = rng.integers(-2, 3, size=(B, N))
        backend.step()
        out.append({k: v.copy() for k, v in backend.buffers.items()})
    return out


def test_split_evenly():
    assert split_evenly(5, 2) == [(0, 3), (3, 5)]
    assert split_evenly(4, 4) == [(0, 1), (1, 2), (2, 3), (3, 4)]
    with pytest.raises(ValueError, match="workers must be in"):
        split_evenly(2, 3)


def test_make_backend_arguments_are_named():
    factory = functools.partial(CountingSimulator, n=N)
    with pytest.raises(ValueError, match="workers must be >= 0"):
        make_backend(factory, B, CountingSimulator.fields(N), workers=-1)
    with pytest.raises(TypeError, match="workers must be an integer"):
        make_backend(factory, B, CountingSimulator.fields(N), workers=True)
    with pytest.raises(ValueError, match="seeds"):
        InProcessBackend(factory, B, [Field("obs", (N,), "float32")])
    with pytest.raises(ValueError, match="start_method"):
        WorkerPool(factory, B, CountingSimulator.fields(N), workers=2, start_method="teleport")


def test_pool_equals_in_process_and_sends_one_byte_per_step():
    factory = functools.partial(CountingSimulator, n=N, horizon=3)
    seeds = np.arange(10, 10 + B)
    local = InProcessBackend(factory, B, CountingSimulator.fields(N))
    expected = _run(local, 8, seeds)
    assert set(expected[-1]["pid"].tolist()) == {os.getpid()}
    pool = WorkerPool(factory, B, CountingSimulator.fields(N), workers=2, start_method=FAST)
    try:
        sent: list[bytes] = []
        for conn in pool._conns:  # spy on the command channel
            original = conn.send_bytes
            conn.send_bytes = (lambda orig: (lambda data, *a: (sent.append(bytes(data)), orig(data, *a))[1]))(original)
        got = _run(pool, 8, seeds)
        pids = pool.pids
        assert len(set(pids)) == 2 and os.getpid() not in pids
        # instances 0..2 are stepped by worker 0, 3..4 by worker 1
        assert got[-1]["pid"].tolist() == [pids[0]] * 3 + [pids[1]] * 2
        for t, (a, b) in enumerate(zip(expected, got)):
            for key in ("obs", "reward", "done"):
                np.testing.assert_array_equal(a[key], b[key], err_msg=f"step {t}, {key}")
        assert sent == [b"R", b"R"] + [b"S", b"S"] * 8  # one byte per worker and command, no pickled arrays
    finally:
        pool.close()
    assert not any(_alive(p) for p in pids)
    with pytest.raises(RuntimeError, match="closed"):
        pool.step()
    pool.close()  # idempotent


def test_worker_exception_carries_its_traceback_and_closes_the_pool():
    factory = functools.partial(CountingSimulator, n=N, fail_at=(13, 2))  # the instance seeded 13 fails at step 2
    pool = WorkerPool(factory, B, CountingSimulator.fields(N), workers=2, start_method=FAST)
    pids = pool.pids
    pool.reset(np.arange(10, 10 + B))
    pool.step()
    with pytest.raises(WorkerError) as info:
        pool.step()
    text = str(info.value)
    assert "worker 1 (instances 3..4) failed in step()" in text
    assert "Traceback (most recent call last)" in text and "workers.py" in text
    assert "ValueError: CountingSimulator: planned failure of the instance seeded 13 at step 2" in text
    assert pool.pids == [] and not any(_alive(p) for p in pids)
    assert not [c for c in mp.active_children() if c.pid in pids]


def test_worker_death_without_traceback_is_reported():
    factory = functools.partial(CountingSimulator, n=N, exit_at=(10, 1))
    pool = WorkerPool(factory, B, CountingSimulator.fields(N), workers=2, start_method=FAST)
    pids = pool.pids
    pool.reset(np.arange(10, 10 + B))
    with pytest.raises(WorkerError, match=r"worker 0 \(pid \d+, instances 0..2\) died during step with exit code 3"):
        pool.step()
    assert not any(_alive(p) for p in pids)


def test_failure_while_building_is_raised():
    with pytest.raises(WorkerError, match=r"while building its simulators(.|\n)*TypeError"):
        WorkerPool(functools.partial(CountingSimulator, no_such_option=1), B, CountingSimulator.fields(N), workers=2,
                   start_method=FAST)


def test_interpreter_exit_leaves_no_worker(tmp_path):
    """A script that never calls close(): atexit joins the workers."""
    script = tmp_path / "leave_open.py"
    script.write_text(textwrap.dedent("""
        import functools
        from seqmarl.envs.workers import CountingSimulator, WorkerPool

        if __name__ == "__main__":
            pool = WorkerPool(functools.partial(CountingSimulator, n=2), 4, CountingSimulator.fields(2), workers=2)
            print(" ".join(str(p) for p in pool.pids), flush=True)
    """))
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    pids = [int(p) for p in out.stdout.split()]
    assert len(pids) == 2 and not any(_alive(p) for p in pids)


# ------------------------------------------------------------------------------------------------------
# a real simulator: MaMuJoCo through the pool equals in-process stepping
# ------------------------------------------------------------------------------------------------------
try:
    import gymnasium_robotics  # noqa: F401

    HAVE_MUJOCO, WHY = True, ""
except ImportError as exc:  # pragma: no cover
    HAVE_MUJOCO, WHY = False, f"gymnasium-robotics is not installed ({exc}); pip install seqmarl[mujoco]"
    print(f"SKIP mamujoco worker tests: {WHY}", file=sys.stderr)


@pytest.mark.skipif(not HAVE_MUJOCO, reason=WHY)
def test_mamujoco_workers_give_the_in_process_trajectories():
    from seqmarl.envs.mamujoco import MaMuJoCoEnv

    def rollout(workers: int) -> list[torch.Tensor]:
        env = MaMuJoCoEnv("Hopper", "3x1", num_envs=3, seed=4, episode_limit=25, workers=workers)
        try:
            gen = torch.Generator().manual_seed(0)
            step = env.reset()
            out = [step.obs, step.state]
            for _ in range(40):
                step = env.step(torch.rand(3, 3, 1, generator=gen) * 2 - 1)
                out += [step.obs, step.state, step.reward, step.terminated, step.truncated, step.info["final_obs"]]
            return out
        finally:
            env.close()

    local, pooled = rollout(0), rollout(2)
    assert len(local) == len(pooled)
    for k, (a, b) in enumerate(zip(local, pooled)):
        assert torch.equal(a, b), f"entry {k} differs"
    assert any(bool(t.any()) for t in local[5::6])  # some episode was truncated (limit 25) ...
    assert any(bool(t.any()) for t in local[4::6])  # ... and some Hopper fell (terminated)
