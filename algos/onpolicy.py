"""The on-policy family (MAPPO, IPPO, HAPPO, HATRPO, HAA2C) as one agent built from shared parts.

Everything but the actor update is common: actors (:class:`MultiAgentActors`), a centralised ``V(state)``
or decentralised ``V_i(o_i)`` critic, value normalisation (de-normalised before GAE), GAE with truncation
bootstrapping, the clipped Huber value loss. The actor update is chosen by ``config.actor_update``
(see :mod:`seqmarl.algos.actor_updates`):

* ``joint_clip`` — every agent maximises its own clipped ratio against the same advantages at once
  (MAPPO/IPPO, theory.md §1.3 eq. 5);
* ``sequential_clip`` — HAPPO (ICLR22 eq. 11): agents in a (random) order, each weighted by the product of
  the already-updated agents' ratios ("factor", the M of eq. 10);
* ``sequential_a2c`` — HAA2C: the same factor, no clipping;
* ``sequential_trust_region`` — HATRPO (ICLR22 eq. 7-8): per-agent natural step with CG, KL threshold and
  backtracking line search.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import torch
from torch import nn

from seqmarl.envs.base import EnvSpec, Step

from . import actor_updates
from .configs import OnPolicyConfig
from .core.buffer import RolloutBuffer, minibatch_indices
from .core.losses import value_loss
from .core.networks import BoxSpace, Critic, DiscreteSpace, MultiAgentActors
from .core.value_norm import ValueNorm

Tensor = torch.Tensor


class DecentralisedCritic(nn.Module):
    """``V_i(o_i)`` for every agent: one shared network or one per agent; ``obs [..., n, d] -> [..., n]``."""

    def __init__(self, n_agents: int, obs_dim: int, hidden: tuple[int, ...], activation: str, share: bool,
                 device: torch.device) -> None:
        super().__init__()
        self.share = share
        count = 1 if share else n_agents
        self.nets = nn.ModuleList([Critic(obs_dim, hidden, activation=activation, device=device) for _ in range(count)])

    def forward(self, obs: Tensor) -> Tensor:
        if self.share:
            return self.nets[0](obs)
        return torch.stack([net(obs[..., i, :]) for i, net in enumerate(self.nets)], dim=-1)


def _action_spaces(spec: EnvSpec) -> list[DiscreteSpace | BoxSpace]:
    out: list[DiscreteSpace | BoxSpace] = []
    for space in spec.agent_spaces:
        out.append(DiscreteSpace(space.n) if space.is_discrete else BoxSpace(space.dim))
    return out


class OnPolicyAgent:
    """The shared on-policy agent; ``config`` selects MAPPO/IPPO/HAPPO/HATRPO/HAA2C behaviour.

    Interface (``seqmarl.algos.Algorithm``): :meth:`act`, :meth:`values`, :meth:`update`,
    :meth:`state_dict`, :meth:`load_state_dict`.
    """

    def __init__(self, spec: EnvSpec, config: OnPolicyConfig, device: str | torch.device = "cpu", seed: int = 0):
        if not isinstance(config, OnPolicyConfig):
            raise TypeError(f"config must be an OnPolicyConfig, got {type(config).__name__}")
        config.validate()
        self.spec = spec
        self.config = config
        self.device = torch.device(device)
        self.generator = torch.Generator(device=self.device)
        self.generator.manual_seed(int(seed))
        torch.manual_seed(int(seed))  # network initialisation (torch.nn.init has no generator argument)
        n = spec.n_agents
        self.actors = MultiAgentActors(
            n, spec.obs_dim, _action_spaces(spec), share=config.share_param, agent_id=config.agent_id,
            hidden=tuple(config.hidden), activation=config.activation, log_std_init=config.log_std_init,
            device=self.device,
        )
        if config.critic == "centralised":
            self.critic: nn.Module = Critic(spec.state_dim, tuple(config.hidden), activation=config.activation,
                                            device=self.device)
        else:
            self.critic = DecentralisedCritic(n, spec.obs_dim, tuple(config.hidden), config.activation,
                                              config.share_param, self.device)
        self.value_norm = ValueNorm((), device=self.device) if config.use_value_norm else None
        if config.share_param:
            self.actor_optimizers = [torch.optim.Adam(self.actors.parameters(), lr=config.lr, eps=1e-5)]
        else:
            self.actor_optimizers = [torch.optim.Adam(self.actors.parameters_of(i), lr=config.lr, eps=1e-5) for i in range(n)]
        self.critic_optimizer = torch.optim.Adam(self.critic.parameters(), lr=config.critic_lr, eps=1e-5)
        self.n_updates = 0

    # ------------------------------------------------------------------ acting
    @property
    def discrete(self) -> bool:
        return self.spec.is_discrete

    @torch.no_grad()
    def act(self, step: Step, deterministic: bool = False) -> tuple[Tensor, Tensor]:
        """Sample joint actions ``[B, n]`` (``[B, n, d]`` continuous) and their per-agent log-probs ``[B, n]``."""
        avail = step.avail_actions if self.discrete else None
        return self.actors.sample(step.obs, avail, generator=self.generator, deterministic=deterministic)

    @torch.no_grad()
    def values(self, state: Tensor, obs: Tensor) -> Tensor:
        """Raw critic output (normalised when value normalisation is on): ``[B]`` centralised (from ``state``)
        or ``[B, n]`` decentralised (from ``obs``). The buffer de-normalises it before GAE."""
        return self.critic(state) if self.config.critic == "centralised" else self.critic(obs)

    def make_buffer(self, rollout_length: int, num_envs: int) -> RolloutBuffer:
        """A :class:`RolloutBuffer` shaped for this agent and env spec."""
        spec = self.spec
        return RolloutBuffer(
            rollout_length, num_envs, spec.n_agents, spec.obs_dim, spec.state_dim,
            action_shape=() if spec.is_discrete else (spec.act_dim,),
            n_actions_max=spec.max_actions if spec.is_discrete else None, device=self.device,
            critic="centralised" if self.config.critic == "centralised" else "per_agent",
        )

    # ------------------------------------------------------------------ learning
    def update(self, buffer: RolloutBuffer) -> dict[str, float]:
        """One training iteration on a full ``buffer``: GAE on de-normalised values (truncated episodes
        bootstrap from ``V(final_state)``), actor update, critic update. Returns metrics."""
        buffer.compute_returns(self.config.gamma, self.config.gae_lambda, self.value_norm)
        batch = actor_updates.from_buffer(buffer, self.spec.n_agents)
        metrics = actor_updates.run(self, batch)
        metrics.update(self._update_critic(batch))
        self.n_updates += 1
        return metrics

    def _update_critic(self, batch: "actor_updates.Batch") -> dict[str, float]:
        cfg = self.config
        returns = batch.returns
        if self.value_norm is not None:
            self.value_norm.update(returns)
        n = returns.shape[0]
        total = 0.0
        count = 0
        for _ in range(cfg.critic_epoch):
            for idx in minibatch_indices(n, cfg.critic_num_mini_batch, self.generator, self.device):
                inp = batch.state[idx] if cfg.critic == "centralised" else batch.obs[idx]
                pred = self.critic(inp)
                target = returns[idx]
                if self.value_norm is not None:
                    target = self.value_norm.normalize(target).to(pred.dtype)
                loss = value_loss(pred, batch.raw_values[idx], target, cfg.value_clip,
                                  huber_delta=cfg.huber_delta if cfg.use_huber else None,
                                  clipped=cfg.use_clipped_value_loss)
                self.critic_optimizer.zero_grad()
                loss.backward()
                nn.utils.clip_grad_norm_(self.critic.parameters(), cfg.max_grad_norm)
                self.critic_optimizer.step()
                total += float(loss.detach())
                count += 1
        return {"critic_loss": total / max(count, 1)}

    # ------------------------------------------------------------------ persistence
    def state_dict(self) -> dict[str, Any]:
        return {
            "config": asdict(self.config),
            "actors": self.actors.state_dict(),
            "critic": self.critic.state_dict(),
            "value_norm": None if self.value_norm is None else self.value_norm.state_dict(),
            "actor_optimizers": [o.state_dict() for o in self.actor_optimizers],
            "critic_optimizer": self.critic_optimizer.state_dict(),
            "generator": self.generator.get_state(),
            "n_updates": self.n_updates,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.actors.load_state_dict(state["actors"])
        self.critic.load_state_dict(state["critic"])
        if self.value_norm is not None and state["value_norm"] is not None:
            self.value_norm.load_state_dict(state["value_norm"])
        for opt, s in zip(self.actor_optimizers, state["actor_optimizers"]):
            opt.load_state_dict(s)
        self.critic_optimizer.load_state_dict(state["critic_optimizer"])
        self.generator.set_state(state["generator"].cpu() if hasattr(state["generator"], "cpu") else state["generator"])
        self.n_updates = int(state["n_updates"])
