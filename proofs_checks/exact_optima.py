"""Exact optima of the oracle games: Prop. 1 shared ratio, permutation-game entropies, climbing/penalty NE sets.

Each row compares :mod:`seqmarl.theory.optima` with a closed form; ``worst_error`` is the largest absolute
deviation from it (for NE sets: the number of joint actions in the symmetric difference).
"""

from __future__ import annotations

import itertools
import math
from typing import Sequence

import numpy as np

from seqmarl.theory import evaluate, games, optima
from seqmarl.theory.markov_game import MarkovGame, matrix_game
from seqmarl.theory.policies import Factorized, Shared

from . import _reference as ref

from .base import Check, CheckResult, Profile


def _exact_shared_two_actions(game) -> float:  # type: ignore[no-untyped-def]
    """``J*_share`` of a one-shot game with 2 actions per agent, independent of :mod:`seqmarl.theory.optima`:
    ``J_share(p)`` as a polynomial with exact rational coefficients (:func:`.symbolic.shared_return_polynomial`),
    the real roots of ``J'`` in (0, 1) isolated by sympy in rational intervals of width ``1e-30`` and ``J``
    evaluated exactly at their midpoints and at 0, 1 (the error at a root, ``|J''| w^2``, is far below 1e-30)."""
    import sympy as sp

    from .symbolic import shared_return_polynomial

    p = sp.Symbol("p")
    poly = sp.Poly(sp.expand(shared_return_polynomial(game, p)), p)
    deriv = poly.diff(p)
    mids = [] if deriv.is_zero else [(a + b) / 2 for (a, b), _ in deriv.intervals(eps=sp.Rational(1, 10**30))]
    return float(max([poly.eval(x) for x in mids if 0 < x < 1] + [poly.eval(0), poly.eval(1)]))


def _shared_case_errors(game, exact: float, gap_limit: float) -> tuple[float, list[str]]:  # type: ignore[no-untyped-def]
    """``shared_optimum`` against the exact ``J*_share``: value (1e-12 relative), ``J`` of the returned policy
    equals the value, the certificate ``value <= J*_share <= value + certified_gap`` holds, and
    ``0 < certified_gap <= gap_limit`` (a float method cannot certify a zero gap: the bound carries a rounding
    slack, so a gap of exactly 0 means it was not computed)."""
    res = optima.shared_optimum(game)
    scale = 1.0 + abs(exact)
    errs = {
        "value": abs(res.value - exact) / scale,
        "J(policy)": abs(evaluate.expected_return(game, res.policy) - res.value) / scale,
        "certificate": max(0.0, exact - (res.value + res.certified_gap)) / scale,
    }
    notes = [f"{game.name}: {k} off by {v:.3g}" for k, v in errs.items() if v > 1e-12]
    if not 0.0 < res.certified_gap <= gap_limit * scale:
        notes.append(f"{game.name}: certified_gap {res.certified_gap!r} not in (0, {gap_limit:g}]")
    return max(errs.values()), notes


