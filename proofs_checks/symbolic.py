"""Exact symbolic (sympy) proofs of closed forms used across theory.md.

Each claim is a function that takes the object it checks (a game, an advantage routine, an identity, a
closed form) and returns the exact residuals, so that tests can feed it a wrong object and watch it fail.
The ``run_*`` functions wrap them into :class:`CheckResult` rows; ``cases`` is the number of instances
proved, ``worst_error`` is 0 when every residual simplifies to exactly 0 (otherwise the size of the
first non-zero residual at a probe point, ``inf`` when that probe happens to vanish).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Callable, Sequence

import numpy as np
import sympy as sp
from sympy.stats import E as expectation
from sympy.stats import Normal, density

from seqmarl.theory import games
from seqmarl.theory.markov_game import MarkovGame
from seqmarl.theory.multiagent import marginalise
from seqmarl.theory.policies import AutoRegressive

from .base import Check, CheckResult, Profile

__all__ = [
    "CHECKS",
    "residual_magnitude",
    "shared_return_polynomial",
    "Prop1Result",
    "prop1_instance",
    "prop1_error",
    "symbolic_q_and_policy",
    "conditional_advantage",
    "naive_advantage",
    "lemma1_residuals",
    "clip",
    "happo_min_form",
    "happo_relu_form",
    "clip_identity_cases",
    "clip_identity_residuals",
    "log_factorial_residual",
    "uniform_optimal_ar",
    "ar_entropy_residuals",
    "vdn_ls_fit",
    "vdn_closed_form",
    "vdn_residuals",
    "gaussian_product_path",
    "a1a2_residuals",
    "A1A2_TABLE",
    "QTRAN_LS_TABLE",
]


# --- helpers ------------------------------------------------------------------------------------


def residual_magnitude(expr: sp.Expr) -> float:
    """0 for an exact zero; otherwise ``|expr|`` at the probe point ``x_j = 3/7 + j/11`` (over the sorted free
    symbols), or ``inf`` if the probe happens to vanish (the residual is non-zero but its size unknown)."""
    expr = sp.sympify(expr)
    if expr == 0:
        return 0.0
    symbols = sorted(expr.free_symbols, key=lambda s: s.name)
    value = expr.subs({s: sp.Rational(3, 7) + sp.Rational(j, 11) for j, s in enumerate(symbols)})
    try:
        size = abs(float(sp.N(value)))
    except TypeError:
        return math.inf
    return size if size > 0 else math.inf


def _result(residuals: Sequence[sp.Expr], label: str, extra: str = "") -> CheckResult:
    errors = [residual_magnitude(r) for r in residuals]
    worst = max(errors, default=0.0)
    failed = sum(e != 0 for e in errors)
    detail = f"{len(residuals)} {label} proved exactly" if not failed else f"{failed}/{len(residuals)} {label} NOT zero"
    return CheckResult(cases=len(residuals) - failed, worst_error=worst, passed=failed == 0, detail=detail + extra)


def _exact(value: float) -> sp.Rational:
    """A float as the exact rational it stores (``Fraction(float)`` is exact)."""
    f = Fraction(float(value))
    return sp.Rational(f.numerator, f.denominator)


def _check_one_shot(game: object, name: str = "game") -> MarkovGame:
    if not isinstance(game, MarkovGame):
        raise TypeError(f"{name} must be a MarkovGame, got {type(game).__name__}")
    if not game.is_one_shot:
        raise ValueError(f"{name} must be a one-shot matrix game (one state, gamma = 0), got {game!r}")
    return game


# --- HATRPO Proposition 1 (theory.md §1.4) --------------------------------------------------------


def shared_return_polynomial(game: MarkovGame, p: sp.Symbol) -> sp.Expr:
    """``J_share(p) = sum_a r(a) prod_i p^{a^i} (1-p)^{1-a^i}`` for a one-shot game with 2 actions per agent,
    every agent playing action 1 with probability ``p`` (theory.md §1.4). Terms are grouped by the number
    ``c`` of ones: ``J = sum_c W_c p^c (1-p)^{n-c}`` with ``W_c = sum_{a: #1(a) = c} r(a)`` (exact rationals,
    summed over the non-zero rewards only, so ``xor(24)`` stays cheap)."""
    game = _check_one_shot(game)
    if set(game.n_actions) != {2}:
        raise ValueError(f"game must give every agent 2 actions, got n_actions={game.n_actions}")
    n = game.n_agents
    flat = game.reward_flat()[0]
    nonzero = np.flatnonzero(flat)
    ones = np.zeros(nonzero.shape, dtype=np.int64)
    for bit in range(n):  # C order: agent i's action is bit n-1-i of the flat index
        ones += (nonzero >> bit) & 1
    weights: dict[int, Fraction] = {}
    for index, c in zip(nonzero.tolist(), ones.tolist()):
        weights[c] = weights.get(c, Fraction(0)) + Fraction(float(flat[index]))
    return sp.Add(*[sp.Rational(w.numerator, w.denominator) * p**c * (1 - p) ** (n - c) for c, w in weights.items()])


@dataclass(frozen=True)
class Prop1Result:
    """Exact outcome of the Prop. 1 analysis of one game."""

    n_agents: int
    polynomial: sp.Expr
    interior_critical_points: tuple[sp.Expr, ...]
    maximisers: tuple[sp.Expr, ...]
    shared_optimum: sp.Expr
    joint_optimum: sp.Rational
    ratio: sp.Expr


def prop1_instance(game: MarkovGame) -> Prop1Result:
    """Solve ``dJ_share/dp = 0`` on ``(0, 1)`` exactly (real roots of the polynomial), take the maximum of
    ``J_share`` over those points and the endpoints ``{0, 1}``, and divide by the joint optimum
    ``J* = max_a r(a)`` (theory.md §1.4: for xor(n) the ratio is ``2^{1-n}`` at the unique ``p = 1/2``)."""
    game = _check_one_shot(game)
    p = sp.Symbol("p")
    poly_expr = shared_return_polynomial(game, p)
    derivative = sp.Poly(sp.expand(sp.diff(poly_expr, p)), p)
    if derivative.is_zero:
        critical: tuple[sp.Expr, ...] = ()
    else:
        critical = tuple(sorted({r for r in sp.real_roots(derivative) if 0 < r < 1}, key=lambda r: float(r)))
    candidates = (*critical, sp.Integer(0), sp.Integer(1))
    values = [sp.simplify(poly_expr.subs(p, c)) for c in candidates]
    best = max(values, key=lambda v: float(v))
    maximisers = tuple(c for c, v in zip(candidates, values) if sp.simplify(v - best) == 0)
    j_star = _exact(float(game.reward.max()))
    if j_star <= 0:
        raise ValueError(f"game must have a positive optimal reward for the ratio J_share*/J*, got {j_star}")
    return Prop1Result(game.n_agents, poly_expr, critical, maximisers, best, j_star, sp.simplify(best / j_star))


def prop1_error(result: Prop1Result) -> sp.Expr:
    """The residual of Prop. 1 for one game: ``J*_share/J* - 2^{1-n}``, forced non-zero (``+1``) when
    ``p = 1/2`` is not the unique interior critical point and the unique maximiser."""
    half = sp.Rational(1, 2)
    if result.interior_critical_points != (half,) or result.maximisers != (half,):
        return sp.Integer(1) + abs(result.ratio - sp.Integer(2) ** (1 - result.n_agents))
    return sp.simplify(result.ratio - sp.Integer(2) ** (1 - result.n_agents))


def run_prop1(profile: Profile) -> CheckResult:
    top = 12 if profile.scale <= 1 else 24
    residuals = [prop1_error(prop1_instance(games.xor(n))) for n in range(2, top + 1, 2)]
    return _result(residuals, f"xor(n) games, n = 2..{top} even", "; p = 1/2 unique interior critical point and maximiser")


# --- HATRPO Lemma 1 (theory.md §1.6) --------------------------------------------------------------


def symbolic_q_and_policy(n_actions: Sequence[int]) -> tuple[np.ndarray, list[np.ndarray]]:
    """A one-state symbolic ``Q[1, A1..An]`` (entries ``q_<a1>_<a2>...``) and product policy tables
    ``pi^i = (p_i_0, ..., p_i_{A-2}, 1 - sum)`` as object arrays."""
    acts = tuple(int(a) for a in n_actions)
    if not acts or any(a < 1 for a in acts):
        raise ValueError(f"n_actions must be positive action counts, got {n_actions}")
    q = np.empty((1, *acts), dtype=object)
    for joint in itertools.product(*[range(a) for a in acts]):
        q[(0, *joint)] = sp.Symbol("q_" + "_".join(map(str, joint)))
    tables = []
    for i, a in enumerate(acts):
        probs = [sp.Symbol(f"p_{i}_{b}") for b in range(a - 1)]
        probs.append(1 - sp.Add(*probs))
        tables.append(np.array([probs], dtype=object))
    return q, tables


AdvantageFn = Callable[[np.ndarray, Sequence[np.ndarray], tuple[int, ...], int], np.ndarray]


def conditional_advantage(q: np.ndarray, tables: Sequence[np.ndarray], given: tuple[int, ...], agent: int) -> np.ndarray:
    """HATRPO eq. (1): ``A^{i}(s, a^{given}, a^i) = Q^{given, i}(s, a^{given}, a^i) - Q^{given}(s, a^{given})``,
    ``Q^{J}`` by marginalising the complement of ``J`` with :func:`seqmarl.theory.multiagent.marginalise`
    (run on sympy object arrays). Shape ``[S, A_given..., A_i]``."""
    with_agent = marginalise(q, tables, (*given, agent))
    without = marginalise(q, tables, given)
    return with_agent - without[..., None]


def naive_advantage(q: np.ndarray, tables: Sequence[np.ndarray], given: tuple[int, ...], agent: int) -> np.ndarray:
    """A WRONG decomposition for negative tests: each agent's own advantage ``Q^{i}(a^i) - V`` ignoring the
    earlier agents' actions (broadcast over them)."""
    own = marginalise(q, tables, (agent,)) - marginalise(q, tables, ())[..., None]
    shape = (own.shape[0],) + tuple(tables[g].shape[1] for g in given) + (own.shape[1],)
    return np.broadcast_to(own.reshape((own.shape[0],) + (1,) * len(given) + (own.shape[1],)), shape)


