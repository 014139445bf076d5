"""Property tests of the exact multi-agent identities (theory.md §0, §1.2, §1.6, §1.7, §1.10) on random games.

Games span 2-4 agents, 2-3 actions each (heterogeneous), 1-4 states and gamma in {0, 0.5, 0.9}
(``seqmarl.testing.strategies.markov_games`` defaults); every test also runs the fixed extreme cases below.
"""

from __future__ import annotations

import itertools

import numpy as np
from hypothesis import example, given, settings
from hypothesis import strategies as st

from seqmarl.testing import strategies as sst
from seqmarl.theory import evaluate as ev
from seqmarl.theory import multiagent as ma
from seqmarl.theory.games import random_game
from seqmarl.theory.markov_game import MarkovGame
from seqmarl.theory.policies import Factorized, Policy

PROPERTY = settings(max_examples=25, deadline=None, database=None)
SOFT = 0.05  # eta of HATRPO Assumption 1 where a ratio pi-hat / pi appears


def _game(seed: int, n_actions: tuple[int, ...], n_states: int, gamma: float) -> MarkovGame:
    return random_game(np.random.default_rng(seed), len(n_actions), n_actions, n_states, gamma)


# Fixed cases at the corners of the required span (largest, smallest, heterogeneous).
BIG = _game(11, (3, 3, 3, 3), 4, 0.9)
SMALL = _game(12, (2, 2), 1, 0.0)
MIXED = _game(13, (2, 3, 2), 3, 0.5)
CORNERS = [BIG, SMALL, MIXED]


def _soft(game: MarkovGame, seed: int, eta: float = SOFT) -> Factorized:
    return sst.random_product_policy(np.random.default_rng(seed), game, eta)


def _deterministic(game: MarkovGame, seed: int) -> Factorized:
    return sst.random_product_policy(np.random.default_rng(seed), game, 0.0, style="deterministic")


def _broadcast(summand: np.ndarray, total_ndim: int) -> np.ndarray:
    """Append singleton axes so ``[S, A_{i_1..i_j}]`` broadcasts against ``[S, A_{i_1..i_m}]``."""
    return summand.reshape(summand.shape + (1,) * (total_ndim - summand.ndim))


def _along(table: np.ndarray, agent: int, game: MarkovGame) -> np.ndarray:
    """Reshape an agent's ``[S, A_i]`` table to broadcast against a joint ``[S, A1, ..., An]`` array."""
    shape = [game.n_states] + [1] * game.n_agents
    shape[1 + agent] = game.n_actions[agent]
    return table.reshape(shape)


def _joint_axes(game: MarkovGame) -> tuple[int, ...]:
    return tuple(range(1, game.n_agents + 1))


def _allowed_kinds(game: MarkovGame) -> list[str]:
    return [k for k in sst.KINDS if k != "shared" or len(set(game.n_actions)) == 1]


# --- theory.md §0 ------------------------------------------------------------------------------------


@PROPERTY
@given(case=sst.games_and_policies(kind=st.sampled_from(sst.KINDS), gammas=st.sampled_from([0.5, 0.9, 0.0])), data=st.data())
@example(case=(BIG, _soft(BIG, 1)), data=None)
@example(case=(SMALL, _deterministic(SMALL, 2)), data=None)
@example(case=(MIXED, _soft(MIXED, 3)), data=None)
def test_performance_difference_identity(case: tuple[MarkovGame, Policy], data: st.DataObject | None) -> None:
    """J(pibar) - J(pi) = sum_s rho_pibar(s) sum_a pibar(a|s) A_pi(s, a) for any two policies (theory.md §0)."""
    game, pi = case
    if data is None:
        pibar: Policy = _soft(game, 99, 0.0)
    else:
        pibar = data.draw(sst.policies(game, st.sampled_from(_allowed_kinds(game))), label="pibar")
    lhs = ev.expected_return(game, pibar) - ev.expected_return(game, pi)
    rho_bar = ev.occupancy(game, pibar)
    per_state = (pibar.probs() * ev.advantage(game, pi)).sum(axis=_joint_axes(game))
    assert abs(lhs - rho_bar @ per_state) <= 1e-9


# --- theory.md §1.2 conventions ----------------------------------------------------------------------


@PROPERTY
@given(case=sst.games_and_policies(kind=st.sampled_from(["factorized", "shared"])), data=st.data())
@example(case=(BIG, _soft(BIG, 4)), data=None)
@example(case=(MIXED, _deterministic(MIXED, 5)), data=None)
def test_empty_subset_is_v_full_subset_is_q(case: tuple[MarkovGame, Factorized], data: st.DataObject | None) -> None:
    """Q^{emptyset} = V and Q^{N} = Q (any listing order of N permutes the axes); occupancy mass 1/(1-gamma)."""
    game, pi = case
    order = tuple(range(game.n_agents)) if data is None else data.draw(sst.orderings(game.n_agents), label="order")
    q = ev.q_value(game, pi)
    np.testing.assert_allclose(ma.q_subset(game, pi, ()), ev.value(game, pi), rtol=0, atol=1e-12)
    np.testing.assert_allclose(ma.q_subset(game, pi, order), np.transpose(q, (0, *(1 + i for i in order))), rtol=0, atol=1e-12)
    np.testing.assert_allclose(ma.advantage_subset(game, pi, tuple(range(game.n_agents))), ev.advantage(game, pi), rtol=0, atol=1e-12)
    assert abs(ev.occupancy(game, pi).sum() - 1.0 / (1.0 - game.gamma)) <= 1e-9


