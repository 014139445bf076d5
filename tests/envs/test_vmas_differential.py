"""``vmas/<scenario>`` against the vmas package stepped directly: same seed, same actions, exact equality.

The adapter runs first and its trajectory is recorded; then a reference ``vmas.make_env(..., seed=SEED)`` is stepped
with the same actions (VMAS keeps one random state per process, so the two must not be interleaved). Observations,
states (concatenated observations), per-agent and team (mean) rewards, terminated/truncated flags, ``final_obs`` and
the observations after ``reset_at`` must match bit for bit, continuous and discrete actions alike. ``max_steps=4``
makes the run cross two automatic resets.
"""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("vmas", reason="the vmas package is not installed (pip install seqmarl[vmas]); "
                    "the VMAS differential tests need it")

import vmas  # noqa: E402

from seqmarl import envs  # noqa: E402
from seqmarl.envs.vmas import SCENARIOS, VmasEnv, make_vmas  # noqa: E402

SEED = 3
B = 3
MAX_STEPS = 4
STEPS = 2 * MAX_STEPS + 1


def _actions(env: VmasEnv, gen: torch.Generator) -> torch.Tensor:
    spec = env.spec
    if spec.is_discrete:
        return torch.randint(0, spec.max_actions, (B, spec.n_agents), generator=gen)
    return torch.rand(B, spec.n_agents, spec.act_dim, generator=gen) * 2 - 1  # every registered box is [-1, 1]


def _stack(obs: list[torch.Tensor], width: int) -> torch.Tensor:
    return torch.stack([torch.nn.functional.pad(o.float(), (0, width - o.shape[1])) for o in obs], dim=1)


CASES = [(s, c) for s in SCENARIOS for c in (True, False)]


@pytest.mark.parametrize("scenario,continuous", CASES, ids=[f"{s}-{'box' if c else 'discrete'}" for s, c in CASES])
def test_adapter_matches_vmas_exactly(scenario: str, continuous: bool) -> None:
    env = envs.make(f"vmas/{scenario}", num_envs=B, seed=SEED, max_steps=MAX_STEPS, continuous_actions=continuous)
    gen = torch.Generator().manual_seed(0)
    first = env.reset()
    record = []
    for _ in range(STEPS):
        a = _actions(env, gen)
        record.append((a, env.step(a)))

    ref = vmas.make_env(scenario, num_envs=B, device="cpu", continuous_actions=continuous, max_steps=MAX_STEPS,
                        seed=SEED, terminated_truncated=True, **SCENARIOS[scenario])
    width = env.spec.obs_dim
    # make_env(seed=SEED) seeds and resets, as the adapter's reset() (env.seed(SEED), env.reset()) did
    obs = ref.get_from_scenario(get_observations=True, get_rewards=False, get_infos=False, get_dones=False)[0]
    assert torch.equal(first.obs, _stack(obs, width))
    assert torch.equal(first.state, torch.cat([o.float() for o in obs], dim=1))
    ended = 0
    for t, (a, step) in enumerate(record):
        acts = [a[:, i: i + 1] if not continuous else a[:, i, : env.spec.agent_spaces[i].dim] for i in range(a.shape[1])]
        obs, rews, terminated, truncated, _ = ref.step(acts)
        rewards = torch.stack([r.reshape(B) for r in rews], dim=1)
        assert torch.equal(step.info["agent_rewards"], rewards), f"step {t}"
        assert torch.equal(step.reward, rewards.mean(dim=1)), "team reward = mean of the agents' rewards"
        assert torch.equal(step.terminated, terminated)
        assert torch.equal(step.truncated, truncated & ~terminated)
        assert torch.equal(step.info["final_obs"], _stack(obs, width))
        assert torch.equal(step.info["final_state"], torch.cat([o.float() for o in obs], dim=1))
        done = terminated | truncated
        ended += int(done.sum())
        if bool(done.all()):  # every world ended together: one vectorised reset
            obs = ref.reset()
        elif bool(done.any()):
            for i in torch.nonzero(done).flatten().tolist():
                ref.reset_at(i)
            obs = ref.get_from_scenario(get_observations=True, get_rewards=False, get_infos=False, get_dones=False)[0]
        assert torch.equal(step.obs, _stack(obs, width)), f"step {t}: observations after auto-reset"
        if not continuous:
            assert step.avail_actions is not None and bool(step.avail_actions.all())
        else:
            assert step.avail_actions is None
    assert ended >= 2 * B


def test_termination_is_terminated_and_resets_that_world_only(monkeypatch: pytest.MonkeyPatch) -> None:
    env = make_vmas("balance", num_envs=3, seed=0, max_steps=50)
    done_flags = torch.tensor([False, True, False])
    monkeypatch.setattr(type(env.vmas_env.scenario), "done", lambda self: done_flags.clone())
    env.reset()
    before = env.step(torch.zeros(3, 3, 2))
    assert before.terminated.tolist() == [False, True, False] and not bool(before.truncated.any())
    assert env.elapsed.tolist() == [1, 0, 1]
    assert before.info["episode_length"].tolist() == [1, 1, 1]
    assert not torch.equal(before.info["final_obs"][1], before.obs[1])  # world 1 restarted
    assert torch.equal(before.info["final_obs"][[0, 2]], before.obs[[0, 2]])


def test_reward_reduction_and_errors() -> None:
    mean_env = make_vmas("wheel", num_envs=2, seed=0)
    sum_env = make_vmas("wheel", num_envs=2, seed=0, reward_reduction="sum")
    mean_env.reset()
    step_m = mean_env.step(torch.zeros(2, 4, 2))
    sum_env.reset()
    step_s = sum_env.step(torch.zeros(2, 4, 2))
    assert torch.allclose(step_s.reward, 4 * step_m.reward)
    with pytest.raises(ValueError, match="reward_reduction"):
        make_vmas("wheel", reward_reduction="max")
    with pytest.raises(ValueError, match="scenario must be a VMAS scenario.*balance"):
        make_vmas("balanse")
    with pytest.raises(TypeError, match="unexpected keyword arguments \\['N'\\]"):
        envs.make("vmas/balance", N=3)
    with pytest.raises(ValueError, match="lies outside agent 0's box"):  # clip_actions=False: strict box
        env = envs.make("vmas/balance", num_envs=1, seed=0, clip_actions=False)
        env.reset()
        env.step(torch.full((1, 3, 2), 1.5))
    clipping = envs.make("vmas/balance", num_envs=1, seed=0)  # default: clipped into the box, accepted
    clipping.reset()
    clipping.step(torch.full((1, 3, 2), 1.5))
    assert envs.describe("vmas/navigation")["n_agents"] == 4 and envs.describe("vmas/balance")["max_steps"] == 100


def test_any_vmas_scenario_through_make_vmas() -> None:
    env = make_vmas("dispersion", num_envs=2, seed=0, max_steps=3, n_agents=2)
    step = env.reset()
    assert step.obs.shape[:2] == (2, 2) and env.spec.episode_limit == 3
    for _ in range(3):
        step = env.step(torch.zeros(2, 2, env.spec.act_dim))
    assert bool(step.done.all())


@pytest.mark.cuda
def test_stays_on_cuda() -> None:
    if not torch.cuda.is_available():
        pytest.skip("CUDA is not available")
    env = envs.make("vmas/balance", num_envs=8, device="cuda", seed=0)
    step = env.reset()
    assert step.obs.is_cuda and step.state.is_cuda
    step = env.step(torch.zeros(8, 3, 2, device="cuda"))
    assert step.reward.is_cuda and step.terminated.is_cuda and step.info["final_obs"].is_cuda
