"""Tests of seqmarl.theory.factorization: VDN / QMIX / QPLEX representability (theory.md §3.2, §7, §8).

Oracles: closed forms worked out by hand in the comments (Fractions), an independent brute force over all action
orderings for QMIX membership, and an independent exact isotonic-regression formula (Robertson, Wright & Dykstra
1988, Thm 1.4.4: ``F(x) = min_{L lower set, x in L} max_{U upper set, x in U} Av_w(L n U)``) for the best monotone fit.
"""

from __future__ import annotations

import functools
import itertools
import math
from fractions import Fraction as Fr

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from seqmarl.theory import factorization as fz
from seqmarl.theory import games
from seqmarl.theory.markov_game import MarkovGame, matrix_game

PROPERTY = settings(max_examples=25, deadline=None, database=None)

CONTROL = [[12, -0.1, -0.1], [-0.1, 0, 0], [-0.1, 0, 0]]  # theory.md §7.6 "QMIX-solvable control"
CONTROL_EXACT = [[Fr(12), Fr(-1, 10), Fr(-1, 10)], [Fr(-1, 10), Fr(0), Fr(0)], [Fr(-1, 10), Fr(0), Fr(0)]]


def F(rows):  # noqa: N802 - a table of Fractions from nested ints or Fractions
    return np.array([[x if isinstance(x, Fr) else Fr(x) for x in r] for r in rows], dtype=object)


def _floats(table) -> np.ndarray:
    return np.vectorize(float)(np.asarray(table, dtype=object)).astype(np.float64)


# ---------------------------------------------------------------------------------------------------------------
# Independent oracles
# ---------------------------------------------------------------------------------------------------------------
def _brute_force_representable(q: np.ndarray) -> bool:
    """Exists a total order per agent with Q non-decreasing along each (theory.md §7.6 brute force)."""
    shape = q.shape
    n = q.ndim
    for orders in itertools.product(*[itertools.permutations(range(m)) for m in shape]):
        ok = True
        for i in range(n):
            for k in range(shape[i] - 1):
                lo = np.take(q, orders[i][k], axis=i)
                hi = np.take(q, orders[i][k + 1], axis=i)
                if np.any(lo > hi):
                    ok = False
                    break
            if not ok:
                break
        if ok:
            return True
    return False


@functools.lru_cache(maxsize=None)
def _lattice(shape: tuple[int, ...]):
    """Cells in C order and all non-empty lower / upper sets (bitmasks) of the product of chains ``shape``."""
    cells = list(itertools.product(*[range(m) for m in shape]))
    pos = {c: k for k, c in enumerate(cells)}
    preds = [[pos[c[:i] + (c[i] - 1,) + c[i + 1 :]] for i in range(len(shape)) if c[i] > 0] for c in cells]
    full = (1 << len(cells)) - 1
    lowers = [m for m in range(1, full + 1) if all((m >> p) & 1 for k in range(len(cells)) if (m >> k) & 1 for p in preds[k])]
    uppers = [full ^ m for m in lowers if m != full] + [full]
    return cells, lowers, uppers


def _isotonic_oracle(y, w, exact: bool = False):
    """Weighted L2 isotonic regression of ``y`` (any n-dim shape, <= ~10 cells) onto tables non-decreasing along
    every axis in index order, by the min-max formula over lower/upper sets (enumerated as bitmasks)."""
    y = np.asarray(y, dtype=object if exact else np.float64)
    w = np.asarray(w, dtype=object if exact else np.float64)
    cells, lowers, uppers = _lattice(y.shape)
    yv = [y[c] for c in cells]
    wv = [w[c] for c in cells]
    zero = Fr(0) if exact else 0.0

    @functools.lru_cache(maxsize=None)
    def avg(mask):
        ks = [k for k in range(len(cells)) if (mask >> k) & 1]
        return sum((wv[k] * yv[k] for k in ks), zero) / sum((wv[k] for k in ks), zero)

    out = np.empty(y.shape, dtype=object if exact else np.float64)
    for k, c in enumerate(cells):
        out[c] = min(max(avg(L & U) for U in uppers if (U >> k) & 1) for L in lowers if (L >> k) & 1)
    return out


def _best_monotone_oracle(q, w=None, exact: bool = False):
    """min over all ordering tuples of the oracle projection: (residual, set of optimal ordering tuples)."""
    q = np.asarray(q, dtype=object if exact else np.float64)
    w = np.ones(q.shape, dtype=object if exact else np.float64) if w is None else np.asarray(w)
    results = []
    for orders in itertools.product(*[itertools.permutations(range(m)) for m in q.shape]):
        ix = np.ix_(*[list(o) for o in orders])
        fit_p = _isotonic_oracle(q[ix], w[ix], exact)
        fit = np.empty(q.shape, dtype=fit_p.dtype)
        fit[ix] = fit_p
        results.append((sum(((w * (q - fit) ** 2)).ravel()), orders, fit))
    best = min(r for r, _, _ in results)
    return best, results


