"""The ``mat_exact_monotone`` row of ``seqmarl verify``: it passes, is reproducible by its seed, and fails under
realistic mutations of :mod:`seqmarl.theory.mat` (applied by monkeypatching the function a source edit would
change), so it tests the theorem and the program, not a safeguard."""

from __future__ import annotations

from typing import Callable

import numpy as np
import pytest

from seqmarl.proofs_checks import Profile, select
from seqmarl.proofs_checks import mat_monotonicity as row_module
from seqmarl.theory import mat, trust_region

ROW = "mat_exact_monotone"
ORIGINAL = {
    "context_weights": mat.context_weights,
    "ar_quantities": mat.ar_quantities,
    "happo_lp": trust_region.solve_happo_lp,
    "ar_clip_update": mat._ar_clip_update,
}


def _run(profile: Profile | None = None):  # type: ignore[no-untyped-def]
    (check,) = select([ROW])
    return check.execute(profile or Profile())


def test_row_passes_fast_and_reports_the_answer() -> None:
    result = _run()
    assert result.passed, result.detail
    assert result.worst_error <= 1e-12
    assert result.cases > 150
    assert result.seconds < 10.0  # about 0.5 s alone; generous for a shared machine
    assert "-0.023104" in result.detail and "decrease 0.021504" in result.detail
    (check,) = select([ROW])
    assert check.method == "exact" and "MAT" in check.source


def test_row_is_reproducible_by_its_seed() -> None:
    a, b, c = _run(Profile(seed=0)), _run(Profile(seed=0)), _run(Profile(seed=1))
    assert (a.cases, a.worst_error, a.detail) == (b.cases, b.worst_error, b.detail)
    assert a.detail != c.detail and c.passed


def test_stored_case_is_the_exact_rational_data() -> None:
    from fractions import Fraction

    (p1, _), (p2, _) = row_module.DEC_POLICY
    j_old = (2 * p1 - 1) * (2 * p2 - 1)  # R = [[1, -1], [-1, 1]]: J = (2p - 1)(2q - 1)
    assert j_old == row_module.DEC_J_OLD == Fraction(-1, 625)
    (n1, _), (n2, _) = row_module.DEC_TABLES_SIMULTANEOUS
    assert n1 == Fraction(6, 5) * p1 and n2 == 1 - Fraction(6, 5) * (1 - p2)  # both ratios at the clip 1 + eps
    assert (2 * n1 - 1) * (2 * n2 - 1) == row_module.DEC_J_SIMULTANEOUS


# ------------------------------------------------------------------------------------ mutations
def _split_after_summing(pi, k, adv):  # type: ignore[no-untyped-def]
    """The sign split of the *expected* advantage given (c, a_k) instead of per sample."""
    wp, wm = ORIGINAL["context_weights"](pi, k, adv)
    total = wp + wm
    return np.maximum(total, 0.0), np.minimum(total, 0.0)


def _context_ignored(pi, k, adv):  # type: ignore[no-untyped-def]
    """Every context of position k gets the weights summed over the earlier agents' actions (a decentralised
    conditional's weights, broadcast back)."""
    wp, wm = ORIGINAL["context_weights"](pi, k, adv)
    if k == 0:
        return wp, wm
    axes = tuple(range(1, k + 1))
    prefix = mat._prefix(pi.conditionals, k)[..., None]
    return (np.broadcast_to((prefix * wp).sum(axis=axes, keepdims=True), wp.shape).copy(),
            np.broadcast_to((prefix * wm).sum(axis=axes, keepdims=True), wm.shape).copy())


def _q_not_a(game, pi):  # type: ignore[no-untyped-def]
    """No baseline: Q_pi in place of A_pi in the clipped loss."""
    quant = ORIGINAL["ar_quantities"](game, pi)
    return mat.ARQuantities(adv=quant.q_chain[-1], v=quant.v, rho=quant.rho, j=quant.j, q_chain=quant.q_chain)


def _random_tables(seed: int) -> Callable[..., np.ndarray]:
    rng = np.random.default_rng(seed)

    def solver(old: np.ndarray, *args: object) -> np.ndarray:
        return rng.dirichlet(np.ones(old.shape[1]), size=old.shape[0])

    return solver


MUTATIONS: dict[str, Callable[[pytest.MonkeyPatch], None]] = {
    "sign split of the expected advantage instead of per sample":
        lambda mp: mp.setattr(mat, "context_weights", _split_after_summing),
    "W+ and W- swapped":
        lambda mp: mp.setattr(mat, "context_weights", lambda *a: (lambda w: (-w[1], -w[0]))(ORIGINAL["context_weights"](*a))),
    "conditional ignores its context (decentralised weights)":
        lambda mp: mp.setattr(mat, "context_weights", _context_ignored),
    "Q in place of the advantage":
        lambda mp: mp.setattr(mat, "ar_quantities", _q_not_a),
    "solver returns the old table":
        lambda mp: mp.setattr(trust_region, "solve_happo_lp", lambda old, wp, wm, rho, clip: np.array(old, dtype=float)),
    "solver returns random tables":
        lambda mp: mp.setattr(trust_region, "solve_happo_lp", _random_tables(0)),
    "clip 0.3 instead of the asked one":
        lambda mp: mp.setattr(trust_region, "solve_happo_lp", lambda old, wp, wm, rho, clip: ORIGINAL["happo_lp"](old, wp, wm, rho, 0.3)),
    # HAPPO's factor: the same JOINT policy (part 3 of the row), but contexts the new policy never reaches keep their
    # old rows, which are not maximisers of MAT's program there; the per-row program check sees it.
    "mat_exact weighted by the factor (sequential rows)":
        lambda mp: mp.setattr(mat, "_ar_clip_update", lambda game, pi, clip, safeguard, sequential:
                              ORIGINAL["ar_clip_update"](game, pi, clip, safeguard, True)),
}


@pytest.mark.parametrize("mutation", sorted(MUTATIONS))
def test_row_catches_the_mutation(mutation: str, monkeypatch: pytest.MonkeyPatch) -> None:
    MUTATIONS[mutation](monkeypatch)
    result = _run()
    assert not result.passed, f"{ROW} passed under the mutation: {result.detail}"


def test_unmutated_row_passes_under_the_same_harness(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mat, "context_weights", ORIGINAL["context_weights"])
    assert _run().passed
