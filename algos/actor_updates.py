"""Actor updates of the on-policy family — the one place where MAPPO and the HA* algorithms differ.

Notation (theory.md §1.10-§1.11, §2.3): ``r^i = pi^i_new(a^i|o^i) / pi^i_old(a^i|o^i)``, ``A`` the (normalised)
GAE advantage, ``M = factor * A`` with ``factor = prod_{j updated before i} r^j`` evaluated after agent j's update
(detached; HARL on_policy_ha_runner).

* joint clip (MAPPO/IPPO):        max  mean_i mean_b min(r^i A, clip(r^i, 1±eps) A)  + c_H H
* sequential clip (HAPPO, eq. 11): max  mean_b factor * min(r^i A, clip(r^i) A)       + c_H H^i
* sequential a2c (HAA2C):          max  mean_b factor * r^i A                         + c_H H^i
* sequential trust region (HATRPO, eq. 7-8): natural step on  mean_b factor * r^i A  with
  E_s KL(pi^i_old || pi^i) <= delta, CG for H^{-1} g, backtracking with the HARL acceptance test.
* joint ratio clip (AR-MAPPO, Fu et al. ICML22): max  mean_b min(R A, clip(R, 1±eps) A) + c_H sum_i H^i  with
  R = prod_i r^i = exp(sum_i (log pi^i - log pi^i_old)), each pi^i the agent's conditional given the earlier
  agents' actions in the sample's execution order (:class:`~seqmarl.algos.core.joint_policy.JointPolicy`; for a
  product policy the marginals), H^i its conditional entropy given the taken earlier actions, A the centralised
  GAE advantage.
* TAD sub-step clip (TAD-PPO, Ye et al. arXiv 2207.11143): max  mean_{b,k} min(r_k A_k, clip(r_k, 1±eps) A_k)
  + c_H mean_{b,k} H_k  — every sub-step k of the transformed MDP is one PPO sample: r_k the ratio of agent k's
  conditional given the earlier agents' actions, A_k its own sub-step GAE advantage (:mod:`seqmarl.algos.tad_ppo`).

* MAT clip (MAT/MAT-Dec, Wen et al. NeurIPS22): min  -mean_{b,i} min(r^i A^i, clip(r^i, 1±eps) A^i)
  - c_H mean_{b,i} H^i + c_V L_V  — ONE loss and ONE optimiser for policy and the encoder's values; r^i is
  agent i's own conditional ratio (no factor, no joint ratio), A^i the joint GAE advantage with baseline
  V_i (:func:`_mat_clip`).

Recurrent agents (``config.use_rnn``; MAPPO/HARL recurrent policy): the batch keeps its flat ``N = T * B``
layout (sample ``t * B + b``) plus :class:`Sequences`. Every log-prob, entropy and distribution is recomputed
by replaying the GRU over the whole rollout in time order from the stored state at ``t = 0``, zeroing it where
``episode_start`` is set (:func:`replay_distribution`); minibatches are whole environment sequences
(:func:`minibatches`: all T steps of a subset of environments, in the flat ``t * B + b`` order), so the
objectives below are the same per-sample expressions on the same flat tensors. Chunked sequences (HARL's
``data_chunk_length``) are not implemented: the chunk is the whole rollout.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterator

import torch
from torch import nn

from .core._checks import check_flag_tensor
from .core.buffer import minibatch_indices, normalise_advantages
from .core.losses import aggregate_ratio, ppo_clip_objective, value_loss
from .core.networks import MultiAgentActors
from .core.trust_region import (
    backtracking_line_search,
    fisher_vector_product,
    flat_grad,
    flat_params,
    natural_step,
    set_flat_params,
)

if TYPE_CHECKING:  # pragma: no cover
    from .core.buffer import RolloutBuffer
    from .onpolicy import OnPolicyAgent

Tensor = torch.Tensor


@dataclass
class Sequences:
    """What a recurrent replay needs besides the flat batch (time-major ``[T, B]`` layout)."""

    T: int
    B: int
    actor_h0: Tensor  # [B, n, H] actor states entering t = 0
    critic_h0: Tensor  # [B, H] (centralised) or [B, n, H] (decentralised) critic states entering t = 0
    episode_start: Tensor  # [T, B] bool: zero the state before step t

    def time_major(self, x: Tensor) -> Tensor:
        """A flat ``[N, ...]`` field viewed as ``[T, B, ...]``."""
        return x.reshape((self.T, self.B) + tuple(x.shape[1:]))


@dataclass
class Batch:
    """A rollout flattened over time and environments: leading axis ``N = T * B`` (sample ``t * B + b``)."""

    obs: Tensor  # [N, n, obs_dim]
    state: Tensor  # [N, state_dim]
    avail: Tensor | None  # [N, n, A_max]
    actions: Tensor  # [N, n] or [N, n, d]
    old_log_probs: Tensor  # [N, n] (or [N, n, d] per-dim for continuous)
    advantages: Tensor  # [N, n] (broadcast from a centralised [N])
    returns: Tensor  # [N] or [N, n]
    raw_values: Tensor  # [N] or [N, n]
    seq: Sequences | None = None  # recurrent agents only
    order: Tensor | None = None  # [N, n] execution orders (random-order auto-regressive agents only)
    active: Tensor | None = None  # [N, n] bool, agent alive when it acted; None = every agent active (the default)


def from_buffer(buffer: "RolloutBuffer", n_agents: int, recurrent: bool = False) -> Batch:
    """Flatten a full buffer (returns computed) to ``N = T * B`` samples; a centralised advantage ``[N]`` is
    broadcast to every agent ``[N, n]``. ``recurrent`` keeps the stored t = 0 rnn states and the
    ``episode_start`` flags for the replay (the buffer must hold them)."""
    adv = buffer.flat("advantages")
    if adv.dim() == 1:
        adv = adv.unsqueeze(-1).expand(-1, n_agents)
    seq = None
    if recurrent:
        if buffer.actor_rnn is None or buffer.critic_rnn is None or buffer.episode_start is None:
            raise ValueError("recurrent=True needs a buffer built with actor_rnn_shape and critic_rnn_shape")
        seq = Sequences(T=buffer.T, B=buffer.num_envs, actor_h0=buffer.actor_rnn[0].clone(),
                        critic_h0=buffer.critic_rnn[0].clone(), episode_start=buffer.episode_start.clone())
    return Batch(
        obs=buffer.flat("obs"), state=buffer.flat("state"),
        avail=buffer.flat("avail_actions") if buffer.avail_actions is not None else None,
        actions=buffer.flat("actions"), old_log_probs=buffer.flat("log_probs"), advantages=adv.contiguous(),
        returns=buffer.flat("returns"), raw_values=buffer.flat("values"), seq=seq,
        order=buffer.flat("orders") if getattr(buffer, "orders", None) is not None else None,
        active=_inactive_or_none(buffer.flat("active")),
    )


def _inactive_or_none(active: Tensor) -> Tensor | None:
    """The active mask when some agent was inactive (dead) at some step, else None (the unmasked code path)."""
    return None if bool(active.all()) else active


def active_mean(x: Tensor, active: Tensor | None) -> Tensor:
    """HARL's active-mask mean (``use_policy_active_masks``): ``sum(x * m) / max(sum(m), 1)`` over the samples where
    the agent was alive when it acted (``m`` = ``active``, broadcast to ``x``); the plain mean when ``active`` is
    None. A minibatch with no active entry contributes 0 (no gradient)."""
    if active is None:
        return x.mean()
    m = check_flag_tensor(active, "active")
    try:
        m = torch.broadcast_to(m, x.shape).to(x.dtype)
    except RuntimeError as exc:
        raise ValueError(f"active of shape {tuple(active.shape)} does not broadcast to x's {tuple(x.shape)}") from None
    return (x * m).sum() / m.sum().clamp(min=1.0)


def _clip_objective(ratio: Tensor, adv: Tensor, clip: float, active: Tensor | None,
                    weight: Tensor | None = None) -> Tensor:
    """:func:`ppo_clip_objective` (its own mean when every agent was active) or its active-mask mean."""
    if active is None:
        return ppo_clip_objective(ratio, adv, clip, weight=weight)
    return active_mean(ppo_clip_objective(ratio, adv, clip, weight=weight, reduction="none"), active)


def _active(batch: Batch, idx: Tensor | slice, i: int | None = None) -> Tensor | None:
    """``batch.active[idx]`` (``[m, n]``) or agent ``i``'s column ``[m]``; None when every agent was active."""
    if batch.active is None:
        return None
    return batch.active[idx] if i is None else batch.active[idx, i]


