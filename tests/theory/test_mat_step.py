"""Tests for seqmarl.theory.mat: the exact tabular MAT step (per-agent clipped ratio against the joint advantage, no
factor, all conditionals at once), its sequential factor-weighted twin, the KL variant, the improvement bound and
the search for a decrease (there is none; the decentralised version of the same loss has one)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.optimize import linprog

from seqmarl.proofs_checks import _reference as ref
from seqmarl.theory import evaluate, mat
from seqmarl.theory.games import climbing, random_game
from seqmarl.theory.iteration import happo_exact
from seqmarl.theory.markov_game import matrix_game
from seqmarl.theory.policies import AutoRegressive, Factorized


def _random_ar(rng: np.random.Generator, game, sparse: bool = False, alpha: float = 0.5) -> AutoRegressive:
    order = tuple(int(i) for i in rng.permutation(game.n_agents))
    conds = []
    for k in range(game.n_agents):
        shape = (game.n_states, *[game.n_actions[order[j]] for j in range(k)])
        c = rng.dirichlet(np.full(game.n_actions[order[k]], alpha), size=shape)
        if sparse:
            c = np.where(c < 0.1, 0.0, c)
            c = c / c.sum(axis=-1, keepdims=True)
        conds.append(c)
    return AutoRegressive(order, conds)


def _cases(seed: int, n: int, sparse_every: int = 3):
    rng = np.random.default_rng(seed)
    for i in range(n):
        n_agents = int(rng.integers(1, 4))
        game = random_game(rng, n_agents, [int(rng.integers(2, 4)) for _ in range(n_agents)], int(rng.integers(1, 3)),
                           gamma=float(rng.choice([0.0, 0.5, 0.9])))
        yield game, _random_ar(rng, game, sparse=i % sparse_every == 0)


# --- reference program per context, by a generic LP ------------------------------------------------------------
def _sample_level_lp_optimum(q: np.ndarray, samples: list[tuple[int, float, float]], eps: float) -> float:
    """``max_P sum_j weight_j min(r_{a_j} A_j, clip(r_{a_j}) A_j)`` over distributions ``P`` on the support of ``q``
    with ``r = P/q``: the MAT loss of one context written per sample ``(a_j, weight_j, A_j)`` (no grouping by sign),
    as an LP in ``(P, z_j)`` with ``z_j <= r A_j`` and ``z_j <= clip(r) A_j`` written as the two (or three) affine
    pieces of the concave ``min(r A, clip(r) A)``."""
    k, m = q.size, len(samples)
    cost = np.concatenate([np.zeros(k), -np.array([w for _, w, _ in samples])])
    rows, rhs = [], []
    for j, (a, _, adv) in enumerate(samples):
        # min(r A, clip(r) A) = min over the affine pieces: r A, and (1+eps) A if A > 0, (1-eps) A if A < 0 (as the
        # max(r, 1-eps) A = min(r A, (1-eps) A) for A < 0)
        pieces = [(adv / q[a], 0.0), (0.0, (1.0 + eps) * adv if adv >= 0 else (1.0 - eps) * adv)]
        for slope, icpt in pieces:
            row = np.zeros(k + m)
            row[a] = -slope
            row[k + j] = 1.0
            rows.append(row)
            rhs.append(icpt)
    a_eq = np.concatenate([np.ones(k), np.zeros(m)])[None]
    bounds = [(0.0, None) if qa > 0 else (0.0, 0.0) for qa in q] + [(None, None)] * m
    res = linprog(cost, A_ub=np.array(rows), b_ub=np.array(rhs), A_eq=a_eq, b_eq=[1.0], bounds=bounds, method="highs",
                  options={"primal_feasibility_tolerance": 1e-10, "dual_feasibility_tolerance": 1e-10})
    assert res.status == 0, res.message
    return -res.fun


def _context_samples(pi: AutoRegressive, adv: np.ndarray, k: int, context: tuple) -> list[tuple[int, float, float]]:
    """Every full joint action extending ``context = (s, a^{i_1..i_k})`` as ``(a_k, pi(a_k, later | c), A(s, a))``."""
    tail = mat._product(pi.conditionals[k:], len(pi.order)) * np.ones_like(adv)
    sub_t, sub_a = tail[context], adv[context]
    return [(idx[0], float(sub_t[idx]), float(sub_a[idx])) for idx in np.ndindex(sub_t.shape) if sub_t[idx] > 0]


@pytest.mark.parametrize("eps", [0.2, 0.05, 0.5])
def test_every_reached_row_solves_its_program_against_a_sample_level_lp(eps: float) -> None:
    """The grouped W+/W- program of each context (per-sample sign split, summed over later agents) has the same
    optimum as the ungrouped per-sample MAT loss solved by HiGHS; mat_exact's row attains it."""
    checked = 0
    for game, pi in _cases(11, 12):
        quant = mat.ar_quantities(game, pi)
        new = mat.mat_exact(game, pi, clip=eps)
        for k in range(game.n_agents):
            wp, wm = mat.context_weights(pi, k, quant.adv)
            prefix = mat._prefix(pi.conditionals, k)
            for context in np.ndindex(prefix.shape):
                if quant.rho[context[0]] * prefix[context] <= 0:
                    continue
                q = pi.conditionals[k][context]
                best = _sample_level_lp_optimum(q, _context_samples(pi, quant.adv, k, context), eps)
                got = float(mat.clipped_row_objective(q, new.conditionals[k][context], wp[context], wm[context], eps))
                scale = 1.0 + float(np.sum(np.abs(wp[context]) + np.abs(wm[context])))
                assert got == pytest.approx(best, abs=1e-8 * scale), (k, context)
                checked += 1
    assert checked > 60