# ---------------------------------------------------------------------------------------------------------------
# VDN: exact closed forms (theory.md §7.6, §8)
# ---------------------------------------------------------------------------------------------------------------
def test_vdn_qtran_exact_and_greedy():
    expected = F([[Fr(-56, 9), Fr(-44, 9), Fr(-44, 9)], [Fr(-44, 9), Fr(-32, 9), Fr(-32, 9)], [Fr(-44, 9), Fr(-32, 9), Fr(-32, 9)]])
    exact = fz.vdn_fit_exact(games.qtran())
    assert exact.shape == (3, 3) and all(isinstance(x, Fr) for x in exact.ravel())
    assert np.array_equal(exact, expected)
    fit = fz.vdn_fit(games.qtran())
    np.testing.assert_allclose(fit.fitted, _floats(expected), atol=1e-12)
    assert set(fit.greedy) == {(1, 1), (1, 2), (2, 1), (2, 2)}  # {B, C}^2
    assert fit.greedy_payoffs == (0.0, 0.0, 0.0, 0.0) and fit.regret == 8.0
    # residual by hand: (8 + 56/9)^2 + 4 (-12 + 44/9)^2 + 4 (32/9)^2 = (16384 + 16384 + 4096) / 81
    assert fit.residual == pytest.approx(36864 / 81, rel=1e-12)


def test_vdn_climbing_exact():
    # Rows a,b,c and columns a,b,c of [[11,-30,0],[-30,7,6],[0,0,5]]:
    # row means Rbar_a. = -19/3, -17/3, 5/3; column means Rbar_.b = -19/3, -23/3, 11/3; grand mean -31/9.
    # Qhat = Rbar_a. + Rbar_.b + 31/9, in ninths: rows -57, -51, 15; columns -57, -69, 33; plus 31:
    #   a: -57-57+31=-83, -57-69+31=-95, -57+33+31=7
    #   b: -51-57+31=-77, -51-69+31=-89, -51+33+31=13
    #   c:  15-57+31=-11,  15-69+31=-23,  15+33+31=79
    expected = F([[Fr(-83, 9), Fr(-95, 9), Fr(7, 9)], [Fr(-77, 9), Fr(-89, 9), Fr(13, 9)], [Fr(-11, 9), Fr(-23, 9), Fr(79, 9)]])
    assert np.array_equal(fz.vdn_fit_exact(games.climbing()), expected)
    theory_md = np.array([[-9.22, -10.56, 0.78], [-8.56, -9.89, 1.44], [-1.22, -2.56, 8.78]])  # rounded, theory.md §8
    np.testing.assert_array_equal(np.round(_floats(expected), 2), theory_md)
    fit = fz.vdn_fit(games.climbing())
    np.testing.assert_allclose(fit.fitted, _floats(expected), atol=1e-12)
    assert fit.greedy == ((2, 2),) and fit.greedy_payoffs == (5.0,)


def test_vdn_penalty_minus_100_exact():
    # k = -100: row/column means (10+k)/3 = -30, 2/3, -30; grand mean (22+2k)/9 = -178/9.
    # (a,a) = -60 + 178/9 = -362/9; (a,b) = -30 + 2/3 + 178/9 = -86/9; (b,b) = 4/3 + 178/9 = 190/9.
    aa, ab, bb = Fr(-362, 9), Fr(-86, 9), Fr(190, 9)
    expected = F([[aa, ab, aa], [ab, bb, ab], [aa, ab, aa]])
    assert np.array_equal(fz.vdn_fit_exact(games.penalty(-100)), expected)
    assert round(float(bb), 1) == 21.1 and round(float(aa), 1) == -40.2  # theory.md §8
    fit = fz.vdn_fit(games.penalty(-100))
    assert fit.greedy == ((1, 1),) and fit.greedy_payoffs == (2.0,) and fit.regret == 8.0


def test_vdn_penalty_zero_miscoordination():
    # k = 0: means 10/3, 2/3, 10/3; grand 22/9; (a,a) = 20/3 - 22/9 = 38/9, (a,b) = 4 - 22/9 = 14/9, (b,b) = -10/9.
    expected = F([[Fr(38, 9), Fr(14, 9), Fr(38, 9)], [Fr(14, 9), Fr(-10, 9), Fr(14, 9)], [Fr(38, 9), Fr(14, 9), Fr(38, 9)]])
    assert np.array_equal(fz.vdn_fit_exact(games.penalty(0)), expected)
    fit = fz.vdn_fit(games.penalty(0))
    assert set(fit.greedy) == {(0, 0), (0, 2), (2, 0), (2, 2)}  # tie a/c for both agents
    assert fit.worst_payoff == 0.0 and fit.mean_payoff == 5.0  # miscoordination (a,c) = k = 0