def lemma1_residuals(n_actions: Sequence[int], advantage_fn: AdvantageFn = conditional_advantage) -> list[sp.Expr]:
    """For symbolic ``Q`` and policies, every ordering ``i_{1:n}``, prefix length ``m`` and joint action
    ``a^{i_{1:m}}``: ``sum_{j=1}^m A^{i_j}(s, a^{i_{1:j-1}}, a^{i_j}) - A^{i_{1:m}}(s, a^{i_{1:m}})``, expanded
    (theory.md §1.6, Lemma 1). The joint advantage is built independently as ``E_{a^{-i_{1:m}}}[Q] - E_a[Q]``
    by explicit summation over the joint-action table (no marginalise)."""
    q, tables = symbolic_q_and_policy(n_actions)
    acts = q.shape[1:]
    n = len(acts)
    joints = list(itertools.product(*[range(a) for a in acts]))
    prob = {a: sp.Mul(*[tables[i][0, a[i]] for i in range(n)]) for a in joints}
    v = sp.expand(sp.Add(*[prob[a] * q[(0, *a)] for a in joints]))
    cache: dict[tuple[tuple[int, ...], int], np.ndarray] = {}
    residuals = []
    for order in itertools.permutations(range(n)):
        for m in range(1, n + 1):
            agents = order[:m]
            for head in itertools.product(*[range(acts[i]) for i in agents]):
                total = sp.Integer(0)
                for j in range(m):
                    key = (agents[:j], agents[j])
                    if key not in cache:
                        cache[key] = advantage_fn(q, tables, agents[:j], agents[j])
                    total += cache[key][(0, *head[: j + 1])]
                fixed = dict(zip(agents, head))
                rest = [i for i in range(n) if i not in fixed]
                q_m = sp.Add(
                    *[
                        sp.Mul(*[tables[i][0, a[i]] for i in rest]) * q[(0, *a)]
                        for a in joints
                        if all(a[i] == b for i, b in fixed.items())
                    ]
                )
                residuals.append(sp.expand(total - (q_m - v)))
    return residuals


