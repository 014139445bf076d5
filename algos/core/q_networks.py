"""Per-agent utility networks ``Q_i(tau_i, .)`` of the value-decomposition learners.

The PyMARL/EPyMARL agent (``src/modules/agents/rnn_agent.py``): input = observation, one-hot of the agent's
previous action (``obs_last_action: True``) and one-hot agent id (``obs_agent_id: True``); ``Linear -> ReLU ->
GRUCell(64) -> Linear`` to one utility per action; one network shared by all agents (the id tells them apart).
``use_rnn=False`` swaps the GRU for a second ``Linear -> ReLU`` layer (EPyMARL's feed-forward agent), for fully
observed tasks such as one-shot matrix games.

Shapes: acting takes one step, ``obs [B, n, d]``, ``last_action [B, n]`` (``-1`` = none: the first step),
``h [B, n, H]`` and returns ``(q [B, n, A], h_next)``; :meth:`unroll` takes a padded episode batch
``obs [B, T, n, d]``, ``actions [B, T-1, n]`` and returns ``q [B, T, n, A]`` from a zero initial state (PyMARL
unrolls from the episode start).
"""

from __future__ import annotations

import torch
from torch import nn

from ._checks import check_int
from .networks import MLP, GRUCore

Tensor = torch.Tensor


class QAgentNetwork(nn.Module):
    """Shared utility network (module docstring). ``n_actions`` is ``A_max`` (padding actions are masked by
    the env's ``avail_actions``)."""

    def __init__(self, obs_dim: int, n_agents: int, n_actions: int, hidden: int = 64, use_rnn: bool = True,
                 last_action: bool = True, agent_id: bool = True, device: torch.device | str | None = None) -> None:
        super().__init__()
        self.obs_dim = check_int(obs_dim, "obs_dim")
        self.n_agents = check_int(n_agents, "n_agents")
        self.n_actions = check_int(n_actions, "n_actions")
        self.hidden = check_int(hidden, "rnn_hidden")
        self.use_rnn, self.last_action, self.agent_id = bool(use_rnn), bool(last_action), bool(agent_id)
        in_dim = self.obs_dim + (self.n_actions if self.last_action else 0) + (self.n_agents if self.agent_id else 0)
        self.encoder = MLP(in_dim, (self.hidden,), device=device)
        self.core = GRUCore(self.hidden, self.hidden, device=device) if self.use_rnn else None
        self.body = None if self.use_rnn else MLP(self.hidden, (self.hidden,), device=device)
        self.head = nn.Linear(self.hidden, self.n_actions, device=device)

    @property
    def recurrent(self) -> bool:
        return self.use_rnn

    def initial_state(self, batch: int, device: torch.device | str | None = None) -> Tensor:
        """Zero hidden states ``[batch, n, H]`` (also returned, unused, by a feed-forward network)."""
        w = self.head.weight
        return torch.zeros(check_int(batch, "batch"), self.n_agents, self.hidden, device=device or w.device,
                           dtype=w.dtype)

    def _inputs(self, obs: Tensor, last_action: Tensor) -> Tensor:
        """``[..., n, in_dim]`` from ``obs [..., n, d]`` and ``last_action [..., n]`` (int, -1 = none)."""
        parts = [obs]
        if self.last_action:
            onehot = torch.nn.functional.one_hot(last_action.clamp(min=0), self.n_actions).to(obs.dtype)
            parts.append(onehot * (last_action >= 0).unsqueeze(-1).to(obs.dtype))
        if self.agent_id:
            eye = torch.eye(self.n_agents, device=obs.device, dtype=obs.dtype)
            parts.append(eye.expand(obs.shape[:-2] + (self.n_agents, self.n_agents)))
        return torch.cat(parts, dim=-1)

    def forward(self, obs: Tensor, last_action: Tensor, h: Tensor, episode_start: Tensor) -> tuple[Tensor, Tensor]:
        """One step for ``B`` envs: ``(q [B, n, A], h_next [B, n, H])``; ``h`` is zeroed where ``episode_start``."""
        B, n = obs.shape[0], self.n_agents
        if obs.dim() != 3 or obs.shape[1:] != (n, self.obs_dim):
            raise ValueError(f"obs must be [B, {n}, {self.obs_dim}], got {tuple(obs.shape)}")
        x = self.encoder(self._inputs(obs, last_action)).reshape(B * n, self.hidden)
        if self.core is None:
            return self.head(self.body(x)).reshape(B, n, self.n_actions), h
        starts = episode_start.bool().unsqueeze(1).expand(B, n).reshape(B * n)
        out, h_next = self.core(x, h.reshape(1, B * n, self.hidden), starts)
        return self.head(out).reshape(B, n, self.n_actions), h_next.reshape(B, n, self.hidden)

    def unroll(self, obs: Tensor, actions: Tensor) -> Tensor:
        """Utilities ``[B, T, n, A]`` along padded episodes ``obs [B, T, n, d]`` with taken ``actions [B, T-1, n]``
        (the previous action fed at step t is ``actions[:, t-1]``; none at t = 0)."""
        B, T, n = obs.shape[0], obs.shape[1], self.n_agents
        if actions.shape != (B, T - 1, n):
            raise ValueError(f"actions must be [B, T-1, n] = {(B, T - 1, n)}, got {tuple(actions.shape)}")
        last = torch.cat([torch.full((B, 1, n), -1, dtype=torch.int64, device=obs.device), actions], dim=1)
        x = self.encoder(self._inputs(obs, last))  # [B, T, n, H]
        if self.core is None:
            return self.head(self.body(x))
        seq = x.permute(1, 0, 2, 3).reshape(T, B * n, self.hidden)
        starts = torch.zeros(T, B * n, dtype=torch.bool, device=obs.device)
        starts[0] = True
        out, _ = self.core(seq, self.initial_state(B).reshape(1, B * n, self.hidden), starts)
        return self.head(out).reshape(T, B, n, self.n_actions).permute(1, 0, 2, 3)
