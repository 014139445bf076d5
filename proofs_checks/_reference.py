"""Independent reference computations for the theorem checks (not a check module: the registry skips ``_*``).

The rows of ``seqmarl verify`` compare :mod:`seqmarl.theory` against these, so a wrong formula in ``theory/`` (a
wrong penalty constant, occupancy, KL direction or solver) shows up as a disagreement instead of being shared by
the code under test and its check. Nothing here imports :mod:`seqmarl.theory.evaluate`, ``multiagent``,
``bounds``, ``iteration`` or ``trust_region``; only the :class:`MarkovGame` container is shared.

* :func:`evaluate` — exact ``V, Q, A, rho, J`` of a product policy (theory.md §0) from the joint table built by
  explicit outer products and two ``scipy.linalg.solve`` calls.
* :func:`conditional_gain` — ``g_s(a) = E_{a^{prev} ~ pibar^{prev}}[A^{i}_pi(s, a^{prev}, a)]`` (ICLR22 eq. 1,
  Def. 2) as ``E[Q | a^i = a] - E[Q]`` under the mixed product (new predecessors, old others).
* KKT certificates of the per-agent programs of theory.md §1.9-§1.11 and §2.3 (``*_kkt``): each returns the
  largest *relative* violation of the optimality conditions of the program it is told (its own data), so a step
  that solves a different program (another ``C``, ``rho``, radius or KL direction), a no-op or a random table is
  reported as a large residual.
* :func:`kl_program_cvxpy`, :func:`solve_happo_lp_highs` — generic reference solvers (exponential cone, LP) for
  cross-checks of :mod:`seqmarl.theory.trust_region` in the tests (about 1e-8 accurate).
* :func:`happo_row_optimum` — exact maximum of the clipped HAPPO objective of one state by the greedy
  (fractional-knapsack) solution of a separable concave piecewise-linear program.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import scipy.linalg
import scipy.sparse as sp
from scipy.optimize import linprog

from seqmarl.theory.markov_game import MarkovGame

FLAT = 1e-10
"""A row whose gains spread by at most ``FLAT max(1, max|Q|)`` is one where the agent is (numerically) indifferent."""


@dataclass(frozen=True)
class Evaluation:
    """Exact quantities of a product policy: ``v [S]``, ``q [S, A1..An]``, ``adv = q - v``, improper ``rho [S]``
    (sums to ``1/(1-gamma)``), ``j = rho^0 . v`` and the joint table ``joint [S, A1..An]``."""

    v: np.ndarray
    q: np.ndarray
    adv: np.ndarray
    rho: np.ndarray
    j: float
    joint: np.ndarray


def joint_table(tables: Sequence[np.ndarray]) -> np.ndarray:
    """``pi(a|s) = prod_i pi^i(a^i|s)`` as ``[S, A1, ..., An]`` by successive outer products."""
    out = np.asarray(tables[0], dtype=np.float64)
    for t in tables[1:]:
        t = np.asarray(t, dtype=np.float64)
        out = out[..., None] * t.reshape((t.shape[0],) + (1,) * (out.ndim - 1) + (t.shape[1],))
    return out


def evaluate(game: MarkovGame, tables: Sequence[np.ndarray]) -> Evaluation:
    """theory.md §0 for the infinite-horizon discounted objective (``horizon`` must be ``None``)."""
    if game.horizon is not None:
        raise ValueError(f"game must be an infinite-horizon discounted game for the reference, got horizon={game.horizon}")
    n_states = game.n_states
    joint = joint_table(tables)
    pj = joint.reshape(n_states, -1)
    reward = np.asarray(game.reward, dtype=np.float64).reshape(n_states, -1)
    trans = np.asarray(game.transition, dtype=np.float64).reshape(n_states, -1, n_states)
    r_pi = np.sum(pj * reward, axis=1)
    p_pi = np.sum(pj[:, :, None] * trans, axis=1)
    system = np.eye(n_states) - game.gamma * p_pi
    v = scipy.linalg.solve(system, r_pi)
    rho = scipy.linalg.solve(system.T, np.asarray(game.initial, dtype=np.float64))
    q = (reward + game.gamma * trans @ v).reshape(game.reward.shape)
    adv = q - v.reshape((-1,) + (1,) * game.n_agents)
    return Evaluation(v=v, q=q, adv=adv, rho=rho, j=float(np.dot(game.initial, v)), joint=joint)


def penalty_constant(game: MarkovGame, ev: Evaluation) -> float:
    """``C = 4 gamma max_{s,a} |A_pi(s, a)| / (1 - gamma)^2`` (ICLR22 eq. 2, theory.md §1.3)."""
    return 4.0 * game.gamma * float(np.max(np.abs(ev.adv))) / (1.0 - game.gamma) ** 2


def _contract(tensor: np.ndarray, tables: Sequence[np.ndarray | None]) -> np.ndarray:
    """Contract axis ``1 + j`` of ``tensor [S, A1..An]`` with ``tables[j]`` wherever it is not ``None``."""
    out = tensor
    for j in reversed(range(len(tables))):
        t = tables[j]
        if t is None:
            continue
        out = np.moveaxis(out, 1 + j, -1)
        out = np.sum(out * t.reshape((t.shape[0],) + (1,) * (out.ndim - 2) + (t.shape[1],)), axis=-1)
    return out


def mixed_tables(tables: Sequence[np.ndarray], prev: Sequence[int], prev_tables: Sequence[np.ndarray]) -> list[np.ndarray]:
    """The old tables with the predecessors ``prev`` replaced by their new tables."""
    out = list(tables)
    for j, t in zip(prev, prev_tables):
        out[j] = np.asarray(t, dtype=np.float64)
    return out


def conditional_gain(q: np.ndarray, tables: Sequence[np.ndarray], agent: int, prev: Sequence[int],
                     prev_tables: Sequence[np.ndarray]) -> np.ndarray:
    """``g[s, a] = E_{a^{prev} ~ pibar, a^{rest} ~ pi}[Q(s, .) | a^{agent} = a] - E_{a^{prev} ~ pibar, a^{-prev} ~ pi}[Q(s, .)]``
    ``[S, A_agent]``: the local gain of ICLR22 eq. (1) / Def. 2 averaged over the updated predecessors."""
    mixed = mixed_tables(tables, prev, prev_tables)
    weights: list[np.ndarray | None] = [None if j == agent else mixed[j] for j in range(len(mixed))]
    qbar = _contract(q, weights)  # [S, A_agent]
    return qbar - np.sum(tables[agent] * qbar, axis=1, keepdims=True)


def happo_weights(adv: np.ndarray, tables: Sequence[np.ndarray], agent: int, prev: Sequence[int],
                  prev_tables: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """``W+-(s, a^{agent})``: sums over ``a^{-agent}`` of the positive / negative parts of
    ``pibar^{prev}(a^{prev}|s) pi^{-prev}(a^{-prev}|s) A_pi(s, a)`` (= ``pi(a|s) M^{i_{1:m}}(s, a)``, ICLR22 eq. 10)."""
    w = joint_table(mixed_tables(tables, prev, prev_tables)) * adv
    other = tuple(1 + j for j in range(adv.ndim - 1) if j != agent)
    return np.maximum(w, 0.0).sum(axis=other), np.minimum(w, 0.0).sum(axis=other)


# ------------------------------------------------------------------------------------------ KL and KKT
def kl_rows(q: np.ndarray, p: np.ndarray) -> np.ndarray:
    """``KL(q_s || p_s) = sum_{a: q_a > 0} q_a log(q_a / p_a)`` per row, with relative accuracy: near ``q`` (every
    ``|e_a| < 1/2`` on the support, ``e = (p - q)/q``) as ``sum q (e - log1p(e)) + p_off`` (``sum_supp q e = -p_off``,
    the mass ``p`` puts off the support of ``q``), else directly; ``inf`` if ``p = 0 < q``."""
    q = np.asarray(q, dtype=np.float64)
    p = np.asarray(p, dtype=np.float64)
    on = q > 0
    e = np.where(on, (p - q) / np.where(on, q, 1.0), 0.0)
    near = np.all(np.abs(e) < 0.5, axis=1)
    off_mass = np.sum(np.where(on, 0.0, p), axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        close = np.sum(np.where(on, q * (e - np.log1p(np.where(near[:, None], e, 0.0))), 0.0), axis=1) + off_mass
        direct = np.sum(np.where(on, q * (np.log(np.where(on, q, 1.0)) - np.log(np.where(on, p, 1.0))), 0.0), axis=1)
        direct = np.where(np.any(on & (p <= 0), axis=1), np.inf, direct)
    return np.where(near, close, direct)


def row_multipliers(q: np.ndarray, gain: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per row: the multiplier ``mu`` of ``max <gain, P> - mu KL(q || P)`` that ``p`` is stationary for, the
    largest KKT violation relative to the row's gain spread, and the smallest admissible multiplier ``mu_min``.

    KKT on the simplex: ``gain_a + mu q_a / P_a = nu`` on the support of ``q`` (``P_a > 0`` there), ``gain_b = nu``
    for an action off the support that gets mass, ``gain_b <= nu`` for one that does not. ``(mu, nu)`` are fitted by
    least squares to the equalities (exact for two of them), and ``mu_min = mu``. A row that stays at ``P = q``
    ("stalled") does not identify ``mu``: it is stationary for every ``mu >= mu_min = max(0, max_off gain - gain_supp)``
    if the gains are constant on the support (``mu = nan``, residual 0), and for none otherwise (residual ``inf``)."""
    n_rows = q.shape[0]
    mu, resid, mu_min = np.full(n_rows, np.inf), np.full(n_rows, np.inf), np.full(n_rows, np.inf)
    for s in range(n_rows):
        on, g, ps = q[s] > 0, gain[s], p[s]
        spread = float(np.ptp(g))
        if np.any(ps[on] <= 0) or spread <= 0:
            continue
        massive = ~on & (ps > 0)
        u = q[s][on] / ps[on]
        unused = ~on & (ps <= 0)
        if not np.any(massive):  # the usual case: centred regression of the gains on u (keeps tiny steps accurate)
            uc, gc = u - u.mean(), g[on] - g[on].mean()
            den = float(np.dot(uc, uc))
            if float(np.max(np.abs(uc))) <= 1e-13 * float(np.max(u)):  # stalled at P = q (to rounding)
                if float(np.ptp(g[on])) <= FLAT * max(1.0, float(np.max(np.abs(g)))):
                    mu[s], resid[s] = np.nan, 0.0
                    mu_min[s] = max(0.0, float(np.max(g[unused], initial=-np.inf)) - float(np.mean(g[on])))
                continue
            m = -float(np.dot(uc, gc)) / den
            nu = float(np.mean(g[on] + m * u))
            stationarity = float(np.max(np.abs(gc + m * uc)))
            dual = float(np.max(np.maximum(g[unused] - nu, 0.0), initial=0.0))
            mu[s], resid[s], mu_min[s] = m, max(stationarity, dual) / spread, m
            continue
        rows = np.concatenate([np.stack([u, -np.ones(u.size)], axis=1), np.stack([np.zeros(int(massive.sum())), -np.ones(int(massive.sum()))], axis=1)])
        rhs = -np.concatenate([g[on], g[massive]])
        if np.linalg.matrix_rank(rows, tol=1e-14 * max(1.0, float(np.max(np.abs(rows))))) < 2:
            continue
        (m, nu), *_ = np.linalg.lstsq(rows, rhs, rcond=None)
        stationarity = float(np.max(np.abs(rows @ np.array([m, nu]) - rhs)))
        dual = float(np.max(np.maximum(g[unused] - nu, 0.0), initial=0.0))
        mu[s], resid[s], mu_min[s] = m, max(stationarity, dual) / spread, m
    return mu, resid, mu_min