def run_lemma1(profile: Profile) -> CheckResult:
    shapes: list[tuple[int, ...]] = [(2, 2), (2, 2, 2)]
    if profile.scale > 1:
        shapes += [(2, 3, 2), (2, 2, 2, 2)]
    residuals = [r for shape in shapes for r in lemma1_residuals(shape)]
    return _result(residuals, f"(ordering, prefix, joint action) identities for action shapes {shapes}")


# --- HAPPO clip identity (theory.md §2.2) ---------------------------------------------------------


def clip(r: sp.Expr, eps: sp.Expr) -> sp.Expr:
    """``clip(r, 1 - eps, 1 + eps) = min(max(r, 1 - eps), 1 + eps)``."""
    return sp.Min(sp.Max(r, 1 - eps), 1 + eps)


def happo_min_form(r: sp.Expr, adv: sp.Expr, eps: sp.Expr) -> sp.Expr:
    """The PPO/HAPPO objective term ``min(r A, clip(r) A)`` (theory.md §1.11 eq. 11)."""
    return sp.Min(r * adv, clip(r, eps) * adv)


def happo_relu_form(r: sp.Expr, adv: sp.Expr, eps: sp.Expr) -> sp.Expr:
    """The HAML form ``r A - ReLU((r - clip(r)) A)`` (theory.md §2.2), ``ReLU(x) = max(0, x)``."""
    return r * adv - sp.Max(0, (r - clip(r, eps)) * adv)