def test_vdn_xor_constant_half_residual_one():
    exact = fz.vdn_fit_exact(games.xor(2))
    assert np.array_equal(exact, F([[Fr(1, 2), Fr(1, 2)], [Fr(1, 2), Fr(1, 2)]]))
    q = F([[0, 1], [1, 0]])
    assert sum(((q - exact) ** 2).ravel()) == 1
    fit = fz.vdn_fit(games.xor(2))
    assert fit.residual == pytest.approx(1.0, abs=1e-12)
    assert len(fit.greedy) == 4 and fit.worst_payoff == 0.0


def test_vdn_exact_accepts_fractions_and_strings():
    exact = fz.vdn_fit_exact(CONTROL_EXACT)
    as_strings = fz.vdn_fit_exact([["12", "-1/10", "-1/10"], ["-1/10", "0", "0"], ["-1/10", "0", "0"]])
    assert np.array_equal(exact, as_strings)
    # row means 59/15, -1/30, -1/30 (= columns), grand mean (12 - 4/10)/9 = 58/45:
    # Qhat(A,A) = 118/15 - 58/45 = 296/45, Qhat(B,B) = -1/15 - 58/45 = -61/45
    assert exact[0, 0] == Fr(296, 45) and exact[1, 1] == Fr(-61, 45)


def test_vdn_utilities_gauge_and_additive_exact():
    rng = np.random.default_rng(0)
    parts = [rng.normal(size=m) for m in (2, 3, 4)]
    q = parts[0][:, None, None] + parts[1][None, :, None] + parts[2][None, None, :]
    fit = fz.vdn_fit(q)
    assert fit.residual < 1e-20 and fit.identified
    np.testing.assert_allclose(fit.fitted, q, atol=1e-12)
    for u in fit.utilities[1:]:
        assert abs(u.mean()) < 1e-12
    rebuilt = fit.utilities[0][:, None, None] + fit.utilities[1][None, :, None] + fit.utilities[2][None, None, :]
    np.testing.assert_allclose(rebuilt, fit.fitted, atol=1e-12)


@st.composite
def _real_tables(draw, max_agents: int = 3):
    n = draw(st.integers(1, max_agents))
    shape = tuple(draw(st.lists(st.integers(1, 3), min_size=n, max_size=n)))
    seed = draw(st.integers(0, 2**31 - 1))
    return np.random.default_rng(seed).normal(size=shape), seed


@PROPERTY
@given(_real_tables())
def test_vdn_uniform_equals_anova_closed_form(case):
    q, _ = case
    exact = _floats(fz.vdn_fit_exact(q))
    np.testing.assert_allclose(fz.vdn_fit(q).fitted, exact, atol=1e-9)


@PROPERTY
@given(_real_tables(max_agents=2))
def test_vdn_product_weights_weighted_anova(case):
    # Under product weights w = u (x) v the additive LS fit is the weighted ANOVA main effects:
    # Qhat(a,b) = sum_b' v_b' Q(a,b') + sum_a' u_a' Q(a',b) - sum u_a' v_b' Q(a',b')   (u, v normalised).
    q, seed = case
    if q.ndim == 1:
        q = q[:, None]
    rng = np.random.default_rng(seed + 1)
    u, v = rng.uniform(0.1, 2, q.shape[0]), rng.uniform(0.1, 2, q.shape[1])
    u, v = u / u.sum(), v / v.sum()
    expected = (q @ v)[:, None] + (u @ q)[None, :] - u @ q @ v
    np.testing.assert_allclose(fz.vdn_fit(q, np.outer(u, v) * 7.0).fitted, expected, atol=1e-9)


@PROPERTY
@given(_real_tables())
def test_vdn_weighted_normal_equations(case):
    q, seed = case
    w = np.random.default_rng(seed + 2).uniform(0, 3, q.shape)
    fit = fz.vdn_fit(q, w)
    r = w * (q - fit.fitted)
    for i in range(q.ndim):  # X^T W (Q - Qhat) = 0: weighted residual sums to 0 on every slice a_i = b
        np.testing.assert_allclose(r.sum(axis=tuple(j for j in range(q.ndim) if j != i)), 0.0, atol=1e-9)


