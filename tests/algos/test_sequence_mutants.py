"""Tests written for surviving mutants of the ``sequence`` mutation area (tools/mutate.py: MAT/MAT-Dec, the AR-MAPPO
actor, TAD's coordinators and TAD-PPO): each names the mutant it kills and checks the behaviour against an exact
computation."""

from __future__ import annotations

import pytest
import torch

from seqmarl.algos import make_agent
from seqmarl.algos.core.joint_policy import random_orders
from seqmarl.algos.core.mat_policy import MultiAgentTransformer
from seqmarl.algos.core.tad import distillation_loss
from seqmarl.algos.tad_ppo import final_distill
from seqmarl.envs import make


def _mat_inputs(batch: int = 64, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    obs = torch.randn(batch, 3, 4, generator=g)
    avail = torch.rand(batch, 3, 4, generator=g) < 0.6
    avail[..., 0] = True
    return obs, avail, random_orders(batch, 3, g)


def test_mat_entropy_uses_the_action_mask() -> None:
    """Kills ``MultiAgentTransformer.entropy`` passing ``avail=None`` (mat_policy ``entropy__mutmut_4``): the
    conditional entropies equal those of the masked conditionals ``distribution(obs, actions, avail, order)``
    — computed here by hand as ``-sum_a p log p`` over the available actions — and differ from the unmasked ones."""
    torch.manual_seed(0)
    policy = MultiAgentTransformer(3, 4, 4, n_embd=16, n_head=2, n_block=1, out_gain=1.0, agent_id=True)
    obs, avail, order = _mat_inputs()
    with torch.no_grad():
        actions, _ = policy.sample(obs, avail, order=order)
        entropy = policy.entropy(obs, avail, order=order, actions=actions)
        probs = policy.distribution(obs, actions, avail, order).probs.double()
        by_hand = -(probs * torch.where(probs > 0, probs.log(), torch.zeros_like(probs))).sum(-1)
        unmasked = policy.entropy(obs, None, order=order, actions=actions)
    assert float((probs[~avail]).abs().max()) == 0.0
    assert float((entropy.double() - by_hand).abs().max()) <= 1e-5
    assert float((unmasked.double() - by_hand).abs().max()) > 1e-2


def test_final_distill_runs_fresh_adam_steps_on_the_configured_loss() -> None:
    """Kills mutants of ``tad_ppo.final_distill`` (no non-slow test called it): ``epochs=0`` leaves the students
    unchanged and returns the current distillation loss (recomputed with ``distillation_loss``, same teacher
    samples drawn with the agent's generator); 40 epochs at least halve it, leave the teacher untouched and return
    the loss of the updated students; a non-TAD agent is refused by name."""
    env = make("matrix/climbing", num_envs=64, seed=0)
    kw = dict(hidden=(16, 16), distill_loss="soft", gain=1.0)  # gain 1: teacher and students start apart
    agent = make_agent("tad_ppo", env.spec, seed=0, **kw)
    step = env.reset(seed=0)
    students = [p.detach().clone() for p in agent.students.parameters()]
    teacher = [p.detach().clone() for p in agent.actors.parameters()]
    state = agent.generator.get_state()
    out0 = final_distill(agent, step.obs, step.avail_actions, epochs=0)
    assert all(torch.equal(p, q) for p, q in zip(agent.students.parameters(), students))
    agent.generator.set_state(state)
    with torch.no_grad():
        actions, _ = agent.actors.sample(step.obs, step.avail_actions, generator=agent.generator)
        before = float(distillation_loss(agent.students, agent.actors, step.obs, actions, step.avail_actions,
                                         kind="soft", keep=agent.config.distill_keep))
    assert abs(out0["distill_loss"] - before) <= 1e-6
    agent.generator.set_state(state)
    out = final_distill(agent, step.obs, step.avail_actions, epochs=40)
    with torch.no_grad():
        after = float(distillation_loss(agent.students, agent.actors, step.obs, actions, step.avail_actions,
                                        kind="soft", keep=agent.config.distill_keep))
    assert abs(out["distill_loss"] - after) <= 1e-6 and after < 0.5 * before, (before, after)
    assert all(torch.equal(p, q) for p, q in zip(agent.actors.parameters(), teacher))
    with pytest.raises(ValueError, match="TAD-PPO agent"):
        final_distill(make_agent("mappo", env.spec, seed=0), step.obs, step.avail_actions, epochs=1)


def test_mat_refuses_integer_observations_by_name() -> None:
    """Kills ``MATEncoder.check_obs`` with ``floating=False`` (``check_obs__mutmut_11``): integer observations are
    refused with a TypeError naming ``obs`` instead of entering the encoder."""
    policy = MultiAgentTransformer(3, 4, 4, n_embd=16, n_head=2, n_block=1)
    with pytest.raises(TypeError, match="obs must be a floating-point tensor"):
        policy.sample(torch.zeros(2, 3, 4, dtype=torch.int64))


def test_a_float64_continuous_mat_is_float64_throughout() -> None:
    """Kills the ``log_std`` parameter losing its ``dtype`` (``MultiAgentTransformer.__init__`` mutmut_183): with
    ``dtype=torch.float64`` every parameter (the Gaussian head's log std included) is float64, and sampling gives
    float64 actions and log-probs."""
    from seqmarl.algos.core.networks import BoxSpace

    policy = MultiAgentTransformer(2, 3, [BoxSpace(2), BoxSpace(1)], n_embd=16, n_head=2, n_block=1,
                                   dtype=torch.float64)
    assert {p.dtype for p in policy.parameters()} == {torch.float64}
    actions, log_probs = policy.sample(torch.randn(5, 2, 3, dtype=torch.float64))
    assert actions.dtype == torch.float64 and log_probs.dtype == torch.float64


def test_tad_clip_fraction_is_zero_at_the_first_step() -> None:
    """Kills ``substep_clip`` starting its clip-fraction sum at 1 (``substep_clip__mutmut_13``): with one epoch and
    one minibatch the only optimiser step sees the behaviour policy itself, every sub-step ratio is exactly 1, so
    the reported clip fraction is exactly 0 (and the entropy statistic is the mean conditional entropy, in
    ``(0, log 3]`` on climbing)."""
    import math

    from seqmarl.algos.trainer import Trainer, TrainerConfig

    env = make("matrix/climbing", num_envs=32, seed=0)
    agent = make_agent("tad_ppo", env.spec, seed=0, hidden=(16, 16), ppo_epoch=1, distill_epochs=1)
    buffer = Trainer(env, agent, TrainerConfig(total_steps=32, rollout_length=1, progress=False,
                                               tensorboard=False), seed=0).collect()
    metrics = agent.update(buffer)
    assert metrics["clip_fraction"] == 0.0, metrics
    assert 0.0 < metrics["entropy"] <= math.log(3) + 1e-6, metrics


def _tad_agent_and_inputs(batch: int = 64):
    env = make("matrix/climbing", num_envs=4, seed=0)
    agent = make_agent("tad_ppo", env.spec, seed=0, hidden=(16, 16), gain=1.0)
    g = torch.Generator().manual_seed(0)
    obs = torch.randn(batch, env.spec.n_agents, env.spec.obs_dim, generator=g)
    avail = torch.rand(batch, env.spec.n_agents, 3, generator=g) < 0.6
    avail[..., 0] = True
    with torch.no_grad():
        actions, _ = agent.actors.sample(obs, avail, generator=g)
    return agent, obs, avail, actions


def test_greedy_distillation_renormalises_the_students_over_available_actions() -> None:
    """Kills ``distillation_loss`` dropping the mask from the students' log-probs of the greedy targets
    (``distillation_loss__mutmut_59``): the greedy loss is ``-(1/m) sum_b sum_i log q^i_avail(g^i_b)`` with the
    students' conditionals renormalised over the available actions, ``log q_avail(a) = log q(a) - log sum_{a'
    available} q(a')`` (computed here from the unmasked probabilities), not the unmasked ``log q(a)``."""
    from seqmarl.algos.core.tad import greedy_targets

    agent, obs, avail, actions = _tad_agent_and_inputs()
    with torch.no_grad():
        loss = float(distillation_loss(agent.students, agent.actors, obs, actions, avail, kind="greedy"))
        targets = greedy_targets(agent.students, agent.actors, obs, avail)
        masked, unmasked = 0.0, 0.0
        for i in range(agent.spec.n_agents):
            q = agent.students.distribution_agent(i, obs[:, i], None).probs.double()  # [m, 3], no mask
            q_t = q.gather(-1, targets[:, i:i + 1]).squeeze(-1)
            masked -= float((q_t.log() - (q * avail[:, i]).sum(-1).log()).mean())
            unmasked -= float(q_t.log().mean())
    assert bool(avail.gather(-1, targets.unsqueeze(-1)).all())  # the targets are available actions
    assert abs(loss - masked) <= 1e-5 and abs(loss - unmasked) > 1e-3, (loss, masked, unmasked)


def test_soft_distillation_without_a_mask_is_the_all_available_loss() -> None:
    """Kills the soft loss indexing a missing mask (``distillation_loss__mutmut_92``): ``avail=None`` gives the
    same loss as an all-True mask (for every kind)."""
    agent, obs, _, actions = _tad_agent_and_inputs()
    everything = torch.ones(obs.shape[0], agent.spec.n_agents, 3, dtype=torch.bool)
    with torch.no_grad():
        for kind in ("soft", "hard", "greedy"):
            a = float(distillation_loss(agent.students, agent.actors, obs, actions, None, kind=kind))
            b = float(distillation_loss(agent.students, agent.actors, obs, actions, everything, kind=kind))
            assert abs(a - b) <= 1e-6, (kind, a, b)
