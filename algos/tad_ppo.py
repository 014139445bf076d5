"""TAD-PPO's steps on the on-policy agent (Ye et al., arXiv 2207.11143; theory.md §6.1; docs/tad_ppo.md).

:class:`~seqmarl.algos.onpolicy.OnPolicyAgent` with ``config.policy == "tad"`` (``TADPPOConfig``) calls, in its
``update``:

1. :func:`substep_batch` — the sub-step values ``V~(s_t, a_t^{<k})`` of the whole rollout (the critic as it was
   during collection), GAE over the sub-step sequence (:func:`seqmarl.algos.core.tad.substep_gae`), and the batch
   whose advantages, returns and old values are ``[N, n]`` (sub-step ``k`` = agent ``k``);
2. :func:`substep_clip` (``actor_update="tad_substep_clip"``, dispatched by :func:`seqmarl.algos.actor_updates.run`)
   — PPO on the transformed MDP;
3. the critic update of the agent (its minibatch loss on the ``[m, n]`` sub-step values and returns);
4. :func:`distill` — ``distill_epochs`` full-batch steps of the students on the rollout.

Discrete and continuous actions alike: for continuous envs the buffer holds action vectors ``[T, B, n, d_max]``,
the sub-step critic reads them (:class:`~seqmarl.algos.core.tad.SubstepCritic` with ``continuous=True``), the
ratios are the Gaussian conditionals' and the students are distilled with the closed-form Gaussian losses of
:func:`~seqmarl.algos.core.tad.distillation_loss` (``avail`` is None).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

from .actor_updates import Batch, _adv, _joint_inputs, minibatches, step_actors
from .core.losses import ppo_clip_objective
from .core.tad import distillation_loss, substep_gae

if TYPE_CHECKING:  # pragma: no cover
    from .core.buffer import RolloutBuffer
    from .onpolicy import OnPolicyAgent

__all__ = ["substep_batch", "substep_clip", "distill", "final_distill"]


def substep_batch(agent: "OnPolicyAgent", buffer: "RolloutBuffer") -> Batch:
    """The transformed MDP's batch of a full rollout: ``advantages``, ``returns`` (de-normalised) and
    ``raw_values`` (the critic's raw, possibly normalised, outputs) are ``[N, n]``, one entry per sub-step; the
    bootstrap ``V~(s_{t+1}, ())`` is the buffer's ``next_values`` (truncated steps: the final pre-reset state)."""
    if not buffer.full:
        raise ValueError(f"buffer holds {buffer.step} of T={buffer.T} steps; fill it before the update")
    cfg = agent.config
    T, B, n = buffer.T, buffer.num_envs, agent.spec.n_agents
    with torch.no_grad():
        raw = agent.critic.substep_values(buffer.state, buffer.actions)  # [T, B, n]
    values, next_values = raw, buffer.next_values
    if agent.value_norm is not None:
        values, next_values = agent.value_norm.denormalize(raw), agent.value_norm.denormalize(buffer.next_values)
    adv, ret = substep_gae(buffer.rewards, values, next_values, buffer.terminated, buffer.truncated, cfg.gamma,
                           cfg.gae_lambda, cfg.substep_lambda)
    N = T * B
    return Batch(
        obs=buffer.flat("obs"), state=buffer.flat("state"),
        avail=buffer.flat("avail_actions") if buffer.avail_actions is not None else None,
        actions=buffer.flat("actions"), old_log_probs=buffer.flat("log_probs"),
        advantages=adv.reshape(N, n).contiguous(), returns=ret.reshape(N, n).contiguous(),
        raw_values=raw.reshape(N, n).contiguous(),
    )


def substep_clip(agent: "OnPolicyAgent", batch: Batch) -> dict[str, float]:
    r"""PPO on the transformed MDP: every (env step, sub-step) is one sample,

    .. math:: \max\ \frac{1}{mn}\sum_{b,k} \min\big(r_{b,k} A_{b,k},\ \mathrm{clip}(r_{b,k}, 1\pm\epsilon) A_{b,k}\big)
              + c_H \frac{1}{mn}\sum_{b,k} H\big(\pi(\cdot | o_b, a_b^{<k})\big),

    ``r_{b,k} = pi(a_b^k | o_b, a_b^{<k}) / pi_old(...)`` the k-th conditional's ratio (teacher-forced), ``A_{b,k}``
    its sub-step advantage (``batch.advantages [N, n]``, normalised over all ``N n`` entries by
    ``adv_norm="batch"``). Each ratio is clipped on its own — not the joint ratio (AR-MAPPO), not HAPPO's factor.
    Epochs and minibatches as MAPPO's; one optimiser step per minibatch."""
    cfg = agent.config
    actors = agent.actors
    params = [p for p in actors.parameters() if p.requires_grad]
    stats = {"policy_objective": 0.0, "entropy": 0.0, "clip_fraction": 0.0}
    count = 0
    for _ in range(cfg.ppo_epoch):
        for idx in minibatches(agent, batch, cfg.actor_num_mini_batch):
            obs, actions, avail, order = _joint_inputs(agent, batch, idx)
            new_lp, ents = actors.log_prob_and_entropy(obs, actions, avail, order=order)  # [m, n] each
            ratio = torch.exp(new_lp - batch.old_log_probs[idx])
            objective = ppo_clip_objective(ratio, _adv(agent, batch.advantages[idx]), cfg.clip)
            entropy = ents.mean()
            loss = -(objective + cfg.entropy_coef * entropy)
            step_actors(agent, params, loss)
            with torch.no_grad():
                stats["clip_fraction"] += float(((ratio - 1.0).abs() > cfg.clip).float().mean())
            stats["policy_objective"] += float(objective.detach())
            stats["entropy"] += float(entropy.detach())
            count += 1
    return {k: v / max(count, 1) for k, v in stats.items()}


def distill(agent: "OnPolicyAgent", batch: Batch) -> dict[str, float]:
    """``config.distill_epochs`` full-batch Adam steps (``distill_lr``) of the students on
    :func:`~seqmarl.algos.core.tad.distillation_loss` (``distill_loss``) over the rollout's observations and the
    teacher's sampled actions; gradients clipped to ``max_grad_norm``. Returns ``distill_loss`` after the steps
    (the KL of the students to the teacher for ``soft``); with ``distill_epochs=0`` the students are untouched."""
    cfg = agent.config
    students = agent.students
    params = list(students.parameters())
    args = (students, agent.actors, batch.obs, batch.actions, batch.avail if agent.discrete else None)
    for _ in range(cfg.distill_epochs):
        loss = distillation_loss(*args, kind=cfg.distill_loss, keep=cfg.distill_keep)
        agent.student_optimizer.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(params, cfg.max_grad_norm)
        agent.student_optimizer.step()
    with torch.no_grad():
        final = distillation_loss(*args, kind=cfg.distill_loss, keep=cfg.distill_keep)
    return {"distill_loss": float(final)}


def final_distill(agent: "OnPolicyAgent", obs: torch.Tensor, avail: torch.Tensor | None = None,
                  epochs: int = 300) -> dict[str, float]:
    """The second stage of TAD as a separate phase: ``epochs`` more Adam steps of the students on observations
    ``obs [m, n, d]`` (e.g. a batch of env observations; ``avail [m, n, A_max]``) with the configured
    ``distill_loss``; the greedy targets need only observations, ``soft``/``hard`` draw the teacher's actions on
    ``obs`` once (with the agent's generator). Returns ``distill_loss`` after the phase. Not called by the trainer:
    run it after training when the students must match a teacher that converged late."""
    from .core._checks import check_int

    epochs = check_int(epochs, "epochs", minimum=0)
    cfg = agent.config
    if not getattr(agent, "tad", False):
        raise ValueError("final_distill needs a TAD-PPO agent (config.policy='tad')")
    with torch.no_grad():
        actions, _ = agent.actors.sample(obs, avail, generator=agent.generator)
    args = (agent.students, agent.actors, obs, actions, avail)
    params = list(agent.students.parameters())
    # a FRESH Adam: the training optimiser's second moments remember the large early gradients, so its steps on
    # the small late gradients of a nearly fitted one-hot target are tiny (measured: J 10.85 -> 10.90 in 300
    # steps on climbing seed 2, against 11.0 with a fresh optimiser)
    optimizer = torch.optim.Adam(params, lr=cfg.distill_lr, eps=cfg.opti_eps)
    for _ in range(epochs):
        loss = distillation_loss(*args, kind=cfg.distill_loss, keep=cfg.distill_keep)
        optimizer.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(params, cfg.max_grad_norm)
        optimizer.step()
    with torch.no_grad():
        return {"distill_loss": float(distillation_loss(*args, kind=cfg.distill_loss, keep=cfg.distill_keep))}
