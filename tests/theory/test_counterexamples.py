"""Tests for seqmarl.theory.counterexamples: the ICLR22 Fig. 1 closed form (theory.md §1.5) and the hypothesis
search for a tabular case where a simultaneous trust-region step lowers J but the sequential one does not."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
from scipy.optimize import brentq

from seqmarl.theory import counterexamples as ce
from seqmarl.theory import evaluate
from seqmarl.theory.policies import Factorized


# --- §1.5 closed form ----------------------------------------------------------------------------------------
def test_a1a2_paper_numbers():
    ex = ce.a1a2_example(0.5)
    np.testing.assert_allclose(ex.values(), (-0.0625, -0.5625, 0.1875, 0.9375), atol=1e-12, rtol=0)
    assert ex.mu_simultaneous == pytest.approx((0.75, -0.75), abs=1e-12)
    assert ex.mu_sequential[1] == pytest.approx((0.75, 1.25), abs=1e-12)
    assert "0.9375" in ex.to_text()


def test_a1a2_exact_rationals():
    assert ce.a1a2_exact() == (Fraction(-1, 16), Fraction(-9, 16), Fraction(3, 16), Fraction(15, 16))


@pytest.mark.parametrize("delta", [Fraction(1, 8), Fraction(1, 2), Fraction(2), Fraction(9, 2)])
@pytest.mark.parametrize("mu", [(Fraction(-1, 4), Fraction(1, 4)), (Fraction(3, 8), Fraction(-5, 8)), (Fraction(1, 2), Fraction(1, 4))])
def test_a1a2_float_matches_exact_for_rational_steps(delta, mu):
    """``sqrt(2 delta)`` is rational for these radii, so the float trust-region steps must match exact rationals."""
    ex = ce.a1a2_example(float(delta), mu=[float(m) for m in mu])
    np.testing.assert_allclose(ex.values(), [float(v) for v in ce.a1a2_exact(delta, mu)], atol=1e-12, rtol=0)


def test_a1a2_validation():
    with pytest.raises(ValueError, match="delta"):
        ce.a1a2_example(0.0)
    with pytest.raises(TypeError, match="delta"):
        ce.a1a2_example("0.5")
    with pytest.raises(ValueError, match="mu"):
        ce.a1a2_example(0.5, mu=(1.0, 2.0, 3.0))
    with pytest.raises(ValueError, match="rational"):
        ce.a1a2_exact(Fraction(1, 3))


# --- independent oracle for a one-shot 2x2 KL-ball step --------------------------------------------------------
def _kl_ball_step(p: float, gain_diff: float, delta: float) -> float:
    """Agent with ``P(a=0) = p`` maximising ``x * gain_diff`` subject to ``KL((p, 1-p) || (x, 1-x)) <= delta``:
    the linear objective puts the optimum on the boundary in the direction of ``gain_diff`` (brentq root)."""
    if abs(gain_diff) < 1e-15:
        return p

    def kl(x: float) -> float:
        return p * np.log(p / x) + (1 - p) * np.log((1 - p) / (1 - x)) - delta

    if gain_diff > 0:
        return brentq(kl, p, 1 - 1e-15, xtol=1e-15)
    return brentq(kl, 1e-15, p, xtol=1e-15)


def _independent_simultaneous_return(reward: np.ndarray, p: float, q: float, delta: float) -> float:
    x = _kl_ball_step(p, (reward[0] - reward[1]) @ np.array([q, 1 - q]), delta)
    y = _kl_ball_step(q, np.array([p, 1 - p]) @ (reward[:, 0] - reward[:, 1]), delta)
    return float(np.array([x, 1 - x]) @ reward @ np.array([y, 1 - y]))


@pytest.fixture(scope="module")
def found() -> ce.SimultaneousDecrease:
    return ce.find_simultaneous_decrease(seed=0, one_shot=True, two_state=False)


def test_search_finds_a_verified_simultaneous_decrease(found):
    """Recompute everything exactly from the returned game and policy, without trusting the search."""
    from seqmarl.theory.bounds import kl_tables
    from seqmarl.theory.iteration import hatrpo_kl_ball

    game, pi = found.game, found.policy
    rng = np.random.default_rng(1)
    j_old = evaluate.expected_return(game, pi)
    sim = hatrpo_kl_ball(game, pi, rng, delta=0.5, simultaneous=True)
    j_sim = evaluate.expected_return(game, sim)
    assert j_sim < j_old - 1e-6
    for order in [(0, 1), (1, 0)]:
        seq = hatrpo_kl_ball(game, pi, rng, delta=0.5, order=order)
        assert evaluate.expected_return(game, seq) >= j_old - 1e-9
    for old, new in zip(pi.tables, sim.tables):  # the simultaneous step is feasible for each agent
        assert kl_tables(old, new).max() <= 0.5 + 1e-7
    assert found.J_old == pytest.approx(j_old, abs=1e-12)
    assert found.J_simultaneous == pytest.approx(j_sim, abs=1e-7)
    assert found.J_sequential >= found.J_old - 1e-9
    assert found.decrease > 1e-6
    # independent oracle: the one-shot simultaneous KL-ball step by root finding
    p, q = float(pi.tables[0][0, 0]), float(pi.tables[1][0, 0])
    oracle = _independent_simultaneous_return(game.reward[0], p, q, 0.5)
    assert oracle == pytest.approx(j_sim, abs=1e-6)
    assert oracle < j_old - 1e-6


def test_search_is_deterministic_and_shrunk(found):
    again = ce.find_simultaneous_decrease(seed=0, one_shot=True, two_state=False)
    assert again.to_text() == found.to_text()
    # shrinking leaves small integers and probabilities on the 1/10 grid
    assert np.all(np.abs(found.game.reward) <= 1)
    for t in found.policy.tables:
        assert np.allclose(t * 10, np.round(t * 10))


def test_search_returns_nothing_for_an_update_that_never_moves():
    def frozen(game, pi, rng, order=None, simultaneous=False, **opts):
        return pi

    with pytest.raises(LookupError, match="no simultaneous-decrease"):
        ce.find_simultaneous_decrease(frozen, max_examples=5, seed=0)


def test_search_over_two_state_games():
    """The default search restricted to the 2-state family also finds a case; verified exactly as above."""
    from seqmarl.theory.iteration import hatrpo_kl_ball

    res = ce.find_simultaneous_decrease(max_examples=100, seed=0, one_shot=False)
    assert res.game.n_states == 2
    game, pi = res.game, res.policy
    rng = np.random.default_rng(0)
    j_old = evaluate.expected_return(game, pi)
    assert evaluate.expected_return(game, hatrpo_kl_ball(game, pi, rng, delta=0.5, simultaneous=True)) < j_old - 1e-6
    for order in [(0, 1), (1, 0)]:
        assert evaluate.expected_return(game, hatrpo_kl_ball(game, pi, rng, delta=0.5, order=order)) >= j_old - 1e-9
    text = res.to_text()
    assert "2-state" in text and "P(s'=0|s,a)" in text


def test_build_case_shapes_and_values():
    game, pi = ce.build_case(("one-shot", ((1, 0), (-1, 1)), (1, -2)))
    assert game.is_one_shot and game.reward[0].tolist() == [[1.0, 0.0], [-1.0, 1.0]]
    np.testing.assert_allclose(pi.tables[0], [[0.6, 0.4]])
    np.testing.assert_allclose(pi.tables[1], [[0.3, 0.7]])
    game2, pi2 = ce.build_case(
        ("two-state", (((0, 1), (1, 0)), ((2, 0), (0, 2))), (((4, 0), (2, 1)), ((0, 0), (3, 4))), ((0, 1), (-1, 2)))
    )
    assert game2.n_states == 2 and game2.gamma == 0.5
    assert game2.transition[0, 1, 0, 0] == pytest.approx(0.5) and game2.transition[1, 1, 1, 1] == pytest.approx(0.0)
    np.testing.assert_allclose(pi2.tables[1], [[0.4, 0.6], [0.7, 0.3]])


def test_evaluate_case_and_text():
    from seqmarl.theory.iteration import hatrpo_kl_ball

    game, pi = ce.build_case(("one-shot", ((1, 0), (0, 1)), (1, -1)))
    res = ce.evaluate_case(hatrpo_kl_ball, game, pi, {"delta": 0.5})
    assert res.J_old == pytest.approx(0.6 * 0.4 + 0.4 * 0.6, abs=1e-12)
    assert set(res.J_sequential_by_order) == {(0, 1), (1, 0)}
    assert "J_old=0.48" in res.to_text() and "delta=0.5" in res.to_text()


# --- validation ----------------------------------------------------------------------------------------------
def test_rejects_non_callable_update():
    with pytest.raises(TypeError, match="update"):
        ce.find_simultaneous_decrease("hatrpo", max_examples=1)


@pytest.mark.parametrize("n", [0, -3, True, 2.5])
def test_rejects_bad_max_examples(n):
    with pytest.raises(ValueError, match="max_examples"):
        ce.find_simultaneous_decrease(max_examples=n)


def test_rejects_bad_seed():
    with pytest.raises(TypeError, match="seed"):
        ce.find_simultaneous_decrease(seed="0", max_examples=1)


def test_rejects_bad_min_decrease():
    with pytest.raises(ValueError, match="min_decrease"):
        ce.find_simultaneous_decrease(min_decrease=-1.0, max_examples=1)


def test_rejects_empty_family():
    with pytest.raises(ValueError, match="one_shot"):
        ce.small_cases(one_shot=False, two_state=False)


def test_build_case_rejects_unknown_kind():
    with pytest.raises(ValueError, match="case"):
        ce.build_case(("three-state",))


def test_soft_policies_only():
    """Every drawn policy is soft (probabilities in [0.1, 0.9]), as HATRPO's Assumption 1 asks."""
    from hypothesis import given, settings

    @settings(max_examples=30, deadline=None, database=None)
    @given(ce.small_cases())
    def inner(case):
        _, pi = ce.build_case(case)
        assert isinstance(pi, Factorized)
        for t in pi.tables:
            assert t.min() >= 0.1 - 1e-12 and t.max() <= 0.9 + 1e-12

    inner()


def test_evaluate_case_names_the_update_it_ran():
    """The record (and its text summary) names the update rule that produced it."""
    from seqmarl.theory import counterexamples, games, iteration
    from seqmarl.theory.policies import Factorized

    game = games.random_game(np.random.default_rng(0), 2, [2, 2], 1, gamma=0.5)
    pi = Factorized([np.full((1, 2), 0.5), np.full((1, 2), 0.5)])
    case = counterexamples.evaluate_case(iteration.hatrpo_kl_ball, game, pi)
    assert case.update_name == "hatrpo_kl_ball"
    assert case.to_text().startswith("hatrpo_kl_ball(")
