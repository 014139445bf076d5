"""``mpe/<scenario>`` against the mpe2 package stepped directly: same seeds, same actions, exact equality.

For every registered scenario (discrete and continuous actions), ``num_envs`` reference ``parallel_env`` instances
are reset with ``seed + b`` and stepped with the actions given to the adapter; observations (unpadded part and zero
padding), states, per-agent rewards, the team reward (sum), termination/truncation flags, the ``final_*`` tensors at
episode ends and the first observation after each automatic reset (the reference continues with ``reset()``, no
seed) must match bit for bit. Episodes are shortened (``max_cycles=5``) so the run crosses two automatic resets.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("mpe2", reason="the mpe2 package is not installed (pip install seqmarl[mpe]); "
                    "the MPE differential tests need it")

from seqmarl import envs  # noqa: E402
from seqmarl.envs.mpe import EXCLUDED, SCENARIOS, make_mpe  # noqa: E402

SEED = 11
B = 2
MAX_CYCLES = 5
STEPS = 2 * MAX_CYCLES + 2


def _reference(scenario: str, continuous: bool) -> list:
    import importlib

    module = importlib.import_module(f"mpe2.{SCENARIOS[scenario][0]}")
    refs = [module.parallel_env(max_cycles=MAX_CYCLES, continuous_actions=continuous) for _ in range(B)]
    return refs


def _expected_obs(env: envs.PettingZooEnv, obs: dict) -> torch.Tensor:
    out = torch.zeros(len(env.agents), env.spec.obs_dim)
    for i, agent in enumerate(env.agents):
        value = torch.from_numpy(np.asarray(obs[agent], dtype=np.float32))
        out[i, : value.numel()] = value
    return out


CASES = [(s, c) for s in SCENARIOS for c in (False, True) if not (s == "collect_treasure" and c)]


@pytest.mark.parametrize("scenario,continuous", CASES, ids=[f"{s}-{'box' if c else 'discrete'}" for s, c in CASES])
def test_adapter_matches_mpe2_exactly(scenario: str, continuous: bool) -> None:
    env = envs.make(f"mpe/{scenario}", num_envs=B, seed=SEED, max_cycles=MAX_CYCLES, continuous_actions=continuous)
    assert env.spec.episode_limit == MAX_CYCLES
    refs = _reference(scenario, continuous)
    ref_obs = [ref.reset(seed=SEED + b)[0] for b, ref in enumerate(refs)]
    step = env.reset()
    assert env.agent_obs_dims == tuple(int(np.prod(refs[0].observation_space(a).shape)) for a in env.agents)
    for b, ref in enumerate(refs):
        assert torch.equal(step.obs[b], _expected_obs(env, ref_obs[b]))
        assert torch.equal(step.state[b], torch.from_numpy(ref.state().astype(np.float32)))
    rng = np.random.default_rng(0)
    ended = 0
    for t in range(STEPS):
        if continuous:
            per_agent = [[rng.random(s.dim).astype(np.float32) for s in env.spec.agent_spaces] for _ in range(B)]
            actions = torch.zeros(B, env.spec.n_agents, env.spec.act_dim)
            for b in range(B):
                for i, a in enumerate(per_agent[b]):
                    actions[b, i, : a.size] = torch.from_numpy(a)
        else:
            per_agent = [[int(rng.integers(s.n)) for s in env.spec.agent_spaces] for _ in range(B)]
            actions = torch.tensor(per_agent, dtype=torch.int64)
        step = env.step(actions)
        for b, ref in enumerate(refs):
            obs, rew, term, trunc, _ = ref.step({a: per_agent[b][i] for i, a in enumerate(env.agents)})
            rewards = np.asarray([rew[a] for a in env.agents], dtype=np.float32)
            assert torch.equal(step.info["agent_rewards"][b], torch.from_numpy(rewards)), f"step {t} env {b}"
            assert step.reward[b].item() == rewards.sum(), "team reward is the sum of the agents' rewards"
            ref_done = all(term[a] or trunc[a] for a in env.agents)
            assert bool(step.done[b]) == ref_done
            assert bool(step.terminated[b]) == (ref_done and any(term.values()))
            assert bool(step.truncated[b]) == (ref_done and not any(term.values()))
            assert torch.equal(step.info["final_obs"][b], _expected_obs(env, obs))
            assert torch.equal(step.info["final_state"][b], torch.from_numpy(ref.state().astype(np.float32)))
            if ref_done:
                ended += 1
                assert t % MAX_CYCLES == MAX_CYCLES - 1 and int(step.info["episode_length"][b]) == MAX_CYCLES
                obs, _ = ref.reset()  # the adapter's auto-reset continues each instance's own stream
                assert not ref.agents == []
            assert torch.equal(step.obs[b], _expected_obs(env, obs))
            assert torch.equal(step.state[b], torch.from_numpy(ref.state().astype(np.float32)))
            assert bool(step.info["active"][b].all())
        if step.avail_actions is not None:
            assert torch.equal(step.avail_actions, env._padding_mask().expand(B, -1, -1))
    assert ended == 2 * B


def test_episode_return_is_the_sum_of_team_rewards_and_mean_reduction() -> None:
    env_sum = envs.make("mpe/simple_spread", num_envs=2, seed=3, max_cycles=4)
    env_mean = envs.make("mpe/simple_spread", num_envs=2, seed=3, max_cycles=4, reward_reduction="mean")
    env_sum.reset()
    env_mean.reset()
    total = torch.zeros(2)
    for t in range(4):
        a = torch.full((2, 3), t % 5, dtype=torch.int64)
        s, m = env_sum.step(a), env_mean.step(a)
        total += s.reward
        assert torch.allclose(m.reward, s.reward / 3)
        assert torch.allclose(s.reward, s.info["agent_rewards"].sum(1))
    assert bool(s.truncated.all()) and torch.allclose(s.info["episode_return"], total)


def test_heterogeneous_agents_are_padded_and_masked() -> None:
    env = envs.make("mpe/simple_speaker_listener", num_envs=2, seed=0)
    step = env.reset()
    assert env.agents == ("speaker_0", "listener_0") and env.agent_obs_dims == (3, 11)
    assert env.spec.obs_dim == 11 and env.spec.state_dim == 14 and env.spec.n_actions == (3, 5)
    assert bool((step.obs[:, 0, 3:] == 0).all())  # the speaker's padding
    assert step.avail_actions[:, 0].tolist() == [[True, True, True, False, False]] * 2
    with pytest.raises(ValueError, match="out of range for agent 0 with 3 actions"):
        env.step(torch.tensor([[3, 0], [0, 0]]))  # a padding action of the speaker
    cont = envs.make("mpe/simple_speaker_listener", num_envs=1, seed=0, continuous_actions=True)
    assert cont.spec.act_dim == 5 and [s.dim for s in cont.spec.agent_spaces] == [3, 5]
    cont.reset()
    cont.step(torch.full((1, 2, 5), 0.5))  # the speaker's padding columns are ignored


def test_scenario_errors_name_the_known_scenarios() -> None:
    with pytest.raises(ValueError, match="simple_spread") as info:
        make_mpe("simple_sprad")
    assert "simple_speaker_listener" in str(info.value)
    with pytest.raises(ValueError, match="adversarial"):
        make_mpe("simple_tag")
    assert "simple_tag" in EXCLUDED and "simple_tag" not in SCENARIOS
    with pytest.raises(ValueError, match="unknown environment 'mpe/nope'"):
        envs.make("mpe/nope")
    with pytest.raises(TypeError, match="unexpected keyword arguments \\['n_agents'\\]"):
        envs.make("mpe/simple_spread", n_agents=3)
    assert envs.describe("mpe/simple_spread")["N"] == 3 and envs.describe("mpe/simple_spread")["max_cycles"] == 25


def test_terminate_on_success_is_terminated_not_truncated(monkeypatch: pytest.MonkeyPatch) -> None:
    import mpe2.simple_spread.simple_spread as spread_mod

    monkeypatch.setattr(spread_mod.Scenario, "is_terminal", lambda self, world: True)
    env = envs.make("mpe/simple_spread", num_envs=2, seed=0, terminate_on_success=True)
    env.reset()
    step = env.step(torch.zeros(2, 3, dtype=torch.int64))
    assert step.terminated.tolist() == [True, True] and step.truncated.tolist() == [False, False]
    assert step.info["episode_length"].tolist() == [1, 1] and env.elapsed.tolist() == [0, 0]
