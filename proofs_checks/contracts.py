"""The input contract of :mod:`seqmarl.theory` (DESIGN.md §4): every public routine rejects an invalid argument with
a ``ValueError``/``TypeError`` whose message names that argument, at the boundary value as well as far from it,
and accepts the valid value at the boundary. An oracle that silently accepts a bad input returns a number for a
question nobody asked (a negative radius, a non-distribution policy, a finite-horizon game handed to a formula for
the discounted objective), so this is part of what ``seqmarl verify`` certifies.

Each case is ``(label, call, names)``: ``call()`` must raise ``ValueError``/``TypeError`` mentioning one of
``names``; ``valid`` cases (boundary values that are allowed) must return without raising.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from seqmarl.theory import bounds, evaluate, factorization, games, iteration, multiagent, npg, optima, transform, trust_region
from seqmarl.theory.markov_game import MarkovGame, matrix_game
from seqmarl.theory.policies import AutoRegressive, Factorized, Joint, Shared

from .base import Check, CheckResult, Profile

Case = tuple[str, Callable[[], object], tuple[str, ...]]

S, ACTS = 2, (2, 3)


def _parts(**over: object) -> dict:
    parts = {"reward": np.zeros((S, *ACTS)), "transition": np.full((S, *ACTS, S), 1.0 / S), "gamma": 0.9,
             "initial": np.full(S, 1.0 / S)}
    parts.update(over)
    return parts


def _fixtures() -> tuple[MarkovGame, Factorized, np.random.Generator, MarkovGame]:
    rng = np.random.default_rng(0)
    game = games.random_game(rng, 2, list(ACTS), S, gamma=0.9)
    pi = Factorized([rng.dirichlet(np.ones(a), size=S) for a in ACTS])
    finite = MarkovGame(game.reward, game.transition, 0.9, game.initial, horizon=3)
    return game, pi, rng, finite


def invalid_cases() -> list[Case]:
    game, pi, rng, finite = _fixtures()
    q = np.array([[0.5, 0.5], [0.25, 0.75]])
    g = np.array([[1.0, 0.0], [0.0, 1.0]])
    t0, t1 = pi.tables
    joint = Joint(np.full((S, *ACTS), 1.0 / 6))
    bad_transition = _parts()["transition"].copy()
    bad_transition[0, 0, 0] = [1.5, -0.5]
    mdp = transform.sequential_mdp(game)
    cases: list[Case] = [
        # --- MarkovGame and games ----------------------------------------------------------------
        ("reward without an agent axis", lambda: MarkovGame(**_parts(reward=np.zeros(S))), ("reward",)),
        ("reward with NaN", lambda: MarkovGame(**_parts(reward=np.full((S, *ACTS), np.nan))), ("reward",)),
        ("transition shape", lambda: MarkovGame(**_parts(transition=np.full((S, *ACTS), 0.5))), ("transition",)),
        ("transition not a distribution", lambda: MarkovGame(**_parts(transition=bad_transition)), ("transition",)),
        ("transition sums 1 + 1e-8", lambda: MarkovGame(**_parts(transition=_parts()["transition"] * (1 + 2e-8))), ("transition",)),
        ("initial shape", lambda: MarkovGame(**_parts(initial=np.full(S + 1, 1 / 3))), ("initial",)),
        ("initial sums 1 - 1e-8", lambda: MarkovGame(**_parts(initial=np.array([0.5, 0.5 - 1e-8]))), ("initial",)),
        ("gamma = 1 without horizon", lambda: MarkovGame(**_parts(gamma=1.0)), ("gamma", "horizon")),
        ("gamma < 0", lambda: MarkovGame(**_parts(gamma=-1e-9)), ("gamma",)),
        ("gamma NaN", lambda: MarkovGame(**_parts(gamma=float("nan"))), ("gamma",)),
        ("gamma a string", lambda: MarkovGame(**_parts(gamma="0.9")), ("gamma",)),
        ("horizon 0", lambda: MarkovGame(**_parts(), horizon=0), ("horizon",)),
        ("horizon bool", lambda: MarkovGame(**_parts(), horizon=True), ("horizon",)),
        ("horizon float", lambda: MarkovGame(**_parts(), horizon=2.5), ("horizon",)),
        ("complex reward", lambda: MarkovGame(**_parts(reward=np.zeros((S, *ACTS)) + 1j)), ("reward",)),
        ("action names count", lambda: MarkovGame(**_parts(), action_names=(("a", "b"),)), ("action_names",)),
        ("matrix payoff scalar", lambda: matrix_game(np.float64(1.0)), ("payoff",)),
        ("xor(n) odd", lambda: games.xor(3), ("n",)),
        ("xor(n) < 2", lambda: games.xor(0), ("n",)),
        ("xor(n) bool", lambda: games.xor(True), ("n",)),
        ("permutation(1)", lambda: games.permutation(1), ("n",)),
        ("penalty k > 0", lambda: games.penalty(1e-9), ("k",)),
        ("penalty k NaN", lambda: games.penalty(float("nan")), ("k",)),
        ("penalty k string", lambda: games.penalty("x"), ("k",)),
        ("random_game n_agents 0", lambda: games.random_game(rng, 0, 2, 1), ("n_agents",)),
        ("random_game n_states 0", lambda: games.random_game(rng, 2, 2, 0), ("n_states",)),
        ("random_game n_actions 0", lambda: games.random_game(rng, 2, 0, 1), ("n_actions",)),
        ("random_game n_actions count", lambda: games.random_game(rng, 2, [2, 2, 2], 1), ("n_actions",)),
        ("random_game gamma 1", lambda: games.random_game(rng, 2, 2, 1, gamma=1.0), ("gamma",)),
        ("random_game alpha 0", lambda: games.random_game(rng, 2, 2, 1, dirichlet_alpha=0.0), ("dirichlet_alpha",)),
        ("random_game rng", lambda: games.random_game(0, 2, 2, 1), ("rng",)),
        # --- policies --------------------------------------------------------------------------------
        ("Factorized of one array", lambda: Factorized(np.full((S, 2), 0.5)), ("tables",)),
        ("Factorized empty", lambda: Factorized([]), ("tables",)),
        ("Factorized state counts", lambda: Factorized([np.full((S, 2), 0.5), np.full((S + 1, 2), 0.5)]), ("tables",)),
        ("Factorized not a distribution", lambda: Factorized([np.array([[0.6, 0.6]])]), ("tables",)),
        ("Factorized negative entry", lambda: Factorized([np.array([[1.5, -0.5]])]), ("tables",)),
        ("Factorized 3-d table", lambda: Factorized([np.full((1, 2, 2), 0.5)]), ("tables",)),
        ("Factorized.uniform n_states 0", lambda: Factorized.uniform(0, (2,)), ("n_states",)),
        ("Factorized.uniform n_actions []", lambda: Factorized.uniform(1, []), ("n_actions",)),
        ("Factorized.uniform n_actions str", lambda: Factorized.uniform(1, "2"), ("n_actions",)),
        ("Factorized.deterministic shape", lambda: Factorized.deterministic(np.zeros((S, 3), int), ACTS), ("actions",)),
        ("Factorized.deterministic range", lambda: Factorized.deterministic(np.array([[0, 3], [1, 0]]), ACTS), ("actions",)),
        ("Factorized.replace agent", lambda: pi.replace(2, t0), ("agent",)),
        ("Factorized.replace shape", lambda: pi.replace(0, t1), ("table",)),
        ("Shared n_agents 0", lambda: Shared(np.full((S, 2), 0.5), 0), ("n_agents",)),
        ("Shared n_agents bool", lambda: Shared(np.full((S, 2), 0.5), True), ("n_agents",)),
        ("AutoRegressive order repeats", lambda: AutoRegressive((0, 0), [np.full((1, 2), 0.5), np.full((1, 2, 2), 0.5)]), ("order",)),
        ("AutoRegressive order string", lambda: AutoRegressive("01", [np.full((1, 2), 0.5)]), ("order",)),
        ("AutoRegressive conditionals count", lambda: AutoRegressive((0, 1), [np.full((1, 2), 0.5)]), ("conditionals",)),
        ("AutoRegressive conditional shape", lambda: AutoRegressive((0, 1), [np.full((1, 2), 0.5), np.full((1, 3, 2), 0.5)]), ("conditionals",)),
        ("AutoRegressive.from_joint order", lambda: AutoRegressive.from_joint(np.full((1, 2, 2), 0.25), (0, 2)), ("order",)),
        ("Joint 1-d", lambda: Joint(np.full(2, 0.5)), ("table",)),
        ("Joint not a distribution", lambda: Joint(np.full((1, 2, 2), 0.5)), ("table",)),
        ("Joint.deterministic range", lambda: Joint.deterministic(np.array([[0, 3]]), ACTS), ("joint_actions",)),
        # --- evaluate / multiagent -------------------------------------------------------------------
        ("value of a string game", lambda: evaluate.value("game", pi), ("game",)),
        ("value policy shape", lambda: evaluate.value(game, Factorized.uniform(S, (3, 2))), ("policy",)),
        ("expected_return policy states", lambda: evaluate.expected_return(game, Factorized.uniform(S + 1, ACTS)), ("policy",)),
        ("advantage finite horizon", lambda: evaluate.advantage(finite, pi), ("game", "horizon")),
        ("q_subset repeated agents", lambda: multiagent.q_subset(game, pi, (0, 0)), ("agents",)),
        ("q_subset agent range", lambda: multiagent.q_subset(game, pi, (2,)), ("agents",)),
        ("q_subset agents string", lambda: multiagent.q_subset(game, pi, 1), ("agents",)),
        ("advantage_subset overlap", lambda: multiagent.advantage_subset(game, pi, (0,), given=(0,)), ("agents", "given")),
        ("advantage_subset finite horizon", lambda: multiagent.advantage_subset(finite, pi, (0,)), ("game",)),
        ("surrogate tables count", lambda: multiagent.surrogate(game, pi, (0, 1), [t0]), ("new_tables",)),
        ("surrogate table shape", lambda: multiagent.surrogate(game, pi, (0,), [t1]), ("new_tables",)),
        ("surrogate finite horizon", lambda: multiagent.surrogate(finite, pi, (0,), [t0]), ("game",)),
        ("expected_local_advantage no agent", lambda: multiagent.expected_local_advantage(game, pi, (), []), ("agents",)),
        ("estimator_m zero in pi", lambda: multiagent.estimator_m(game, Factorized([np.array([[1.0, 0.0]] * S), t1]), (0,), [t0]), ("pi",)),
        ("estimator_m adv shape", lambda: multiagent.estimator_m(game, pi, (0,), [t0], adv=np.zeros((S, 2))), ("adv",)),
        ("estimator_m adv type", lambda: multiagent.estimator_m(game, pi, (0,), [t0], adv=[[0.0]]), ("adv",)),
        ("estimator_m tables count", lambda: multiagent.estimator_m(game, pi, (0, 1), [t0]), ("prev_new_tables",)),
        ("pi of the wrong shape", lambda: multiagent.q_subset(game, [t1, t0], (0,)), ("pi",)),
        # --- bounds ----------------------------------------------------------------------------------------
        ("kl_tables 1-d", lambda: bounds.kl_tables(np.full(2, 0.5), np.full(2, 0.5)), ("p_old",)),
        ("kl_tables shapes", lambda: bounds.kl_tables(q, np.full((S, 3), 1 / 3)), ("p_old", "p_new")),
        ("kl_tables not a distribution", lambda: bounds.kl_tables(np.array([[0.6, 0.6]]), np.array([[0.5, 0.5]])), ("p_old",)),
        ("kl_tables negative new", lambda: bounds.kl_tables(np.array([[0.5, 0.5]]), np.array([[1.5, -0.5]])), ("p_new",)),
        ("kl_tables string", lambda: bounds.kl_tables("x", q), ("p_old",)),
        ("penalty_constant finite horizon", lambda: bounds.penalty_constant(finite, pi), ("horizon", "gamma")),
        ("penalty_constant Joint", lambda: bounds.penalty_constant(game, joint), ("pi",)),
        ("penalty_constant mismatch", lambda: bounds.penalty_constant(game, Factorized.uniform(S, (2, 2))), ("pi",)),
        ("lemma2 order repeats", lambda: bounds.lemma2_lower_bound(game, pi, pi, (0, 0)), ("order",)),
        ("lemma2 order length", lambda: bounds.lemma2_lower_bound(game, pi, pi, (0,)), ("order",)),
        ("lemma2 order not ints", lambda: bounds.lemma2_lower_bound(game, pi, pi, [1, "x"]), ("order",)),
        ("lemma2 new_pi", lambda: bounds.lemma2_lower_bound(game, pi, joint, (0, 1)), ("new_pi",)),
        ("lemma2 finite horizon", lambda: bounds.lemma2_lower_bound(finite, pi, pi, (0, 1)), ("horizon", "gamma")),
        ("first_order_terms order", lambda: bounds.first_order_terms(game, pi, pi, (1, 1)), ("order",)),
        # --- iteration ---------------------------------------------------------------------------------------
        ("hatrpo_exact game", lambda: iteration.hatrpo_exact("g", pi, rng), ("game",)),
        ("hatrpo_exact Joint", lambda: iteration.hatrpo_exact(game, joint, rng), ("pi",)),
        ("hatrpo_exact pi mismatch", lambda: iteration.hatrpo_exact(game, Factorized.uniform(S, (2, 2)), rng), ("pi",)),
        ("hatrpo_exact rng", lambda: iteration.hatrpo_exact(game, pi, 0), ("rng",)),
        ("hatrpo_exact finite horizon", lambda: iteration.hatrpo_exact(finite, pi, rng), ("horizon",)),
        ("hatrpo_exact order", lambda: iteration.hatrpo_exact(game, pi, rng, order=(0, 0)), ("order",)),
        ("hatrpo_exact simultaneous", lambda: iteration.hatrpo_exact(game, pi, rng, simultaneous="yes"), ("simultaneous",)),
        ("hatrpo_exact safeguard", lambda: iteration.hatrpo_exact(game, pi, rng, safeguard=1), ("safeguard",)),
        ("kl_ball delta 0", lambda: iteration.hatrpo_kl_ball(game, pi, rng, delta=0.0), ("delta",)),
        ("kl_ball delta inf", lambda: iteration.hatrpo_kl_ball(game, pi, rng, delta=float("inf")), ("delta",)),
        ("kl_ball delta string", lambda: iteration.hatrpo_kl_ball(game, pi, rng, delta="big"), ("delta",)),
        ("haml lam < 0", lambda: iteration.haml_kl_drift(game, pi, rng, lam=-1e-12), ("lam",)),
        ("haml lam NaN", lambda: iteration.haml_kl_drift(game, pi, rng, lam=float("nan")), ("lam",)),
        ("haml lam string", lambda: iteration.haml_kl_drift(game, pi, rng, lam="x"), ("lam",)),
        ("haml delta 0", lambda: iteration.haml_kl_drift(game, pi, rng, delta=0.0), ("delta",)),
        ("happo clip 0", lambda: iteration.happo_exact(game, pi, rng, clip=0.0), ("clip",)),
        ("happo clip 1", lambda: iteration.happo_exact(game, pi, rng, clip=1.0), ("clip",)),
        ("happo clip string", lambda: iteration.happo_exact(game, pi, rng, clip="x"), ("clip",)),
        ("run_iteration update", lambda: iteration.run_iteration(None, game, pi, rng, 1), ("update",)),
        ("run_iteration pi0", lambda: iteration.run_iteration(iteration.hatrpo_exact, game, joint, rng, 1), ("pi0",)),
        ("run_iteration rng", lambda: iteration.run_iteration(iteration.hatrpo_exact, game, pi, None, 1), ("rng",)),
        ("run_iteration n_iters -1", lambda: iteration.run_iteration(iteration.hatrpo_exact, game, pi, rng, -1), ("n_iters",)),
        ("run_iteration n_iters bool", lambda: iteration.run_iteration(iteration.hatrpo_exact, game, pi, rng, True), ("n_iters",)),
        ("run_iteration n_iters float", lambda: iteration.run_iteration(iteration.hatrpo_exact, game, pi, rng, 1.0), ("n_iters",)),
        ("run_iteration returns a Joint", lambda: iteration.run_iteration(lambda *a, **k: joint, game, pi, rng, 1), ("update",)),
        ("local_gain prev_tables", lambda: iteration.local_gain(game, pi, 1, (0,), []), ("prev_tables",)),
        ("happo_weights agent in prev", lambda: iteration.happo_weights(game, pi, 0, (0,), [t0]), ("agent",)),
        ("happo_weights prev_tables", lambda: iteration.happo_weights(game, pi, 1, (0,), []), ("prev_tables",)),
        # --- trust-region programs ------------------------------------------------------------------------
        ("max-KL c = 0", lambda: trust_region.solve_max_kl_penalty(q, g, 0.0), ("c",)),
        ("max-KL c inf", lambda: trust_region.solve_max_kl_penalty(q, g, float("inf")), ("c",)),
        ("max-KL old not a distribution", lambda: trust_region.solve_max_kl_penalty(np.array([[0.6, 0.6]]), g[:1], 1.0), ("old",)),
        ("max-KL lin shape", lambda: trust_region.solve_max_kl_penalty(q, np.zeros((S, 3)), 1.0), ("old", "l")),
        ("max-KL lin NaN", lambda: trust_region.solve_max_kl_penalty(q, np.full((S, 2), np.nan), 1.0), ("l",)),
        ("mean-KL delta < 0", lambda: trust_region.solve_mean_kl_ball(q, g, np.ones(S), -1.0), ("delta",)),
        ("mean-KL w shape", lambda: trust_region.solve_mean_kl_ball(q, g, np.ones(S + 1), 0.1), ("w",)),
        ("mean-KL w negative", lambda: trust_region.solve_mean_kl_ball(q, g, np.array([1.0, -1.0]), 0.1), ("w",)),
        ("HAML lam < 0", lambda: trust_region.solve_state_kl_penalty_ball(q, g, -1.0, 0.1), ("lam",)),
        ("HAML delta 0", lambda: trust_region.solve_state_kl_penalty_ball(q, g, 1.0, 0.0), ("delta",)),
        ("HAML gains NaN", lambda: trust_region.solve_state_kl_penalty_ball(q, np.full((S, 2), np.nan), 1.0, 0.1), ("l",)),
        ("HAPPO clip 1.5", lambda: trust_region.solve_happo_lp(q, g, -g, np.ones(S), 1.5), ("clip",)),
        ("HAPPO w_plus < 0", lambda: trust_region.solve_happo_lp(q, -g, -g, np.ones(S), 0.2), ("w_plus",)),
        ("HAPPO w_minus > 0", lambda: trust_region.solve_happo_lp(q, g, g, np.ones(S), 0.2), ("w_minus",)),
        ("HAPPO shapes", lambda: trust_region.solve_happo_lp(q, g, -g, np.ones(S + 1), 0.2), ("rho", "w_plus")),
        # --- optima --------------------------------------------------------------------------------------
        ("shared_optimum unequal actions", lambda: optima.shared_optimum(game), ("shared",)),
        ("shared_optimum tol 0", lambda: optima.shared_optimum(games.xor(2), tol=0.0), ("tol",)),
        ("shared_optimum max_cells 0", lambda: optima.shared_optimum(games.xor(2), max_cells=0), ("max_cells",)),
        ("shared_optimum max_cells bool", lambda: optima.shared_optimum(games.xor(2), max_cells=True), ("max_cells",)),
        ("shared_optimum n_starts -1", lambda: optima.shared_optimum(games.xor(2), n_starts=-1), ("n_starts",)),
        ("shared_optimum rng", lambda: optima.shared_optimum(games.xor(2), rng=0), ("rng",)),
        ("pure NE of a Markov game", lambda: optima.pure_nash_equilibria(game), ("one-shot",)),
        ("best_response agent range", lambda: optima.best_response_value(game, pi, 2), ("agent",)),
        ("best_response agent bool", lambda: optima.best_response_value(game, pi, True), ("agent",)),
        ("best_response pi", lambda: optima.best_response_value(game, [t1, t0], 0), ("pi",)),
        ("is_epsilon_nash eps < 0", lambda: optima.is_epsilon_nash(game, pi, -1e-12), ("eps",)),
        ("is_epsilon_nash eps string", lambda: optima.is_epsilon_nash(game, pi, "0"), ("eps",)),
        ("is_epsilon_nash eps NaN", lambda: optima.is_epsilon_nash(game, pi, float("nan")), ("eps",)),
        ("optimal_action_sets tol < 0", lambda: optima.optimal_action_sets(game, -1.0), ("tol",)),
        ("optimal_action_sets horizon", lambda: optima.optimal_action_sets(finite), ("horizon",)),
        ("max_entropy kind", lambda: optima.max_entropy_optimal(game, "joint"), ("kind",)),
        ("max_entropy order with factorized", lambda: optima.max_entropy_optimal(game, "factorized", order=(0, 1)), ("order",)),
        # --- transform / npg / factorization ---------------------------------------------------------------
        ("sequential_mdp finite horizon", lambda: transform.sequential_mdp(finite), ("horizon",)),
        ("sequential_mdp order", lambda: transform.sequential_mdp(game, (0, 0)), ("order",)),
        ("sequential_mdp convention", lambda: transform.sequential_mdp(game, None, "x"), ("convention",)),
        ("value_iteration tol", lambda: transform.value_iteration(mdp, tol=0.0), ("tol",)),
        ("value_iteration max_iter", lambda: transform.value_iteration(mdp, max_iter=0), ("max_iter",)),
        ("value_iteration method", lambda: transform.value_iteration(mdp, method="x"), ("method",)),
        ("value_iteration mdp", lambda: transform.value_iteration(game), ("mdp",)),
        ("encode state", lambda: mdp.encode(S), ("s",)),
        ("encode prefix too long", lambda: mdp.encode(0, (0, 0)), ("prefix",)),
        ("encode prefix range", lambda: mdp.encode(0, (5,)), ("prefix",)),
        ("decode index", lambda: mdp.decode(mdp.n_states), ("index",)),
        ("layer_radices k", lambda: mdp.layer_radices(2), ("k",)),
        ("bellman_q values", lambda: mdp.bellman_q(np.zeros(1)), ("values",)),
        ("distill greedy shape", lambda: transform.distill(mdp, np.zeros(1, int)), ("greedy",)),
        ("distill greedy dtype", lambda: transform.distill(mdp, np.zeros(mdp.n_states)), ("greedy",)),
        ("distill greedy range", lambda: transform.distill(mdp, np.full(mdp.n_states, 3)), ("greedy",)),
        ("teacher_policy shape", lambda: transform.teacher_policy(mdp, np.zeros((1, 1))), ("pi_tilde",)),
        ("lift_q shape", lambda: transform.lift_q(mdp, np.zeros((1, 2))), ("q",)),
        ("npg eta 0", lambda: npg.npg_independent(games.climbing(), npg.random_logits(rng, games.climbing(), 1), 0.0, 1), ("eta",)),
        ("npg n_iters -1", lambda: npg.npg_independent(games.climbing(), npg.random_logits(rng, games.climbing(), 1), 0.1, -1), ("n_iters",)),
        ("npg finite horizon", lambda: npg.npg_independent(finite, npg.random_logits(rng, game, 1), 0.1, 1), ("horizon",)),
        ("npg logits count", lambda: npg.npg_independent(games.climbing(), [np.zeros((1, 1, 3))], 0.1, 1), ("logits",)),
        ("npg shared unequal", lambda: npg.npg_shared(game, np.zeros((1, S, 2)), 0.1, 1), ("shared", "action")),
        ("random_logits kind", lambda: npg.random_logits(rng, game, 1, kind="x"), ("kind",)),
        ("random_logits batch", lambda: npg.random_logits(rng, game, 0), ("batch",)),
        ("classify_outcome tol", lambda: npg.classify_outcome(games.climbing(), Factorized.uniform(1, (3, 3)), tol=0.5), ("tol",)),
        ("vdn_fit string", lambda: factorization.vdn_fit("q"), ("q",)),
        ("greedy_set tol", lambda: factorization.greedy_set(np.eye(2), tol=-1.0), ("tol",)),
    ]
    return cases


def valid_boundary_cases() -> list[Case]:
    """Values on the boundary of what is allowed (every one must be accepted)."""
    game, pi, rng, _ = _fixtures()
    q = np.array([[0.5, 0.5], [0.25, 0.75]])
    g = np.array([[1.0, 0.0], [0.0, 1.0]])
    return [
        ("gamma 0", lambda: MarkovGame(**_parts(gamma=0.0)), ()),
        ("gamma 1 with a horizon", lambda: MarkovGame(**_parts(gamma=1.0), horizon=3), ()),
        ("horizon 1", lambda: MarkovGame(**_parts(), horizon=1), ()),
        ("transition off by 1e-11", lambda: MarkovGame(**_parts(transition=_parts()["transition"] * (1 + 1e-11))), ()),
        ("penalty k = 0", lambda: games.penalty(0.0), ()),
        ("xor(2)", lambda: games.xor(2), ()),
        ("permutation(2)", lambda: games.permutation(2), ()),
        ("Factorized.uniform one action", lambda: Factorized.uniform(1, (1,)), ()),
        ("Shared one agent", lambda: Shared(np.full((1, 2), 0.5), 1), ()),
        ("haml lam = 0", lambda: iteration.haml_kl_drift(game, pi, rng, lam=0.0), ()),
        ("haml lam = 0.5", lambda: iteration.haml_kl_drift(game, pi, rng, lam=0.5), ()),
        ("happo clip 0.99", lambda: iteration.happo_exact(game, pi, rng, clip=0.99), ()),
        ("run_iteration n_iters 0", lambda: iteration.run_iteration(iteration.hatrpo_exact, game, pi, rng, 0), ()),
        ("numpy bool safeguard", lambda: iteration.hatrpo_exact(game, pi, rng, safeguard=np.bool_(False)), ()),
        ("HAML lam = 0 program", lambda: trust_region.solve_state_kl_penalty_ball(q, g, 0.0, 0.1), ()),
        ("mean-KL zero weights", lambda: trust_region.solve_mean_kl_ball(q, g, np.zeros(S), 0.1), ()),
        ("is_epsilon_nash eps 0", lambda: optima.is_epsilon_nash(games.climbing(), Factorized.deterministic(np.array([[0, 0]]), (3, 3)), 0), ()),
        ("optimal_action_sets tol 0", lambda: optima.optimal_action_sets(game, 0.0), ()),
        ("optimal_action_sets horizon 1", lambda: optima.optimal_action_sets(MarkovGame(game.reward, game.transition, 0.9, game.initial, horizon=1)), ()),
        ("shared_optimum n_starts 0", lambda: optima.shared_optimum(MarkovGame(games.xor(2).reward.repeat(2, 0), np.full((2, 2, 2, 2), 0.5), 0.5, np.full(2, 0.5)), n_starts=0), ()),
        ("max_cells 1", lambda: optima.shared_optimum(games.permutation(3), max_cells=1), ()),
        ("advantage horizon 1", lambda: evaluate.advantage(MarkovGame(game.reward, game.transition, 0.9, game.initial, horizon=1), pi), ()),
    ]


def _contract(profile: Profile) -> CheckResult:
    failures: list[str] = []
    invalid = invalid_cases()
    for label, call, names in invalid:
        try:
            call()
        except (ValueError, TypeError) as exc:
            if names and not any(n in str(exc) for n in names):
                failures.append(f"{label}: {type(exc).__name__} does not name {names}: {exc}")
        except Exception as exc:  # noqa: BLE001 - the wrong kind of error is a finding
            failures.append(f"{label}: {type(exc).__name__} instead of ValueError/TypeError: {exc}")
        else:
            failures.append(f"{label}: accepted")
    valid = valid_boundary_cases()
    for label, call, _ in valid:
        try:
            call()
        except Exception as exc:  # noqa: BLE001
            failures.append(f"{label} (valid): {type(exc).__name__}: {exc}")
    cases = len(invalid) + len(valid)
    detail = f"{len(invalid)} invalid inputs rejected naming the argument, {len(valid)} boundary values accepted"
    if failures:
        detail = f"{len(failures)} of {cases} violate the contract: " + "; ".join(failures[:5])
    return CheckResult(cases, float(len(failures)), not failures, detail)


CHECKS = [
    Check(
        name="input_contract",
        claim="Every public routine of seqmarl.theory rejects an invalid argument (at and beyond the boundary) with a "
        "ValueError/TypeError naming it, and accepts the boundary values that are valid",
        source="DESIGN.md §4 (inputs validated, errors name the argument)",
        method="exact",
        run=_contract,
    ),
]
