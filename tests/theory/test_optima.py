"""Tests of seqmarl.theory.optima against closed forms (theory.md §1.4, §1.9, §3.3, §8) and brute-force enumeration."""

from __future__ import annotations

import itertools
import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from seqmarl.theory import evaluate, games, optima
from seqmarl.theory.markov_game import MarkovGame, matrix_game
from seqmarl.theory.policies import AutoRegressive, Factorized, Joint, Shared

SEEDS = st.integers(0, 2**32 - 1)
FAST = settings(max_examples=25, deadline=None)


# ------------------------------------------------------------------------------------------------
# independent reference implementations (loops, no vectorisation)
# ------------------------------------------------------------------------------------------------
def brute_joint_optimum(game: MarkovGame) -> float:
    """max over every deterministic stationary joint policy (|A|^S of them)."""
    joint_actions = list(itertools.product(*[range(a) for a in game.n_actions]))
    best = -np.inf
    for choice in itertools.product(joint_actions, repeat=game.n_states):
        best = max(best, evaluate.expected_return(game, Joint.deterministic(np.array(choice), game.n_actions)))
    return best


def value_iteration(game: MarkovGame, sweeps: int = 2000) -> float:
    v = np.zeros(game.n_states)
    for _ in range(sweeps):
        v = (game.reward_flat() + game.gamma * game.transition_flat() @ v).max(axis=1)
    return float(game.initial @ v)


def brute_nonstationary_optimum(game: MarkovGame) -> float:
    """max over every deterministic non-stationary joint policy of a finite-horizon game (exhaustive)."""
    k = game.n_joint_actions
    rules = list(itertools.product(range(k), repeat=game.n_states))
    r, p = game.reward_flat(), game.transition_flat()
    rows = np.arange(game.n_states)
    best = -np.inf
    for schedule in itertools.product(rules, repeat=game.horizon):
        v = np.zeros(game.n_states)
        for rule in reversed(schedule):
            a = np.array(rule)
            v = r[rows, a] + game.gamma * p[rows, a] @ v
        best = max(best, float(game.initial @ v))
    return best


def brute_pure_ne(payoff: np.ndarray) -> set[tuple[int, ...]]:
    out = set()
    for a in itertools.product(*[range(k) for k in payoff.shape]):
        ok = True
        for i in range(payoff.ndim):
            for b in range(payoff.shape[i]):
                dev = list(a)
                dev[i] = b
                if payoff[tuple(dev)] > payoff[a] + 1e-12:
                    ok = False
        if ok:
            out.add(a)
    return out


def brute_best_response(game: MarkovGame, tables: list[np.ndarray], agent: int) -> float:
    """Best deterministic stationary response by enumeration (optimal for discounted MDPs)."""
    best = -np.inf
    for choice in itertools.product(range(game.n_actions[agent]), repeat=game.n_states):
        new = list(tables)
        new[agent] = np.eye(game.n_actions[agent])[list(choice)]
        best = max(best, evaluate.expected_return(game, Factorized(new)))
    return best


def simplex_grid(m: int, steps: int) -> np.ndarray:
    pts = [np.array(c + (steps - sum(c),)) / steps for c in itertools.product(range(steps + 1), repeat=m - 1) if sum(c) <= steps]
    return np.array(pts)


def shared_value_on(payoff: np.ndarray, points: np.ndarray) -> np.ndarray:
    """J(p) = sum_a r(a) prod_i p(a^i) for each row p, by explicit loops over joint actions."""
    out = np.zeros(len(points))
    for a in itertools.product(*[range(k) for k in payoff.shape]):
        out += payoff[a] * np.prod(points[:, list(a)], axis=1)
    return out


def random_policy(rng: np.random.Generator, game: MarkovGame) -> Factorized:
    return Factorized([rng.dirichlet(np.ones(a), size=game.n_states) for a in game.n_actions])


