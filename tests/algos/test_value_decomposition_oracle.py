"""Value-decomposition learners against the IGM oracle (issue: "matched to the IGM oracle").

One-shot matrix games, data from uniform exploration (epsilon = 1), full-batch fitting of the replay
(:func:`seqmarl.value_oracle.fit_on_uniform_data`): every target is a reward, so what each learner can reach is
exactly the best fit of its class under the replay's joint-action counts, which :mod:`seqmarl.theory.factorization`
computes (closed form / QP). Each test has its ablation: the same run with the defining ingredient swapped must
fail the same assertion.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from seqmarl.theory import factorization as fz
from seqmarl.theory import games
from seqmarl.value_oracle import fit_on_uniform_data, value_fit_report

GAMES = {
    "climbing": games.climbing(),
    "penalty": games.penalty(-100.0),
    "qtran": games.qtran(),
    "xor2": games.xor(2),
    "random3x3": games.random_game(np.random.default_rng(0), n_agents=2, n_actions=3, n_states=1, gamma=0.0),
}


def _scale(game) -> float:
    return float(np.abs(game.reward).max())


# --------------------------------------------------------------------------------------------- VDN
@pytest.mark.parametrize("name", list(GAMES))
def test_vdn_learns_the_least_squares_additive_fit(name):
    """Learned Q_tot within 1e-2 (max abs, every joint action) of vdn_fit under the replay's weights; greedy
    joint action = the oracle fit's greedy action (ties: one of them)."""
    game = GAMES[name]
    agent, env = fit_on_uniform_data("vdn", game, steps=400, lr=0.02)
    rep = value_fit_report(agent, env)
    assert rep.max_abs_error < 1e-2, rep
    assert rep.learned_greedy in rep.oracle_greedy
    assert abs(rep.learned_residual - rep.oracle_residual) <= 1e-3 * (1 + rep.oracle_residual)


def test_vdn_with_a_monotone_mixer_instead_misses_the_additive_fit():
    """Ablation: the same run with QMIX's mixer does not reproduce the additive fit on climbing (its class is
    larger, its residual lower), so the VDN test above discriminates the mixer."""
    agent, env = fit_on_uniform_data("qmix", GAMES["climbing"], steps=400, lr=0.02)
    rep = value_fit_report(agent, env)
    additive = fz.vdn_fit(np.asarray(rep.payoff), np.asarray(rep.weights))
    assert np.abs(np.asarray(rep.learned) - additive.fitted).max() > 1.0


def test_vdn_follows_the_data_weights_of_epsilon_greedy_exploration():
    """epsilon = 0.3 around an initial greedy joint action gives non-uniform counts; the learned Q_tot is the
    WEIGHTED least-squares fit (vdn_fit(weights=counts)), not the uniform one."""
    game = GAMES["climbing"]
    agent, env = fit_on_uniform_data("vdn", game, episodes_per_action=20, steps=400, lr=0.02, epsilon=0.3)
    rep = value_fit_report(agent, env)
    w = np.asarray(rep.weights)
    assert w.max() > 5 * w.min() > 0  # clearly non-uniform
    assert rep.max_abs_error < 1e-2
    uniform = fz.vdn_fit(game.reward[0]).fitted
    assert np.abs(np.asarray(rep.learned) - uniform).max() > 0.5  # the uniform oracle would be wrong


# --------------------------------------------------------------------------------------------- QMIX
@pytest.mark.parametrize("name", list(GAMES))
def test_qmix_cannot_beat_its_class_and_reaches_the_best_fit_of_its_utility_ordering(name):
    """The learned residual is never below the best fit of QMIX's network class (monotone + supermodular,
    ``qmix_network_fit``: a lower bound for any QMIX mixer), hence never below the best monotone fit either; and it is
    within 5% of the exact best fit inside the cone of the utility ordering the agents learned (``cone_residual``):
    gradient training reaches the optimum of the basin it settles in, on every game. (Ablation: VDN's additive
    mixer's fit lies in the cone of its own utility ordering but misses that cone's optimum on qtran by ~55%:
    test_vdn_mixer_misses_the_cone_optimum_of_qtran.)"""
    agent, env = fit_on_uniform_data("qmix", GAMES[name], steps=1500, lr=0.01)
    rep = value_fit_report(agent, env)
    assert rep.learned_residual >= rep.oracle_residual * (1 - 1e-6) - 1e-9
    assert rep.oracle_residual >= rep.monotone_residual * (1 - 1e-6) - 1e-9
    assert rep.cone_residual >= rep.oracle_residual * (1 - 1e-6) - 1e-9
    # the learned table is a QMIX table with these utility orders, so it lies in that cone: the cone's optimum
    # cannot be worse than it (two-sided: a wrongly computed cone cannot pass)
    assert rep.cone_residual <= rep.learned_residual * (1 + 1e-5) + 1e-6, rep
    assert rep.learned_residual <= 1.05 * rep.cone_residual + 1e-9, rep


