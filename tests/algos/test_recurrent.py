"""The optional recurrent (GRU) actors/critics of the on-policy family (``use_rnn=True``).

What must hold: the update's replay of the GRU over the whole rollout (from the stored t = 0 state, zeroed at
episode starts) reproduces exactly what was computed while acting; hidden states are zero when an episode
starts; a GRU policy solves a memory task that no feed-forward policy can (exact bound 1/2); every algorithm
trains and a resumed recurrent run reproduces the uninterrupted one.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from seqmarl.algos import Trainer, TrainerConfig, actor_updates, make_agent
from seqmarl.algos.configs import HAPPOConfig, MAPPOConfig, OnPolicyConfig
from seqmarl.config import parse_overrides
from seqmarl.envs import make
from seqmarl.envs.base import AgentSpace, EnvSpec, MultiAgentEnv
from seqmarl.train import run
from seqmarl.validate import policy_tables

RNN = dict(use_rnn=True, rnn_hidden=8, hidden=(16,))


def _trainer(env: MultiAgentEnv, agent, rollout_length: int, updates: int = 2, **kw) -> Trainer:
    cfg = TrainerConfig(total_steps=updates * rollout_length * env.num_envs, rollout_length=rollout_length,
                        progress=False, tensorboard=False)
    return Trainer(env, agent, cfg, seed=0, **kw)


def _replay(agent, buffer):
    """Log-probs ``[N, n]`` and values as the update recomputes them (GRU replayed from the stored t = 0 state)."""
    buffer.compute_returns(agent.config.gamma, agent.config.gae_lambda, agent.value_norm)
    batch = actor_updates.from_buffer(buffer, agent.spec.n_agents, recurrent=True)
    log_probs = actor_updates._old_log_probs(agent, batch)
    with torch.no_grad():
        values = agent.replay_values(batch)
    return batch, log_probs, values


ENVS = {
    "bridge": ("bridge", {}, 40),  # episodes of 30 steps: resets inside a 40-step rollout, states carried over
    "random": ("matrix/random", {"n_states": 3, "gamma": 0.9}, 60),  # truncation at ceil(5 / 0.1) = 50 steps
}


# ------------------------------------------------------------------------------------------ 1. replay
@pytest.mark.parametrize("algo", ["happo", "mappo", "ippo"])  # separate actors / shared actor / V_i(o_i) critics
@pytest.mark.parametrize("env_name", sorted(ENVS))
def test_replay_reproduces_the_acting_log_probs_and_values(env_name: str, algo: str) -> None:
    name, kw, T = ENVS[env_name]
    env = make(name, num_envs=8, seed=0, **kw)
    agent = make_agent(algo, env.spec, seed=1, **RNN)
    trainer = _trainer(env, agent, T)
    buffer = trainer.collect()
    agent.update(buffer)  # parameters move, so the second rollout is acted with other weights than the first
    buffer = trainer.collect()
    assert bool(buffer.episode_start[1:].any()), "the rollout must contain an episode start after t = 0"
    assert float(buffer.actor_rnn[0].abs().max()) > 1e-3, "the second rollout starts from a carried-over state"
    batch, log_probs, values = _replay(agent, buffer)
    assert (log_probs - buffer.flat("log_probs")).abs().max() <= 1e-5
    assert (values - buffer.flat("values")).abs().max() <= 1e-5
    # controls (the comparison is sensitive): replaying from a zero t = 0 state, or without the resets, differs
    zero_start = actor_updates.Sequences(T=batch.seq.T, B=batch.seq.B, actor_h0=torch.zeros_like(batch.seq.actor_h0),
                                         critic_h0=batch.seq.critic_h0, episode_start=batch.seq.episode_start)
    no_reset = actor_updates.Sequences(T=batch.seq.T, B=batch.seq.B, actor_h0=batch.seq.actor_h0,
                                       critic_h0=batch.seq.critic_h0,
                                       episode_start=torch.zeros_like(batch.seq.episode_start))
    for seq in (zero_start, no_reset):
        batch.seq = seq
        assert (actor_updates._old_log_probs(agent, batch) - buffer.flat("log_probs")).abs().max() > 1e-4


@pytest.mark.parametrize("algo", ["happo", "mappo"])
def test_the_fused_replay_gives_each_agents_log_probs_and_entropies(algo: str) -> None:
    """The loss's one-pass replay (``_agent_log_prob_and_entropy``) equals the two separate replays, and its
    entropies are those of the replayed distributions (not the log-probs), on a minibatch of whole sequences."""
    name, kw, T = ENVS["bridge"]
    env = make(name, num_envs=6, seed=0, **kw)
    agent = make_agent(algo, env.spec, seed=2, **RNN)
    batch, _, _ = _replay(agent, _trainer(env, agent, T).collect())
    idx = next(iter(actor_updates.minibatches(agent, batch, 2)))
    for i in range(agent.spec.n_agents):
        lp, ent = actor_updates._agent_log_prob_and_entropy(agent, i, batch, idx)
        assert torch.allclose(lp, actor_updates._agent_log_prob(agent, i, batch, idx), atol=1e-6, rtol=0)
        assert torch.allclose(ent, actor_updates._agent_entropy(agent, i, batch, idx), atol=1e-6, rtol=0)
        dist = actor_updates.replay_distribution(agent, i, batch, idx)
        assert torch.allclose(ent, dist.entropy().reshape(-1), atol=1e-6, rtol=0)
        assert float((ent - lp).abs().max()) > 1e-3  # the two outputs are not interchangeable here


def test_minibatches_are_whole_environment_sequences() -> None:
    env = make("bridge", num_envs=6, seed=0)
    agent = make_agent("happo", env.spec, seed=0, **RNN)
    buffer = _trainer(env, agent, 5).collect()
    buffer.compute_returns(0.99, 0.95)
    batch = actor_updates.from_buffer(buffer, 2, recurrent=True)
    parts = actor_updates.minibatches(agent, batch, 4)
    assert sorted(torch.cat(parts).tolist()) == list(range(5 * 6))  # a partition of the T * B samples
    for idx in parts:
        envs = actor_updates.envs_of(batch, idx)
        assert idx.numel() == 5 * envs.numel()
        assert sorted(set((idx % 6).tolist())) == sorted(envs.tolist())  # all T steps of each chosen env
    with pytest.raises(ValueError, match="num_mini_batch must be <= num_envs = 6"):
        actor_updates.minibatches(agent, batch, 7)
    with pytest.raises(ValueError, match="whole environment sequences"):
        actor_updates.envs_of(batch, torch.arange(5))


# ------------------------------------------------------------------------------------------ 2. resets
@pytest.mark.parametrize("algo", ["happo", "ippo"])
def test_hidden_state_is_zero_where_an_episode_starts(algo: str) -> None:
    env = make("matrix/random", n_states=3, gamma=0.9, episode_limit=4, num_envs=5, seed=3)
    agent = make_agent(algo, env.spec, seed=0, **RNN)
    trainer = _trainer(env, agent, 7)
    first = trainer.collect()
    last_done = first.terminated[-1] | first.truncated[-1]
    assert bool(first.episode_start[0].all())  # the very first step after reset
    for buffer, prev_done in ((first, None), (trainer.collect(), last_done)):
        done = buffer.terminated | buffer.truncated
        assert torch.equal(buffer.episode_start[1:], done[:-1])
        if prev_done is not None:
            assert torch.equal(buffer.episode_start[0], prev_done)
        start = buffer.episode_start
        for states in (buffer.actor_rnn, buffer.critic_rnn):
            norms = states.reshape(states.shape[0], states.shape[1], -1).abs().amax(-1)  # [T, B]
            assert bool((norms[start] == 0).all())
            assert bool((norms[~start] > 0).all())
    # acting: at an episode start the incoming state is ignored
    step = env.reset(seed=0)
    h = torch.randn(5, 2, 8, generator=torch.Generator().manual_seed(0))
    starts = torch.ones(5, dtype=torch.bool)
    _, _, from_random = agent.act(step, deterministic=True, rnn_state=h, episode_start=starts)
    _, _, from_zero = agent.act(step, deterministic=True, rnn_state=torch.zeros_like(h), episode_start=starts)
    assert torch.equal(from_random, from_zero)
    _, _, carried = agent.act(step, deterministic=True, rnn_state=h, episode_start=~starts)
    assert not torch.allclose(carried, from_zero)


# ------------------------------------------------------------------------------------------ 3. memory
class CueRecall(MultiAgentEnv):
    """Two agents, two steps. Step 0 shows everyone a random bit c; step 1 shows nothing (obs = 0). Reward 1 at
    step 1 iff both actions equal c, else 0. A feed-forward policy acts on the blank step-1 observation alone,
    so its return is ``1/2 sum_c prod_i pi^i(c|blank) <= 1/2`` (the best it can do: both pick the same action);
    a recurrent policy can remember c and get 1."""

    def __init__(self, num_envs: int = 1, seed: int | None = None) -> None:
        spec = EnvSpec(n_agents=2, obs_dim=2, state_dim=2, agent_spaces=(AgentSpace.discrete(2),) * 2,
                       episode_limit=2)
        super().__init__(spec, num_envs, "cpu", seed)
        self._bit = torch.zeros(num_envs, dtype=torch.int64)

    def _reset_where(self, mask: torch.Tensor) -> None:
        bits = torch.randint(0, 2, (self.num_envs,), generator=self.generator)  # same draws whatever the mask
        self._bit = torch.where(mask, bits, self._bit)

    def _advance(self, actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        recall = self._elapsed == 2
        hit = (actions == self._bit.unsqueeze(1)).all(1)
        return (recall & hit).float(), recall

    def _observe(self):
        first = (self._elapsed == 0).float()
        o = torch.stack([first, first * self._bit.float()], -1)  # [1, c] at step 0, [0, 0] at step 1
        return o.unsqueeze(1).expand(-1, 2, -1).contiguous(), o.clone(), torch.ones(self.num_envs, 2, 2,
                                                                                   dtype=torch.bool)


@torch.no_grad()
def _exact_recall_return(agent) -> float:
    """``1/2 sum_c prod_i pi^i(c | history(c))`` by enumerating c (the step-0 actions do not matter)."""
    bits = torch.tensor([0, 1])
    seq = torch.zeros(2, 2, 2)  # [t, c, obs]
    seq[0, :, 0] = 1.0
    seq[0, :, 1] = bits.float()
    prob = torch.ones(2, dtype=torch.float64)
    for i in range(2):
        if agent.recurrent:
            starts = torch.tensor([[True, True], [False, False]])
            dist = agent.actors.distribution_agent(i, seq, rnn=(torch.zeros(2, agent.config.rnn_hidden), starts))
            probs = dist.probs[1]
        else:
            probs = agent.actors.distribution_agent(i, seq[1]).probs
        prob = prob * probs[torch.arange(2), bits].double()
    return float(prob.mean())


@pytest.mark.parametrize("use_rnn", [True, False])
def test_gru_happo_solves_a_memory_task_that_no_mlp_can(use_rnn: bool) -> None:
    env = CueRecall(num_envs=64, seed=0)
    kw = dict(use_rnn=True, rnn_hidden=16) if use_rnn else {}
    agent = make_agent("happo", env.spec, seed=0, hidden=(16,), lr=0.01, critic_lr=0.01, **kw)
    rows = _trainer(env, agent, rollout_length=2, updates=20).train()
    j = _exact_recall_return(agent)
    if use_rnn:
        assert j > 0.9, j
        assert rows[-1]["episode_return"] > 0.8  # the sampled returns agree
    else:
        assert j <= 0.5 + 1e-9  # the exact feed-forward bound


# ------------------------------------------------------------------------------------------ 4. algorithms
@pytest.mark.parametrize("algo", ["mappo", "ippo", "happo", "hatrpo", "haa2c"])
def test_every_algorithm_trains_with_rnn(algo: str) -> None:
    env = make("bridge", num_envs=8, seed=0)
    agent = make_agent(algo, env.spec, seed=0, **RNN)
    before = [p.detach().clone() for p in agent.actors.parameters()]
    trainer = _trainer(env, agent, 12, eval_env_fn=lambda n: make("bridge", num_envs=n, seed=1))
    trainer.config.eval_interval, trainer.config.eval_episodes = 2, 4
    rows = trainer.train()
    assert len(rows) == 2
    assert all(math.isfinite(v) for r in rows for k, v in r.items() if k != "episode_return")
    # 30 steps of -0.01 * mean distance to goal, which is at most sqrt(2^2 + 5^2) (both agents never move)
    assert -0.3 * math.sqrt(29) - 1e-5 <= rows[-1]["eval_return_greedy"] <= 0.0
    assert any(not torch.equal(p, q) for p, q in zip(before, agent.actors.parameters()))


@pytest.mark.parametrize("variant", [
    dict(granularity="minibatch_outer", actor_num_mini_batch=2, critic_num_mini_batch=3, adv_norm="minibatch"),
    dict(actor_num_mini_batch=4),
])
def test_sequential_variants_and_continuous_actions_run_with_rnn(variant: dict) -> None:
    for name in ("bridge", "gaussian/a1a2"):
        env = make(name, num_envs=8, seed=0)
        agent = make_agent("happo", env.spec, seed=0, **RNN, **variant)
        assert len(_trainer(env, agent, 6).train()) == 2


def test_resume_reproduces_the_uninterrupted_recurrent_curve(tmp_path: Path) -> None:
    """As tests/algos/test_trainer_and_cli.py, on bridge (30-step episodes span the 8-step rollouts, so the
    hidden states carried across the checkpoint matter)."""
    common = ["algo=happo", "env=bridge", "rollout_length=8", "num_envs=8", "algo.use_rnn=true",
              "algo.rnn_hidden=8", "algo.hidden=16", "progress=false", "tensorboard=false"]

    def cfg(sub: str, *extra: str):
        return parse_overrides([f"run_dir={tmp_path / sub / 'run'}", *common, *extra])

    straight, _ = run(cfg("a", "total_steps=512"))  # 8 updates
    run(cfg("b", "total_steps=384", "checkpoint_interval=3"))  # 6 updates, checkpoints at 3 and 6
    resumed, _ = run(cfg("b", "total_steps=512", f"resume={tmp_path / 'b' / 'run'}"))
    drop = {"sps", "collect_fraction"}
    rows = [[{k: v for k, v in json.loads(x).items() if k not in drop}
             for x in (tmp_path / s / "run" / "metrics.jsonl").read_text().splitlines()] for s in ("a", "b")]
    assert len(rows[0]) == 8 and rows[0] == rows[1]
    for p, q in zip(straight.agent.actors.parameters(), resumed.agent.actors.parameters()):
        assert torch.equal(p, q)
    assert all(torch.equal(a, b) for a, b in zip(straight._rnn_state, resumed._rnn_state))


# ------------------------------------------------------------------------------------------ 5. validation
@pytest.mark.parametrize("cls", [OnPolicyConfig, HAPPOConfig, MAPPOConfig])
def test_rnn_config_validation(cls: type) -> None:
    with pytest.raises(ValueError, match="rnn_hidden must be a positive integer"):
        cls(use_rnn=True, rnn_hidden=0)
    with pytest.raises(ValueError, match="rnn_hidden"):
        cls(rnn_hidden=2.5)
    with pytest.raises(TypeError, match="use_rnn must be a bool"):
        cls(use_rnn="yes")
    assert cls().use_rnn is False and cls().rnn_hidden == 64


def test_recurrent_api_misuse_is_a_clear_error() -> None:
    env = make("matrix/random", n_states=3, gamma=0.9, num_envs=4, seed=0)
    rnn_agent = make_agent("happo", env.spec, **RNN)
    mlp_agent = make_agent("happo", env.spec, hidden=(16,))
    step = env.reset(seed=0)
    with pytest.raises(ValueError, match="use_rnn=True needs rnn_state"):
        rnn_agent.act(step)
    with pytest.raises(ValueError, match="only for recurrent agents"):
        mlp_agent.act(step, rnn_state=torch.zeros(4, 2, 8), episode_start=torch.ones(4, dtype=torch.bool))
    with pytest.raises(ValueError, match="episode_start must be a"):
        rnn_agent.act(step, rnn_state=torch.zeros(4, 2, 8), episode_start=torch.ones(3, dtype=torch.bool))
    with pytest.raises(ValueError, match="h must have shape"):
        rnn_agent.act(step, rnn_state=torch.zeros(4, 2, 5), episode_start=torch.ones(4, dtype=torch.bool))
    with pytest.raises(ValueError, match="initial_rnn_state needs a recurrent agent"):
        mlp_agent.initial_rnn_state(4)
    with pytest.raises(ValueError, match="recurrent agent .use_rnn=True."):
        policy_tables(rnn_agent, env)
    with pytest.raises(ValueError, match="recurrent actor needs rnn"):
        rnn_agent.actors.distribution_agent(0, step.obs[:, 0])
    assert len(policy_tables(mlp_agent, env)) == 2  # the feed-forward read-out still works
