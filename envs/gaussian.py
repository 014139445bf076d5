"""The one-step differential game of HATRPO Fig. 1 (theory.md §1.5): two agents, one real action each,
shared reward ``r(a^1, a^2) = a^1 a^2``. Every episode is one step and ends ``terminated``; the
observation and state are the constant ``[1.0]``. With Gaussian policies ``a^i ~ N(mu^i, 1)`` the exact
objective is ``J = mu^1 mu^2`` (``seqmarl.theory.ProductGaussianGame``)."""

from __future__ import annotations

import math

import torch

from .base import AgentSpace, EnvSpec, MultiAgentEnv

__all__ = ["GaussianProductEnv"]


class GaussianProductEnv(MultiAgentEnv):
    """Batched ``r = a^1 a^2`` game; actions float ``[B, 2, 1]`` in ``[low, high]`` (unbounded by default)."""

    def __init__(self, num_envs: int = 1, device: str | torch.device | None = "cpu", low: float = -math.inf,
                 high: float = math.inf, seed: int | None = None, check_actions: bool = True) -> None:
        space = AgentSpace.continuous(low, high, (1,))
        spec = EnvSpec(n_agents=2, obs_dim=1, state_dim=1, agent_spaces=(space, space), episode_limit=1)
        super().__init__(spec, num_envs, device, seed, check_actions)
        self._obs = torch.ones(self.num_envs, 2, 1, dtype=torch.float32, device=self.device)
        self._state = torch.ones(self.num_envs, 1, dtype=torch.float32, device=self.device)

    def _reset_where(self, mask: torch.Tensor) -> None:
        return None

    def _advance(self, actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        reward = actions[:, 0, 0] * actions[:, 1, 0]
        return reward, torch.ones(self.num_envs, dtype=torch.bool, device=self.device)

    def _observe(self) -> tuple[torch.Tensor, torch.Tensor, None]:
        return self._obs.clone(), self._state.clone(), None
