"""Each realistic mutation of ``theory/`` (applied by monkeypatching the function a source edit would change) makes
the ``seqmarl verify`` row that owns the theorem FAIL. These tests are the proof that the rows test the theorem,
not a safeguard: the audit behind them found rows that passed with a wrong ``C``, KL direction, occupancy, a
no-op or random solver, the root-finding removed, or the support search broken.

Every mutation is checked against the row(s) named in its parametrisation with the default profile (seed 0).
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import pytest
from scipy.optimize import brentq

from seqmarl.proofs_checks import Profile, select
from seqmarl.theory import bounds, evaluate, iteration, optima, trust_region

ORIGINAL = {
    "penalty_constant": bounds.penalty_constant,
    "occupancy": evaluate.occupancy,
    "kl_tables": bounds.kl_tables,
    "max_kl_penalty": trust_region.solve_max_kl_penalty,
    "mean_kl_ball": trust_region.solve_mean_kl_ball,
    "state_kl_ball": trust_region.solve_state_kl_penalty_ball,
    "happo_lp": trust_region.solve_happo_lp,
    "happo_weights": iteration.happo_weights,
}


def _run(name: str):  # type: ignore[no-untyped-def]
    (check,) = select([name])
    return check.execute(Profile())


def _fails(name: str) -> None:
    result = _run(name)
    assert not result.passed, f"{name} passed under the mutation: {result.detail}"


# ------------------------------------------------------------------------------------ reversed-KL "solvers"
def _rtilt(q: np.ndarray, g: np.ndarray, mu: float) -> np.ndarray:
    """argmax_P <g, P> - mu KL(P || q) = q exp(g / mu) / Z (the reversed direction)."""
    z = np.log(q) + g / mu
    z -= z.max()
    p = np.exp(z)
    return p / p.sum()


def _rkl(p: np.ndarray, q: np.ndarray) -> float:
    return float(np.sum(p * np.log(p / q)))


def _mu_for_radius(q: np.ndarray, g: np.ndarray, t: float) -> float:
    """mu with KL(P(mu) || q) = t (KL decreasing in mu)."""
    f = lambda y: _rkl(_rtilt(q, g, np.exp(y)), q) - t  # noqa: E731
    lo, hi = -30.0, 30.0
    while f(lo) < 0:
        lo -= 10
    while f(hi) > 0:
        hi += 10
    return float(np.exp(brentq(f, lo, hi, xtol=1e-13)))


def _flat(g: np.ndarray) -> bool:
    return float(np.ptp(g)) <= 1e-12 * max(1.0, float(np.max(np.abs(g))))


def reversed_max_kl_penalty(old: np.ndarray, lin: np.ndarray, c: float) -> np.ndarray:
    """max sum_s <lin_s, P_s> - c max_s KL(P_s || old_s): rows on KL = t with multipliers summing to c."""
    rows = [s for s in range(old.shape[0]) if not _flat(lin[s])]
    out = old.copy()
    if not rows:
        return out
    total = lambda y: sum(_mu_for_radius(old[s], lin[s], np.exp(y)) for s in rows) - c  # noqa: E731
    lo, hi = -40.0, 5.0
    while total(hi) > 0:
        hi += 5
    t = np.exp(brentq(total, lo, hi, xtol=1e-12)) if total(lo) > 0 else np.exp(lo)
    for s in rows:
        out[s] = _rtilt(old[s], lin[s], _mu_for_radius(old[s], lin[s], t))
    return out


def reversed_mean_kl_ball(old: np.ndarray, g: np.ndarray, w: np.ndarray, delta: float) -> np.ndarray:
    """max sum_s w_s <g_s, P_s>  s.t.  sum_s w_s KL(P_s || old_s) <= delta (one multiplier)."""
    rows = [s for s in range(old.shape[0]) if w[s] > 0 and not _flat(g[s])]
    out = old.copy()
    if not rows:
        return out
    f = lambda y: sum(w[s] * _rkl(_rtilt(old[s], g[s], np.exp(y)), old[s]) for s in rows) - delta  # noqa: E731
    mu = np.exp(brentq(f, -30.0, 30.0, xtol=1e-13))
    for s in rows:
        out[s] = _rtilt(old[s], g[s], mu)
    return out


def reversed_state_kl_ball(old: np.ndarray, g: np.ndarray, lam: float, delta: float) -> np.ndarray:
    """Per row max <g, P> - lam KL(P || old)  s.t.  KL(P || old) <= delta."""
    out = old.copy()
    for s in range(old.shape[0]):
        if _flat(g[s]):
            continue
        p = _rtilt(old[s], g[s], lam)
        out[s] = p if _rkl(p, old[s]) <= delta else _rtilt(old[s], g[s], _mu_for_radius(old[s], g[s], delta))
    return out


def _random_tables(seed: int) -> Callable[..., np.ndarray]:
    rng = np.random.default_rng(seed)

    def solver(old: np.ndarray, *args: object) -> np.ndarray:
        return rng.dirichlet(np.ones(old.shape[1]), size=old.shape[0])

    return solver


# ------------------------------------------------------------------------------------ mutations
MONOTONE_MUTATIONS: dict[str, tuple[str, Callable[[pytest.MonkeyPatch], None]]] = {
    "C/4": ("algorithm1_monotone",
            lambda mp: mp.setattr(bounds, "penalty_constant", lambda g, p: ORIGINAL["penalty_constant"](g, p) / 4)),
    "C*4": ("algorithm1_monotone",
            lambda mp: mp.setattr(bounds, "penalty_constant", lambda g, p: ORIGINAL["penalty_constant"](g, p) * 4)),
    "normalised rho in Algorithm 1": ("algorithm1_monotone",
            lambda mp: mp.setattr(evaluate, "occupancy", lambda g, p: ORIGINAL["occupancy"](g, p) / ORIGINAL["occupancy"](g, p).sum())),
    "Algorithm 1 solver returns the old table": ("algorithm1_monotone",
            lambda mp: mp.setattr(trust_region, "solve_max_kl_penalty", lambda old, lin, c: np.array(old, dtype=float))),
    "Algorithm 1 solver returns random tables": ("algorithm1_monotone",
            lambda mp: mp.setattr(trust_region, "solve_max_kl_penalty", _random_tables(0))),
    "Algorithm 1 solves the reversed KL": ("algorithm1_monotone",
            lambda mp: mp.setattr(trust_region, "solve_max_kl_penalty", reversed_max_kl_penalty)),
    "Algorithm 1 penalises the mean KL instead of the max": ("algorithm1_monotone",
            lambda mp: mp.setattr(trust_region, "solve_max_kl_penalty",
                                  lambda old, lin, c: ORIGINAL["state_kl_ball"](old, lin, c / len(old), 1e9))),
    "KL ball with the improper rho": ("hatrpo_kl_ball_monotone",
            lambda mp: mp.setattr(evaluate, "state_distribution", lambda g, p: ORIGINAL["occupancy"](g, p))),
    "KL ball solver returns the old table": ("hatrpo_kl_ball_monotone",
            lambda mp: mp.setattr(trust_region, "solve_mean_kl_ball", lambda old, g, w, d: np.array(old, dtype=float))),
    "KL ball solver returns random tables": ("hatrpo_kl_ball_monotone",
            lambda mp: mp.setattr(trust_region, "solve_mean_kl_ball", _random_tables(1))),
    "KL ball solves the reversed KL": ("hatrpo_kl_ball_monotone",
            lambda mp: mp.setattr(trust_region, "solve_mean_kl_ball", reversed_mean_kl_ball)),
    "KL ball radius halved": ("hatrpo_kl_ball_monotone",
            lambda mp: mp.setattr(trust_region, "solve_mean_kl_ball", lambda old, g, w, d: ORIGINAL["mean_kl_ball"](old, g, w, d / 2))),
    "HAML drift weight halved": ("haml_drift_monotone",
            lambda mp: mp.setattr(trust_region, "solve_state_kl_penalty_ball", lambda old, g, lam, d: ORIGINAL["state_kl_ball"](old, g, lam / 2, d))),
    "HAML ball radius halved": ("haml_drift_monotone",
            lambda mp: mp.setattr(trust_region, "solve_state_kl_penalty_ball", lambda old, g, lam, d: ORIGINAL["state_kl_ball"](old, g, lam, d / 2))),
    "HAML solves the reversed KL": ("haml_drift_monotone",
            lambda mp: mp.setattr(trust_region, "solve_state_kl_penalty_ball", reversed_state_kl_ball)),
    "HAML solver returns the old table": ("haml_drift_monotone",
            lambda mp: mp.setattr(trust_region, "solve_state_kl_penalty_ball", lambda old, g, lam, d: np.array(old, dtype=float))),
    "HAML solver returns random tables": ("haml_drift_monotone",
            lambda mp: mp.setattr(trust_region, "solve_state_kl_penalty_ball", _random_tables(2))),
    "HAPPO LP returns the old table": ("happo_exact_monotone",
            lambda mp: mp.setattr(trust_region, "solve_happo_lp", lambda old, wp, wm, rho, clip: np.array(old, dtype=float))),
    "HAPPO LP returns random tables": ("happo_exact_monotone",
            lambda mp: mp.setattr(trust_region, "solve_happo_lp", _random_tables(3))),
    "HAPPO clip 0.3 instead of 0.2": ("happo_exact_monotone",
            lambda mp: mp.setattr(trust_region, "solve_happo_lp", lambda old, wp, wm, rho, clip: ORIGINAL["happo_lp"](old, wp, wm, rho, 0.3))),
    "HAPPO M without the predecessors' factor": ("happo_exact_monotone",
            lambda mp: mp.setattr(iteration, "happo_weights", lambda game, pi, agent, prev, tables, adv=None: ORIGINAL["happo_weights"](game, pi, agent, (), [], adv=adv))),
    "HAPPO W+ and W- swapped": ("happo_exact_monotone",
            lambda mp: mp.setattr(iteration, "happo_weights", lambda *a, **k: (lambda w: (-w[1], -w[0]))(ORIGINAL["happo_weights"](*a, **k)))),
}


@pytest.mark.parametrize("mutation", sorted(MONOTONE_MUTATIONS))
def test_monotone_rows_catch_the_mutation(mutation: str, monkeypatch: pytest.MonkeyPatch) -> None:
    row, apply = MONOTONE_MUTATIONS[mutation]
    assert _run(row).passed  # the unmutated row passes
    apply(monkeypatch)
    _fails(row)


def _surrogate_terms_with_rho_of_pibar(game, pi, new_pi, order):  # type: ignore[no-untyped-def]
    from seqmarl.theory.multiagent import surrogate

    q, rho = evaluate.q_value(game, pi), evaluate.occupancy(game, new_pi)
    return [surrogate(game, pi, order[:m], [new_pi.tables[i] for i in order[:m]], q=q, rho=rho) for m in range(1, len(order) + 1)]


def _mean_kl(p_old: np.ndarray, p_new: np.ndarray) -> float:
    return float(np.mean(ORIGINAL["kl_tables"](p_old, p_new)))


LEMMA2_MUTATIONS: dict[str, Callable[[pytest.MonkeyPatch], None]] = {
    "C/4": lambda mp: mp.setattr(bounds, "penalty_constant", lambda g, p: ORIGINAL["penalty_constant"](g, p) / 4),
    "C/100": lambda mp: mp.setattr(bounds, "penalty_constant", lambda g, p: ORIGINAL["penalty_constant"](g, p) / 100),
    "C/2": lambda mp: mp.setattr(bounds, "penalty_constant", lambda g, p: ORIGINAL["penalty_constant"](g, p) / 2),
    "reversed KL": lambda mp: mp.setattr(bounds, "kl_tables", lambda old, new: ORIGINAL["kl_tables"](new, old)),
    "mean KL (E_s instead of max_s)": lambda mp: mp.setattr(bounds, "max_kl", _mean_kl),
    "rho of pibar in L": lambda mp: mp.setattr(bounds, "_surrogate_terms", _surrogate_terms_with_rho_of_pibar),
    "normalised rho in L": lambda mp: mp.setattr(bounds, "occupancy", lambda g, p: ORIGINAL["occupancy"](g, p) / ORIGINAL["occupancy"](g, p).sum()),
}


@pytest.mark.parametrize("mutation", sorted(LEMMA2_MUTATIONS))
def test_lemma2_row_catches_the_mutation(mutation: str, monkeypatch: pytest.MonkeyPatch) -> None:
    assert _run("lemma2_bound").passed
    LEMMA2_MUTATIONS[mutation](monkeypatch)
    _fails("lemma2_bound")


def test_lemma2_tightness_alone_catches_c_over_4(monkeypatch: pytest.MonkeyPatch) -> None:
    """The adversarial part on its own (no exact instance): the stored tight case has relative slack ~0.506 < 3/4,
    so the bound with C/4 exceeds J(pibar) there."""
    from seqmarl.proofs_checks import lemma2

    rel, _ = lemma2.relative_slack(*lemma2.escape_game())
    assert 0.5 < rel < 0.51
    monkeypatch.setattr(bounds, "penalty_constant", lambda g, p: ORIGINAL["penalty_constant"](g, p) / 4)
    game, pi, pibar = lemma2.escape_game()
    assert bounds.lemma2_lower_bound(game, pi, pibar, (0,)) > evaluate.expected_return(game, pibar)


PROP1_MUTATIONS: dict[str, Callable[[pytest.MonkeyPatch], None]] = {
    "root finding removed (endpoints only)": lambda mp: mp.setattr(optima, "_two_action_candidates", lambda poly: np.array([0.0, 1.0])),
    "certified gap assigned 0 (bound = value)": lambda mp: mp.setattr(optima, "_two_action_upper_bound", lambda coeffs, incumbent, tol: incumbent),
}


@pytest.mark.parametrize("mutation", sorted(PROP1_MUTATIONS))
def test_prop1_row_catches_the_mutation(mutation: str, monkeypatch: pytest.MonkeyPatch) -> None:
    assert _run("prop1_shared_ratio_exact").passed
    PROP1_MUTATIONS[mutation](monkeypatch)
    _fails("prop1_shared_ratio_exact")


def test_permutation_entropy_row_catches_a_broken_support_search(monkeypatch: pytest.MonkeyPatch) -> None:
    """A support search that returns one optimal joint action (deterministic policies) is right on every
    permutation game (H = 0) but not on games with product-shaped optimal sets: the brute-force half fails it."""
    assert _run("permutation_entropy").passed

    def first_optimal_action(mask: np.ndarray) -> list[np.ndarray]:
        joint = np.argwhere(mask)[0]
        return [np.array([a]) for a in joint]

    monkeypatch.setattr(optima, "_max_product_support", first_optimal_action)
    _fails("permutation_entropy")


def test_programs_row_catches_a_broken_corner(monkeypatch: pytest.MonkeyPatch) -> None:
    """The KL programs with abandoned actions: a corner branch that never gives mass back off the old support (it
    returns the old table) fails ``trust_region_programs_kkt``; so does a clipped HAPPO step with the clip ignored."""
    assert _run("trust_region_programs_kkt").passed
    original = trust_region.KLTilt.corner_regime

    def stuck(self, mu, log_ratio=None):  # type: ignore[no-untyped-def]
        p, kl = original(self, mu, log_ratio)
        return self.q.copy(), kl

    with monkeypatch.context() as mp:
        mp.setattr(trust_region.KLTilt, "corner_regime", stuck)
        _fails("trust_region_programs_kkt")
    monkeypatch.setattr(trust_region, "solve_happo_lp", lambda old, wp, wm, rho, clip: ORIGINAL["happo_lp"](old, wp, wm, rho, 0.999))
    _fails("trust_region_programs_kkt")


OPTIMA_MUTATIONS: dict[str, Callable[[pytest.MonkeyPatch], None]] = {
    "backward induction one step short": lambda mp: mp.setattr(
        optima, "_backward_induction", (lambda f: lambda r, p, g, h: f(r, p, g, max(h - 1, 1)))(optima._backward_induction)),
    "policy iteration returns the myopic policy (no improvement step)": lambda mp: mp.setattr(optima, "_policy_iteration", _myopic_pi),
    "best response ignores the partner": lambda mp: mp.setattr(
        optima, "_contract_all_but", (lambda f: lambda t, tables, keep, trailing=False: f(t, [np.full_like(x, 1.0 / x.shape[1]) for x in tables], keep, trailing))(optima._contract_all_but)),
}


def _myopic_pi(r: np.ndarray, p: np.ndarray, gamma: float):  # type: ignore[no-untyped-def]
    """Policy iteration's first policy (argmax of the immediate reward), evaluated but never improved."""
    rows = np.arange(r.shape[0])
    actions = r.argmax(axis=1)
    v = np.linalg.solve(np.eye(r.shape[0]) - gamma * p[rows, actions], r[rows, actions])
    return v, r + gamma * p @ v, actions


