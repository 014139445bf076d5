"""What value-decomposition function classes can represent on one joint Q table (theory.md §3.2, §7, §8).

Everything works on a single one-shot (or per-state) joint table ``Q[a^1, ..., a^n]``: a raw array, or a one-shot
:class:`~seqmarl.theory.markov_game.MarkovGame` whose reward is used. For a Markov game pass an explicit table, e.g.
``evaluate.q_value(game, pi)[s]``.

Three classes, from small to large (theory.md §7.1-§7.4):

* **VDN** (additive): ``Q_tot(a) = sum_i q_i(a_i)``. :func:`vdn_fit` is the weighted least-squares projection,
  :func:`vdn_fit_exact` its rational closed form under uniform weights (ANOVA main effects).
* **QMIX** (monotone): ``Q_tot(a) = f(q_1(a_1), ..., q_n(a_n))`` with ``f`` non-decreasing in every argument.
  :func:`is_monotone_representable` is the exact membership test, :func:`qmix_best_fit` the weighted least-squares
  projection (one convex QP per tuple of action orderings).
* **QPLEX** (IGM-complete): every ``Q_tot`` whose greedy set is a Cartesian product of per-agent greedy sets.
  :func:`greedy_set_is_product` and :func:`igm_representable_optimal_set`.

:func:`igm_report` puts the three side by side (fitted table, greedy joint actions, their true payoff, regret).

Example::

    from seqmarl.theory import games, factorization as fz
    print(fz.igm_report(games.qtran()))
    fz.vdn_fit_exact(games.xor())          # every entry Fraction(1, 2)
"""

from __future__ import annotations

import functools
import itertools
import math
import numbers
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Iterator, Sequence

import numpy as np
import scipy.sparse as sp

from .markov_game import MarkovGame

JointAction = tuple[int, ...]
Orders = tuple[tuple[int, ...], ...]

#: Largest number of ordering tuples ``prod_i |A^i|!`` :func:`qmix_best_fit` enumerates (2 agents x 4 actions: 4!^2).
MAX_ORDERINGS = 576
#: Solver used by :func:`qmix_best_fit` when none is named.
DEFAULT_QP_SOLVER = "CLARABEL"


# --------------------------------------------------------------------------------------------------------------------
# Input handling
# --------------------------------------------------------------------------------------------------------------------
def as_q_table(game_or_q: object, name: str = "q") -> np.ndarray:
    """The joint table ``Q[A1, ..., An]`` (float64, read-only copy) from a one-shot ``MarkovGame`` or an array.

    A ``MarkovGame`` must be one-shot (one state, ``gamma = 0`` or ``horizon = 1``): its ``reward[0]`` is the table.
    """
    if isinstance(game_or_q, MarkovGame):
        if not game_or_q.is_one_shot:
            raise ValueError(
                f"{name}: a MarkovGame must be one-shot (1 state, gamma = 0 or horizon = 1) to use its reward as Q; "
                f"got {game_or_q!r}. Pass an explicit table instead, e.g. evaluate.q_value(game, pi)[s]"
            )
        table = np.array(game_or_q.reward[0], dtype=np.float64)
    else:
        if isinstance(game_or_q, (str, bytes)) or game_or_q is None:
            raise TypeError(f"{name} must be a MarkovGame or an array Q[A1, ..., An], got {type(game_or_q).__name__}")
        try:
            table = np.array(game_or_q, dtype=np.float64)
        except TypeError as exc:
            raise TypeError(
                f"{name} must be a MarkovGame or an array of real numbers Q[A1, ..., An], got {type(game_or_q).__name__}"
            ) from exc
        except ValueError as exc:
            raise ValueError(f"{name} must be a rectangular array of real numbers Q[A1, ..., An]: {exc}") from exc
    if table.ndim < 1:
        raise ValueError(f"{name} must have one axis per agent (shape [A1, ..., An], n >= 1), got a scalar")
    if any(m < 1 for m in table.shape):
        raise ValueError(f"{name} has an empty action axis: shape {table.shape}")
    if not np.all(np.isfinite(table)):
        raise ValueError(f"{name} must be finite; it contains NaN or inf")
    table.setflags(write=False)
    return table


def _action_names(game_or_q: object, shape: tuple[int, ...], action_names: object) -> tuple[tuple[str, ...], ...]:
    if action_names is None and isinstance(game_or_q, MarkovGame):
        action_names = game_or_q.action_names
    if action_names is None:
        return tuple(tuple(str(k) for k in range(m)) for m in shape)
    names = tuple(tuple(str(x) for x in agent) for agent in action_names)  # type: ignore[union-attr]
    if len(names) != len(shape) or any(len(a) != m for a, m in zip(names, shape)):
        raise ValueError(f"action_names must give {shape} names per agent, got {names}")
    return names


def _check_weights(weights: object, shape: tuple[int, ...]) -> np.ndarray:
    """Uniform ones when ``None``; else a finite, non-negative array of ``shape``, not all zero."""
    if weights is None:
        w = np.ones(shape)
    else:
        try:
            w = np.array(weights, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"weights must be an array of real numbers, got {type(weights).__name__}") from exc
        if w.shape != shape:
            raise ValueError(f"weights must have the shape of q, {shape}, got {w.shape}")
        if not np.all(np.isfinite(w)):
            raise ValueError("weights must be finite; they contain NaN or inf")
        if np.any(w < 0):
            raise ValueError(f"weights must be non-negative; smallest entry is {w.min():.3g}")
        if not np.any(w > 0):
            raise ValueError("weights must not all be zero")
    w.setflags(write=False)
    return w


def _check_tol(tol: float, name: str = "tol") -> float:
    try:
        tol = float(tol)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must be a real number, got {tol!r}") from exc
    if not np.isfinite(tol) or tol < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {tol}")
    return tol


def greedy_set(q: object, tol: float = 1e-12) -> tuple[JointAction, ...]:
    """``argmax_a Q(a)``: every joint action within ``tol`` (absolute) of the maximum, in C order."""
    table = as_q_table(q)
    tol = _check_tol(tol)
    cells = np.argwhere(table >= table.max() - tol)
    return tuple(tuple(int(x) for x in c) for c in cells)


def _payoffs(table: np.ndarray, actions: Sequence[JointAction]) -> tuple[float, ...]:
    return tuple(float(table[a]) for a in actions)


