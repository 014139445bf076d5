"""``assert_reaches_optimum``, ``assert_epsilon_nash`` and ``assert_advantage_decomposition``: each passes for a
correct rule, fails with a readable (shrunk) counterexample for a deliberately broken one, validates its inputs."""

from __future__ import annotations

import re

import numpy as np
import pytest
from hypothesis import strategies as st

from seqmarl import _strategies as sst
from seqmarl.testing import assert_advantage_decomposition, assert_epsilon_nash, assert_reaches_optimum
from seqmarl.theory import Factorized, Joint, games, multiagent, optima

SMALL = sst.markov_games(n_agents=st.integers(1, 3), n_actions=st.integers(2, 3), n_states=st.integers(1, 3))


def train_optimal(game, rng):
    return optima.joint_optimum(game).policy


def train_uniform(game, rng):
    """Broken: never learns anything."""
    return Factorized.uniform(game.n_states, game.n_actions)


# --- assert_reaches_optimum ---------------------------------------------------------------------------


def test_reaches_optimum_passes_for_the_exact_optimiser():
    for game in (games.xor(2), games.xor(4), games.permutation(3), games.climbing()):
        assert_reaches_optimum(train_optimal, game, tol=1e-12)
    assert_reaches_optimum(train_optimal, SMALL, tol=1e-9, max_examples=15, seed=0)
    assert_reaches_optimum(lambda g, rng: optima.factorized_optimum(g).policy.tables, [games.qtran()], 0)


def test_reaches_optimum_fails_for_a_rule_that_learns_nothing():
    with pytest.raises(AssertionError) as info:
        assert_reaches_optimum(train_uniform, games.xor(4), tol=1e-6)
    message = str(info.value)
    assert "J(pi) = 0.125 is 0.875 below the joint optimum J* = 1 (tol 1e-06)" in message
    assert "an optimal joint action per state: s0: (0, 0, 1, 1)" in message
    for piece in ("game: 'xor(4)'", "reward[S, A1..An] =", "returned policy table[3] (agent 3, [S, A]) =",
                  "[[0.5, 0.5]]"):
        assert piece in message, piece


def test_reaches_optimum_shrinks_a_generated_counterexample():
    with pytest.raises(AssertionError) as info:
        assert_reaches_optimum(train_uniform, SMALL, tol=1e-6, max_examples=30, seed=0)
    message = str(info.value)
    assert re.search(r"J\(pi\) = -?[\d.e-]+ is [\d.e-]+ below the joint optimum", message)
    assert "n_states=1" in message and "train_fn rng seed:" in message
    assert "Falsifying example" not in message


def test_reaches_optimum_passes_the_rng_and_reads_any_policy_form():
    seeds = []

    def train(game, rng):
        seeds.append(int(rng.integers(1000)))
        return optima.joint_optimum(game).policy.probs()  # a raw joint array

    assert_reaches_optimum(train, games.xor(2), 0, seed=3)
    assert_reaches_optimum(train, games.xor(2), 0, seed=3)
    assert seeds[0] == seeds[1] == int(np.random.default_rng(3).integers(1000))


@pytest.mark.parametrize(("kwargs", "exc", "needle"), [
    ({"tol": -1.0}, ValueError, "tol"),
    ({"tol": float("nan")}, ValueError, "tol"),
    ({"tol": "small"}, TypeError, "tol"),
    ({"train_fn": 3}, TypeError, "train_fn"),
    ({"max_examples": 0, "game": SMALL}, ValueError, "max_examples"),
    ({"seed": -1}, ValueError, "seed"),
    ({"game": "xor"}, TypeError, "games must be"),
])
def test_reaches_optimum_validates_its_arguments(kwargs, exc, needle):
    args = {"train_fn": train_optimal, "game": games.xor(2), "tol": 1e-6, **kwargs}
    with pytest.raises(exc, match=needle):
        assert_reaches_optimum(args.pop("train_fn"), args.pop("game"), **args)