# ---------------------------------------------------------------------------------------------- sequences
def sequence_indices(envs: Tensor, T: int, B: int) -> Tensor:
    """Flat indices ``t * B + e`` of all T steps of environments ``envs``, time-major: ``[T * len(envs)]``."""
    steps = torch.arange(T, device=envs.device).unsqueeze(1) * B
    return (steps + envs.unsqueeze(0)).reshape(-1)


def minibatches(agent: "OnPolicyAgent", batch: Batch, num_minibatch: int) -> list[Tensor]:
    """Flat sample indices of ``num_minibatch`` random minibatches. Feed-forward: a partition of the N samples
    (:func:`minibatch_indices`). Recurrent: a partition of the B environments, each minibatch holding all T
    steps of its environments (:func:`sequence_indices`), so sequences stay intact."""
    n = batch.advantages.shape[0]
    if batch.seq is None:
        return minibatch_indices(n, num_minibatch, agent.generator, agent.device)
    T, B = batch.seq.T, batch.seq.B
    if num_minibatch > B:
        raise ValueError(f"use_rnn=True: minibatches are whole environment sequences, so num_mini_batch must be "
                         f"<= num_envs = {B}, got {num_minibatch}")
    groups = minibatch_indices(B, num_minibatch, agent.generator, agent.device)
    return [sequence_indices(g, T, B) for g in groups]