# ------------------------------------------------------------------------------------------------
# ICLR22 Prop. 1 (theory.md §1.4)
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("n", [2, 4, 6, 8, 10, 12])
def test_prop1_xor_shared_and_joint(n):
    game = games.xor(n)
    shared = optima.shared_optimum(game)
    joint = optima.joint_optimum(game)
    assert abs(shared.value - 2 / 2**n) <= 1e-12
    assert 0.0 < shared.certified_gap <= 1e-12  # computed (Bernstein bound minus value), never assumed
    assert shared.value + shared.certified_gap >= 2 / 2**n
    assert isinstance(shared.policy, Shared)
    assert np.allclose(shared.policy.table, [[0.5, 0.5]], atol=1e-9)
    assert abs(evaluate.expected_return(game, shared.policy) - shared.value) <= 1e-12
    assert joint.value == 1.0
    assert isinstance(joint.policy, Joint)
    assert joint.actions.shape == (1, n)
    assert game.reward[(0, *joint.actions[0])] == 1.0
    assert abs(shared.value / joint.value - 2.0 / 2**n) <= 1e-12


@pytest.mark.parametrize("n", [2, 4, 6, 12])
def test_two_action_candidates_are_endpoints_and_roots_only(n):
    """ICLR22 Prop. 1 oracle: the candidate set is {0, 1} and the (near-)real roots of J' -- no grid (a grid holding
    p = 1/2 made xor(n) right by construction)."""
    payoff = games.xor(n).reward[0]
    zeros = n - np.indices(payoff.shape).sum(axis=0)
    coeffs = np.bincount(zeros.ravel(), weights=payoff.ravel(), minlength=n + 1)
    poly = optima._two_action_polynomial(coeffs)
    candidates = optima._two_action_candidates(poly)
    roots = poly.deriv().roots()
    expected = np.concatenate([[0.0, 1.0], np.clip(roots[np.abs(roots.imag) <= 1e-3 * (1 + np.abs(roots))].real, 0, 1)])
    np.testing.assert_array_equal(np.sort(candidates), np.sort(expected))
    assert len(candidates) <= n + 1


