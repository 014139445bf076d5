"""TAD's sequential transformation and distillation (theory.md §6.1) against the joint-action optimum."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from seqmarl.testing import strategies as sst
from seqmarl.theory import evaluate, games
from seqmarl.theory.markov_game import MarkovGame, matrix_game
from seqmarl.theory.policies import AutoRegressive, Factorized, Joint
from seqmarl.theory.transform import (
    CONVENTIONS,
    SequentialMDP,
    distill,
    joint_q_star,
    lift_q,
    optimal_values,
    sequential_mdp,
    state_count,
    teacher_joint_policy,
    teacher_policy,
    value_iteration,
)

TOL = 1e-9
GAMES = sst.markov_games(
    n_agents=st.integers(2, 3), n_actions=st.integers(2, 3), n_states=st.integers(1, 3), gammas=st.sampled_from([0.0, 0.5, 0.9])
)


def expected_q_tilde(game: MarkovGame, q_star: np.ndarray, mdp: SequentialMDP, scale_root: bool) -> dict[tuple[int, int], float]:
    """``Q~((s, a^{i_{1:k}}), b)`` by brute-force enumeration of every completion ``a^{i_{k+2:n}}``."""
    n = game.n_agents
    out = {}
    for k in range(n):
        radices = [range(game.n_actions[mdp.order[j]]) for j in range(k + 1)]
        rest = [range(game.n_actions[mdp.order[j]]) for j in range(k + 1, n)]
        for s in range(game.n_states):
            for head in itertools.product(*radices):
                best = -np.inf
                for tail in itertools.product(*rest):
                    joint = [0] * n
                    for j, a in enumerate(head + tail):
                        joint[mdp.order[j]] = a
                    best = max(best, q_star[(s, *joint)])
                scale = game.gamma ** ((n - 1 - k) / n) if scale_root else 1.0
                out[(mdp.encode(s, head[:-1]), head[-1])] = scale * best
    return out


# --- the joint optimum oracle itself -------------------------------------------------------------


@settings(max_examples=25, deadline=None)
@given(sst.markov_games(n_agents=st.integers(1, 3), n_actions=st.integers(1, 3), n_states=st.integers(1, 2), max_joint_actions=8))
def test_optimal_values_dominates_every_deterministic_policy(game):
    v_star, q_star = optimal_values(game)
    # Bellman optimality residual
    assert np.allclose(q_star, evaluate.q_from_values(game, v_star), atol=TOL)
    assert np.allclose(v_star, q_star.reshape(game.n_states, -1).max(axis=1), atol=TOL)
    # brute force: V* >= V_pi for every deterministic joint policy, with equality for the best one
    best = np.full(game.n_states, -np.inf)
    joints = games.all_joint_actions(game.n_actions)
    for choice in itertools.product(range(len(joints)), repeat=game.n_states):
        v = evaluate.value(game, Joint.deterministic(joints[list(choice)], game.n_actions))
        best = np.maximum(best, v)
    assert np.allclose(best, v_star, atol=TOL)
    assert np.array_equal(joint_q_star(game), q_star)


# --- the transformation ---------------------------------------------------------------------------


@settings(max_examples=30, deadline=None)
@given(GAMES)
def test_sequential_optimum_matches_joint_optimum_for_every_order(game):
    v_star, q_star = optimal_values(game)
    j_star = float(game.initial @ v_star)
    n = game.n_agents
    for order in itertools.permutations(range(n)):
        for convention in CONVENTIONS:
            mdp = sequential_mdp(game, order, convention)
            v, q, greedy = value_iteration(mdp)
            root = convention == "root"
            scale = game.gamma ** ((n - 1) / n) if root else 1.0
            # V~*(s, ()) = V*(s)  (root: gamma^{(n-1)/n} V*(s))
            assert np.allclose(v[: game.n_states], scale * v_star, atol=TOL, rtol=0)
            # Q~*((s, a^{1:k}), a^{k+1}) = max_{a^{k+2:n}} Q*(s, a)
            for (x, b), target in expected_q_tilde(game, q_star, mdp, root).items():
                assert abs(q[x, b] - target) <= TOL
            assert np.all(q[~mdp.action_mask] == -np.inf)
            if root and game.gamma == 0.0:
                continue  # every pre-last sub-step is discounted to 0: see test_root_convention_with_gamma_zero...
            # distilled decentralised policies are optimal, and reproduce the teacher's joint action
            pi = distill(mdp, greedy)
            assert isinstance(pi, Factorized)
            assert abs(evaluate.expected_return(game, pi) - j_star) <= TOL
            assert np.allclose(evaluate.value(game, pi), v_star, atol=TOL)
            assert np.array_equal(pi.probs(), teacher_joint_policy(mdp, greedy).probs())
            assert np.array_equal(pi.probs(), teacher_policy(mdp, greedy).probs())


@settings(max_examples=15, deadline=None)
@given(GAMES, st.data())
def test_value_iteration_agrees_with_policy_iteration(game, data):
    order = data.draw(sst.orderings(game.n_agents))
    convention = data.draw(st.sampled_from(CONVENTIONS))
    mdp = sequential_mdp(game, order, convention)
    v_pi, q_pi, _ = value_iteration(mdp, method="policy")
    v_vi, q_vi, greedy = value_iteration(mdp, tol=1e-11, method="value")
    assert np.allclose(v_vi, v_pi, atol=TOL, rtol=0)
    assert np.allclose(q_vi[mdp.action_mask], q_pi[mdp.action_mask], atol=TOL, rtol=0)
    if convention == "root" and game.gamma == 0.0:
        return  # every pre-last sub-step ties (see test_root_convention_with_gamma_zero...)
    assert abs(evaluate.expected_return(game, distill(mdp, greedy)) - float(game.initial @ optimal_values(game)[0])) <= TOL


@settings(max_examples=20, deadline=None)
@given(GAMES, st.data())
def test_lift_q_matches_enumeration(game, data):
    order = data.draw(sst.orderings(game.n_agents))
    convention = data.draw(st.sampled_from(CONVENTIONS))
    mdp = sequential_mdp(game, order, convention)
    q_star = joint_q_star(game)
    lifted = lift_q(mdp, q_star)
    for (x, b), target in expected_q_tilde(game, q_star, mdp, convention == "root").items():
        assert abs(lifted[x, b] - target) <= 1e-12
    assert np.all(lifted[~mdp.action_mask] == -np.inf)


@settings(max_examples=25, deadline=None)
@given(sst.markov_games(n_agents=st.integers(1, 4), n_actions=st.integers(1, 3), n_states=st.integers(1, 3)), st.data())
def test_state_count_and_encoding_bijection(game, data):
    order = data.draw(sst.orderings(game.n_agents))
    mdp = sequential_mdp(game, order)
    acts = [game.n_actions[i] for i in order]
    expected = game.n_states * sum(int(np.prod(acts[:k])) for k in range(game.n_agents))
    assert mdp.n_states == expected == state_count(game.n_states, acts)
    seen = set()
    for k in range(game.n_agents):
        for s in range(game.n_states):
            for prefix in itertools.product(*[range(a) for a in acts[:k]]):
                x = mdp.encode(s, prefix)
                assert mdp.decode(x) == (s, prefix)
                assert mdp.layer[x] == k and mdp.n_available[x] == acts[k]
                assert mdp.acting_agent(x) == order[k]
                assert x not in seen
                seen.add(x)
    assert seen == set(range(mdp.n_states))
    assert [mdp.encode(s) for s in range(game.n_states)] == list(range(game.n_states))
    for x in range(mdp.n_states):
        assert mdp.encode(*mdp.decode(x)) == x
        assert mdp.action_mask[x].sum() == mdp.n_available[x]


@settings(max_examples=20, deadline=None)
@given(GAMES, st.data())
def test_transition_reward_and_discount_structure(game, data):
    order = data.draw(sst.orderings(game.n_agents))
    convention = data.draw(st.sampled_from(CONVENTIONS))
    mdp = sequential_mdp(game, order, convention)
    n, S = game.n_agents, game.n_states
    t = mdp.transition_dense()
    assert np.allclose(t[mdp.action_mask].sum(axis=-1), 1.0, atol=1e-12)
    assert np.all(t[~mdp.action_mask] == 0) and np.all(mdp.reward[~mdp.action_mask] == 0)
    sub = game.gamma ** (1 / n) if convention == "root" else 1.0
    last = game.gamma ** (1 / n) if convention == "root" else game.gamma
    for x in range(mdp.n_states):
        s, prefix = mdp.decode(x)
        for b in range(mdp.n_available[x]):
            if len(prefix) + 1 < n:
                y = mdp.encode(s, prefix + (b,))
                assert t[x, b, y] == 1.0 and mdp.reward[x, b] == 0.0 and mdp.discount[x, b] == sub
            else:
                joint = [0] * n
                for j, a in enumerate(prefix + (b,)):
                    joint[order[j]] = a
                assert mdp.reward[x, b] == game.reward[(s, *joint)]
                assert np.array_equal(t[x, b, :S], game.transition[(s, *joint)])
                assert np.all(t[x, b, S:] == 0) and mdp.discount[x, b] == last


def test_climbing_sequential_values_and_distilled_joint_action():
    game = games.climbing()
    # theory.md §8: V~(s, a^{i_1}) = best payoff given the first mover's action: row maxima (11, 7, 5)
    # when agent 1 moves first, column maxima (11, 7, 6) when agent 2 does; the optimum (a, a) = 11
    for order, first_values in [((0, 1), [11.0, 7.0, 5.0]), ((1, 0), [11.0, 7.0, 6.0])]:
        mdp = sequential_mdp(game, order)
        v, q, greedy = value_iteration(mdp)
        assert v[mdp.encode(0)] == pytest.approx(11.0, abs=TOL)
        assert [v[mdp.encode(0, (a,))] for a in range(3)] == pytest.approx(first_values, abs=TOL)
        pi = distill(mdp, greedy)
        assert [int(np.argmax(t[0])) for t in pi.tables] == [0, 0]
        assert evaluate.expected_return(game, pi) == pytest.approx(11.0, abs=TOL)


def test_xor_distilled_policy_is_one_of_the_two_optima():
    game = games.xor(4)
    mdp = sequential_mdp(game, (3, 1, 0, 2))
    _, _, greedy = value_iteration(mdp)
    actions = tuple(int(np.argmax(t[0])) for t in distill(mdp, greedy).tables)
    assert actions in {(0, 0, 1, 1), (1, 1, 0, 0)}


def test_single_agent_game_is_its_own_sequential_mdp():
    game = games.random_game(np.random.default_rng(3), n_agents=1, n_actions=3, n_states=3, gamma=0.9)
    mdp = sequential_mdp(game)
    v, q, greedy = value_iteration(mdp)
    v_star, q_star = optimal_values(game)
    assert mdp.n_states == 3
    assert np.allclose(v, v_star, atol=TOL) and np.allclose(q, q_star, atol=TOL)


def test_root_convention_with_gamma_zero_discounts_everything_to_zero():
    """With gamma = 0 the root convention discounts every sub-step by 0: V~*(s) = 0^{(n-1)/n} V* = 0 and
    every first-mover action is optimal in M~, so a greedy teacher need not distil to the optimum."""
    game = games.climbing()
    mdp = sequential_mdp(game, convention="root")
    v, q, _ = value_iteration(mdp)
    assert v[0] == 0.0
    assert np.array_equal(q[mdp.encode(0), :3], [0.0, 0.0, 0.0])  # all ties at the first sub-step
    assert np.allclose(q[mdp.encode(0, (2,)), :3], [0.0, 0.0, 5.0])  # last sub-step: Q~ = Q* = r
    bad_teacher = np.zeros(mdp.n_states, dtype=np.int64)
    bad_teacher[mdp.encode(0)] = 2  # optimal in M~ (a tie), but distils to (c, c) = 5 < 11
    bad_teacher[mdp.encode(0, (2,))] = 2
    assert evaluate.expected_return(game, distill(mdp, bad_teacher)) == 5.0


def test_teacher_policy_with_stochastic_teacher():
    game = games.random_game(np.random.default_rng(1), n_agents=3, n_actions=[2, 3, 2], n_states=2, gamma=0.5)
    mdp = sequential_mdp(game, (1, 2, 0))
    rng = np.random.default_rng(2)
    probs = np.where(mdp.action_mask, rng.random(mdp.action_mask.shape), 0.0)
    probs /= probs.sum(axis=1, keepdims=True)
    pi = teacher_policy(mdp, probs)
    assert isinstance(pi, AutoRegressive) and pi.order == (1, 2, 0)
    for s in range(2):
        for a in itertools.product(range(2), range(3), range(2)):
            a_order = (a[1], a[2], a[0])
            expected = 1.0
            for k in range(3):
                expected *= probs[mdp.encode(s, a_order[:k]), a_order[k]]
            assert pi.probs()[(s, *a)] == pytest.approx(expected, abs=1e-15)


# --- validation -------------------------------------------------------------------------------------


@pytest.fixture
def small_mdp():
    return sequential_mdp(games.random_game(np.random.default_rng(0), 2, [2, 3], 2, 0.9), (1, 0))


def test_sequential_mdp_rejects_non_game():
    with pytest.raises(TypeError, match="game must be a MarkovGame"):
        sequential_mdp(np.zeros((1, 2, 2)))


def test_sequential_mdp_rejects_finite_horizon():
    g = games.random_game(np.random.default_rng(0), 2, 2, 2, 0.9)
    finite = MarkovGame(g.reward, g.transition, 0.9, g.initial, horizon=3)
    with pytest.raises(ValueError, match="horizon"):
        sequential_mdp(finite)
    with pytest.raises(ValueError, match="horizon"):
        optimal_values(finite)


@pytest.mark.parametrize("order", [(0, 0), (0,), (0, 1, 2), (1, 2)])
def test_sequential_mdp_rejects_bad_order(order):
    with pytest.raises(ValueError, match="order must be a permutation"):
        sequential_mdp(games.climbing(), order)


def test_sequential_mdp_rejects_non_integer_order():
    with pytest.raises(TypeError, match="order"):
        sequential_mdp(games.climbing(), ["a", "b"])


def test_sequential_mdp_rejects_bad_convention():
    with pytest.raises(ValueError, match="convention"):
        sequential_mdp(games.climbing(), convention="gamma")


def test_encode_rejects_bad_inputs(small_mdp):
    with pytest.raises(ValueError, match="s must lie"):
        small_mdp.encode(2)
    with pytest.raises(TypeError, match="s must be an integer"):
        small_mdp.encode(0.5)
    with pytest.raises(ValueError, match="fewer than n"):
        small_mdp.encode(0, (0, 0))
    with pytest.raises(ValueError, match=r"prefix\[0\] \(agent 1\)"):
        small_mdp.encode(0, (3,))
    with pytest.raises(TypeError, match="prefix"):
        small_mdp.encode(0, ("x",))


def test_decode_rejects_bad_inputs(small_mdp):
    with pytest.raises(ValueError, match="index must lie"):
        small_mdp.decode(small_mdp.n_states)
    with pytest.raises(ValueError, match="index must lie"):
        small_mdp.decode(-1)
    with pytest.raises(TypeError, match="index must be an integer"):
        small_mdp.decode(1.0)


def test_layer_radices_rejects_bad_layer(small_mdp):
    assert small_mdp.layer_radices(1) == (2, 3)
    with pytest.raises(ValueError, match="layer index"):
        small_mdp.layer_radices(2)


def test_bellman_q_rejects_wrong_shape(small_mdp):
    with pytest.raises(ValueError, match="values must have shape"):
        small_mdp.bellman_q(np.zeros(3))


def test_value_iteration_rejects_bad_inputs(small_mdp):
    with pytest.raises(TypeError, match="mdp must be a SequentialMDP"):
        value_iteration(games.climbing())
    with pytest.raises(ValueError, match="tol must be a positive"):
        value_iteration(small_mdp, tol=0.0)
    with pytest.raises(TypeError, match="tol must be a real"):
        value_iteration(small_mdp, tol="x")
    with pytest.raises(ValueError, match="max_iter must be >= 1"):
        value_iteration(small_mdp, max_iter=0)
    with pytest.raises(TypeError, match="max_iter must be an integer"):
        value_iteration(small_mdp, max_iter=2.0)
    with pytest.raises(ValueError, match="method"):
        value_iteration(small_mdp, method="newton")


def test_value_iteration_reports_non_convergence(small_mdp):
    with pytest.raises(RuntimeError, match="value iteration did not reach"):
        value_iteration(small_mdp, method="value", max_iter=2)


def test_policy_iteration_reports_non_convergence():
    # state 0: action 0 pays 1 and moves to the absorbing zero-reward state 1; action 1 pays 0.5 and stays.
    # Staying forever is worth 0.5 / (1 - 0.9) = 5 > 1, but the myopic start (argmax of r) picks action 0.
    reward = np.zeros((2, 2, 1))
    reward[0, :, 0] = [1.0, 0.5]
    transition = np.zeros((2, 2, 1, 2))
    transition[0, 0, 0, 1] = 1.0
    transition[0, 1, 0, 0] = 1.0
    transition[1, :, 0, 1] = 1.0
    game = MarkovGame(reward, transition, 0.9, np.array([1.0, 0.0]))
    mdp = sequential_mdp(game)
    with pytest.raises(RuntimeError, match="policy iteration did not converge"):
        value_iteration(mdp, max_iter=1)
    v, _, greedy = value_iteration(mdp)
    assert v[mdp.encode(0)] == pytest.approx(5.0, abs=TOL) and greedy[mdp.encode(0)] == 1


def test_optimal_values_rejects_bad_inputs():
    with pytest.raises(TypeError, match="game must be a MarkovGame"):
        optimal_values("climbing")
    with pytest.raises(ValueError, match="tol"):
        optimal_values(games.climbing(), tol=-1.0)


def test_lift_q_rejects_wrong_shape(small_mdp):
    with pytest.raises(ValueError, match="q must have shape"):
        lift_q(small_mdp, np.zeros((2, 3, 2)))


def test_distill_rejects_bad_greedy(small_mdp):
    good = np.zeros(small_mdp.n_states, dtype=np.int64)
    with pytest.raises(ValueError, match="one action per sequential state"):
        distill(small_mdp, good[:-1])
    with pytest.raises(TypeError, match="integer array"):
        distill(small_mdp, good.astype(float))
    bad = good.copy()
    bad[small_mdp.encode(0, (0,))] = 2  # agent 0 (second in order) has only 2 actions
    with pytest.raises(ValueError, match="not an available action"):
        distill(small_mdp, bad)
    with pytest.raises(TypeError, match="mdp must be a SequentialMDP"):
        distill(None, good)


def test_teacher_policy_rejects_bad_tables(small_mdp):
    with pytest.raises(ValueError, match="pi_tilde must have shape"):
        teacher_policy(small_mdp, np.ones((small_mdp.n_states, 5)) / 5)
    probs = np.full((small_mdp.n_states, small_mdp.max_actions), 1.0 / 3)  # mass on agent 0's missing action
    with pytest.raises(ValueError, match="masked"):
        teacher_policy(small_mdp, probs)


def test_sparse_solver_path_agrees_with_dense(monkeypatch):
    from seqmarl.theory import transform

    game = games.random_game(np.random.default_rng(5), 3, [2, 3, 2], 3, 0.9)
    mdp = sequential_mdp(game, (2, 1, 0))
    v_dense, q_dense, _ = value_iteration(mdp)
    monkeypatch.setattr(transform, "DENSE_LIMIT", 0)
    v_sparse, q_sparse, greedy = value_iteration(mdp)
    assert np.allclose(v_sparse, v_dense, atol=TOL, rtol=0)
    assert np.allclose(v_sparse[:3], optimal_values(game)[0], atol=TOL, rtol=0)


def test_matrix_game_helper_round_trip():
    game = matrix_game(np.array([[[1.0, 2.0], [3.0, 4.0]], [[5.0, 9.0], [7.0, 8.0]]]))
    for order in itertools.permutations(range(3)):
        mdp = sequential_mdp(game, order)
        v, _, greedy = value_iteration(mdp)
        assert v[0] == pytest.approx(9.0, abs=TOL)
        assert teacher_joint_policy(mdp, greedy).probs()[0, 1, 0, 1] == 1.0