def test_rows_match_the_independent_greedy_optimum() -> None:
    """The same, against the exact fractional-knapsack optimum of :mod:`seqmarl.proofs_checks._reference`."""
    for game, pi in _cases(12, 15):
        quant = mat.ar_quantities(game, pi)
        new = mat.mat_exact(game, pi, clip=0.2)
        for k in range(game.n_agents):
            wp, wm = mat.context_weights(pi, k, quant.adv)
            a_k = wp.shape[-1]
            old_rows, new_rows = pi.conditionals[k].reshape(-1, a_k), new.conditionals[k].reshape(-1, a_k)
            weight = (quant.rho.reshape((-1,) + (1,) * k) * mat._prefix(pi.conditionals, k)).reshape(-1)
            gap, where = ref.happo_kkt(old_rows, new_rows, wp.reshape(-1, a_k), wm.reshape(-1, a_k), weight, 0.2, 1.0)
            assert gap <= 1e-10, where


def test_unclipped_limit_is_greedy_improvement_of_each_conditional() -> None:
    """``clip = inf``: every reached row is supported on the maximisers of ``Q^{1:k}(c, .)`` over the old support,
    proportional to the old row there; a near-1 clip moves toward the same actions."""
    for game, pi in _cases(13, 12):
        quant = mat.ar_quantities(game, pi)
        new = mat.mat_exact(game, pi, clip=math.inf)
        for k in range(game.n_agents):
            chain = quant.q_chain[k + 1]
            prefix = mat._prefix(pi.conditionals, k)
            for context in np.ndindex(prefix.shape):
                if quant.rho[context[0]] * prefix[context] <= 0:
                    continue
                q, p, g = pi.conditionals[k][context], new.conditionals[k][context], chain[context]
                best = np.max(np.where(q > 0, g, -np.inf))
                on_best = (q > 0) & (g >= best - 1e-12 * max(1.0, abs(best)))
                assert np.all(p[~on_best] == 0.0)
                np.testing.assert_allclose(p[on_best], q[on_best] / q[on_best].sum(), rtol=1e-12)
        assert evaluate.expected_return(game, new) >= evaluate.expected_return(game, pi) - 1e-12


