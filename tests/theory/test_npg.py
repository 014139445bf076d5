"""Tests for seqmarl.theory.npg: the closed-form NPG steps against an explicit Fisher matrix, monotonicity and
global convergence of the sequential variant, and the climbing/XOR outcome rates (theory.md §3.2, §6.2)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import softmax as sp_softmax
from scipy.stats import beta, binom

from seqmarl.theory import evaluate, games, npg
from seqmarl.theory.markov_game import MarkovGame, matrix_game
from seqmarl.theory.policies import AutoRegressive, Factorized, Shared

FAST = settings(max_examples=15, deadline=None)


# --- an independent oracle: Fisher matrix and gradient by finite differences --------------------------------
def _unflatten(theta: np.ndarray, shapes: list[tuple[int, ...]]) -> list[np.ndarray]:
    out, i = [], 0
    for shape in shapes:
        size = int(np.prod(shape))
        out.append(theta[i : i + size].reshape(shape))
        i += size
    return out


def _policy(kind: str, game: MarkovGame, arrays: list[np.ndarray], order=None):
    if kind == "independent":
        return Factorized([sp_softmax(a, axis=-1) for a in arrays])
    if kind == "shared":
        return Shared(sp_softmax(arrays[0], axis=-1), game.n_agents)
    return AutoRegressive(order, [sp_softmax(a, axis=-1) for a in arrays])


def _fd_fisher_and_gradient(kind: str, game: MarkovGame, arrays: list[np.ndarray], order=None, h: float = 1e-6):
    """``F = sum_s d(s) sum_a pi(a|s) g g^T`` with ``g = grad log pi(a|s)`` and ``grad J``, both by central differences
    through scipy's softmax and seqmarl.theory.evaluate (no code shared with npg.py)."""
    shapes = [a.shape for a in arrays]
    theta0 = np.concatenate([a.ravel() for a in arrays])
    pi0 = _policy(kind, game, arrays, order)
    d = (1.0 - game.gamma) * evaluate.occupancy(game, pi0)
    probs0 = pi0.probs().reshape(game.n_states, -1)
    dlog = np.zeros((theta0.size,) + probs0.shape)
    grad = np.zeros(theta0.size)
    for j in range(theta0.size):
        e = np.zeros_like(theta0)
        e[j] = h
        plus = _policy(kind, game, _unflatten(theta0 + e, shapes), order)
        minus = _policy(kind, game, _unflatten(theta0 - e, shapes), order)
        dlog[j] = (np.log(plus.probs().reshape(probs0.shape)) - np.log(minus.probs().reshape(probs0.shape))) / (2 * h)
        grad[j] = (evaluate.expected_return(game, plus) - evaluate.expected_return(game, minus)) / (2 * h)
    fisher = np.einsum("s,sa,isa,jsa->ij", d, probs0, dlog, dlog)
    return fisher, grad


def _step_direction(run: npg.NPGRun, start: list[np.ndarray], eta: float) -> np.ndarray:
    return np.concatenate([(new - old).ravel() for new, old in zip(run.logits, start)]) / eta


games_small = st.builds(
    lambda seed, s, gamma, n_actions: games.random_game(
        np.random.default_rng(seed), 2, n_actions, s, gamma if s > 1 else 0.0
    ),
    st.integers(0, 10_000),
    st.integers(1, 2),
    st.sampled_from([0.5, 0.9]),
    st.sampled_from([2, (2, 3)]),
)


@FAST
@given(game=games_small, seed=st.integers(0, 10_000))
def test_independent_step_is_fisher_preconditioned_gradient(game, seed):
    """NPG step ``w`` solves ``F w = grad J`` (it equals ``F^+ grad J`` up to per-state shifts, which softmax ignores)."""
    rng = np.random.default_rng(seed)
    start = [rng.standard_normal((game.n_states, a)) for a in game.n_actions]
    run = npg.npg_independent(game, start, eta=0.3, n_iters=1)
    w = _step_direction(run, start, 0.3)
    fisher, grad = _fd_fisher_and_gradient("independent", game, start)
    np.testing.assert_allclose(fisher @ w, grad, atol=1e-6 * (1 + np.abs(grad).max()))


