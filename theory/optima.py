"""Exact optima, Nash equilibria and maximum-entropy optimal policies of finite cooperative games.

Notation (theory.md §0): ``r[s, a]``, ``P[s, a, s']`` with ``a = (a^1, ..., a^n)`` the joint action,
``J(pi) = rho^0 . V_pi``. A cooperative Markov game seen with joint actions is an MDP (an MMDP), so

* ``J*`` (the joint optimum, over all joint policies) is the MDP optimum. It is attained by a deterministic
  stationary joint policy in the discounted case, found here by exact policy iteration
  (``V = (I - gamma P_a)^{-1} r_a`` by ``np.linalg.solve``, then greedy improvement). A deterministic joint policy
  ``s -> (a^1(s), ..., a^n(s))`` is also a product of deterministic per-agent policies, so the best *factorised*
  policy has the same value (theory.md §1.4: ``J*`` is "attained by a deterministic heterogeneous joint action").
* ``J*_share`` (theory.md §1.4, ICLR22 Prop. 1) restricts every agent to one common table ``p``:
  ``J(p) = sum_a r(a) prod_i p(a^i)`` on one state, a polynomial on the simplex.
* A product policy ``pi`` is a NE (ICLR22 Def. 3, theory.md §1.9) iff no agent gains by a unilateral change:
  agent ``i``'s best response with ``pi^{-i}`` fixed is a single-agent MDP with
  ``r_i(s, a^i) = E_{a^{-i} ~ pi^{-i}}[r(s, a)]`` and ``P_i(s'|s, a^i) = E_{a^{-i} ~ pi^{-i}}[P(s'|s, a)]``,
  solved exactly here; ``nash_gap = max_i (BR_i - J(pi))``.
* Maximum-entropy optimal policies (theory.md §3.3): among uniformly optimal policies (``V_pi = V*`` in every
  state), those supported on ``O_s = {a : Q*(s, a) >= V*(s) - tol}``.

Finite-horizon games (``game.horizon = H``): optimal policies are non-stationary in general, while every
``Policy`` here is stationary. :func:`joint_optimum` then reports the *non-stationary* optimum (backward
induction) as ``value`` and returns the best stationary decision rule it found as ``policy`` (see its docstring).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
from numpy.polynomial import Polynomial
from scipy import optimize

from .evaluate import _check_game, expected_return, occupancy, q_value
from .markov_game import MarkovGame
from .policies import AutoRegressive, Factorized, Joint, Policy, Shared, agent_tables

OPTIMAL_SET_TOL = 1e-9
"""Absolute tolerance of the optimal action sets ``O_s = {a : Q*(s,a) >= V*(s) - tol}``."""
NASH_TOL = 1e-12
"""A joint action is a pure NE when no deviation gains more than this."""
_PI_TOL = 1e-12
_MAX_PI_ITERATIONS = 100_000
_LETTERS = "abcdefghijklmnopqrtuvwxyABCDEFGHIJKLMNOPQRSTUVWXYZ"  # no 's' (states) nor 'z' (next state)


@dataclass(frozen=True)
class OptimumResult:
    """An optimum: ``value`` with a ``policy`` attaining it.

    ``certified_gap`` is a proven upper bound on ``(true optimum - value)`` (0 when exact, ``inf`` when the method
    is not certified). ``actions`` is the ``[S, n]`` int array of a deterministic optimiser (when there is one);
    ``schedule`` is the ``[H, S, n]`` non-stationary optimal decision rule of a finite-horizon game
    (``schedule[t]`` is used at step ``t``), else ``None``.
    """

    value: float
    policy: Policy
    certified_gap: float = 0.0
    detail: str = ""
    actions: np.ndarray | None = field(default=None, compare=False)
    schedule: np.ndarray | None = field(default=None, compare=False)


# --------------------------------------------------------------------------------------------------
# single-agent (or joint-action) MDP solvers
# --------------------------------------------------------------------------------------------------
def _policy_iteration(r: np.ndarray, p: np.ndarray, gamma: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Exact policy iteration on an MDP ``r[S, K]``, ``P[S, K, S]`` with discount ``gamma < 1``.

    Evaluate ``V_a = (I - gamma P_a)^{-1} r_a`` (linear solve), improve ``a(s) <- argmax_k Q(s, k)`` with
    ``Q = r + gamma P V``, switching only on a strict gain (``> 1e-12 (1 + |Q|)``) so the values increase
    strictly and the loop ends (finitely many deterministic policies). Returns ``(V*, Q*, a*)``.
    """
    n_states = r.shape[0]
    rows = np.arange(n_states)
    actions = r.argmax(axis=1)
    eye = np.eye(n_states)
    for _ in range(_MAX_PI_ITERATIONS):
        v = np.linalg.solve(eye - gamma * p[rows, actions], r[rows, actions])
        q = r + gamma * p @ v
        best = q.max(axis=1)
        improve = best > q[rows, actions] + _PI_TOL * (1.0 + np.abs(best))
        if not improve.any():
            return v, q, actions
        actions = np.where(improve, q.argmax(axis=1), actions)
    raise RuntimeError("policy iteration did not terminate")  # pragma: no cover - finite policy space


