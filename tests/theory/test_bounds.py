"""HATRPO Lemma 2 and its pieces (theory.md §1.3, §1.7, §1.8): exact values, the bound on random games for every
ordering, the first-order match, and input validation."""

from __future__ import annotations

import itertools
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from seqmarl import _strategies as sst
from seqmarl.theory import bounds, evaluate, games
from seqmarl.theory.markov_game import MarkovGame
from seqmarl.theory.policies import Factorized, Joint

SETTINGS = settings(max_examples=25, deadline=None, database=None)
SMALL_GAMES = sst.markov_games(n_agents=st.integers(1, 3), n_actions=st.integers(2, 3), n_states=st.integers(1, 3),
                               gammas=st.sampled_from([0.0, 0.5, 0.9]))


def _repeated(game: MarkovGame, gamma: float) -> MarkovGame:
    return MarkovGame(game.reward, game.transition, gamma, game.initial, name=f"{game.name}@{gamma}")


# --- KL tables ------------------------------------------------------------------------------------
def test_kl_tables_exact_values():
    old = np.array([[0.5, 0.5], [1.0, 0.0], [0.25, 0.75]])
    new = np.array([[0.25, 0.75], [0.5, 0.5], [0.25, 0.75]])
    expected = [0.5 * np.log(2.0) + 0.5 * np.log(0.5 / 0.75), np.log(2.0), 0.0]
    np.testing.assert_allclose(bounds.kl_tables(old, new), expected, rtol=0, atol=1e-15)
    assert bounds.max_kl(old, new) == pytest.approx(np.log(2.0), abs=1e-15)


def test_kl_tables_infinite_where_new_drops_old_support():
    old = np.array([[0.5, 0.5], [0.0, 1.0]])
    new = np.array([[1.0, 0.0], [0.5, 0.5]])  # row 0: new = 0 < old; row 1: old = 0 < new is finite
    kl = bounds.kl_tables(old, new)
    assert kl[0] == np.inf and kl[1] == pytest.approx(np.log(2.0), abs=1e-15)
    assert bounds.max_kl(old, new) == np.inf


@pytest.mark.parametrize(
    "old, new, exc",
    [
        (np.array([0.5, 0.5]), np.array([0.5, 0.5]), ValueError),  # not [S, A]
        (np.array([[0.5, 0.5]]), np.array([[0.2, 0.3, 0.5]]), ValueError),  # shape mismatch
        (np.array([[0.6, 0.6]]), np.array([[0.5, 0.5]]), ValueError),  # old not a distribution
        (np.array([[0.5, 0.5]]), np.array([[1.5, -0.5]]), ValueError),  # new negative
        ("abc", np.array([[0.5, 0.5]]), TypeError),
    ],
)
def test_kl_tables_validation(old, new, exc):
    with pytest.raises(exc):
        bounds.kl_tables(old, new)


# --- penalty constant -----------------------------------------------------------------------------
def test_penalty_constant_closed_form_repeated_climbing():
    """One state, gamma = 1/2, uniform policy: A = r - r_pi (Q = r + gamma V, V = r_pi / (1 - gamma)),
    r_pi = -31/9, max |A| = |-30 + 31/9| = 239/9, so C = 4 (1/2) (239/9) / (1/4) = 8 * 239 / 9."""
    game = _repeated(games.climbing(), 0.5)
    pi = Factorized.uniform(1, (3, 3))
    expected = Fraction(8) * Fraction(239, 9)
    assert bounds.penalty_constant(game, pi) == pytest.approx(float(expected), rel=1e-13)


def test_penalty_constant_zero_for_one_shot_games():
    assert bounds.penalty_constant(games.climbing(), Factorized.uniform(1, (3, 3))) == 0.0


def test_penalty_constant_rejects_finite_horizon():
    g = games.random_game(np.random.default_rng(0), 2, 2, 2, gamma=0.9)
    finite = MarkovGame(g.reward, g.transition, 1.0, g.initial, horizon=3)
    with pytest.raises(ValueError, match="infinite-horizon"):
        bounds.penalty_constant(finite, Factorized.uniform(2, (2, 2)))


def test_penalty_constant_rejects_non_product_policy_and_mismatch():
    game = games.climbing()
    with pytest.raises(TypeError, match="Factorized"):
        bounds.penalty_constant(game, Joint(np.full((1, 3, 3), 1 / 9)))
    with pytest.raises(ValueError, match="match the game"):
        bounds.penalty_constant(game, Factorized.uniform(1, (2, 2)))
    with pytest.raises(TypeError, match="MarkovGame"):
        bounds.penalty_constant("climbing", Factorized.uniform(1, (3, 3)))


@pytest.mark.parametrize("order", [(0,), (0, 0), (0, 2), [1, "x"]])
def test_order_validation(order):
    game = games.climbing()
    pi = Factorized.uniform(1, (3, 3))
    with pytest.raises((ValueError, TypeError)):
        bounds.first_order_terms(game, pi, pi, order)
    with pytest.raises((ValueError, TypeError)):
        bounds.lemma2_lower_bound(_repeated(game, 0.5), pi, pi, order)


def test_lemma2_rejects_finite_horizon():
    g = games.random_game(np.random.default_rng(1), 2, 2, 2, gamma=0.9)
    finite = MarkovGame(g.reward, g.transition, 0.9, g.initial, horizon=4)
    pi = Factorized.uniform(2, (2, 2))
    with pytest.raises(ValueError, match="infinite-horizon"):
        bounds.lemma2_lower_bound(finite, pi, pi, (0, 1))