@FAST
@given(game=games_small, seed=st.integers(0, 10_000), order=st.sampled_from([(0, 1), (1, 0)]))
def test_sequential_step_is_fisher_preconditioned_gradient(game, seed, order):
    rng = np.random.default_rng(seed)
    acts = [game.n_actions[i] for i in order]
    start = [rng.standard_normal((game.n_states, *acts[: k + 1])) for k in range(2)]
    run = npg.npg_sequential(game, start, eta=0.3, n_iters=1, order=order)
    w = _step_direction(run, start, 0.3)
    fisher, grad = _fd_fisher_and_gradient("sequential", game, start, order)
    np.testing.assert_allclose(fisher @ w, grad, atol=1e-6 * (1 + np.abs(grad).max()))


@FAST
@given(seed=st.integers(0, 10_000), s=st.integers(1, 2), n_agents=st.integers(2, 3))
def test_shared_step_is_fisher_preconditioned_gradient(seed, s, n_agents):
    rng = np.random.default_rng(seed)
    game = games.random_game(rng, n_agents, 2, s, 0.9 if s > 1 else 0.0)
    start = rng.standard_normal((s, 2))
    run = npg.npg_shared(game, start, eta=0.3, n_iters=1)
    w = (run.logits[0] - start).ravel() / 0.3
    fisher, grad = _fd_fisher_and_gradient("shared", game, [start])
    np.testing.assert_allclose(fisher @ w, grad, atol=1e-6 * (1 + np.abs(grad).max()))


def test_single_agent_all_variants_are_agarwal_npg():
    """With one agent the three variants coincide with ``pi' ∝ pi exp(eta A / (1-gamma))`` (Agarwal et al.)."""
    rng = np.random.default_rng(3)
    game = games.random_game(rng, 1, 3, 3, 0.8)
    theta = rng.standard_normal((3, 3))
    eta = 0.7
    expected = theta.copy()
    for _ in range(4):
        adv = evaluate.advantage(game, Factorized([sp_softmax(expected, axis=-1)]))
        expected = expected + eta / (1 - game.gamma) * adv
    for run in (
        npg.npg_independent(game, [theta], eta, 4),
        npg.npg_sequential(game, [theta], eta, 4),
        npg.npg_shared(game, theta, eta, 4),
    ):
        np.testing.assert_allclose(run.logits[0], expected, atol=1e-12)


def test_one_shot_step_by_hand():
    """Climbing from uniform: A^1(x) = (row mean of x) - (overall mean), computed with fractions (theory.md §8:
    row means -19/3, -17/3, 5/3)."""
    from fractions import Fraction as F

    payoff = [[11, -30, 0], [-30, 7, 6], [0, 0, 5]]
    rows = [F(sum(r), 3) for r in payoff]
    assert rows == [F(-19, 3), F(-17, 3), F(5, 3)]
    total = sum(rows) / 3
    game = games.climbing()
    run = npg.npg_independent(game, [np.zeros((1, 3)), np.zeros((1, 3))], eta=0.1, n_iters=1)
    np.testing.assert_allclose(run.logits[0][0], [0.1 * float(r - total) for r in rows], atol=1e-15)
    cols = [F(sum(r[j] for r in payoff), 3) for j in range(3)]
    assert cols == [F(-19, 3), F(-23, 3), F(11, 3)]
    np.testing.assert_allclose(run.logits[1][0], [0.1 * float(c - total) for c in cols], atol=1e-15)
    assert run.returns[0, 0] == pytest.approx(float(total), abs=1e-12)


def test_sequential_one_shot_step_by_hand():
    """Sequential from uniform: the last agent's A~ is r(a^1, .) - row mean; the first's is row mean - overall mean."""
    game = games.climbing()
    run = npg.npg_sequential(game, [np.zeros((1, 3)), np.zeros((1, 3, 3))], eta=0.5, n_iters=1)
    r = game.reward[0]
    np.testing.assert_allclose(run.logits[1][0], 0.5 * (r - r.mean(axis=1, keepdims=True)), atol=1e-14)
    np.testing.assert_allclose(run.logits[0][0], 0.5 * (r.mean(axis=1) - r.mean()), atol=1e-14)


