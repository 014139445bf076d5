"""``Trainer.collect`` of a feed-forward agent (critic reuse across steps, split env steps overlapped with the
buffer inserts) fills the buffer exactly as the plain loop ``act -> values -> step -> values(final) -> insert``."""

from __future__ import annotations

import pytest
import torch

from seqmarl.algos import Trainer, TrainerConfig, make_agent
from seqmarl.envs import make


def _plain_loop(env, agent, steps, step, buffer, returns):
    buffer.reset()
    for _ in range(steps):
        actions, log_probs = agent.act(step)
        values = agent.values(step.state, step.obs)
        nxt = env.step(actions)
        next_values = agent.values(nxt.info.get("final_state", nxt.state), nxt.info.get("final_obs", nxt.obs))
        buffer.insert(step.obs, step.state, actions, log_probs, nxt.reward, values, next_values, nxt.terminated,
                      nxt.truncated, avail_actions=step.avail_actions if env.spec.is_discrete else None,
                      active=step.info.get("active"))
        done = nxt.terminated | nxt.truncated
        returns.extend(nxt.info["episode_return"][done].tolist())
        step = nxt
    return step


CASES = [
    ("matrix/climbing", {}, "mappo", {}),
    ("matrix/penalty", {}, "happo", {}),
    ("bridge", {}, "ippo", {}),
    ("matrix/permutation", {"n_agents": 3}, "ar_mappo", {"ar_order": "random"}),  # its buffer takes the orders from act
    ("smax/3m", {"episode_limit": 12}, "mappo", {}),  # the differential test's compiled shape (B = 3)
    ("mamujoco/HalfCheetah-6x1", {"episode_limit": 7}, "mappo", {}),  # the trainer's env steps in 2 workers
]


@pytest.mark.parametrize("name,env_kw,algo,overrides", CASES, ids=[f"{c[0]}-{c[2]}" for c in CASES])
def test_collect_fills_the_buffer_as_the_plain_loop(name, env_kw, algo, overrides):
    if name.startswith("smax"):
        pytest.importorskip("jaxmarl")
    if name.startswith("mamujoco"):
        pytest.importorskip("gymnasium_robotics")
    num_envs, T = 3, 9
    pool = {"workers": 2} if name.startswith("mamujoco") else {}
    envs = [make(name, num_envs=num_envs, seed=3, **env_kw, **pool), make(name, num_envs=num_envs, seed=3, **env_kw)]
    try:
        agents = [make_agent(algo, e.spec, seed=1, hidden=(16, 16), **overrides) for e in envs]
        trainer = Trainer(envs[0], agents[0], TrainerConfig(total_steps=10**6, rollout_length=T, progress=False,
                                                            tensorboard=False), seed=5)
        buffer, returns = agents[1].make_buffer(T, num_envs), []
        step = envs[1].reset(seed=5)
        for iteration in range(3):
            got = trainer.collect()
            step = _plain_loop(envs[1], agents[1], T, step, buffer, returns)
            for key, value in buffer.fields().items():
                assert torch.equal(got.fields()[key], value), f"iteration {iteration}: {key}"
        assert trainer._episode_returns == returns
    finally:
        for e in envs:
            if hasattr(e, "close"):
                e.close()


def test_rollouts_after_updates_act_with_the_updated_stacked_actors(monkeypatch):
    """HAPPO's separate actors act through the stacked view, checked once per rollout (the trainer's
    ``parameters_unchanged`` block): after every update the next rollout must act with the NEW parameters — the
    log-probabilities it stored equal those of the current actors evaluated agent by agent (float32 rounding)."""
    from seqmarl.algos.core.stacked import StackedActors

    calls = []
    original = StackedActors._current_key
    monkeypatch.setattr(StackedActors, "_current_key", lambda self: calls.append(1) or original(self))
    env = make("matrix/penalty", num_envs=16, seed=3)
    agent = make_agent("happo", env.spec, seed=1, hidden=(16, 16), lr=0.05)
    trainer = Trainer(env, agent, TrainerConfig(total_steps=10**6, rollout_length=6, progress=False,
                                                tensorboard=False), seed=5)
    counts, stored = [], []
    for it in range(4):
        before = len(calls)
        rollout = trainer.collect()
        counts.append(len(calls) - before)
        f = rollout.fields()
        with torch.no_grad():
            fresh = agent.actors.log_prob(f["obs"], f["actions"], f["avail_actions"])  # agent by agent
        assert torch.allclose(f["log_probs"], fresh, atol=1e-5, rtol=0), f"iteration {it}: stale actors"
        stored.append(f["log_probs"].clone())
        agent.update(rollout)
    assert agent.actors._stacked_actors() is not None
    assert all(1 <= c <= 2 for c in counts)  # once per rollout (twice on the first: the view is built), not per step
    assert not torch.allclose(stored[0], stored[-1])  # the policy did change between rollouts


def test_evaluation_keys_the_stacked_actors_once_and_uses_the_current_ones(monkeypatch):
    """The greedy evaluation acts through the stacked view inside one ``parameters_unchanged`` block: the key is
    checked once per evaluation (not per step), and after an update the evaluation equals that of an agent acting agent by
    agent with the same parameters (greedy actions: no sampling stream involved)."""
    from seqmarl.algos.core.stacked import StackedActors

    calls = []
    original = StackedActors._current_key
    monkeypatch.setattr(StackedActors, "_current_key", lambda self: calls.append(1) or original(self))
    trainers = []
    for stacked in (True, False):
        env = make("bridge", num_envs=8, seed=3)
        agent = make_agent("happo", env.spec, seed=1, hidden=(16, 16), lr=0.05)
        agent.actors.stacked_inference = stacked
        trainers.append(Trainer(env, agent, TrainerConfig(total_steps=10**6, rollout_length=8, progress=False,
                                                          tensorboard=False, eval_episodes=6), seed=5,
                                eval_env_fn=lambda n: make("bridge", num_envs=n, seed=1)))
    fast, slow = trainers
    for _ in range(2):
        slow.agent.load_state_dict(fast.agent.state_dict())  # same parameters, then the same evaluation
        before = len(calls)
        got, expected = fast.evaluate(), slow.evaluate()
        assert len(calls) - before <= 2  # one check on entry (two when the stacked weights are rebuilt)
        assert got["eval_return_greedy"] == pytest.approx(expected["eval_return_greedy"], abs=1e-6)
        fast.agent.update(fast.collect())