def _prop1_shared_ratio(profile: Profile) -> CheckResult:
    """``J*_share / J* = 2 / 2^n`` at ``p = 1/2`` (theory.md §1.4), and the 2-action shared optimum (roots of the
    polynomial only) against exact sympy maxima of random integer games; ``m >= 3``: permutation(n) has
    ``J*_share = n!/n^n`` (uniform table) through the certified branch and bound."""
    top = 12 if profile.scale == 1 else 16
    worst, cases, bad = 0.0, 0, []
    for n in range(2, top + 1, 2):
        game = games.xor(n)
        shared, joint = optima.shared_optimum(game), optima.joint_optimum(game)
        ratio = shared.value / joint.value
        err = max(abs(ratio - 2.0 / 2**n), abs(float(shared.policy.table[0, 0]) - 0.5))
        case_err, notes = _shared_case_errors(game, 2.0 / 2**n, 1e-12)
        worst, cases = max(worst, err, case_err), cases + 1
        if err > 1e-12 or notes:
            bad.append(f"xor({n}): ratio/p off by {err:.3g}" + ("; " + "; ".join(notes) if notes else ""))
    rng = np.random.default_rng(profile.seed)
    for k in range(profile.cases(8)):
        n = 1 + k % 5
        payoff = rng.integers(-3, 4, size=(2,) * n).astype(np.float64)
        payoff.flat[int(rng.integers(payoff.size))] = 4.0  # a positive optimum (the exact analysis divides by J*)
        game = matrix_game(payoff, name=f"random 2-action game {k} (n = {n})")
        case_err, notes = _shared_case_errors(game, _exact_shared_two_actions(game), 1e-12)
        worst, cases = max(worst, case_err), cases + 1
        bad.extend(notes)
    for n in (3, 4):
        game = games.permutation(n)
        case_err, notes = _shared_case_errors(game, math.factorial(n) / n**n, 1e-9)
        worst, cases = max(worst, case_err), cases + 1
        bad.extend(notes)
    return CheckResult(cases, worst, not bad, f"xor(n), n = 2..{top} even; {profile.cases(8)} random integer 2-action games "
                       "vs sympy; permutation(3), (4) (branch and bound)" + (f"; {'; '.join(bad[:4])}" if bad else ""))


def _brute_force_product_entropy(payoff: np.ndarray) -> float:
    """``max sum_i log |S_i|`` over every choice of non-empty supports ``S_1 x ... x S_n`` inside the optimal set
    ``{a : r(a) = max r}`` of a one-shot game (theory.md §3.3: the largest entropy of an optimal product
    policy), by enumerating all ``prod_i (2^{A_i} - 1)`` support choices."""
    optimal = payoff >= payoff.max()
    subsets = [[c for size in range(1, a + 1) for c in itertools.combinations(range(a), size)] for a in payoff.shape]
    best = -np.inf
    for choice in itertools.product(*subsets):
        if np.all(optimal[np.ix_(*choice)]):
            best = max(best, sum(math.log(len(c)) for c in choice))
    return best


def _product_half_errors(game) -> tuple[float, list[str]]:  # type: ignore[no-untyped-def]
    """The factorised max-entropy optimal policy of a one-shot game against brute force over supports: its entropy
    equals the brute-force maximum, it is optimal (``J = max r``), uniform on its support, and its support product
    lies in the optimal set."""
    payoff = game.reward[0]
    prod = optima.max_entropy_optimal(game, "factorized")
    expected = _brute_force_product_entropy(payoff)
    supports = [np.flatnonzero(t[0] > 0) for t in prod.tables]
    uniform = max(float(np.max(np.abs(t[0][sup] - 1.0 / len(sup)))) for t, sup in zip(prod.tables, supports))
    inside = bool(np.all(payoff[np.ix_(*supports)] >= payoff.max()))
    errs = {
        "entropy vs brute force": abs(float(prod.entropy()[0]) - expected),
        "J vs max r": abs(evaluate.expected_return(game, prod) - float(payoff.max())),
        "uniform on its support": uniform,
    }
    notes = [f"{game.name}: {k} off by {v:.3g}" for k, v in errs.items() if v > 1e-12]
    if not inside:
        notes.append(f"{game.name}: support leaves the optimal set")
    return max(errs.values()), notes


