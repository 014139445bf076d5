"""The r = a^1 a^2 differential game (theory.md §1.5) as a continuous env."""

from __future__ import annotations

import torch

from seqmarl.envs import GaussianProductEnv
from seqmarl.theory import ProductGaussianGame


def test_reward_is_product_and_every_step_terminates():
    env = GaussianProductEnv(num_envs=4, seed=0)
    step = env.reset()
    step.check(env.spec, 4)
    assert step.avail_actions is None and env.spec.act_dim == 1 and not env.spec.is_discrete
    assert torch.equal(step.obs, torch.ones(4, 2, 1)) and torch.equal(step.state, torch.ones(4, 1))
    actions = torch.tensor([[[2.0], [3.0]], [[-1.5], [4.0]], [[0.0], [7.0]], [[-0.5], [-0.5]]])
    step = env.step(actions)
    assert step.reward.tolist() == [6.0, -6.0, 0.0, 0.25]
    assert bool(step.terminated.all()) and not bool(step.truncated.any())
    assert step.info["episode_length"].tolist() == [1] * 4
    assert torch.equal(step.obs, torch.ones(4, 2, 1))


def test_monte_carlo_return_matches_closed_form_j():
    # a^i ~ N(mu^i, 1) with mu = (-0.25, 0.25): J = mu1 mu2 = -0.0625 (ICLR22 Fig. 1)
    mu = torch.tensor([-0.25, 0.25])
    n = 200_000
    env = GaussianProductEnv(num_envs=n, seed=0)
    env.reset()
    gen = torch.Generator().manual_seed(0)
    actions = (mu + torch.randn(n, 2, generator=gen)).unsqueeze(-1)
    rewards = env.step(actions).reward.double()
    exact = ProductGaussianGame().expected_return(mu.tolist())
    stderr = rewards.std().item() / n**0.5
    assert abs(rewards.mean().item() - exact) < 5 * stderr