def test_vdn_zero_weights_flag_unidentified():
    # only the diagonal observed in a 2x2: the fit is exact there but the off-diagonal is not identified
    q = np.array([[1.0, 5.0], [7.0, 3.0]])
    w = np.eye(2)
    fit = fz.vdn_fit(q, w)
    assert not fit.identified and fit.residual < 1e-20
    assert fz.vdn_fit(q, np.array([[1.0, 1.0], [1.0, 0.0]])).identified


# ---------------------------------------------------------------------------------------------------------------
# QMIX: exact membership (theory.md §7.6)
# ---------------------------------------------------------------------------------------------------------------
def test_qtran_not_monotone_and_witness():
    ok, witness = fz.is_monotone_representable(games.qtran())
    assert ok is False and not witness.representable
    assert witness.agent == 0 and witness.actions == (0, 1) and witness.contexts == ((0,), (1,))
    assert witness.values == (8.0, -12.0, -12.0, 0.0)
    assert "column A" in witness.description and "column B" in witness.description
    assert "rows A and B" in witness.description
    assert witness.cells() == ((0, 0), (1, 0), (0, 1), (1, 1))


def test_climbing_penalty_xor_control_not_monotone():
    # climbing rows a=(11,-30,0), b=(-30,7,6), c=(0,0,5): every pair crosses (a>b in col a, b>a in col b).
    ok, w = fz.is_monotone_representable(games.climbing())
    assert not ok and w.actions == (0, 1) and w.values == (11.0, -30.0, -30.0, 7.0)
    # penalty rows a=(10,0,k), b=(0,2,0): col a ranks a above b, col b ranks b above a (any k <= 0).
    for k in (0.0, -10.0, -100.0):
        assert not fz.is_monotone_representable(games.penalty(k))[0]
    # XOR rows (0,1), (1,0) cross.
    assert not fz.is_monotone_representable(games.xor(2))[0]
    # Control [[12,-.1,-.1],[-.1,0,0],[-.1,0,0]]: row A = (12,-.1,-.1), row B = (-.1,0,0): column A ranks A above
    # B (12 > -0.1) but column B ranks B above A (0 > -0.1) -> NOT exactly representable ("solvable" means its
    # greedy action survives the fit, see test_qmix_best_fit_control_by_hand).
    ok, w = fz.is_monotone_representable(CONTROL)
    assert not ok and w.agent == 0 and w.actions == (0, 1)


def test_additive_and_monotone_tables_are_representable():
    rng = np.random.default_rng(3)
    for _ in range(20):
        q1, q2 = rng.normal(size=4), rng.normal(size=3)
        ok, w = fz.is_monotone_representable(q1[:, None] + q2[None, :])
        assert ok and w.orders == (tuple(np.argsort(q1)), tuple(np.argsort(q2)))
        p1, p2 = rng.uniform(0.1, 3, 3), rng.uniform(0.1, 3, 4)
        table = np.exp(p1)[:, None] + p1[:, None] * p2[None, :]  # f(x, y) = e^x + x y, increasing for x, y > 0
        ok, w = fz.is_monotone_representable(table)
        assert ok and w.orders == (tuple(np.argsort(p1)), tuple(np.argsort(p2)))
        assert fz.monotone_violation(table, w.orders) == 0.0
    # ties: equal rows give tied utilities, any order of them works
    ok, w = fz.is_monotone_representable([[1, 2], [1, 2], [0, 0]])
    assert ok and w.orders[0][0] == 2 and "<=" in w.description


@st.composite
def _int_tables(draw, shapes=((2, 2), (2, 3), (3, 2), (3, 3), (1, 3), (2, 2, 2), (2, 3, 2)), lo=-2, hi=2):
    shape = draw(st.sampled_from(shapes))
    vals = draw(st.lists(st.integers(lo, hi), min_size=math.prod(shape), max_size=math.prod(shape)))
    return np.array(vals, dtype=np.float64).reshape(shape)


@settings(max_examples=120, deadline=None, database=None)
@given(_int_tables())
def test_chain_criterion_equals_brute_force(q):
    ok, w = fz.is_monotone_representable(q)
    assert ok == _brute_force_representable(q)
    if ok:
        assert fz.monotone_violation(q, w.orders) == 0.0
    else:
        a, b, c, d = (q[cell] for cell in w.cells())
        assert a > b and c < d  # the witness really crosses