def _permutation_entropy(profile: Profile) -> CheckResult:
    """Optimal product policy: ``H = 0`` (n = 2..6) and brute force over supports (permutation(2), (3), random
    tie-rich games); optimal AR policy: ``H = log n!`` with conditionals ``log(n-k+1)``."""
    top = 6 if profile.scale == 1 else 7
    worst, cases, bad = 0.0, 0, []
    for n in range(2, top + 1):
        game = games.permutation(n)
        prod = optima.max_entropy_optimal(game, "factorized")
        ar = optima.max_entropy_optimal(game, "autoregressive")
        conditionals = [float(h[0]) for h in ar.conditional_entropies()]
        err = max(
            abs(float(prod.entropy()[0])),
            abs(float(ar.entropy()[0]) - math.log(math.factorial(n))),
            max(abs(h - math.log(n - k)) for k, h in enumerate(conditionals)),
            abs(evaluate.expected_return(game, prod) - 1.0),
            abs(evaluate.expected_return(game, ar) - 1.0),
        )
        worst, cases = max(worst, err), cases + 1
        if err > 1e-12:
            bad.append(f"permutation({n})")
    rng = np.random.default_rng(profile.seed)
    brute = [games.permutation(2), games.permutation(3)]
    for k in range(profile.cases(10)):
        shape = tuple(int(a) for a in rng.integers(2, 4, size=2 + k % 2))
        payoff = (rng.random(shape) < 0.6).astype(np.float64)  # 0/1 payoffs: many optimal joint actions
        payoff.flat[int(rng.integers(payoff.size))] = 1.0
        brute.append(matrix_game(payoff, name=f"random 0/1 game {k} {shape}"))
    for game in brute:
        err, notes = _product_half_errors(game)
        worst, cases = max(worst, err), cases + 1
        bad.extend(notes)
    return CheckResult(cases, worst, not bad, f"n = 2..{top}; product half vs brute force over supports on "
                       f"permutation(2), (3) and {len(brute) - 2} random 0/1 games" + (f"; off: {'; '.join(bad[:4])}" if bad else ""))


def _schedule_value(game, rules: Sequence[np.ndarray]) -> float:  # type: ignore[no-untyped-def]
    """``J`` of the non-stationary deterministic joint policy using ``rules[t]`` (flat joint action per state) at
    step ``t``: backward recursion ``V_H = 0``, ``V_t = r_{rule_t} + gamma P_{rule_t} V_{t+1}``."""
    rows = np.arange(game.n_states)
    r, p = game.reward_flat(), game.transition_flat()
    v = np.zeros(game.n_states)
    for rule in reversed(rules):
        v = r[rows, rule] + game.gamma * p[rows, rule] @ v
    return float(game.initial @ v)


def _brute_force_optimum(game) -> float:  # type: ignore[no-untyped-def]
    """``max J`` over every deterministic joint policy: stationary ones (discounted: the optimum is attained there,
    evaluated by :mod:`._reference`), non-stationary ones ``(rule_0, ..., rule_{H-1})`` for a finite horizon."""
    rules = [np.array(r) for r in itertools.product(range(game.n_joint_actions), repeat=game.n_states)]
    if game.horizon is None:
        best = -np.inf
        for rule in rules:
            actions = np.stack(np.unravel_index(rule, game.n_actions), axis=1)
            tables = [np.eye(a)[actions[:, i]] for i, a in enumerate(game.n_actions)]
            best = max(best, ref.evaluate(game, tables).j)
        return best
    return max(_schedule_value(game, sched) for sched in itertools.product(rules, repeat=game.horizon))