# --- theory.md §1.6 Lemma 1 --------------------------------------------------------------------------


def _lemma1_worst_error(game: MarkovGame, pi: Factorized) -> float:
    """max over every ordering i_{1:n}, every prefix m and every (s, a^{i_{1:m}}) of
    |A^{i_{1:m}}(s, a^{i_{1:m}}) - sum_j A^{i_j}(s, a^{i_{1:j-1}}, a^{i_j})|."""
    q = ev.q_value(game, pi)
    worst = 0.0
    for order in itertools.permutations(range(game.n_agents)):
        total = None
        for m in range(1, game.n_agents + 1):
            summand = ma.advantage_subset(game, pi, (order[m - 1],), given=order[: m - 1], q=q)
            total = summand if total is None else _broadcast(total, summand.ndim) + summand
            lhs = ma.advantage_subset(game, pi, order[:m], q=q)
            assert lhs.shape == total.shape == (game.n_states, *(game.n_actions[i] for i in order[:m]))
            worst = max(worst, float(np.abs(lhs - total).max()))
    return worst


@PROPERTY
@given(case=sst.games_and_policies(kind=st.sampled_from(["factorized", "shared"])))
@example(case=(BIG, _soft(BIG, 6)))
@example(case=(BIG, _deterministic(BIG, 7)))
@example(case=(MIXED, _deterministic(MIXED, 8)))
@example(case=(SMALL, _soft(SMALL, 9)))
def test_lemma1_advantage_decomposition_every_ordering_every_prefix(case: tuple[MarkovGame, Factorized]) -> None:
    """HATRPO Lemma 1 / MAT Thm 1: A^{i_{1:m}} = sum_j A^{i_j}(s, a^{i_{1:j-1}}, a^{i_j}), deterministic limit included."""
    game, pi = case
    assert _lemma1_worst_error(game, pi) <= 1e-12


def test_lemma1_summands_are_not_trivially_zero() -> None:
    """Guard: the decomposed advantages carry real signal on the corner game (else Lemma 1 would be vacuous)."""
    pi = _soft(BIG, 6)
    assert np.abs(ma.advantage_subset(BIG, pi, (2,), given=(0, 1))).max() > 1e-3
    assert np.abs(ma.advantage_subset(BIG, pi, (0, 1, 2))).max() > 1e-3


# --- theory.md §1.7 eq. (6) --------------------------------------------------------------------------


def _prefix_tables(pibar: Factorized, agents: tuple[int, ...]) -> list[np.ndarray]:
    return [pibar.tables[i] for i in agents]


@PROPERTY
@given(case=sst.games_and_policies(), data=st.data())
@example(case=(BIG, _soft(BIG, 10)), data=None)
@example(case=(MIXED, _deterministic(MIXED, 11)), data=None)
def test_zero_surrogate_eq6(case: tuple[MarkovGame, Factorized], data: st.DataObject | None) -> None:
    """L^{i_{1:m}}_pi(pibar^{i_{1:m-1}}, pi^{i_m}) = 0 for any pibar, every prefix of the ordering (HATRPO eq. 6)."""
    game, pi = case
    if data is None:
        order, pibar = tuple(range(game.n_agents)), _soft(game, 12, 0.0)
    else:
        order = data.draw(sst.orderings(game.n_agents), label="order")
        pibar = data.draw(sst.policies(game, "factorized"), label="pibar")
    q, rho = ev.q_value(game, pi), ev.occupancy(game, pi)
    for m in range(1, game.n_agents + 1):
        agents = order[:m]
        new_tables = _prefix_tables(pibar, agents[:-1]) + [pi.tables[agents[-1]]]
        assert abs(ma.surrogate(game, pi, agents, new_tables, q=q, rho=rho)) <= 1e-12


# --- theory.md §1.10 Prop. 3 / eq. (9) and the estimator (10) ----------------------------------------


def _estimator_expectation(game: MarkovGame, pi: Factorized, agents: tuple[int, ...], pibar: Factorized, pihat: np.ndarray) -> np.ndarray:
    """Per state E_{a ~ pi}[(pihat^{i_m}/pi^{i_m} - 1) M^{i_{1:m}}(s, a)] with M from ``estimator_m`` (eq. 10)."""
    im = agents[-1]
    m_values = ma.estimator_m(game, pi, agents[:-1], _prefix_tables(pibar, agents[:-1]))
    ratio = _along(pihat / pi.tables[im], im, game)
    return (pi.probs() * (ratio - 1.0) * m_values).sum(axis=_joint_axes(game))


