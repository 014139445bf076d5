"""``benchmarks/collector_bench.py --actions random``: the uniform action source draws only available actions
(each about equally often) or points of the box, with the exact log-probabilities; unbounded boxes are refused.
(The script's cases need the real packages; the source is tested alone.)"""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path

import pytest
import torch

from seqmarl.envs import make

BENCH = Path(__file__).resolve().parent.parent / "benchmarks"


def _load():
    spec = importlib.util.spec_from_file_location("_bench_collector", BENCH / "collector_bench.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_uniform_discrete_draws_only_available_actions_with_exact_log_probs():
    bench = _load()
    env = make("matrix/climbing", num_envs=4000, seed=0)
    step = env.reset(seed=0)
    avail = step.avail_actions.clone()
    avail[:, 0, 2] = False  # agent 0: two of three actions available
    step = type(step)(**{**step.__dict__, "avail_actions": avail})
    act = bench.uniform_actions(env.spec, torch.Generator().manual_seed(0))
    actions, log_probs = act(step)
    assert actions.shape == (4000, 2) and bool(avail.gather(2, actions.unsqueeze(-1)).all())
    assert torch.allclose(log_probs[:, 0], torch.full((4000,), -math.log(2)))
    assert torch.allclose(log_probs[:, 1], torch.full((4000,), -math.log(3)))
    share = torch.bincount(actions[:, 1], minlength=3).float() / 4000
    assert torch.allclose(share, torch.full((3,), 1 / 3), atol=0.03)


def test_uniform_box_stays_in_the_box_with_the_volume_log_prob():
    """A bounded box (MaMuJoCo's and VMAS's are) made here from the a1a2 game's spec with finite bounds."""
    import dataclasses

    from seqmarl.envs.base import AgentSpace

    bench = _load()
    env = make("gaussian/a1a2", num_envs=500, seed=0)
    step = env.reset(seed=0)
    spaces = (AgentSpace.continuous(low=(-1.0,), high=(1.0,)), AgentSpace.continuous(low=(0.0,), high=(4.0,)))
    spec = dataclasses.replace(env.spec, agent_spaces=spaces)
    actions, log_probs = bench.uniform_actions(spec, torch.Generator().manual_seed(0))(step)
    assert actions.shape == (500, 2, 1)
    assert bool((actions[:, 0].abs() <= 1).all()) and bool(((actions[:, 1] >= 0) & (actions[:, 1] <= 4)).all())
    assert float(actions[:, 1].mean()) == pytest.approx(2.0, abs=0.15)
    assert torch.allclose(log_probs, torch.tensor([-math.log(2), -math.log(4)]).expand(500, 2))


def test_unbounded_boxes_are_refused():
    bench = _load()
    env = make("gaussian/a1a2", num_envs=2, seed=0)
    with pytest.raises(ValueError, match="bounded"):
        bench.uniform_actions(env.spec, torch.Generator())


def test_single_agent_raw_loop_steps_the_underlying_mujoco_env(monkeypatch):
    """The ``state+id`` floor steps ``single_agent_env`` only (no ``mamujoco_v1.step``, no agent observations);
    the package-step loop calls ``step`` once per instance and step."""
    mamujoco = pytest.importorskip("gymnasium_robotics.envs.multiagent_mujoco.mujoco_multi",
                                   reason="gymnasium-robotics not installed (pip install seqmarl[mujoco])")
    bench = _load()
    calls = {"step": 0, "obs": 0}
    step, get_obs = mamujoco.MultiAgentMujocoEnv.step, mamujoco.MultiAgentMujocoEnv._get_obs

    def counting_step(self, actions):
        calls["step"] += 1
        return step(self, actions)

    def counting_obs(self):
        calls["obs"] += 1
        return get_obs(self)

    monkeypatch.setattr(mamujoco.MultiAgentMujocoEnv, "step", counting_step)
    monkeypatch.setattr(mamujoco.MultiAgentMujocoEnv, "_get_obs", counting_obs)
    assert bench._mamujoco_loop("HalfCheetah", "6x1", 2, 4, 0, single_agent=True) > 0
    assert calls == {"step": 0, "obs": 2}  # the two resets only
    assert bench._mamujoco_loop("HalfCheetah", "6x1", 2, 4, 0) > 0
    assert calls["step"] == 8 and calls["obs"] == 2 + 2 + 8


def test_raw_mpe_continuous_steps_the_package_with_box_actions():
    pytest.importorskip("mpe2", reason="mpe2 is not installed (extra 'mpe')")
    bench = _load()
    raw = bench.RawMPE("simple_spread", 2, 0, continuous=True, max_cycles=7)
    seen = []
    step = type(raw.envs[0]).step

    def spy(self, actions):
        seen.extend(actions.values())
        return step(self, actions)

    for e in raw.envs:
        e.step = spy.__get__(e)
    assert raw.run(10) > 0
    assert len(seen) == 2 * 10 * 3  # every env, every step, every agent (the 7-step episodes are reset)
    space = raw.envs[0].action_space(raw.envs[0].possible_agents[0])
    assert all(a.shape == space.shape and space.contains(a) for a in seen)
    assert raw.envs[0].unwrapped.max_cycles == 7


@pytest.mark.parametrize("continuous", [False, True])
def test_raw_jax_mpe_builds_the_runs_task(continuous):
    """jaxmarl's MPE with the run's action type, agent count and episode length (max_steps = max_cycles - 1: the
    package counts one step more, envs/jaxmarl_mpe.py)."""
    pytest.importorskip("jaxmarl", reason="jaxmarl is not installed (extra 'smax')")
    bench = _load()
    raw = bench.RawJaxMPE("simple_spread", 3, 0, continuous=continuous, max_cycles=5, N=4, local_ratio=0.25)
    penv = raw.penv
    assert penv.num_agents == 4 and penv.max_steps == 4 and penv.local_ratio == 0.25
    assert type(penv.action_spaces[penv.agents[0]]).__name__ == ("Box" if continuous else "Discrete")
    assert raw.run(12) > 0


def test_raw_vmas_passes_the_scenario_arguments_and_box_actions():
    pytest.importorskip("vmas", reason="vmas is not installed (extra 'vmas')")
    bench = _load()
    raw = bench.RawVMAS("balance", 3, 0, continuous=True, max_steps=5, n_agents=4)
    assert raw.env.n_agents == 4 and raw.env.max_steps == 5 and raw.env.continuous_actions
    acts = [raw._action(s) for s in raw.env.action_space.spaces]
    for space, a in zip(raw.env.action_space.spaces, acts):
        low, high = torch.as_tensor(space.low), torch.as_tensor(space.high)
        assert a.shape == (3, *low.shape) and bool(((a >= low) & (a <= high)).all())
    assert raw.run(12) > 0  # past two episode ends (reset_at)


def test_raw_mpe_unrolled_steps_through_the_cycle_step(monkeypatch):
    """``unrolled``: every instance step is ``mpe2_cycle_step`` (not the package's parallel ``step``), and ended
    episodes are reset."""
    pytest.importorskip("mpe2", reason="mpe2 is not installed (extra 'mpe')")
    import seqmarl.envs.mpe as mpe_adapter

    bench = _load()
    raw = bench.RawMPE("simple_spread", 2, 0, continuous=True, max_cycles=4, unrolled=True)
    calls, resets = [], []
    real = mpe_adapter.mpe2_cycle_step
    monkeypatch.setattr(mpe_adapter, "mpe2_cycle_step", lambda e, a: calls.append(a) or real(e, a))
    for e in raw.envs:
        e.step = None  # the package's parallel step must not be used
        reset = e.reset
        e.reset = (lambda r: (lambda *a, **k: resets.append(1) or r(*a, **k)))(reset)
    assert raw.run(10) > 0
    assert len(calls) == 20 and all(len(a) == 3 for a in calls)
    assert len(resets) == 2 * 2  # each instance ends its 4-cycle episode at steps 4 and 8