def envs_of(batch: Batch, idx: Tensor | slice) -> Tensor | slice:
    """The environments whose sequences the flat indices ``idx`` select (``idx`` from :func:`minibatches`)."""
    assert batch.seq is not None
    T, B = batch.seq.T, batch.seq.B
    if isinstance(idx, slice):
        if idx != slice(None):
            raise ValueError("a recurrent replay takes whole sequences: idx must be slice(None) or from minibatches()")
        return idx
    m = idx.numel() // T
    envs = idx[:m]
    if m * T != idx.numel() or not torch.equal(idx, sequence_indices(envs, T, B)):
        raise ValueError("a recurrent replay takes whole environment sequences; build idx with minibatches()")
    return envs


def _replay_inputs(agent: "OnPolicyAgent", i: int, batch: Batch, idx: Tensor | slice):
    """Agent i's time-major obs ``[T, E, d]``, actions, avail and ``rnn=(h0 [E, H], episode_start [T, E])``."""
    seq = batch.seq
    assert seq is not None
    envs = envs_of(batch, idx)
    obs = seq.time_major(batch.obs)[:, envs][:, :, i]
    actions = seq.time_major(batch.actions)[:, envs][:, :, i]
    avail = None if (batch.avail is None or not agent.discrete) else seq.time_major(batch.avail)[:, envs][:, :, i]
    rnn = (seq.actor_h0[envs][:, i], seq.episode_start[:, envs])
    return obs, actions, avail, rnn


def replay_distribution(agent: "OnPolicyAgent", i: int, batch: Batch, idx: Tensor | slice = slice(None)):
    """Agent i's action distributions on ``batch[idx]`` with its CURRENT parameters. Feed-forward: over the
    samples ``[m]``. Recurrent: the GRU replayed over the selected environments' whole sequences from the stored
    t = 0 state (reset at episode starts): batch shape ``[T, E]``, i.e. ``[m]`` in the flat order once reshaped."""
    if batch.seq is None:
        avail_i = None if (batch.avail is None or not agent.discrete) else batch.avail[idx, i]
        return agent.actors.distribution_agent(i, batch.obs[idx, i], avail_i)
    obs, _, avail, rnn = _replay_inputs(agent, i, batch, idx)
    return agent.actors.distribution_agent(i, obs, avail, rnn=rnn)


def _flat(x: Tensor) -> Tensor:
    """``[T, E, ...] -> [T * E, ...]`` (the flat ``t * B + e`` order of :func:`sequence_indices`)."""
    return x.reshape((-1,) + tuple(x.shape[2:]))


def _agent_log_prob(agent: "OnPolicyAgent", i: int, batch: Batch, idx: Tensor | slice) -> Tensor:
    """Agent ``i``'s log-probs on ``batch[idx]``: ``[m]`` (discrete) or ``[m, d_max]`` per-dim (continuous)."""
    actors = agent.actors
    if batch.seq is not None:
        obs, actions, avail, rnn = _replay_inputs(agent, i, batch, idx)
        return _flat(actors.log_prob_agent(i, obs, actions, avail, per_dim=not agent.discrete, rnn=rnn))
    obs_i = batch.obs[idx, i]
    if agent.discrete:
        avail_i = None if batch.avail is None else batch.avail[idx, i]
        return actors.log_prob_agent(i, obs_i, batch.actions[idx, i], avail_i)
    return actors.log_prob_agent(i, obs_i, batch.actions[idx, i], per_dim=True)


def _ratio(agent: "OnPolicyAgent", new_lp: Tensor, old_lp: Tensor, i: int) -> Tensor:
    """Per-sample ratio; continuous actions aggregate per-dimension ratios (``prod`` or ``mean``)."""
    if agent.discrete:
        return torch.exp(new_lp - old_lp)
    mask = agent.actors.valid[i]
    return aggregate_ratio(new_lp - old_lp, agent.config.ratio_aggregation, mask)


def _agent_entropy(agent: "OnPolicyAgent", i: int, batch: Batch, idx: Tensor | slice) -> Tensor:
    if batch.seq is not None:
        obs, _, avail, rnn = _replay_inputs(agent, i, batch, idx)
        return _flat(agent.actors.entropy_agent(i, obs, avail, rnn=rnn))
    avail_i = None if (batch.avail is None or not agent.discrete) else batch.avail[idx, i]
    return agent.actors.entropy_agent(i, batch.obs[idx, i], avail_i)


