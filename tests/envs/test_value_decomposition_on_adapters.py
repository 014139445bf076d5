"""The value-decomposition learners on the real-package adapters (issue 10 §4): recurrent QMIX/QPLEX/VDN with the
trainer's off-policy branch — whole episodes into the replay, updates happen, every metric finite, and the greedy
and epsilon-greedy actions respect the adapters' available-action masks (SMAX: dead units may only no-op).
Skipped (with the reason) only when the adapter's package is missing."""

from __future__ import annotations

import math
import sys

import pytest
import torch

from seqmarl import envs
from seqmarl.algos import Trainer, TrainerConfig, make_agent
from seqmarl.envs import MissingExtraError

SMALL = dict(batch_size=2, buffer_size=16, rnn_hidden=16, mixing_embed_dim=8, hypernet_embed=16,
             epsilon_anneal_steps=50, target_update_interval=2)


def _build(name: str, **kwargs: object) -> envs.MultiAgentEnv:
    try:
        return envs.make(name, **kwargs)
    except MissingExtraError as exc:
        print(f"SKIP {name}: {exc}", file=sys.stderr)
        pytest.skip(f"{name}: {exc}")
    raise AssertionError("unreachable")


def _train(env: envs.MultiAgentEnv, algo: str, episodes: int) -> tuple[object, list[dict[str, float]]]:
    agent = make_agent(algo, env.spec, seed=0, **SMALL)
    before = [p.detach().clone() for p in agent.modules.parameters()]
    limit = env.spec.episode_limit
    total = episodes * limit * env.num_envs
    trainer = Trainer(env, agent, TrainerConfig(total_steps=total, rollout_length=limit, progress=False,
                                                tensorboard=False), seed=0)
    rows = trainer.train()
    assert len(agent.replay) >= SMALL["batch_size"]
    assert any(not torch.equal(a, b) for a, b in zip(before, agent.modules.parameters())), "no update happened"
    for row in rows:
        bad = {k: v for k, v in row.items() if isinstance(v, float) and k != "episode_return" and not math.isfinite(v)}
        assert not bad, bad
    return agent, rows


def _masks_respected(agent: object) -> None:
    """Every action stored in the replay was available when it was taken."""
    batch = agent.replay.all()
    taken = batch.actions.long().clamp(min=0)
    avail = batch.avail[:, : taken.shape[1]]
    ok = avail.gather(-1, taken.unsqueeze(-1)).squeeze(-1).bool()
    live = batch.mask[:, : taken.shape[1]].bool()
    while live.dim() < ok.dim():
        live = live.unsqueeze(-1)
    assert bool((ok | ~live).all()), "an unavailable action was taken"


@pytest.mark.slow
@pytest.mark.parametrize("algo", ["qmix", "qplex"])
def test_smax_with_available_action_masks(algo: str) -> None:
    env = _build("smax/3m", num_envs=2, seed=0, episode_limit=8)
    agent, _ = _train(env, algo, episodes=3)
    _masks_respected(agent)


@pytest.mark.parametrize("algo", ["vdn", "qmix"])
def test_mpe_discrete(algo: str) -> None:
    env = _build("mpe/simple_spread", num_envs=2, seed=0, continuous_actions=False, max_cycles=6)
    _train(env, algo, episodes=3)


def test_vmas_discrete() -> None:
    env = _build("vmas/balance", num_envs=2, seed=0, continuous_actions=False, max_steps=6)
    _train(env, "qmix", episodes=3)


def test_continuous_actions_are_refused_with_a_clear_error() -> None:
    env = _build("mpe/simple_spread", num_envs=2, seed=0, continuous_actions=True)
    with pytest.raises((ValueError, TypeError), match="discrete"):
        make_agent("qmix", env.spec)
