"""``step_async`` / ``step_wait`` (the split step the trainer overlaps with its own work) is exactly ``step``: same
checks, same results, for an env of the base protocol, one with its own ``step`` (PettingZoo) and the split
backends (SMAX's asynchronous dispatch, the MaMuJoCo worker pool); misuse raises."""

from __future__ import annotations

import functools

import numpy as np
import pytest
import torch

from seqmarl.envs import make
from seqmarl.envs.workers import CountingSimulator, WorkerPool


def _same_steps(name: str, steps: int = 12, split_kw: dict | None = None, **kw) -> None:
    """Two copies of ``name`` stepped with the same random actions, one by step(), one by step_async/step_wait
    (built with ``split_kw`` on top of ``kw``)."""
    e1, e2 = make(name, seed=4, **kw), make(name, seed=4, **kw, **(split_kw or {}))
    try:
        s1, s2 = e1.reset(seed=4), e2.reset(seed=4)
        gen = torch.Generator().manual_seed(0)
        for t in range(steps):
            if e1.spec.is_discrete:
                logits = torch.where(s1.avail_actions, 0.0, -1e9)
                actions = torch.multinomial(torch.softmax(logits, -1).reshape(-1, logits.shape[-1]), 1,
                                            generator=gen).reshape(logits.shape[:-1])
            else:
                actions = torch.rand(e1.num_envs, e1.spec.n_agents, e1.spec.act_dim, generator=gen) * 2 - 1
            s1 = e1.step(actions)
            e2.step_async(actions.clone())
            s2 = e2.step_wait()
            for field in ("obs", "state", "avail_actions", "reward", "terminated", "truncated"):
                a, b = getattr(s1, field), getattr(s2, field)
                assert (a is None and b is None) or torch.equal(a, b), f"{name} step {t}: {field}"
            assert s1.info.keys() == s2.info.keys()
            for key, value in s1.info.items():
                if isinstance(value, torch.Tensor):
                    assert torch.equal(value, s2.info[key]), f"{name} step {t}: info[{key!r}]"
    finally:
        for e in (e1, e2):
            if hasattr(e, "close"):
                e.close()


def test_split_step_equals_step_on_the_base_protocol():
    _same_steps("matrix/climbing", num_envs=6)
    _same_steps("bridge", num_envs=3, steps=30)


def test_split_step_misuse_raises_and_checks_actions_first():
    env = make("matrix/climbing", num_envs=2, seed=0)
    env.reset(seed=0)
    with pytest.raises(RuntimeError, match="step_async"):
        env.step_wait()
    with pytest.raises(ValueError, match="out of range"):
        env.step_async(torch.full((2, 2), 99, dtype=torch.int64))
    env.step_async(torch.zeros(2, 2, dtype=torch.int64))  # the failed call left nothing pending
    with pytest.raises(RuntimeError, match="again"):
        env.step_async(torch.zeros(2, 2, dtype=torch.int64))
    assert env.step_wait().reward.shape == (2,)


def test_split_step_of_an_env_with_its_own_step():
    pytest.importorskip("mpe2")
    _same_steps("mpe/simple_spread", num_envs=2, steps=30)


def test_split_step_of_smax():
    pytest.importorskip("jaxmarl")
    _same_steps("smax/3m", num_envs=3, steps=40, episode_limit=12)  # the differential test's compiled shape


def test_split_step_of_the_mamujoco_worker_pool():
    pytest.importorskip("gymnasium_robotics")
    _same_steps("mamujoco/HalfCheetah-6x1", num_envs=3, steps=12, episode_limit=5, split_kw={"workers": 2})


def test_pool_step_begin_end_is_step():
    factory = functools.partial(CountingSimulator, n=2, horizon=3)
    seeds = np.arange(5)
    pools = [WorkerPool(factory, 5, CountingSimulator.fields(2), workers=2, start_method="forkserver") for _ in range(2)]
    try:
        for pool in pools:
            pool.reset(seeds)
        for t in range(6):
            for pool in pools:
                pool.buffers["actions"][:] = t % 3 - 1
            pools[0].step()
            pools[1].step_begin()
            pools[1].step_end()
            np.testing.assert_array_equal(pools[0].buffers["obs"], pools[1].buffers["obs"])
        with pytest.raises(RuntimeError, match="step_begin"):
            pools[1].step_end()
    finally:
        for pool in pools:
            pool.close()