def _feasibility(q: np.ndarray, p: np.ndarray) -> float:
    if p.shape != q.shape or not np.all(np.isfinite(p)):
        return np.inf
    return float(max(np.max(np.abs(p.sum(axis=1) - 1.0)), np.max(np.maximum(-p, 0.0))))


def _indifferent_rows_kept(q: np.ndarray, p: np.ndarray, rows: np.ndarray, worst: float, where: str) -> tuple[float, str]:
    """Rows ``rows`` where the agent is indifferent must keep the old table ``q``: the largest move there replaces
    ``(worst, where)`` if it is larger."""
    moved = float(np.max(np.where(rows, np.max(np.abs(p - q), axis=1), 0.0), initial=0.0))
    return (moved, "an indifferent row moved") if moved > worst else (worst, where)


def _rel(a: float, b: float) -> float:
    return abs(a - b) / max(abs(b), 1e-300)


def _flat_rows(q: np.ndarray, gain: np.ndarray, scale: float) -> np.ndarray:
    """Rows where ``P = q`` is optimal for every multiplier: the gains are constant on the support of ``q`` and no
    action off the support does better (up to ``FLAT scale``)."""
    on = q > 0
    top = np.max(np.where(on, gain, -np.inf), axis=1)
    low = np.min(np.where(on, gain, np.inf), axis=1)
    off = np.max(np.where(on, -np.inf, gain), axis=1)
    return (top - low <= FLAT * scale) & (off <= top + FLAT * scale)