def test_vdn_mixer_misses_the_cone_optimum_of_qtran():
    """Ablation of the test above: the additive fit (VDN) is in the cone of its own utility ordering, but on qtran
    it is not that cone's best fit, so the 5% check fails for it. (On climbing, penalty and xor(2) it happens to be.)"""
    game = GAMES["qtran"]
    agent, env = fit_on_uniform_data("vdn", game, steps=400, lr=0.02)
    rep = value_fit_report(agent, env)
    util = agent.utilities(env.observation_of_state(0)[None])[0].double().numpy()
    orders = tuple(tuple(int(a) for a in np.argsort(util[i, :3], kind="stable")) for i in range(2))
    w = np.asarray(rep.weights)
    cone = fz.qmix_network_fit(np.asarray(rep.payoff), w, orders=[orders]).residual / w.sum()
    assert rep.learned_residual > 1.3 * cone


@pytest.mark.slow
@pytest.mark.parametrize("name", ["climbing", "penalty", "random3x3"])
def test_qmix_reaches_the_optimum_of_its_network_class(name):
    """Best of 4 initialisations on the same replay, chosen by training loss (no oracle in the choice): the learned
    residual is within 5% of the best fit of QMIX's network class and the greedy joint action is that fit's (unique
    on these games). On climbing and penalty that class optimum is ~1.4x the best MONOTONE fit: the monotone oracle
    is out of reach for any QMIX mixer (supermodularity, ``qmix_network_fit``). On qtran and xor(2) (data seed 0)
    every initialisation settles in another cone, whose exact optimum it reaches (test above): qtran's is the basin
    with a flat top over {b, c}^2 that the QTRAN paper (Son et al. 2019, Table 1) reports for QMIX."""
    agent, env = fit_on_uniform_data("qmix", GAMES[name], steps=1500, lr=0.01, restarts=4)
    rep = value_fit_report(agent, env)
    assert rep.learned_residual <= 1.05 * rep.oracle_residual, rep
    assert len(rep.oracle_greedy) == 1 and rep.learned_greedy == rep.oracle_greedy[0]


def test_qmix_ends_at_the_seed_predicted_action_on_climbing():
    """The seed's prediction: QMIX on climbing does not find (a, a) = 11; it ends at the best monotone fit's greedy
    action (c, c) = 5."""
    agent, env = fit_on_uniform_data("qmix", GAMES["climbing"], steps=800, lr=0.01)
    rep = value_fit_report(agent, env)
    assert rep.oracle_greedy == ((2, 2),) and rep.learned_greedy == (2, 2)


def test_qmix_with_signed_mixing_weights_leaves_the_monotone_class():
    """Ablation of the abs(): signed hypernetwork weights fit climbing better than ANY monotone function can, so
    the lower-bound check of test_qmix_cannot_beat_its_class_... fails without the constraint."""
    agent, env = fit_on_uniform_data("qmix", GAMES["climbing"], steps=1500, lr=0.01, qmix_weights="none")
    rep = value_fit_report(agent, env)
    assert rep.learned_residual < 0.9 * rep.monotone_residual


def test_qmix_mixing_is_convex_and_monotone_in_the_utilities():
    """ELU is convex and the weights are non-negative, so Q_tot(s, .) is convex (Hessian PSD) as well as monotone
    in the utilities."""
    from seqmarl.algos.core.mixers import QMIXMixer

    torch.manual_seed(0)
    mixer = QMIXMixer(3, 4)
    state = torch.randn(4)
    for _ in range(20):
        q = torch.randn(3) * 5
        hess = torch.autograd.functional.hessian(lambda x: mixer(x, state), q)
        assert torch.linalg.eigvalsh(hess).min() >= -1e-5