# ---------------------------------------------------------------------------------------------------------------
# QMIX: best monotone fit
# ---------------------------------------------------------------------------------------------------------------
def test_qmix_best_fit_qtran_by_hand():
    # Rows/cols B, C of QTRAN are identical, so it is the 2x2 [[8,-12],[-12,0]] with cell counts [[1,2],[2,4]].
    # Orders with A on top for both agents: the bottom block {BB,BC,CB,CC} (0) lies above AB, AC, BA, CA (-12) ->
    # pool them: (4*0 + 4*(-12)) / 8 = -6; AA = 8 stays on top. Residual 4*36 + 4*36 = 288, greedy (A,A).
    # Orders with A at the bottom (the fit usually reported for QMIX): pool AA with AB, AC, BA, CA:
    # (8 - 48)/5 = -8 <= 0; residual 16^2 + 4*4^2 = 320, greedy {B,C}^2.
    fit = fz.qmix_best_fit(games.qtran())
    assert fit.residual == pytest.approx(288.0, abs=1e-7)
    np.testing.assert_allclose(fit.fitted, [[8, -6, -6], [-6, -6, -6], [-6, -6, -6]], atol=1e-7)
    assert fit.greedy == ((0, 0),) and fit.greedy_payoffs == (8.0,) and fit.regret == 0.0
    assert fit.orders[0][-1] == 0 and fit.orders[1][-1] == 0  # A has the highest utility for both agents
    assert set(fit.tied_orders) == {((a, b, 0), (c, d, 0)) for a, b in ((1, 2), (2, 1)) for c, d in ((1, 2), (2, 1))}
    low = fz.qmix_best_fit(games.qtran(), orders=[((0, 1, 2), (0, 1, 2))])
    assert low.residual == pytest.approx(320.0, abs=1e-7)
    np.testing.assert_allclose(low.fitted, [[-8, -8, -8], [-8, 0, 0], [-8, 0, 0]], atol=1e-7)
    assert set(low.greedy) == {(1, 1), (1, 2), (2, 1), (2, 2)} and low.regret == 8.0
    oracle, _ = _best_monotone_oracle(F([[8, -12, -12], [-12, 0, 0], [-12, 0, 0]]), exact=True)
    assert oracle == 288


def test_qmix_best_fit_control_by_hand():
    # Same structure as QTRAN: A on top, pool the 8 other cells: (4*(-1/10) + 4*0)/8 = -1/20;
    # residual 4*(1/20)^2 + 4*(1/20)^2 = 1/50; greedy (A,A) = 12.
    fit = fz.qmix_best_fit(CONTROL)
    assert fit.residual == pytest.approx(0.02, abs=1e-9)
    np.testing.assert_allclose(fit.fitted, [[12, -0.05, -0.05], [-0.05, -0.05, -0.05], [-0.05, -0.05, -0.05]], atol=1e-9)
    assert fit.greedy == ((0, 0),)
    oracle, _ = _best_monotone_oracle(np.array(CONTROL_EXACT, dtype=object), exact=True)
    assert oracle == Fr(1, 50)


def test_qmix_best_fit_xor_by_hand():
    # Natural orders: 11 is the top, 01 and 10 (data 1) lie below it (data 0): pool {01,10,11} -> 2/3; 00 = 0.
    # Residual 2 (1/3)^2 + (2/3)^2 = 2/3. By the symmetries of XOR all 4 ordering tuples reach 2/3; those with
    # opposite orders ((0,1),(1,0)) and ((1,0),(0,1)) put an optimum alone on top (greedy payoff 1), the others a
    # 3-cell greedy set containing a 0-payoff cell.
    fit = fz.qmix_best_fit(games.xor(2))
    assert fit.residual == pytest.approx(2 / 3, abs=1e-9)
    assert len(fit.tied_orders) == 4
    np.testing.assert_allclose(fit.fitted, [[0, 2 / 3], [2 / 3, 2 / 3]], atol=1e-9)
    assert set(fit.greedy) == {(0, 1), (1, 0), (1, 1)}
    crossed = fz.qmix_best_fit(games.xor(2), orders=[((0, 1), (1, 0))])
    np.testing.assert_allclose(crossed.fitted, [[1 / 3, 1 / 3], [1, 1 / 3]], atol=1e-9)
    assert crossed.greedy == ((1, 0),) and crossed.greedy_payoffs == (1.0,)


@pytest.mark.parametrize("game", [games.climbing(), games.penalty(-100), games.penalty(0)], ids=lambda g: g.name)
def test_qmix_best_fit_matches_exact_oracle(game):
    q = np.array(game.reward[0], dtype=object)
    q = np.vectorize(lambda x: Fr(int(x)))(q).astype(object)
    oracle, results = _best_monotone_oracle(q, exact=True)
    fit = fz.qmix_best_fit(game)
    assert fit.residual == pytest.approx(float(oracle), rel=1e-9)
    optimal = {o for r, o, _ in results if r == oracle}
    assert set(fit.tied_orders) == optimal
    exact_fit = next(f for r, o, f in results if o == fit.orders)
    np.testing.assert_allclose(fit.fitted, _floats(exact_fit), atol=1e-7)
    assert fit.residual > 0 and fit.residual < fz.vdn_fit(game).residual


