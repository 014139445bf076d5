"""Any finite :class:`seqmarl.theory.MarkovGame` as a batched environment (theory.md §0).

Dynamics, per environment: ``s_0 ~ rho^0``; at step t every agent sees the observation of ``s_t``, the team
plays ``a_t``, receives ``r(s_t, a_t)`` and the game moves to ``s_{t+1} ~ P(.|s_t, a_t)``.

Episode ends (``spec.episode_limit`` is the resulting maximal length):

* **single-step games** (``gamma == 0`` or ``horizon == 1``; every one-shot matrix game): the objective is
  ``E[r(s_0, a_0)]``, so every episode is one step and ends ``terminated``. ``episode_limit`` must be None or 1.
* **finite-horizon games** (``horizon = H > 1``): the objective ``sum_{t<H} gamma^t r_t`` stops after H steps,
  so the H-th step is ``terminated`` (not truncated: there is nothing to bootstrap). An optional
  ``episode_limit < H`` truncates earlier.
* **discounted games** (``horizon is None``, ``0 < gamma < 1``) never end by themselves: they are
  ``truncated`` after ``episode_limit`` steps, by default ``ceil(5 / (1 - gamma))`` (the cut-off weight
  ``gamma^T <= e^{-5}``, i.e. under 0.7% of the discounted mass). Bootstrap from ``info["final_obs"]``.

Observations (``obs`` argument), identical for every agent except for the id:

* ``"state"``: one-hot of the state ``[S]``;
* ``"state+agent_id"``: one-hot state followed by the one-hot agent index ``[S + n]``;
* ``"none"``: a single constant feature ``1.0`` (agents see nothing).

The global ``state`` is always the one-hot state ``[S]``. Observations never contain the time step, so a
policy of the environment is the stationary ``pi(a|s)`` that ``theory.evaluate`` evaluates (also for
finite-horizon games). Actions are ``int64 [B, n]``; with per-agent action counts ``A_i`` the
``avail_actions [B, n, A_max]`` mask is False on the padding ``a >= A_i``.

Use :meth:`MatrixGameEnv.observation_of_state` / :meth:`MatrixGameEnv.observation_table` to read a trained
policy out as an exact table ``pi[s, i, a]`` and compare it with the oracles of ``seqmarl.theory``.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from seqmarl.theory import MarkovGame

from .base import AgentSpace, EnvSpec, MultiAgentEnv, Step, _check_int

__all__ = ["MatrixGameEnv", "OBS_MODES", "default_episode_limit"]

OBS_MODES = ("state", "state+agent_id", "none")


def default_episode_limit(game: MarkovGame) -> int:
    """The default maximal episode length of :class:`MatrixGameEnv` for ``game`` (module docstring)."""
    if game.gamma == 0 or game.horizon == 1:
        return 1
    if game.horizon is not None:
        return game.horizon
    return int(math.ceil(5.0 / (1.0 - game.gamma) - 1e-9))


def _cdf_dtype(device: torch.device) -> torch.dtype:
    return torch.float32 if device.type == "mps" else torch.float64


def _normalised_cdf(prob: np.ndarray, device: torch.device) -> torch.Tensor:
    """Cumulative sums along the last axis, divided by the total so the last entries are exactly 1
    (trailing zero-probability outcomes then can never be drawn)."""
    cdf = np.cumsum(prob, axis=-1)
    cdf = cdf / cdf[..., -1:]
    return torch.as_tensor(cdf, dtype=_cdf_dtype(device), device=device)


class MatrixGameEnv(MultiAgentEnv):
    """Batched environment simulating a finite cooperative Markov game (see the module docstring).

    Args:
        game: the :class:`seqmarl.theory.MarkovGame`.
        num_envs: number of parallel copies ``B``.
        device: torch device of every tensor.
        obs: ``"state"``, ``"state+agent_id"`` or ``"none"``.
        episode_limit: see the module docstring; ``None`` picks :func:`default_episode_limit`.
        seed: seed of the environment's ``torch.Generator`` (``None``: fresh entropy).
        check_actions: validate actions on every step (costs a device synchronisation on GPUs).
    """

    def __init__(self, game: MarkovGame, num_envs: int = 1, device: str | torch.device | None = "cpu",
                 obs: str = "state", episode_limit: int | None = None, seed: int | None = None,
                 check_actions: bool = True) -> None:
        if not isinstance(game, MarkovGame):
            raise TypeError(f"game must be a seqmarl.theory.MarkovGame, got {type(game).__name__}")
        if obs not in OBS_MODES:
            raise ValueError(f"obs must be one of {OBS_MODES}, got {obs!r}")
        self._single_step = game.gamma == 0 or game.horizon == 1
        natural = default_episode_limit(game)
        if episode_limit is None:
            limit = natural
        else:
            limit = _check_int(episode_limit, "episode_limit", 1)
            if self._single_step and limit != 1:
                raise ValueError(
                    f"episode_limit must be None or 1 for a single-step game (gamma = 0 or horizon = 1), got {limit}"
                )
            if game.horizon is not None and limit > game.horizon:
                raise ValueError(f"episode_limit must be <= the game's horizon {game.horizon}, got {limit}")
        self._game = game
        self._obs_mode = obs
        n, n_states = game.n_agents, game.n_states
        obs_dim = {"state": n_states, "state+agent_id": n_states + n, "none": 1}[obs]
        spec = EnvSpec(
            n_agents=n,
            obs_dim=obs_dim,
            state_dim=n_states,
            agent_spaces=tuple(AgentSpace.discrete(a) for a in game.n_actions),
            episode_limit=limit,
        )
        peak = float(np.max(np.abs(game.reward))) if game.reward.size else 0.0
        f32_max = float(np.finfo(np.float32).max)
        if peak > f32_max:
            raise ValueError(f"game.reward reaches |r| = {peak:.3g}, beyond float32's largest value {f32_max:.3g}: "
                             "the batched env keeps rewards in float32, so rescale the rewards (reward scale) "
                             "before building the env")
        super().__init__(spec, num_envs, device, seed, check_actions)
        dev = self.device
        # Joint action index in C order (the layout of game.reward_flat()).
        strides = np.cumprod((game.n_actions[1:] + (1,))[::-1])[::-1].copy()
        self._strides = torch.as_tensor(strides, dtype=torch.int64, device=dev)
        self._reward = torch.tensor(np.array(game.reward_flat()), dtype=torch.float32, device=dev)  # [S, |A|]
        self._transition_cdf = _normalised_cdf(game.transition_flat(), dev)  # [S, |A|, S]
        self._initial_cdf = _normalised_cdf(game.initial, dev)  # [S]
        self._obs_table = self._build_obs_table().to(dev)  # [S, n, obs_dim]
        self._state_table = torch.eye(n_states, dtype=torch.float32, device=dev)
        self._avail_template = self._padding_mask()  # [n, A_max]
        self._terminal_step = 1 if self._single_step else game.horizon  # None for discounted games
        self._s = torch.zeros(self.num_envs, dtype=torch.int64, device=dev)

    # --- read-out helpers ------------------------------------------------------------------------
    @property
    def game(self) -> MarkovGame:
        return self._game

    @property
    def obs_mode(self) -> str:
        return self._obs_mode

    @property
    def current_state(self) -> torch.Tensor:
        """Index of every environment's current game state, int64 ``[B]``."""
        return self._s.clone()

    def _build_obs_table(self) -> torch.Tensor:
        n, n_states = self._game.n_agents, self._game.n_states
        if self._obs_mode == "none":
            return torch.ones(n_states, n, 1)
        state_part = torch.eye(n_states)[:, None, :].expand(n_states, n, n_states)
        if self._obs_mode == "state":
            return state_part.clone()
        agent_part = torch.eye(n)[None, :, :].expand(n_states, n, n)
        return torch.cat([state_part, agent_part], dim=-1)

    def _check_state(self, s: int) -> int:
        s = _check_int(s, "s", 0)
        if s >= self._game.n_states:
            raise ValueError(f"s must be a state index in [0, {self._game.n_states}), got {s}")
        return s

    def observation_of_state(self, s: int) -> torch.Tensor:
        """The observations ``[n, obs_dim]`` (float32, on ``device``) the agents receive in state ``s``;
        row ``i`` is agent ``i``'s."""
        return self._obs_table[self._check_state(s)].clone()

    def observation_table(self) -> torch.Tensor:
        """All observations, ``[S, n, obs_dim]``: ``observation_table()[s] == observation_of_state(s)``."""
        return self._obs_table.clone()

    def state_of_state(self, s: int) -> torch.Tensor:
        """The global state vector ``[S]`` (one-hot) of game state ``s``."""
        return self._state_table[self._check_state(s)].clone()

    def avail_actions_of_state(self, s: int) -> torch.Tensor:
        """The availability mask ``[n, A_max]`` in state ``s`` (state independent: the padding mask)."""
        self._check_state(s)
        return self._avail_template.clone()

    def set_state(self, states: torch.Tensor) -> Step:
        """Put every environment in the given game states (int ``[B]``) without changing the step counters;
        returns a reward-free Step with their observations. For tests and exact evaluations."""
        if not isinstance(states, torch.Tensor) or states.dtype not in (torch.int64, torch.int32):
            raise TypeError("states must be an int64 tensor of shape [num_envs]")
        if tuple(states.shape) != (self.num_envs,):
            raise ValueError(f"states must have shape [num_envs] = ({self.num_envs},), got {tuple(states.shape)}")
        if bool(((states < 0) | (states >= self._game.n_states)).any()):
            raise ValueError(f"states must lie in [0, {self._game.n_states})")
        if self._needs_reset:
            raise RuntimeError("call reset() before set_state()")
        self._s = states.to(device=self.device, dtype=torch.int64).clone()
        obs, state, avail = self._observe()
        zeros = torch.zeros(self.num_envs, dtype=torch.bool, device=self.device)
        return Step(obs, state, avail, torch.zeros(self.num_envs, dtype=torch.float32, device=self.device),
                    zeros, zeros.clone(), {})

    # --- hooks -------------------------------------------------------------------------------------
    def _sample(self, cdf_rows: torch.Tensor) -> torch.Tensor:
        """Inverse-CDF draw, one per row of ``cdf_rows [B, K]``: the smallest k with ``u < cdf[k]``."""
        if cdf_rows.shape[-1] == 1:  # one state: nothing to draw
            return torch.zeros(self.num_envs, dtype=torch.int64, device=self.device)
        u = torch.rand(self.num_envs, generator=self._generator, device=self.device, dtype=cdf_rows.dtype)
        return (cdf_rows <= u[:, None]).sum(dim=-1).clamp_(max=cdf_rows.shape[-1] - 1)

    def _reset_where(self, mask: torch.Tensor) -> None:
        fresh = self._sample(self._initial_cdf.expand(self.num_envs, -1))
        self._s = torch.where(mask, fresh, self._s)

    def _advance(self, actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        joint = (actions * self._strides).sum(dim=-1)
        reward = self._reward[self._s, joint]
        self._s = self._sample(self._transition_cdf[self._s, joint])
        if self._terminal_step is None:
            terminated = torch.zeros(self.num_envs, dtype=torch.bool, device=self.device)
        else:
            terminated = self._elapsed >= self._terminal_step
        return reward, terminated

    def _observe(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return self._obs_table[self._s], self._state_table[self._s], self._current_avail()

    def _current_avail(self) -> torch.Tensor:
        return self._avail_template.expand(self.num_envs, -1, -1).clone()