@pytest.mark.parametrize("seed", range(5))
def test_two_action_upper_bound_is_certified_and_tight(seed):
    """The Bernstein bound is >= the maximum on a fine grid (and at the critical points) and within 1e-12 of it."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 9))
    coeffs = rng.standard_normal(n + 1) * rng.integers(1, 5, size=n + 1)
    p = np.linspace(0, 1, 100001)
    dense = float(optima._bernstein_value(coeffs, p).max())
    roots = optima._two_action_polynomial(coeffs).deriv().roots() if n > 1 else np.array([])
    critical = np.clip(roots[np.abs(roots.imag) < 1e-9].real, 0, 1)
    best = max(dense, float(optima._bernstein_value(coeffs, critical).max(initial=-np.inf)))
    upper = optima._two_action_upper_bound(coeffs, best, 1e-13)
    assert best < upper <= best + 1e-12 * (1 + abs(best))


@FAST
@given(seed=SEEDS, n=st.integers(1, 5))
def test_shared_two_actions_beats_dense_grid(seed, n):
    rng = np.random.default_rng(seed)
    payoff = rng.standard_normal((2,) * n)
    game = matrix_game(payoff)
    res = optima.shared_optimum(game)
    p = np.linspace(0.0, 1.0, 2001)
    grid = shared_value_on(payoff, np.stack([p, 1 - p], axis=1)).max()
    assert res.value >= grid - 1e-12
    assert abs(evaluate.expected_return(game, res.policy) - res.value) <= 1e-12


def test_shared_single_state_discounted_scales_by_horizon_sum():
    base = games.xor(2)
    disc = MarkovGame(base.reward, base.transition, 0.5, base.initial)
    assert abs(optima.shared_optimum(disc).value - 0.5 / (1 - 0.5)) <= 1e-12
    hor = MarkovGame(base.reward, base.transition, 1.0, base.initial, horizon=3)
    assert abs(optima.shared_optimum(hor).value - 3 * 0.5) <= 1e-12


# ------------------------------------------------------------------------------------------------
# shared optimum with m >= 3 actions (certified branch and bound)
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "game, exact",
    [
        (games.climbing(), 11.0),  # p^T R p <= max entry, attained at the vertex a
        (games.penalty(-100), 10.0),
        (games.qtran(), 8.0),
        (games.permutation(3), 2 / 9),  # n! prod p_j <= n! / n^n by AM-GM, attained at uniform
        (games.permutation(4), 24 / 256),
        (games.permutation(5), 120 / 5**5),
    ],
)
def test_shared_closed_forms(game, exact):
    res = optima.shared_optimum(game)
    assert res.value <= exact + 1e-12
    assert exact - res.value <= res.certified_gap + 1e-12
    assert res.certified_gap <= 1e-9
    assert abs(res.value - exact) <= 1e-9
    assert abs(evaluate.expected_return(game, res.policy) - res.value) <= 1e-12


@FAST
@given(seed=SEEDS, n=st.integers(2, 3), m=st.integers(3, 4))
def test_shared_branch_and_bound_against_dense_grid(seed, n, m):
    rng = np.random.default_rng(seed)
    game = games.random_game(rng, n_agents=n, n_actions=m, n_states=1, gamma=0.0)
    res = optima.shared_optimum(game)
    grid = simplex_grid(m, 60 if m == 3 else 24)
    grid_best = shared_value_on(game.reward[0], grid).max()
    assert grid_best <= res.value + res.certified_gap + 1e-12
    assert res.certified_gap <= 1e-9
    # value is attained by the returned policy, hence <= the true optimum
    assert abs(evaluate.expected_return(game, res.policy) - res.value) <= 1e-12


@FAST
@given(seed=SEEDS, n=st.integers(2, 3), budget=st.integers(1, 40))
def test_shared_gap_is_valid_when_budget_runs_out(seed, n, budget):
    """With a tiny cell budget the bounds themselves set the gap: it must still cover the true optimum."""
    rng = np.random.default_rng(seed)
    game = games.random_game(rng, n_agents=n, n_actions=3, n_states=1, gamma=0.0)
    tight = optima.shared_optimum(game)
    loose = optima.shared_optimum(game, max_cells=budget)
    assert tight.value <= loose.value + loose.certified_gap + 1e-12
    grid_best = shared_value_on(game.reward[0], simplex_grid(3, 60)).max()
    assert grid_best <= loose.value + loose.certified_gap + 1e-12
    assert abs(evaluate.expected_return(game, loose.policy) - loose.value) <= 1e-12


@FAST
@given(seed=SEEDS, n=st.integers(1, 4), m=st.integers(3, 5), shrink=st.sampled_from([1.0, 0.2, 0.01]))
def test_each_cell_bound_is_valid(seed, n, m, shrink):
    """White-box: each of the three bounds (Lipschitz, curvature, Bernstein) dominates J on a random cell."""
    rng = np.random.default_rng(seed)
    payoff = rng.standard_normal((m,) * n)
    poly = optima._SymmetricPolynomial(payoff)
    cells = shrink * rng.dirichlet(np.ones(m), size=(4, m)) + (1 - shrink) * rng.dirichlet(np.ones(m), size=(4, 1))
    values, grads = poly.value_and_grad(cells.mean(axis=1))
    bounds = optima._cell_bounds(poly, cells, values, grads, float(payoff.max() - payoff.min()))
    for c in range(4):
        inside = rng.dirichlet(np.full(m, 0.3), size=400) @ cells[c]
        inside = np.concatenate([inside, cells[c]])
        j = shared_value_on(payoff, inside).max()
        assert np.all(bounds[:, c] >= j - 1e-12)
    # the batched polynomial agrees with the loop definition
    pts = rng.dirichlet(np.ones(m), size=5)
    assert np.allclose(poly.value_and_grad(pts)[0], shared_value_on(payoff, pts), atol=1e-12)


def test_shared_budget_exhaustion_reports_positive_gap():
    game = games.permutation(3)  # interior maximiser: one cell cannot certify it
    loose = optima.shared_optimum(game, max_cells=1)
    assert loose.certified_gap > 1e-6
    assert 2 / 9 <= loose.value + loose.certified_gap + 1e-12


def test_shared_multi_state_is_feasible_and_flagged_uncertified():
    rng = np.random.default_rng(7)
    game = games.random_game(rng, n_agents=2, n_actions=2, n_states=2, gamma=0.9)
    res = optima.shared_optimum(game, rng=np.random.default_rng(1))
    assert res.certified_gap == math.inf
    assert "not certified" in res.detail
    assert abs(evaluate.expected_return(game, res.policy) - res.value) <= 1e-12
    assert res.value <= optima.joint_optimum(game).value + 1e-9
    p = np.linspace(0.0, 1.0, 41)
    grid = max(
        evaluate.expected_return(game, Shared(np.array([[a, 1 - a], [b, 1 - b]]), 2)) for a in p for b in p
    )
    assert res.value >= grid - 1e-7


# ------------------------------------------------------------------------------------------------
# joint / factorised optimum
# ------------------------------------------------------------------------------------------------
@FAST
@given(seed=SEEDS, n_states=st.integers(1, 3), gamma=st.sampled_from([0.0, 0.5, 0.9]))
def test_joint_optimum_matches_enumeration_and_value_iteration(seed, n_states, gamma):
    rng = np.random.default_rng(seed)
    game = games.random_game(rng, n_agents=2, n_actions=2, n_states=n_states, gamma=gamma)
    res = optima.joint_optimum(game)
    assert abs(res.value - brute_joint_optimum(game)) <= 1e-9
    assert abs(res.value - value_iteration(game)) <= 1e-9
    assert abs(evaluate.expected_return(game, res.policy) - res.value) <= 1e-9
    assert res.actions.shape == (n_states, 2)
    fact = optima.factorized_optimum(game)
    assert isinstance(fact.policy, Factorized)
    assert abs(fact.value - res.value) <= 1e-12
    assert abs(evaluate.expected_return(game, fact.policy) - res.value) <= 1e-9


def test_policy_iteration_takes_small_improvements():
    """Greedy-on-reward stays in state 0 (J = 2); moving costs eps now and gains 3 eps forever after:
    with gamma = 1/2, J* = (1 - eps) + (1/2)(1 + 3 eps)/(1 - 1/2) = 2 + 2 eps."""
    eps = 1e-6
    reward = np.array([[1.0, 1.0 - eps], [1.0 + 3 * eps, 1.0 + 3 * eps]])
    transition = np.zeros((2, 2, 2))
    transition[0, 0, 0] = transition[0, 1, 1] = transition[1, :, 1] = 1.0
    game = MarkovGame(reward, transition, 0.5, np.array([1.0, 0.0]))
    res = optima.joint_optimum(game)
    assert abs(res.value - (2 + 2 * eps)) <= 1e-12
    assert res.actions[0, 0] == 1


@pytest.mark.parametrize("horizon", [None, 1, 4])
def test_stationary_gradient_matches_finite_differences(horizon):
    rng = np.random.default_rng(2)
    base = games.random_game(rng, n_agents=2, n_actions=2, n_states=3, gamma=0.8)
    game = MarkovGame(base.reward, base.transition, 0.8, base.initial, horizon=horizon)
    joint = random_policy(rng, game).probs()
    grad = optima._stationary_gradient(game, joint)
    for _ in range(3):
        direction = rng.standard_normal(joint.shape)
        direction -= direction.mean(axis=(1, 2), keepdims=True)  # stays normalised per state
        h = 1e-6
        numeric = (evaluate.expected_return(game, joint + h * direction) - evaluate.expected_return(game, joint - h * direction)) / (2 * h)
        assert abs(numeric - (grad * direction).sum()) <= 1e-6


@pytest.mark.parametrize("seed", range(3))
def test_joint_optimum_finite_horizon_is_nonstationary_optimum(seed):
    rng = np.random.default_rng(seed)
    base = games.random_game(rng, n_agents=2, n_actions=2, n_states=2, gamma=0.9)
    game = MarkovGame(base.reward, base.transition, 0.9, base.initial, horizon=3)
    res = optima.joint_optimum(game)
    assert abs(res.value - brute_nonstationary_optimum(game)) <= 1e-9
    assert res.schedule.shape == (3, 2, 2)
    stationary = evaluate.expected_return(game, res.policy)
    assert stationary <= res.value + 1e-12
    assert abs(stationary - evaluate.expected_return(game, Joint.deterministic(res.actions, game.n_actions))) <= 1e-12
    fact = optima.factorized_optimum(game)
    assert abs(fact.value + fact.certified_gap - res.value) <= 1e-12
    # no deterministic stationary joint policy beats value + certified gap
    assert brute_joint_optimum(game) <= fact.value + fact.certified_gap + 1e-12


# ------------------------------------------------------------------------------------------------
# pure Nash equilibria (theory.md §8, §7.6)
# ------------------------------------------------------------------------------------------------
def test_pure_ne_climbing():
    assert optima.pure_nash_equilibria(games.climbing()) == [(0, 0), (1, 1)]


@pytest.mark.parametrize("k", [0.0, -10.0, -100.0])
def test_pure_ne_penalty(k):
    assert set(optima.pure_nash_equilibria(games.penalty(k))) == {(0, 0), (1, 1), (2, 2)}


def test_pure_ne_qtran_by_hand():
    matrix = [[8, -12, -12], [-12, 0, 0], [-12, 0, 0]]  # theory.md §7.6
    expected = set()
    for a in range(3):
        for b in range(3):
            row_ok = all(matrix[a][b] >= matrix[x][b] for x in range(3))
            col_ok = all(matrix[a][b] >= matrix[a][y] for y in range(3))
            if row_ok and col_ok:
                expected.add((a, b))
    assert expected == {(0, 0), (1, 1), (1, 2), (2, 1), (2, 2)}
    assert set(optima.pure_nash_equilibria(games.qtran())) == expected


@FAST
@given(seed=SEEDS, shape=st.sampled_from([(2, 2), (3, 2), (2, 2, 2), (3, 3, 2)]), integer=st.booleans())
def test_pure_ne_matches_loop_enumeration(seed, shape, integer):
    rng = np.random.default_rng(seed)
    payoff = rng.integers(-2, 3, size=shape).astype(float) if integer else rng.standard_normal(shape)
    found = optima.pure_nash_equilibria(matrix_game(payoff))
    assert found == sorted(found)
    assert set(found) == brute_pure_ne(payoff)


# ------------------------------------------------------------------------------------------------
# best responses and the Nash gap (theory.md §1.9)
# ------------------------------------------------------------------------------------------------
def _pure(actions, n_actions=(3, 3)):
    return Factorized.deterministic(np.array([actions]), n_actions)


def test_nash_gap_climbing_hand_numbers():
    game = games.climbing()
    assert optima.nash_gap(game, _pure((0, 0))) == 0.0
    assert optima.nash_gap(game, _pure((1, 1))) == 0.0
    # at (c,c)=5 agent 1 moves to b for r(b,c) = 6; agent 2's options in row c are 0, 0, 5
    assert optima.best_response_value(game, _pure((2, 2)), 0) == 6.0
    assert optima.best_response_value(game, _pure((2, 2)), 1) == 5.0
    assert optima.nash_gap(game, _pure((2, 2))) == 1.0
    assert optima.is_epsilon_nash(game, _pure((2, 2)), 1.0)
    assert not optima.is_epsilon_nash(game, _pure((2, 2)), 0.5)
    # uniform partner: row means -19/3, -17/3, 5/3 (theory.md §8), column means -19/3, -23/3, 11/3
    # (the matrix is not symmetric: r(b,c) = 6, r(c,b) = 0); J(uniform) = -31/9
    uniform = Factorized.uniform(1, (3, 3))
    gap = max(Fraction(5, 3), Fraction(11, 3)) - Fraction(-31, 9)
    assert abs(optima.best_response_value(game, uniform, 0) - 5 / 3) <= 1e-12
    assert abs(optima.best_response_value(game, uniform, 1) - 11 / 3) <= 1e-12
    assert abs(optima.nash_gap(game, uniform) - float(gap)) <= 1e-12


def test_nash_gap_accepts_shared_and_table_lists():
    game = games.xor(2)
    half = Shared(np.array([[0.5, 0.5]]), 2)
    # against p = 1/2 every action earns 1/2 = J, so p = 1/2 is a (saddle) NE
    assert abs(optima.nash_gap(game, half)) <= 1e-12
    assert optima.nash_gap(game, [np.array([[1.0, 0.0]]), np.array([[1.0, 0.0]])]) == 1.0


@FAST
@given(seed=SEEDS, n_states=st.integers(1, 3), gamma=st.sampled_from([0.0, 0.5, 0.9]), n_agents=st.integers(2, 3))
def test_nash_gap_random_games(seed, n_states, gamma, n_agents):
    rng = np.random.default_rng(seed)
    game = games.random_game(rng, n_agents=n_agents, n_actions=2, n_states=n_states, gamma=gamma)
    pi = random_policy(rng, game)
    gap = optima.nash_gap(game, pi)
    assert gap >= -1e-12
    j = evaluate.expected_return(game, pi)
    tables = list(pi.tables)
    for agent in range(n_agents):
        br = optima.best_response_value(game, pi, agent)
        assert br >= j - 1e-12
        assert abs(br - brute_best_response(game, tables, agent)) <= 1e-9
    assert abs(gap - max(optima.best_response_value(game, pi, i) for i in range(n_agents)) + j) <= 1e-12
    best = optima.factorized_optimum(game)
    assert abs(optima.nash_gap(game, best.policy)) <= 1e-9
    assert optima.is_epsilon_nash(game, best.policy, 1e-9)


def test_best_response_finite_horizon_beats_stationary_responses():
    rng = np.random.default_rng(11)
    base = games.random_game(rng, n_agents=2, n_actions=2, n_states=2, gamma=0.9)
    game = MarkovGame(base.reward, base.transition, 0.9, base.initial, horizon=3)
    pi = random_policy(rng, game)
    br = optima.best_response_value(game, pi, 0)
    assert br >= brute_best_response(game, list(pi.tables), 0) - 1e-12
    assert optima.nash_gap(game, pi) >= -1e-12


# ------------------------------------------------------------------------------------------------
# maximum-entropy optimal policies (theory.md §3.3)
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("n", [2, 3, 4, 5, 6])
def test_permutation_max_entropy(n):
    game = games.permutation(n)
    prod = optima.max_entropy_optimal(game, "factorized")
    assert isinstance(prod, Factorized)
    assert prod.entropy()[0] == 0.0
    assert abs(evaluate.expected_return(game, prod) - 1.0) <= 1e-12
    ar = optima.max_entropy_optimal(game, "autoregressive")
    assert isinstance(ar, AutoRegressive)
    assert abs(ar.entropy()[0] - math.log(math.factorial(n))) <= 1e-12
    assert abs(evaluate.expected_return(game, ar) - 1.0) <= 1e-12
    for k, h in enumerate(ar.conditional_entropies(), start=1):
        assert abs(h[0] - math.log(n - k + 1)) <= 1e-12


def test_permutation_ar_any_order():
    game = games.permutation(4)
    ar = optima.max_entropy_optimal(game, "autoregressive", order=(2, 0, 3, 1))
    assert ar.order == (2, 0, 3, 1)
    assert abs(ar.entropy()[0] - math.log(24)) <= 1e-12
    assert np.allclose(ar.probs(), game.reward / 24.0, atol=1e-15)


def brute_product_entropy(mask: np.ndarray) -> float:
    """max sum_i log|S_i| over all subset tuples with S_1 x ... x S_n inside mask."""
    subsets = [
        [c for r in range(1, k + 1) for c in itertools.combinations(range(k), r)] for k in mask.shape
    ]
    best = -np.inf
    for choice in itertools.product(*subsets):
        if all(mask[a] for a in itertools.product(*choice)):
            best = max(best, sum(math.log(len(c)) for c in choice))
    return best


@FAST
@given(seed=SEEDS, shape=st.sampled_from([(3, 3), (2, 4), (2, 2, 2), (3, 2, 2)]), density=st.sampled_from([0.3, 0.6, 0.9]))
def test_factorized_max_entropy_matches_subset_enumeration(seed, shape, density):
    rng = np.random.default_rng(seed)
    mask = rng.random(shape) < density
    mask[tuple(rng.integers(0, k) for k in shape)] = True
    game = matrix_game(mask.astype(float))
    pi = optima.max_entropy_optimal(game, "factorized")
    assert abs(pi.entropy()[0] - brute_product_entropy(mask)) <= 1e-12
    assert abs(evaluate.expected_return(game, pi) - 1.0) <= 1e-12  # optimal: support inside the argmax set
    ar = optima.max_entropy_optimal(game, "autoregressive")
    assert abs(ar.entropy()[0] - math.log(mask.sum())) <= 1e-12


def test_max_entropy_multi_state_duplicate_actions():
    """Agent 0's actions 0 and 1 are copies in every state, so both are optimal: H = log 2 per state."""
    rng = np.random.default_rng(5)
    base = games.random_game(rng, n_agents=2, n_actions=(3, 2), n_states=3, gamma=0.9)
    reward, transition = base.reward.copy(), base.transition.copy()
    reward[:, 1], transition[:, 1] = reward[:, 0], transition[:, 0]
    game = MarkovGame(reward, transition, 0.9, base.initial)
    v_star = optima.joint_optimum(game).value
    for kind in ("factorized", "autoregressive"):
        pi = optima.max_entropy_optimal(game, kind)
        assert abs(evaluate.expected_return(game, pi) - v_star) <= 1e-9
        entropy = pi.entropy()
        opt = optima.optimal_action_sets(game)
        for s in range(3):
            assert abs(entropy[s] - math.log(opt[s].sum())) <= 1e-12


