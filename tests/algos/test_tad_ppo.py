"""TAD-PPO (Ye et al., arXiv 2207.11143) against exact oracles.

Oracles: closed-form GAE recursions and hand-computed numbers (sub-step GAE), the exact value ``V~`` of the
transformed MDP ``M~`` of :mod:`seqmarl.theory.transform` under the teacher's exact conditionals (a linear solve on
the MDP's own reward, discount and transition arrays), ``theory.optima`` (J*, J*_share) and the exact readouts of
:mod:`seqmarl.validate` (the teacher's joint table, the students' product tables and their Nash gap). Learning
tests are seeded, on CPU, with small networks; the ablation of the teacher is the same network with the earlier
agents' actions hidden (``ar_condition=False``).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from seqmarl.algos import TADPPOConfig, make_agent
from seqmarl.algos.core.gae import compute_gae
from seqmarl.algos.core import AutoRegressiveActor, MultiAgentActors
from seqmarl.algos.core.networks import BoxSpace
from seqmarl.algos.core.tad import (SubstepCritic, distillation_loss, gaussian_kl, greedy_mean_targets, substep_gae,
                                    substep_td_errors)
from seqmarl.algos.tad_ppo import final_distill, substep_batch
from seqmarl.algos.trainer import Trainer, TrainerConfig
from seqmarl.cli import main
from seqmarl.envs import make
from seqmarl.theory import Factorized, Joint, evaluate, games, optima, transform
from seqmarl.validate import joint_policy, oracle_run

FAST = dict(lr=5e-3, hidden=(32, 32), adv_norm="none")  # the large-step setting of test_ar_mappo.py


# ------------------------------------------------------------------------------------------------ sub-step GAE
def _random_rollout(T: int, B: int, n: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    rewards = torch.randn(T, B, generator=g, dtype=torch.float64)
    values = torch.randn(T, B, n, generator=g, dtype=torch.float64)
    next_values = torch.randn(T, B, generator=g, dtype=torch.float64)
    u = torch.rand(T, B, generator=g)
    return rewards, values, next_values, u < 0.2, (u >= 0.2) & (u < 0.35)


def test_substep_gae_with_one_agent_is_gae() -> None:
    """n = 1: the transformed MDP is the game itself, so sub-step GAE equals :func:`compute_gae` (terminated and
    truncated steps included)."""
    rewards, values, next_values, term, trunc = _random_rollout(7, 5, 1)
    adv, ret = substep_gae(rewards, values, next_values, term, trunc, 0.9, 0.8, inner_lam=0.3)
    adv_ref, ret_ref = compute_gae(rewards, values[..., 0], next_values, term, trunc, 0.9, 0.8)
    assert torch.allclose(adv[..., 0], adv_ref, atol=1e-12) and torch.allclose(ret[..., 0], ret_ref, atol=1e-12)


def test_substep_td_errors_telescope_to_the_joint_td_error() -> None:
    """``sum_k delta_{t,k} = r_t + gamma (1 - term_t) V~(s_{t+1}, ()) - V~(s_t, ())`` exactly: the intra-step
    errors ``V_{k+1} - V_k`` cancel, the reward and the discount enter once, on the last sub-step."""
    rewards, values, next_values, term, trunc = _random_rollout(6, 4, 3, seed=1)
    deltas = substep_td_errors(rewards, values, next_values, term, 0.95)
    joint = rewards + 0.95 * (~term).double() * next_values - values[..., 0]
    assert torch.allclose(deltas.sum(-1), joint, atol=1e-12)
    # with lambda = lambda_in = 0 the sub-step advantages are these errors, so they sum to the joint TD error too
    adv, _ = substep_gae(rewards, values, next_values, term, trunc, 0.95, 0.0, inner_lam=0.0)
    assert torch.allclose(adv.sum(-1), joint, atol=1e-12)


def test_with_inner_lambda_one_the_first_substep_carries_the_joint_gae_advantage() -> None:
    """``lambda_in = 1``: ``A_{t,0}`` equals the joint GAE advantage of the critic ``V(s) = V~(s, ())`` and
    ``A_{t,k} = A_{t,0} - sum_{j<k} delta_{t,j}`` (the earlier agents' one-step errors telescoped away)."""
    rewards, values, next_values, term, trunc = _random_rollout(9, 3, 4, seed=2)
    adv, ret = substep_gae(rewards, values, next_values, term, trunc, 0.9, 0.7, inner_lam=1.0)
    joint, _ = compute_gae(rewards, values[..., 0], next_values, term, trunc, 0.9, 0.7)
    assert torch.allclose(adv[..., 0], joint, atol=1e-12)
    deltas = substep_td_errors(rewards, values, next_values, term, 0.9)
    prefix = torch.cat([torch.zeros_like(deltas[..., :1]), deltas.cumsum(-1)[..., :-1]], -1)
    assert torch.allclose(adv, joint.unsqueeze(-1) - prefix, atol=1e-12)
    assert torch.allclose(ret, adv + values)


def test_substep_gae_by_hand() -> None:
    """T = 2 steps, one env, n = 2 agents, gamma = 0.9, lambda = 0.5, lambda_in = 0.8; step 0 continues, step 1 is
    truncated with bootstrap V' = 2. Values ``V[t, k]``: [[1, 3], [4, -1]], rewards [5, 7], V'_0 = 10 (ignored by
    the recursion's bootstrap: the next row's values are what GAE uses inside the rollout only through A_{1,0};
    the TD error of step 0 uses V'_0 = 10 as stored).

    delta_{1,1} = 7 + 0.9*2 - (-1) = 9.8;  A_{1,1} = 9.8 (truncated: no continuation)
    delta_{1,0} = -1 - 4 = -5;            A_{1,0} = -5 + 0.8*9.8 = 2.84
    delta_{0,1} = 5 + 0.9*10 - 3 = 11;    A_{0,1} = 11 + 0.9*0.5*2.84 = 12.278
    delta_{0,0} = 3 - 1 = 2;              A_{0,0} = 2 + 0.8*12.278 = 11.8224
    """
    rewards = torch.tensor([[5.0], [7.0]], dtype=torch.float64)
    values = torch.tensor([[[1.0, 3.0]], [[4.0, -1.0]]], dtype=torch.float64)
    next_values = torch.tensor([[10.0], [2.0]], dtype=torch.float64)
    term = torch.tensor([[False], [False]])
    trunc = torch.tensor([[False], [True]])
    adv, ret = substep_gae(rewards, values, next_values, term, trunc, 0.9, 0.5, inner_lam=0.8)
    expected = torch.tensor([[[11.8224, 12.278]], [[2.84, 9.8]]], dtype=torch.float64)
    assert torch.allclose(adv, expected, atol=1e-12), adv
    assert torch.allclose(ret, expected + values, atol=1e-12)
    # terminated instead of truncated: no bootstrap on the last sub-step (0.9 * 2 dropped)
    adv_t, _ = substep_gae(rewards, values, next_values, trunc, term, 0.9, 0.5, inner_lam=0.8)
    assert abs(float(adv_t[1, 0, 1]) - (7.0 + 1.0)) < 1e-12


def test_substep_gae_errors_name_the_argument() -> None:
    rewards, values, next_values, term, trunc = _random_rollout(3, 2, 2)
    with pytest.raises(ValueError, match="inner_lam"):
        substep_gae(rewards, values, next_values, term, trunc, 0.9, 0.9, inner_lam=1.5)
    with pytest.raises(ValueError, match="next_values"):
        substep_gae(rewards, values, next_values[:1], term, trunc, 0.9, 0.9, inner_lam=0.5)
    with pytest.raises(ValueError, match=r"values must have shape \[T, B, n\]"):
        substep_gae(rewards, values.unsqueeze(-1), next_values, term, trunc, 0.9, 0.9, inner_lam=0.5)


# ------------------------------------------------------------------------------------------------ sub-step critic
def test_substep_critic_position_zero_is_the_stored_value_and_is_causal() -> None:
    """``forward(state)`` is position 0 of :meth:`substep_values`; position k's value never depends on the
    actions of the agents at or after k (their one-hot entries are zeroed) and does depend on the earlier ones."""
    torch.manual_seed(0)
    critic = SubstepCritic(3, 3, 4, (16, 16))
    g = torch.Generator().manual_seed(0)
    state = torch.randn(50, 3, generator=g)
    actions = torch.randint(0, 4, (50, 3), generator=g)
    with torch.no_grad():
        v = critic.substep_values(state, actions)
    assert torch.allclose(v[:, 0], critic(state), atol=1e-6)
    changed = actions.clone()
    changed[:, 1] = (changed[:, 1] + 1) % 4  # agent 1 acts at position 1
    with torch.no_grad():
        w = critic.substep_values(state, changed)
    assert torch.equal(v[:, :2], w[:, :2]) and float((v[:, 2] - w[:, 2]).abs().max()) > 1e-4


def _exact_substep_values(agent, env) -> tuple[transform.SequentialMDP, np.ndarray]:
    """Exact ``V~_pi`` of ``M~`` (theory.transform, "one_then_gamma") under the teacher's exact conditionals:
    ``V = (I - P_pi)^{-1} R_pi`` with ``P_pi[x, y] = sum_b pi(b|x) d(x, b) T(y|x, b)``, ``R_pi = sum_b pi(b|x) R(x, b)``."""
    game = env.game
    mdp = transform.sequential_mdp(game)
    obs_table = env.observation_table()
    probs = np.zeros((mdp.n_states, mdp.max_actions))
    for x in range(mdp.n_states):
        s, prefix = mdp.decode(x)
        k = len(prefix)
        actions = torch.zeros(1, game.n_agents, dtype=torch.long)
        actions[0, :k] = torch.tensor(prefix, dtype=torch.long)
        avail = env.avail_actions_of_state(s)[None]
        with torch.no_grad():
            p = agent.actors.distribution(obs_table[s : s + 1], actions, avail).probs[0, k]
        probs[x, : game.n_actions[k]] = p[: game.n_actions[k]].double().numpy()
    probs /= probs.sum(1, keepdims=True)
    step = np.einsum("xb,xb,xby->xy", probs, mdp.discount, mdp.transition_dense())
    values = np.linalg.solve(np.eye(mdp.n_states) - step, (probs * mdp.reward).sum(1))
    return mdp, values


def test_return_targets_and_fitted_critic_match_the_exact_substep_values() -> None:
    """Climbing, a fixed random teacher (gain 1: far from uniform), 8192 one-step episodes, lambda = lambda_in = 1:
    (i) every sub-step's return target equals the episode's reward (to float32 rounding; discount 1 inside the step, reward on
    the last sub-step); (ii) on every state ``x = (s, a^{<k})`` of ``M~`` the mean target is within 5 standard errors
    of the exact ``V~_pi(x)``; (iii) after 300 full-batch critic epochs (no value clipping) the critic's ``V~(x)`` is within 1e-3 of the
    least-squares optimum on this batch, the per-state mean target of (ii) — so within 1e-3 + 5 standard errors of
    the exact ``V~_pi(x)``."""
    env = make("matrix/climbing", num_envs=8192, seed=0)
    agent = make_agent("tad_ppo", env.spec, seed=0, gain=1.0, gae_lambda=1.0, substep_lambda=1.0, critic_lr=1e-2,
                       critic_epoch=300, hidden=(32, 32), use_clipped_value_loss=False)  # no 0.2 trust region
    trainer = Trainer(env, agent, TrainerConfig(total_steps=8192, rollout_length=1, progress=False,
                                                tensorboard=False), seed=0)
    buffer = trainer.collect()
    batch = substep_batch(agent, buffer)
    target = buffer.flat("rewards").unsqueeze(-1).expand(-1, 2)
    assert torch.allclose(batch.returns, target, rtol=0, atol=1e-5)  # (i), to float32 rounding of (r - V) + V
    mdp, exact = _exact_substep_values(agent, env)
    actions = batch.actions
    rewards = buffer.flat("rewards").double()
    means: list[float] = []
    for x in range(mdp.n_states):  # (ii)
        _, prefix = mdp.decode(x)
        sel = torch.ones(actions.shape[0], dtype=torch.bool)
        for j, a in enumerate(prefix):
            sel &= actions[:, j] == a
        r = rewards[sel]
        se = float(r.std()) / np.sqrt(r.numel())
        assert abs(float(r.mean()) - exact[x]) <= 5 * se + 1e-9, (x, float(r.mean()), exact[x], se)
        means.append(float(r.mean()))
    agent._update_critic(batch)  # (iii)
    with torch.no_grad():
        for x in range(mdp.n_states):
            _, prefix = mdp.decode(x)
            acts = torch.zeros(1, 2, dtype=torch.long)
            acts[0, : len(prefix)] = torch.tensor(prefix, dtype=torch.long)
            raw = agent.critic.substep_values(buffer.state[0, :1], acts)  # the one state of the game
            v = float(agent.value_norm.denormalize(raw)[0, len(prefix)])
            assert abs(v - means[x]) <= 1e-3, (x, v, means[x], exact[x])


# ------------------------------------------------------------------------------------------------ distillation
def test_distillation_loss_is_the_kl_to_the_teachers_conditionals() -> None:
    """The soft loss equals ``sum_i mean_b KL(pi~(.|o_b, a_b^{<i}) || pi^i(.|o^i_b))`` computed from the two
    distributions directly; the hard loss is the negative log-likelihood of the sampled actions; the greedy loss
    (the default) that of the teacher's greedy joint action — agent 0's mode, then agent 1's mode GIVEN agent 0's
    mode (checked against the teacher's table: the argmax of the conditional row of the argmax of the first)."""
    env = make("matrix/climbing", num_envs=64, seed=0)
    agent = make_agent("tad_ppo", env.spec, seed=0, gain=1.0, hidden=(16, 16))
    step = env.reset(seed=0)
    actions, _ = agent.act(step)
    loss = float(distillation_loss(agent.students, agent.actors, step.obs, actions, step.avail_actions, "soft"))
    p = agent.actors.distribution(step.obs, actions, step.avail_actions).probs
    q = torch.stack([agent.students.distribution_agent(i, step.obs[:, i], step.avail_actions[:, i]).probs
                     for i in range(2)], 1)
    kl = (p * (p.log() - q.log())).sum(-1).mean(0).sum()
    assert abs(loss - float(kl)) <= 1e-5
    hard = distillation_loss(agent.students, agent.actors, step.obs, actions, step.avail_actions, "hard")
    assert abs(float(hard) + float(agent.students.log_prob(step.obs, actions, step.avail_actions).sum(-1).mean())) <= 1e-6
    with pytest.raises(ValueError, match="kind"):
        distillation_loss(agent.students, agent.actors, step.obs, actions, step.avail_actions, "mse")
    table = joint_policy(make_agent("tad_ppo", env.spec, seed=0, gain=1.0, hidden=(16, 16), tad_execute="teacher"),
                         env).probs()[0]
    first = int(table.sum(1).argmax())
    g = torch.tensor([[first, int(table[first].argmax())]]).expand(64, 2)
    greedy = float(distillation_loss(agent.students, agent.actors, step.obs, actions, step.avail_actions, "greedy"))
    expected = -float(agent.students.log_prob(step.obs, g, step.avail_actions).sum(-1).mean())
    assert abs(greedy - expected) <= 1e-6 and agent.config.distill_loss == "greedy"


def _train(game: str, seed: int, n_updates: int = 30, env_kwargs: dict | None = None, **kw):
    env = make(game, num_envs=128, seed=seed, **(env_kwargs or {}))
    agent = make_agent("tad_ppo", env.spec, seed=seed, **{**FAST, **kw})
    Trainer(env, agent, TrainerConfig(total_steps=128 * n_updates, rollout_length=1, progress=False,
                                      tensorboard=False), seed=seed).train()
    return env, agent


def _exact(agent, env, who: str):
    """The exact policy of the teacher (``Joint``) or of the students (``Factorized``) and its J."""
    saved = agent.config.tad_execute
    agent.config.tad_execute = who
    try:
        pi = joint_policy(agent, env)
    finally:
        agent.config.tad_execute = saved
    return pi, evaluate.expected_return(env.game, pi)


@pytest.mark.slow
@pytest.mark.parametrize("game,optimum", [("matrix/climbing", 11.0), ("matrix/penalty", 10.0)])
def test_teacher_reaches_the_optimum_and_the_students_keep_it(game: str, optimum: float) -> None:
    """Seeds 0-2, 30 updates (lr 5e-3, advantages not normalised; students distilled after every update and then
    for 300 more greedy steps on the observations, ``final_distill``): the teacher's exact J (its joint table) is
    within 0.05 of J* = joint_optimum (11 on climbing, 10 on penalty(-100); HAPPO/MAPPO end at (b,b) in 10/10
    seeds, README); the distilled students' exact J (product of their tables) is at most 1e-2 below the teacher's
    (one-sided: greedy distillation drops the teacher's residual randomness, so the students may be BETTER, e.g.
    a teacher mixing the two optima of penalty) and within 0.05 of J*; the students are an exact eps-Nash
    equilibrium (Nash gap <= 0.05). On penalty the teacher converges to a MIXTURE of
    its two optima (a,a)/(c,c) on some seeds (1, 2: 95/5 and 49/51; asserted: at least one seed has a largest joint
    probability < 0.99): marginal matching would miscoordinate there (``soft``: J -1.97 on seed 1,
    docs/tad_ppo.md); the greedy targets commit the students to one of the two optima. Ablation on climbing (previous actions
    hidden): see :func:`test_ablation_without_the_earlier_actions_misses_the_climbing_optimum`."""
    g = make(game, num_envs=1).game
    assert optima.joint_optimum(g).value == optimum
    mixtures = 0
    for seed in range(3):
        env, agent = _train(game, seed)
        step = env.reset(seed=seed)
        final_distill(agent, step.obs, step.avail_actions, epochs=300)  # TAD's second stage, to convergence
        teacher, j_teacher = _exact(agent, env, "teacher")
        students, j_students = _exact(agent, env, "student")
        assert isinstance(teacher, Joint) and isinstance(students, Factorized)
        assert abs(j_teacher - optimum) <= 0.05, (seed, j_teacher)
        mixtures += teacher.probs().max() < 0.99
        assert j_students >= j_teacher - 1e-2 and abs(j_students - optimum) <= 0.05, (seed, j_students, j_teacher)
        assert optima.nash_gap(env.game, students) <= 0.05
    assert game != "matrix/penalty" or mixtures >= 1  # the greedy targets are exercised on a mixed teacher


@pytest.mark.slow
def test_ablation_without_the_earlier_actions_misses_the_climbing_optimum() -> None:
    """The same teacher with the earlier agents' actions hidden (``ar_condition=False``: a product policy) misses
    (a,a) on seeds 0-2 — it fails the assertion of the learning test (measured over seeds 0-9: 0/10,
    benchmarks/tad_table.py)."""
    for seed in range(3):
        env, agent = _train("matrix/climbing", seed, ar_condition=False)
        _, j_teacher = _exact(agent, env, "teacher")
        assert abs(j_teacher - 11.0) > 0.05, (seed, j_teacher)


def test_xor_with_shared_parameters_needs_the_earlier_actions() -> None:
    """xor(2), ONE teacher network without agent id: with the earlier action visible the teacher reaches J >= 0.99
    (J* = 1); with it hidden both agents have the same input, hence the same marginal, and J <= J*_share = 1/2
    after every update (ICLR22 Prop. 1) — provably, whatever the seed."""
    game = games.xor(2)
    j_share = optima.shared_optimum(game).value
    kw = dict(env_kwargs={"n_agents": 2}, n_updates=30, num_envs=128, seed=0)
    model = dict(FAST, agent_id=False, tad_execute="teacher")
    report = oracle_run("tad_ppo", "matrix/xor", algo_kwargs=model, **kw)
    assert report.final_return >= 0.99, report.summary()
    ablation = oracle_run("tad_ppo", "matrix/xor", algo_kwargs=dict(model, ar_condition=False), **kw)
    assert max(ablation.returns) <= j_share + 1e-6, max(ablation.returns)


def test_without_distillation_the_students_keep_their_initial_policy() -> None:
    """``distill_epochs=0``: after training (the teacher at the optimum) the students' parameters are bit-identical
    to their initial ones and their exact J is the initial one, far below the teacher's; with distillation (the
    learning test) they reach the teacher."""
    env = make("matrix/climbing", num_envs=128, seed=0)
    agent = make_agent("tad_ppo", env.spec, seed=3, distill_epochs=0, **FAST)
    initial = {k: v.clone() for k, v in agent.students.state_dict().items()}
    _, j0 = _exact(agent, env, "student")
    Trainer(env, agent, TrainerConfig(total_steps=128 * 30, rollout_length=1, progress=False, tensorboard=False),
            seed=0).train()
    assert all(torch.equal(initial[k], v) for k, v in agent.students.state_dict().items())
    _, j_students = _exact(agent, env, "student")
    _, j_teacher = _exact(agent, env, "teacher")
    assert j_students == j0 and j_teacher - j_students > 5.0, (j0, j_students, j_teacher)


# ------------------------------------------------------------------------------------------------ engine, CLI
def test_the_update_clips_each_substep_ratio_against_its_own_advantage(monkeypatch: pytest.MonkeyPatch) -> None:
    """The PPO clip receives ``[m, n]`` ratios (one per sub-step, the conditionals' ratios, exactly 1 at the first
    step) and the ``[m, n]`` sub-step advantages of :func:`substep_batch` — not AR-MAPPO's joint ratio ``[m]``."""
    from seqmarl.algos import actor_updates, tad_ppo

    env = make("matrix/climbing", num_envs=64, seed=0)
    agent = make_agent("tad_ppo", env.spec, seed=0, ppo_epoch=2, distill_epochs=1, **FAST)
    buffer = Trainer(env, agent, TrainerConfig(total_steps=64, rollout_length=1, progress=False,
                                               tensorboard=False), seed=0).collect()
    batch = substep_batch(agent, buffer)
    expected_adv = batch.advantages
    with torch.no_grad():
        old = agent.actors.log_prob(batch.obs, batch.actions, batch.avail)
    seen = []
    original = tad_ppo.ppo_clip_objective

    def spy(ratio, adv, clip, **k):  # noqa: ANN001, ANN202
        with torch.no_grad():  # each agent's own conditional ratio with the current parameters
            per_agent = torch.exp(agent.actors.log_prob(batch.obs, batch.actions, batch.avail) - old)
        # the minibatch is a permutation of the samples: compare each column's sorted values
        err = float((ratio.detach().sort(0).values - per_agent.sort(0).values).abs().max())
        seen.append((tuple(ratio.shape), float((ratio.detach() - 1).abs().max()),
                     sorted(adv.reshape(-1).tolist()) == sorted(expected_adv.reshape(-1).tolist()), err))
        return original(ratio, adv, clip, **k)

    monkeypatch.setattr(tad_ppo, "ppo_clip_objective", spy)
    metrics = agent.update(buffer)
    assert [s[0] for s in seen] == [(64, 2)] * 2 and seen[0][1] <= 1e-6 and seen[1][1] > 0 and all(s[2] for s in seen)
    assert max(s[3] for s in seen) <= 1e-5, seen
    assert {"distill_loss", "critic_loss", "policy_objective"} <= set(metrics)
    assert actor_updates.run is not None


def test_configuration_errors_name_the_setting() -> None:
    env = make("matrix/xor", n_agents=2, num_envs=4)
    with pytest.raises(ValueError, match="ar_order='fixed'"):
        make_agent("tad_ppo", env.spec, ar_order="random")
    with pytest.raises(ValueError, match="share_param=True"):
        make_agent("tad_ppo", env.spec, share_param=False)
    with pytest.raises(ValueError, match="tad_execute"):
        make_agent("tad_ppo", env.spec, tad_execute="both")
    with pytest.raises(ValueError, match="distill_epochs"):
        make_agent("tad_ppo", env.spec, distill_epochs=-1)
    with pytest.raises(ValueError, match="substep_lambda"):
        make_agent("tad_ppo", env.spec, substep_lambda=2.0)
    with pytest.raises(ValueError, match="tad_substep_clip"):
        make_agent("tad_ppo", env.spec, actor_update="joint_ratio_clip")
    with pytest.raises(ValueError, match="distill_keep"):  # the discrete greedy hysteresis has no continuous use
        make_agent("tad_ppo", make("gaussian/a1a2", num_envs=4).spec, distill_keep=0.3)
    assert TADPPOConfig().ppo_epoch == 15


def test_bridge_trains_and_evaluates_with_the_students() -> None:
    """The grid env (discrete, 30-step episodes, truncation): two updates run, the students are what evaluation
    executes (``act_for_evaluation``), and the teacher still samples the training rollouts."""
    env = make("bridge", num_envs=4, seed=0)
    agent = make_agent("tad_ppo", env.spec, seed=0, hidden=(16, 16), ppo_epoch=2, distill_epochs=2)
    trainer = Trainer(env, agent, TrainerConfig(total_steps=4 * 40 * 2, rollout_length=40, progress=False,
                                                tensorboard=False, eval_interval=1, eval_episodes=2),
                      eval_env_fn=lambda k: make("bridge", num_envs=k, seed=1), seed=0)
    history = trainer.train()
    assert len(history) == 2 and all(np.isfinite(h["distill_loss"]) for h in history)
    assert "eval_return_greedy" in history[-1]
    step = env.reset(seed=0)
    called = []
    agent.students.sample = lambda *a, **k: called.append(1) or type(agent.students).sample(agent.students, *a, **k)
    agent.act_for_evaluation(step)
    assert called == [1]


def test_cli_train_resume_and_validate(tmp_path: Path) -> None:
    """``seqmarl train algo=tad_ppo`` writes a checkpoint holding the students; resuming to 8 updates reproduces
    the uninterrupted 8-update run's metrics and student weights exactly; ``seqmarl validate`` reports the
    students' exact J and a finite Nash gap (a product policy)."""
    small = ["algo.hidden=16,16", "algo.lr=0.005", "algo.ppo_epoch=3", "num_envs=32", "progress=false",
             "tensorboard=false"]
    args = ["train", "algo=tad_ppo", "env=matrix/climbing"]
    assert main([*args, "total_steps=256", f"run_dir={tmp_path / 'a'}", *small]) == 0
    assert main([*args, "total_steps=128", f"run_dir={tmp_path / 'b'}", *small]) == 0
    assert main(["train", f"resume={tmp_path / 'b'}", "total_steps=256"]) == 0
    state = torch.load(tmp_path / "b" / "checkpoints" / "last.pt", weights_only=True)
    assert "students" in state["agent"] and "student_optimizer" in state["agent"]
    rows = [[json.loads(x) for x in (tmp_path / d / "metrics.jsonl").read_text().splitlines()] for d in "ab"]
    drop = {"sps", "collect_fraction"}
    assert [{k: v for k, v in r.items() if k not in drop} for r in rows[0]] == \
        [{k: v for k, v in r.items() if k not in drop} for r in rows[1]]
    other = torch.load(tmp_path / "a" / "checkpoints" / "last.pt", weights_only=True)
    assert all(torch.equal(other["agent"]["students"][k], v) for k, v in state["agent"]["students"].items())
    assert main(["validate", "algo=tad_ppo", "env=matrix/xor", "total_steps=128", f"run_dir={tmp_path / 'v'}",
                 *small]) == 0
    report = json.loads((tmp_path / "v" / "validation.json").read_text())
    assert np.isfinite(report["summary"]["final_nash_gap"]) and report["summary"]["is_epsilon_nash"] is not None


# ------------------------------------------------------------------------------------------------ continuous
def test_continuous_substep_critic_reads_the_earlier_action_vectors_only() -> None:
    """Continuous ``SubstepCritic`` (``[..., n, d_max]`` actions): ``forward(state)`` is position 0; its input at
    position k holds ``a^j * 1[j < k]`` (the action VECTORS of the earlier agents, checked entry by entry); moving
    agent 1's action never changes positions 0 and 1 and does change position 2. Integer actions are refused."""
    torch.manual_seed(0)
    critic = SubstepCritic(3, 3, 2, (16, 16), continuous=True)
    g = torch.Generator().manual_seed(0)
    state = torch.randn(50, 3, generator=g)
    actions = torch.randn(50, 3, 2, generator=g)
    x = critic.substep_inputs(state, actions)  # [50, n, 3 + 3 * 2 + 3]
    for k in range(3):
        prefix = x[:, k, 3:9].reshape(50, 3, 2)
        for j in range(3):
            assert torch.equal(prefix[:, j], actions[:, j] if j < k else torch.zeros_like(actions[:, j]))
        assert torch.equal(x[:, k, 9:], torch.eye(3)[k].expand(50, 3))
    with torch.no_grad():
        v = critic.substep_values(state, actions)
        changed = actions.clone()
        changed[:, 1] += 1.0
        w = critic.substep_values(state, changed)
    assert torch.allclose(v[:, 0], critic(state), atol=1e-6)
    assert torch.equal(v[:, :2], w[:, :2]) and float((v[:, 2] - w[:, 2]).abs().max()) > 1e-4
    with pytest.raises(TypeError, match="floating"):
        critic.substep_values(state, torch.zeros(50, 3, dtype=torch.long))
    with pytest.raises(ValueError, match="d_max"):
        critic.substep_values(state, torch.zeros(50, 3))


def test_gaussian_kl_matches_torch_distributions() -> None:
    """:func:`gaussian_kl` against ``torch.distributions.kl_divergence`` of two Normals (float64)."""
    g = torch.Generator().manual_seed(0)
    m_p, m_q, l_p, l_q = (torch.randn(40, 3, generator=g, dtype=torch.float64) for _ in range(4))
    expected = torch.distributions.kl_divergence(torch.distributions.Normal(m_p, l_p.exp()),
                                                 torch.distributions.Normal(m_q, l_q.exp()))
    assert torch.allclose(gaussian_kl(m_p, l_p, m_q, l_q), expected, atol=1e-12, rtol=0)


GAUSS_DIMS = (2, 3, 1)


def _ar_tests():  # noqa: ANN202
    """``tests/algos/test_ar_mappo.py`` as a module (its a1·a2 quadrature oracle; pytest runs with
    ``--import-mode=importlib``, so the test directory is not on ``sys.path``)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("_seqmarl_ar_tests", Path(__file__).with_name("test_ar_mappo.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _gaussian_teacher_and_students():
    """A float64 Gaussian teacher (3 agents, dims 2, 3, 1 padded to 3, means that depend on the prefix) and
    students with their own dims; ONE observation value (all rows equal), so each student's mean and std are free
    parameters in effect (the head's bias and log_std, with the head's weight zeroed)."""
    torch.manual_seed(0)
    spaces = [BoxSpace(d) for d in GAUSS_DIMS]
    teacher = AutoRegressiveActor(3, 2, spaces, hidden=(16, 16), out_gain=1.0, log_std_init=-0.3,
                                  dtype=torch.float64)
    students = MultiAgentActors(3, 2, spaces, hidden=(8,), dtype=torch.float64)
    obs = torch.tensor([0.5, -1.0], dtype=torch.float64).expand(256, 3, 2).clone()
    with torch.no_grad():
        actions, _ = teacher.sample(obs, generator=torch.Generator().manual_seed(1))
    return teacher, students, obs, actions


def _set_students(students, means, stds) -> list[torch.Tensor]:  # noqa: ANN001
    params = []
    with torch.no_grad():
        for i, actor in enumerate(students.actors):
            actor.head.linear.weight.zero_()
            actor.head.linear.bias.copy_(means[i])
            actor.head.log_std.copy_(torch.log(stds[i]))
            params += [actor.head.linear.bias, actor.head.log_std]
    return params


@pytest.mark.parametrize("kind", ["greedy", "soft", "hard"])
def test_continuous_distillation_losses_are_minimised_by_their_closed_form_moments(kind: str) -> None:
    """Continuous students, one observation value, heterogeneous dims (2, 3, 1). Each kind's closed-form minimiser
    (docstring of :func:`distillation_loss`), computed from the batch in float64: ``greedy`` — mean = the teacher's
    greedy (mean) joint action ``g`` (checked against a hand roll-out: agent 0's mean, then agent 1's mean given
    it, ...), std = the teacher's std ``s``; ``soft`` — mean = the batch mean of the teacher's conditional means
    ``m_b``, variance = ``s^2 + Var_b(m_b)``; ``hard`` — the sample mean and variance of the taken actions. At that
    point the gradient of the loss w.r.t. every student mean and log-std is 0 (to 1e-9) and the loss equals the
    closed form (per-dimension Gaussian KL / NLL summed over each agent's OWN dims); the OTHER kinds' minimisers
    are not stationary points (gradient > 1e-3), so the three losses differ."""
    teacher, students, obs, actions = _gaussian_teacher_and_students()
    with torch.no_grad():
        dist = teacher.distribution(obs, actions)
        m, s = dist.mean, dist.log_std.exp()  # [256, 3, 3]
        g = greedy_mean_targets(teacher, obs)[0]  # [3, 3]
        roll = torch.zeros(1, 3, 3, dtype=torch.float64)
        for k, d in enumerate(GAUSS_DIMS):
            roll[0, k, :d] = teacher.distribution(obs[:1], roll).mean[0, k, :d]
    assert torch.allclose(g, roll[0], atol=1e-12, rtol=0)
    s0 = s[0]
    minimiser = {
        "greedy": (g, s0),
        "soft": (m.mean(0), torch.sqrt(s0**2 + m.var(0, unbiased=False))),
        "hard": (actions.mean(0), actions.std(0, unbiased=False)),
    }
    for other, (mean, std) in minimiser.items():
        params = _set_students(students, [mean[i, :d] for i, d in enumerate(GAUSS_DIMS)],
                               [std[i, :d] for i, d in enumerate(GAUSS_DIMS)])
        loss = distillation_loss(students, teacher, obs, actions, None, kind)
        grads = torch.autograd.grad(loss, params)
        worst = max(float(x.abs().max()) for x in grads)
        if other == kind:
            assert worst <= 1e-9, (kind, worst)
            if kind == "hard":
                expected = -sum(torch.distributions.Normal(mean[i, :d], std[i, :d]).log_prob(actions[:, i, :d])
                                .sum(-1).mean() for i, d in enumerate(GAUSS_DIMS))
            else:
                centre = g.expand(256, 3, 3) if kind == "greedy" else m
                expected = sum(torch.distributions.kl_divergence(
                    torch.distributions.Normal(centre[:, i, :d], s[:, i, :d]),
                    torch.distributions.Normal(mean[i, :d], std[i, :d])).sum(-1).mean()
                    for i, d in enumerate(GAUSS_DIMS))
            assert abs(float(loss.detach()) - float(expected)) <= 1e-10
        else:
            assert worst > 1e-3, (kind, other, worst)


def test_continuous_distillation_with_shared_students_sums_over_each_agents_own_dims() -> None:
    """A SHARED student network has ``d_max`` outputs for every agent: the soft loss sums the per-dimension KL over
    agent i's own ``d_i`` dims only (computed here from the two distributions directly), not over ``d_max``."""
    teacher, _, obs, actions = _gaussian_teacher_and_students()
    torch.manual_seed(1)
    shared = MultiAgentActors(3, 2, [BoxSpace(d) for d in GAUSS_DIMS], share=True, agent_id=True, hidden=(8,),
                              out_gain=1.0, dtype=torch.float64)
    with torch.no_grad():
        loss = float(distillation_loss(shared, teacher, obs, actions, None, "soft"))
        p = teacher.distribution(obs, actions)
        expected = 0.0
        for i, d in enumerate(GAUSS_DIMS):
            q = shared.distribution_agent(i, obs[:, i])
            expected += float(torch.distributions.kl_divergence(
                torch.distributions.Normal(p.mean[:, i, :d], p.log_std[:, i, :d].exp()),
                torch.distributions.Normal(q.mean[:, :d], q.log_std[:, :d].exp())).sum(-1).mean())
    assert abs(loss - expected) <= 1e-10


def test_continuous_std_options_reach_the_teacher_and_the_students() -> None:
    """``std_param``/``log_std_init`` of the config reach the Gaussian heads of the AR teacher and of the students
    (``harl``: ``sigmoid(1) * 0.5``; ``exp``: ``exp(log_std_init)``)."""
    spec = make("gaussian/a1a2", num_envs=4).spec
    for kw, std in (({"std_param": "harl"}, 0.5 / (1 + math.exp(-1))), ({"log_std_init": -1.0}, math.exp(-1.0))):
        agent = make_agent("tad_ppo", spec, **kw)
        assert math.isclose(float(agent.actors.head.std().detach()[0]), std, rel_tol=1e-6)
        assert all(math.isclose(float(a.head.std().detach()[0]), std, rel_tol=1e-6) for a in agent.students.actors)
        assert math.isclose(float(make_agent("ar_mappo", spec, **kw).actors.head.std().detach()[0]), std, rel_tol=1e-6)


def test_continuous_distillation_refuses_masks_and_a_discrete_teacher() -> None:
    teacher, students, obs, actions = _gaussian_teacher_and_students()
    with pytest.raises(ValueError, match="avail"):
        distillation_loss(students, teacher, obs, actions, torch.ones(256, 3, 3, dtype=torch.bool), "soft")
    discrete = AutoRegressiveActor(3, 2, 3, hidden=(8,))
    with pytest.raises(ValueError, match="continuous .*teacher"):
        distillation_loss(students, discrete, obs, actions, None, "soft")


def test_gaussian_game_teacher_correlates_and_distillation_closes_the_student_gap() -> None:
    """The continuous a1·a2 game (seed 0, 6 updates of 64 one-step episodes). Teacher (exact quadrature oracle of
    ``tests/algos/test_ar_mappo.py``): J >= 1 and Cov(a1, a2) >= 0.5 — the correlation only an AR teacher has
    (no J criterion on this game needs coordination: see the AR-MAPPO test). Students (greedy distillation): the
    largest distance of a student's mean to the teacher's greedy joint action ``g`` is <= 0.2 while ``|g|`` >= 1.
    Ablations: ``distill_epochs=0`` — the SAME teacher (its updates do not see the students: bit-identical), the
    students stay at their initial means, distance >= 1; ``ar_condition=False`` — Cov is 0 to 1e-6. Measured:
    distances 0.06 / 2.26, J 3.43, Cov 2.58."""
    gaussian_game_moments = _ar_tests().gaussian_game_moments

    def run(**kw):  # noqa: ANN003, ANN202
        env = make("gaussian/a1a2", num_envs=64, seed=0)
        agent = make_agent("tad_ppo", env.spec, seed=0, lr=5e-3, hidden=(32, 32), **kw)
        trainer = Trainer(env, agent, TrainerConfig(total_steps=64 * 6, rollout_length=1, progress=False,
                                                    tensorboard=False), seed=0)
        for _ in range(6):
            agent.update(trainer.collect())
        obs = torch.ones(1, 2, 1)
        g = greedy_mean_targets(agent.actors, obs)[0, :, 0]
        with torch.no_grad():
            means = torch.stack([agent.students.distribution_agent(i, obs[:, i]).mean[0, 0] for i in range(2)])
        return agent, g, float((means - g).abs().max())

    agent, g, gap = run()
    j, cov = gaussian_game_moments(agent.actors)
    assert j >= 1.0 and cov >= 0.5, (j, cov)
    assert float(g.abs().min()) >= 0.5 and gap <= 0.2, (g, gap)
    plain, g_plain, gap_plain = run(distill_epochs=0)
    assert all(torch.equal(a, b) for a, b in zip(agent.actors.state_dict().values(),
                                                 plain.actors.state_dict().values()))
    assert gap_plain >= 1.0 and not gap_plain <= 0.2, gap_plain
    hidden, _, _ = run(ar_condition=False, distill_epochs=1)
    assert abs(gaussian_game_moments(hidden.actors)[1]) <= 1e-6


def test_cli_trains_tad_ppo_on_the_continuous_game_and_resumes(tmp_path: Path) -> None:
    """``seqmarl train algo=tad_ppo env=gaussian/a1a2`` writes a checkpoint with Gaussian students and resumes
    from it; the students execute in evaluation (``eval_interval``)."""
    small = ["algo.hidden=16,16", "algo.ppo_epoch=2", "algo.distill_epochs=2", "num_envs=16", "progress=false",
             "tensorboard=false", "eval_interval=1", "eval_episodes=4"]
    run = tmp_path / "g"
    assert main(["train", "algo=tad_ppo", "env=gaussian/a1a2", "total_steps=32", f"run_dir={run}", *small]) == 0
    assert main(["train", f"resume={run}", "total_steps=64"]) == 0
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert rows[-1]["env_steps"] == 64 and all(np.isfinite(r["distill_loss"]) for r in rows)
    state = torch.load(run / "checkpoints" / "last.pt", weights_only=True)
    assert "actors.0.head.log_std" in state["agent"]["students"] and "head.log_std" in state["agent"]["actors"]


def test_mamujoco_half_cheetah_smoke() -> None:
    """MaMuJoCo HalfCheetah-2x3 (two agents x 3 joints): two TAD-PPO updates on 2 envs x 16 steps with finite
    metrics (sub-step critic on 3-dim action vectors, Gaussian students distilled); the students execute."""
    pytest.importorskip("gymnasium_robotics")
    env = make("mamujoco/HalfCheetah-2x3", num_envs=2, seed=0)
    try:
        agent = make_agent("tad_ppo", env.spec, seed=0, hidden=(16, 16), ppo_epoch=1, distill_epochs=1)
        history = Trainer(env, agent, TrainerConfig(total_steps=2 * 16 * 2, rollout_length=16, progress=False,
                                                    tensorboard=False), seed=0).train()
        assert len(history) == 2 and all(np.isfinite(history[-1][k]) for k in ("critic_loss", "distill_loss"))
        actions, _ = agent.act_for_evaluation(env.reset(seed=1))
        assert actions.shape == (2, 2, 3) and actions.is_floating_point()
    finally:
        env.close()
