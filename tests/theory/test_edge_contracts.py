"""Edge contracts of seqmarl.theory that the larger tests leave implicit.

Each test pins one behaviour a mutation run showed unguarded (``make mutate``, ``mutation/theory-survivors.txt``):
a boundary (``>`` vs ``>=``), an argument that must be forwarded, a report field, a validation branch. The oracle of
each is stated in its docstring; none reads a number from a run.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from seqmarl.theory import bounds, counterexamples, factorization as fz, games, multiagent, npg, optima
from seqmarl.theory.markov_game import matrix_game
from seqmarl.theory.policies import Factorized


# --- sizes and validation -------------------------------------------------------------------------------------
def test_game_size_limit_is_inclusive():
    """A game needing exactly MAX_GAME_BYTES is accepted; one joint action more is refused.

    One state: reward + transition take ``8 * S * J * (1 + S) = 16 J`` bytes, so ``J = MAX / 16`` is the boundary."""
    joint = games.MAX_GAME_BYTES // 16
    assert 16 * joint == games.MAX_GAME_BYTES
    games.check_game_size(1, (joint,), "boundary game")
    with pytest.raises(ValueError, match="boundary game"):
        games.check_game_size(1, (joint + 1,), "boundary game")


def test_npg_agent_limit_boundary():
    """The einsum alphabet has 25 letters; one is kept for the batch axis, so 24 agents run and 25 are refused."""
    limit = len(npg._LETTERS) - 1
    ok = matrix_game(np.ones((1,) * (limit - 1) + (2,)))
    logits = [np.zeros((1, 1))] * (limit - 1) + [np.zeros((1, 2))]
    run = npg.npg_independent(ok, logits, 0.1, 1)
    assert np.isfinite(run.returns).all()
    too_many = matrix_game(np.ones((1,) * limit + (2,)))
    with pytest.raises(ValueError, match="too many agents"):
        npg.npg_independent(too_many, [np.zeros((1, 1))] * limit + [np.zeros((1, 2))], 0.1, 1)


def test_matrix_game_default_name():
    assert matrix_game(np.zeros((2, 2))).name == "matrix"


def test_lemma2_bound_names_the_bad_table():
    """A policy table that is not a distribution is refused with the argument's name in the message."""
    old = np.array([[0.5, 0.5]])
    with pytest.raises(ValueError, match=r"^pi_new_table must sum to 1"):
        bounds._prob_table(np.array([[0.5, 0.6]]), "pi_new_table")
    assert np.array_equal(bounds._prob_table(old, "x"), old)


def test_deterministic_policy_rejects_fractional_actions():
    """``Factorized.deterministic`` takes action indices; 1.5 is not one (it must not be truncated to 1)."""
    with pytest.raises(TypeError, match="actions must hold integer action indices"):
        Factorized.deterministic(np.array([[0.0, 1.5]]), (2, 2))
    pol = Factorized.deterministic([[1, 0]], (2, 2))
    assert np.array_equal(pol.tables[0], [[0.0, 1.0]]) and np.array_equal(pol.tables[1], [[1.0, 0.0]])


# --- surrogate: a supplied Q is used -------------------------------------------------------------------------
def test_surrogate_uses_the_supplied_q():
    """``q`` is the caller's precomputed ``Q_pi``; a wrong-shaped one is refused, a right one is what L is built on.

    Oracle: L is linear in Q (Def. 2), so L(2 Q) - L(Q) = L(Q) for the same pi, agents and tables."""
    game = games.random_game(np.random.default_rng(3), n_agents=2, n_actions=2, n_states=2, gamma=0.9)
    pi = Factorized.uniform(game.n_states, game.n_actions)
    new = [np.array([[0.9, 0.1], [0.2, 0.8]]), np.array([[0.3, 0.7], [0.6, 0.4]])]
    from seqmarl.theory.evaluate import q_value

    q = q_value(game, pi)
    plain = multiagent.surrogate(game, pi, (0, 1), new)
    assert multiagent.surrogate(game, pi, (0, 1), new, q=q) == pytest.approx(plain, abs=1e-13)
    doubled = multiagent.surrogate(game, pi, (0, 1), new, q=2.0 * q)
    assert doubled == pytest.approx(2.0 * plain, abs=1e-12)
    assert abs(plain) > 1e-3  # the doubling is visible


# --- factorization reports -----------------------------------------------------------------------------------
def test_column_violation_is_described_with_rows_as_context():
    """Q = [[2, 3], [1, 0]]: row 0 dominates row 1 (rows comparable); columns swap rank between rows 0 and 1."""
    ok, witness = fz.is_monotone_representable(np.array([[2.0, 3.0], [1.0, 0.0]]))
    assert not ok and witness.agent == 1
    assert witness.description.startswith("columns ")
    assert " row " in witness.description and " column " in witness.description
    assert witness.description.count(" row ") == 2  # "row <name> ranks ..." twice, once per context