def _agent_log_prob_and_entropy(agent: "OnPolicyAgent", i: int, batch: Batch, idx: Tensor | slice) -> tuple[Tensor, Tensor]:
    """:func:`_agent_log_prob` and :func:`_agent_entropy` from one forward pass of agent ``i``'s actor (actors
    without ``log_prob_and_entropy_agent`` fall back to the two calls)."""
    actors = agent.actors
    both = getattr(actors, "log_prob_and_entropy_agent", None)
    if both is None:
        return _agent_log_prob(agent, i, batch, idx), _agent_entropy(agent, i, batch, idx)
    if batch.seq is not None:
        obs, actions, avail, rnn = _replay_inputs(agent, i, batch, idx)
        lp, ent = both(i, obs, actions, avail, per_dim=not agent.discrete, rnn=rnn)
        return _flat(lp), _flat(ent)
    obs_i = batch.obs[idx, i]
    if agent.discrete:
        avail_i = None if batch.avail is None else batch.avail[idx, i]
        return both(i, obs_i, batch.actions[idx, i], avail_i)
    return both(i, obs_i, batch.actions[idx, i], per_dim=True)


def _every_agent_log_prob_and_entropy(agent: "OnPolicyAgent", batch: Batch, idx: Tensor | slice) -> tuple[list[Tensor], list[Tensor]]:
    """Every agent's log-probs and entropies on ``batch[idx]`` (lists indexed by agent, entries as
    :func:`_agent_log_prob_and_entropy`'s). Feed-forward :class:`MultiAgentActors`: one call for all agents (a
    shared actor runs once on the ``[m, n, obs_dim]`` block); otherwise agent by agent."""
    if batch.seq is None and isinstance(agent.actors, MultiAgentActors):
        avail = None if (batch.avail is None or not agent.discrete) else batch.avail[idx]
        lps, ents = agent.actors.log_prob_and_entropy(batch.obs[idx], batch.actions[idx], avail,
                                                      per_dim=not agent.discrete)
        return list(lps.unbind(1)), list(ents.unbind(1))
    pairs = [_agent_log_prob_and_entropy(agent, i, batch, idx) for i in range(agent.spec.n_agents)]
    return [lp for lp, _ in pairs], [ent for _, ent in pairs]


def _old_log_probs(agent: "OnPolicyAgent", batch: Batch) -> Tensor:
    """Per-agent old log-probs ``[N, n]`` (discrete) or ``[N, n, d]`` per-dim (continuous), recomputed exactly
    from the pre-update actors so that the initial ratio is exactly 1 (recurrent: by the replay)."""
    with torch.no_grad():
        if agent.config.actor_update in ("joint_ratio_clip", "tad_substep_clip"):
            return _joint_log_probs(agent, batch, slice(None))
        if batch.seq is not None:
            return torch.stack([_agent_log_prob(agent, i, batch, slice(None)) for i in range(agent.spec.n_agents)],
                               dim=1)
        if agent.discrete:
            return agent.actors.log_prob(batch.obs, batch.actions, batch.avail)
        return agent.actors.log_prob(batch.obs, batch.actions, per_dim=True)


def _step(agent: "OnPolicyAgent", optimizer: torch.optim.Optimizer, params: list[nn.Parameter], loss: Tensor) -> None:
    optimizer.zero_grad()
    loss.backward()
    nn.utils.clip_grad_norm_(params, agent.config.max_grad_norm)
    optimizer.step()


def step_actors(agent: "OnPolicyAgent", params: list[nn.Parameter], loss: Tensor) -> None:
    """One gradient step of every actor optimiser on ``loss`` (the updates of all agents at once), the gradient
    norm of ``params`` clipped to ``config.max_grad_norm``."""
    for opt in agent.actor_optimizers:
        opt.zero_grad()
    loss.backward()
    nn.utils.clip_grad_norm_(params, agent.config.max_grad_norm)
    for opt in agent.actor_optimizers:
        opt.step()


def run(agent: "OnPolicyAgent", batch: Batch) -> dict[str, float]:
    """Dispatch on ``agent.config.actor_update``; advantages normalised per ``config.adv_norm``."""
    cfg = agent.config
    if cfg.adv_norm == "batch":  # statistics over the active entries (HARL)
        batch.advantages = normalise_advantages(batch.advantages, batch.active)
    if cfg.actor_update == "mat_clip":  # MAT: policy and values in one loss (computes its own old log-probs)
        return _mat_clip(agent, batch)
    batch.old_log_probs = _old_log_probs(agent, batch)
    if cfg.actor_update == "joint_clip":
        return _joint_clip(agent, batch)
    if cfg.actor_update == "joint_ratio_clip":
        return _joint_ratio_clip(agent, batch)
    if cfg.actor_update == "tad_substep_clip":  # TAD-PPO: PPO on the transformed MDP (algos/tad_ppo.py)
        from .tad_ppo import substep_clip

        return substep_clip(agent, batch)
    order = torch.arange(agent.spec.n_agents) if cfg.fixed_order else torch.randperm(
        agent.spec.n_agents, generator=agent.generator, device=agent.generator.device).cpu()
    order_list = [int(i) for i in order]
    if cfg.actor_update == "sequential_trust_region":
        metrics = _sequential_trust_region(agent, batch, order_list)
    elif cfg.granularity == "agent_outer":
        metrics = _sequential_agent_outer(agent, batch, order_list)
    else:
        metrics = _sequential_minibatch_outer(agent, batch, order_list)
    metrics["first_agent"] = float(order_list[0])
    return metrics