# --------------------------------------------------------------------------------------------------------------------
# Fit records
# --------------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class _Fit:
    """Common part of a least-squares fit of ``q`` inside a function class."""

    q: np.ndarray
    weights: np.ndarray
    fitted: np.ndarray
    residual: float  # sum_a w(a) (Q(a) - Qhat(a))^2
    greedy: tuple[JointAction, ...]  # argmax of the fitted table

    @property
    def greedy_payoffs(self) -> tuple[float, ...]:
        """True payoff ``Q(a)`` of each greedy joint action of the fit."""
        return _payoffs(self.q, self.greedy)

    @property
    def worst_payoff(self) -> float:
        """Smallest true payoff over the greedy set (what an adversarial tie-break gets)."""
        return min(self.greedy_payoffs)

    @property
    def mean_payoff(self) -> float:
        """Mean true payoff over the greedy set (uniform tie-break)."""
        return float(np.mean(self.greedy_payoffs))

    @property
    def regret(self) -> float:
        """``J* - worst_payoff`` with ``J* = max_a Q(a)``."""
        return float(self.q.max()) - self.worst_payoff


@dataclass(frozen=True, eq=False)
class VDNFit(_Fit):
    """Weighted least-squares additive fit (:func:`vdn_fit`).

    ``utilities[i][a_i]`` are the individual ``q_i`` in the gauge "every agent but agent 0 has zero (uniform) mean";
    ``identified`` is False when zero weights leave the fit off the support non-unique (the minimum-norm
    solution is returned then).
    """

    utilities: tuple[np.ndarray, ...] = field(default=())
    identified: bool = True


@dataclass(frozen=True, eq=False)
class MonotoneFit(_Fit):
    """Weighted least-squares fit in the QMIX (monotone) class (:func:`qmix_best_fit`).

    ``orders[i]`` lists agent ``i``'s actions from the lowest individual utility to the highest (the cone the best
    fit lies in); ``tied_orders`` are all ordering tuples whose fit reaches the same residual (to ``1e-9`` relative);
    ``candidates`` are ``(orders, residual)`` for every ordering tuple solved, best first; ``pruned`` counts the
    ordering tuples skipped because a lower bound showed they cannot reach the best residual.
    """

    orders: Orders = ()
    tied_orders: tuple[Orders, ...] = ()
    candidates: tuple[tuple[Orders, float], ...] = ()
    solver: str = DEFAULT_QP_SOLVER
    pruned: int = 0


# --------------------------------------------------------------------------------------------------------------------
# VDN
# --------------------------------------------------------------------------------------------------------------------
def _design_matrix(shape: tuple[int, ...]) -> np.ndarray:
    """One-hot design ``X[a, (i, b)] = 1[a_i = b]``, joint actions in C order, shape ``[|A|, sum_i |A^i|]``."""
    grid = np.indices(shape).reshape(len(shape), -1)
    blocks = [np.eye(m)[grid[i]] for i, m in enumerate(shape)]
    return np.concatenate(blocks, axis=1)


def vdn_fit(q: object, weights: object = None) -> VDNFit:
    """Weighted least-squares VDN fit ``min_{q_i} sum_a w(a) (Q(a) - sum_i q_i(a_i))^2`` (theory.md §7.2, §7.6).

    Solved with ``numpy.linalg.lstsq`` on the one-hot design ``X`` scaled by ``sqrt(w)``; ``X`` has rank
    ``sum_i |A^i| - (n - 1)`` (one additive constant can move between agents), so the utilities are gauge-fixed
    afterwards (agents ``1..n-1`` zero-mean; agent 0 carries the constant). Under uniform weights the fit is the
    ANOVA main-effects table of :func:`vdn_fit_exact`, e.g. ``Qhat(a, b) = Rbar_a. + Rbar_.b - Rbar`` for 2 agents.

    ``weights`` (same shape as ``q``, non-negative, not all zero) default to uniform. Greedy ties: ``1e-9 (1 + max|Q|)``.
    """
    table = as_q_table(q)
    w = _check_weights(weights, table.shape)
    shape = table.shape
    design = _design_matrix(shape)
    sw = np.sqrt(w.ravel())
    scaled = sw[:, None] * design
    theta, *_ = np.linalg.lstsq(scaled, sw * table.ravel(), rcond=None)
    identified = int(np.linalg.matrix_rank(scaled)) == sum(shape) - (len(shape) - 1)
    splits = np.cumsum(shape)[:-1]
    utilities = [u.copy() for u in np.split(theta, splits)]
    for i in range(1, len(shape)):
        shift = utilities[i].mean()
        utilities[i] -= shift
        utilities[0] += shift
    n = len(shape)
    fitted = sum(np.reshape(u, [m if j == i else 1 for j in range(n)]) for i, (u, m) in enumerate(zip(utilities, shape)))
    fitted = np.broadcast_to(fitted, shape).astype(np.float64)
    residual = float(np.sum(w * (table - fitted) ** 2))
    tol = 1e-9 * (1.0 + float(np.abs(table).max()))
    for u in utilities:
        u.setflags(write=False)
    fitted.setflags(write=False)
    return VDNFit(
        q=table,
        weights=w,
        fitted=fitted,
        residual=residual,
        greedy=greedy_set(fitted, tol),
        utilities=tuple(utilities),
        identified=identified,
    )


def _as_fraction(value: object) -> Fraction:
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"q entries must be rational numbers, got a bool ({value!r})")
    if isinstance(value, str):
        try:
            return Fraction(value)  # e.g. "-1/10" or "-0.1" (exact decimal)
        except (ValueError, ZeroDivisionError) as exc:
            raise ValueError(f"q entry {value!r} is not a rational number") from exc
    if isinstance(value, numbers.Rational):
        return Fraction(int(value.numerator), int(value.denominator))
    if isinstance(value, (float, np.floating)):
        if not math.isfinite(float(value)):
            raise ValueError(f"q entries must be finite, got {value!r}")
        return Fraction(float(value))  # the exact binary value of the float
    raise TypeError(
        f"q entries must be integers, Fractions, rational strings or floats, got {type(value).__name__} ({value!r})"
    )


