"""What VDN, QMIX and IGM-complete (QPLEX) decompositions can represent (theory.md §3.2, §7.6, §8).

Four rows: the exact least-squares VDN fits (Fractions), exact QMIX (monotone) membership, the best monotone fit by
convex QPs, and the non-product optimal set of XOR.
"""

from __future__ import annotations

import itertools
from fractions import Fraction as Fr

import numpy as np

from seqmarl.theory import factorization as fz
from seqmarl.theory import games
from seqmarl.theory.markov_game import matrix_game

from .base import Check, CheckResult, Profile

__all__ = ["CHECKS", "VDN_EXACT"]


def _table(rows: list[list[Fr | int]]) -> np.ndarray:
    return np.array([[Fr(x) for x in r] for r in rows], dtype=object)


def _ninths(rows: list[list[int]]) -> np.ndarray:
    return _table([[Fr(x, 9) for x in r] for r in rows])


#: Uniform-weight VDN fits ``Qhat(a,b) = Rbar_a. + Rbar_.b - Rbar``: QTRAN from theory.md §7.6; climbing and penalty
#: derived by hand from the row/column means in theory.md §8 (they round to its 2-decimal tables); XOR from §3.2.
VDN_EXACT: dict[str, tuple[object, np.ndarray]] = {
    "qtran": (games.qtran(), _ninths([[-56, -44, -44], [-44, -32, -32], [-44, -32, -32]])),
    "climbing": (games.climbing(), _ninths([[-83, -95, 7], [-77, -89, 13], [-11, -23, 79]])),
    "penalty(-100)": (games.penalty(-100), _ninths([[-362, -86, -362], [-86, 190, -86], [-362, -86, -362]])),
    "penalty(0)": (games.penalty(0), _ninths([[38, 14, 38], [14, -10, 14], [38, 14, 38]])),
    "xor": (games.xor(2), _table([[Fr(1, 2), Fr(1, 2)], [Fr(1, 2), Fr(1, 2)]])),
}

#: The "QMIX-solvable control" of theory.md §7.6 (exact decimals).
CONTROL = _table([[12, Fr(-1, 10), Fr(-1, 10)], [Fr(-1, 10), 0, 0], [Fr(-1, 10), 0, 0]])


def _exact(q: object) -> np.ndarray:
    """The table as exact Fractions (each float converted exactly)."""
    table = fz.as_q_table(q)
    return np.array([Fr(float(x)) for x in table.ravel()], dtype=object).reshape(table.shape)


def _normal_equations_hold(q: np.ndarray, fit: np.ndarray) -> bool:
    """Exact LS certificate for an additive ``fit``: ``Q - fit`` sums to 0 on every slice ``a_i = b``."""
    r = q - fit
    return all(
        all(sum(np.ravel(np.take(r, b, axis=i)), Fr(0)) == 0 for b in range(q.shape[i])) for i in range(q.ndim)
    )


def _random_int_table(rng: np.random.Generator, max_agents: int = 3) -> np.ndarray:
    n = int(rng.integers(2, max_agents + 1))
    shape = tuple(int(m) for m in rng.integers(2, 4, size=n))
    return rng.integers(-5, 6, size=shape)


def run_vdn_ls_closed_form(profile: Profile) -> CheckResult:
    failures: list[str] = []
    worst = 0.0
    cases = 0
    for name, (game, expected) in VDN_EXACT.items():
        exact = fz.vdn_fit_exact(game)
        q = _exact(game)
        if not np.array_equal(exact, expected) or not _normal_equations_hold(q, exact):
            failures.append(f"{name}: exact fit differs from the closed form")
        fit = fz.vdn_fit(game)
        worst = max(worst, float(np.max(np.abs(fit.fitted - expected.astype(np.float64)))))
        cases += 1
    facts = {
        "qtran greedy in {B,C}^2 with payoff 0": set(fz.vdn_fit(games.qtran()).greedy) == {(1, 1), (1, 2), (2, 1), (2, 2)}
        and fz.vdn_fit(games.qtran()).worst_payoff == 0.0,
        "climbing greedy (c,c) payoff 5": fz.vdn_fit(games.climbing()).greedy_payoffs == (5.0,)
        and fz.vdn_fit(games.climbing()).greedy == ((2, 2),),
        "penalty(-100) greedy (b,b) payoff 2": fz.vdn_fit(games.penalty(-100)).greedy == ((1, 1),),
        "penalty(0) greedy {a,c}^2, worst payoff 0": fz.vdn_fit(games.penalty(0)).worst_payoff == 0.0,
        "xor residual exactly 1": sum(((_exact(games.xor(2)) - VDN_EXACT["xor"][1]) ** 2).ravel()) == 1,
    }
    failures += [k for k, ok in facts.items() if not ok]
    rng = np.random.default_rng(profile.seed)
    for _ in range(profile.cases(20)):
        q = _random_int_table(rng)
        exact = fz.vdn_fit_exact(q)
        if not _normal_equations_hold(_exact(q), exact):
            failures.append(f"normal equations fail for random table of shape {q.shape}")
        worst = max(worst, float(np.max(np.abs(fz.vdn_fit(q).fitted - exact.astype(np.float64)))))
        cases += 1
    passed = not failures and worst <= 1e-9
    detail = "; ".join(failures) or (
        f"{len(VDN_EXACT)} named games match the Fraction closed forms and greedy facts; "
        f"{cases - len(VDN_EXACT)} random integer tables satisfy the normal equations exactly; worst |lstsq - exact|"
    )
    return CheckResult(cases=cases + len(facts), worst_error=worst, passed=passed, detail=detail)


