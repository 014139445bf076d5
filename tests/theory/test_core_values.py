"""Exact values of the theory core against numbers derived by hand (theory.md §0, §1.4, §1.5, §8)."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest

from seqmarl.theory import evaluate as ev
from seqmarl.theory import games
from seqmarl.theory import multiagent as ma
from seqmarl.theory.markov_game import MarkovGame
from seqmarl.theory.policies import AutoRegressive, Factorized, Joint, Shared

GRID = [0.0, 0.1, 0.25, 0.5, 0.8, 1.0]


def _bern(p: float) -> np.ndarray:
    """One-state table playing action 1 with probability p."""
    return np.array([[1.0 - p, p]])


def _h(*probs: float) -> float:
    """Entropy in nats of a distribution given by its probabilities (0 log 0 = 0)."""
    return -sum(p * math.log(p) for p in probs if p > 0)


# --- XOR / HATRPO Prop. 1 (theory.md §1.4) -----------------------------------------------------------


@pytest.mark.parametrize("p", GRID)
@pytest.mark.parametrize("q", GRID)
def test_xor_return_under_independent_policies(p: float, q: float) -> None:
    # r = 1 on (0,1) and (1,0): J = P(a1=1) P(a2=0) + P(a1=0) P(a2=1) = p(1-q) + (1-p)q.
    pi = Factorized([_bern(p), _bern(q)])
    assert ev.expected_return(games.xor(2), pi) == pytest.approx(p * (1 - q) + (1 - p) * q, abs=1e-15)


@pytest.mark.parametrize("p", GRID)
def test_shared_xor_return(p: float) -> None:
    # Both agents play 1 with probability p: J = 2 p (1 - p); the optimum 1/2 at p = 1/2 (= 2 / 2^n, n = 2).
    assert ev.expected_return(games.xor(2), Shared(_bern(p), 2)) == pytest.approx(2 * p * (1 - p), abs=1e-15)


def test_shared_xor4_optimum_is_two_over_two_to_the_n() -> None:
    # J_share(p) = 2 (p(1-p))^{n/2}; at p = 1/2 and n = 4 this is 2/16.
    assert ev.expected_return(games.xor(4), Shared(_bern(0.5), 4)) == pytest.approx(2 / 2**4, abs=1e-15)


# --- climbing game: relative overgeneralisation (theory.md §8) ---------------------------------------


def test_climbing_rows_against_uniform_partner() -> None:
    # Agent 1 (rows) against a uniform agent 2: Q^{1}(a) = row means (11-30+0)/3, (-30+7+6)/3, (0+0+5)/3.
    uniform = Factorized.uniform(1, (3, 3))
    expected = [Fraction(-19, 3), Fraction(-17, 3), Fraction(5, 3)]
    np.testing.assert_allclose(ma.q_subset(games.climbing(), uniform, (0,))[0], [float(x) for x in expected], rtol=0, atol=1e-14)
    # with gamma = 0, V = J = mean of all nine payoffs = (-19 - 17 + 5) / 9 = -31/9
    assert ma.q_subset(games.climbing(), uniform, ())[0] == pytest.approx(-31 / 9, abs=1e-14)


def test_climbing_columns_against_uniform_partner() -> None:
    # The matrix is not symmetric ((b,c) = 6, (c,b) = 0): agent 2 gets the column means
    # (11-30+0)/3 = -19/3, (-30+7+0)/3 = -23/3, (0+6+5)/3 = 11/3.
    uniform = Factorized.uniform(1, (3, 3))
    np.testing.assert_allclose(ma.q_subset(games.climbing(), uniform, (1,))[0], [-19 / 3, -23 / 3, 11 / 3], rtol=0, atol=1e-14)


def test_climbing_advantage_of_c_against_uniform() -> None:
    # A^{1}(c) = Q^{1}(c) - V = 5/3 + 31/9 = 46/9
    adv = ma.advantage_subset(games.climbing(), Factorized.uniform(1, (3, 3)), (0,))
    assert adv[0, 2] == pytest.approx(46 / 9, abs=1e-14)


# --- two-state chains solvable by hand ---------------------------------------------------------------


def _absorbing_chain(gamma: float, horizon: int | None = None) -> MarkovGame:
    """Two agents x two actions. State 0 pays r0(a) = a1 + 2 a2 and always moves to state 1; state 1 pays 2
    whatever is played and stays there. Start in state 0."""
    reward = np.zeros((2, 2, 2))
    reward[0] = [[0.0, 2.0], [1.0, 3.0]]
    reward[1] = 2.0
    transition = np.zeros((2, 2, 2, 2))
    transition[:, :, :, 1] = 1.0
    return MarkovGame(reward, transition, gamma, np.array([1.0, 0.0]), horizon=horizon, name="absorbing")


def _staying_chain(gamma: float, horizon: int | None = None) -> MarkovGame:
    """Two agents x two actions. In state 0, joint action (1,1) pays 1 and stays; anything else pays 0 and
    moves to the absorbing, zero-reward state 1. Start in state 0."""
    reward = np.zeros((2, 2, 2))
    reward[0, 1, 1] = 1.0
    transition = np.zeros((2, 2, 2, 2))
    transition[0, :, :, 1] = 1.0
    transition[0, 1, 1] = [1.0, 0.0]
    transition[1, :, :, 1] = 1.0
    return MarkovGame(reward, transition, gamma, np.array([1.0, 0.0]), horizon=horizon, name="staying")


def test_absorbing_chain_values() -> None:
    # p1 = P(a1 = 1) = 0.3, p2 = P(a2 = 1) = 0.6, gamma = 0.5.
    # V(1) = 2 / (1 - 0.5) = 4;  E[r0] = p1 + 2 p2 = 1.5;  V(0) = 1.5 + 0.5 * 4 = 3.5 = J.
    # Q(0, a) = r0(a) + 0.5 * 4 = r0(a) + 2; Q(1, a) = 2 + 0.5 * 4 = 4.
    # rho = (1, gamma + gamma^2 + ...) = (1, 1); sums to 1 / (1 - gamma) = 2.
    game = _absorbing_chain(0.5)
    pi = Factorized([np.array([[0.7, 0.3]] * 2), np.array([[0.4, 0.6]] * 2)])
    np.testing.assert_allclose(ev.value(game, pi), [3.5, 4.0], rtol=0, atol=1e-14)
    np.testing.assert_allclose(ev.q_value(game, pi)[0], [[2.0, 4.0], [3.0, 5.0]], rtol=0, atol=1e-14)
    np.testing.assert_allclose(ev.q_value(game, pi)[1], 4.0, rtol=0, atol=1e-14)
    np.testing.assert_allclose(ev.occupancy(game, pi), [1.0, 1.0], rtol=0, atol=1e-14)
    assert ev.expected_return(game, pi) == pytest.approx(3.5, abs=1e-14)
    # Q^{agent 2}(0, a2) = E_{a1}[Q(0, a1, a2)] = 0.7 * (2, 4) + 0.3 * (3, 5) = (2.3, 4.3)
    np.testing.assert_allclose(ma.q_subset(game, pi, (1,))[0], [2.3, 4.3], rtol=0, atol=1e-14)


@pytest.mark.parametrize("gamma", [0.0, 0.5, 0.9])
def test_staying_chain_values(gamma: float) -> None:
    # p = P(a = (1,1)) = 0.8 * 0.5 = 0.4. V(1) = 0; V(0) = p (1 + gamma V(0)) => V(0) = p / (1 - gamma p).
    # rho(0) = sum_t (gamma p)^t = 1 / (1 - gamma p); rho(1) = 1/(1-gamma) - rho(0).
    game = _staying_chain(gamma)
    pi = Factorized([np.array([[0.2, 0.8]] * 2), np.array([[0.5, 0.5]] * 2)])
    p = 0.4
    np.testing.assert_allclose(ev.value(game, pi), [p / (1 - gamma * p), 0.0], rtol=0, atol=1e-14)
    rho0 = 1 / (1 - gamma * p)
    np.testing.assert_allclose(ev.occupancy(game, pi), [rho0, 1 / (1 - gamma) - rho0], rtol=0, atol=1e-13)
    # Q(0,1,1) = 1 + gamma V(0); any other joint action in state 0 is worth 0.
    assert ev.q_value(game, pi)[0, 1, 1] == pytest.approx(1 + gamma * p / (1 - gamma * p), abs=1e-14)
    assert ev.q_value(game, pi)[0, 0, 1] == 0.0


@pytest.mark.parametrize("horizon", [1, 2, 5])
def test_finite_horizon_undiscounted_absorbing_chain(horizon: int) -> None:
    # gamma = 1, H steps: V_H(1) = 2H; V_H(0) = E[r0] + V_{H-1}(1) = 1.5 + 2 (H - 1).
    # Q_H(0, a) = r0(a) + V_{H-1}(1) = r0(a) + 2 (H - 1). rho = (1, H - 1) (state 1 visited at t = 1..H-1).
    game = _absorbing_chain(1.0, horizon=horizon)
    pi = Factorized([np.array([[0.7, 0.3]] * 2), np.array([[0.4, 0.6]] * 2)])
    np.testing.assert_allclose(ev.value(game, pi), [1.5 + 2 * (horizon - 1), 2.0 * horizon], rtol=0, atol=1e-13)
    np.testing.assert_allclose(ev.q_value(game, pi)[0], np.array([[0.0, 2.0], [1.0, 3.0]]) + 2 * (horizon - 1), rtol=0, atol=1e-13)
    np.testing.assert_allclose(ev.occupancy(game, pi), [1.0, horizon - 1.0], rtol=0, atol=1e-13)
    assert ev.expected_return(game, pi) == pytest.approx(1.5 + 2 * (horizon - 1), abs=1e-13)


@pytest.mark.parametrize("horizon", [1, 2, 3, 6])
def test_finite_horizon_undiscounted_staying_chain(horizon: int) -> None:
    # gamma = 1, p = 0.4: reward at step t needs t+1 consecutive (1,1) draws, so V_H(0) = sum_{t<H} p^{t+1}.
    game = _staying_chain(1.0, horizon=horizon)
    pi = Factorized([np.array([[0.2, 0.8]] * 2), np.array([[0.5, 0.5]] * 2)])
    p = 0.4
    expected = sum(p ** (t + 1) for t in range(horizon))
    assert ev.expected_return(game, pi) == pytest.approx(expected, abs=1e-14)
    # rho(0) = sum_{t<H} p^t;  total mass H.
    rho = ev.occupancy(game, pi)
    assert rho[0] == pytest.approx(sum(p**t for t in range(horizon)), abs=1e-14)
    assert rho.sum() == pytest.approx(horizon, abs=1e-13)


# --- the r = a1 a2 example (theory.md §1.5) ----------------------------------------------------------


def test_product_gaussian_simultaneous_vs_sequential() -> None:
    game = games.ProductGaussianGame(sigma=1.0)
    mu0 = [-0.25, 0.25]
    assert game.expected_return(mu0) == pytest.approx(-0.0625, abs=1e-12)
    assert game.max_step(0.5) == pytest.approx(1.0, abs=1e-12)  # (d mu)^2 / 2 <= 0.5
    (simultaneous,) = game.trust_region_step(mu0, 0.5, scheme="simultaneous")
    np.testing.assert_allclose(simultaneous, [0.75, -0.75], rtol=0, atol=1e-12)
    assert game.expected_return(simultaneous) == pytest.approx(-0.5625, abs=1e-12)
    first, second = game.trust_region_step(mu0, 0.5, scheme="sequential", order=(0, 1))
    np.testing.assert_allclose(first, [0.75, 0.25], rtol=0, atol=1e-12)
    assert game.expected_return(first) == pytest.approx(0.1875, abs=1e-12)
    np.testing.assert_allclose(second, [0.75, 1.25], rtol=0, atol=1e-12)
    assert game.expected_return(second) == pytest.approx(0.9375, abs=1e-12)
    assert game.kl(0.25, 1.25) == pytest.approx(0.5, abs=1e-12)


# --- auto-regressive factorisation -------------------------------------------------------------------


def test_autoregressive_from_joint_by_hand() -> None:
    # pi(a1, a2) = [[0.1, 0.3], [0.6, 0.0]]. Order (1, 0): agent 2 first with marginal (0.7, 0.3);
    # agent 1 given a2 = 0 is (0.1, 0.6)/0.7, given a2 = 1 is (0.3, 0.0)/0.3 = (1, 0).
    joint = np.array([[[0.1, 0.3], [0.6, 0.0]]])
    ar = AutoRegressive.from_joint(joint, (1, 0))
    np.testing.assert_allclose(ar.conditionals[0], [[0.7, 0.3]], rtol=0, atol=1e-15)
    np.testing.assert_allclose(ar.conditionals[1][0], [[1 / 7, 6 / 7], [1.0, 0.0]], rtol=0, atol=1e-15)
    np.testing.assert_allclose(ar.probs(), joint, rtol=0, atol=1e-15)
    np.testing.assert_allclose(ar.probs_in_order()[0], joint[0].T, rtol=0, atol=1e-15)


def test_autoregressive_from_joint_zero_prefix_is_uniform() -> None:
    # Order (0, 1): agent 1 never plays 1, so its conditional row for a1 = 1 is uniform (and irrelevant).
    joint = np.array([[[0.25, 0.75], [0.0, 0.0]]])
    ar = AutoRegressive.from_joint(joint, (0, 1))
    np.testing.assert_allclose(ar.conditionals[1][0], [[0.25, 0.75], [0.5, 0.5]], rtol=0, atol=1e-15)
    np.testing.assert_allclose(ar.probs(), joint, rtol=0, atol=1e-15)


@pytest.mark.parametrize("order", [(0, 1, 2), (2, 0, 1), (1, 2, 0), (2, 1, 0)])
def test_autoregressive_round_trip_random_joint(order: tuple[int, ...]) -> None:
    rng = np.random.default_rng(5)
    joint = rng.dirichlet(np.ones(12), size=3).reshape(3, 2, 3, 2)
    ar = AutoRegressive.from_joint(joint, order)
    assert ar.order == order and ar.n_actions == (2, 3, 2)
    np.testing.assert_allclose(ar.probs(), joint, rtol=0, atol=1e-15)
    # the chain rule of entropy: conditional entropies sum to the joint entropy
    np.testing.assert_allclose(sum(ar.conditional_entropies()), Joint(joint).entropy(), rtol=0, atol=1e-13)


# --- entropies ---------------------------------------------------------------------------------------


def test_entropies_by_hand() -> None:
    # Joint uniform over 2 x 3 = 6 joint actions: log 6; a point mass: 0.
    assert Joint(np.full((1, 2, 3), 1 / 6)).entropy()[0] == pytest.approx(math.log(6), abs=1e-15)
    assert Joint.deterministic(np.array([[1, 2]]), (2, 3)).entropy()[0] == 0.0
    # Factorized: additive, H = H(1/2, 1/2) + H(1/4, 3/4) = log 2 + (log 4 - (3/4) log 3)
    pi = Factorized([np.array([[0.5, 0.5]]), np.array([[0.25, 0.75]])])
    assert pi.entropy()[0] == pytest.approx(math.log(2) + math.log(4) - 0.75 * math.log(3), abs=1e-15)
    assert Joint(pi.probs()).entropy()[0] == pytest.approx(pi.entropy()[0], abs=1e-15)
    # Shared over 3 agents: 3 H(0.2, 0.3, 0.5), per state
    shared = Shared(np.array([[0.2, 0.3, 0.5], [1.0, 0.0, 0.0]]), 3)
    np.testing.assert_allclose(shared.entropy(), [3 * _h(0.2, 0.3, 0.5), 0.0], rtol=0, atol=1e-15)
    # Fu et al. permutation n = 3 (theory.md §3.3): an auto-regressive policy uniform over the 3! = 6 permutations
    # has H = log 6 split as log 3 + log 2 + 0 along the chain.
    perm = np.zeros((1, 3, 3, 3))
    for a in [(0, 1, 2), (0, 2, 1), (1, 0, 2), (1, 2, 0), (2, 0, 1), (2, 1, 0)]:
        perm[(0, *a)] = 1 / 6
    ar = AutoRegressive.from_joint(perm, (0, 1, 2))
    np.testing.assert_allclose([h[0] for h in ar.conditional_entropies()], [math.log(3), math.log(2), 0.0], rtol=0, atol=1e-15)
    assert ar.entropy()[0] == pytest.approx(math.log(6), abs=1e-15)
    assert ev.expected_return(games.permutation(3), ar) == pytest.approx(1.0, abs=1e-15)


@pytest.mark.parametrize("sigma", [0.5, 1.0, 2.0])
def test_product_gaussian_kl_is_the_gaussian_kl_for_any_sigma(sigma):
    """KL(N(m0, s^2) || N(m1, s^2)) = (m0 - m1)^2 / (2 s^2), checked against the general two-Gaussian formula
    log(s1/s0) + (s0^2 + (m0 - m1)^2) / (2 s1^2) - 1/2 with s0 = s1 = sigma."""
    from seqmarl.theory.games import ProductGaussianGame

    g = ProductGaussianGame(sigma=sigma)
    m0, m1 = -0.25, 0.75
    general = np.log(sigma / sigma) + (sigma**2 + (m0 - m1) ** 2) / (2 * sigma**2) - 0.5
    assert g.kl(m0, m1) == pytest.approx(general, rel=1e-15)
    assert g.kl(m0, m1) == pytest.approx(1.0 / (2 * sigma**2), rel=1e-15)