def _brute_force_best_response(game, tables: Sequence[np.ndarray], agent: int) -> float:  # type: ignore[no-untyped-def]
    """``max J(pi'^i, pi^{-i})`` over deterministic (non-stationary if finite-horizon) responses of ``agent``,
    through the agent's induced single-agent chain."""
    others = [t if j != agent else None for j, t in enumerate(tables)]
    letters = "bcdefghijklmnopqr"[: game.n_agents]
    ops, subs = [game.reward], ["s" + letters]
    for j, t in enumerate(others):
        if t is not None:
            ops.append(t)
            subs.append("s" + letters[j])
    r_i = np.einsum(",".join(subs) + "->s" + letters[agent], *ops)
    p_i = np.einsum(",".join(["s" + letters + "z"] + subs[1:]) + "->s" + letters[agent] + "z", game.transition, *ops[1:])
    rows = np.arange(game.n_states)
    choices = list(itertools.product(range(game.n_actions[agent]), repeat=game.n_states))
    if game.horizon is None:
        best = -np.inf
        for c in choices:
            c = np.array(c)
            v = np.linalg.solve(np.eye(game.n_states) - game.gamma * p_i[rows, c], r_i[rows, c])
            best = max(best, float(game.initial @ v))
        return best
    best = -np.inf
    for sched in itertools.product(choices, repeat=game.horizon):
        v = np.zeros(game.n_states)
        for c in reversed(sched):
            c = np.array(c)
            v = r_i[rows, c] + game.gamma * p_i[rows, c] @ v
        best = max(best, float(game.initial @ v))
    return best


def _optima_brute_force(profile: Profile) -> CheckResult:
    """joint/factorised optimum, best responses, Nash gap and the (uncertified) multi-state shared optimum against
    enumeration on small random games: discounted and finite-horizon (theory.md §0, §1.4, §1.9)."""
    rng = np.random.default_rng(profile.seed)
    worst, cases, bad = 0.0, 0, []
    for k in range(profile.cases(8)):
        n_states = 1 + k % 2
        horizon = None if k % 4 < 2 else (3 if n_states == 1 else 2)
        gamma = float(rng.choice([0.5, 0.9])) if horizon is None else float(rng.choice([0.9, 1.0]))
        base = games.random_game(rng, 2, [2, 2], n_states, gamma=0.5)
        game = MarkovGame(base.reward, base.transition, gamma, base.initial, horizon=horizon, name=f"random {k}")
        label = f"{game.name} (S={n_states}, gamma={gamma}, horizon={horizon})"
        joint, fact = optima.joint_optimum(game), optima.factorized_optimum(game)
        brute = _brute_force_optimum(game)
        errs = {"J* vs enumeration": abs(joint.value - brute),
                "factorised policy's J": abs(evaluate.expected_return(game, fact.policy) - fact.value),
                "actions of the returned policies": float(np.max(np.abs(
                    Factorized.deterministic(fact.actions, game.n_actions).probs() - fact.policy.probs()))
                    + np.max(np.abs(Factorized.deterministic(joint.actions, game.n_actions).probs() - joint.policy.probs())))}
        if horizon is None:
            errs["J(joint policy)"] = abs(evaluate.expected_return(game, joint.policy) - joint.value)
            errs["factorised = joint"] = abs(fact.value - brute)
        else:
            rules = [np.ravel_multi_index(tuple(joint.schedule[t].T), game.n_actions) for t in range(horizon)]
            errs["J(schedule)"] = abs(_schedule_value(game, rules) - brute)
            errs["value + gap = J*"] = abs(fact.value + fact.certified_gap - brute)
        tables = [rng.dirichlet(np.ones(2), size=n_states) for _ in range(2)]
        for i in range(2):
            errs[f"BR agent {i}"] = abs(optima.best_response_value(game, tables, i) - _brute_force_best_response(game, tables, i))
        j_pi = evaluate.expected_return(game, Factorized(tables))
        gap = max(_brute_force_best_response(game, tables, i) for i in range(2)) - j_pi
        errs["Nash gap"] = abs(optima.nash_gap(game, tables) - gap)
        if optima.is_epsilon_nash(game, tables, gap + 1e-9) is not True or (gap > 1e-6 and optima.is_epsilon_nash(game, tables, gap / 2) is not False):
            errs["is_epsilon_nash"] = 1.0
        scale = 1.0 + abs(brute)
        for name, e in errs.items():
            worst = max(worst, e / scale)
            if e / scale > 1e-10:
                bad.append(f"{label}: {name} off by {e:.3g}")
        cases += 1
    # the multi-state shared optimum is a local method (certified_gap = inf): at least the best of a dense grid
    for k in range(2):
        base = games.random_game(rng, 2, [2, 2], 2, gamma=0.5)
        game = MarkovGame(base.reward, base.transition, 0.5, base.initial, horizon=None if k == 0 else 3, name=f"shared {k}")
        res = optima.shared_optimum(game, rng=np.random.default_rng(profile.seed))
        grid = np.linspace(0.0, 1.0, 41)
        best = max(evaluate.expected_return(game, Shared(np.array([[a, 1 - a], [b, 1 - b]]), 2)) for a in grid for b in grid)
        short = max(0.0, best - res.value)
        if short > 1e-9 or res.certified_gap != np.inf or abs(evaluate.expected_return(game, res.policy) - res.value) > 1e-12:
            bad.append(f"{game.name}: SLSQP value {res.value:.12g} below the grid's {best:.12g} or not flagged")
        worst = max(worst, short)
        cases += 1
    return CheckResult(cases, worst, not bad, "joint/factorised optima, best responses, Nash gaps vs enumeration "
                       "(discounted and finite-horizon); multi-state shared optimum >= a 41x41 grid"
                       + (f"; {'; '.join(bad[:4])}" if bad else ""))