def test_max_entropy_constant_game_is_uniform():
    game = matrix_game(np.ones((2, 3, 4)))
    pi = optima.max_entropy_optimal(game, "factorized")
    assert abs(pi.entropy()[0] - math.log(24)) <= 1e-12


# ------------------------------------------------------------------------------------------------
# validation: one test per rule
# ------------------------------------------------------------------------------------------------
def test_shared_rejects_heterogeneous_action_counts():
    game = matrix_game(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="same number of actions"):
        optima.shared_optimum(game)


@pytest.mark.parametrize("kwargs", [{"tol": 0.0}, {"tol": float("nan")}, {"max_cells": 0}, {"n_starts": -1}])
def test_shared_rejects_bad_options(kwargs):
    with pytest.raises(ValueError):
        optima.shared_optimum(games.climbing(), **kwargs)


def test_shared_rejects_bad_rng():
    with pytest.raises(TypeError, match="rng"):
        optima.shared_optimum(games.climbing(), rng=0)


def test_unknown_kind():
    with pytest.raises(ValueError, match="kind"):
        optima.max_entropy_optimal(games.xor(2), "shared")


def test_order_only_for_autoregressive():
    with pytest.raises(ValueError, match="order"):
        optima.max_entropy_optimal(games.xor(2), "factorized", order=(0, 1))