def _fraction_table(q: object) -> np.ndarray:
    if isinstance(q, MarkovGame):
        raw = np.array(as_q_table(q), dtype=object)
    else:
        if isinstance(q, (str, bytes)) or q is None:
            raise TypeError(f"q must be a MarkovGame or an array of rationals, got {type(q).__name__}")
        raw = np.array(q, dtype=object)
    if raw.ndim < 1 or any(m < 1 for m in raw.shape):
        raise ValueError(f"q must have shape [A1, ..., An] with non-empty axes, got {raw.shape}")
    out = np.empty(raw.shape, dtype=object)
    for index, value in np.ndenumerate(raw):
        out[index] = _as_fraction(value)
    return out


def vdn_fit_exact(q_int: object) -> np.ndarray:
    """Exact uniform-weight VDN least-squares fit as a table of ``fractions.Fraction`` (theory.md §7.6, §8).

    ANOVA main-effects closed form: with ``M_i(a_i)`` the mean of ``Q`` over the other agents' actions and ``M``
    the grand mean, ``Qhat(a) = sum_i M_i(a_i) - (n - 1) M`` (2 agents: ``Rbar_a. + Rbar_.b - Rbar``).
    It is the LS solution because ``Q - Qhat`` has zero mean over every slice ``a_i = b`` (the normal equations
    ``X^T (Q - Qhat) = 0``) and ``Qhat`` is additive.

    Entries may be ints, Fractions, rational strings (``"-1/10"``, ``"-0.1"``) or floats; a float is converted
    exactly (``Fraction(-0.1)`` is the binary value, not -1/10). A one-shot ``MarkovGame`` uses its reward.
    """
    table = _fraction_table(q_int)
    n = table.ndim
    total = Fraction(table.size)
    grand = sum(table.ravel(), Fraction(0)) / total
    fitted = np.full(table.shape, -(n - 1) * grand, dtype=object)
    for i, m in enumerate(table.shape):
        count = total / m
        for b in range(m):
            slice_sum = sum(np.ravel(np.take(table, b, axis=i)), Fraction(0))
            idx = [slice(None)] * n
            idx[i] = b
            fitted[tuple(idx)] = fitted[tuple(idx)] + slice_sum / count
    return fitted


# --------------------------------------------------------------------------------------------------------------------
# QMIX: exact membership
# --------------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class MonotoneWitness:
    """Why a table is, or is not, in the monotone (QMIX) class (:func:`is_monotone_representable`).

    Representable: ``orders[i]`` lists agent ``i``'s actions from lowest to highest utility, and the table is
    non-decreasing along each of them. Not representable: agent ``agent``'s actions ``actions = (x, y)`` are
    incomparable: with the others playing ``contexts[0]``, ``Q(x, .) > Q(y, .)``; with ``contexts[1]``,
    ``Q(x, .) < Q(y, .)`` (``values`` holds those four payoffs in that order). ``description`` says it in words.
    """

    representable: bool
    orders: Orders | None = None
    agent: int | None = None
    actions: tuple[int, int] | None = None
    contexts: tuple[JointAction, JointAction] | None = None
    values: tuple[float, float, float, float] | None = None
    description: str = ""

    def cells(self) -> tuple[JointAction, JointAction, JointAction, JointAction]:
        """The four joint actions of the violation: ``(x, c0), (y, c0), (x, c1), (y, c1)`` (agent's slot filled in)."""
        if self.representable or self.agent is None or self.actions is None or self.contexts is None:
            raise ValueError("cells() exists only for a non-representable witness")
        i = self.agent
        out = []
        for ctx in self.contexts:
            for a in self.actions:
                out.append(tuple(ctx[:i]) + (a,) + tuple(ctx[i:]))
        return (out[0], out[1], out[2], out[3])


def _slices(table: np.ndarray, agent: int) -> np.ndarray:
    """``[A^agent, prod_{j != agent} A^j]``: row ``x`` is ``Q`` with agent fixed to ``x`` (others in C order)."""
    return np.moveaxis(table, agent, 0).reshape(table.shape[agent], -1)


def _context(shape: tuple[int, ...], agent: int, flat: int) -> JointAction:
    others = tuple(m for j, m in enumerate(shape) if j != agent)
    return tuple(int(x) for x in np.unravel_index(flat, others)) if others else ()


def monotone_violation(q: object, orders: Sequence[Sequence[int]]) -> float:
    """Largest violation ``max(0, Q(a) - Q(a'))`` over pairs of joint actions that differ only in agent ``i``'s
    action, with ``a_i`` right before ``a'_i`` in ``orders[i]`` (0 iff ``Q`` lies in the product-order cone)."""
    table = as_q_table(q)
    orders = _check_orders(orders, table.shape)
    worst = 0.0
    for i, order in enumerate(orders):
        s = _slices(table, i)[list(order)]
        if s.shape[0] > 1:
            worst = max(worst, float(np.max(s[:-1] - s[1:])))
    return max(worst, 0.0)


def _check_orders(orders: object, shape: tuple[int, ...]) -> Orders:
    try:
        out = tuple(tuple(int(x) for x in o) for o in orders)  # type: ignore[union-attr]
    except (TypeError, ValueError) as exc:
        raise TypeError(f"orders must be one sequence of action indices per agent, got {orders!r}") from exc
    if len(out) != len(shape) or any(sorted(o) != list(range(m)) for o, m in zip(out, shape)):
        raise ValueError(f"orders must give a permutation of range(|A^i|) for each agent (sizes {shape}), got {out}")
    return out


def _fmt(x: float) -> str:
    return f"{x:.6g}"