def clip_identity_cases() -> list[tuple[str, sp.Expr, sp.Expr, sp.Expr]]:
    """``(name, r, A, eps)`` covering every region: the sign of ``A`` (``a``, ``-a``, ``0``, ``a > 0``) times the
    position of ``r``: below ``1 - eps`` (``r = 1 - eps - t``), at ``1 - eps``, inside (``eps = (d1+d2)/2``,
    ``r = 1 + (d1-d2)/2``, so ``r - (1-eps) = d1 > 0`` and ``(1+eps) - r = d2 > 0``), at ``1 + eps``, above
    (``r = 1 + eps + t``), all with ``eps > 0``; plus the degenerate ``eps = 0`` (``r < 1``, ``r = 1``,
    ``r > 1``). All of ``a, t, d1, d2, eps`` are positive symbols, so sympy resolves every min/max."""
    a, t, d1, d2, e = sp.symbols("a t d1 d2 eps", positive=True)
    inside_eps = (d1 + d2) / 2
    positions = [
        ("r<1-eps", 1 - e - t, e),
        ("r=1-eps", 1 - e, e),
        ("1-eps<r<1+eps", 1 + (d1 - d2) / 2, inside_eps),
        ("r=1+eps", 1 + e, e),
        ("r>1+eps", 1 + e + t, e),
        ("eps=0,r<1", 1 - t, sp.Integer(0)),
        ("eps=0,r=1", sp.Integer(1), sp.Integer(0)),
        ("eps=0,r>1", 1 + t, sp.Integer(0)),
    ]
    signs = [("A>0", a), ("A<0", -a), ("A=0", sp.Integer(0))]
    return [(f"{pn},{sn}", r, adv, eps) for pn, r, eps in positions for sn, adv in signs]


IdentityFn = Callable[[sp.Expr, sp.Expr, sp.Expr], sp.Expr]


def clip_identity_residuals(
    lhs: IdentityFn = happo_min_form, rhs: IdentityFn = happo_relu_form
) -> list[tuple[str, sp.Expr]]:
    """``simplify(lhs(r, A, eps) - rhs(r, A, eps))`` on every region of :func:`clip_identity_cases`; a residual
    that still holds an unresolved ``Min``/``Max`` counts as unproved (returned unsimplified)."""
    out = []
    for name, r, adv, eps in clip_identity_cases():
        diff = lhs(r, adv, eps) - rhs(r, adv, eps)
        out.append((name, sp.simplify(diff)))
    return out


def _clip_grid_error() -> float:
    """Float cross-check on a grid (r in [-1, 3], A in [-2, 2], eps in {0, .1, .2, .5})."""
    r = np.linspace(-1, 3, 161)[:, None, None]
    adv = np.linspace(-2, 2, 41)[None, :, None]
    eps = np.array([0.0, 0.1, 0.2, 0.5])[None, None, :]
    clipped = np.clip(r, 1 - eps, 1 + eps)
    lhs = np.minimum(r * adv, clipped * adv)
    rhs = r * adv - np.maximum(0.0, (r - clipped) * adv)
    return float(np.max(np.abs(lhs - rhs)))