@pytest.mark.parametrize("weights", ["abs", "none"])
def test_qmix_mixer_tables_lie_in_the_network_class(weights):
    """The lemma of ``qmix_network_fit``: a QMIX mixer's table on any utility grid is monotone and supermodular, so
    its own best network-class fit has residual 0 (to solver tolerance). With signed weights (ablation) some
    mixers leave the class."""
    from seqmarl.algos.core.mixers import QMIXMixer

    torch.manual_seed(1)
    worst = 0.0
    for trial in range(8):
        mixer = QMIXMixer(2, 3, weight_activation=weights).double()
        state = torch.randn(3, dtype=torch.float64)
        u1, u2 = torch.randn(3, dtype=torch.float64) * 3, torch.randn(3, dtype=torch.float64) * 3
        grid = torch.stack(torch.meshgrid(u1, u2, indexing="ij"), -1).reshape(-1, 2)
        with torch.no_grad():
            table = mixer(grid, state.expand(9, 3)).reshape(3, 3).numpy()
        scale = 1.0 + np.abs(table).max()
        worst = max(worst, fz.qmix_network_fit(table).residual / scale**2)
    if weights == "abs":
        assert worst < 1e-7
    else:
        assert worst > 1e-4


# --------------------------------------------------------------------------------------------- QPLEX
@pytest.mark.slow
def test_qplex_represents_climbing_and_is_igm_consistent():
    """Constant step size (the stop-gradient QPLEX update is not a gradient: a decaying rate stalls it). The fit
    depends on the initialisation AND on the float rounding along the way (thread count, CPU): with one thread on an
    AMD EPYC seeds 0-4 end at residual 0.037, 131, 0.0022, 0.64, 0.0 (seed 0 reached 0.0 on another machine).
    Asserted: every fit tried is IGM-consistent, and one of seeds 0-4 fits climbing exactly (< 1e-2) with the
    optimum (a,a) as its greedy action — a fit no monotone mixer can reach (QMIX's class optimum is 142)."""
    for seed in range(5):
        agent, env = fit_on_uniform_data("qplex", GAMES["climbing"], steps=2000, lr=0.01, cosine=False, seed=seed)
        rep = value_fit_report(agent, env)
        assert rep.igm_consistent, rep
        if rep.learned_residual < 1e-2:
            assert rep.learned_greedy == (0, 0), rep
            return
    raise AssertionError("no seed of 0-4 fitted climbing exactly")


@pytest.mark.slow
def test_qplex_on_xor_learns_what_the_igm_verdict_allows():
    """xor(2): the optimal set {(0,1), (1,0)} is not a product, so no IGM table has it as its greedy set (the
    oracle's verdict: QPLEX reaches residual 0 only in the closure). Whatever QPLEX learns, its near-greedy set is
    a product of the agents' near-greedy sets (IGM with ties) and therefore NOT the optimal set."""
    game = GAMES["xor2"]
    verdict = next(r for r in fz.igm_report(game).rows if r.method == "QPLEX")
    assert not verdict.represents_exactly
    agent, env = fit_on_uniform_data("qplex", game, steps=2000, lr=0.01, cosine=False)
    rep = value_fit_report(agent, env)
    assert rep.igm_consistent, rep
    assert set(rep.learned_greedy_set) != {(0, 1), (1, 0)}


# --------------------------------------------------------------------------------------------- Weighted QMIX
@pytest.mark.parametrize("algo", ["ow_qmix", "cw_qmix"])
def test_weighted_qmix_recovers_the_optimum_of_climbing(algo):
    agent, env = fit_on_uniform_data(algo, GAMES["climbing"], steps=800, lr=0.01)
    rep = value_fit_report(agent, env)
    assert rep.learned_greedy_set == ((0, 0),)


@pytest.mark.parametrize("algo", ["ow_qmix", "cw_qmix"])
def test_weighted_qmix_without_weighting_is_qmix(algo):
    """Ablation: w_alpha = 1 (no down-weighting) gives back QMIX's (c, c)."""
    agent, env = fit_on_uniform_data(algo, GAMES["climbing"], steps=800, lr=0.01, w_alpha=1.0)
    assert value_fit_report(agent, env).learned_greedy == (2, 2)


# --------------------------------------------------------------------------------------------- IQL
def test_iql_utilities_are_the_conditional_mean_rewards():
    """IQL's agents each regress on the team reward: Q_i(a_i) = E_w[r | a_i] under the replay's counts; the
    sum-of-utilities read-out matches the oracle's to 1e-2 on climbing."""
    agent, env = fit_on_uniform_data("iql", GAMES["climbing"], steps=400, lr=0.02)
    rep = value_fit_report(agent, env)
    assert rep.max_abs_error < 1e-2, rep
