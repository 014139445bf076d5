"""Test your own update rule with seqmarl, exactly as a user would (``pytest examples/ --seqmarl``).

The algorithm under test is the few lines below ("damped best response", a user's rule): agents, in a random
order, each move a step of the way towards their greedy action against the others' *current* policies,

    pi^i <- (1 - step) pi^i + step * onehot(argmax_{a^i} Q^i_pi(s, a^i)),   Q^i_pi(s, a^i) = E_{a^{-i} ~ pi^{-i}}[Q_pi(s, a)].

Each move is a policy-improvement step in agent i's own MDP (the others fixed), so J never decreases; the tests
check that, that it reaches the exact optimum of the n-agent XOR and permutation games, that it ends at a Nash
equilibrium, and a hand-written multi-agent advantage. ``--seqmarl`` adds seqmarl's theorem checks to the run.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from seqmarl.testing import (
    assert_advantage_decomposition,
    assert_epsilon_nash,
    assert_monotone_improvement,
    assert_reaches_optimum,
    tabular_policy,
)
from seqmarl.testing import strategies as sst
from seqmarl.theory import Factorized, games, multiagent


# --- the user's algorithm -----------------------------------------------------------------------------------
def damped_best_response(game, pi, rng, step=0.5):
    tables = list(pi.tables)
    for i in rng.permutation(game.n_agents):
        q_i = multiagent.q_subset(game, Factorized(tables), [i])  # Q^i_pi(s, a^i), [S, A_i]
        tables[i] = (1 - step) * tables[i] + step * np.eye(game.n_actions[i])[q_i.argmax(axis=1)]
    return Factorized(tables)


def train(game, rng, iters=60):
    pi = Factorized.uniform(game.n_states, game.n_actions)
    for _ in range(iters):
        pi = damped_best_response(game, pi, rng)
    return pi


# --- the user's tests -----------------------------------------------------------------------------------------
def test_every_step_is_monotone():
    assert_monotone_improvement(damped_best_response, max_examples=30, n_iters=3)


@pytest.mark.parametrize("game", [games.xor(2), games.xor(4), games.xor(6), games.permutation(3)], ids=lambda g: g.name)
def test_reaches_the_exact_optimum(game):
    assert_reaches_optimum(train, game, tol=1e-9)


def test_ends_at_a_nash_equilibrium_of_random_games():
    assert_epsilon_nash(train, sst.markov_games(n_agents=2, n_states=2), eps=1e-9, max_examples=15)


def test_simultaneous_variant_is_caught():
    """All agents moving at once (step 1) can lower J (theory.md §1.5): the helper finds a shrunk counterexample."""

    def simultaneous(game, pi, rng):
        greedy = [np.eye(a)[multiagent.q_subset(game, pi, [i]).argmax(axis=1)] for i, a in enumerate(game.n_actions)]
        return Factorized(greedy)

    with pytest.raises(AssertionError, match="J decreased"):
        assert_monotone_improvement(simultaneous, max_examples=50, n_iters=1)


def my_advantage(game, pi, agents, given):
    """A^{agents}(s, a^{given}, a^{agents}) = Q^{given, agents}(s, .) - Q^{given}(s, .)."""
    both, base = multiagent.q_subset(game, pi, given + agents), multiagent.q_subset(game, pi, given)
    return both - base.reshape(base.shape + (1,) * len(agents))


def test_my_advantage_satisfies_lemma1():
    assert_advantage_decomposition(my_advantage, max_examples=30)


# --- a torch policy, read out exactly -------------------------------------------------------------------------
class LogitTable(torch.nn.Module):
    """One logit table per agent: pi^i(.|s) = softmax(theta_i[s]); input: one-hot states obs [S, n, S]."""

    def __init__(self, n_states, n_actions):
        super().__init__()
        self.theta = torch.nn.ParameterList([torch.nn.Parameter(torch.zeros(n_states, a)) for a in n_actions])

    def forward(self, obs):
        return [torch.distributions.Categorical(logits=obs[:, i] @ t) for i, t in enumerate(self.theta)]


def train_torch(game, rng, steps=300):
    """Exact policy gradient on a one-shot game: ascend J(theta) = sum_a r(a) prod_i pi^i(a^i)."""
    torch.manual_seed(int(rng.integers(2**31)))
    policy = LogitTable(game.n_states, game.n_actions)
    for t in policy.theta:
        torch.nn.init.normal_(t, std=0.5)
    reward, opt = torch.tensor(game.reward[0]), torch.optim.Adam(policy.parameters(), lr=0.1)
    obs = torch.eye(game.n_states)[:, None].expand(-1, game.n_agents, -1)  # [S, n, S], what the env shows
    for _ in range(steps):
        j = reward
        for dist in reversed(policy(obs)):  # contract the last agent's axis first
            j = j @ dist.probs[0].double()
        opt.zero_grad()
        (-j).backward()
        opt.step()
    return policy


def test_torch_policy_reaches_the_optimum():
    game = games.xor(2)
    assert_reaches_optimum(train_torch, game, tol=1e-3)
    pi = tabular_policy(train_torch(game, np.random.default_rng(0)), game)  # the exact table behind the module
    assert pi.probs().shape == (1, 2, 2)