def _adv(agent: "OnPolicyAgent", adv: Tensor) -> Tensor:
    return normalise_advantages(adv) if agent.config.adv_norm == "minibatch" else adv


def _joint_clip(agent: "OnPolicyAgent", batch: Batch) -> dict[str, float]:
    """MAPPO/IPPO: all agents at once, each with its own clipped ratio (theory.md §1.3 eq. 5)."""
    cfg = agent.config
    params = list(agent.actors.parameters())
    stats = {"policy_objective": 0.0, "entropy": 0.0}
    count = 0
    for _ in range(cfg.ppo_epoch):
        for idx in minibatches(agent, batch, cfg.actor_num_mini_batch):
            new_lps, ents = _every_agent_log_prob_and_entropy(agent, batch, idx)
            ratio = torch.stack([_ratio(agent, new_lps[i], batch.old_log_probs[idx, i], i)
                                 for i in range(agent.spec.n_agents)], dim=-1)
            active = _active(batch, idx)
            objective = _clip_objective(ratio, _adv(agent, batch.advantages[idx]), cfg.clip, active)
            entropy = active_mean(torch.stack(ents, dim=-1), active)
            loss = -(objective + cfg.entropy_coef * entropy)
            step_actors(agent, params, loss)
            stats["policy_objective"] += float(objective.detach())
            stats["entropy"] += float(entropy.detach())
            count += 1
    return {k: v / max(count, 1) for k, v in stats.items()}


def _joint_inputs(agent: "OnPolicyAgent", batch: Batch, idx: Tensor | slice) -> tuple[Tensor, Tensor, Tensor | None, Tensor | None]:
    """``(obs, actions, avail, order)`` of ``batch[idx]`` for the :class:`JointPolicy` calls (avail: discrete only)."""
    avail = None if (batch.avail is None or not agent.discrete) else batch.avail[idx]
    order = None if batch.order is None else batch.order[idx]
    return batch.obs[idx], batch.actions[idx], avail, order


def _joint_log_probs(agent: "OnPolicyAgent", batch: Batch, idx: Tensor | slice) -> Tensor:
    """Per-agent (conditional) log-probs ``[m, n]`` of the sampled joint actions, teacher-forced in each sample's
    execution order (continuous product policies: summed over action dimensions)."""
    obs, actions, avail, order = _joint_inputs(agent, batch, idx)
    return agent.actors.log_prob(obs, actions, avail, order=order)


def joint_ratio(new_log_probs: Tensor, old_log_probs: Tensor) -> Tensor:
    """The joint ratio ``R = prod_i r^i = exp(sum_i (log pi^i - log pi^i_old))``: ``[m, n]`` per-agent
    (conditional) log-probs -> ``[m]``."""
    return torch.exp((new_log_probs - old_log_probs).sum(-1))


def _joint_ratio_clip(agent: "OnPolicyAgent", batch: Batch) -> dict[str, float]:
    """AR-MAPPO: PPO clip on the JOINT ratio ``R = exp(sum_i (log pi^i - log pi^i_old))`` against the centralised
    advantage, entropy bonus ``c_H * sum_i H^i`` (``config.ar_entropy``: the conditional entropies given the taken
    earlier actions, or Fu-code's "counterfactual" entropies ``H(pi^i(. | o^i, 0))`` with the earlier actions
    zeroed). Epochs and minibatches as MAPPO's; one optimiser step per minibatch."""
    cfg = agent.config
    actors = agent.actors
    params = [p for p in actors.parameters() if p.requires_grad]
    stats = {"policy_objective": 0.0, "entropy": 0.0, "clip_fraction": 0.0, "joint_ratio_max": 0.0}
    count = 0
    for _ in range(cfg.ppo_epoch):
        for idx in minibatches(agent, batch, cfg.actor_num_mini_batch):
            obs, actions, avail, order = _joint_inputs(agent, batch, idx)
            if hasattr(actors, "log_prob_and_entropy"):  # one forward pass for both
                new_lp, ents = actors.log_prob_and_entropy(obs, actions, avail, order=order)
            else:
                new_lp = actors.log_prob(obs, actions, avail, order=order)
                ents = actors.entropy(obs, avail, order=order, actions=actions)
            ratio = joint_ratio(new_lp, batch.old_log_probs[idx])  # [m]
            adv = _adv(agent, batch.advantages[idx, 0])  # centralised: every agent's column is the same
            objective = ppo_clip_objective(ratio, adv, cfg.clip)
            if cfg.ar_entropy == "counterfactual":  # Fu-code: every agent's distribution as if it acted first
                ents = actors.counterfactual_entropy(obs, avail)
            entropy = ents.sum(-1).mean()
            loss = -(objective + cfg.entropy_coef * entropy)
            step_actors(agent, params, loss)
            with torch.no_grad():
                stats["clip_fraction"] += float(((ratio - 1.0).abs() > cfg.clip).float().mean())
                stats["joint_ratio_max"] = max(stats["joint_ratio_max"], float(ratio.max()))
            stats["policy_objective"] += float(objective.detach())
            stats["entropy"] += float(entropy.detach())
            count += 1
    out = {k: v / max(count, 1) for k, v in stats.items() if k != "joint_ratio_max"}
    out["joint_ratio_max"] = stats["joint_ratio_max"]
    return out