@FAST
@given(seed=st.integers(0, 10_000), kind=st.sampled_from(["independent", "sequential", "shared"]))
def test_returns_history_matches_evaluate(seed, kind):
    rng = np.random.default_rng(seed)
    game = games.random_game(rng, 2, 2, 2, 0.9)
    logits = npg.random_logits(rng, game, 3, kind)
    fn = {"independent": npg.npg_independent, "sequential": npg.npg_sequential, "shared": npg.npg_shared}[kind]
    run = fn(game, logits, 0.2, 5)
    for b, pol in enumerate(run.policies):
        assert run.final_returns[b] == pytest.approx(evaluate.expected_return(game, pol), abs=1e-10)
    shorter = fn(game, logits, 0.2, 3)
    np.testing.assert_allclose(shorter.returns, run.returns[:4], atol=1e-12)
    # batched run == separate unbatched runs
    for b in range(3):
        single = fn(game, logits[b] if kind == "shared" else [x[b] for x in logits], 0.2, 5)
        assert not single.batched and single.J.shape == (6,)
        np.testing.assert_allclose(single.J, run.returns[:, b], atol=1e-12)
        np.testing.assert_allclose(single.policy.probs(), run.policies[b].probs(), atol=1e-12)


@settings(max_examples=20, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    s=st.integers(1, 3),
    n_agents=st.integers(2, 3),
    eta=st.floats(0.01, 20.0),
    order_seed=st.integers(0, 5),
)
def test_sequential_npg_is_monotone(seed, s, n_agents, eta, order_seed):
    """[DERIVED] Sequential NPG is single-agent NPG on the transformed MDP: the update tilts each conditional by
    ``exp(eta A~ / (1-gamma))``, so ``E_{pi~'}[A~] >= 0`` at every tilde-state and the performance-difference
    identity gives ``J' >= J`` for every eta (Agarwal et al. Lemma 5.2's argument)."""
    rng = np.random.default_rng(seed)
    game = games.random_game(rng, n_agents, 2, s, 0.9 if s > 1 else 0.0)
    order = tuple(np.random.default_rng(order_seed).permutation(n_agents))
    run = npg.npg_sequential(game, npg.random_logits(rng, game, 4, "sequential", order), eta, 30, order)
    assert np.diff(run.returns, axis=0).min() >= -1e-9


def _optimal_value(game: MarkovGame) -> float:
    """``J*`` by joint-action value iteration (independent of npg.py)."""
    v = np.zeros(game.n_states)
    for _ in range(5000):
        v_new = evaluate.q_from_values(game, v).reshape(game.n_states, -1).max(axis=1)
        if np.max(np.abs(v_new - v)) < 1e-13:
            break
        v = v_new
    return float(game.initial @ v_new)


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 10_000), n_agents=st.integers(2, 3), eta=st.sampled_from([0.3, 1.0, 3.0]))
def test_sequential_npg_global_convergence_bound(seed, n_agents, eta):
    """[DERIVED] One-shot game, sequential NPG = mirror descent at every tilde-state of the depth-n tree MDP
    (theory.md §6.1, discount 1 inside the step). For the deterministic optimum pi* (path a*):
    ``sum_a pi* A~_t = (KL_t - KL_{t+1})/eta + log Z_t/eta`` and ``0 <= log Z_t/eta <= V~_{t+1} - V~_t`` at every
    tilde-state; summing over the n path states and t < T, with J_t non-decreasing,

        J* - J_T <= [ sum_k -log pi~_0(a*_k | a*_{<k}) / eta + n (r_max - r_min) ] / T.
    """
    rng = np.random.default_rng(seed)
    game = games.random_game(rng, n_agents, 2, 1, 0.0)
    logits = npg.random_logits(rng, game, 4, "sequential")
    n_iters = 600
    run = npg.npg_sequential(game, logits, eta, n_iters)
    r = game.reward[0]
    best = np.unravel_index(int(r.argmax()), r.shape)
    kl0 = np.zeros(4)
    for k in range(n_agents):
        kl0 -= np.log(sp_softmax(logits[k][(slice(None), 0, *best[:k])], axis=-1)[:, best[k]])
    bound = (kl0 / eta + n_agents * (r.max() - r.min())) / n_iters
    gap = r.max() - run.final_returns
    assert np.all(gap <= bound + 1e-12)
    assert np.all(gap >= -1e-12)


def test_sequential_npg_reaches_optimum_on_a_multi_state_game():
    """NPG on the transformed MDP converges to the optimal joint value (Agarwal et al. global convergence;
    theory.md §6.1 ``V~* = V*``); value-iteration J* is an independent oracle."""
    rng = np.random.default_rng(4)
    game = games.random_game(rng, 2, 2, 3, 0.5)
    run = npg.npg_sequential(game, npg.random_logits(rng, game, 20, "sequential"), 1.0, 400)
    assert _optimal_value(game) - run.final_returns.min() <= 1e-9