def test_bad_ar_order():
    with pytest.raises(ValueError, match="order"):
        optima.max_entropy_optimal(games.xor(2), "autoregressive", order=(0, 0))


def test_max_entropy_rejects_long_horizon():
    base = games.random_game(np.random.default_rng(0), n_states=2)
    game = MarkovGame(base.reward, base.transition, 0.9, base.initial, horizon=2)
    with pytest.raises(ValueError, match="horizon"):
        optima.max_entropy_optimal(game, "autoregressive")


def test_pure_ne_needs_one_shot():
    game = games.random_game(np.random.default_rng(0), n_states=2)
    with pytest.raises(ValueError, match="one-shot"):
        optima.pure_nash_equilibria(game)


@pytest.mark.parametrize("eps", [-1e-3, float("nan"), float("inf")])
def test_eps_must_be_nonnegative_finite(eps):
    with pytest.raises(ValueError, match="eps"):
        optima.is_epsilon_nash(games.climbing(), _pure((0, 0)), eps)


def test_eps_must_be_a_number():
    with pytest.raises(TypeError, match="eps"):
        optima.is_epsilon_nash(games.climbing(), _pure((0, 0)), "0.1")


@pytest.mark.parametrize("agent", [-1, 2])
def test_agent_out_of_range(agent):
    with pytest.raises(ValueError, match="agent"):
        optima.best_response_value(games.climbing(), _pure((0, 0)), agent)