def test_reaches_optimum_says_when_train_fn_returns_no_policy():
    with pytest.raises(TypeError, match="train_fn returned something that is not a policy"):
        assert_reaches_optimum(lambda g, rng: "trained!", games.xor(2), 1e-6)
    with pytest.raises(ValueError, match="train_fn returned .* shape"):
        assert_reaches_optimum(lambda g, rng: np.ones((1, 3, 3)) / 9, games.xor(2), 1e-6)


# --- assert_epsilon_nash -----------------------------------------------------------------------------------


def test_epsilon_nash_passes_at_equilibria():
    climbing = games.climbing()
    for a in ((0, 0), (1, 1)):  # the two pure NE of the climbing game
        assert_epsilon_nash(Factorized.deterministic(np.array([a]), (3, 3)), climbing, eps=0)
    assert_epsilon_nash(Joint.deterministic(np.array([[1, 1]]), (3, 3)), climbing, eps=0)  # factorises
    # the joint optimum of a cooperative game is a NE: a train function over generated games
    assert_epsilon_nash(train_optimal, SMALL, eps=1e-9, max_examples=10, seed=0)


def test_epsilon_nash_fails_away_from_equilibrium():
    with pytest.raises(AssertionError) as info:
        assert_epsilon_nash(Factorized.deterministic(np.array([[0, 1]]), (3, 3)), games.climbing(), eps=1e-3)
    message = str(info.value)
    # (a, b) pays -30; agent 0 gains 37 by switching to b, agent 1 gains 41 by switching to a
    assert "not an eps-Nash equilibrium: agent 1 gains 41 > eps 0.001 by deviating alone (J(pi) = -30)" in message
    assert "  agent 0: best response J = 7, gain 37\n  agent 1: best response J = 11, gain 41" in message
    assert "game: 'climbing'" in message and "policy table[1] (agent 1, [S, A]) =\n[[0., 1., 0.]]" in message


def test_epsilon_nash_shrinks_a_broken_train_function():
    with pytest.raises(AssertionError) as info:
        assert_epsilon_nash(train_uniform, SMALL, eps=1e-6, max_examples=30, seed=0)
    message = str(info.value)
    assert "not an eps-Nash equilibrium" in message and "n_states=1" in message and "train_fn rng seed:" in message


def test_epsilon_nash_validates_its_arguments():
    climbing = games.climbing()
    pure = Factorized.deterministic(np.array([[0, 0]]), (3, 3))
    with pytest.raises(ValueError, match="eps"):
        assert_epsilon_nash(pure, climbing, eps=-0.1)
    with pytest.raises(TypeError, match="game must be one MarkovGame"):
        assert_epsilon_nash(pure, [climbing], eps=0.1)
    correlated = np.zeros((1, 3, 3))
    correlated[0, 0, 0] = correlated[0, 1, 1] = 0.5
    with pytest.raises(ValueError, match="correlated joint policy"):
        assert_epsilon_nash(correlated, climbing, eps=0.1)
    with pytest.raises(ValueError, match="policy"):
        assert_epsilon_nash(Factorized.uniform(1, (2, 2)), climbing, eps=0.1)


# --- assert_advantage_decomposition --------------------------------------------------------------------


def forgets_the_given_agents(game, pi, agents, given):
    """Broken: ``Q^{agents} - V`` broadcast over the given agents' actions (it ignores a^{given})."""
    adv = multiagent.advantage_subset(game, pi, agents, ())
    shape = (game.n_states, *(game.n_actions[i] for i in given + agents))
    return np.broadcast_to(adv.reshape((game.n_states,) + (1,) * len(given) + adv.shape[1:]), shape)


def doubled(game, pi, agents, given):
    """Broken but self-consistent: ``2 A`` satisfies Lemma 1 (it is linear) and is not the advantage."""
    return 2 * multiagent.advantage_subset(game, pi, agents, given)


