"""mamujoco/*: the adapter against the real gymnasium_robotics.mamujoco_v1 stepped directly with the same seeds
and actions — observations (padded), state, reward, terminated/truncated, final_obs and automatic resets must
agree exactly; plus the HARL ``state+id`` observation, the registry names, and the argument errors."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch

from seqmarl import envs
from seqmarl.envs import MissingExtraError

try:
    from gymnasium_robotics import mamujoco_v1

    HAVE, WHY = True, ""
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    HAVE, WHY = False, f"gymnasium-robotics/mujoco not installed ({exc}); pip install seqmarl[mujoco]"
    print(f"SKIP mamujoco differential tests: {WHY}", file=sys.stderr)

needs_package = pytest.mark.skipif(not HAVE, reason=WHY)


def _package_seeds(seed: int, b: int) -> list[int]:
    """The documented seeding: one draw per instance from a torch generator seeded with ``seed``."""
    return torch.randint(0, 2**31 - 1, (b,), generator=torch.Generator().manual_seed(seed)).tolist()


@needs_package
@pytest.mark.parametrize("scenario,conf", [("HalfCheetah", "6x1"), ("Ant", "2x4"), ("Hopper", "3x1"),
                                           ("Humanoid", "9|8"), ("ManySegmentSwimmer", "4x2")])
def test_adapter_equals_the_package(scenario: str, conf: str) -> None:
    b, limit, steps, seed = 3, 15, 40, 11
    env = envs.make(f"mamujoco/{scenario}-{conf}", num_envs=b, seed=seed, episode_limit=limit)
    ref = [mamujoco_v1.parallel_env(scenario, conf, max_episode_steps=limit) for _ in range(b)]
    agents = ref[0].possible_agents
    sizes = [ref[0].observation_space(a).shape[0] for a in agents]
    dims = [ref[0].action_space(a).shape[0] for a in agents]
    assert env.obs_sizes == tuple(sizes) and env.act_dims == tuple(dims)
    assert env.spec.obs_dim == max(sizes) and env.spec.act_dim == max(dims)
    assert env.spec.state_dim == ref[0].state().size and env.spec.episode_limit == limit

    def check(obs_t: torch.Tensor, state_t: torch.Tensor, k: int, pobs: dict, penv, what: str) -> None:
        for i, a in enumerate(agents):
            assert torch.equal(obs_t[k, i, :sizes[i]], torch.from_numpy(pobs[a].astype(np.float32))), f"{what}: obs {a}"
            assert not bool(obs_t[k, i, sizes[i]:].any()), f"{what}: padding of {a} is not zero"
        assert torch.equal(state_t[k], torch.from_numpy(penv.state().astype(np.float32))), f"{what}: state"

    step = env.reset()
    assert list(env.instance_seeds) == _package_seeds(seed, b)
    for k, penv in enumerate(ref):
        pobs, _ = penv.reset(seed=env.instance_seeds[k])
        check(step.obs, step.state, k, pobs, penv, "reset")
    gen = torch.Generator().manual_seed(3)
    low = torch.tensor([[s.low[0]] for s in env.spec.agent_spaces])  # every box here is [low, high]^dim
    high = torch.tensor([[s.high[0]] for s in env.spec.agent_spaces])
    n_term = n_trunc = 0
    for t in range(steps):
        actions = low + (high - low) * torch.rand(b, len(agents), env.spec.act_dim, generator=gen)  # inside the box
        step = env.step(actions)
        for k, penv in enumerate(ref):
            pobs, rew, term, trunc, _ = penv.step({a: actions[k, i, :dims[i]].numpy() for i, a in enumerate(agents)})
            what = f"t={t} env={k}"
            assert len(set(rew.values())) == 1  # the package's reward is shared
            assert step.reward[k] == np.float32(rew[agents[0]]), what
            assert bool(step.terminated[k]) == any(term.values()), what
            assert bool(step.truncated[k]) == (any(trunc.values()) and not any(term.values())), what
            check(step.info["final_obs"], step.info["final_state"], k, pobs, penv, what + " final")
            if any(term.values()) or any(trunc.values()):
                pobs, _ = penv.reset()  # automatic reset: no seed, the instance's own stream
            check(step.obs, step.state, k, pobs, penv, what)
        n_term += int(step.terminated.sum())
        n_trunc += int(step.truncated.sum())
    assert n_trunc > 0
    if scenario == "Hopper":
        assert n_term > 0  # it falls over under random actions: terminations are exercised
    env.close()


@needs_package
def test_state_plus_id_is_harl_normalised_state_and_one_hot() -> None:
    env = envs.make("mamujoco/Ant-2x4", num_envs=2, seed=0, obs="state+id")
    raw = envs.make("mamujoco/Ant-2x4", num_envs=2, seed=0, obs="state+id", normalize=False)
    ref = envs.make("mamujoco/Ant-2x4", num_envs=2, seed=0)
    s, r, base = env.reset(), raw.reset(), ref.reset()
    state = base.state.double().numpy()
    assert env.spec.obs_dim == state.shape[1] + 2 and torch.equal(r.state, base.state)
    for k in range(2):
        for i in range(2):
            x = np.concatenate([state[k], np.eye(2)[i]])
            np.testing.assert_allclose(r.obs[k, i].numpy(), x, rtol=1e-6, atol=1e-6)
            np.testing.assert_allclose(s.obs[k, i].numpy(), (x - x.mean()) / x.std(), rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(s.state[k].numpy(), (state[k] - state[k].mean()) / state[k].std(), rtol=1e-4, atol=1e-5)
    for e in (env, raw, ref):
        e.close()


@needs_package
@pytest.mark.parametrize("workers", [0, 1])
def test_state_plus_id_steps_equal_the_package_without_building_agent_observations(
        monkeypatch: pytest.MonkeyPatch, workers: int) -> None:
    """``obs="state+id"`` reads only the state, so the agents' observations are not built (``_get_obs`` is never
    called on a step, only by the package's own reset); states, rewards, flags and automatic resets still equal the package stepped
    directly, and the observations are the HARL vectors of those states."""
    from gymnasium_robotics.envs.multiagent_mujoco import mujoco_multi

    calls = [0]
    orig = mujoco_multi.MultiAgentMujocoEnv._get_obs
    ref: list = []

    def counting(self):
        if all(self is not r for r in ref):  # the adapter's instances, not the reference ones below
            calls[0] += 1
        return orig(self)

    monkeypatch.setattr(mujoco_multi.MultiAgentMujocoEnv, "_get_obs", counting)
    b, limit, seed = 2, 9, 5
    env = envs.make("mamujoco/Hopper-3x1", num_envs=b, seed=seed, episode_limit=limit, obs="state+id",
                    normalize=False, workers=workers)
    ref.extend(mamujoco_v1.parallel_env("Hopper", "3x1", max_episode_steps=limit) for _ in range(b))
    assert all(isinstance(r, mujoco_multi.MultiAgentMujocoEnv) for r in ref)
    agents, n = ref[0].possible_agents, 3
    step = env.reset()
    for k, penv in enumerate(ref):
        penv.reset(seed=env.instance_seeds[k])
    after_reset = calls[0]
    gen = torch.Generator().manual_seed(1)
    ends = 0
    for t in range(25):
        actions = 2 * torch.rand(b, n, 1, generator=gen) - 1
        step = env.step(actions)
        for k, penv in enumerate(ref):
            _, rew, term, trunc, _ = penv.step({a: actions[k, i].numpy() for i, a in enumerate(agents)})
            assert step.reward[k] == np.float32(rew[agents[0]]), f"t={t} env={k}"
            assert bool(step.terminated[k]) == any(term.values())
            assert torch.equal(step.info["final_state"][k], torch.from_numpy(penv.state().astype(np.float32)))
            if any(term.values()) or any(trunc.values()):
                penv.reset()
                ends += 1
            state = torch.from_numpy(penv.state().astype(np.float32))
            assert torch.equal(step.state[k], state), f"t={t} env={k}"
            for i in range(n):
                assert torch.equal(step.obs[k, i], torch.cat([state, torch.eye(n)[i]]))
    assert ends > 0
    if workers == 0:  # the counter lives in this process
        # the package's reset() builds them (one per automatic reset); a step must not
        assert calls[0] - after_reset == ends, "state+id built the agents' observations on a step"
    env.close()


@needs_package
def test_every_registered_name_matches_the_package() -> None:
    names = [n for n in envs.known_envs() if n.startswith("mamujoco/")]
    assert {"mamujoco/HalfCheetah-6x1", "mamujoco/HalfCheetah-2x3", "mamujoco/Ant-2x4", "mamujoco/Walker2d-2x3"} <= set(names)
    for name in names:
        scenario, conf = name.split("/")[1].split("-")
        env = envs.make(name, num_envs=1, seed=0)
        pz = mamujoco_v1.parallel_env(scenario, conf)
        assert env.spec.n_agents == len(pz.possible_agents), name
        for i, a in enumerate(pz.possible_agents):
            box = pz.action_space(a)
            assert env.spec.agent_spaces[i].low == tuple(float(x) for x in box.low), name
            assert env.spec.agent_spaces[i].high == tuple(float(x) for x in box.high), name
        assert env.spec.episode_limit == pz.single_agent_env.spec.max_episode_steps
        env.close()
        pz.close()


@needs_package
def test_actions_are_clipped_into_the_box_or_refused() -> None:
    env = envs.make("mamujoco/HalfCheetah-2x3", num_envs=1, seed=0)
    twin = envs.make("mamujoco/HalfCheetah-2x3", num_envs=1, seed=0)
    env.reset(), twin.reset()
    big = torch.full((1, 2, 3), 5.0)
    assert torch.equal(env.step(big).obs, twin.step(torch.ones(1, 2, 3)).obs)  # clipped to +1, as MuJoCo's ctrlrange
    strict = envs.make("mamujoco/HalfCheetah-2x3", num_envs=1, seed=0, clip_actions=False)
    strict.reset()
    with pytest.raises(ValueError, match=r"actions\[0, 0, 0\] = 5.0 lies outside agent 0's box"):
        strict.step(big)
    bad = torch.zeros(1, 2, 3)
    bad[0, 1, 2] = float("nan")
    with pytest.raises(ValueError, match="must be finite"):
        env.step(bad)
    for e in (env, twin, strict):
        e.close()


@needs_package
def test_errors_name_the_argument() -> None:
    from seqmarl.envs.mamujoco import MaMuJoCoEnv

    with pytest.raises(ValueError, match=r"unknown MaMuJoCo scenario 'Cheetah'; known scenarios: \['Ant', "):
        MaMuJoCoEnv("Cheetah", "2x3")
    with pytest.raises(ValueError, match=r"agent_conf '3x2' is not a factorisation of HalfCheetah .* known: \['2x3', '6x1'\]"):
        MaMuJoCoEnv("HalfCheetah", "3x2")
    with pytest.raises(ValueError, match="'Pusher' is not supported: .*same label"):
        MaMuJoCoEnv("Pusher", "3p")
    with pytest.raises(ValueError, match=r"obs must be one of \('agent_obsk', 'state\+id'\)"):
        envs.make("mamujoco/Ant-2x4", obs="state")
    with pytest.raises(ValueError, match="workers must be >= 0"):
        envs.make("mamujoco/Ant-2x4", workers=-1)
    env = MaMuJoCoEnv("ManySegmentSwimmer", "3x1", num_envs=1)  # any NxK of the parametric family
    assert env.spec.n_agents == 3
    env.close()
    with pytest.raises(RuntimeError, match="closed"):
        env.reset()


def test_missing_package_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    """Runs with or without the package: the import is made to fail."""
    for mod in [m for m in sys.modules if m == "gymnasium_robotics" or m.startswith("gymnasium_robotics.")]:
        monkeypatch.delitem(sys.modules, mod)
    monkeypatch.setitem(sys.modules, "gymnasium_robotics", None)
    with pytest.raises(MissingExtraError, match=r"pip install seqmarl\[mujoco\]") as info:
        envs.make("mamujoco/HalfCheetah-6x1")
    assert "mamujoco/HalfCheetah-6x1" in str(info.value) and info.value.extra == "mujoco"