def _backward_induction(r: np.ndarray, p: np.ndarray, gamma: float, horizon: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``V_0 = 0``, ``Q_k = r + gamma P V_{k-1}``, ``V_k = max Q_k`` for ``k = 1..H``.

    Returns ``(V_H, Q_H, schedule[H, S])`` where ``schedule[t]`` is the greedy action with ``H - t`` steps to go.
    """
    v = np.zeros(r.shape[0])
    rules = []
    q = r
    for _ in range(horizon):
        q = r + gamma * p @ v
        rules.append(q.argmax(axis=1))
        v = q.max(axis=1)
    return v, q, np.array(rules[::-1], dtype=np.int64)


def _unflatten(flat: np.ndarray, n_actions: Sequence[int]) -> np.ndarray:
    """Flat joint-action indices (C order) -> ``[..., n]`` per-agent actions."""
    return np.stack(np.unravel_index(np.asarray(flat, dtype=np.int64), tuple(n_actions)), axis=-1).astype(np.int64)


def _optimal_q(game: MarkovGame) -> tuple[np.ndarray, np.ndarray]:
    """``(V* [S], Q* [S, A1..An])`` for the discounted game or a horizon-1 game (stationary optimum)."""
    r, p = game.reward_flat(), game.transition_flat()
    if game.horizon is None:
        v, q, _ = _policy_iteration(r, p, game.gamma)
    else:
        v, q, _ = _backward_induction(r, p, game.gamma, game.horizon)
    return v, q.reshape(game.reward.shape)


# --------------------------------------------------------------------------------------------------
# joint / factorised optimum
# --------------------------------------------------------------------------------------------------
def _best_stationary_rule(game: MarkovGame, schedule: np.ndarray) -> tuple[float, np.ndarray]:
    """Among the decision rules of a non-stationary schedule, the best one used as a stationary policy."""
    best_value, best_rule = -np.inf, schedule[0]
    for rule in np.unique(schedule, axis=0):
        policy = Joint.deterministic(_unflatten(rule, game.n_actions), game.n_actions)
        val = expected_return(game, policy)
        if val > best_value:
            best_value, best_rule = val, rule
    return float(best_value), best_rule


def joint_optimum(game: MarkovGame) -> OptimumResult:
    """``J* = max_pi J(pi)`` over all joint policies and an optimal deterministic joint policy (theory.md §0, §1.4).

    * One-shot games: ``J* = max_a r(a)`` (policy iteration with ``gamma = 0`` is exactly the argmax).
    * Discounted games: exact policy iteration over deterministic joint policies; ``value = rho^0 . V*`` with
      ``V* = (I - gamma P_{a*})^{-1} r_{a*}`` (a linear solve), so it is exact up to rounding.
    * Finite horizon ``H``: backward induction ``V_k = max_a [r + gamma P V_{k-1}]``, ``value = rho^0 . V_H`` is
      the optimum over *non-stationary* Markov policies, which upper-bounds every stationary policy and may exceed
      the best stationary one. ``schedule[t]`` holds the optimal decision rule at step ``t``; ``policy``/``actions``
      hold the best of those rules used as a stationary policy, whose own value is in ``detail``.

    Returns a :class:`Joint` policy; ``actions`` is the ``[S, n]`` array of its joint actions.
    """
    game = _check_game(game)
    r, p = game.reward_flat(), game.transition_flat()
    if game.horizon is None:
        v, _, flat = _policy_iteration(r, p, game.gamma)
        actions = _unflatten(flat, game.n_actions)
        kind = "one-shot argmax" if game.is_one_shot else "exact policy iteration"
        return OptimumResult(
            value=float(game.initial @ v),
            policy=Joint.deterministic(actions, game.n_actions),
            detail=f"{kind} over deterministic joint policies",
            actions=actions,
        )
    v, _, schedule_flat = _backward_induction(r, p, game.gamma, game.horizon)
    optimum = float(game.initial @ v)
    stationary_value, rule = _best_stationary_rule(game, schedule_flat)
    actions = _unflatten(rule, game.n_actions)
    return OptimumResult(
        value=optimum,
        policy=Joint.deterministic(actions, game.n_actions),
        detail=(
            f"backward induction over {game.horizon} steps: value is the non-stationary optimum; the returned "
            f"stationary policy (best step rule) has J = {stationary_value:.12g}"
        ),
        actions=actions,
        schedule=_unflatten(schedule_flat, game.n_actions),
    )


def factorized_optimum(game: MarkovGame) -> OptimumResult:
    """The best product policy ``prod_i pi^i``, returned as a deterministic :class:`Factorized`.

    An optimal deterministic joint policy ``s -> a*(s)`` is the product of the deterministic per-agent policies
    ``s -> a*^i(s)``, so for discounted (and one-shot) games ``max_{product} J = J*`` exactly
    (theory.md §1.4). For a finite-horizon game the best stationary step rule of backward induction is returned and
    ``certified_gap = J*_nonstationary - value`` (valid because no stationary product policy beats the
    non-stationary joint optimum); it is 0 whenever that rule attains the non-stationary optimum.
    """
    game = _check_game(game)
    joint = joint_optimum(game)
    policy = Factorized.deterministic(joint.actions, game.n_actions)
    if game.horizon is None:
        return OptimumResult(
            value=joint.value,
            policy=policy,
            detail="deterministic optimal joint policy = product of deterministic per-agent policies",
            actions=joint.actions,
        )
    val = expected_return(game, policy)
    return OptimumResult(
        value=val,
        policy=policy,
        certified_gap=max(0.0, joint.value - val),
        detail="finite horizon: best stationary step rule; gap bounded by the non-stationary optimum",
        actions=joint.actions,
        schedule=joint.schedule,
    )


# --------------------------------------------------------------------------------------------------
# shared-policy optimum
# --------------------------------------------------------------------------------------------------
def _single_state_scale(game: MarkovGame) -> float:
    """For ``S = 1`` a stationary policy earns ``r_pi`` every step: ``J = c r_pi`` with
    ``c = sum_{t<H} gamma^t`` (``1/(1-gamma)`` without horizon)."""
    if game.horizon is None:
        return 1.0 / (1.0 - game.gamma)
    if game.gamma == 1.0:
        return float(game.horizon)
    return float(sum(game.gamma**t for t in range(game.horizon)))


def _two_action_polynomial(coeffs: np.ndarray) -> Polynomial:
    """``J(p) = sum_k c_k p^k (1-p)^(n-k)`` in the power basis."""
    n = len(coeffs) - 1
    x, one_minus = Polynomial([0.0, 1.0]), Polynomial([1.0, -1.0])
    poly = Polynomial([0.0])
    for k, c in enumerate(coeffs):
        if c != 0.0:
            poly = poly + c * x**k * one_minus ** (n - k)
    return poly


def _two_action_candidates(poly: Polynomial) -> np.ndarray:
    """Candidate maximisers of ``J`` on [0, 1]: the endpoints and the real parts of the roots of ``J'`` that are
    real up to root-finding error (a root of multiplicity ``k`` is found to about ``eps^(1/k)``, where ``J`` moves
    by about ``eps^((k+1)/k)``), clipped to [0, 1]. Nothing else: the maximum of a polynomial on an interval is at
    an endpoint or a critical point, and :func:`_two_action_upper_bound` certifies the result independently."""
    deriv = poly.deriv()
    candidates = [np.array([0.0, 1.0])]
    if deriv.degree() >= 1 and np.any(deriv.coef != 0):
        roots = deriv.roots()
        near_real = roots[np.abs(roots.imag) <= 1e-3 * (1.0 + np.abs(roots))].real
        candidates.append(np.clip(near_real, 0.0, 1.0))
    return np.concatenate(candidates)


def _bernstein_value(coeffs: np.ndarray, p: np.ndarray) -> np.ndarray:
    """``J(p) = sum_k c_k p^k (1-p)^(n-k)`` evaluated directly (stable on [0, 1])."""
    n = len(coeffs) - 1
    k = np.arange(n + 1)
    p = np.asarray(p, dtype=np.float64)[..., None]
    return (coeffs * p**k * (1.0 - p) ** (n - k)).sum(axis=-1)


_BERNSTEIN_MAX_CELLS = 20_000


def _two_action_upper_bound(coeffs: np.ndarray, incumbent: float, tol: float) -> float:
    """A certified upper bound on ``max_{p in [0, 1]} sum_k c_k p^k (1-p)^(n-k)`` (``n = len(coeffs) - 1``).

    In the Bernstein basis ``J(p) = sum_k b_k B_{k,n}(p)`` with ``b_k = c_k / binom(n, k)``; the ``B_{k,n}`` are
    non-negative and sum to 1, so ``J <= max_k b_k`` on [0, 1], and on a sub-interval the same holds for the
    coefficients of ``J`` restricted to it, which de Casteljau's algorithm computes by convex combinations
    (numerically stable). Intervals whose bound exceeds ``incumbent + tol`` are bisected (the bound converges
    quadratically in the width); the result is the largest bound over the intervals discarded or left when
    ``_BERNSTEIN_MAX_CELLS`` intervals have been examined. Each bound carries a rounding slack
    ``4 eps (n + depth + 2) max_k |b_k|`` (each de Casteljau level adds at most ``eps max |b|`` per coefficient), so
    the bound is certified and strictly above a float evaluation of ``J``."""
    coeffs = np.asarray(coeffs, dtype=np.float64)
    n = len(coeffs) - 1
    b = coeffs / np.array([math.comb(n, k) for k in range(n + 1)], dtype=np.float64)
    size = float(np.max(np.abs(b)))
    eps = np.finfo(np.float64).eps
    stack: list[tuple[np.ndarray, int]] = [(b, 0)]
    bound, cells = -np.inf, 0
    while stack:
        coef, depth = stack.pop()
        cells += 1
        ub = float(np.max(coef)) + 4.0 * eps * (n + depth + 2) * size
        incumbent = max(incumbent, float(coef[0]), float(coef[-1]))  # the end coefficients are J at the ends
        if ub <= incumbent + tol or cells >= _BERNSTEIN_MAX_CELLS or n == 0:
            bound = max(bound, ub)
            continue
        # de Casteljau at the midpoint: left coefficients are the first entries of each level, right the last
        left, right = [coef[0]], [coef[-1]]
        level = coef
        for _ in range(n):
            level = 0.5 * (level[:-1] + level[1:])
            left.append(level[0])
            right.append(level[-1])
        stack.append((np.array(left), depth + 1))
        stack.append((np.array(right[::-1]), depth + 1))
    return bound


def _shared_two_actions(payoff: np.ndarray, tol: float = 1e-12) -> tuple[float, np.ndarray, float]:
    """Exact shared optimum with two actions (theory.md §1.4), with its certified gap.

    With ``p = P(action 0)``, ``J(p) = sum_k c_k p^k (1-p)^(n-k)`` where ``c_k`` sums ``r`` over the joint
    actions with exactly ``k`` zeros. ``J`` is a polynomial, so its maximum on [0, 1] is at an endpoint or a real
    root of ``J'`` (``numpy.polynomial``); the best candidate is polished by Newton steps on ``J'``. Returns
    ``(value, [p, 1-p], certified_gap)`` with ``certified_gap = U - value``, ``U`` the Bernstein upper bound of
    :func:`_two_action_upper_bound` (computed, never assumed: it is positive by its rounding slack).
    """
    n = payoff.ndim
    zeros = n - np.indices(payoff.shape).sum(axis=0)
    coeffs = np.bincount(zeros.ravel(), weights=payoff.ravel(), minlength=n + 1)
    poly = _two_action_polynomial(coeffs)
    candidates = _two_action_candidates(poly)
    values = _bernstein_value(coeffs, candidates)
    p = float(candidates[int(np.argmax(values))])
    best = float(values.max())
    # Newton polish of an interior critical point (only kept when it does not lower J)
    d1, d2 = poly.deriv(), poly.deriv(2)
    q = p
    for _ in range(8):
        if not 0.0 < q < 1.0 or d2(q) == 0.0:
            break
        q = q - d1(q) / d2(q)
    if 0.0 <= q <= 1.0:
        polished = float(_bernstein_value(coeffs, np.array(q)))
        if polished >= best:
            p, best = q, polished
    upper = _two_action_upper_bound(coeffs, best, tol)
    return best, np.array([p, 1.0 - p]), max(0.0, upper - best)


def _is_symmetric(tensor: np.ndarray) -> bool:
    """Invariance under swapping axes 0, 1 and under the cyclic shift (these two generate every permutation)."""
    n = tensor.ndim
    swap = (1, 0) + tuple(range(2, n))
    cycle = tuple(range(1, n)) + (0,)
    return bool(np.array_equal(tensor, np.transpose(tensor, swap)) and np.array_equal(tensor, np.transpose(tensor, cycle)))


class _SymmetricPolynomial:
    """``J(p) = sum_a r(a) prod_i p(a^i)`` on the simplex, batched over points ``P [C, m]``.

    ``grad_j(p) = dJ/dp_j = sum_i E_{a^{-i} ~ p}[r(a^i = j, a^{-i})] = E_{b ~ p^{n-1}}[R1(j, b)]`` with
    ``R1 = sum_i moveaxis(r, i, 0)``; Euler's identity for the degree-n homogeneous ``J`` gives
    ``J(p) = grad(p) . p / n``.
    """

    def __init__(self, payoff: np.ndarray):
        self.n = payoff.ndim
        self.m = payoff.shape[0]
        self.r1 = sum(np.moveaxis(payoff, i, 0) for i in range(self.n))
        self.chunk = max(1, int(4_000_000 // max(1, self.m ** (self.n - 1))))
        # J only sees the agent-symmetrised tensor (p is shared); symmetrising tightens the Bernstein bound
        self.r_sym = payoff
        if self.n > 1 and not _is_symmetric(payoff) and math.factorial(self.n) * payoff.size <= 50_000_000:
            perms = list(itertools.permutations(range(self.n)))
            self.r_sym = sum(np.transpose(payoff, perm) for perm in perms) / len(perms)
        self.bernstein_chunk = max(1, int(4_000_000 // payoff.size))

    def grad(self, points: np.ndarray) -> np.ndarray:
        points = np.atleast_2d(points)
        out = np.empty_like(points)
        for start in range(0, points.shape[0], self.chunk):
            block = points[start : start + self.chunk]
            if self.n == 1:
                out[start : start + len(block)] = self.r1[None, :]
                continue
            x = self.r1.reshape(-1, self.m) @ block.T  # contract the last agent's axis -> [m^{n-1}, C]
            for _ in range(self.n - 2):
                x = np.einsum("xkc,ck->xc", x.reshape(-1, self.m, x.shape[-1]), block)
            out[start : start + len(block)] = x.T
        return out

    def value_and_grad(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        g = self.grad(points)
        return (g * np.atleast_2d(points)).sum(axis=1) / self.n, g

    def bernstein_bound(self, cells: np.ndarray) -> np.ndarray:
        """``max_{k_1..k_n} T[k]`` with ``T[k] = sum_a r_sym(a) prod_i V_{k_i}(a^i)`` for cells ``[C, m, m]``.

        On a cell ``p = sum_k w_k V_k`` (``w`` barycentric), ``J(p) = sum_{k_1..k_n} w_{k_1}...w_{k_n} T[k]``,
        a convex combination of the entries of ``T`` (the weights are a product of probability vectors), so
        ``J <= max T`` on the cell.
        """
        out = np.empty(cells.shape[0])
        size = self.r_sym.size
        for start in range(0, cells.shape[0], self.bernstein_chunk):
            block = cells[start : start + self.bernstein_chunk]
            x = np.broadcast_to(self.r_sym.reshape(1, self.m, -1), (len(block), self.m, size // self.m))
            for _ in range(self.n):
                # contract the leading agent axis with the vertices, then rotate it to the end
                y = np.matmul(x.transpose(0, 2, 1), block.transpose(0, 2, 1))  # [C, rest, k]
                x = y.reshape(len(block), self.m, -1)
            out[start : start + len(block)] = x.reshape(len(block), -1).max(axis=1)
        return out


def _polish_simplex(poly: _SymmetricPolynomial, start: np.ndarray) -> tuple[float, np.ndarray]:
    """Local refinement (SLSQP on the simplex) of ``J``; the returned point is feasible and its value exact."""
    m = start.shape[0]
    res = optimize.minimize(
        lambda x: -poly.value_and_grad(x)[0][0],
        start,
        jac=lambda x: -poly.grad(x)[0],
        method="SLSQP",
        bounds=[(0.0, 1.0)] * m,
        constraints=[{"type": "eq", "fun": lambda x: x.sum() - 1.0, "jac": lambda x: np.ones_like(x)}],
        options={"ftol": 1e-15, "maxiter": 200},
    )
    x = np.clip(res.x, 0.0, None)
    x = x / x.sum()
    return float(poly.value_and_grad(x)[0][0]), x


def _cell_bounds(
    poly: _SymmetricPolynomial, cells: np.ndarray, values: np.ndarray, grads: np.ndarray, span: float
) -> np.ndarray:
    """The three upper bounds of :func:`_shared_branch_and_bound` on ``max_cell J`` for cells ``[C, m, m]``
    (``values``/``grads`` at the centroids): rows Lipschitz, curvature, Bernstein; shape ``[3, C]``."""
    n = poly.n
    centroids = cells.mean(axis=1)
    offsets = cells - centroids[:, None, :]
    radius = np.abs(offsets).sum(axis=2).max(axis=1)
    linear = np.einsum("ckm,cm->ck", offsets, grads).max(axis=1)
    lipschitz = values + (n * span / 2.0) * radius
    curvature = values + linear + (n * (n - 1) * span / 4.0) * radius**2
    return np.stack([lipschitz, curvature, poly.bernstein_bound(cells)])


def _shared_branch_and_bound(payoff: np.ndarray, tol: float, max_cells: int) -> tuple[float, np.ndarray, float, int]:
    """Certified global maximum of ``J(p) = sum_a r(a) prod_i p(a^i)`` over the simplex ``Delta_m`` (m >= 3).

    Bounds (``d = x - c`` with ``sum d = 0``, ``span = max r - min r``):

    * ``grad_j(xi)`` lies in ``[n min r, n max r]`` (a sum of ``n`` expectations of rewards), and
      ``|g . d| <= (max_j g_j - min_j g_j) ||d||_1 / 2`` when ``sum d = 0``, so
      ``|J(x) - J(c)| <= L ||x - c||_1`` with ``L = n span / 2`` (l1-Lipschitz on the simplex).
    * ``d^T H(xi) d = sum_{i != l} d^T A^{il} d`` where ``A^{il}_{jk} = E_xi[r | a^i = j, a^l = k]`` lies in
      ``[min r, max r]``; subtracting the mid-range constant (which ``sum d = 0`` annihilates) gives
      ``|d^T A^{il} d| <= span ||d||_1^2 / 2``, so Taylor's theorem gives
      ``J(x) <= J(c) + g(c) . d + M ||d||_1^2`` with ``M = n (n - 1) span / 4``.

    For a cell (a sub-simplex with vertices ``V_k`` and centroid ``c``), ``||x - c||_1 <= rho = max_k ||V_k - c||_1``
    and the linear term is maximised at a vertex, so
    ``max_cell J <= J(c) + min(L rho, max_k g(c) . (V_k - c) + M rho^2)``.

    * Bernstein (tensor) bound, usually the tightest: with barycentric ``x = sum_k w_k V_k``,
      ``J(x) = sum_{k_1..k_n} w_{k_1} ... w_{k_n} T[k_1..k_n]`` with ``T = r_sym`` contracted with the vertices on
      every axis; the weights form a probability distribution, so ``max_cell J <= max T``
      (:meth:`_SymmetricPolynomial.bernstein_bound`; it converges to ``J`` as the cells shrink).

    The bound of a cell is the smallest of the three, plus a rounding slack ``8 eps (|A| + n)(1 + max|r|)``
    (a sum of ``|A|`` products). Cells whose bound is within ``tol`` of the incumbent are discarded, the others are
    bisected along their longest edge; the incumbent is improved by SLSQP from the best centroids. Returns
    ``(value, p, certified_gap, cells evaluated)`` with ``certified_gap = max bound over all discarded or remaining
    cells - value`` (>= 0).
    """
    poly = _SymmetricPolynomial(payoff)
    n, m = poly.n, poly.m
    span = float(payoff.max() - payoff.min())
    slack = 8 * np.finfo(float).eps * (payoff.size + n) * (1.0 + float(np.abs(payoff).max()))

    # incumbent: the pure vertices (J = r(j, ..., j)), the uniform point, and SLSQP from the best of them
    best_value, best_p = -np.inf, None
    starts = [np.full(m, 1.0 / m)] + list(np.eye(m))
    for s in starts:
        val = float(poly.value_and_grad(s)[0][0])
        if val > best_value:
            best_value, best_p = val, s
    for s in (np.full(m, 1.0 / m), best_p):
        val, x = _polish_simplex(poly, s)
        if val > best_value:
            best_value, best_p = val, x

    cells = np.eye(m)[None, :, :]  # [C, m vertices, m coords]
    discarded_bound = -np.inf
    evaluated = 0
    level = 0
    while cells.shape[0]:
        centroids = cells.mean(axis=1)
        values, grads = poly.value_and_grad(centroids)
        evaluated += cells.shape[0]
        top = int(np.argmax(values))
        if values[top] > best_value:
            best_value, best_p = float(values[top]), centroids[top]
        if level % 6 == 5:
            val, x = _polish_simplex(poly, centroids[top])
            if val > best_value:
                best_value, best_p = val, x
        bound = np.min(_cell_bounds(poly, cells, values, grads, span), axis=0) + slack
        keep = bound > best_value + tol
        if np.any(~keep):
            discarded_bound = max(discarded_bound, float(bound[~keep].max()))
        cells = cells[keep]
        if not cells.shape[0] or evaluated >= max_cells:
            break
        # bisect every surviving cell along its longest (l1) edge
        dist = np.abs(cells[:, :, None, :] - cells[:, None, :, :]).sum(axis=3)
        flat = dist.reshape(cells.shape[0], -1).argmax(axis=1)
        k, l = np.unravel_index(flat, (m, m))
        rows = np.arange(cells.shape[0])
        mid = 0.5 * (cells[rows, k] + cells[rows, l])
        left, right = cells.copy(), cells.copy()
        left[rows, l] = mid
        right[rows, k] = mid
        cells = np.concatenate([left, right])
        level += 1
    remaining = float(bound[keep].max()) if cells.shape[0] else -np.inf
    gap = max(0.0, max(discarded_bound, remaining) - best_value)
    return best_value, np.asarray(best_p, dtype=np.float64), gap, evaluated


def _stationary_gradient(game: MarkovGame, joint: np.ndarray) -> np.ndarray:
    """``dJ/dpi(a|s)`` of a stationary joint table (direct parametrisation), ``[S, A1..An]``.

    Discounted: ``rho_pi(s) Q_pi(s, a)``. Finite horizon: ``sum_{t<H} d_t(s) Q_{H-t}(s, a)`` with
    ``d_0 = rho^0``, ``d_{t+1} = gamma P_pi^T d_t`` and ``Q_k = r + gamma P V_{k-1}``, ``V_k = r_pi + gamma P_pi V_{k-1}``.
    """
    shape = (-1,) + (1,) * game.n_agents
    if game.horizon is None:
        return occupancy(game, joint).reshape(shape) * q_value(game, joint)
    r, p = game.reward_flat(), game.transition_flat()
    pi = joint.reshape(game.n_states, -1)
    p_pi = np.einsum("sa,sat->st", pi, p)
    r_pi = (pi * r).sum(axis=1)
    values = [np.zeros(game.n_states)]
    for _ in range(game.horizon - 1):
        values.append(r_pi + game.gamma * p_pi @ values[-1])
    grad = np.zeros_like(r)
    d = game.initial.copy()
    for t in range(game.horizon):
        grad += d[:, None] * (r + game.gamma * p @ values[game.horizon - t - 1])
        d = game.gamma * p_pi.T @ d
    return grad.reshape(game.reward.shape)


def _contract_all_but(tensor: np.ndarray, tables: Sequence[np.ndarray], keep: int, trailing: bool = False) -> np.ndarray:
    """Contract ``tensor[S, A1..An(, S')]`` with ``tables[j][S, A_j]`` over every agent ``j != keep``."""
    n = len(tables)
    if n > len(_LETTERS):
        raise ValueError(f"at most {len(_LETTERS)} agents are supported, got {n}")
    tail = "z" if trailing else ""
    operands: list[np.ndarray] = [tensor]
    subscripts = ["s" + _LETTERS[:n] + tail]
    for j in range(n):
        if j != keep:
            operands.append(tables[j])
            subscripts.append("s" + _LETTERS[j])
    return np.einsum(",".join(subscripts) + "->s" + _LETTERS[keep] + tail, *operands, optimize=True)


def _shared_multi_state(game: MarkovGame, rng: np.random.Generator, n_starts: int) -> tuple[float, np.ndarray, int]:
    """Multi-start SLSQP over one ``[S, m]`` table shared by all agents (not certified).

    Objective ``J(Shared(p))`` by exact evaluation; gradient by the chain rule through
    ``pi(a|s) = prod_i p(s, a^i)``: ``dJ/dp(s, j) = sum_i E_{a^{-i}}[D(s, a^i = j, a^{-i})]`` with
    ``D = dJ/dpi`` from :func:`_stationary_gradient`.
    """
    n, m, n_states = game.n_agents, game.n_actions[0], game.n_states

    def split(x: np.ndarray) -> np.ndarray:
        return np.clip(x.reshape(n_states, m), 0.0, None)

    def objective(x: np.ndarray) -> float:
        return -expected_return(game, Shared(_normalise(split(x)), n))

    def gradient(x: np.ndarray) -> np.ndarray:
        table = _normalise(split(x))
        tables = [table] * n
        d = _stationary_gradient(game, Shared(table, n).probs())
        return -sum(_contract_all_but(d, tables, i) for i in range(n)).ravel()

    eq = np.kron(np.eye(n_states), np.ones((1, m)))
    constraint = {"type": "eq", "fun": lambda x: eq @ x - 1.0, "jac": lambda x: eq}
    starts = [np.full((n_states, m), 1.0 / m)] + [rng.dirichlet(np.ones(m), size=n_states) for _ in range(n_starts)]
    best_value, best_table = -np.inf, starts[0]
    for start in starts:
        res = optimize.minimize(
            objective, start.ravel(), jac=gradient, method="SLSQP", bounds=[(0.0, 1.0)] * (n_states * m),
            constraints=[constraint], options={"ftol": 1e-14, "maxiter": 500},
        )
        table = _normalise(split(res.x))
        val = expected_return(game, Shared(table, n))
        if val > best_value:
            best_value, best_table = val, table
    return float(best_value), best_table, len(starts)


def _normalise(table: np.ndarray) -> np.ndarray:
    return table / table.sum(axis=-1, keepdims=True)


def shared_optimum(
    game: MarkovGame,
    *,
    tol: float = 1e-9,
    max_cells: int | None = None,
    rng: np.random.Generator | None = None,
    n_starts: int = 8,
) -> OptimumResult:
    """``J*_share = max_p J(Shared(p))``: the best single table used by every agent (theory.md §1.4, ICLR22 Prop. 1).

    Needs equal action counts (``ValueError`` otherwise). One state (any ``gamma``/horizon: ``J = c r_p`` with
    ``c = sum_{t<H} gamma^t``), ``J(p) = c sum_a r(a) prod_i p(a^i)``:

    * ``m = 2`` actions — exact: ``J(p) = sum_k c_k p^k (1-p)^(n-k)`` with ``p = P(action 0)``; maximised over the
      real roots of ``J'`` in [0, 1] and the endpoints; ``certified_gap`` is a Bernstein-basis upper bound minus
      the value (positive: it includes the rounding slack; about 1e-15 relative).
    * ``m >= 3`` — certified branch and bound over the simplex with the bounds derived in
      :func:`_shared_branch_and_bound`: ``l1``-Lipschitz ``|dJ| <= n span/2 ||dp||_1``, curvature
      ``|d^2 J| <= n(n-1) span/2 ||dp||_1^2`` (``span = max r - min r``) and the Bernstein bound
      ``J <= max_k T[k]`` on each sub-simplex; local SLSQP refinement supplies the incumbent.
      ``certified_gap`` is the proven bound: ``<= tol`` unless the budget ran out. ``max_cells`` (default: about
      ``3e9`` flops worth of cells, between 1 000 and 400 000) caps the work; the search is fast when the maximiser
      lies on a low-dimensional face and slowest for interior maximisers in high dimension
      (e.g. ``permutation(5)`` about 12 000 cells).
    * ``m = 1``: the only policy.

    Several states: multi-start SLSQP (``n_starts`` random starts from ``rng``, default
    ``numpy.random.default_rng(0)``, plus the uniform table). This is a local method: ``certified_gap = inf`` and
    ``detail`` says it is not certified.
    """
    game = _check_game(game)
    if len(set(game.n_actions)) != 1:
        raise ValueError(f"a shared policy needs every agent to have the same number of actions, got {game.n_actions}")
    if not (isinstance(tol, (int, float)) and np.isfinite(tol) and tol > 0):
        raise ValueError(f"tol must be a positive finite number, got {tol!r}")
    if max_cells is not None and (
        isinstance(max_cells, bool) or not isinstance(max_cells, (int, np.integer)) or max_cells < 1
    ):
        raise ValueError(f"max_cells must be a positive integer or None, got {max_cells!r}")
    if isinstance(n_starts, bool) or not isinstance(n_starts, (int, np.integer)) or n_starts < 0:
        raise ValueError(f"n_starts must be a non-negative integer, got {n_starts!r}")
    if rng is not None and not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator or None, got {type(rng).__name__}")
    n, m = game.n_agents, game.n_actions[0]
    if game.n_states > 1:
        rng = np.random.default_rng(0) if rng is None else rng
        val, table, starts = _shared_multi_state(game, rng, int(n_starts))
        return OptimumResult(
            value=val,
            policy=Shared(table, n),
            certified_gap=float("inf"),
            detail=f"not certified: multi-start SLSQP ({starts} starts) over a per-state shared table",
        )
    scale = _single_state_scale(game)
    payoff = game.reward[0]
    if m == 1:
        val, p, gap, detail = float(payoff.ravel()[0]), np.ones(1), 0.0, "one action: the only policy"
    elif m == 2:
        val, p, gap = _shared_two_actions(payoff, min(float(tol), 1e-12))
        detail = (f"exact: endpoints and real roots of J'(p) (numpy.polynomial); certified gap {gap:.3g} "
                  "(Bernstein bound)")
    else:
        if max_cells is None:
            max_cells = min(400_000, max(1_000, int(3e9 // (m ** (n + 1) * n))))
        val, p, gap, cells = _shared_branch_and_bound(payoff, float(tol), int(max_cells))
        detail = f"branch and bound over the simplex ({cells} cells), certified gap {gap:.3g}"
    policy = Shared(p[None, :], n)
    return OptimumResult(value=scale * val, policy=policy, certified_gap=scale * gap, detail=detail)


# --------------------------------------------------------------------------------------------------
# Nash equilibria
# --------------------------------------------------------------------------------------------------
def pure_nash_equilibria(game: MarkovGame) -> list[tuple[int, ...]]:
    """Every pure NE of a one-shot game (ICLR22 Def. 3, theory.md §1.9, §8): joint actions ``a`` with
    ``r(a) >= max_{b} r(b, a^{-i}) - 1e-12`` for every agent ``i`` (vectorised over joint actions), sorted."""
    game = _check_game(game)
    if not game.is_one_shot:
        raise ValueError(f"pure_nash_equilibria needs a one-shot game (one state, gamma = 0 or horizon = 1), got {game!r}")
    payoff = game.reward[0]
    stable = np.ones(payoff.shape, dtype=bool)
    for axis in range(payoff.ndim):
        stable &= payoff >= payoff.max(axis=axis, keepdims=True) - NASH_TOL
    return [tuple(int(x) for x in a) for a in np.argwhere(stable)]


def _product_tables(game: MarkovGame, pi: Policy | Sequence[np.ndarray]) -> list[np.ndarray]:
    tables = agent_tables(pi)
    if len(tables) != game.n_agents or any(t.shape != (game.n_states, a) for t, a in zip(tables, game.n_actions)):
        raise ValueError(
            f"pi must hold one [S, A_i] table per agent matching the game ({game.n_states} states, actions "
            f"{game.n_actions}), got {[t.shape for t in tables]}"
        )
    return tables


def _check_agent(agent: object, n_agents: int) -> int:
    if isinstance(agent, bool) or not isinstance(agent, (int, np.integer)):
        raise TypeError(f"agent must be an integer, got {type(agent).__name__}")
    if not 0 <= agent < n_agents:
        raise ValueError(f"agent must be in [0, {n_agents}), got {agent}")
    return int(agent)


def _best_response(game: MarkovGame, tables: Sequence[np.ndarray], agent: int) -> float:
    r_i = _contract_all_but(game.reward, tables, agent)
    p_i = _contract_all_but(game.transition, tables, agent, trailing=True)
    if game.horizon is None:
        v, _, _ = _policy_iteration(r_i, p_i, game.gamma)
    else:
        v, _, _ = _backward_induction(r_i, p_i, game.gamma, game.horizon)
    return float(game.initial @ v)


def best_response_value(game: MarkovGame, pi: Policy | Sequence[np.ndarray], agent: int) -> float:
    """``max_{pi'^i} J(pi'^i, pi^{-i})`` for a product policy ``pi`` (Factorized/Shared or per-agent tables).

    With ``pi^{-i}`` fixed, agent ``i`` faces the MDP ``r_i(s, a^i) = E_{a^{-i}}[r(s, a)]``,
    ``P_i(s'|s, a^i) = E_{a^{-i}}[P(s'|s, a)]`` (theory.md §1.9), solved exactly: policy iteration with linear
    solves (discounted/one-shot) or backward induction (finite horizon, where the best response may be
    non-stationary, so it upper-bounds the best stationary response).
    """
    game = _check_game(game)
    tables = _product_tables(game, pi)
    return _best_response(game, tables, _check_agent(agent, game.n_agents))


def nash_gap(game: MarkovGame, pi: Policy | Sequence[np.ndarray]) -> float:
    """``max_i (BR_i(pi^{-i}) - J(pi))`` (theory.md §1.9); ``>= 0`` up to rounding, ``0`` exactly at a NE."""
    game = _check_game(game)
    tables = _product_tables(game, pi)
    j = expected_return(game, Factorized(tables))
    return max(_best_response(game, tables, i) for i in range(game.n_agents)) - j


def is_epsilon_nash(game: MarkovGame, pi: Policy | Sequence[np.ndarray], eps: float) -> bool:
    """``nash_gap(game, pi) <= eps`` (an eps-NE, theory.md §1.9 step 3); ``eps >= 0``."""
    if isinstance(eps, bool) or not isinstance(eps, (int, float, np.floating, np.integer)):
        raise TypeError(f"eps must be a real number, got {type(eps).__name__}")
    if not np.isfinite(eps) or eps < 0:
        raise ValueError(f"eps must be a finite number >= 0, got {eps}")
    return nash_gap(game, pi) <= eps


# --------------------------------------------------------------------------------------------------
# maximum-entropy optimal policies
# --------------------------------------------------------------------------------------------------
def optimal_action_sets(game: MarkovGame, tol: float = OPTIMAL_SET_TOL) -> np.ndarray:
    """``O_s = {a : Q*(s, a) >= V*(s) - tol}`` as a bool array ``[S, A1..An]`` (one-shot: ``argmax r``).

    A policy is optimal in every state (``V_pi = V*``) iff it is supported on ``O_s`` in every state:
    ``V*(s) = sum_a pi(a|s) Q*(s, a)`` holds iff ``pi(.|s)`` only uses maximisers. Defined for discounted and
    horizon-1 games; ``ValueError`` for longer horizons (stationary optimal policies need not exist there).
    """
    game = _check_game(game)
    if not (np.isfinite(tol) and tol >= 0):
        raise ValueError(f"tol must be a finite number >= 0, got {tol}")
    if game.horizon is not None and game.horizon > 1:
        raise ValueError(
            f"optimal action sets of a stationary policy need a discounted or one-shot game, got horizon={game.horizon}"
        )
    v, q = _optimal_q(game)
    return q >= v.reshape((-1,) + (1,) * game.n_agents) - tol


def _max_product_support(mask: np.ndarray) -> list[np.ndarray]:
    """Subsets ``S_1, ..., S_n`` with ``S_1 x ... x S_n`` inside ``mask`` maximising ``sum_i log |S_i|`` (exact).

    Depth-first over agents; agent ``k``'s candidate subsets are grown element by element and kept only while the
    conjunction ``M[S] = AND_{a in S} M[a]`` over the remaining agents is non-empty (monotone, so this lists every
    feasible subset); the last agent takes every allowed action. A branch is cut when
    ``score + sum_{j >= k} log(#{a^j used in M})`` cannot beat the incumbent. The problem contains
    maximum-biclique search (n = 2), so the worst case is exponential in the action counts; the oracle games
    (permutation n <= 7, random masks up to 5^4) take well under a second.
    """
    n = mask.ndim
    best: dict[str, object] = {"score": -np.inf, "sets": None}

    def feasible_subsets(m: np.ndarray) -> list[tuple[tuple[int, ...], np.ndarray]]:
        out: list[tuple[tuple[int, ...], np.ndarray]] = []

        def grow(start: int, chosen: tuple[int, ...], acc: np.ndarray | None) -> None:
            for a in range(start, m.shape[0]):
                nxt = m[a] if acc is None else acc & m[a]
                if nxt.any():
                    out.append((chosen + (a,), nxt))
                    grow(a + 1, chosen + (a,), nxt)

        grow(0, (), None)
        out.sort(key=lambda item: -len(item[0]))
        return out

    def bound(m: np.ndarray) -> float:
        total = 0.0
        for axis in range(m.ndim):
            used = m.any(axis=tuple(j for j in range(m.ndim) if j != axis)) if m.ndim > 1 else m
            total += math.log(int(used.sum()))
        return total

    def dfs(m: np.ndarray, score: float, chosen: list[tuple[int, ...]]) -> None:
        if score + bound(m) <= best["score"] + 1e-12:
            return
        if m.ndim == 1:
            last = tuple(int(a) for a in np.flatnonzero(m))
            best["score"], best["sets"] = score + math.log(len(last)), chosen + [last]
            return
        for subset, rest in feasible_subsets(m):
            dfs(rest, score + math.log(len(subset)), chosen + [subset])

    dfs(mask, 0.0, [])
    return [np.array(s, dtype=np.int64) for s in best["sets"]]  # type: ignore[union-attr]


def max_entropy_optimal(game: MarkovGame, kind: str, *, order: Sequence[int] | None = None, tol: float = OPTIMAL_SET_TOL) -> Policy:
    """The maximum-joint-entropy policy among policies optimal in every state (theory.md §3.3).

    With ``O_s`` from :func:`optimal_action_sets`:

    * ``kind="autoregressive"``: the uniform distribution on ``O_s`` (entropy ``log |O_s|``, the largest possible
      for a distribution on ``O_s``) factorised by the chain rule in ``order`` (default identity) with
      :meth:`AutoRegressive.from_joint`. Permutation game: ``H = log n!`` with conditional entropies
      ``log(n - k + 1)``.
    * ``kind="factorized"``: a product policy is optimal iff its support ``S_1 x ... x S_n`` lies in ``O_s``, and
      ``H = sum_i H(pi^i) <= sum_i log |S_i|`` with equality for uniform ``pi^i`` on ``S_i``; so an exact search
      (:func:`_max_product_support`) for the feasible product set maximising ``sum_i log |S_i|`` per state, uniform on
      each ``S_i``. Permutation game: every optimal product policy is deterministic (``H = 0``).
    """
    game = _check_game(game)
    if kind not in ("factorized", "autoregressive"):
        raise ValueError(f"kind must be 'factorized' or 'autoregressive', got {kind!r}")
    if kind == "factorized" and order is not None:
        raise ValueError("order only applies to kind='autoregressive'")
    mask = optimal_action_sets(game, tol)
    if kind == "autoregressive":
        order = tuple(range(game.n_agents)) if order is None else order
        joint = mask / mask.reshape(game.n_states, -1).sum(axis=1).reshape((-1,) + (1,) * game.n_agents)
        return AutoRegressive.from_joint(joint, order)
    tables = [np.zeros((game.n_states, a)) for a in game.n_actions]
    for s in range(game.n_states):
        for i, subset in enumerate(_max_product_support(mask[s])):
            tables[i][s, subset] = 1.0 / len(subset)
    return Factorized(tables)


__all__ = [
    "OptimumResult",
    "joint_optimum",
    "factorized_optimum",
    "shared_optimum",
    "pure_nash_equilibria",
    "best_response_value",
    "nash_gap",
    "is_epsilon_nash",
    "optimal_action_sets",
    "max_entropy_optimal",
    "OPTIMAL_SET_TOL",
    "NASH_TOL",
]