def test_large_clip_moves_mass_to_the_greedy_action_up_to_the_ratio_cap() -> None:
    game = matrix_game(np.array([[1.0, 0.0], [0.0, 0.0]]))
    pi = AutoRegressive((0, 1), [np.array([[0.5, 0.5]]), np.array([[[0.5, 0.5], [0.5, 0.5]]])])
    new = mat.mat_exact(game, pi, clip=0.99)
    # agent 1: gain E[A | a1 = 0] = 1/2 - 1/4 > 0 > E[A | a1 = 1]; the ratio of the good action is capped at 1 + eps
    np.testing.assert_allclose(new.conditionals[0][0], [0.995, 0.005], atol=1e-12)
    np.testing.assert_allclose(new.conditionals[1][0, 0], [0.995, 0.005], atol=1e-12)


def test_one_agent_games_reduce_to_the_single_agent_ppo_clip_step() -> None:
    """With one agent the AR policy is one table and MAT's loss is PPO-clip's: the same table as the exact
    clipped step of ``iteration.happo_exact`` (no predecessors, so no factor), and monotone."""
    rng = np.random.default_rng(3)
    for _ in range(10):
        game = random_game(rng, 1, [int(rng.integers(2, 5))], int(rng.integers(1, 4)), gamma=float(rng.choice([0.0, 0.9])))
        table = rng.dirichlet(np.ones(game.n_actions[0]), size=game.n_states)
        for eps in (0.2, 0.05):
            ppo = happo_exact(game, Factorized([table]), rng, clip=eps, safeguard=False)
            got = mat.mat_exact(game, AutoRegressive((0,), [table]), clip=eps)
            np.testing.assert_allclose(got.conditionals[0], ppo.tables[0], atol=1e-14)
            assert evaluate.expected_return(game, got) >= evaluate.expected_return(game, Factorized([table])) - 1e-12


@pytest.mark.parametrize("eps", [0.2, 0.1, math.inf])
def test_mat_never_lowers_j_or_any_v_and_respects_the_bound(eps: float) -> None:
    """The answer: J(new) - J(pi) = sum_s rho_new(s) sum_k T[s, k] exactly, >= B >= 0, and V_new >= V_pi."""
    for game, pi in _cases(14, 25):
        new = mat.mat_exact(game, pi, clip=eps)
        j_old, j_new = evaluate.expected_return(game, pi), evaluate.expected_return(game, new)
        terms = mat.improvement_terms(game, pi, new)
        assert float(evaluate.occupancy(game, new) @ terms.sum(axis=1)) == pytest.approx(j_new - j_old, abs=1e-10 * (1 + abs(j_old)))
        assert np.all(terms >= -1e-12)
        bound = mat.improvement_lower_bound(game, pi, new, eps)
        assert -1e-12 <= bound <= j_new - j_old + 1e-10 * (1 + abs(j_old))
        assert np.all(evaluate.value(game, new) >= evaluate.value(game, pi) - 1e-10 * (1 + np.abs(evaluate.value(game, pi))))


def test_improvement_terms_are_the_chain_rule_of_the_advantage() -> None:
    """``sum_k T[s, k] = E_{a ~ new(.|s)}[A_pi(s, a)]`` for ANY new AR policy in the same order (not only MAT's)."""
    rng = np.random.default_rng(5)
    for game, pi in _cases(15, 10):
        other = AutoRegressive(pi.order, [rng.dirichlet(np.ones(c.shape[-1]), size=c.shape[:-1]) for c in pi.conditionals])
        adv = evaluate.advantage(game, pi)
        want = np.sum(other.probs() * adv, axis=tuple(range(1, game.n_agents + 1)))
        np.testing.assert_allclose(mat.improvement_terms(game, pi, other).sum(axis=1), want, atol=1e-12)


