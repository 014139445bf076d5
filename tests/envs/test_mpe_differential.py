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


WORKER_CASES = [("simple_spread", False, 2), ("simple_spread", True, 1), ("simple_speaker_listener", False, 2)]


@pytest.mark.parametrize("scenario,continuous,workers",
                         [(s, c, 0) for s, c in CASES] + WORKER_CASES,
                         ids=[f"{s}-{'box' if c else 'discrete'}" for s, c in CASES]
                         + [f"{s}-{'box' if c else 'discrete'}-workers{w}" for s, c, w in WORKER_CASES])
def test_adapter_matches_mpe2_exactly(scenario: str, continuous: bool, workers: int) -> None:
    """(``workers``: the instances stepped by worker processes, with the same results.)"""
    env = envs.make(f"mpe/{scenario}", num_envs=B, seed=SEED, max_cycles=MAX_CYCLES, continuous_actions=continuous,
                    workers=workers)
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


def test_the_adapter_steps_through_the_unrolled_cycle_not_the_parallel_wrapper(monkeypatch: pytest.MonkeyPatch) -> None:
    """mpe/* instances are stepped by ``mpe2_cycle_step`` (the package's parallel ``step`` is never called: no
    observation computed and discarded per agent); the test above checks it gives the package's numbers."""
    from pettingzoo.utils.conversions import aec_to_parallel_wrapper

    calls = [0]
    orig = aec_to_parallel_wrapper.step

    def counting(self, actions):
        calls[0] += 1
        return orig(self, actions)

    monkeypatch.setattr(aec_to_parallel_wrapper, "step", counting)
    env = envs.make("mpe/simple_spread", num_envs=B, seed=SEED, max_cycles=MAX_CYCLES)
    env.reset()
    for _ in range(STEPS):
        env.step(torch.zeros(B, env.spec.n_agents, dtype=torch.int64))
    assert calls[0] == 0


def test_cycle_step_clips_box_actions_and_refuses_bad_discrete_ones_like_the_package() -> None:
    """Out-of-box continuous actions: clipped as ``ClipOutOfBoundsWrapper`` does (same observations and rewards as
    the package's own step); an out-of-range discrete action: the package's ``AssertionError``."""
    import warnings

    from seqmarl.envs.mpe import mpe2_cycle_step

    module = __import__("mpe2.simple_spread_v3", fromlist=["parallel_env"])
    mine, ref = (module.parallel_env(max_cycles=MAX_CYCLES, continuous_actions=True) for _ in range(2))
    mine.reset(seed=3)
    ref.reset(seed=3)
    actions = {a: np.array([1.7, -0.4, 0.3, 2.0, 0.5], dtype=np.float32) for a in ref.agents}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the package warns that it clips
        expected = ref.step({a: v.copy() for a, v in actions.items()})
    got = mpe2_cycle_step(mine, {a: v.copy() for a, v in actions.items()})
    for g, e in zip(got[:4], expected[:4]):
        assert set(g) == set(e)
        for a in e:
            assert np.array_equal(np.asarray(g[a]), np.asarray(e[a])), a
    discrete = module.parallel_env(max_cycles=MAX_CYCLES)
    discrete.reset(seed=3)
    with pytest.raises(AssertionError, match="action space"):
        mpe2_cycle_step(discrete, {a: 7 for a in discrete.agents})


@pytest.mark.parametrize("terminal,max_cycles", [(False, MAX_CYCLES), (True, MAX_CYCLES), (True, 1)])
def test_cycle_step_returns_what_the_package_step_returns_for_a_whole_episode(monkeypatch: pytest.MonkeyPatch,
                                                                             terminal: bool, max_cycles: int) -> None:
    """Step by step to the episode's end, ``mpe2_cycle_step`` returns the package's five dictionaries. Not
    ``terminal``: truncated at ``max_cycles`` (and not before). ``terminal`` (the scenario's ``is_terminal`` forced
    true): terminated at the first step — unless that step also reaches ``max_cycles = 1``, where truncation wins
    (``SimpleEnv.step``'s ``elif``)."""
    from seqmarl.envs.mpe import mpe2_cycle_step

    module = __import__("mpe2.simple_spread_v3", fromlist=["parallel_env"])
    if terminal:
        cls = type(module.parallel_env().aec_env.unwrapped.scenario)
        monkeypatch.setattr(cls, "is_terminal", lambda self, world: True)
    mine, ref = (module.parallel_env(max_cycles=max_cycles, terminate_on_success=True) for _ in range(2))
    mine.reset(seed=5)
    ref.reset(seed=5)
    rng = np.random.default_rng(1)
    for t in range(max_cycles):
        actions = {a: int(rng.integers(5)) for a in ref.agents}
        got, expected = mpe2_cycle_step(mine, actions), ref.step(actions)
        for g, e in zip(got, expected):
            assert set(g) == set(e), t
            for a in e:
                assert np.array_equal(np.asarray(g[a]), np.asarray(e[a])), (t, a)
        term, trunc = any(expected[2].values()), any(expected[3].values())
        if terminal:
            assert (term, trunc) == ((False, True) if max_cycles == 1 else (True, False))
            break
        assert (term, trunc) == (False, t == max_cycles - 1), t



def test_workers_give_the_in_process_results_with_split_steps_and_resets() -> None:
    """``workers=2`` (3 + 2 instances) against ``workers=0``: every tensor of every Step equal, with
    ``step_async``/``step_wait`` (the trainer's path), a re-seeded reset and a seedless one in between; the
    environments live in the workers (``instances`` refuses), ``close`` stops them; bad ``workers`` is refused."""
    def run(workers: int) -> list[torch.Tensor]:
        env = envs.make("mpe/simple_spread", num_envs=5, seed=SEED, max_cycles=4, workers=workers)
        g = torch.Generator().manual_seed(2)
        out: list[torch.Tensor] = []

        def record(step) -> None:
            out.extend([step.obs, step.state, step.reward, step.terminated, step.truncated])
            out.extend(v for v in step.info.values() if isinstance(v, torch.Tensor))
            out.extend([env.elapsed, env.active])

        for seed in (None, 7, None):
            record(env.reset(seed))
            for t in range(6):
                actions = torch.randint(0, 5, (5, 3), generator=g)
                if t % 2:
                    env.step_async(actions)
                    record(env.step_wait())
                else:
                    record(env.step(actions))
        if workers:
            with pytest.raises(ValueError, match="instances"):
                env.instances
        env.close()
        return out

    ref, got = run(0), run(2)
    assert len(ref) == len(got) and all(torch.equal(a, b) for a, b in zip(ref, got))
    with pytest.raises(ValueError, match="workers"):
        envs.make("mpe/simple_spread", num_envs=2, workers=-1)