# --- Lemma 1 / eq. (6) / Lemma 2 --------------------------------------------------------------------
@SETTINGS
@given(st.data())
def test_first_order_terms_equal_expected_advantage_for_every_order(data):
    """Lemma 1 (theory.md §1.6-§1.8): sum_m L^{i_{1:m}}(pibar^{i_{1:m-1}}, pibar^{i_m}) = sum_s rho_pi E_{pibar}[A_pi],
    whatever the order; and eq. (6): it vanishes at pibar = pi."""
    game = data.draw(SMALL_GAMES)
    pi = data.draw(sst.policies(game, "factorized", min_prob=0.05, near_deterministic=False))
    new = data.draw(sst.policies(game, "factorized", near_deterministic=True))
    rho = evaluate.occupancy(game, pi)
    adv = evaluate.advantage(game, pi)
    expected = float(rho @ np.sum((new.probs() * adv).reshape(game.n_states, -1), axis=1))
    scale = 1.0 + float(np.max(np.abs(adv))) * rho.sum()
    for order in itertools.permutations(range(game.n_agents)):
        assert bounds.first_order_terms(game, pi, new, order) == pytest.approx(expected, abs=1e-9 * scale)
        assert abs(bounds.first_order_terms(game, pi, pi, order)) <= 1e-12 * scale


@SETTINGS
@given(st.data())
def test_lemma2_bound_holds_for_every_order(data):
    """Lemma 2: J(pibar) >= J(pi) + sum_m [L^{i_{1:m}} - C Dmax_KL(pi^{i_m}, pibar^{i_m})] for every ordering,
    both for arbitrary pibar and for pibar close to pi (where the bound is not vacuous)."""
    game = data.draw(SMALL_GAMES)
    pi = data.draw(sst.policies(game, "factorized", min_prob=0.05, near_deterministic=False))
    far = data.draw(sst.policies(game, "factorized", near_deterministic=True))
    t = data.draw(st.sampled_from([1e-3, 1e-2, 0.1]))
    near = Factorized([(1 - t) * a + t * b for a, b in zip(pi.tables, far.tables)])
    for new in (far, near):
        j_new = evaluate.expected_return(game, new)
        for order in itertools.permutations(range(game.n_agents)):
            bound = bounds.lemma2_lower_bound(game, pi, new, order)
            assert bound <= j_new + 1e-9 * (1.0 + abs(j_new))
            if game.gamma == 0:  # C = 0 and rho_pibar = rho_pi = rho^0: the bound is the exact PDL identity
                assert bound == pytest.approx(j_new, abs=1e-9 * (1.0 + abs(j_new)))
    # the bound at pibar = pi is J(pi) exactly (eq. 6 and KL = 0)
    assert bounds.lemma2_lower_bound(game, pi, pi, tuple(range(game.n_agents))) == pytest.approx(
        evaluate.expected_return(game, pi), abs=1e-12 * (1 + abs(evaluate.expected_return(game, pi)))
    )


def _direction(rng: np.random.Generator, pi: Factorized) -> list[np.ndarray]:
    out = []
    for table in pi.tables:
        d = rng.standard_normal(table.shape)
        d -= d.mean(axis=1, keepdims=True)
        out.append(d / np.max(np.abs(d)))
    return out


@SETTINGS
@given(st.data())
def test_first_order_remainder_within_kakade_langford_bound(data):
    """|J(pibar) - J(pi) - sum_m L^{i_{1:m}}| = |sum_s (rho_pibar - rho_pi)(s) E_{pibar}[A_pi(s, .)]|
    <= gamma / (1 - gamma)^2 * max|A_pi| * D^2 with D = max_s ||pibar(.|s) - pi(.|s)||_1 (joint) [DERIVED]:
    an explicit O(t^2) bound for pibar = pi + t Delta (zero row sums)."""
    game = data.draw(SMALL_GAMES)
    pi = data.draw(sst.policies(game, "factorized", min_prob=0.05, near_deterministic=False))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    delta = _direction(rng, pi)
    order = data.draw(sst.orderings(game.n_agents))
    j = evaluate.expected_return(game, pi)
    k = game.gamma / (1 - game.gamma) ** 2 * float(np.max(np.abs(evaluate.advantage(game, pi))))
    for t in (0.04, 0.01, 1e-3):
        new = Factorized([a + t * d for a, d in zip(pi.tables, delta)])
        remainder = evaluate.expected_return(game, new) - j - bounds.first_order_terms(game, pi, new, order)
        d_joint = float(np.max(np.abs(new.probs() - pi.probs()).reshape(game.n_states, -1).sum(axis=1)))
        assert abs(remainder) <= k * d_joint**2 + 1e-11 * (1 + abs(j))


@pytest.mark.parametrize("seed", range(6))
def test_first_order_remainder_is_quadratic(seed):
    """error(t) / error(t/2) -> 4 as t -> 0 (theory.md §1.8 'How to verify': O(t^2) match)."""
    rng = np.random.default_rng(seed)
    game = games.random_game(rng, 3, [2, 3, 2], 3, gamma=(0.5, 0.9)[seed % 2])
    pi = sst.random_product_policy(rng, game, min_prob=0.1)
    delta = _direction(rng, pi)
    j = evaluate.expected_return(game, pi)

    def error(t: float) -> float:
        new = Factorized([a + t * d for a, d in zip(pi.tables, delta)])
        return evaluate.expected_return(game, new) - j - bounds.first_order_terms(game, pi, new, (2, 0, 1))

    ratios = [error(t) / error(t / 2) for t in (1e-2, 2e-3, 1e-3)]
    assert all(3.6 < r < 4.4 for r in ratios[1:])
    assert abs(ratios[-1] - 4) <= abs(ratios[0] - 4) + 1e-3