def test_the_factor_changes_nothing_the_joint_policy_equals_the_sequential_step() -> None:
    """HAPPO's factor is a per-context constant: sequential_ar_step and mat_exact give identical joint tables."""
    for game, pi in list(_cases(16, 20)) + [(g, p) for _, g, p in mat.adversarial_cases()]:
        for eps in (0.2, math.inf):
            a, b = mat.mat_exact(game, pi, clip=eps), mat.sequential_ar_step(game, pi, clip=eps)
            np.testing.assert_allclose(a.probs(), b.probs(), atol=1e-14, rtol=0)


def test_safeguard_is_a_no_op_on_the_exact_step() -> None:
    for game, pi in _cases(17, 10):
        a = mat.mat_exact(game, pi, clip=0.2)
        b = mat.mat_exact(game, pi, clip=0.2, safeguard=True)
        np.testing.assert_array_equal(a.probs(), b.probs())


def test_adversarial_cases_do_not_decrease_and_the_climbing_step_is_nontrivial() -> None:
    for name, game, pi in mat.adversarial_cases():
        case = mat.evaluate_mat_case(game, pi)
        assert case.J_mat >= case.J_old - 1e-12, name
        assert case.J_mat == pytest.approx(case.J_sequential, abs=1e-12), name
        assert name in {n for n, _, _ in mat.adversarial_cases()}
    (case,) = [mat.evaluate_mat_case(g, p) for n, g, p in mat.adversarial_cases() if n == "climbing, cliff"]
    assert case.J_mat - case.J_old > 3.0 and "J_mat" in case.to_text()


def test_kl_variant_is_monotone_and_solves_its_ball() -> None:
    """Each position solves max sum_c w_c <P_c, g_c> s.t. sum_c w_c KL(q_c || P_c) <= delta: cross-checked against
    cvxpy (exponential cone) on the linear objective; J and V never drop."""
    for i, (game, pi) in enumerate(_cases(18, 8, sparse_every=100)):
        delta = (0.01, 0.3)[i % 2]
        new = mat.mat_kl_exact(game, pi, delta=delta)
        quant = mat.ar_quantities(game, pi)
        rho_norm = quant.rho / quant.rho.sum()
        for k in range(game.n_agents):
            a_k = game.n_actions[pi.order[k]]
            g = (quant.q_chain[k + 1] - quant.v.reshape((-1,) + (1,) * (k + 1))).reshape(-1, a_k)
            w = (rho_norm.reshape((-1,) + (1,) * k) * mat._prefix(pi.conditionals, k)).reshape(-1)
            old = pi.conditionals[k].reshape(-1, a_k)
            ref_p = ref.kl_program_cvxpy(old, w[:, None] * g, mean_kl_weights=w, mean_kl_radius=delta)
            got = float(np.sum(w[:, None] * g * new.conditionals[k].reshape(-1, a_k)))
            want = float(np.sum(w[:, None] * g * ref_p))
            assert got >= want - 1e-6 * (1 + abs(want))
            assert float(w @ ref.kl_rows(old, new.conditionals[k].reshape(-1, a_k))) <= delta * (1 + 1e-9)
        assert evaluate.expected_return(game, new) >= evaluate.expected_return(game, pi) - 1e-10
        assert np.all(evaluate.value(game, new) >= evaluate.value(game, pi) - 1e-10)


# --- the search ---------------------------------------------------------------------------------------------------
def test_search_finds_no_decrease_of_the_mat_step() -> None:
    with pytest.raises(LookupError, match="no decrease"):
        mat.find_mat_decrease(max_examples=60, seed=0)


def test_search_has_power_a_broken_step_is_found_and_shrunk() -> None:
    """Positive control: a step with W+ and W- swapped (it maximises the wrong sign) is caught, and the shrunk case
    is small; on that case the real step does not lower J."""

    def swapped(game, pi, clip=0.2):
        orig = mat.context_weights
        try:
            mat.context_weights = lambda p, k, adv: (lambda w: (-w[1], -w[0]))(orig(p, k, adv))
            return mat.mat_exact(game, pi, clip=clip)
        finally:
            mat.context_weights = orig

    found = mat.find_mat_decrease(max_examples=60, seed=0, update=swapped)
    game, pi = found.game, found.policy
    assert evaluate.expected_return(game, swapped(game, pi)) < found.J_old - 1e-6
    assert found.J_mat >= found.J_old - 1e-12  # evaluate_mat_case re-runs the real step
    assert game.is_one_shot and max(np.abs(game.reward).max(), 1.0) <= 3.0


