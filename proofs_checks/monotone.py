"""Monotonic improvement of the exact sequential updates and Nash convergence (theory.md §1.9-§1.11, §2).

The updates of :mod:`seqmarl.theory.iteration` run as the *pure* algorithm (``safeguard=False``: the revert-worse-
states safeguard would force ``J`` up whatever the solver returns). Each row checks two things per step:

1. every per-agent step solves its own program: the KKT conditions of that program hold to ``1e-7`` relative,
   with the program's data (``C``, the improper occupancy ``rho``, the local gains, the weights) recomputed
   independently by :mod:`seqmarl.proofs_checks._reference` from the game and the tables (never from
   ``theory.evaluate``/``bounds``/``multiagent``); so a no-op or random step, a wrong ``C``, KL direction,
   occupancy (normalised vs improper), radius or drift weight fails the row;
2. the theorem: ``J`` (and for the state-separable HAML instances every ``V(s)``) never drops (relative 1e-9).

* ``algorithm1_monotone`` — ICLR22 Algorithm 1 / Theorem 2 (max-KL penalty ``C``).
* ``hatrpo_kl_ball_monotone`` — HATRPO's expected-KL ball (eq. 7, normalised occupancy weights).
* ``happo_exact_monotone`` — the exact clipped HAPPO step (LP; HAML, HARL-JMLR Thm 14).
* ``haml_drift_monotone`` — HAML with drift ``lam KL`` and a KL-ball neighbourhood.
* ``ne_convergence`` — Algorithm 1 stops at a NE: with ``gamma = 0`` (``C = 0``) it is sequential best response;
  on repeated (one-state, ``gamma > 0``) games ``C > 0`` and it is Prop. 2 proper.

Cases come from ``numpy.random.default_rng(profile.seed)``: 1-3 agents with 2-3 actions, 1-3 states,
gamma in {0, 0.5, 0.9}, eta-soft (eta = 0.05) Dirichlet policies (theory.md §0); the ordering of each iteration is
drawn from the same generator. ``worst_error`` is the largest KKT residual or relative drop, 0 when none.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from seqmarl.theory import games, iteration, optima, trust_region
from seqmarl.theory.games import random_game
from seqmarl.theory.markov_game import MarkovGame
from seqmarl.theory.policies import Factorized

from . import _reference as ref
from .base import Check, CheckResult, Profile

GAMMAS = (0.0, 0.5, 0.9)
SOFT = 0.05
KKT_TOL = 1e-7
DROP_TOL = 1e-9


def _game(rng: np.random.Generator) -> MarkovGame:
    n_agents = int(rng.integers(1, 4))
    counts = [int(rng.integers(2, 4)) for _ in range(n_agents)]
    return random_game(rng, n_agents, counts, int(rng.integers(1, 4)), gamma=float(rng.choice(GAMMAS)))


def _soft(rng: np.random.Generator, game: MarkovGame) -> Factorized:
    return Factorized([SOFT + (1 - a * SOFT) * rng.dirichlet(np.ones(a), size=game.n_states) for a in game.n_actions])


# --------------------------------------------------------------------------------- per-step KKT certificates
StepCheck = Callable[[MarkovGame, Factorized, Factorized, tuple[int, ...], ref.Evaluation], tuple[float, str]]


def _per_agent(residual: Callable[[MarkovGame, ref.Evaluation, list[np.ndarray], int, tuple[int, ...], list[np.ndarray], np.ndarray], tuple[float, str]]) -> StepCheck:
    """Apply ``residual(game, ev, old_tables, agent, prev, prev_new_tables, new_table)`` to every agent in order."""

    def check(game: MarkovGame, pi: Factorized, new: Factorized, order: tuple[int, ...], ev: ref.Evaluation) -> tuple[float, str]:
        worst, where = 0.0, ""
        tables = [np.asarray(t, dtype=np.float64) for t in pi.tables]
        for m, agent in enumerate(order):
            prev = order[:m]
            r, what = residual(game, ev, tables, agent, prev, [new.tables[j] for j in prev], np.asarray(new.tables[agent]))
            if not r <= worst:
                worst, where = r, f"agent {agent} (step {m + 1} of order {order}): {what}"
        return worst, where

    return check


def _scale(ev: ref.Evaluation) -> float:
    return max(1.0, float(np.max(np.abs(ev.q))))


def algorithm1_kkt(game, ev, tables, agent, prev, prev_tables, new_table):  # type: ignore[no-untyped-def]
    """Algorithm 1: ``max sum_s rho(s) <g_s, P_s> - C max_s KL(pi^{i_m}_s || P_s)``, ``C = 4 gamma max|A| / (1-gamma)^2``."""
    g = ref.conditional_gain(ev.q, tables, agent, prev, prev_tables)
    return ref.max_kl_penalty_kkt(tables[agent], g, ev.rho, ref.penalty_constant(game, ev), new_table, _scale(ev))


def kl_ball_kkt(delta: float):  # type: ignore[no-untyped-def]
    def residual(game, ev, tables, agent, prev, prev_tables, new_table):  # type: ignore[no-untyped-def]
        """eq. (7): ``max sum_s w_s <g_s, P_s>  s.t.  sum_s w_s KL_s <= delta``, ``w = rho / sum rho``."""
        g = ref.conditional_gain(ev.q, tables, agent, prev, prev_tables)
        return ref.mean_kl_ball_kkt(tables[agent], g, ev.rho / ev.rho.sum(), delta, new_table, _scale(ev))

    return residual


def haml_kkt(lam: float, delta: float):  # type: ignore[no-untyped-def]
    def residual(game, ev, tables, agent, prev, prev_tables, new_table):  # type: ignore[no-untyped-def]
        """HAML drift: per state ``max <g_s, P_s> - lam KL_s  s.t.  KL_s <= delta``."""
        g = ref.conditional_gain(ev.q, tables, agent, prev, prev_tables)
        return ref.state_kl_penalty_ball_kkt(tables[agent], g, lam, delta, new_table, _scale(ev))

    return residual


def happo_kkt(clip: float):  # type: ignore[no-untyped-def]
    def residual(game, ev, tables, agent, prev, prev_tables, new_table):  # type: ignore[no-untyped-def]
        """HAPPO: per state ``max sum_a W+ min(r, 1+eps) + W- max(r, 1-eps)`` (exact LP optimum by greedy)."""
        w_plus, w_minus = ref.happo_weights(ev.adv, tables, agent, prev, prev_tables)
        r, what = ref.happo_kkt(tables[agent], new_table, w_plus, w_minus, ev.rho, clip, _scale(ev))
        # the library's clipped objective (used by its safeguard) is the same function of the table
        size = float(np.sum(np.abs(w_plus) + np.abs(w_minus))) + ref.FLAT * _scale(ev)
        lib = trust_region.happo_objective(tables[agent], new_table, w_plus, w_minus, clip)
        off = float(np.max(np.abs(lib - ref.happo_row_value(tables[agent], new_table, w_plus, w_minus, clip)))) / size
        return (off, "trust_region.happo_objective") if off > r else (r, what)

    return residual


# --------------------------------------------------------------------------------- the rows
def _monotone(update: Callable[..., Factorized], variants: list[tuple[dict, StepCheck]], statewise: bool, n_cases: int,
              n_iters: int) -> Callable[[Profile], CheckResult]:
    """Case ``k`` runs ``update(..., **options)`` and certifies its steps with ``step_check``, ``(options,
    step_check) = variants[k % len(variants)]``."""

    def run(profile: Profile) -> CheckResult:
        rng = np.random.default_rng(profile.seed)
        worst_kkt, worst_drop, cases, where = 0.0, 0.0, 0, ""
        for k in range(profile.cases(n_cases)):
            kw, step_check = variants[k % len(variants)]
            game = _game(rng)
            pi = _soft(rng, game)
            ev = ref.evaluate(game, pi.tables)
            for it in range(n_iters):
                order = tuple(int(i) for i in rng.permutation(game.n_agents))
                new = update(game, pi, rng, order=order, safeguard=False, **kw)
                kkt, what = step_check(game, pi, new, order, ev)
                ev_new = ref.evaluate(game, new.tables)
                drop = (ev.j - ev_new.j) / (1 + abs(ev.j))
                if statewise:
                    drop = max(drop, float(np.max((ev.v - ev_new.v) / (1 + np.abs(ev.v)))))
                label = (f"case {k} ({game.n_states} states, actions {game.n_actions}, gamma {game.gamma}, options {kw}), "
                         f"iteration {it + 1}")
                if not kkt <= worst_kkt:
                    worst_kkt, where = kkt, f"{label}, {what}" if kkt > KKT_TOL else where
                if not drop <= worst_drop:
                    worst_drop = drop
                    if drop > DROP_TOL:
                        where = f"{label}: J{' or V' if statewise else ''} dropped by {drop:.3g}"
                cases += 1
                pi, ev = new, ev_new
        passed = worst_kkt <= KKT_TOL and worst_drop <= DROP_TOL
        detail = (f"pure updates (safeguard off), {n_iters} iterations per game; max KKT residual {worst_kkt:.2g} "
                  f"(tol {KKT_TOL:g}), max relative drop in J{' or V(s)' if statewise else ''} {max(worst_drop, 0.0):.2g} "
                  f"(tol {DROP_TOL:g})" + (f"; worst at {where}" if where else ""))
        return CheckResult(cases, max(worst_kkt, worst_drop, 0.0), passed, detail)

    return run


def _repeated(game: MarkovGame, gamma: float) -> MarkovGame:
    return MarkovGame(game.reward, game.transition, gamma, game.initial, name=f"{game.name}@gamma={gamma}")


def _ne_convergence(profile: Profile) -> CheckResult:
    """Sequential best response on one-shot games (C = 0) until no agent moves; Algorithm 1 with C > 0 on repeated
    one-state games (J = r_pi / (1 - gamma), the NE of the stage game are those of the repeated game among
    stationary policies) in chunks of 10 iterations until the exact Nash gap is below 1e-12 (at most 150). Every
    run must end at an eps-NE, eps = 1e-9, and its returns (``iteration.returns_along``) never drop (Theorem 2)."""
    rng = np.random.default_rng(profile.seed)
    worst, worst_drop, cases, notes = 0.0, 0.0, 0, []
    one_shot = (games.climbing(), games.penalty(-100), games.xor(2), games.permutation(3))
    repeated = (_repeated(games.xor(2), 0.3), _repeated(games.permutation(3), 0.3), _repeated(games.xor(2), 0.1))
    for game in one_shot + repeated:
        reached: set[tuple[int, ...]] = set()
        chunk, budget = (20, 20) if game.gamma == 0 else (10, 150)
        worst_c = 0.0
        for _ in range(profile.cases(5) if game.gamma == 0 else profile.cases(3)):
            run = [_soft(rng, game)]
            while len(run) <= budget:
                worst_c = max(worst_c, ref.penalty_constant(game, ref.evaluate(game, run[-1].tables)))
                run += iteration.run_iteration(iteration.hatrpo_exact, game, run[-1], rng, chunk, safeguard=False)[1:]
                if optima.nash_gap(game, run[-1]) <= 1e-12:
                    break
            returns = iteration.returns_along(game, run)
            worst_drop = max(worst_drop, float(np.max(returns[:-1] - returns[1:], initial=0.0)))
            worst = max(worst, optima.nash_gap(game, run[-1]))
            reached.add(tuple(int(np.argmax(t[0])) for t in run[-1].tables))
            cases += 1
        kind = "best response, C = 0" if game.gamma == 0 else f"C > 0 (up to {worst_c:.3g})"
        notes.append(f"{game.name} [{kind}]: {len(reached)} NE profile(s)")
    return CheckResult(cases, max(worst, worst_drop), worst <= 1e-9 and worst_drop <= 1e-12,
                       "; ".join(notes) + f" (eps = 1e-9; largest drop in J along a run {worst_drop:.2g}; "
                       "not asserting global optimality)")


CHECKS = [
    Check(
        name="algorithm1_monotone",
        claim="Algorithm 1, run pure (no safeguard): every per-agent step satisfies the KKT conditions of "
        "max L^{i_1:m} - C Dmax_KL (C = 4 gamma max|A| / (1-gamma)^2, improper rho, KL(old||new); data recomputed "
        "independently) and J never drops",
        source="ICLR22 Algorithm 1, Theorem 2, theory.md §1.9",
        method="convex",
        run=_monotone(iteration.hatrpo_exact, [({}, _per_agent(algorithm1_kkt))], statewise=False, n_cases=25, n_iters=3),
    ),
    Check(
        name="hatrpo_kl_ball_monotone",
        claim="HATRPO with the expected-KL ball sum_s rho_norm(s) KL(old||new) <= delta (delta = 0.01, 0.1), run pure: "
        "every step satisfies its KKT conditions (one multiplier, active constraint) and J, every V(s) never drop",
        source="ICLR22 eq. 7 / HARL-JMLR Thm 14 (trivial drift), theory.md §1.10, §2.2",
        method="convex",
        run=_monotone(iteration.hatrpo_kl_ball, [({"delta": 0.01}, _per_agent(kl_ball_kkt(0.01))),
                                                  ({"delta": 0.1}, _per_agent(kl_ball_kkt(0.1)))],
                      statewise=True, n_cases=25, n_iters=3),
    ),
    Check(
        name="happo_exact_monotone",
        claim="The exact clipped HAPPO step (eps = 0.2, 0.1; exact M), run pure: every per-state LP is solved to its exact "
        "optimum (independent greedy solution) and J, every V(s) never drop",
        source="ICLR22 eq. 11 / HARL-JMLR Thm 14, theory.md §1.11",
        method="convex",
        run=_monotone(iteration.happo_exact, [({"clip": 0.2}, _per_agent(happo_kkt(0.2))),
                                               ({"clip": 0.1}, _per_agent(happo_kkt(0.1)))],
                      statewise=True, n_cases=25, n_iters=3),
    ),
    Check(
        name="haml_drift_monotone",
        claim="HAML with drift lam KL(old||new) and the per-state ball KL <= delta ((lam, delta) = (1, 0.5), (0.25, 0.05)), run "
        "pure: every step satisfies its KKT conditions and J, every V(s) never drop",
        source="HARL-JMLR Template 2, Thm 14, theory.md §2.2-§2.3",
        method="convex",
        run=_monotone(iteration.haml_kl_drift, [({"lam": 1.0, "delta": 0.5}, _per_agent(haml_kkt(1.0, 0.5))),
                                                 ({"lam": 0.25, "delta": 0.05}, _per_agent(haml_kkt(0.25, 0.05)))],
                      statewise=True, n_cases=40, n_iters=3),
    ),
    Check(
        name="ne_convergence",
        claim="Algorithm 1 ends at an eps-NE (eps = 1e-9): gamma = 0 (C = 0: sequential best response) on climbing, "
        "penalty(-100), xor(2), permutation(3); C > 0 (Prop. 2 proper) on repeated xor(2), permutation(3) "
        "(gamma = 0.3, 0.1)",
        source="ICLR22 Prop. 2 / HARL-JMLR Thm 8, theory.md §1.9",
        method="convex",
        run=_ne_convergence,
    ),
]
