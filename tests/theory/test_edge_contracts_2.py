"""More edge contracts pinned after the second sampled mutation run of theory/ (``mutation/theory-survivors.txt``):
float64 outputs, the one-shot fast path's condition, a solver status the QP accepts, the QPLEX note, per-row KL
outputs of the tilt solver, argument names in errors."""

from __future__ import annotations

import numpy as np
import pytest

from seqmarl.theory import factorization as fz
from seqmarl.theory import games, multiagent, npg
from seqmarl.theory.evaluate import expected_return
from seqmarl.theory.markov_game import MarkovGame, matrix_game
from seqmarl.theory.policies import Factorized
from seqmarl.theory.trust_region import KLTilt


def test_matrix_game_names_payoff_in_errors():
    with pytest.raises(TypeError, match=r"^payoff must be an array of real numbers"):
        matrix_game([["a", "b"]])


def test_float64_outputs():
    """Theory is float64 end to end: integer or float32 inputs come back as float64."""
    assert npg.softmax(np.array([0.0, 1.0], dtype=np.float32)).dtype == np.float64
    assert fz.as_q_table([[1, 2], [3, 4]]).dtype == np.float64


def test_npg_values_of_a_repeated_one_state_game_are_discounted():
    """A one-state game with gamma = 0.9 is NOT one-shot: J = r_pi / (1 - gamma) (the fast path is for gamma = 0)."""
    payoff = np.array([[1.0, 0.0], [0.0, 2.0]])
    game = MarkovGame(reward=payoff[None], transition=np.ones((1, 2, 2, 1)), gamma=0.9, initial=np.ones(1))
    logits = [np.zeros((1, 2)), np.zeros((1, 2))]
    run = npg.npg_independent(game, logits, 0.1, 0)
    pi = Factorized.uniform(1, (2, 2))
    assert run.returns[0] == pytest.approx(expected_return(game, pi), abs=1e-12)
    assert run.returns[0] == pytest.approx(0.75 / 0.1, abs=1e-12)


def test_qmix_fit_accepts_an_inaccurate_but_optimal_status(monkeypatch):
    """cvxpy reports ``optimal_inaccurate`` when a solver stops at its loose tolerance; the fit is polished and
    checked afterwards, so that status is accepted like ``optimal``."""
    import cvxpy as cp

    table = np.array([[1.0, 0.0], [0.0, 1.0]])
    expected = fz.qmix_best_fit(table).residual
    real_solve = cp.Problem.solve

    def solve(self, *args, **kwargs):
        out = real_solve(self, *args, **kwargs)
        self._status = "optimal_inaccurate"
        return out

    monkeypatch.setattr(cp.Problem, "solve", solve)
    assert fz.qmix_best_fit(table).residual == pytest.approx(expected, abs=1e-12)


def test_qplex_row_says_the_fit_is_only_in_the_closure():
    row = next(r for r in fz.igm_report(games.xor(2)).rows if r.method == "QPLEX")
    assert "not attained" in row.note and "never the whole optimal set" in row.note


def test_new_tables_must_be_state_by_action():
    game = games.xor(2)
    pi = Factorized.uniform(1, (2, 2))
    with pytest.raises(ValueError, match=r"new_tables\[0\]"):
        multiagent.surrogate(game, pi, (0,), [np.full((1, 2, 1), 0.5)])


def test_given_kl_reports_the_kl_of_every_row():
    """Three rows: flat (P = q, KL 0), interior (KL = t exactly at the optimum), and again interior with another t;
    the KL output is a float array with the true KL(q || P) of the returned P on every row."""
    q = np.array([[0.5, 0.5], [0.5, 0.5], [0.25, 0.75]])
    l = np.array([[1.0, 1.0], [1.0, 0.0], [0.0, 2.0]])
    tilt = KLTilt(q, l)
    t = np.array([0.1, 0.05, 0.02])
    p, kl, mu = tilt.given_kl(t)
    assert kl.dtype == np.float64
    true_kl = np.sum(q * np.log(q / p), axis=1)
    np.testing.assert_allclose(kl, true_kl, atol=1e-10)
    assert kl[0] == 0.0 and mu[0] == 0.0
    np.testing.assert_allclose(kl[1:], t[1:], rtol=1e-8)