# --- climbing game rates (theory.md §6.2) --------------------------------------------------------------------
# MEASURED (not an oracle; reproduce with `python -m seqmarl.proofs_checks.sequential_vs_simultaneous --rates`):
# 10 x 300 N(0,1) initialisations (seeds 100..109), eta = 0.1, 2000 iterations, tol 1e-3 on the joint mass:
# independent NPG -> (b,b) 2176/3000, (a,a) 824/3000, nothing else; sequential NPG -> (a,a) 3000/3000.
MEASURED_BB, MEASURED_N = 2176, 3000
CONFIDENCE = 1e-3


def _threshold(successes: int, trials: int, n: int) -> int:
    """Smallest count ``X`` that ``Bin(n, p_lo)`` undershoots with probability ``<= CONFIDENCE``, where ``p_lo`` is
    the one-sided ``1 - CONFIDENCE`` Clopper-Pearson lower bound of the measured rate."""
    p_lo = beta.ppf(CONFIDENCE, successes, trials - successes + 1)
    return int(binom.ppf(CONFIDENCE, n, p_lo))


def test_climbing_rate_thresholds_are_what_the_report_states():
    assert _threshold(MEASURED_BB, MEASURED_N, 100) == 55
    assert _threshold(MEASURED_N - MEASURED_BB, MEASURED_N, 100) == 12


def test_climbing_independent_vs_sequential_rates():
    """With 100 seeded inits: independent NPG stops at (b,b)=7 in >= 55/100 and at (a,a) in >= 12/100 (binomial
    thresholds from the measured rates, above), never elsewhere; sequential NPG reaches (a,a)=11 in 100/100."""
    game = games.climbing()
    cmp = npg.compare_independent_sequential(game, np.random.default_rng(2024), 100, eta=0.1, n_iters=2000)
    assert set(cmp.independent) <= {(0, 0), (1, 1)}
    assert cmp.independent.get((1, 1), 0) >= _threshold(MEASURED_BB, MEASURED_N, 100)
    assert cmp.independent.get((0, 0), 0) >= _threshold(MEASURED_N - MEASURED_BB, MEASURED_N, 100)
    assert cmp.sequential == {(0, 0): 100}
    assert cmp.rate("sequential", (0, 0)) == 1.0
    assert "(1, 1)" in cmp.to_text()


def test_climbing_sequential_any_order_reaches_optimum():
    game = games.climbing()
    cmp = npg.compare_independent_sequential(game, np.random.default_rng(7), 50, eta=0.1, n_iters=2000, order=(1, 0))
    assert cmp.sequential == {(0, 0): 50}


def test_independent_npg_stays_at_suboptimal_pure_ne():
    """(b,b) is a strict NE, so near it the marginal advantages of a and c are negative and NPG stays."""
    game = games.climbing()
    start = [np.array([[0.0, 5.0, 0.0]]), np.array([[0.0, 5.0, 0.0]])]
    run = npg.npg_independent(game, start, 0.1, 500)
    assert npg.classify_outcome(game, run.policy) == (1, 1)
    assert run.J[-1] == pytest.approx(7.0, abs=1e-9)


# --- XOR (theory.md §3.2) ------------------------------------------------------------------------------------
def test_xor_individual_npg_reaches_optimum_from_random_inits():
    """Off the measure-zero set {theta^1 diff = theta^2 diff} the saddle (1/2,1/2) is escaped and J -> 1."""
    game = games.xor(2)
    logits = npg.random_logits(np.random.default_rng(11), game, 100)
    diff = (logits[0][:, 0, 0] - logits[0][:, 0, 1]) - (logits[1][:, 0, 0] - logits[1][:, 0, 1])
    keep = np.abs(diff) > 1e-9
    assert keep.sum() == 100  # N(0,1) draws never hit the symmetric set
    run = npg.npg_independent(game, [x[keep] for x in logits], 0.1, 1000)
    assert run.final_returns.min() > 0.99
    outcomes = npg.outcome_counts(run)
    assert set(outcomes) <= {(0, 1), (1, 0)}


def test_xor_symmetric_init_converges_to_saddle():
    game = games.xor(2)
    theta = np.array([[0.3, -0.4]])
    run = npg.npg_independent(game, [theta, theta.copy()], 0.1, 2000)
    assert run.J[-1] == pytest.approx(0.5, abs=1e-9)
    assert npg.classify_outcome(game, run.policy) is None