def is_monotone_representable(
    q: object, tol: float = 0.0, action_names: Sequence[Sequence[str]] | None = None
) -> tuple[bool, MonotoneWitness]:
    """Exact test: is ``Q(a) = f(q_1(a_1), ..., q_n(a_n))`` for some utilities ``q_i`` and some ``f`` non-decreasing
    in every argument (the QMIX class, theory.md §7.2 and §7.6)?

    theory.md §7.6 (2 agents): iff there are weak orders on ``A^1`` and ``A^2`` with every column monotone in the row
    order and every row monotone in the column order. Equivalent form used here (any ``n``, no enumeration): iff for
    every agent ``i`` the slices ``Q(x, .)`` (functions of the other agents' actions) are **pairwise comparable**
    componentwise. Proof: (=>) order the slices by ``q_i``. (<=) pairwise comparability makes the componentwise
    order a total preorder on ``A^i`` (it is transitive); take ``q_i`` = rank in it, then ``Q`` is non-decreasing in
    each coordinate on the rank grid, hence in the product order, and ``f(x) = max{Q(a): rank(a) <= x}`` (``min Q``
    when empty) is a monotone extension. Ties (equal slices) are the tied utilities of the weak order.

    Differences ``<= tol`` count as ties (default 0: exact comparison). Returns ``(verdict, MonotoneWitness)``; the
    witness gives the orders, or the incomparable pair of actions with the two contexts that order them oppositely
    (2 agents: "rows A and B ... column A ranks row A above row B ... column B ranks row B above row A").
    """
    table = as_q_table(q)
    tol = _check_tol(tol)
    names = _action_names(q, table.shape, action_names)
    n = table.ndim
    orders: list[tuple[int, ...]] = []
    for i, m in enumerate(table.shape):
        s = _slices(table, i)
        for x, y in itertools.combinations(range(m), 2):
            d = s[x] - s[y]
            up, down = np.flatnonzero(d > tol), np.flatnonzero(d < -tol)
            if up.size and down.size:
                c0 = _context(table.shape, i, int(up[0]))
                c1 = _context(table.shape, i, int(down[0]))
                vals = (float(s[x, up[0]]), float(s[y, up[0]]), float(s[x, down[0]]), float(s[y, down[0]]))
                witness = MonotoneWitness(
                    representable=False,
                    agent=i,
                    actions=(x, y),
                    contexts=(c0, c1),
                    values=vals,
                    description=_describe_violation(names, n, i, x, y, c0, c1, vals),
                )
                return False, witness

        def compare(x: int, y: int, s: np.ndarray = s) -> int:
            d = s[x] - s[y]
            if np.all(np.abs(d) <= tol):
                return 0
            return -1 if np.all(d <= tol) else 1

        orders.append(tuple(sorted(range(m), key=functools.cmp_to_key(compare))))
    final = tuple(orders)
    text = "monotone representable; increasing utility orders: " + "; ".join(
        f"agent {i + 1}: " + " <= ".join(names[i][a] for a in o) for i, o in enumerate(final)
    )
    return True, MonotoneWitness(representable=True, orders=final, description=text)


def _describe_violation(
    names: tuple[tuple[str, ...], ...],
    n: int,
    agent: int,
    x: int,
    y: int,
    c0: JointAction,
    c1: JointAction,
    vals: tuple[float, float, float, float],
) -> str:
    nx, ny = names[agent][x], names[agent][y]
    if n == 2:
        line, other = ("row", "column") if agent == 0 else ("column", "row")
        o0, o1 = names[1 - agent][c0[0]], names[1 - agent][c1[0]]
        return (
            f"{line}s {nx} and {ny} are incomparable: {other} {o0} ranks {line} {nx} above {line} {ny} "
            f"({_fmt(vals[0])} > {_fmt(vals[1])}) while {other} {o1} ranks {line} {ny} above {line} {nx} "
            f"({_fmt(vals[3])} > {_fmt(vals[2])}); no monotone f(q1, q2) can order them"
        )
    others = [j for j in range(n) if j != agent]

    def ctx(c: JointAction) -> str:
        return "(" + ", ".join(f"agent {j + 1}={names[j][c[k]]}" for k, j in enumerate(others)) + ")"

    return (
        f"agent {agent + 1}'s actions {nx} and {ny} are incomparable: with {ctx(c0)} Q({nx}) = {_fmt(vals[0])} > "
        f"Q({ny}) = {_fmt(vals[1])}, with {ctx(c1)} Q({ny}) = {_fmt(vals[3])} > Q({nx}) = {_fmt(vals[2])}"
    )