@pytest.mark.parametrize("mutation", sorted(OPTIMA_MUTATIONS))
def test_optima_row_catches_the_mutation(mutation: str, monkeypatch: pytest.MonkeyPatch) -> None:
    assert _run("optima_brute_force").passed
    OPTIMA_MUTATIONS[mutation](monkeypatch)
    _fails("optima_brute_force")


def test_kl_ball_row_catches_a_solver_that_ignores_the_ball(monkeypatch: pytest.MonkeyPatch) -> None:
    """The best vertex of every row (the linear objective without its KL ball) is not exempted by the vertex rule."""
    assert _run("hatrpo_kl_ball_monotone").passed

    def argmax_rows(old, g, w, delta):  # type: ignore[no-untyped-def]
        return np.eye(old.shape[1])[np.argmax(g, axis=1)]

    monkeypatch.setattr(trust_region, "solve_mean_kl_ball", argmax_rows)
    _fails("hatrpo_kl_ball_monotone")


def test_input_contract_row_catches_a_silent_acceptance(monkeypatch: pytest.MonkeyPatch) -> None:
    """A validator loosened to accept anything (``iteration._positive`` returning its input as a float) makes the
    contract row fail: a zero radius or an infinite one is then accepted."""
    assert _run("input_contract").passed
    monkeypatch.setattr(iteration, "_positive", lambda value, name: float(value) if not isinstance(value, str) else 1.0)
    _fails("input_contract")