def test_qmix_greedy_facts_climbing_penalty():
    # read off the oracle-checked fits above: climbing and penalty(-100) keep the "safe" greedy actions
    assert fz.qmix_best_fit(games.climbing()).greedy == ((2, 2),)
    assert fz.qmix_best_fit(games.penalty(-100)).greedy == ((1, 1),)


def test_qmix_zero_weight_cell_makes_xor_fit_exact():
    # with (1,1) unobserved, [[0,1],[1,?]] is monotone (? >= 1): residual 0
    fit = fz.qmix_best_fit(games.xor(2), weights=[[1, 1], [1, 0]])
    assert fit.residual == pytest.approx(0.0, abs=1e-12)
    assert fit.fitted[1, 1] >= 1 - 1e-7


def test_qmix_three_agents_matches_oracle():
    q = np.array([[[0, 2], [1, 0]], [[1, 0], [2, 1]]], dtype=np.float64)
    oracle, _ = _best_monotone_oracle(q)
    fit = fz.qmix_best_fit(q)
    assert fit.residual == pytest.approx(oracle, abs=1e-7)
    assert fz.monotone_violation(fit.fitted, fit.orders) <= 1e-9


@st.composite
def _tables_and_weights(draw):
    q = draw(_int_tables(shapes=((2, 2), (2, 3), (3, 2), (3, 3), (1, 2)), lo=-3, hi=3))
    w = draw(st.lists(st.integers(1, 3), min_size=q.size, max_size=q.size))
    return q, np.array(w, dtype=np.float64).reshape(q.shape)


@settings(max_examples=30, deadline=None, database=None)
@given(_tables_and_weights())
def test_qmix_fit_properties(case):
    q, w = case
    fit = fz.qmix_best_fit(q, w)
    vdn = fz.vdn_fit(q, w)
    # additive tables are monotone, so the monotone projection is at least as good
    assert fit.residual <= vdn.residual + 1e-7
    # integer data with weights >= 1: a non-representable table costs >= 1/2, a representable one 0
    representable = fz.is_monotone_representable(q)[0]
    assert (fit.residual <= 1e-9) == representable
    assert representable or fit.residual >= 0.5 - 1e-7
    assert fz.monotone_violation(fit.fitted, fit.orders) <= 1e-9
    oracle, _ = _best_monotone_oracle(q, w)
    assert fit.residual == pytest.approx(oracle, abs=1e-7)
    # pruning by the disjoint-pairs lower bound changes nothing but the list of solved cones
    full = fz.qmix_best_fit(q, w, prune=False)
    assert full.pruned == 0 and len(full.candidates) == math.prod(math.factorial(m) for m in q.shape)
    assert full.orders == fit.orders and full.tied_orders == fit.tied_orders
    assert full.residual == pytest.approx(fit.residual, abs=1e-9)
    lo, hi = fz._consecutive_pairs(q.shape)
    for orders, residual in full.candidates:
        ix = np.ix_(*[list(o) for o in orders])
        assert fz._pair_bound(q[ix].ravel(), w[ix].ravel(), lo, hi) <= residual + 1e-9


# ---------------------------------------------------------------------------------------------------------------
# IGM / QPLEX (theory.md §3.2, §7.1, §7.4)
# ---------------------------------------------------------------------------------------------------------------
def test_xor_igm_verdicts():
    assert fz.greedy_set(games.xor(2)) == ((0, 1), (1, 0))
    assert not fz.greedy_set_is_product(games.xor(2))
    verdict = fz.igm_representable_optimal_set(games.xor(2))
    assert not verdict and verdict.representable is False
    assert verdict.product_hull == ((0, 1), (0, 1)) and "not a product" in verdict.reason
    assert not fz.greedy_set_is_product(games.permutation(3))
    assert not fz.greedy_set_is_product(games.penalty(0))  # {(a,a), (c,c)}


def test_product_greedy_sets():
    assert fz.greedy_set_is_product(games.qtran()) and fz.igm_representable_optimal_set(games.climbing())
    assert fz.greedy_set_is_product(np.zeros((2, 3)))  # everything optimal: full product
    assert fz.greedy_set_is_product([[1, 1, 0], [1, 1, 0], [0, 0, 0]])
    assert not fz.greedy_set_is_product([[1, 1, 0], [1, 0, 0], [0, 0, 0]])
    # tolerance: near ties count as ties
    near = [[1, 0], [0, 1 - 1e-13]]
    assert fz.greedy_set(near, tol=0.0) == ((0, 0),) and fz.greedy_set_is_product(near, tol=0.0)
    assert fz.greedy_set(near, tol=1e-12) == ((0, 0), (1, 1)) and not fz.greedy_set_is_product(near, tol=1e-12)