def _at_vertex(q: np.ndarray, gain: np.ndarray, p: np.ndarray, scale: float) -> np.ndarray:
    """Rows where ``p`` already earns the best gain available to a table that keeps the old support's mass positive
    (``max_a gain - <gain, p> <= 1e-12 scale``): the solvers stop at a vertex to ~1e-100 (their parametrisation's
    floor) instead of spending a KL budget that can buy nothing more."""
    return np.max(gain, axis=1) - np.sum(gain * p, axis=1) <= 1e-12 * scale


def max_kl_penalty_kkt(q: np.ndarray, gain: np.ndarray, weight: np.ndarray, c: float, p: np.ndarray,
                       scale: float) -> tuple[float, str]:
    """Largest relative KKT violation of ``p`` for ICLR22 Algorithm 1's per-agent program (theory.md §1.9)

        max_P sum_s weight_s <gain_s, P_s> - c max_s KL(q_s || P_s)         (weight = rho, improper occupancy)

    Epigraph ``t = max_s KL_s``: multipliers ``mu_s >= 0`` with ``sum_s mu_s = c``, each row stationary for
    ``weight_s gain_s`` with multiplier ``mu_s``, and ``mu_s > 0 => KL_s = t``. Every row that can gain (not flat,
    positive weight) has ``KL_s = t`` (a row below ``t`` would have ``mu_s = 0`` and jump to a vertex). With
    ``c = 0`` the program is linear: ``p`` must attain ``max_a gain_s(a)`` in every weighted row. Flat rows (the
    agent indifferent) must keep ``q``. ``scale``: the size of the gains (``max(1, max|Q|)``)."""
    feas = _feasibility(q, p)
    if not np.isfinite(feas):
        return np.inf, "not a table"
    worst, where = feas, "feasibility"
    flat = _flat_rows(q, gain, scale) | (weight <= 0)
    if c == 0:
        best = gain.max(axis=1)
        loss = (best - np.sum(gain * p, axis=1)) / np.maximum(np.ptp(gain, axis=1), 1e-300)
        loss = np.where(flat, 0.0, loss)
        if float(np.max(loss)) > worst:
            worst, where = float(np.max(loss)), "best response (C = 0)"
        return worst, where
    worst, where = _indifferent_rows_kept(q, p, flat & (weight > 0), worst, where)
    rows = ~flat
    if not np.any(rows):
        return worst, where
    lin = weight[:, None] * gain
    mu, resid, mu_min = row_multipliers(q[rows], lin[rows], p[rows])
    stalled = np.isnan(mu)
    kl = kl_rows(q[rows], p[rows])
    moving = ~stalled
    t = float(np.max(kl[moving], initial=0.0))
    if np.any(moving):
        # rows below t have mu_s = 0: a stalled row is only optimal if it needs no multiplier
        stall = float(np.max(mu_min[stalled], initial=0.0)) / c
        checks = {
            "stationarity": float(np.max(resid)),
            "sum_s mu_s = C": _rel(float(np.sum(mu[moving])), c),
            "KL_s = t on every row that gains": float(np.max(np.abs(kl[moving] - t))) / t if t > 0 else np.inf,
            "mu_s >= 0": float(np.max(np.maximum(-mu[moving], 0.0))) / c,
            "a row stalled below t": stall,
        }
    else:  # t = 0: every row stays, which is optimal iff the multipliers they need fit in C
        checks = {"stationarity": float(np.max(resid)),
                  "stalled rows need more than C": max(0.0, float(np.sum(mu_min)) - c) / c}
    for name, value in checks.items():
        if not value <= worst:  # NaN counts as a violation
            worst, where = value, name
    return worst, where


