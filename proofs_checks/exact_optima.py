"""Exact optima of the oracle games: Prop. 1 shared ratio, permutation-game entropies, climbing/penalty NE sets.

Each row compares :mod:`seqmarl.theory.optima` with a closed form; ``worst_error`` is the largest absolute
deviation from it (for NE sets: the number of joint actions in the symmetric difference).
"""

from __future__ import annotations

import math

from seqmarl.theory import evaluate, games, optima

from .base import Check, CheckResult, Profile


def _prop1_shared_ratio(profile: Profile) -> CheckResult:
    """``J*_share / J* = 2 / 2^n`` and the shared optimum sits at ``p = 1/2`` (theory.md §1.4)."""
    top = 12 if profile.scale == 1 else 16
    worst, cases, bad = 0.0, 0, []
    for n in range(2, top + 1, 2):
        game = games.xor(n)
        shared, joint = optima.shared_optimum(game), optima.joint_optimum(game)
        ratio = shared.value / joint.value
        err = max(
            abs(ratio - 2.0 / 2**n),
            abs(float(shared.policy.table[0, 0]) - 0.5),
            abs(evaluate.expected_return(game, shared.policy) - shared.value),
            shared.certified_gap,
        )
        worst, cases = max(worst, err), cases + 1
        if err > 1e-12:
            bad.append(n)
    return CheckResult(cases, worst, not bad, f"n = 2..{top} (even)" + (f"; off for n = {bad}" if bad else ""))


def _permutation_entropy(profile: Profile) -> CheckResult:
    """Optimal product policy: ``H = 0``; optimal AR policy: ``H = log n!`` with conditionals ``log(n-k+1)``."""
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
            bad.append(n)
    return CheckResult(cases, worst, not bad, f"n = 2..{top}" + (f"; off for n = {bad}" if bad else ""))


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
        name="prop1_shared_ratio_exact",
        claim="Parameter sharing is exponentially suboptimal: J*_share / J* = 2/2^n on the n-agent XOR game, "
        "attained at p = 1/2 (n = 2..12; to 16 with --thorough)",
        source="ICLR22 Prop. 1, theory.md §1.4",
        method="exact",
        run=_prop1_shared_ratio,
    ),
    Check(
        name="permutation_entropy",
        claim="Permutation game: every optimal product policy has entropy 0, the optimal AR policy reaches "
        "log n! with conditionals log(n-k+1) (n = 2..6; to 7 with --thorough)",
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