def _brute_force_representable(q: np.ndarray) -> bool:
    for orders in itertools.product(*[itertools.permutations(range(m)) for m in q.shape]):
        if fz.monotone_violation(q, orders) == 0.0:
            return True
    return False


def run_qmix_representability(profile: Profile) -> CheckResult:
    failures: list[str] = []
    cases = 0
    ok, witness = fz.is_monotone_representable(games.qtran())
    if ok or witness.actions != (0, 1) or witness.contexts != ((0,), (1,)) or "column A" not in witness.description:
        failures.append(f"qtran: expected rows A/B crossing on columns A/B, got {witness.description!r}")
    cases += 1
    control = matrix_game(CONTROL.astype(np.float64), name="control")
    for game in (games.climbing(), games.penalty(0), games.penalty(-100), games.xor(2), control):
        if fz.is_monotone_representable(game)[0]:
            failures.append(f"{game.name} reported monotone-representable (rows cross by hand)")
        cases += 1
    rng = np.random.default_rng(profile.seed)
    for _ in range(profile.cases(10)):
        u, v = rng.uniform(0.1, 3.0, 3), rng.uniform(0.1, 3.0, 4)
        for table in (u[:, None] + v[None, :], np.exp(u)[:, None] + u[:, None] * v[None, :]):
            ok, witness = fz.is_monotone_representable(table)
            if not ok or witness.orders != (tuple(np.argsort(u)), tuple(np.argsort(v))):
                failures.append("a monotone f(q1, q2) table was rejected or given wrong orders")
            cases += 1
    for _ in range(profile.cases(40)):
        q = rng.integers(-2, 3, size=tuple(int(m) for m in rng.integers(2, 4, size=int(rng.integers(2, 4)))))
        if fz.is_monotone_representable(q)[0] != _brute_force_representable(q):
            failures.append(f"chain criterion != brute force on {q.tolist()}")
        cases += 1
    return CheckResult(
        cases=cases,
        worst_error=0.0,
        passed=not failures,
        detail="; ".join(failures[:3])
        or "QTRAN/climbing/penalty/XOR/control not monotone (witnessed); additive and monotone-f tables are; "
        "pairwise-chain criterion == brute force over total orders on random integer tables",
    )