# ---------------------------------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------------------------------
def test_report_qtran():
    rep = fz.igm_report(games.qtran())
    assert [r.method for r in rep] == ["VDN", "QMIX", "QPLEX"] and rep.j_star == 8.0
    vdn, qmix, qplex = rep["VDN"], rep["qmix"], rep[2]
    assert set(vdn.greedy) == {(1, 1), (1, 2), (2, 1), (2, 2)} and vdn.worst_payoff == 0.0 and vdn.regret == 8.0
    assert not vdn.represents_exactly and vdn.residual == pytest.approx(36864 / 81)
    assert qmix.greedy == ((0, 0),) and qmix.regret == 0.0 and qmix.residual == pytest.approx(288.0, abs=1e-7)
    assert not qmix.represents_exactly and "column A" in qmix.note
    assert qplex.represents_exactly and qplex.greedy == ((0, 0),) and qplex.regret == 0.0
    text = str(rep)
    assert "QPLEX" in text and "(A,A)=8" in text and "(B,B)=0" in text and text == rep.to_text()


def test_report_climbing():
    rep = fz.igm_report(games.climbing())
    assert rep["VDN"].greedy == ((2, 2),) and rep["VDN"].worst_payoff == 5.0 and rep["VDN"].regret == 6.0
    assert rep["QMIX"].greedy == ((2, 2),) and rep["QMIX"].regret == 6.0
    assert rep["QPLEX"].represents_exactly and rep["QPLEX"].regret == 0.0


def test_report_penalty():
    rep = fz.igm_report(games.penalty(-100))
    assert rep["VDN"].greedy == ((1, 1),) and rep["VDN"].greedy_payoffs == (2.0,) and rep["VDN"].regret == 8.0
    assert not rep["QPLEX"].represents_exactly and rep["QPLEX"].regret == 0.0
    assert rep["QPLEX"].greedy[0] in rep.optimal_set and len(rep["QPLEX"].greedy) == 1
    rep0 = fz.igm_report(games.penalty(0))
    assert rep0["VDN"].worst_payoff == 0.0 and rep0["VDN"].regret == 10.0 and rep0["VDN"].regret_mean == 5.0
    assert rep.optimal_set == ((0, 0), (2, 2)) == rep0.optimal_set


def test_report_xor():
    rep = fz.igm_report(games.xor(2))
    vdn, qmix, qplex = rep
    np.testing.assert_allclose(vdn.fitted, 0.5, atol=1e-12)
    assert vdn.residual == pytest.approx(1.0) and vdn.regret == 1.0 and vdn.regret_mean == 0.5
    assert qmix.residual == pytest.approx(2 / 3, abs=1e-9)
    assert not qplex.represents_exactly and qplex.regret == 0.0 and "not a product" in qplex.note


def test_report_larger_game_skips_qmix_fit():
    rep = fz.igm_report(np.arange(25.0).reshape(5, 5))  # additive, 5!^2 orderings
    assert rep["VDN"].represents_exactly and rep["QMIX"].represents_exactly and rep["QMIX"].fitted is None
    assert math.isnan(rep["QMIX"].residual) and "not computed" in rep["QMIX"].note
    assert "QMIX" in rep.to_text()
    with pytest.raises(KeyError):
        rep["QTRAN"]


# ---------------------------------------------------------------------------------------------------------------
# Validation
# ---------------------------------------------------------------------------------------------------------------
def _multi_state_game() -> MarkovGame:
    return games.random_game(np.random.default_rng(0), 2, 2, n_states=2, gamma=0.5)


@pytest.mark.parametrize("fn", [fz.vdn_fit, fz.qmix_best_fit, fz.greedy_set_is_product, fz.igm_report, fz.is_monotone_representable])
def test_bad_tables(fn):
    with pytest.raises(TypeError):
        fn("not a table")
    with pytest.raises(TypeError):
        fn(None)
    with pytest.raises(ValueError, match="scalar"):
        fn(3.0)
    with pytest.raises(ValueError, match="empty"):
        fn(np.zeros((2, 0)))
    with pytest.raises(ValueError, match="finite"):
        fn([[1.0, np.nan], [0.0, 0.0]])
    with pytest.raises(ValueError, match="one-shot"):
        fn(_multi_state_game())
    with pytest.raises(ValueError):
        fn([[1.0, 2.0], [3.0]])  # ragged


