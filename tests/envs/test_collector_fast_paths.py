"""The adapters' collection fast paths (issue 8 §3) compute exactly what the slow paths computed:

* MaMuJoCo: the robot's action vector is one precomputed gather equal to the package's own
  ``map_local_actions_to_global_action``, and the state is the single-agent step's observation only where that
  observation is the package's ``state()`` (probed at start-up; otherwise ``state()`` is called);
* SMAX: the step outputs reach torch as zero-copy views of the jax buffers.

The full trajectories are compared with the packages in ``test_mamujoco_differential.py`` and
``test_smax_differential.py``."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from seqmarl import envs


@pytest.mark.parametrize("name", ["mamujoco/HalfCheetah-6x1", "mamujoco/Ant-2x4", "mamujoco/Humanoid-9|8",
                                  "mamujoco/Hopper-3x1"])
def test_mamujoco_action_gather_is_the_packages_mapping(name: str) -> None:
    pytest.importorskip("gymnasium_robotics")
    from seqmarl.envs.mamujoco import MaMuJoCoSlice

    b = 3
    env = envs.make(name, num_envs=b, seed=0)
    try:
        sim = env._backend._sim
        assert isinstance(sim, MaMuJoCoSlice)
        assert sim._state_from_step  # every gymnasium v5 robot returns its state() from step()
        gen = torch.Generator().manual_seed(0)
        actions = torch.rand(b, env.spec.n_agents, env.spec.act_dim, generator=gen).numpy() * 2 - 1
        ours = actions.reshape(b, -1)[:, sim._perm].astype(np.float64)
        for k, penv in enumerate(sim.envs):
            theirs = penv.map_local_actions_to_global_action(
                {a: actions[k, i, :d] for i, (a, d) in enumerate(zip(sim.agents, sim.act_dims))})
            assert theirs.dtype == ours.dtype and np.array_equal(theirs, ours[k]), k
    finally:
        env.close()


class _FakeSingle:
    def __init__(self, observation: np.ndarray) -> None:
        self.action_space = type("Box", (), {"shape": (2,)})()
        self._observation = observation

    def step(self, action: np.ndarray) -> tuple:
        return self._observation, 0.0, False, False, {}


class _FakeMulti:
    def __init__(self, step_observation: np.ndarray, state: np.ndarray, fail: bool = False) -> None:
        self.single_agent_env = _FakeSingle(step_observation)
        self._state, self._fail = state, fail

    def reset(self, seed: int | None = None) -> tuple:
        if self._fail:
            raise RuntimeError("cannot reset")
        return {}, {}

    def state(self) -> np.ndarray:
        return self._state

    def close(self) -> None:
        pass


def test_state_is_taken_from_the_step_only_where_it_equals_state() -> None:
    from seqmarl.envs.mamujoco import _step_observation_is_state

    x = np.array([0.5, -1.0, 2.0])
    assert _step_observation_is_state(lambda: _FakeMulti(x, x.copy()))
    assert not _step_observation_is_state(lambda: _FakeMulti(x, x + 1e-12))  # not the state: state() every step
    assert not _step_observation_is_state(lambda: _FakeMulti(x, x, fail=True))  # a failing probe: the safe path


def test_smax_outputs_are_views_of_the_jax_buffers() -> None:
    pytest.importorskip("jaxmarl")
    from seqmarl.envs.smax import _to_torch

    env = envs.make("smax/3m", num_envs=3, seed=0, episode_limit=12)  # the differential test's compiled shape
    env.reset(seed=0)
    out = env._fns.pack(env._jstate)
    t = _to_torch(out["obs"], torch.device("cpu"))
    assert t.data_ptr() == out["obs"].unsafe_buffer_pointer()  # no copy
    assert torch.equal(t, torch.from_numpy(np.array(out["obs"])))