def mean_kl_ball_kkt(q: np.ndarray, gain: np.ndarray, w: np.ndarray, delta: float, p: np.ndarray,
                     scale: float) -> tuple[float, str]:
    """Largest relative KKT violation of ``p`` for HATRPO's expected-KL program (theory.md §1.10 eq. 7)

        max_P sum_s w_s <gain_s, P_s>   s.t.   sum_s w_s KL(q_s || P_s) <= delta       (w = normalised rho)

    One multiplier ``mu > 0`` shared by every weighted row (``gain_s + mu q/P_s = nu_s / w_s``) and the constraint
    active (some row can gain, so the linear objective pushes to the boundary)."""
    feas = _feasibility(q, p)
    if not np.isfinite(feas):
        return np.inf, "not a table"
    worst, where = feas, "feasibility"
    flat = _flat_rows(q, gain, scale) | (w <= 0)
    worst, where = _indifferent_rows_kept(q, p, flat, worst, where)
    rows = ~flat
    if not np.any(rows):
        return worst, where
    mu, resid, mu_min = row_multipliers(q[rows], gain[rows], p[rows])
    stalled = np.isnan(mu)
    kl = kl_rows(q, p)
    if np.all(stalled):  # nothing moved: the budget delta is unused, so mu = 0, but these rows could gain
        return max(worst, float(np.max(resid)), np.inf), "no row moved although some can gain"
    # a row the solver left at a vertex (to the 1e-100 floor of its parametrisation) has no usable multiplier
    vertex = _at_vertex(q[rows], gain[rows], p[rows], scale)
    free = ~stalled & ~vertex
    if not np.any(free):  # every moving row is already at its best vertex: nothing left to gain, delta may be unused
        excess = max(float(np.dot(w, kl)) - delta, 0.0) / delta
        return max(worst, float(np.max(np.where(vertex, 0.0, resid))), excess), "vertex rows: stationarity / sum_s w_s KL_s <= delta"
    mean_mu = float(np.mean(mu[free]))
    with np.errstate(invalid="ignore"):
        spread_mu = float(np.max(np.abs(mu[free] - mean_mu))) / abs(mean_mu) if mean_mu else np.inf
        stall = float(np.max(np.maximum(mu_min[stalled] - mean_mu, 0.0), initial=0.0)) / abs(mean_mu) if mean_mu else np.inf
    checks = {
        "stationarity": float(np.max(np.where(vertex, 0.0, resid))),
        "one multiplier for every row": spread_mu,
        "a stalled row needs a larger multiplier": stall,
        "sum_s w_s KL_s = delta": _rel(float(np.dot(w, kl)), delta),
        "mu > 0": 0.0 if mean_mu > 0 else np.inf,
    }
    for name, value in checks.items():
        if not value <= worst:
            worst, where = value, name
    return worst, where


