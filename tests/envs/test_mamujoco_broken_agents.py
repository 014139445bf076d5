"""MaMuJoCo ``broken_agents`` (MAT's "broken joints" generalisation tasks): a broken agent's actuators are off, so
whatever it sends, the simulator moves as if it sent 0. Tested against the real package; skipped (with the reason)
only when gymnasium-robotics is missing."""

from __future__ import annotations

import sys

import pytest
import torch

from seqmarl import envs
from seqmarl.envs import MissingExtraError


def _env(**kw):
    try:
        return envs.make("mamujoco/HalfCheetah-2x3", num_envs=2, seed=0, episode_limit=20, **kw)
    except MissingExtraError as exc:
        print(f"SKIP mamujoco: {exc}", file=sys.stderr)
        pytest.skip(f"mamujoco: {exc}")


def _rollout(env, actions: list[torch.Tensor]) -> list[torch.Tensor]:
    step = env.reset(seed=0)
    out = [step.state.clone()]
    for a in actions:
        step = env.step(a)
        out.append(torch.cat([step.state, step.reward.reshape(-1, 1)], -1).clone())
    return out


def test_a_broken_agents_actions_do_not_move_the_robot() -> None:
    gen = torch.Generator().manual_seed(0)
    acts = [torch.rand(2, 2, 3, generator=gen) * 2 - 1 for _ in range(8)]
    zeroed = [a.clone() for a in acts]
    for a in zeroed:
        a[:, 1] = 0.0  # agent 1 sends nothing
    broken = _env(broken_agents=(1,))
    try:
        assert broken.broken_agents == (1,)
        a, b = _rollout(broken, acts), _rollout(broken, zeroed)
        assert all(torch.equal(x, y) for x, y in zip(a, b))
    finally:
        broken.close()
    whole = _env()  # the ablation: with working actuators agent 1's actions matter
    try:
        a, b = _rollout(whole, acts), _rollout(whole, zeroed)
        assert not all(torch.equal(x, y) for x, y in zip(a, b))
        c = _rollout(whole, zeroed)  # and a broken env equals a whole one fed zeros for agent 1
    finally:
        whole.close()
    broken = _env(broken_agents=(1,))
    try:
        assert all(torch.equal(x, y) for x, y in zip(_rollout(broken, acts), c))
    finally:
        broken.close()


def test_bad_broken_agents_are_refused_by_name() -> None:
    _env().close()  # skips when the package is missing
    with pytest.raises(ValueError, match="broken_agents"):
        _env(broken_agents=(2,))
    with pytest.raises(TypeError, match="broken_agents"):
        _env(broken_agents="one")
    for spelling in (1, "1", [1]):  # the CLI hands env.broken_agents=1 over as a string
        env = _env(broken_agents=spelling)
        assert env.broken_agents == (1,)
        env.close()
    env = _env(broken_agents="0,1")
    assert env.broken_agents == (0, 1)
    env.close()