def _sequential_objective(agent: "OnPolicyAgent", i: int, batch: Batch, idx: Tensor | slice, factor: Tensor) -> tuple[Tensor, Tensor]:
    cfg = agent.config
    new_lp, ent = _agent_log_prob_and_entropy(agent, i, batch, idx)
    ratio = _ratio(agent, new_lp, batch.old_log_probs[idx, i], i)
    adv = _adv(agent, batch.advantages[idx, i])
    active = _active(batch, idx, i)
    if cfg.actor_update == "sequential_clip":
        objective = _clip_objective(ratio, adv, cfg.clip, active, weight=factor)
    else:  # sequential_a2c: no clipping
        objective = active_mean(factor * ratio * adv, active)
    entropy = active_mean(ent, active)
    return objective, entropy


@torch.no_grad()
def _ratio_full(agent: "OnPolicyAgent", i: int, batch: Batch, idx: Tensor | slice = slice(None)) -> Tensor:
    new_lp = _agent_log_prob(agent, i, batch, idx)
    return _ratio(agent, new_lp, batch.old_log_probs[idx, i], i)


def _advance_factor(agent: "OnPolicyAgent", factor: Tensor, i: int, batch: Batch, idx: Tensor | slice = slice(None)) -> Tensor:
    """``factor <- factor * r^i`` after agent i's update (HARL); unchanged with ``config.simultaneous``."""
    if agent.config.simultaneous:
        return factor
    return factor * _ratio_full(agent, i, batch, idx)


def _trainable(agent: "OnPolicyAgent", i: int) -> list[nn.Parameter]:
    """Agent i's parameters that require gradients (frozen ones, e.g. a fixed log-std, are left alone)."""
    return [p for p in agent.actors.parameters_of(i) if p.requires_grad]


def _sequential_agent_outer(agent: "OnPolicyAgent", batch: Batch, order: list[int]) -> dict[str, float]:
    """HAPPO/HAA2C, official granularity: agent i runs all its epochs, then the factor is updated."""
    cfg = agent.config
    n = batch.advantages.shape[0]
    factor = torch.ones(n, device=agent.device)
    stats = {"policy_objective": 0.0, "entropy": 0.0}
    count = 0
    for i in order:
        params = _trainable(agent, i)
        for _ in range(cfg.ppo_epoch):
            for idx in minibatches(agent, batch, cfg.actor_num_mini_batch):
                objective, entropy = _sequential_objective(agent, i, batch, idx, factor[idx])
                _step(agent, agent.actor_optimizers[i], params, -(objective + cfg.entropy_coef * entropy))
                stats["policy_objective"] += float(objective.detach())
                stats["entropy"] += float(entropy.detach())
                count += 1
        factor = _advance_factor(agent, factor, i, batch)
    stats = {k: v / max(count, 1) for k, v in stats.items()}
    stats["factor_mean"] = float(factor.mean())
    return stats


def _sequential_minibatch_outer(agent: "OnPolicyAgent", batch: Batch, order: list[int]) -> dict[str, float]:
    """Variant: for every epoch and minibatch, all agents in order, each weighted by the ratios of the agents
    before it on that minibatch."""
    cfg = agent.config
    stats = {"policy_objective": 0.0, "entropy": 0.0}
    count = 0
    for _ in range(cfg.ppo_epoch):
        for idx in minibatches(agent, batch, cfg.actor_num_mini_batch):
            factor = torch.ones(idx.numel(), device=agent.device)
            for i in order:
                objective, entropy = _sequential_objective(agent, i, batch, idx, factor)
                _step(agent, agent.actor_optimizers[i], _trainable(agent, i), -(objective + cfg.entropy_coef * entropy))
                factor = _advance_factor(agent, factor, i, batch, idx)
                stats["policy_objective"] += float(objective.detach())
                stats["entropy"] += float(entropy.detach())
                count += 1
    return {k: v / max(count, 1) for k, v in stats.items()}