def state_kl_penalty_ball_kkt(q: np.ndarray, gain: np.ndarray, lam: float, delta: float, p: np.ndarray,
                              scale: float) -> tuple[float, str]:
    """Largest relative KKT violation of ``p`` for the HAML drift program of theory.md §2.3, row by row

        max_P <gain_s, P_s> - lam KL(q_s || P_s)   s.t.   KL(q_s || P_s) <= delta

    Stationary with multiplier ``mu_s = lam + kappa_s``, ``kappa_s >= 0``, ``kappa_s (KL_s - delta) = 0``: either
    ``mu_s = lam`` with ``KL_s <= delta``, or ``KL_s = delta`` with ``mu_s >= lam``."""
    feas = _feasibility(q, p)
    if not np.isfinite(feas):
        return np.inf, "not a table"
    worst, where = feas, "feasibility"
    flat = _flat_rows(q, gain, scale)
    worst, where = _indifferent_rows_kept(q, p, flat, worst, where)
    rows = ~flat
    if not np.any(rows):
        return worst, where
    mu, resid, mu_min = row_multipliers(q[rows], gain[rows], p[rows])
    stalled = np.isnan(mu)
    kl = kl_rows(q[rows], p[rows])
    mu_scale = max(lam, float(np.max(np.ptp(gain[rows], axis=1))))
    skip = stalled | _at_vertex(q[rows], gain[rows], p[rows], scale)
    with np.errstate(invalid="ignore"):
        interior = np.where(skip, 0.0, np.abs(mu - lam) / mu_scale)   # 0 when the drift's own maximiser is taken
        boundary = np.where(skip, 0.0, np.abs(kl - delta) / delta)    # 0 when the ball binds
        below = np.where(skip, 0.0, np.maximum(lam - mu, 0.0)) / mu_scale
    checks = {
        "stationarity": float(np.max(np.where(skip & ~stalled, 0.0, resid))),
        "mu_s = lam or KL_s = delta": float(np.max(np.minimum(interior, boundary))),
        "KL_s <= delta": float(np.max(np.maximum(kl - delta, 0.0))) / delta,
        "mu_s >= lam": float(np.max(below)),
        "a stalled row needs more than lam": float(np.max(np.maximum(mu_min[stalled] - lam, 0.0), initial=0.0)) / mu_scale,
    }
    for name, value in checks.items():
        if not value <= worst:
            worst, where = value, name
    return worst, where