def _climbing_penalty_ne(profile: Profile) -> CheckResult:
    """Pure NE: climbing {(a,a), (b,b)}; penalty(k), k in {0, -10, -100}: {(a,a), (b,b), (c,c)} (theory.md §8)."""
    expected = {"climbing": {(0, 0), (1, 1)}}
    cases = [("climbing", games.climbing())]
    for k in (0.0, -10.0, -100.0):
        cases.append((f"penalty({k:g})", games.penalty(k)))
        expected[f"penalty({k:g})"] = {(0, 0), (1, 1), (2, 2)}
    worst, bad = 0.0, []
    for name, game in cases:
        found = set(optima.pure_nash_equilibria(game))
        err = float(len(found ^ expected[name]))
        worst = max(worst, err)
        if err:
            bad.append(f"{name}: {sorted(found)}")
    return CheckResult(len(cases), worst, not bad, "; ".join(bad))


CHECKS = [
    Check(
        name="optima_brute_force",
        claim="Exact optima equal enumeration on small random games: J* (policy iteration; backward induction over "
        "non-stationary policies for a finite horizon), the factorised optimum, best-response values and Nash gaps; "
        "the uncertified multi-state shared optimum is at least the best of a dense grid",
        source="theory.md §0, §1.4, §1.9 (Def. 3)",
        method="exact",
        run=_optima_brute_force,
    ),
    Check(
        name="prop1_shared_ratio_exact",
        claim="Parameter sharing is exponentially suboptimal: J*_share / J* = 2/2^n on the n-agent XOR game, "
        "attained at p = 1/2 (n = 2..12; to 16 with --thorough); the shared optimum (roots of J' only, certified "
        "gap computed and > 0) matches exact sympy maxima of random 2-action games and n!/n^n on permutation(3), (4)",
        source="ICLR22 Prop. 1, theory.md §1.4",
        method="exact",
        run=_prop1_shared_ratio,
    ),
    Check(
        name="permutation_entropy",
        claim="Permutation game: every optimal product policy has entropy 0, the optimal AR policy reaches "
        "log n! with conditionals log(n-k+1) (n = 2..6; to 7 with --thorough); the max-entropy optimal product "
        "policy matches brute force over all supports on permutation(2), (3) and random 0/1 games",
        source="Fu et al. §3.3, theory.md §3.3",
        method="exact",
        run=_permutation_entropy,
    ),
    Check(
        name="climbing_penalty_ne",
        claim="Pure NE: climbing {(a,a),(b,b)}; penalty k in {0,-10,-100}: {(a,a),(b,b),(c,c)}",
        source="theory.md §8",
        method="exact",
        run=_climbing_penalty_ne,
    ),
]
