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