def happo_row_value(q: np.ndarray, p: np.ndarray, w_plus: np.ndarray, w_minus: np.ndarray, clip: float) -> np.ndarray:
    """``sum_a W+ min(r, 1+eps) + W- max(r, 1-eps)`` per row over the support of ``q``, ``r = P/q``
    (theory.md §1.11)."""
    on = q > 0
    r = np.where(on, p / np.where(on, q, 1.0), 0.0)
    terms = w_plus * np.minimum(r, 1.0 + clip) + w_minus * np.maximum(r, 1.0 - clip)
    return np.sum(np.where(on, terms, 0.0), axis=1)


def happo_row_optimum(q: np.ndarray, w_plus: np.ndarray, w_minus: np.ndarray, clip: float) -> np.ndarray:
    """Exact per-row maximum of :func:`happo_row_value` over distributions on the support of ``q``.

    ``f_a(x) = W+_a min(x/q_a, 1+eps) + W-_a max(x/q_a, 1-eps)`` is concave piecewise linear in ``x = P_a`` with
    slopes ``W+_a/q_a`` on ``[0, (1-eps) q_a]``, ``(W+_a + W-_a)/q_a`` on ``[(1-eps) q_a, (1+eps) q_a]`` and
    ``W-_a/q_a`` beyond (decreasing, as ``W+ >= 0 >= W-``). A separable concave objective on ``sum_a x_a = 1`` is
    maximised by filling the unit budget with the steepest pieces first (fractional knapsack)."""
    out = np.empty(q.shape[0])
    for s in range(q.shape[0]):
        support = np.flatnonzero(q[s] > 0)
        base = float(np.sum(w_minus[s, support] * (1.0 - clip)))
        pieces = []
        for a in support:
            qa = q[s, a]
            pieces.append((w_plus[s, a] / qa, (1.0 - clip) * qa))
            pieces.append(((w_plus[s, a] + w_minus[s, a]) / qa, 2.0 * clip * qa))
            pieces.append((w_minus[s, a] / qa, np.inf))
        pieces.sort(key=lambda x: -x[0])
        left, value = 1.0, base
        for slope, length in pieces:
            take = min(left, length)
            value += slope * take
            left -= take
            if left <= 0:
                break
        out[s] = value
    return out


def happo_kkt(q: np.ndarray, p: np.ndarray, w_plus: np.ndarray, w_minus: np.ndarray, weight: np.ndarray,
              clip: float, scale: float) -> tuple[float, str]:
    """Relative optimality gap of ``p`` for the exact HAPPO step's per-agent LP (theory.md §1.11):
    ``max_s weight_s |max_s - value_s(p)| / sum_s weight_s sum_a |W_{s,a}|`` (the LP's objective is the
    ``weight``-sum over states, so a state of negligible weight only has to be solved to its share of it; a value
    above the maximum means ``p`` is infeasible). ``FLAT scale`` is added to every state's ``sum |W|``: the rounding
    level of the weights, below which an agent is indifferent."""
    feas = _feasibility(q, p)
    if not np.isfinite(feas):
        return np.inf, "not a table"
    feas = max(feas, float(np.max(np.where(q > 0, 0.0, np.abs(p)))))  # the ratio needs P = 0 off the support
    opt = happo_row_optimum(q, w_plus, w_minus, clip)
    val = happo_row_value(q, p, w_plus, w_minus, clip)
    size = float(np.sum(np.maximum(weight, 0.0) * (np.sum(np.abs(w_plus) + np.abs(w_minus), axis=1) + FLAT * scale)))
    if size == 0.0:
        return feas, "feasibility"
    gap = float(np.max(np.maximum(weight, 0.0) * np.abs(opt - val))) / size
    if gap > feas:
        return gap, "LP optimality"
    return feas, "feasibility"