def test_xor_shared_npg_never_exceeds_half():
    """Shared policy without id: J = 2p(1-p) <= 1/2 (HATRPO Prop. 1, n = 2); NPG climbs to exactly 1/2."""
    game = games.xor(2)
    run = npg.npg_shared(game, npg.random_logits(np.random.default_rng(5), game, 100, "shared"), 0.1, 1000)
    assert run.returns.max() <= 0.5 + 1e-12
    assert run.final_returns.min() == pytest.approx(0.5, abs=1e-9)


# --- classify_outcome ----------------------------------------------------------------------------------------
def test_classify_outcome_one_shot_and_multi_state():
    game = games.climbing()
    assert npg.classify_outcome(game, Factorized.deterministic([[2, 1]], (3, 3))) == (2, 1)
    assert npg.classify_outcome(game, Factorized.uniform(1, (3, 3))) is None
    near = Factorized([np.array([[0.9995, 0.0005, 0.0]]), np.array([[1.0, 0.0, 0.0]])])
    assert npg.classify_outcome(game, near, tol=1e-3) == (0, 0)
    assert npg.classify_outcome(game, near, tol=1e-4) is None
    multi = games.random_game(np.random.default_rng(0), 2, 2, 2, 0.9)
    assert npg.classify_outcome(multi, Factorized.deterministic([[0, 1], [1, 1]], (2, 2))) == ((0, 1), (1, 1))
    half = Factorized([np.array([[1.0, 0.0], [0.5, 0.5]]), np.array([[1.0, 0.0], [1.0, 0.0]])])
    assert npg.classify_outcome(multi, half) is None
    assert npg.classify_outcome(game, Factorized.deterministic([[1, 1]], (3, 3)).probs()) == (1, 1)


# --- validation: one test per rule ---------------------------------------------------------------------------
def _xor():
    return games.xor(2)


def _zeros():
    return [np.zeros((1, 2)), np.zeros((1, 2))]


def test_rejects_non_game():
    with pytest.raises(TypeError, match="game"):
        npg.npg_independent("xor", _zeros(), 0.1, 1)


def test_rejects_finite_horizon_game():
    g = games.random_game(np.random.default_rng(0), 2, 2, 2, 0.9)
    finite = MarkovGame(g.reward, g.transition, 0.9, g.initial, horizon=3)
    with pytest.raises(ValueError, match="horizon"):
        npg.npg_sequential(finite, [np.zeros((2, 2)), np.zeros((2, 2, 2))], 0.1, 1)


@pytest.mark.parametrize("eta", [0.0, -1.0, float("nan"), float("inf")])
def test_rejects_bad_eta_value(eta):
    with pytest.raises(ValueError, match="eta"):
        npg.npg_independent(_xor(), _zeros(), eta, 1)


@pytest.mark.parametrize("eta", ["0.1", True, None])
def test_rejects_bad_eta_type(eta):
    with pytest.raises(TypeError, match="eta"):
        npg.npg_independent(_xor(), _zeros(), eta, 1)


def test_rejects_negative_iterations():
    with pytest.raises(ValueError, match="n_iters"):
        npg.npg_independent(_xor(), _zeros(), 0.1, -1)


@pytest.mark.parametrize("n_iters", [1.5, "3", True])
def test_rejects_non_integer_iterations(n_iters):
    with pytest.raises(TypeError, match="n_iters"):
        npg.npg_independent(_xor(), _zeros(), 0.1, n_iters)


def test_rejects_logits_not_a_list():
    with pytest.raises(TypeError, match="logits"):
        npg.npg_independent(_xor(), np.zeros((2, 1, 2)), 0.1, 1)


def test_rejects_wrong_number_of_logit_arrays():
    with pytest.raises(ValueError, match="2 arrays"):
        npg.npg_independent(_xor(), [np.zeros((1, 2))], 0.1, 1)


def test_rejects_wrong_logit_shape():
    with pytest.raises(ValueError, match=r"logits\[1\]"):
        npg.npg_independent(_xor(), [np.zeros((1, 2)), np.zeros((1, 3))], 0.1, 1)


def test_rejects_inconsistent_batch():
    with pytest.raises(ValueError, match="B = 4"):
        npg.npg_independent(_xor(), [np.zeros((4, 1, 2)), np.zeros((3, 1, 2))], 0.1, 1)