def test_witness_cells_need_a_complete_violation():
    with pytest.raises(ValueError, match="non-representable"):
        fz.MonotoneWitness(representable=False, agent=0, actions=None, contexts=((0,), (1,))).cells()
    with pytest.raises(ValueError, match="non-representable"):
        fz.MonotoneWitness(representable=False, agent=0, actions=(0, 1), contexts=None).cells()
    cells = fz.MonotoneWitness(representable=False, agent=1, actions=(0, 1), contexts=((0,), (1,))).cells()
    assert cells == ((0, 0), (0, 1), (1, 0), (1, 1))


def test_igm_report_mean_payoff_is_the_mean_over_greedy_actions():
    """Climbing game (theory.md §7.6): VDN's greedy set comes from the least-squares fit; each row's mean payoff is
    the plain mean of its greedy payoffs and regret_mean = J* - that mean."""
    report = fz.igm_report(games.climbing())
    for row in report.rows:
        if row.greedy:
            assert row.mean_payoff == pytest.approx(float(np.mean(row.greedy_payoffs)), abs=1e-12)
            assert row.regret_mean == pytest.approx(report.j_star - row.mean_payoff, abs=1e-12)


def test_vdn_exactness_tolerance_is_relative_to_the_squared_scale():
    """An additive table (|Q| <= 1000) plus 0.01 on one cell is not additive: the least-squares residual is
    ``delta^2 / 4 = 2.5e-5`` (2x2, uniform weights), far above rounding (1e-12 (1 + 1000)^2 * 4 ~ 4e-6 would still be
    below it; a cubic scale 4e-3 would wrongly call it exact)."""
    table = np.array([[1000.0, 0.0], [0.0, -1000.0 + 0.01]])
    assert fz.vdn_fit(table).residual == pytest.approx(0.01**2 / 4, rel=1e-6)
    vdn = next(r for r in fz.igm_report(table).rows if r.method == "VDN")
    assert not vdn.represents_exactly
    additive = np.array([[1000.0, 0.0], [0.0, -1000.0]])
    assert next(r for r in fz.igm_report(additive).rows if r.method == "VDN").represents_exactly


def test_igm_report_passes_the_solver_on():
    """``solver`` reaches the QMIX QP: an unknown solver name is an error, not silently the default."""
    with pytest.raises((ValueError, RuntimeError), match="NOT_A_SOLVER"):
        fz.igm_report(games.climbing(), solver="NOT_A_SOLVER")


# --- optima internals ----------------------------------------------------------------------------------------
def _closure(perms: list[tuple[int, ...]]) -> set[tuple[int, ...]]:
    group = {tuple(range(len(perms[0])))}
    frontier = set(group)
    while frontier:
        new = {tuple(p[i] for i in g) for g in frontier for p in perms} - group
        group |= new
        frontier = new
    return group


def test_is_symmetric_uses_generators_of_the_whole_group_for_four_agents():
    """A 4-axis tensor invariant under the dihedral group generated by the swap (0 1) and the reversal (3 2 1 0)
    (order 8, not all 24 permutations) is not symmetric; averaging over all of S_4 makes it so."""
    swap, reverse = (1, 0, 2, 3), (3, 2, 1, 0)
    dihedral = _closure([swap, reverse])
    assert len(dihedral) == 8
    base = np.random.default_rng(0).integers(-5, 6, size=(2, 2, 2, 2)).astype(np.float64)  # exact sums
    d4 = sum(np.transpose(base, g) for g in dihedral)
    assert not optima._is_symmetric(d4)
    full = sum(np.transpose(base, g) for g in itertools.permutations(range(4)))
    assert optima._is_symmetric(full)


# --- counterexample search -----------------------------------------------------------------------------------
def _constant_rule(worst_when_simultaneous: bool, require_flag: bool):
    """A toy update: simultaneous steps go to the worst deterministic joint action of a one-shot game (a decrease
    unless the game is constant), sequential ones keep the policy (no decrease) — but only when the keyword option
    ``flag="on"`` arrives if ``require_flag``; without it they also go to the worst action."""

    def worst(game):
        a = np.unravel_index(int(np.argmin(game.reward[0])), game.n_actions)
        return Factorized.deterministic(np.array([a]), game.n_actions)

    def update(game, pi, rng, order=None, simultaneous=False, flag=None):
        if simultaneous:
            return worst(game) if worst_when_simultaneous else pi
        if require_flag and flag != "on":
            return worst(game)
        return pi

    return update


def test_counterexample_search_forwards_options_to_the_sequential_step():
    found = counterexamples.find_simultaneous_decrease(
        _constant_rule(True, True), max_examples=30, two_state=False, flag="on")
    assert found is not None


def test_counterexample_search_needs_a_strict_decrease():
    """``J_sim < J_old - min_decrease`` is strict: a rule that never moves is no counterexample, even at 0."""
    with pytest.raises(LookupError):
        counterexamples.find_simultaneous_decrease(
            _constant_rule(False, False), max_examples=20, two_state=False, min_decrease=0.0)