# ------------------------------------------------------------------------------------------ generic solvers
def kl_program_cvxpy(old: np.ndarray, lin: np.ndarray, *, max_kl_penalty: float = 0.0,
                     state_kl_penalty: np.ndarray | None = None, state_kl_radius: float | None = None,
                     mean_kl_weights: np.ndarray | None = None, mean_kl_radius: float | None = None) -> np.ndarray:
    """Reference solve by cvxpy (exponential cone, CLARABEL) of

        maximise  sum_{s,a} lin[s,a] P[s,a] - max_kl_penalty t - sum_s state_kl_penalty[s] KL_s
        s.t.      KL_s <= t (if max_kl_penalty > 0),  KL_s <= state_kl_radius,  sum_s w_s KL_s <= mean_kl_radius,

    ``KL_s = sum_{a: old > 0} rel_entr(old, P)``. Accuracy about 1e-8 absolute (constraints may be violated by
    that much); for cross-checks only."""
    import cvxpy as cp

    old, lin = np.asarray(old, dtype=np.float64), np.asarray(lin, dtype=np.float64)
    n_states, n_actions = old.shape
    scale = float(np.max(np.abs(lin))) or 1.0
    x = cp.Variable(n_states * n_actions, nonneg=True)
    rows = sp.kron(sp.eye(n_states), np.ones((1, n_actions)), format="csr")
    support = np.flatnonzero(old.ravel() > 0)
    summer = sp.csr_matrix((np.ones(support.size), (support // n_actions, np.arange(support.size))), shape=(n_states, support.size))
    kl = summer @ cp.rel_entr(old.ravel()[support], x[support])
    objective = (lin.ravel() / scale) @ x
    constraints = [rows @ x == 1]
    if max_kl_penalty > 0:
        t = cp.Variable()
        objective = objective - (max_kl_penalty / scale) * t
        constraints.append(kl <= t)
    if state_kl_penalty is not None:
        objective = objective - (np.asarray(state_kl_penalty, dtype=np.float64) / scale) @ kl
    if state_kl_radius is not None:
        constraints.append(kl <= state_kl_radius)
    if mean_kl_radius is not None:
        constraints.append(np.asarray(mean_kl_weights, dtype=np.float64) @ kl <= mean_kl_radius)
    problem = cp.Problem(cp.Maximize(objective), constraints)
    try:
        problem.solve(solver=cp.CLARABEL)
    except cp.error.SolverError:  # pragma: no cover - fallback solver
        problem.solve(solver=cp.SCS, eps=1e-10, max_iters=200_000)
    if x.value is None:  # pragma: no cover
        raise RuntimeError(f"cvxpy could not solve the KL program (status {problem.status})")
    return x.value.reshape(n_states, n_actions)


_HIGHS = {"primal_feasibility_tolerance": 1e-10, "dual_feasibility_tolerance": 1e-10}
"""HiGHS tolerances for the HAPPO LP (defaults 1e-7 leave relative optimality gaps of ~1e-7)."""


def solve_happo_lp_highs(old: np.ndarray, w_plus: np.ndarray, w_minus: np.ndarray, rho: np.ndarray, clip: float) -> np.ndarray:
    """Cross-check of :func:`solve_happo_lp` by a generic LP solver (HiGHS; its tolerances, ~1e-10 relative to the
    largest slope, limit the accuracy): maximiser of ``sum_s rho(s) sum_a [W+ min(r, 1+eps) + W- max(r, 1-eps)]``
    with ``r = P/old`` on the support of ``old`` and ``P = 0`` off it (theory.md §1.11).

    Formulated in ``P`` (not ``r``): with ``W+ >= 0 >= W-``, each action's term is the concave piecewise-linear
    ``f_a(P) = min_k (s_k P + b_k)`` over the four affine pieces ``(W+ + W-) P/q``, ``W+ P/q + W- (1-eps)``,
    ``W- P/q + W+ (1+eps)`` and ``W+ (1+eps) + W- (1-eps)`` (``q = old_a``), and an epigraph variable
    ``z_a <= s_k P_a + b_k`` carries it. The slopes ``W/q`` stay of the size of the advantages (``W`` holds the
    factor ``old_a``), whereas the ratio form ``u <= P/q`` has coefficients ``1/q`` that wreck HiGHS's tolerances
    when an action is nearly abandoned (``q ~ 1e-11``). Among the maximisers the one nearest ``old`` in L1 is
    returned (a second LP with the objective held at its optimum)."""
    old = np.asarray(old, dtype=np.float64)
    if not 0 < clip < 1:
        raise ValueError(f"clip must lie in (0, 1), got {clip}")
    if np.any(w_plus < 0) or np.any(w_minus > 0):
        raise ValueError("w_plus must be >= 0 and w_minus <= 0")
    n_states, n_actions = old.shape
    n = n_states * n_actions
    q = old.ravel()
    on = q > 0
    idx = np.flatnonzero(on)
    k = idx.size
    wp = np.asarray(w_plus, dtype=np.float64).ravel()[idx]
    wm = np.asarray(w_minus, dtype=np.float64).ravel()[idx]
    inv = 1.0 / q[idx]
    slopes = np.stack([(wp + wm) * inv, wp * inv, wm * inv, np.zeros(k)])  # [4, k]
    intercepts = np.stack([np.zeros(k), wm * (1.0 - clip), wp * (1.0 + clip), wp * (1.0 + clip) + wm * (1.0 - clip)])
    weight = np.repeat(np.asarray(rho, dtype=np.float64), n_actions)[idx]
    scale = float(np.max(np.abs(weight[None, :] * np.concatenate([slopes, intercepts])), initial=0.0))
    if scale == 0.0:  # every weighted term vanishes: every table is a maximiser, the nearest is old itself
        return old.copy()
    cost = np.zeros(2 * n)  # x = [P, z]
    cost[n + idx] = -weight / scale
    rows = np.arange(4 * k)
    cols_p = np.tile(idx, 4)
    cols_z = n + np.tile(idx, 4)
    a_ub = sp.csr_matrix((np.concatenate([-slopes.ravel(), np.ones(4 * k)]), (np.concatenate([rows, rows]), np.concatenate([cols_p, cols_z]))),
                         shape=(4 * k, 2 * n))  # z - s P <= b
    b_ub = intercepts.ravel()
    a_eq = sp.hstack([sp.kron(sp.eye(n_states), np.ones((1, n_actions))), sp.csr_matrix((n_states, n))]).tocsr()
    b_eq = np.ones(n_states)
    bounds = [(0.0, None) if o else (0.0, 0.0) for o in on] + [(None, None) if o else (0.0, 0.0) for o in on]
    first = linprog(cost, A_ub=a_ub, b_ub=b_ub, A_eq=a_eq, b_eq=b_eq, bounds=bounds, method="highs", options=_HIGHS)
    if first.status != 0:  # pragma: no cover - the LP is feasible (P = old) and bounded
        raise RuntimeError(f"HiGHS failed on the HAPPO LP: {first.message}")
    slack = 1e-11 * (1.0 + abs(first.fun))
    eye = sp.eye(n, format="csr")
    a_abs = sp.vstack([sp.hstack([eye, sp.csr_matrix((n, n)), -eye]), sp.hstack([-eye, sp.csr_matrix((n, n)), -eye])])
    a_ub2 = sp.vstack([
        sp.hstack([a_ub, sp.csr_matrix((4 * k, n))]),
        a_abs,
        sp.hstack([sp.csr_matrix(cost[None, :]), sp.csr_matrix((1, n))]),
    ]).tocsr()
    b_ub2 = np.concatenate([b_ub, q, -q, [first.fun + slack]])
    a_eq2 = sp.hstack([a_eq, sp.csr_matrix((n_states, n))]).tocsr()
    second = linprog(np.concatenate([np.zeros(2 * n), np.ones(n)]), A_ub=a_ub2, b_ub=b_ub2, A_eq=a_eq2, b_eq=b_eq,
                     bounds=bounds + [(0.0, None)] * n, method="highs", options=_HIGHS)
    x = second.x if second.status == 0 else first.x
    return x[:n].reshape(n_states, n_actions)