# --------------------------------------------------------------------------------------------------------------------
# QMIX: best monotone fit (one convex QP per ordering tuple)
# --------------------------------------------------------------------------------------------------------------------
def _consecutive_pairs(shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Flat (C-order) indices ``(lo, hi)`` of every pair of cells ``a`` and ``a + e_i`` (consecutive along an axis)."""
    index = np.arange(int(np.prod(shape))).reshape(shape)
    lows, highs = [np.zeros(0, dtype=np.int64)], [np.zeros(0, dtype=np.int64)]
    for axis, m in enumerate(shape):
        if m > 1:
            lows.append(np.take(index, np.arange(m - 1), axis=axis).ravel())
            highs.append(np.take(index, np.arange(1, m), axis=axis).ravel())
    return np.concatenate(lows), np.concatenate(highs)


def _unit_squares(shape: tuple[int, ...]) -> np.ndarray:
    """Flat (C-order) indices ``[m, 4]`` of the corners ``(a, a + e_i, a + e_j, a + e_i + e_j)`` of every unit square
    of the grid (every pair of axes ``i < j``, every base cell ``a`` with ``a_i + 1 < |A^i|`` and ``a_j + 1 < |A^j|``)."""
    index = np.arange(int(np.prod(shape))).reshape(shape)
    squares = [np.zeros((0, 4), dtype=np.int64)]
    for i, j in itertools.combinations(range(len(shape)), 2):
        if shape[i] < 2 or shape[j] < 2:
            continue

        def corner(di: int, dj: int, i: int = i, j: int = j) -> np.ndarray:
            sub = np.take(index, np.arange(di, shape[i] - 1 + di), axis=i)
            return np.take(sub, np.arange(dj, shape[j] - 1 + dj), axis=j).ravel()

        squares.append(np.stack([corner(0, 0), corner(1, 0), corner(0, 1), corner(1, 1)], axis=1))
    return np.concatenate(squares)


@functools.lru_cache(maxsize=16)
def _isotonic_problem(shape: tuple[int, ...], supermodular: bool = False):  # type: ignore[no-untyped-def]
    """One parametrised cvxpy QP per table shape: ``min ||sqrt(w) * x - sqrt(w) * y||^2  s.t.  x[hi] >= x[lo]`` for
    every consecutive pair (``x`` non-decreasing along every axis in index order) and, with ``supermodular``,
    ``x[a+e_i+e_j] - x[a+e_i] - x[a+e_j] + x[a] >= 0`` on every unit square (increasing differences in index order).
    The data are permuted into index order for each ordering tuple, so the problem is compiled once (DPP) and only
    re-solved."""
    import cvxpy as cp

    size = int(np.prod(shape))
    lo, hi = _consecutive_pairs(shape)
    x = cp.Variable(size)
    sqrt_w = cp.Parameter(size, nonneg=True)
    target = cp.Parameter(size)
    diff = sp.csr_matrix(
        (np.tile([1.0, -1.0], lo.size), (np.repeat(np.arange(lo.size), 2), np.stack([hi, lo], axis=1).ravel())),
        shape=(lo.size, size),
    )
    constraints = [diff @ x >= 0] if lo.size else []
    squares = _unit_squares(shape)
    if supermodular and squares.size:
        cross = sp.csr_matrix(
            (np.tile([1.0, -1.0, -1.0, 1.0], len(squares)), (np.repeat(np.arange(len(squares)), 4), squares.ravel())),
            shape=(len(squares), size),
        )
        constraints.append(cross @ x >= 0)
    problem = cp.Problem(cp.Minimize(cp.sum_squares(cp.multiply(sqrt_w, x) - target)), constraints)
    return problem, x, sqrt_w, target, (lo, hi)


def _polish(x: np.ndarray, y: np.ndarray, w: np.ndarray, pairs: tuple[np.ndarray, np.ndarray], scale: float) -> np.ndarray:
    """Snap the solver's answer to the exact structure of an L2 isotonic projection: it is constant on blocks
    (connected sets of cells joined by active constraints) and on each block equals the weighted mean of the data
    (shifting a whole block keeps feasibility, so the derivative along it is 0). Blocks are read off with tolerance
    ``1e-6 * scale``; the polished point is kept if it is feasible and fits no worse than the raw one beyond
    ``1e-6`` relative (the raw point may be slightly infeasible, hence slightly better)."""
    lo, hi = pairs
    parent = list(range(x.size))

    def root(k: int) -> int:
        while parent[k] != k:
            parent[k] = parent[parent[k]]
            k = parent[k]
        return k

    for a, b in zip(lo[np.abs(x[hi] - x[lo]) <= 1e-6 * scale], hi[np.abs(x[hi] - x[lo]) <= 1e-6 * scale]):
        parent[root(int(a))] = root(int(b))
    labels = np.array([root(k) for k in range(x.size)])
    out = x.copy()
    for label in np.unique(labels):
        block = np.flatnonzero(labels == label)
        total = w[block].sum()
        if total > 0:
            out[block] = np.dot(w[block], y[block]) / total
    feasible = lo.size == 0 or float(np.min(out[hi] - out[lo])) >= -1e-12 * scale
    raw = float(np.dot(w, (y - x) ** 2))
    if feasible and float(np.dot(w, (y - out) ** 2)) <= raw + 1e-6 * (raw + scale**2 * 1e-6):
        return out
    return x


#: Tight settings for first-order solvers (their defaults stop around 1e-4); Clarabel's defaults are already tight.
_SOLVER_OPTIONS: dict[str, dict[str, object]] = {
    "OSQP": {"eps_abs": 1e-10, "eps_rel": 1e-10, "max_iter": 200000, "polishing": True},
    "SCS": {"eps_abs": 1e-10, "eps_rel": 1e-10, "max_iters": 200000},
}


def _all_orderings(shape: tuple[int, ...]) -> Iterator[Orders]:
    return itertools.product(*[itertools.permutations(range(m)) for m in shape])  # type: ignore[return-value]


def qmix_best_fit(
    q: object,
    weights: object = None,
    solver: str | None = None,
    orders: Sequence[Sequence[Sequence[int]]] | None = None,
    prune: bool = True,
    supermodular: bool = False,
) -> MonotoneFit:
    """Weighted least-squares projection of ``Q`` onto the QMIX (monotone) class (theory.md §7.2, §7.6, §7.5).

    **Feasible set.** For orderings ``sigma = (sigma_1, ..., sigma_n)`` of each agent's actions let ``C_sigma`` be
    the tables non-decreasing along every ``sigma_i`` with the other actions fixed (the product-order cone; only
    consecutive pairs need a constraint). The set ``M`` of tables ``Q(a) = f(q_1(a_1), ..., q_n(a_n))`` with ``f``
    non-decreasing in each argument is exactly ``union_sigma C_sigma``: (subset) order each ``A^i`` by ``q_i``,
    ties broken arbitrarily (tied utilities give equal slices, which satisfy the non-strict constraints either
    way, so total orders cover weak orders); (superset) take ``q_i`` = rank in ``sigma_i`` and extend the grid
    values monotonically, ``f(x) = max{Q(a) : rank(a) <= x}``. Each ``C_sigma`` is a closed polyhedral cone, so
    ``M`` is closed: it *is* its own closure, and ``min_sigma min_{F in C_sigma} sum_a w(a) (Q(a) - F(a))^2`` (one
    convex QP per ``sigma``, solved with cvxpy) is the exact best monotone fit. For 2 agents this is the class of
    theory.md §7.6 (rows/columns monotone in weak orders).

    *Caveat (architecture).* The usual QMIX mixer (two layers, non-negative hypernetwork weights, ELU) is for each
    state also **convex** in ``(q_1, ..., q_n)`` (a non-negative combination of convex ELUs of non-negative-weight
    affine maps). That is a strictly smaller exact class: ``[[0, 0], [1, 1], [1, 2]]`` is in ``M`` but column 0
    would need a convex function taking the values 0, 1, 1 at three increasing utilities. Whether its closure
    recovers ``M`` is not claimed here; this function fits the class defined by ``dQ_tot/dq_i >= 0``. The
    mixer is also **supermodular**, which binds much harder (climbing, penalty): :func:`qmix_network_fit`
    (``supermodular=True`` here) adds that constraint.

    ``orders`` (optional) restricts the search to the given ordering tuples (``orders[k][i]`` lists agent ``i``'s
    actions from lowest to highest utility); by default all ``prod_i |A^i|!`` tuples are tried, which is limited to
    :data:`MAX_ORDERINGS` = 576 (2 agents with at most 4 actions each; also e.g. 3 agents with 3 actions).
    ``solver`` is any installed cvxpy QP solver (default ``"CLARABEL"``). Solutions are polished to exact level-set
    means; greedy ties use ``1e-7 (1 + max|Q|)``. Ties between ordering tuples (residual within ``1e-9`` relative)
    are listed in ``tied_orders``; the first in enumeration order is returned.

    ``prune`` (default True) skips an ordering tuple when a valid lower bound on its residual (the cost of fixing
    disjoint violated pairs, :func:`_pair_bound`) already exceeds the best residual found; cones are visited in
    increasing bound order. This never changes ``residual``, ``orders`` or ``tied_orders``, only ``candidates``.
    """
    import cvxpy as cp

    table = as_q_table(q)
    w = _check_weights(weights, table.shape)
    shape = table.shape
    if solver is None:
        solver = DEFAULT_QP_SOLVER
    if not isinstance(solver, str) or solver.upper() not in cp.installed_solvers():
        raise ValueError(f"solver must be one of the installed cvxpy solvers {cp.installed_solvers()}, got {solver!r}")
    solver = solver.upper()
    if orders is None:
        count = math.prod(math.factorial(m) for m in shape)
        if count > MAX_ORDERINGS:
            raise ValueError(
                f"qmix_best_fit enumerates prod_i |A^i|! = {count} ordering tuples for shape {shape}; the limit is "
                f"{MAX_ORDERINGS} (2 agents with at most 4 actions each). Pass orders=[...] to restrict the search"
            )
        candidates_orders: list[Orders] = list(_all_orderings(shape))
    else:
        if isinstance(orders, (str, bytes)):
            raise TypeError("orders must be a sequence of ordering tuples")
        candidates_orders = [_check_orders(o, shape) for o in orders]
        if not candidates_orders:
            raise ValueError("orders must contain at least one ordering tuple")
    problem, x, sqrt_w, target, pairs = _isotonic_problem(shape, bool(supermodular))
    lo, hi = pairs
    squares = _unit_squares(shape) if supermodular else np.zeros((0, 4), dtype=np.int64)
    scale = 1.0 + float(np.abs(table).max())
    slack = 1e-9 * (scale**2) * float(w.sum())
    permuted = []
    for sigma in candidates_orders:
        ix = np.ix_(*[list(o) for o in sigma])
        y_p, w_p = table[ix].ravel(), w[ix].ravel()
        permuted.append((ix, y_p, w_p, _pair_bound(y_p, w_p, lo, hi)))
    results: dict[int, tuple[float, np.ndarray]] = {}
    best_value = math.inf
    for k in sorted(range(len(candidates_orders)), key=lambda j: permuted[j][3]):
        ix, y_p, w_p, bound = permuted[k]
        if prune and bound > best_value + slack:
            continue  # this cone cannot reach the best residual found so far
        sigma = candidates_orders[k]
        sqrt_w.value = np.sqrt(w_p)
        target.value = np.sqrt(w_p) * y_p
        try:
            problem.solve(solver=solver, **_SOLVER_OPTIONS.get(solver, {}))
        except cp.error.SolverError as exc:
            raise RuntimeError(f"solver {solver} failed on the QP for orders {sigma}: {exc}") from exc
        if problem.status not in ("optimal", "optimal_inaccurate") or x.value is None:
            raise RuntimeError(f"QP for orders {sigma} ended with status {problem.status!r} (solver {solver})")
        x_p = np.asarray(x.value, dtype=np.float64)
        if not supermodular:  # level-set means are exact for the isotonic cone only
            x_p = _polish(x_p, y_p, w_p, pairs, scale)
        violation = float(np.max(x_p[lo] - x_p[hi])) if lo.size else 0.0
        if squares.size:
            cross = x_p[squares[:, 3]] - x_p[squares[:, 1]] - x_p[squares[:, 2]] + x_p[squares[:, 0]]
            violation = max(violation, float(np.max(-cross)))
        if violation > 1e-6 * scale:
            raise RuntimeError(
                f"solver {solver} returned a point violating the order constraints by {violation:.3g} for orders "
                f"{sigma}; try solver='CLARABEL'"
            )
        fitted = np.empty(shape)
        fitted[ix] = x_p.reshape(shape)
        residual = float(np.sum(w * (table - fitted) ** 2))
        results[k] = (residual, fitted)
        best_value = min(best_value, residual)
    tied = sorted(k for k, (r, _) in results.items() if r <= best_value + slack)
    residual, fitted = results[tied[0]]
    fitted.setflags(write=False)
    ranking = sorted(results, key=lambda k: (results[k][0], k))
    return MonotoneFit(
        q=table,
        weights=w,
        fitted=fitted,
        residual=residual,
        greedy=greedy_set(fitted, 1e-7 * scale),
        orders=candidates_orders[tied[0]],
        tied_orders=tuple(candidates_orders[k] for k in tied),
        candidates=tuple((candidates_orders[k], results[k][0]) for k in ranking),
        solver=solver,
        pruned=len(candidates_orders) - len(results),
    )


def qmix_network_fit(
    q: object,
    weights: object = None,
    solver: str | None = None,
    orders: Sequence[Sequence[Sequence[int]]] | None = None,
    prune: bool = True,
) -> MonotoneFit:
    r"""Weighted least-squares fit in the class QMIX's mixing NETWORK can represent: monotone AND supermodular in
    the utilities (a lower bound on the residual any QMIX mixer reaches; ``qmix_best_fit`` gives the larger
    monotone class).

    **Lemma.** For a fixed state the QMIX mixer (Rashid et al. 2018; PyMARL/EPyMARL ``QMixer``) is
    ``f(q) = sum_k c_k phi(a_k . q + d_k) + v`` with ``c_k = |w_final|_k >= 0``, ``a_k = |W_1|_{:,k} >= 0`` (the
    hypernetworks' absolute values) and ``phi = ELU``, convex and non-decreasing. For ``x <= x'`` in coordinate
    ``i`` and ``y <= y'`` in coordinate ``j`` (the others fixed) put ``s = a_k . q + d_k``,
    ``D_1 = a_ki (x' - x) >= 0``, ``D_2 = a_kj (y' - y) >= 0``; convexity of ``phi`` gives
    ``phi(s + D_1 + D_2) - phi(s + D_1) - phi(s + D_2) + phi(s) >= 0`` (increments of a convex function grow), and a
    non-negative combination keeps it:

    .. math:: f(x', y') - f(x', y) - f(x, y') + f(x, y) \ge 0 \quad\text{(increasing differences)}.

    So with each agent's actions sorted by utility (ties: equal slices), ``Q_tot`` is non-decreasing along every
    axis and has non-negative mixed differences on every unit square of every pair of axes (adjacent squares
    suffice: the difference of any rectangle is a sum of them). This function minimises
    ``sum_a w(a) (Q(a) - F(a))^2`` over that set, one convex QP per ordering tuple (as :func:`qmix_best_fit`,
    same arguments; the monotone pair bound still prunes, since the set is a subset of the monotone cone).
    Whether every such table is reached by a finite mixer is not claimed: it is a necessary condition, so the
    residual is a lower bound, and tests/algos/test_value_decomposition_oracle.py shows trained QMIX within 5% of
    it. On climbing the bound is 1.37x the monotone optimum (uniform weights): QMIX cannot reach the monotone fit
    there, whatever it is trained with.
    """
    return qmix_best_fit(q, weights, solver=solver, orders=orders, prune=prune, supermodular=True)


def _pair_bound(y: np.ndarray, w: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> float:
    """Lower bound on the projection residual onto the cone ``x[hi] >= x[lo]``: the cost of fixing a set of
    *disjoint* violated pairs, ``sum d^2 w_lo w_hi / (w_lo + w_hi)`` with ``d = y[lo] - y[hi] > 0`` (the cone lies
    in the intersection of those half-spaces, whose projection cost separates over the disjoint pairs)."""
    d = y[lo] - y[hi]
    wsum = w[lo] + w[hi]
    cost = np.where((d > 0) & (wsum > 0), d**2 * w[lo] * w[hi] / np.where(wsum > 0, wsum, 1.0), 0.0)
    used: set[int] = set()
    total = 0.0
    for j in np.argsort(-cost, kind="stable"):
        if cost[j] <= 0:
            break
        a, b = int(lo[j]), int(hi[j])
        if a not in used and b not in used:
            used.update((a, b))
            total += float(cost[j])
    return total


# --------------------------------------------------------------------------------------------------------------------
# IGM / QPLEX
# --------------------------------------------------------------------------------------------------------------------
def _product_hull(cells: Sequence[JointAction], n: int) -> tuple[tuple[int, ...], ...]:
    return tuple(tuple(sorted({c[i] for c in cells})) for i in range(n))


def greedy_set_is_product(q: object, tol: float = 1e-12) -> bool:
    """IGM test (theory.md §7.1, §3.2): is ``argmax_a Q`` (within ``tol``) the Cartesian product of its projections
    ``argmax_a Q = prod_i {a_i : a in argmax}``? IGM decompositions always have product greedy sets."""
    table = as_q_table(q)
    cells = greedy_set(table, tol)
    hull = _product_hull(cells, table.ndim)
    return len(cells) == math.prod(len(h) for h in hull)


@dataclass(frozen=True)
class IGMVerdict:
    """Can an IGM decomposition have exactly the optimal set of ``Q`` as its greedy set? (truthy iff yes)."""

    representable: bool
    optimal_set: tuple[JointAction, ...]
    product_hull: tuple[tuple[int, ...], ...]
    reason: str

    def __bool__(self) -> bool:
        return self.representable


def igm_representable_optimal_set(q: object, tol: float = 1e-12) -> IGMVerdict:
    """theory.md §3.2 [DERIVED]: under IGM, ``argmax_a Q_tot = prod_i argmax_{a_i} Q_i`` is a product set, so an IGM
    decomposition (any: VDN, QMIX, QPLEX, ...) can have exactly the optimal set ``O = argmax Q`` as its greedy set
    iff ``O`` is a product. If it is, ``Q_i = 1[a_i in proj_i O]`` with ``Q_tot = Q`` realises it (so an IGM-complete
    class like QPLEX represents ``Q`` exactly). XOR: ``O = {(0,1), (1,0)}`` is not a product, verdict False."""
    table = as_q_table(q)
    cells = greedy_set(table, tol)
    hull = _product_hull(cells, table.ndim)
    size = math.prod(len(h) for h in hull)
    ok = len(cells) == size
    if ok:
        reason = f"the optimal set ({len(cells)} joint action(s)) is the product of its projections {hull}"
    else:
        reason = (
            f"the optimal set {list(cells)} is not a product: the product of its projections {hull} has {size} "
            f"joint actions, {size - len(cells)} of them suboptimal"
        )
    return IGMVerdict(representable=ok, optimal_set=cells, product_hull=hull, reason=reason)


# --------------------------------------------------------------------------------------------------------------------
# Side-by-side report
# --------------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class IGMRow:
    """One function class fitted to ``Q``. ``fitted`` is None when the fit was not computed (see ``note``);
    ``represents_exactly``: is ``Q`` itself in the class. Payoffs/regret are those of the greedy joint actions of the
    fit, under the true ``Q``; regret is ``J* - worst greedy payoff``, ``regret_mean`` uses a uniform tie-break."""

    method: str
    fitted: np.ndarray | None
    residual: float
    represents_exactly: bool
    greedy: tuple[JointAction, ...]
    greedy_payoffs: tuple[float, ...]
    worst_payoff: float
    mean_payoff: float
    regret: float
    regret_mean: float
    note: str = ""


@dataclass(frozen=True, eq=False)
class IGMReport:
    """VDN / QMIX / QPLEX on one table: ``rows`` plus ``J* = max Q`` and the optimal set. ``str()`` renders it."""

    q: np.ndarray
    j_star: float
    optimal_set: tuple[JointAction, ...]
    rows: tuple[IGMRow, ...]
    action_names: tuple[tuple[str, ...], ...]
    name: str = "Q"

    def __iter__(self) -> Iterator[IGMRow]:
        return iter(self.rows)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, key: int | str) -> IGMRow:
        if isinstance(key, str):
            for row in self.rows:
                if row.method.lower() == key.lower():
                    return row
            raise KeyError(f"no row {key!r}; rows are {[r.method for r in self.rows]}")
        return self.rows[key]

    def _joint(self, a: JointAction) -> str:
        return "(" + ",".join(self.action_names[i][x] for i, x in enumerate(a)) + ")"

    def _table(self, t: np.ndarray) -> list[str]:
        if t.ndim != 2:
            return ["    " + np.array2string(t, precision=4, suppress_small=True).replace("\n", "\n    ")]
        cols = self.action_names[1]
        width = max(9, *(len(c) + 1 for c in cols))
        head = "    " + " " * 6 + "".join(f"{c:>{width}}" for c in cols)
        lines = [head]
        for r, rname in enumerate(self.action_names[0]):
            lines.append("    " + f"{rname:<6}" + "".join(f"{t[r, c]:>{width}.4g}" for c in range(t.shape[1])))
        return lines

    def to_text(self, tables: bool = True) -> str:
        """Plain-text rendering: the game, one line per class, and (``tables``) the fitted tables."""
        opt = ", ".join(self._joint(a) for a in self.optimal_set)
        lines = [f"IGM report for {self.name}: J* = {self.j_star:.6g} at {opt}"]
        if tables:
            lines += ["  Q:"] + self._table(self.q)
        header = f"  {'class':<6} {'exact':<6} {'residual':>11}  {'greedy (true payoff)':<40} {'worst':>8} {'regret':>8}"
        lines += [header]
        for row in self.rows:
            greedy = ", ".join(f"{self._joint(a)}={p:.4g}" for a, p in zip(row.greedy, row.greedy_payoffs))
            lines.append(
                f"  {row.method:<6} {str(row.represents_exactly):<6} {row.residual:>11.6g}  {greedy:<40} "
                f"{row.worst_payoff:>8.4g} {row.regret:>8.4g}"
            )
            if row.note:
                lines.append(f"         note: {row.note}")
        if tables:
            for row in self.rows:
                if row.fitted is not None and row.method != "QPLEX":
                    lines += [f"  {row.method} fit:"] + self._table(row.fitted)
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.to_text()


def _row_from_fit(method: str, fit: _Fit, exact: bool, j_star: float, note: str) -> IGMRow:
    payoffs = fit.greedy_payoffs
    return IGMRow(
        method=method,
        fitted=fit.fitted,
        residual=fit.residual,
        represents_exactly=exact,
        greedy=fit.greedy,
        greedy_payoffs=payoffs,
        worst_payoff=min(payoffs),
        mean_payoff=float(np.mean(payoffs)),
        regret=j_star - min(payoffs),
        regret_mean=j_star - float(np.mean(payoffs)),
        note=note,
    )


def igm_report(
    game_or_q: object,
    weights: object = None,
    solver: str | None = None,
    tol: float = 1e-12,
    action_names: Sequence[Sequence[str]] | None = None,
) -> IGMReport:
    """VDN, QMIX and QPLEX side by side on one joint table (theory.md §3.2, §7, §8).

    * VDN: :func:`vdn_fit` (exact iff ``Q`` is additive).
    * QMIX: :func:`qmix_best_fit` (exact iff :func:`is_monotone_representable`); skipped beyond
      :data:`MAX_ORDERINGS` ordering tuples (the row then has ``fitted=None`` and residual NaN).
    * QPLEX (IGM-complete, theory.md §7.4): represents ``Q`` exactly iff its optimal set is a product
      (:func:`igm_representable_optimal_set`), with greedy set = optimal set. Otherwise ``Q`` lies only in the
      closure of the class (infimum residual 0, not attained): nearby IGM tables (raise one optimum by epsilon)
      pick a single optimal joint action (regret 0) but never the whole optimal set; the row shows the first one.
    """
    table = as_q_table(game_or_q, "game_or_q")
    w = _check_weights(weights, table.shape)
    tol = _check_tol(tol)
    names = _action_names(game_or_q, table.shape, action_names)
    j_star = float(table.max())
    rows: list[IGMRow] = []

    vdn = vdn_fit(table, w)
    scale2 = (1.0 + float(np.abs(table).max())) ** 2 * float(w.sum())
    vdn_exact = vdn.residual <= 1e-12 * scale2
    vdn_note = "" if vdn.identified else "fit not identified off the support of the weights"
    rows.append(_row_from_fit("VDN", vdn, vdn_exact, j_star, vdn_note))

    representable, witness = is_monotone_representable(table, action_names=names)
    count = math.prod(math.factorial(m) for m in table.shape)
    if count <= MAX_ORDERINGS:
        fit = qmix_best_fit(table, w, solver=solver)
        note = "" if representable else witness.description
        if len(fit.tied_orders) > 1:
            note = (note + "; " if note else "") + f"{len(fit.tied_orders)} ordering tuples reach the best residual"
        rows.append(_row_from_fit("QMIX", fit, representable, j_star, note))
    else:
        rows.append(
            IGMRow(
                method="QMIX",
                fitted=None,
                residual=float("nan"),
                represents_exactly=representable,
                greedy=(),
                greedy_payoffs=(),
                worst_payoff=float("nan"),
                mean_payoff=float("nan"),
                regret=float("nan"),
                regret_mean=float("nan"),
                note=f"best fit not computed: {count} ordering tuples > {MAX_ORDERINGS}; " + witness.description,
            )
        )

    verdict = igm_representable_optimal_set(table, tol)
    if verdict.representable:
        greedy = verdict.optimal_set
        note = "IGM-complete: Q itself is in the class (optimal set is a product)"
    else:
        greedy = verdict.optimal_set[:1]
        note = (
            "IGM-complete, but " + verdict.reason + "; Q is only in the closure of the class (residual infimum 0, "
            "not attained): a near fit picks one optimal joint action (regret 0), never the whole optimal set"
        )
    payoffs = _payoffs(table, greedy)
    rows.append(
        IGMRow(
            method="QPLEX",
            fitted=table,
            residual=0.0,
            represents_exactly=verdict.representable,
            greedy=greedy,
            greedy_payoffs=payoffs,
            worst_payoff=min(payoffs),
            mean_payoff=float(np.mean(payoffs)),
            regret=j_star - min(payoffs),
            regret_mean=j_star - float(np.mean(payoffs)),
            note=note,
        )
    )
    name = game_or_q.name if isinstance(game_or_q, MarkovGame) else "Q"
    return IGMReport(
        q=table, j_star=j_star, optimal_set=verdict.optimal_set, rows=tuple(rows), action_names=names, name=name
    )


__all__ = [
    "MAX_ORDERINGS",
    "DEFAULT_QP_SOLVER",
    "as_q_table",
    "greedy_set",
    "VDNFit",
    "vdn_fit",
    "vdn_fit_exact",
    "MonotoneWitness",
    "is_monotone_representable",
    "monotone_violation",
    "MonotoneFit",
    "qmix_best_fit",
    "qmix_network_fit",
    "greedy_set_is_product",
    "IGMVerdict",
    "igm_representable_optimal_set",
    "IGMRow",
    "IGMReport",
    "igm_report",
]