@pytest.mark.parametrize("fn", [fz.vdn_fit, fz.qmix_best_fit, fz.igm_report])
def test_bad_weights(fn):
    q = np.zeros((2, 2))
    with pytest.raises(ValueError, match="shape"):
        fn(q, np.ones((2, 3)))
    with pytest.raises(ValueError, match="non-negative"):
        fn(q, [[1, -1], [1, 1]])
    with pytest.raises(ValueError, match="all be zero"):
        fn(q, np.zeros((2, 2)))
    with pytest.raises(ValueError, match="finite"):
        fn(q, [[1, np.inf], [1, 1]])
    with pytest.raises(TypeError):
        fn(q, "heavy")


def test_qmix_too_many_orderings():
    with pytest.raises(ValueError, match="576"):
        fz.qmix_best_fit(np.zeros((5, 5)))
    with pytest.raises(ValueError, match="576"):
        fz.qmix_best_fit(np.zeros((3, 3, 4)))  # 3! 3! 4! = 864 > 576: many agents hit the same limit
    # an explicit ordering list lifts the limit
    fit = fz.qmix_best_fit(np.arange(25.0).reshape(5, 5), orders=[(tuple(range(5)), tuple(range(5)))])
    assert fit.residual == pytest.approx(0.0, abs=1e-9)


def test_qmix_bad_solver_and_orders():
    with pytest.raises(ValueError, match="solver"):
        fz.qmix_best_fit(games.xor(2), solver="NOPE")
    with pytest.raises(ValueError, match="permutation"):
        fz.qmix_best_fit(games.xor(2), orders=[((0, 0), (0, 1))])
    with pytest.raises(ValueError, match="permutation"):
        fz.qmix_best_fit(games.xor(2), orders=[((0, 1),)])
    with pytest.raises(ValueError, match="at least one"):
        fz.qmix_best_fit(games.xor(2), orders=[])
    with pytest.raises(TypeError):
        fz.qmix_best_fit(games.xor(2), orders=[(("a", "b"), (0, 1))])
    with pytest.raises(ValueError, match="permutation"):
        fz.monotone_violation(games.xor(2), ((0, 1), (0, 2)))
    assert fz.qmix_best_fit(games.xor(2), solver="osqp").residual == pytest.approx(2 / 3, abs=1e-6)


def test_bad_tolerances_and_names():
    with pytest.raises(ValueError, match="tol"):
        fz.greedy_set_is_product(games.xor(2), tol=-1.0)
    with pytest.raises(ValueError, match="tol"):
        fz.is_monotone_representable(games.xor(2), tol=float("nan"))
    with pytest.raises(TypeError, match="tol"):
        fz.igm_representable_optimal_set(games.xor(2), tol="small")
    with pytest.raises(ValueError, match="action_names"):
        fz.igm_report(games.xor(2), action_names=[("a", "b")])
    with pytest.raises(ValueError, match="non-representable"):
        fz.is_monotone_representable(np.zeros((2, 2)))[1].cells()


def test_vdn_exact_bad_entries():
    with pytest.raises(TypeError, match="rational"):
        fz.vdn_fit_exact([[True, 0], [0, 0]])
    with pytest.raises(TypeError):
        fz.vdn_fit_exact([[1 + 2j, 0], [0, 0]])
    with pytest.raises(ValueError, match="finite"):
        fz.vdn_fit_exact([[float("inf"), 0], [0, 0]])
    with pytest.raises(ValueError, match="rational"):
        fz.vdn_fit_exact([["one", 0], [0, 0]])
    with pytest.raises(ValueError, match="non-empty"):
        fz.vdn_fit_exact(np.zeros((0, 2)))
    with pytest.raises(TypeError):
        fz.vdn_fit_exact("1/2")
    with pytest.raises(ValueError, match="one-shot"):
        fz.vdn_fit_exact(_multi_state_game())
    # floats are exact binary values
    # row 0 mean 3/8, column 0 mean 1/4, grand mean 3/16
    assert fz.vdn_fit_exact(matrix_game([[0.5, 0.25], [0.0, 0.0]]))[0, 0] == Fr(3, 8) + Fr(1, 4) - Fr(3, 16)


def test_vdn_fit_results_are_read_only():
    """A fit is a frozen record: its fitted table and utilities cannot be changed in place by a caller."""
    fit = fz.vdn_fit(np.array([[11.0, -30.0, 0.0], [-30.0, 7.0, 6.0], [0.0, 0.0, 5.0]]))
    with pytest.raises(ValueError, match="read-only"):
        fit.fitted[0, 0] = 1.0
    with pytest.raises(ValueError, match="read-only"):
        fit.utilities[0][0] = 1.0