@dataclass(frozen=True)
class FrozenDistribution:
    """Detached COPIES of an action distribution's parameters: the ``pi_old`` of HATRPO's KL constraint.

    A distribution built by the live actor may hold views of its parameters (``DiagGaussian.log_std`` is a
    broadcast view of the ``log_std`` parameter), which follow every in-place update of the parameters
    (``set_flat_params`` in the line search): ``pi_old`` would then drift with ``pi_new`` and the
    ``log(sigma_new / sigma_old)`` term of the Gaussian KL would vanish. Cloning fixes ``pi_old`` for good.
    Categorical: ``probs``/``log_probs_all`` ``[..., A]``; Gaussian: ``mean``/``log_std``/``std`` ``[..., d]``.
    """

    probs: Tensor | None = None
    log_probs_all: Tensor | None = None
    mean: Tensor | None = None
    log_std: Tensor | None = None
    std: Tensor | None = None

    @classmethod
    def of(cls, dist) -> "FrozenDistribution":
        """Freeze a :class:`MaskedCategorical` or :class:`DiagGaussian` (``detach().clone()`` of every field)."""
        def frozen(x: Tensor) -> Tensor:
            return x.detach().clone()

        if hasattr(dist, "probs"):
            return cls(probs=frozen(dist.probs), log_probs_all=frozen(dist.log_probs_all))
        log_std = frozen(dist.log_std)
        return cls(mean=frozen(dist.mean), log_std=log_std, std=log_std.exp())


def _agent_kl(agent: "OnPolicyAgent", i: int, batch: Batch, old: FrozenDistribution) -> Tensor:
    r"""Mean over the batch of ``KL(pi^i_old(.|o) || pi^i(.|o))`` (the direction of HATRPO eq. 7; exact for
    categorical and Gaussian heads; recurrent agents: per (t, env) sample, the distributions given the replayed
    histories), with ``old`` FROZEN (:class:`FrozenDistribution`):

    * categorical: :math:`\sum_a p_{old}(a)\,(\log p_{old}(a) - \log p(a))` over available actions;
    * Gaussian, per dimension: :math:`\log\frac{\sigma}{\sigma_{old}} + \frac{\sigma_{old}^2 +
      (\mu_{old}-\mu)^2}{2\sigma^2} - \frac12`, summed over dimensions.

    The Fisher-vector product differentiates this twice; cuDNN's GRU has no double backward, so the replay is
    built without cuDNN."""
    if not isinstance(old, FrozenDistribution):
        raise TypeError(f"old must be a FrozenDistribution (detached copies), got {type(old).__name__}")
    no_cudnn = torch.backends.cudnn.flags(enabled=False) if batch.seq is not None else contextlib.nullcontext()
    with no_cudnn:
        new = replay_distribution(agent, i, batch)
    if agent.discrete:
        p_old = old.probs
        terms = torch.where(p_old > 0, p_old * (old.log_probs_all - new.log_probs_all), torch.zeros_like(p_old))
        return active_mean(terms.sum(-1), _active(batch, slice(None), i))
    var_old, var_new = old.std**2, new.std**2
    kl = new.log_std - old.log_std + (var_old + (old.mean - new.mean) ** 2) / (2 * var_new) - 0.5
    return active_mean(kl.sum(-1), _active(batch, slice(None), i))


def _sequential_trust_region(agent: "OnPolicyAgent", batch: Batch, order: list[int]) -> dict[str, float]:
    """HATRPO: per agent, natural step (eq. 8) on ``mean(factor * r * A)`` with backtracking line search."""
    cfg = agent.config
    n = batch.advantages.shape[0]
    factor = torch.ones(n, device=agent.device)
    accepted, kls, improves = 0, [], []
    everything = slice(None)
    for i in order:
        params = _trainable(agent, i)
        with torch.no_grad():  # pi_old: detached copies, NOT views of the parameters the line search moves
            old = FrozenDistribution.of(replay_distribution(agent, i, batch))

        def surrogate() -> Tensor:
            new_lp = _agent_log_prob(agent, i, batch, everything)
            ratio = _ratio(agent, new_lp, batch.old_log_probs[:, i], i)
            return active_mean(factor * ratio * batch.advantages[:, i], _active(batch, everything, i))

        g = flat_grad(surrogate(), params)
        if not bool(torch.isfinite(g).all()) or float(g.norm()) == 0.0:
            factor = _advance_factor(agent, factor, i, batch)
            continue
        fvp = fisher_vector_product(lambda: _agent_kl(agent, i, batch, old), params, cfg.fvp_damping)
        try:
            full_step, expected = natural_step(g, fvp, cfg.kl_threshold, cfg.cg_iters)
        except ValueError:
            factor = _advance_factor(agent, factor, i, batch)
            continue
        x0 = flat_params(params)

        def f(x: Tensor) -> Tensor:
            set_flat_params(params, x)
            with torch.no_grad():
                return surrogate()

        def kl_at(x: Tensor) -> Tensor:
            set_flat_params(params, x)
            with torch.no_grad():
                return _agent_kl(agent, i, batch, old)

        if float(expected) > 0 and torch.isfinite(expected):
            result = backtracking_line_search(f, x0, full_step, expected, accept_ratio=cfg.accept_ratio,
                                              backtrack_coeff=cfg.backtrack_coeff, max_steps=cfg.ls_steps,
                                              kl_fn=kl_at, kl_limit=cfg.kl_threshold)
            set_flat_params(params, result.x)
            accepted += int(result.accepted)
            if result.kl is not None and result.accepted:
                kls.append(result.kl)
                improves.append(result.improve)
        else:
            set_flat_params(params, x0)
        factor = _advance_factor(agent, factor, i, batch)
    return {
        "accepted_steps": float(accepted),
        "kl": float(sum(kls) / len(kls)) if kls else 0.0,
        "surrogate_improve": float(sum(improves) / len(improves)) if improves else 0.0,
        "factor_mean": float(factor.mean()),
    }