def test_advantage_decomposition_passes_for_the_exact_advantage():
    assert_advantage_decomposition(multiagent.advantage_subset, max_examples=25, seed=0)
    assert_advantage_decomposition(multiagent.advantage_subset, [games.xor(4), games.climbing()], max_examples=5)


def test_advantage_decomposition_fails_when_the_given_agents_are_ignored():
    with pytest.raises(AssertionError) as info:
        assert_advantage_decomposition(forgets_the_given_agents, max_examples=50, seed=0)
    message = str(info.value)
    assert re.search(r"Lemma 1 fails for the prefix i_1\.\.i_m = \(\d, \d\) \(m = 2, tol 1e-08\); worst entry at "
                     r"s=0, a\^\d=\d, a\^\d=\d:", message), message
    # the returned and the exact joint value, terms and their sum, side by side
    assert re.search(r"joint A\^\{i_1:m\}\(s, a\)\s+terms A\^\{i_j\}\(s, a\^\{i_1:j-1\}, a\^\{i_j\}\), j = 1\.\.m\s+"
                     r"sum of terms\n  returned\s+-?[\d.]+\s+\[-?[\d.]+, -?[\d.]+\]\s+-?[\d.]+\n"
                     r"  exact\s+-?[\d.]+\s+\[-?[\d.]+, -?[\d.]+\]\s+-?[\d.]+\n", message), message
    for piece in ("Lemma 1 error |joint - sum of terms| = ", "; error against the exact values = ",
                  "ordering i_1..i_n = ", "reward[S, A1..An] =", "pi table[0] (agent 0, [S, A]) ="):
        assert piece in message, piece
    assert "n_states=1" in message and "n_agents=2" in message  # shrunk to the smallest default game


def test_advantage_decomposition_compares_with_the_exact_values():
    with pytest.raises(AssertionError, match="the advantages differ from the exact values for the prefix"):
        assert_advantage_decomposition(doubled, max_examples=20, seed=0)
    assert_advantage_decomposition(doubled, max_examples=20, seed=0, exact=False)  # Lemma 1 alone holds


def test_advantage_decomposition_reports_wrong_shapes_and_torch_outputs_are_read():
    import torch

    with pytest.raises(AssertionError, match=r"returned shape \(\d+, \d\); A\^\(\d,\)\(s, a\^\(\d,\), a\^\(\d,\)\) "
                                             r"has shape \[S, A_\d, A_\d\]"):
        assert_advantage_decomposition(lambda g, pi, agents, given: multiagent.advantage_subset(g, pi, agents, ()),
                                       max_examples=10, seed=0)
    assert_advantage_decomposition(
        lambda g, pi, agents, given: torch.from_numpy(multiagent.advantage_subset(g, pi, agents, given).copy()),
        max_examples=5, seed=0)


@pytest.mark.parametrize(("kwargs", "exc", "needle"), [
    ({"advantage_fn": None}, TypeError, "advantage_fn"),
    ({"tol": -1e-9}, ValueError, "tol"),
    ({"exact": "yes"}, TypeError, "exact"),
    ({"min_prob": 0.9}, ValueError, "min_prob"),
    ({"max_examples": 0}, ValueError, "max_examples"),
    ({"games": 3}, TypeError, "games"),
])
def test_advantage_decomposition_validates_its_arguments(kwargs, exc, needle):
    args = {"advantage_fn": multiagent.advantage_subset, **kwargs}
    with pytest.raises(exc, match=needle):
        assert_advantage_decomposition(args.pop("advantage_fn"), **args)


def test_advantage_decomposition_refuses_finite_horizon_games():
    finite = sst.markov_games(n_agents=2, n_states=2, gammas=0.9, horizons=3)
    with pytest.raises(ValueError, match="horizon None or 1"):
        assert_advantage_decomposition(multiagent.advantage_subset, finite, max_examples=3)