def run_happo_clip(profile: Profile) -> CheckResult:
    named = clip_identity_residuals()
    unresolved = [n for n, res in named if res.has(sp.Min, sp.Max)]
    result = _result([res for _, res in named], "regions (sign of A x position of r, incl. boundaries and eps = 0)")
    grid = _clip_grid_error()
    result.detail += f"; float grid cross-check max error {grid:.1e}"
    if unresolved:
        result.passed = False
        result.detail += f"; unresolved min/max in {unresolved}"
    if grid > 1e-12:
        result.passed = False
        result.worst_error = max(result.worst_error, grid)
    return result


# --- permutation-game entropies (theory.md §3.3) --------------------------------------------------


def log_factorial_residual(n: int) -> sp.Expr:
    """``sum_{k=1}^n log(n-k+1) - log(n!)`` with every integer log expanded into primes (exact zero iff equal)."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    expr = sp.Add(*[sp.log(n - k + 1) for k in range(1, n + 1)]) - sp.log(sp.factorial(n))
    return sp.expand_log(expr, force=True, factor=True)


def uniform_optimal_ar(game: MarkovGame, order: Sequence[int] | None = None) -> tuple[list[sp.Expr], sp.Expr, AutoRegressive]:
    """The auto-regressive policy in which agent ``i_k`` picks uniformly among the actions that still allow the
    optimal reward ``max_a r(a)`` given the earlier agents' actions (enumerated from the game's reward).

    Returns the exact conditional entropies ``H_k = sum_{prefix} P(prefix) log c(prefix)`` (``c`` = number of
    optimal-continuation actions), the exact expected reward, and the policy as an :class:`AutoRegressive`
    (numeric, for cross-checks). theory.md §3.3: for permutation(n), ``c = n - k + 1`` for every prefix."""
    game = _check_one_shot(game)
    n = game.n_agents
    order = tuple(range(n)) if order is None else tuple(int(i) for i in order)
    if sorted(order) != list(range(n)):
        raise ValueError(f"order must be a permutation of 0..{n - 1}, got {order}")
    reward = np.moveaxis(game.reward[0], list(order), list(range(n)))
    best = float(reward.max())
    acts = reward.shape
    # feasible[k][a^{1:k+1}]: can the best reward still be reached after the first k+1 actions?
    feasible = [reward.max(axis=tuple(range(k + 1, n))) == best if k + 1 < n else reward == best for k in range(n)]
    entropies = [sp.Integer(0)] * n
    expected = sp.Integer(0)
    conditionals = [np.full((1, *acts[: k + 1]), 1.0 / acts[k]) for k in range(n)]
    frontier: list[tuple[tuple[int, ...], sp.Rational]] = [((), sp.Integer(1))]
    for k in range(n):
        nxt = []
        for prefix, prob in frontier:
            choices = [a for a in range(acts[k]) if feasible[k][prefix + (a,)]]
            c = len(choices)
            entropies[k] += prob * sp.log(c)
            row = np.zeros(acts[k])
            row[choices] = 1.0 / c
            conditionals[k][(0, *prefix)] = row
            nxt.extend((prefix + (a,), prob / c) for a in choices)
        frontier = nxt
    for joint, prob in frontier:
        expected += prob * _exact(float(reward[joint]))
    return entropies, expected, AutoRegressive(order, conditionals)


def ar_entropy_residuals(game: MarkovGame, order: Sequence[int] | None = None) -> tuple[list[sp.Expr], float]:
    """Residuals ``H_k - log(n-k+1)`` (k = 1..n), ``sum_k H_k - log(n!)`` and ``J(AR) - max_a r(a)`` for the
    uniform-optimal AR policy of ``game``, plus the float error of the library's
    ``AutoRegressive.conditional_entropies`` against the exact values."""
    entropies, expected, policy = uniform_optimal_ar(game, order)
    n = game.n_agents
    residuals = [sp.expand_log(h - sp.log(n - k), force=True, factor=True) for k, h in enumerate(entropies)]
    residuals.append(sp.expand_log(sp.Add(*entropies) - sp.log(sp.factorial(n)), force=True, factor=True))
    residuals.append(expected - _exact(float(game.reward.max())))
    numeric = policy.conditional_entropies()
    float_error = max(abs(float(numeric[k][0]) - float(entropies[k])) for k in range(n))
    return residuals, float_error


def run_permutation_entropy(profile: Profile) -> CheckResult:
    top_log, top_ar = (12, 5) if profile.scale <= 1 else (40, 7)
    residuals = [log_factorial_residual(n) for n in range(2, top_log + 1)]
    float_error = 0.0
    for n in range(2, top_ar + 1):
        res, err = ar_entropy_residuals(games.permutation(n))
        residuals.extend(res)
        float_error = max(float_error, err)
    result = _result(
        residuals,
        f"identities (log n! for n = 2..{top_log}; per-agent H = log(n-k+1), sum and J = 1 for permutation(n), n = 2..{top_ar})",
        f"; AutoRegressive.conditional_entropies float error {float_error:.1e}",
    )
    if float_error > 1e-12:
        result.passed = False
        result.worst_error = max(result.worst_error, float_error)
    return result


# --- VDN least-squares closed form (theory.md §7.6) -----------------------------------------------


def vdn_ls_fit(payoff: sp.Matrix) -> sp.Matrix:
    """The least-squares additive fit ``Q^(a, b) = u_a + v_b`` of ``payoff`` under uniform weights, by
    solving the normal equations ``d/du, d/dv sum_{a,b} (u_a + v_b - R_ab)^2 = 0`` with ``sympy.linsolve``
    (the solution set has one free gauge parameter, which cancels in ``u_a + v_b``)."""
    if not isinstance(payoff, sp.MatrixBase):
        raise TypeError(f"payoff must be a sympy Matrix, got {type(payoff).__name__}")
    rows, cols = payoff.shape
    u = sp.symbols(f"u0:{rows}")
    v = sp.symbols(f"v0:{cols}")
    loss = sp.Add(*[(u[a] + v[b] - payoff[a, b]) ** 2 for a in range(rows) for b in range(cols)])
    unknowns = [*u, *v]
    solutions = sp.linsolve([sp.diff(loss, x) for x in unknowns], unknowns)
    if not solutions:
        raise ValueError("the normal equations have no solution")
    sol = dict(zip(unknowns, next(iter(solutions))))
    return sp.Matrix(rows, cols, lambda a, b: sp.expand(sol[u[a]] + sol[v[b]]))


def vdn_closed_form(payoff: sp.Matrix) -> sp.Matrix:
    """theory.md §7.6: ``Q^(a, b) = Rbar_{a.} + Rbar_{.b} - Rbar``."""
    rows, cols = payoff.shape
    row_mean = [sp.Add(*payoff.row(a)) / cols for a in range(rows)]
    col_mean = [sp.Add(*payoff.col(b)) / rows for b in range(cols)]
    mean = sp.Add(*payoff) / (rows * cols)
    return sp.Matrix(rows, cols, lambda a, b: row_mean[a] + col_mean[b] - mean)


def vdn_residuals(shape: tuple[int, int], closed_form: Callable[[sp.Matrix], sp.Matrix] = vdn_closed_form) -> list[sp.Expr]:
    """``vdn_ls_fit(R) - closed_form(R)`` entrywise for a symbolic payoff ``R = (r_ab)`` of ``shape``."""
    rows, cols = (int(x) for x in shape)
    payoff = sp.Matrix(rows, cols, lambda a, b: sp.Symbol(f"r_{a}{b}"))
    diff = vdn_ls_fit(payoff) - closed_form(payoff)
    return [sp.expand(x) for x in diff]


QTRAN_LS_TABLE = sp.Matrix(
    [[sp.Rational(-56, 9), sp.Rational(-44, 9), sp.Rational(-44, 9)], [sp.Rational(-44, 9), sp.Rational(-32, 9), sp.Rational(-32, 9)], [sp.Rational(-44, 9), sp.Rational(-32, 9), sp.Rational(-32, 9)]]
)
"""theory.md §7.6: the LS VDN fit of the QTRAN matrix, as printed there."""


def run_vdn(profile: Profile) -> CheckResult:
    shapes = [(2, 2), (3, 3), (2, 3)]
    if profile.scale > 1:
        shapes += [(4, 4), (3, 4)]
    residuals = [r for shape in shapes for r in vdn_residuals(shape)]
    qtran = sp.Matrix(games.qtran().reward[0].tolist()).applyfunc(_exact)
    residuals.extend(vdn_ls_fit(qtran) - QTRAN_LS_TABLE)
    return _result(residuals, f"entries (symbolic payoffs {shapes}, plus the QTRAN table of §7.6)")


# --- the r = a1 a2 example (theory.md §1.5) -------------------------------------------------------

A1A2_TABLE = {
    "start": sp.Rational(-1, 16),
    "simultaneous": sp.Rational(-9, 16),
    "sequential_1": sp.Rational(3, 16),
    "sequential_2": sp.Rational(15, 16),
}
"""theory.md §1.5 table: J at the start, after the simultaneous step and after each sequential step."""


def gaussian_product_path(
    reward: Callable[[sp.Expr, sp.Expr], sp.Expr],
    mu0: tuple[sp.Rational, sp.Rational] = (sp.Rational(-1, 4), sp.Rational(1, 4)),
    delta: sp.Rational = sp.Rational(1, 2),
    order: tuple[int, int] = (0, 1),
) -> dict[str, object]:
    """Exact trust-region steps in the one-state game ``a^i ~ N(mu^i, 1)`` with reward ``reward(a^1, a^2)``:

    ``J(mu) = E[r(a^1, a^2)]`` and ``KL(N(m,1) || N(m',1)) = E_{x~N(m,1)}[log p_m(x) - log p_m'(x)]`` by
    ``sympy.stats``; each agent maximises ``J`` in its own mean over the KL ball ``{m' : KL(m, m') <= delta}``
    (solved as an interval), over the critical points and endpoints. ``simultaneous``: both step against the
    old means; ``sequential``: agents step in ``order``, the second against the updated mean (theory.md §1.5)."""
    m1, m2, m, mp, x = sp.symbols("mu1 mu2 m mprime x", real=True)
    j_expr = sp.simplify(expectation(reward(Normal("X1", m1, 1), Normal("X2", m2, 1))))
    z = Normal("Z", m, 1)
    log_ratio = sp.expand_log(sp.log(density(z)(x)) - sp.log(density(Normal("W", mp, 1))(x)), force=True)
    kl = sp.simplify(expectation(log_ratio.subs(x, z)))
    means = (m1, m2)

    def j_at(point: Sequence[sp.Expr]) -> sp.Expr:
        return sp.simplify(j_expr.subs({m1: point[0], m2: point[1]}))

    def best_response(point: Sequence[sp.Expr], agent: int) -> sp.Expr:
        ball = sp.solveset(kl.subs({m: point[agent]}) - delta <= 0, mp, sp.S.Reals)
        if not isinstance(ball, sp.Interval):
            raise ValueError(f"the KL ball is not an interval: {ball}")
        local = j_expr.subs({means[1 - agent]: point[1 - agent]}).subs(means[agent], mp)
        crit = sp.solveset(sp.diff(local, mp), mp, ball)
        candidates = [ball.start, ball.end] + (list(crit) if isinstance(crit, sp.FiniteSet) else [])
        values = [sp.simplify(local.subs(mp, c)) for c in candidates]
        top = max(values, key=lambda v: float(v))
        winners = [c for c, v in zip(candidates, values) if sp.simplify(v - top) == 0]
        return winners[0] if len(winners) == 1 else point[agent]  # a tie (flat objective): stay

    start = tuple(_exact(v) if isinstance(v, float) else sp.sympify(v) for v in mu0)
    simultaneous = (best_response(start, 0), best_response(start, 1))
    seq = list(start)
    path = []
    for agent in order:
        seq[agent] = best_response(seq, agent)
        path.append(tuple(seq))
    step = sp.solveset(kl.subs({m: 0, mp: x}) - delta, x, sp.Interval(0, sp.oo))
    return {
        "J": j_expr,
        "kl": kl,
        "step": step,
        "means": {"simultaneous": simultaneous, "sequential_1": path[0], "sequential_2": path[1]},
        "values": {
            "start": j_at(start),
            "simultaneous": j_at(simultaneous),
            "sequential_1": j_at(path[0]),
            "sequential_2": j_at(path[1]),
        },
    }


def a1a2_residuals(reward: Callable[[sp.Expr, sp.Expr], sp.Expr] = lambda a1, a2: a1 * a2) -> tuple[list[sp.Expr], float]:
    """Residuals of the §1.5 claims for ``reward``: ``KL - (m - m')^2/2``, the step set ``- {1}``, and the four
    table values; plus the float error of :class:`seqmarl.theory.games.ProductGaussianGame` against the exact
    means of both schemes."""
    out = gaussian_product_path(reward)
    m, mp = sp.symbols("m mprime", real=True)
    residuals = [sp.expand(out["kl"] - (m - mp) ** 2 / 2)]
    step = out["step"]
    residuals.append(sp.Integer(0) if step == sp.FiniteSet(1) else sp.Integer(1))
    residuals.extend(out["values"][k] - A1A2_TABLE[k] for k in A1A2_TABLE)
    library = games.ProductGaussianGame(sigma=1.0)
    mu0 = (-0.25, 0.25)
    sim = library.trust_region_step(mu0, 0.5, scheme="simultaneous")[0]
    seq = library.trust_region_step(mu0, 0.5, scheme="sequential", order=(0, 1))
    exact = out["means"]
    pairs = [(sim, exact["simultaneous"]), (seq[0], exact["sequential_1"]), (seq[1], exact["sequential_2"])]
    float_error = max(abs(float(a) - float(b)) for got, want in pairs for a, b in zip(got, want))
    return residuals, float_error


def run_a1a2(profile: Profile) -> CheckResult:
    residuals, float_error = a1a2_residuals()
    result = _result(
        residuals,
        "exact equalities (KL closed form, |dmu| = 1, J = -1/16, -9/16, 3/16, 15/16)",
        f"; ProductGaussianGame.trust_region_step float error {float_error:.1e}",
    )
    if float_error > 1e-12:
        result.passed = False
        result.worst_error = max(result.worst_error, float_error)
    return result


CHECKS = [
    Check(
        name="prop1_symbolic",
        claim=(
            "In the xor(n) game (n even) a shared policy has J_share(p) = 2 (p(1-p))^{n/2}, maximised only at the "
            "unique interior critical point p = 1/2, and J*_share / J* = 2^{1-n}"
        ),
        source="ICLR22 Proposition 1, theory.md §1.4",
        method="symbolic",
        run=run_prop1,
    ),
    Check(
        name="lemma1_symbolic",
        claim=(
            "For symbolic Q and product policies, A^{i_{1:m}}(s, a^{i_{1:m}}) = sum_j A^{i_j}(s, a^{i_{1:j-1}}, a^{i_j}) "
            "for every ordering, prefix and joint action"
        ),
        source="ICLR22 Lemma 1 (multi-agent advantage decomposition), theory.md §1.6",
        method="symbolic",
        run=run_lemma1,
    ),
    Check(
        name="happo_clip_identity",
        claim="min(rA, clip(r, 1-e, 1+e) A) = rA - ReLU((r - clip(r)) A) for every real r, A and e >= 0",
        source="HARL-JMLR HAPPO as a HAML instance, theory.md §2.2",
        method="symbolic",
        run=run_happo_clip,
    ),
    Check(
        name="permutation_entropy_symbolic",
        claim=(
            "sum_{k=1}^n log(n-k+1) = log n!; in the permutation game the uniform-optimal auto-regressive policy "
            "has conditional entropies log(n-k+1) and J = 1"
        ),
        source="Fu et al. (ICML22) permutation game, theory.md §3.3",
        method="symbolic",
        run=run_permutation_entropy,
    ),
    Check(
        name="vdn_ls_closed_form_symbolic",
        claim="The uniform-weight least-squares VDN fit of a payoff R is Rbar_a. + Rbar_.b - Rbar",
        source="theory.md §7.6 (DERIVED)",
        method="symbolic",
        run=run_vdn,
    ),
    Check(
        name="a1a2_closed_form",
        claim=(
            "In r(a1,a2) = a1 a2 with unit-variance Gaussians from mu = (-1/4, 1/4) and KL radius 1/2, the "
            "simultaneous trust-region step moves J from -1/16 to -9/16 and the sequential one to 3/16 then 15/16"
        ),
        source="ICLR22 Figure 1 / Sec. 2.3, theory.md §1.5",
        method="symbolic",
        run=run_a1a2,
    ),
]