def test_agent_must_be_int():
    with pytest.raises(TypeError, match="agent"):
        optima.best_response_value(games.climbing(), _pure((0, 0)), 0.5)


def test_nash_gap_needs_product_policy():
    ar = AutoRegressive.from_joint(np.full((1, 3, 3), 1 / 9), (0, 1))
    with pytest.raises(TypeError, match="product policy"):
        optima.nash_gap(games.climbing(), ar)


def test_nash_gap_policy_shape_must_match_game():
    with pytest.raises(ValueError, match="pi must hold"):
        optima.nash_gap(games.climbing(), Factorized.uniform(1, (2, 2)))


@pytest.mark.parametrize(
    "fn", [optima.joint_optimum, optima.factorized_optimum, optima.shared_optimum, optima.pure_nash_equilibria]
)
def test_game_must_be_markov_game(fn):
    with pytest.raises(TypeError, match="MarkovGame"):
        fn(np.zeros((2, 2)))


def test_optimal_action_sets_tol():
    with pytest.raises(ValueError, match="tol"):
        optima.optimal_action_sets(games.climbing(), tol=-1.0)


def test_is_symmetric_needs_the_swap_and_the_cycle():
    """A tensor symmetric under every permutation of its axes, and ones invariant only under the swap of axes
    0, 1 or only under the cyclic shift: only the first is symmetric (the two generate S_n)."""
    from seqmarl.theory.optima import _is_symmetric

    rng = np.random.default_rng(0)
    base = rng.integers(-5, 6, size=(3, 3, 3)).astype(float)  # integers: sums exact; 3 values: C3 orbits != S3 orbits
    full = sum(np.transpose(base, p) for p in itertools.permutations(range(3)))
    swap_only = base + np.transpose(base, (1, 0, 2))  # symmetric in axes 0, 1 only
    cycle_only = np.zeros((3, 3, 3))
    for i, j, k in [(0, 1, 2), (1, 2, 0), (2, 0, 1)]:  # one cyclic orbit: T(0,1,2) = T(1,2,0) = T(2,0,1) = 1
        cycle_only[i, j, k] = 1.0
    assert _is_symmetric(full)
    assert not _is_symmetric(swap_only)
    assert not _is_symmetric(cycle_only)


def test_joint_optimum_detail_names_the_method():
    """One-shot games are solved by an argmax over joint actions; discounted multi-state games by policy
    iteration: the result says which."""
    assert optima.joint_optimum(games.climbing()).detail.startswith("one-shot argmax")
    multi = games.random_game(np.random.default_rng(3), 2, [2, 2], 3, gamma=0.9)
    assert optima.joint_optimum(multi).detail.startswith("exact policy iteration")