def _mat_clip(agent: "OnPolicyAgent", batch: Batch) -> dict[str, float]:
    r"""MAT (Wen et al. NeurIPS22; official ``mat/algorithms/mat/mat_trainer.py`` ppo_update): ONE optimiser step per
    minibatch on the combined loss

    .. math:: \mathcal L = -\frac{1}{mn}\sum_{b,i} \min\big(r^i_b A^i_b,\ \mathrm{clip}(r^i_b, 1\pm\epsilon)
              A^i_b\big) - c_H \frac{1}{mn}\sum_{b,i} H^i_b + c_V\, \mathcal L_V,

    with ``r^i = pi^i(a^i | o, a^{i_{<k}}) / pi^i_old(...)`` agent i's OWN conditional ratio (teacher-forced in the
    sample's order; no HAPPO factor, no joint ratio), ``A^i`` the GAE advantage of the shared reward with agent
    i's value baseline ``V_i`` from the encoder (the joint advantage, per agent; normalised per
    ``config.adv_norm``), ``H^i`` the conditional entropy, and ``L_V`` the clipped Huber value loss of the encoder's
    per-agent values against the (normalised) returns (:func:`~seqmarl.algos.core.losses.value_loss`, clip
    ``config.value_clip``). Log-probs, entropies and values come from one forward pass (``actors.evaluate``). The
    value normaliser folds in the returns once per update (``value_norm_update="per_iteration"``) or before every
    minibatch (``"per_minibatch"``, the official ``cal_value_loss``). Gradient norm clipped at ``max_grad_norm``
    over all parameters. With active masks (agents dead when they acted, e.g. SMAX), the three means run over the
    active ``(b, i)`` entries only (the official trainer's ``use_policy_active_masks``/``use_value_active_masks``)."""
    cfg = agent.config
    net = agent.actors
    params = [p for p in net.parameters() if p.requires_grad]
    optimizer = agent.actor_optimizers[0]
    with torch.no_grad():
        batch.old_log_probs = _joint_log_probs(agent, batch, slice(None))
    per_minibatch = cfg.value_norm_update == "per_minibatch"
    if agent.value_norm is not None and not per_minibatch:
        agent.value_norm.update(batch.returns)
    stats = {"policy_objective": 0.0, "entropy": 0.0, "critic_loss": 0.0, "clip_fraction": 0.0}
    count = 0
    for _ in range(cfg.ppo_epoch):
        for idx in minibatches(agent, batch, cfg.actor_num_mini_batch):
            obs, actions, avail, order = _joint_inputs(agent, batch, idx)
            new_lp, ents, values = net.evaluate(obs, actions, avail, order=order)  # each [m, n]
            ratio = torch.exp(new_lp - batch.old_log_probs[idx])
            active = _active(batch, idx)
            objective = _clip_objective(ratio, _adv(agent, batch.advantages[idx]), cfg.clip, active)
            entropy = active_mean(ents, active)
            target = batch.returns[idx]
            if agent.value_norm is not None:
                if per_minibatch:
                    agent.value_norm.update(target)
                target = agent.value_norm.normalize(target).to(values.dtype)
            v_loss = active_mean(value_loss(values, batch.raw_values[idx], target, cfg.value_clip,
                                            huber_delta=cfg.huber_delta if cfg.use_huber else None,
                                            clipped=cfg.use_clipped_value_loss, reduction="none"), active)
            loss = -objective - cfg.entropy_coef * entropy + cfg.value_loss_coef * v_loss
            optimizer.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(params, cfg.max_grad_norm)
            optimizer.step()
            with torch.no_grad():
                stats["clip_fraction"] += float(((ratio - 1.0).abs() > cfg.clip).float().mean())
            stats["policy_objective"] += float(objective.detach())
            stats["entropy"] += float(entropy.detach())
            stats["critic_loss"] += float(v_loss.detach())
            count += 1
    return {k: v / max(count, 1) for k, v in stats.items()}