def test_rejects_empty_batch():
    with pytest.raises(ValueError, match="B >= 1"):
        npg.npg_independent(_xor(), [np.zeros((0, 1, 2)), np.zeros((0, 1, 2))], 0.1, 1)


def test_rejects_non_finite_logits():
    with pytest.raises(ValueError, match="finite"):
        npg.npg_independent(_xor(), [np.array([[np.nan, 0.0]]), np.zeros((1, 2))], 0.1, 1)


def test_rejects_non_numeric_logits():
    with pytest.raises(TypeError, match=r"logits\[0\]"):
        npg.npg_independent(_xor(), [[["a", "b"]], np.zeros((1, 2))], 0.1, 1)


def test_sequential_rejects_flat_second_agent_logits():
    with pytest.raises(ValueError, match=r"logits_ar\[1\]"):
        npg.npg_sequential(_xor(), _zeros(), 0.1, 1)


@pytest.mark.parametrize("order", [(0, 0), (0, 1, 2), (1,)])
def test_sequential_rejects_bad_order(order):
    with pytest.raises(ValueError, match="order"):
        npg.npg_sequential(_xor(), [np.zeros((1, 2)), np.zeros((1, 2, 2))], 0.1, 1, order=order)


def test_sequential_rejects_non_sequence_order():
    with pytest.raises(TypeError, match="order"):
        npg.npg_sequential(_xor(), [np.zeros((1, 2)), np.zeros((1, 2, 2))], 0.1, 1, order=3)


def test_shared_rejects_unequal_action_counts():
    game = matrix_game(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="same action count"):
        npg.npg_shared(game, np.zeros((1, 2)), 0.1, 1)


def test_random_logits_validation():
    rng = np.random.default_rng(0)
    with pytest.raises(TypeError, match="rng"):
        npg.random_logits(0, _xor(), 2)
    with pytest.raises(TypeError, match="game"):
        npg.random_logits(rng, "xor", 2)
    with pytest.raises(ValueError, match="batch"):
        npg.random_logits(rng, _xor(), 0)
    with pytest.raises(ValueError, match="scale"):
        npg.random_logits(rng, _xor(), 2, scale=-1.0)
    with pytest.raises(ValueError, match="kind"):
        npg.random_logits(rng, _xor(), 2, kind="joint")
    with pytest.raises(ValueError, match="equal action counts"):
        npg.random_logits(rng, matrix_game(np.zeros((2, 3))), 2, kind="shared")
    shapes = [x.shape for x in npg.random_logits(rng, matrix_game(np.zeros((2, 3))), 5, "sequential", (1, 0))]
    assert shapes == [(5, 1, 3), (5, 1, 3, 2)]


def test_classify_outcome_validation():
    with pytest.raises(TypeError, match="game"):
        npg.classify_outcome(None, Factorized.uniform(1, (2, 2)))
    with pytest.raises(ValueError, match="tol"):
        npg.classify_outcome(_xor(), Factorized.uniform(1, (2, 2)), tol=0.7)
    with pytest.raises(TypeError, match="tol"):
        npg.classify_outcome(_xor(), Factorized.uniform(1, (2, 2)), tol="small")
    with pytest.raises(ValueError, match="shape"):
        npg.classify_outcome(_xor(), Factorized.uniform(1, (3, 3)))
    with pytest.raises(TypeError, match="run"):
        npg.outcome_counts({"a": 1})


def test_run_policy_needs_single_initialisation():
    run = npg.npg_independent(_xor(), [np.zeros((2, 1, 2)), np.zeros((2, 1, 2))], 0.1, 1)
    with pytest.raises(ValueError, match="policies"):
        run.policy
    assert run.batch_size == 2 and run.J.shape == (2, 2)


def test_outcome_rate_validation():
    cmp = npg.OutcomeComparison("g", 2, 0.1, 1, {(0, 0): 2}, {(0, 0): 1, None: 1})
    assert cmp.rate("sequential", None) == 0.5
    with pytest.raises(ValueError, match="kind"):
        cmp.rate("shared", (0, 0))


def test_softmax_is_shift_invariant_and_stable():
    x = np.array([[1000.0, 1001.0, 999.0]])
    np.testing.assert_allclose(npg.softmax(x), sp_softmax(x - 1000.0, axis=-1), atol=1e-15)
    assert all(np.isfinite(npg.softmax(np.array([1e4, -1e4]))))