def test_game_size_error_states_the_gib_needed():
    """Below 2^1000 bytes the message gives the GiB figure: 2^40 joint actions x 1 state need 16 * 2^40 bytes."""
    from seqmarl.theory.games import check_game_size

    with pytest.raises(ValueError, match=r"16,384\.0 GiB"):
        check_game_size(1, (2**40,), "big game")


def test_random_game_is_named_by_its_shape():
    game = games.random_game(np.random.default_rng(0), n_agents=2, n_actions=3, n_states=2, gamma=0.5)
    assert game.name.startswith("random")


def test_decreasing_root_clamps_at_both_bounds():
    """A root beyond the search interval is clamped to the bound (and found without looping)."""
    from seqmarl.theory.trust_region import _decreasing_root

    calls = {"n": 0}

    def counted(value):
        def f(y):
            calls["n"] += 1
            if calls["n"] > 10_000:
                raise RuntimeError("bracket expansion does not stop")
            return value
        return f

    assert _decreasing_root(counted(1.0), start=0.0) == 690.0  # f > 0 everywhere: the root is beyond hi
    calls["n"] = 0
    assert _decreasing_root(counted(-1.0), start=0.0) == -690.0
    assert _decreasing_root(lambda y: 3.0 - y, start=0.0) == pytest.approx(3.0, abs=1e-12)


def test_curvature_bound_of_a_cell_is_second_order_tight():
    """The curvature bound of a small cell (radius rho) exceeds the cell's true maximum by at most
    2 M rho^2 (M = n (n - 1) span / 4): it is a Taylor bound, not just some upper bound."""
    from seqmarl.theory import optima

    rng = np.random.default_rng(3)
    payoff = rng.normal(size=(3, 3))
    poly = optima._SymmetricPolynomial(payoff)
    span = float(payoff.max() - payoff.min())
    centre = np.array([0.3, 0.5, 0.2])
    for rho in (1e-1, 1e-2):
        verts = centre + rho / 2 * (np.eye(3) - 1.0 / 3.0)  # a small simplex around the centre
        cells = verts[None]
        values, grads = poly.value_and_grad(cells.mean(axis=1))
        bound = optima._cell_bounds(poly, cells, values, grads, span)[1, 0]
        w = rng.dirichlet(np.ones(3), size=4000)
        inside = np.vstack([w @ verts, verts])  # points of the cell, its vertices included
        true_max = float(np.max(np.einsum("ca,cb,ab->c", inside, inside, payoff)))
        radius = float(np.abs(verts - verts.mean(axis=0)).sum(axis=1).max())
        m = 2 * 1 * span / 4.0
        assert true_max - 1e-12 <= bound <= true_max + 2 * m * radius**2 + 1e-12


def test_max_kl_penalty_moves_corner_rows_whose_support_can_still_gain():
    """Two rows q = (1/2, 1/2, 0), l = (0, 1, 2): action 2 (off the support) beats the support, a corner with
    kl_c > 0 (the support itself can still move towards action 1). For c = 3 >= sum_s mu_c the optimum is NOT q:
    the objective sum_s <l_s, P_s> - c max_s KL(q_s || P_s) exceeds its value 1 at P = q."""
    from seqmarl.theory.trust_region import solve_max_kl_penalty

    q = np.array([[0.5, 0.5, 0.0], [0.5, 0.5, 0.0]])
    l = np.array([[0.0, 1.0, 2.0], [0.0, 1.0, 2.0]])
    tilt = KLTilt(q, l)
    assert tilt.corner.all() and (0 < tilt.kl_c).all() and (tilt.kl_c <= 1).all() and tilt.mu_c.sum() <= 3.0
    p = solve_max_kl_penalty(q, l, 3.0)
    kl = np.sum(np.where(q > 0, q * np.log(np.where(q > 0, q, 1.0) / np.where(q > 0, p, 1.0)), 0.0), axis=1)
    assert float((l * p).sum()) - 3.0 * float(kl.max()) > 1.0 + 0.05