def run_qmix_best_fit_convex(profile: Profile) -> CheckResult:
    failures: list[str] = []
    worst = 0.0
    lines: list[str] = []
    # Hand values (see tests/theory/test_factorization.py): QTRAN 288 with A on top (greedy (A,A)), 320 with A at
    # the bottom (greedy {B,C}^2); XOR 2/3; control 1/50.
    expected = {"qtran": 288.0, "xor(2)": 2.0 / 3.0, "control": 0.02}
    control = matrix_game(CONTROL.astype(np.float64), name="control")
    named = [games.qtran(), games.climbing(), games.penalty(-100), games.penalty(0), games.xor(2), control]
    for game in named:
        fit = fz.qmix_best_fit(game)
        vdn = fz.vdn_fit(game)
        optimum = fz.greedy_set(game)
        if not (0 < fit.residual <= vdn.residual + 1e-7):
            failures.append(f"{game.name}: monotone residual {fit.residual:.6g} vs VDN {vdn.residual:.6g}")
        if game.name in expected:
            worst = max(worst, abs(fit.residual - expected[game.name]))
        worst = max(worst, fz.monotone_violation(fit.fitted, fit.orders))
        hits = "optimal" if set(fit.greedy) <= set(optimum) else "NOT optimal"
        lines.append(f"{game.name}: residual {fit.residual:.6g} (VDN {vdn.residual:.6g}), greedy {fit.greedy} {hits}")
    if fz.qmix_best_fit(games.climbing()).greedy != ((2, 2),):
        failures.append("climbing: best monotone fit should keep greedy (c,c) != optimum (a,a)")
    if fz.qmix_best_fit(games.penalty(-100)).greedy != ((1, 1),):
        failures.append("penalty(-100): best monotone fit should keep greedy (b,b)")
    low = fz.qmix_best_fit(games.qtran(), orders=[((0, 1, 2), (0, 1, 2))])
    worst = max(worst, abs(low.residual - 320.0))
    if set(low.greedy) != {(1, 1), (1, 2), (2, 1), (2, 2)}:
        failures.append("qtran, A-lowest cone: greedy should be {B,C}^2")
    rng = np.random.default_rng(profile.seed)
    cases = len(named) + 1
    for _ in range(profile.cases(6)):
        q = rng.integers(-3, 4, size=tuple(int(m) for m in rng.integers(2, 4, size=2))).astype(np.float64)
        w = rng.integers(1, 4, size=q.shape).astype(np.float64)
        fit = fz.qmix_best_fit(q, w)
        if fit.residual > fz.vdn_fit(q, w).residual + 1e-7:
            failures.append(f"monotone residual above VDN on {q.tolist()}")
        if (fit.residual <= 1e-9) != fz.is_monotone_representable(q)[0]:
            failures.append(f"zero residual != representable on {q.tolist()}")
        worst = max(worst, fz.monotone_violation(fit.fitted, fit.orders))
        cases += 1
    passed = not failures and worst <= 1e-7
    return CheckResult(cases=cases, worst_error=worst, passed=passed, detail="; ".join(failures or lines))


def run_igm_xor(profile: Profile) -> CheckResult:
    failures: list[str] = []
    for game in (games.xor(2), games.xor(4), games.permutation(3), games.penalty(0)):
        if fz.greedy_set_is_product(game) or fz.igm_representable_optimal_set(game):
            failures.append(f"{game.name}: optimal set reported as a product")
    for game in (games.qtran(), games.climbing()):
        if not fz.igm_representable_optimal_set(game):
            failures.append(f"{game.name}: unique optimum must be IGM-representable")
    report = fz.igm_report(games.xor(2))
    if report["QPLEX"].represents_exactly or report["QPLEX"].regret != 0.0:
        failures.append("xor report: QPLEX should not represent the optimal set but reach regret 0")
    return CheckResult(
        cases=7,
        worst_error=0.0,
        passed=not failures,
        detail="; ".join(failures)
        or "XOR, xor(4), permutation(3), penalty(0): optimal set not a product -> no IGM decomposition has it as argmax",
    )


CHECKS = [
    Check(
        name="vdn_ls_closed_form",
        claim=(
            "Uniform-data least-squares VDN fit is Qhat(a,b) = Rbar_a. + Rbar_.b - Rbar: QTRAN -> "
            "[[-56,-44,-44],[-44,-32,-32],[-44,-32,-32]]/9 (greedy {B,C}^2, payoff 0 vs 8), climbing greedy (c,c)=5, "
            "penalty(-100) greedy (b,b)=2, XOR constant 1/2 with residual 1"
        ),
        source="theory.md §7.6, §8, §3.2 [DERIVED, checked]",
        method="exact",
        run=run_vdn_ls_closed_form,
    ),
    Check(
        name="qmix_representability",
        claim=(
            "Q = f(q1(a), q2(b)) with f monotone iff rows and columns are each pairwise comparable (weak orders); "
            "the QTRAN matrix is not (column A ranks row A above B, column B the reverse)"
        ),
        source="theory.md §7.6 [DERIVED]",
        method="exact",
        run=run_qmix_representability,
    ),
    Check(
        name="qmix_best_fit_convex",
        claim=(
            "Best monotone (QMIX-class) LS fit = min over action orderings of a convex QP: residual > 0 for QTRAN "
            "(288), climbing, penalty, XOR (2/3); <= the VDN residual; climbing keeps greedy (c,c) != optimum"
        ),
        source="theory.md §7.2, §7.6 [DERIVED]",
        method="convex",
        run=run_qmix_best_fit_convex,
    ),
    Check(
        name="igm_xor_not_representable",
        claim=(
            "IGM forces a product greedy set; XOR's optimal set {(0,1),(1,0)} is not a product, so no IGM "
            "decomposition (VDN, QMIX, QPLEX) has exactly it as argmax"
        ),
        source="Fu-site claim, theory.md §3.2 [DERIVED]",
        method="exact",
        run=run_igm_xor,
    ),
]