def _direct_local_advantage(game: MarkovGame, pi: Factorized, agents: tuple[int, ...], pibar: Factorized, pihat: np.ndarray) -> np.ndarray:
    """Per state E_{a^{prev} ~ pibar, a^{i_m} ~ pihat}[A^{i_m}(s, a^{prev}, a^{i_m})], contracted by hand."""
    adv = ma.advantage_subset(game, pi, agents[-1:], given=agents[:-1])  # [S, A_{i_1}, ..., A_{i_m}]
    for table in reversed(_prefix_tables(pibar, agents[:-1]) + [pihat]):
        adv = (adv * table.reshape(table.shape[:1] + (1,) * (adv.ndim - 2) + table.shape[1:])).sum(axis=-1)
    return adv


@PROPERTY
@given(case=sst.games_and_policies(min_prob=SOFT), data=st.data())
@example(case=(BIG, _soft(BIG, 13)), data=None)
@example(case=(SMALL, _soft(SMALL, 14)), data=None)
def test_prop3_eq9_every_state(case: tuple[MarkovGame, Factorized], data: st.DataObject | None) -> None:
    """HATRPO Prop. 3, eq. (9): E_{a^{prev}~pibar, a^{i_m}~pihat}[A^{i_m}] = E_{a~pi}[(pihat/pi - 1) M] at every s."""
    game, pi = case
    if data is None:
        order, pibar, pihat = tuple(range(game.n_agents)), _deterministic(game, 15), _soft(game, 16, 0.0).tables
    else:
        order = data.draw(sst.orderings(game.n_agents), label="order")
        pibar = data.draw(sst.policies(game, "factorized"), label="pibar")
        pihat = data.draw(sst.policies(game, "factorized"), label="pihat").tables
    for m in range(1, game.n_agents + 1):
        agents = order[:m]
        lhs = _direct_local_advantage(game, pi, agents, pibar, pihat[agents[-1]])
        library = ma.expected_local_advantage(game, pi, agents, _prefix_tables(pibar, agents[:-1]) + [pihat[agents[-1]]])
        rhs = _estimator_expectation(game, pi, agents, pibar, pihat[agents[-1]])
        np.testing.assert_allclose(library, lhs, rtol=0, atol=1e-12)
        np.testing.assert_allclose(rhs, lhs, rtol=0, atol=1e-12)


@PROPERTY
@given(case=sst.games_and_policies(min_prob=SOFT), data=st.data())
@example(case=(BIG, _soft(BIG, 17)), data=None)
def test_estimator_unbiased_for_surrogate(case: tuple[MarkovGame, Factorized], data: st.DataObject | None) -> None:
    """sum_s rho_pi(s) E_{a~pi}[(pihat/pi - 1) M^{i_{1:m}}(s, a)] = L^{i_{1:m}}_pi(pibar, pihat) (theory.md §1.10 item 2)."""
    game, pi = case
    if data is None:
        order, pibar, pihat = tuple(range(game.n_agents)), _soft(game, 18, 0.0), _soft(game, 19, 0.0).tables
    else:
        order = data.draw(sst.orderings(game.n_agents), label="order")
        pibar = data.draw(sst.policies(game, "factorized"), label="pibar")
        pihat = data.draw(sst.policies(game, "factorized"), label="pihat").tables
    rho = ev.occupancy(game, pi)
    for m in range(1, game.n_agents + 1):
        agents = order[:m]
        new_tables = _prefix_tables(pibar, agents[:-1]) + [pihat[agents[-1]]]
        estimate = float(rho @ _estimator_expectation(game, pi, agents, pibar, pihat[agents[-1]]))
        assert abs(estimate - ma.surrogate(game, pi, agents, new_tables, rho=rho)) <= 1e-9


@PROPERTY
@given(case=sst.games_and_policies(), data=st.data())
@example(case=(MIXED, _soft(MIXED, 20)), data=None)
def test_surrogates_sum_to_first_order_gain(case: tuple[MarkovGame, Factorized], data: st.DataObject | None) -> None:
    """sum_m L^{i_{1:m}}(pibar^{i_{1:m-1}}, pibar^{i_m}) = sum_s rho_pi(s) E_{a~pibar}[A_pi(s, a)] for any ordering
    (Lemma 1 under a ~ pibar; theory.md §1.8 proof sketch)."""
    game, pi = case
    if data is None:
        order, pibar = tuple(reversed(range(game.n_agents))), _soft(game, 21, 0.0)
    else:
        order = data.draw(sst.orderings(game.n_agents), label="order")
        pibar = data.draw(sst.policies(game, "factorized"), label="pibar")
    q, rho = ev.q_value(game, pi), ev.occupancy(game, pi)
    total = sum(ma.surrogate(game, pi, order[:m], _prefix_tables(pibar, order[:m]), q=q, rho=rho) for m in range(1, game.n_agents + 1))
    direct = float(rho @ (pibar.probs() * ev.advantage(game, pi)).sum(axis=_joint_axes(game)))
    assert abs(total - direct) <= 1e-9
