"""Win rates of battle envs (``info["battle_won"]``, SMAX/SMAC): the trainer logs ``win_rate`` (the fraction of
the last 100 finished training episodes won) and the evaluation ``eval_win_rate_{stochastic,greedy}``. Tested on
the one-step climbing game with a ``battle_won`` flag made from the reward, so the expected values are exact."""

from __future__ import annotations

import torch

from seqmarl.algos import Trainer, TrainerConfig, make_agent
from seqmarl.envs import make


def _battle(env, won_of):
    """``env`` whose steps report ``info["battle_won"] = won_of(step) & terminated`` (as the SMAX adapter)."""
    def marked(fn):
        def wrapped(*args):
            out = fn(*args)
            out.info["battle_won"] = won_of(out) & out.terminated
            return out
        return wrapped

    env.step = marked(env.step)
    env.step_wait = marked(env.step_wait)
    return env


def _trainer(won_of, num_envs=50, rollout=2, eval_episodes=0, tmp_path=None):
    env = _battle(make("matrix/climbing", num_envs=num_envs, seed=0), won_of)
    agent = make_agent("mappo", env.spec, seed=0, hidden=(8, 8), ppo_epoch=1, critic_epoch=1)
    eval_fn = (lambda n: _battle(make("matrix/climbing", num_envs=n, seed=1), won_of)) if eval_episodes else None
    cfg = TrainerConfig(total_steps=num_envs * rollout * 3, rollout_length=rollout, progress=False,
                        tensorboard=False, eval_interval=1 if eval_episodes else 0, eval_episodes=eval_episodes or 1)
    return Trainer(env, agent, cfg, seed=0, eval_env_fn=eval_fn, run_dir=tmp_path)


def test_win_rate_is_the_fraction_of_the_last_100_episodes_won():
    trainer = _trainer(lambda step: step.reward > 0)
    buffer = trainer.collect()  # 50 envs x 2 steps of a one-step game: exactly 100 episodes
    won = int((buffer.rewards > 0).sum())
    assert len(trainer._episode_wins) == 100 and sum(trainer._episode_wins) == won
    trainer._buffer = None
    rows = trainer.train()
    assert all(0.0 <= r["win_rate"] <= 1.0 for r in rows)
    # the last row's rate: the outcomes of the last rollout (the last 100 episodes)
    last = trainer._buffer.rewards
    assert rows[-1]["win_rate"] == int((last > 0).sum()) / 100
    assert 0 < won < 100


def test_no_battle_flag_no_win_rate():
    env = make("matrix/climbing", num_envs=8, seed=0)
    agent = make_agent("mappo", env.spec, seed=0, hidden=(8, 8), ppo_epoch=1, critic_epoch=1)
    rows = Trainer(env, agent, TrainerConfig(total_steps=16, rollout_length=2, progress=False, tensorboard=False)).train()
    assert "win_rate" not in rows[-1]


def test_evaluation_win_rates():
    always = _trainer(lambda step: torch.ones_like(step.terminated), eval_episodes=6).train()[-1]
    never = _trainer(lambda step: torch.zeros_like(step.terminated), eval_episodes=6).train()[-1]
    assert always["eval_win_rate_greedy"] == 1.0 and always["eval_win_rate_stochastic"] == 1.0
    assert never["eval_win_rate_greedy"] == 0.0 and never["eval_win_rate_stochastic"] == 0.0
    half = _trainer(lambda step: step.reward > 0, eval_episodes=6).train()[-1]
    assert half["eval_win_rate_greedy"] == float(half["eval_return_greedy"] > 0)  # greedy: one joint action


def test_the_outcomes_survive_a_checkpoint(tmp_path):
    trainer = _trainer(lambda step: step.reward > 0, tmp_path=tmp_path)
    trainer.train()
    kept = list(trainer._episode_wins)
    other = _trainer(lambda step: step.reward > 0)
    other.load_checkpoint(tmp_path)
    assert other._episode_wins == kept and len(kept) == 100


def test_only_the_ended_episodes_outcomes_are_kept():
    """Envs 1 and 3 of 4 end at this step: their flags (won, lost) are kept, the others' are not."""
    trainer = _trainer(lambda step: step.reward > 0)
    step = trainer.env.reset(seed=0)
    done = torch.tensor([False, True, False, True])
    step.info["episode_return"] = torch.tensor([1.0, 2.0, 3.0, 4.0])
    step.info["battle_won"] = torch.tensor([True, True, True, False])
    trainer._record_episodes(step, done)
    assert trainer._episode_returns == [2.0, 4.0] and trainer._episode_wins == [1.0, 0.0]


class _StaggeredBattles:
    """Duck-typed eval env: env ``b`` of ``n`` ends its episode at step ``b + 1``, won when ``b`` is even."""

    def __init__(self, n: int):
        import dataclasses

        self.inner = make("matrix/climbing", num_envs=n, seed=0)
        self.spec = dataclasses.replace(self.inner.spec, episode_limit=n)  # the evaluation loop runs n steps
        self.num_envs, self.device = n, self.inner.device
        self.t = 0

    def reset(self, seed=None):
        self.t = 0
        return self.inner.reset(seed=seed)

    def step(self, actions):
        import dataclasses

        out = self.inner.step(actions)
        self.t += 1
        ends = torch.arange(self.num_envs) + 1 == self.t
        out.info["battle_won"] = ends & (torch.arange(self.num_envs) % 2 == 0)
        return dataclasses.replace(out, terminated=ends, truncated=torch.zeros_like(ends))


def test_evaluation_keeps_each_episodes_outcome_when_episodes_end_at_different_steps():
    env = make("matrix/climbing", num_envs=4, seed=0)
    agent = make_agent("mappo", env.spec, seed=0, hidden=(8, 8))
    cfg = TrainerConfig(total_steps=4, rollout_length=1, progress=False, tensorboard=False, eval_episodes=6)
    out = Trainer(env, agent, cfg, eval_env_fn=_StaggeredBattles).evaluate()
    assert out["eval_win_rate_greedy"] == 0.5 and out["eval_win_rate_stochastic"] == 0.5
