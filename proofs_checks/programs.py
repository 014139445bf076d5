"""The per-agent programs of the exact updates, solved by :mod:`seqmarl.theory.trust_region`, on their own.

``trust_region_programs_kkt`` draws random program data beyond what the monotone rows reach: old tables with zero
entries (an abandoned action can come back: ``KL(old || new)`` allows mass off the old support, the "corner" of the
KKT conditions), penalties and radii over several orders of magnitude, and rows that are flat or where an
off-support action is the best. Each solution must satisfy the KKT conditions of its program, checked by
:mod:`seqmarl.proofs_checks._reference` (theory.md §1.9 Algorithm 1, §1.10 eq. 7, §2.3 HAML drift, §1.11 HAPPO):

* ``max_P sum_s <l_s, P_s> - c max_s KL(q_s || P_s)``                 (:func:`solve_max_kl_penalty`)
* ``max_P sum_s w_s <g_s, P_s>  s.t.  sum_s w_s KL(q_s || P_s) <= delta``  (:func:`solve_mean_kl_ball`)
* ``max_P <g_s, P_s> - lam KL(q_s || P_s)  s.t.  KL(q_s || P_s) <= delta``   (:func:`solve_state_kl_penalty_ball`)
* ``max_P sum_a W+ min(P/q, 1+eps) + W- max(P/q, 1-eps)`` per state   (:func:`solve_happo_lp`, exact greedy optimum)
"""

from __future__ import annotations

import numpy as np

from seqmarl.theory import trust_region

from . import _reference as ref
from .base import Check, CheckResult, Profile

TOL = 1e-7


def _old_table(rng: np.random.Generator, n_states: int, n_actions: int) -> np.ndarray:
    q = 0.02 + rng.dirichlet(np.ones(n_actions), size=n_states)
    if rng.random() < 0.6:  # abandon some actions (at least one stays in every row)
        drop = rng.random((n_states, n_actions)) < 0.35
        drop[np.arange(n_states), rng.integers(n_actions, size=n_states)] = False
        q = np.where(drop, 0.0, q)
    return q / q.sum(axis=1, keepdims=True)


def _gains(rng: np.random.Generator, q: np.ndarray) -> np.ndarray:
    g = rng.standard_normal(q.shape) * 10.0 ** rng.uniform(-2, 1)
    if rng.random() < 0.2:  # a flat row and a row whose best action is off the support
        g[0] = 0.3
        if q.shape[0] > 1 and np.any(q[1] == 0):
            g[1] = np.where(q[1] == 0, 1.0, 0.0)
    return g


def _programs(profile: Profile) -> CheckResult:
    rng = np.random.default_rng(profile.seed)
    worst, cases, where, corners = 0.0, 0, "", 0
    for k in range(profile.cases(40)):
        n_states, n_actions = int(rng.integers(1, 5)), int(rng.integers(2, 5))
        q = _old_table(rng, n_states, n_actions)
        g = _gains(rng, q)
        scale = max(1.0, float(np.max(np.abs(g))))
        c = float(10.0 ** rng.uniform(-1, 3))
        delta = float(10.0 ** rng.uniform(-3, 0))
        lam = float(10.0 ** rng.uniform(-2, 1))
        w = rng.dirichlet(np.ones(n_states))
        clip = float(rng.uniform(0.05, 0.5))
        adv = rng.standard_normal((n_states, n_actions, 3)) * q[:, :, None]
        w_plus, w_minus = np.maximum(adv, 0.0).sum(axis=2), np.minimum(adv, 0.0).sum(axis=2)
        p_pen = trust_region.solve_max_kl_penalty(q, g, c)
        corners += int(np.any((q == 0) & (p_pen > 0)))
        results = {
            "max-KL penalty": ref.max_kl_penalty_kkt(q, g, np.ones(n_states), c, p_pen, scale),
            "mean-KL ball": ref.mean_kl_ball_kkt(q, g, w, delta, trust_region.solve_mean_kl_ball(q, g, w, delta), scale),
            "HAML drift": ref.state_kl_penalty_ball_kkt(q, g, lam, delta, trust_region.solve_state_kl_penalty_ball(q, g, lam, delta), scale),
            "HAPPO": ref.happo_kkt(q, trust_region.solve_happo_lp(q, w_plus, w_minus, w, clip), w_plus, w_minus, w, clip, scale),
        }
        for name, (r, what) in results.items():
            cases += 1
            if not r <= worst:
                worst, where = r, f"case {k} ({n_states}x{n_actions}, zeros in old: {bool(np.any(q == 0))}), {name}: {what}"
    detail = (f"{cases} programs (tolerance {TOL:g}); {corners} max-KL solutions put mass off the old support; "
              f"largest KKT residual {worst:.2g}" + (f" at {where}" if where else ""))
    return CheckResult(cases, worst, worst <= TOL and corners > 0, detail)


CHECKS = [
    Check(
        name="trust_region_programs_kkt",
        claim="The exact per-agent programs (max-KL penalty, mean-KL ball, HAML drift + ball, clipped HAPPO LP) "
        "satisfy their KKT conditions on random data, including old tables with zeros (mass may return off the "
        "support) and flat rows",
        source="ICLR22 Alg. 1 / eq. 7 / eq. 11, HARL-JMLR Thm 14; theory.md §1.9-§1.11, §2.3",
        method="convex",
        run=_programs,
    ),
]