def test_build_ar_case_shapes_and_validation() -> None:
    game, pi = mat.build_ar_case(("one-shot", ((1, 0, 2), (0, 3, 0)), (1, 0), ((0, 0, 0), (1, 1, 2))))
    assert game.n_actions == (2, 3) and pi.order == (0, 1)
    np.testing.assert_allclose(pi.conditionals[0][0], [1.0, 0.0])
    np.testing.assert_allclose(pi.conditionals[1][0, 0], [1 / 3] * 3)
    np.testing.assert_allclose(pi.conditionals[1][0, 1], [0.25, 0.25, 0.5])
    game, pi = mat.build_ar_case(("two-state", (((1, 0), (0, 1)), ((0, 0), (2, 0))), (((4, 0), (2, 2)), ((0, 4), (1, 3))),
                                  ((1, 1), (0, 2)), (((1, 0), (0, 1)), ((2, 2), (0, 0)))))
    assert game.n_states == 2 and game.gamma == 0.5
    with pytest.raises(ValueError, match="case must be"):
        mat.build_ar_case(("three-state",))


# --- the decentralised contrast -----------------------------------------------------------------------------------
def test_decentralised_counterexample_reproduces() -> None:
    game, pi, returns = mat.decentralised_counterexample()
    assert returns["J_old"] == pytest.approx(-1 / 625, abs=1e-15)
    assert returns["J_decentralised"] == pytest.approx(-361 / 15625, abs=1e-15)
    assert returns["J_happo_sequential"] > returns["J_old"]
    assert returns["J_mat"] > returns["J_old"]
    # the mechanism: each agent's own clipped gain is positive, the cross term is not
    new = happo_exact(game, pi, np.random.default_rng(0), clip=0.2, simultaneous=True, safeguard=False)
    np.testing.assert_allclose([new.tables[0][0, 0], new.tables[1][0, 0]], [0.576, 0.424], atol=1e-14)


# --- contracts ----------------------------------------------------------------------------------------------------
def test_input_validation() -> None:
    game = climbing()
    pi = AutoRegressive.from_joint(np.full((1, 3, 3), 1 / 9), (0, 1))
    with pytest.raises(TypeError, match="AutoRegressive"):
        mat.mat_exact(game, Factorized.uniform(1, (3, 3)))
    with pytest.raises(ValueError, match="clip"):
        mat.mat_exact(game, pi, clip=1.5)
    with pytest.raises(ValueError, match="clip"):
        mat.mat_exact(game, pi, clip=0.0)
    with pytest.raises(TypeError, match="clip"):
        mat.mat_exact(game, pi, clip=True)
    with pytest.raises(TypeError, match="safeguard"):
        mat.mat_exact(game, pi, safeguard=1)
    with pytest.raises(TypeError, match="rng"):
        mat.mat_exact(game, pi, rng=0)
    with pytest.raises(ValueError, match="match the game"):
        mat.mat_exact(game, AutoRegressive.from_joint(np.full((1, 2, 2), 0.25), (0, 1)))
    with pytest.raises(ValueError, match="delta"):
        mat.mat_kl_exact(game, pi, delta=0.0)
    with pytest.raises(ValueError, match="order and shape"):
        mat.improvement_terms(game, pi, AutoRegressive.from_joint(np.full((1, 3, 3), 1 / 9), (1, 0)))
    with pytest.raises(LookupError):
        mat.find_mat_decrease(max_examples=1, seed=0)
    with pytest.raises(ValueError, match="max_examples"):
        mat.find_mat_decrease(max_examples=0)
