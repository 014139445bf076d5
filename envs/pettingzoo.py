"""Any PettingZoo ``ParallelEnv`` as a batched seqmarl environment (:class:`PettingZooEnv`, :func:`make_pettingzoo`).

``B = num_envs`` instances, each built by calling ``env_fn()``, are stepped one after another in this process (the
simple path: no worker processes). Their dictionaries keyed by agent name are turned into the tensors of the
protocol of :mod:`seqmarl.envs.base`, agents in the order of ``possible_agents``.

Conventions (each one is a choice; the sources are the PettingZoo Parallel API documentation,
https://pettingzoo.farama.org/api/parallel/, and the MAPPO/HARL adapters cited per item):

* **Observations** ``[B, n, obs_dim]``: each agent's observation is flattened (``gymnasium.spaces.flatten``; a
  ``Dict`` observation with an ``"observation"`` entry contributes that entry) and zero-padded to the largest agent's
  size, as SuperSuit's ``pad_observations_v0`` does for HARL's PettingZoo-MPE adapter. The true sizes are in
  :attr:`PettingZooEnv.agent_obs_dims`.
* **State** ``[B, state_dim]``: ``env.state()`` when the environment implements it (``state="env"``), else the
  concatenation of the agents' unpadded observations in agent order (``state="concat"``). ``state="auto"``
  (default) uses ``env.state()`` if calling it after a reset works.
* **Actions**: all agents ``Discrete`` (actions ``0..n-1``, shifted by the space's ``start``) or all ``Box``
  (flattened to one dimension; padding columns of agents with fewer dimensions are ignored). Other spaces raise.
* **Action masks** (discrete): ``info[agent]["action_mask"]`` if present, else ``obs[agent]["action_mask"]`` if the
  observation is a ``Dict`` with that key, else every action is available. Padding actions are never available.
* **Dead agents**: an agent flagged ``terminated`` or ``truncated`` while others go on (the API removes it from
  ``env.agents``) observes zeros, has only action ``0`` available (its action is not passed
  to the environment; SMAC's convention of a no-op for dead units) and is ``False`` in ``info["active"]``, from the
  step in which it dies on. Only when the whole episode ends in a step do ``final_obs``/``final_state`` keep every
  agent's real last observation (what a value target bootstraps from).
* **Episode end**: when no agent is left (``env.agents`` empty, or every agent flagged). The episode is
  ``terminated`` if any agent's ``terminated`` flag was raised in that last step, else ``truncated`` (only
  truncations: bootstrap). An episode that reaches ``episode_limit`` is truncated here as well.
* **Team reward** ``[B]``: ``reward_reduction="sum"`` (default) sums the agents' rewards of the step (HARL's
  ``PettingZooMPEEnv.step``: ``total_reward = sum(rew[agent] ...)``, MAPPO's MPE ``MultiAgentEnv.step``:
  ``reward = np.sum(reward_n)`` for collaborative worlds); ``"mean"`` divides that sum by ``n_agents`` (dead agents
  count as 0). The per-agent rewards are in ``info["agent_rewards"]`` ``[B, n]``.
* **Seeding**: instance ``b`` is reset with ``seed + b`` (``reset(seed=...)`` of the PettingZoo API) by the first
  ``reset()`` (the constructor's seed) and by every ``reset(seed)``; automatic resets call ``reset(seed=None)``,
  which continues each instance's own random stream. Without any seed the base seed is drawn from
  :attr:`generator`. The same seed and the same actions therefore give the same trajectories.

``info`` of every step carries, besides the protocol's keys, ``active`` / ``final_active`` (bool ``[B, n]``: the
agents alive in ``obs`` / in ``final_obs``) and ``agent_rewards`` (f32 ``[B, n]``).
"""

from __future__ import annotations

import numbers
from typing import Any, Callable, Sequence

import numpy as np
import torch

from ._extras import import_extra
from .base import AgentSpace, EnvSpec, MultiAgentEnv, RestartsOnResume, Step, _check_int, as_device

__all__ = ["PettingZooEnv", "make_pettingzoo"]

_REDUCTIONS = ("sum", "mean")
_STATE_MODES = ("auto", "env", "concat")
_LIMIT_ATTRIBUTES = ("max_cycles", "max_steps", "max_episode_steps", "episode_limit")


def _find_episode_limit(env: Any) -> int | None:
    """The time limit an environment declares (``max_cycles`` of MPE, ``max_steps``, ...), searching the wrapper
    chain (``env``, ``env.unwrapped``, ``env.aec_env``, ``env.env``); None if there is none."""
    seen: set[int] = set()
    todo = [env]
    while todo:
        obj = todo.pop(0)
        if obj is None or id(obj) in seen:
            continue
        seen.add(id(obj))
        for attr in _LIMIT_ATTRIBUTES:
            value = getattr(obj, attr, None)
            if isinstance(value, numbers.Integral) and not isinstance(value, bool) and value >= 1:
                return int(value)
        for attr in ("aec_env", "env", "unwrapped"):
            try:
                todo.append(getattr(obj, attr, None))
            except Exception:  # noqa: BLE001 - an exotic wrapper property; just stop searching there
                continue
    return None


class PettingZooEnv(RestartsOnResume, MultiAgentEnv):
    """``num_envs`` PettingZoo ``ParallelEnv`` instances as one batched environment (module docstring).

    Args:
        env_fn: a callable with no arguments returning a fresh ``ParallelEnv`` (e.g. ``simple_spread_v3.parallel_env``
            or ``lambda: simple_spread_v3.parallel_env(N=4)``); called ``num_envs`` times.
        num_envs: number of instances ``B``.
        device: torch device of the returned tensors (the instances run on the CPU).
        seed: base seed; instance ``b`` is reset with ``seed + b``.
        episode_limit: steps after which an episode is truncated; default: the environment's own ``max_cycles`` /
            ``max_steps`` / ``max_episode_steps`` attribute (an error if it has none).
        reward_reduction: ``"sum"`` or ``"mean"`` of the agents' rewards as the team reward.
        state: ``"auto"``, ``"env"`` (``env.state()``) or ``"concat"`` (concatenated observations).
        name: a label for messages and ``repr`` (default: ``metadata["name"]`` of the environment).
        check_actions: validate actions every step.
        clip_actions: Box actions are clipped into their box before stepping (default True, so a Gaussian
            policy's unbounded samples are accepted, as ``mamujoco/*`` and ``vmas/*`` do); ``False``: an action
            outside the box raises ``ValueError``.
        state_is_obs_concat: the environment's ``state()`` is known to equal the concatenation of the agents'
            (flattened, float32) observations in agent order, as mpe2's ``SimpleEnv.state`` is; the state is then
            built from the observations the step returned instead of calling ``state()``, which computes every
            observation a second time (same numbers; ``state()`` is still called while an agent is not alive).
        step_fn: ``step_fn(env, actions) -> (observations, rewards, terminations, truncations, infos)``, called
            instead of ``env.step(actions)`` for an instance whose agents are all alive; it must return exactly what
            ``env.step`` would (a package's own step unrolled, e.g. :func:`seqmarl.envs.mpe.mpe2_cycle_step`).
    """

    def __init__(self, env_fn: Callable[[], Any], num_envs: int = 1, device: str | torch.device | None = "cpu",
                 seed: int | None = None, episode_limit: int | None = None, reward_reduction: str = "sum",
                 state: str = "auto", name: str | None = None, check_actions: bool = True,
                 clip_actions: bool = True, state_is_obs_concat: bool = False,
                 step_fn: Callable[[Any, dict], tuple] | None = None) -> None:
        if step_fn is not None and not callable(step_fn):
            raise TypeError(f"step_fn must be a callable (env, actions) -> step tuple, got {type(step_fn).__name__}")
        self._step_fn = step_fn
        for flag_name, flag in (("clip_actions", clip_actions), ("state_is_obs_concat", state_is_obs_concat)):
            if not isinstance(flag, bool):
                raise TypeError(f"{flag_name} must be a bool, got {type(flag).__name__}")
        self.clip_actions = clip_actions
        if not callable(env_fn):
            raise TypeError(f"env_fn must be a callable returning a PettingZoo ParallelEnv, got {type(env_fn).__name__}")
        if reward_reduction not in _REDUCTIONS:
            raise ValueError(f"reward_reduction must be one of {_REDUCTIONS}, got {reward_reduction!r}")
        if state not in _STATE_MODES:
            raise ValueError(f"state must be one of {_STATE_MODES}, got {state!r}")
        b = _check_int(num_envs, "num_envs", 1)
        if seed is not None:
            seed = _check_int(seed, "seed", 0)
        as_device(device)  # a bad device fails here, before any instance is built
        self._spaces_mod = import_extra("gymnasium.spaces", "pettingzoo", name or "pettingzoo")
        first = env_fn()
        self._check_parallel(first)
        self.name = str(name or getattr(first, "metadata", {}).get("name", type(first).__name__))
        self.agents: tuple[str, ...] = tuple(first.possible_agents)
        if not self.agents:
            raise ValueError(f"env_fn() built an environment with no possible_agents ({self.name})")
        n = len(self.agents)
        self._reduction = reward_reduction

        # --- observation layout ---------------------------------------------------------------------
        self._obs_spaces = []
        self._obs_is_box = []
        self._mask_in_obs = []
        for agent in self.agents:
            space = first.observation_space(agent)
            inner, has_mask = self._observation_part(space)
            self._obs_spaces.append(inner)
            self._obs_is_box.append(isinstance(inner, self._spaces_mod.Box))
            self._mask_in_obs.append(has_mask)
        self.agent_obs_dims: tuple[int, ...] = tuple(int(self._spaces_mod.flatdim(s)) for s in self._obs_spaces)
        obs_dim = max(self.agent_obs_dims)

        # --- action layout --------------------------------------------------------------------------
        agent_spaces, self._act_starts, self._act_shapes = [], [], []
        for agent in self.agents:
            space = first.action_space(agent)
            if isinstance(space, self._spaces_mod.Discrete):
                agent_spaces.append(AgentSpace.discrete(int(space.n)))
                self._act_starts.append(int(space.start))
                self._act_shapes.append(None)
            elif isinstance(space, self._spaces_mod.Box):
                low = np.asarray(space.low, dtype=np.float64).reshape(-1)
                high = np.asarray(space.high, dtype=np.float64).reshape(-1)
                agent_spaces.append(AgentSpace.continuous(tuple(low), tuple(high), (low.size,)))
                self._act_starts.append(0)
                self._act_shapes.append((tuple(space.shape), space.dtype))
            else:
                raise TypeError(f"action space of agent {agent!r} in {self.name} is {space}; PettingZooEnv supports "
                                "Discrete and Box action spaces only")
        kinds = {s.kind for s in agent_spaces}
        if len(kinds) != 1:
            raise TypeError(f"{self.name} mixes discrete and continuous action spaces across agents; not supported")

        # --- time limit -----------------------------------------------------------------------------
        if episode_limit is None:
            episode_limit = _find_episode_limit(first)
            if episode_limit is None:
                raise ValueError(f"episode_limit: {self.name} declares no max_cycles/max_steps/max_episode_steps; "
                                 "pass episode_limit= explicitly")
        limit = _check_int(episode_limit, "episode_limit", 1)

        # --- the instances and the state layout -------------------------------------------------------
        self._envs = [first] + [env_fn() for _ in range(b - 1)]
        for env in self._envs[1:]:
            self._check_parallel(env)
            if tuple(env.possible_agents) != self.agents:
                raise ValueError(f"env_fn() must build identical environments; possible_agents differ: "
                                 f"{list(env.possible_agents)} vs {list(self.agents)}")
        probe_seed = seed if seed is not None else 0
        first.reset(seed=probe_seed)
        self._state_from_env = False
        state_dim = sum(self.agent_obs_dims)
        if state in ("auto", "env"):
            try:
                probe = np.asarray(first.state(), dtype=np.float32).reshape(-1)
            except (NotImplementedError, AttributeError) as exc:
                if state == "env":
                    raise ValueError(f"state='env' but {self.name} does not implement state(): {exc}") from exc
            else:
                self._state_from_env = True
                state_dim = int(probe.size)
        self.state_mode = "env" if self._state_from_env else "concat"
        # flat positions of every real observation entry inside one padded [n, obs_dim] row, in agent order: the
        # "concat" state is row.reshape(-1)[index]; with state_is_obs_concat (the package's state() is known to be
        # exactly that, e.g. mpe2's SimpleEnv.state) it replaces the state() call while every agent is alive
        self._concat_index = np.concatenate([i * obs_dim + np.arange(d) for i, d in enumerate(self.agent_obs_dims)])
        self._state_is_obs_concat = bool(state_is_obs_concat) and self._state_from_env

        spec = EnvSpec(n_agents=n, obs_dim=obs_dim, state_dim=state_dim, agent_spaces=tuple(agent_spaces),
                       episode_limit=limit)
        self._ctor_seed = seed
        super().__init__(spec, b, device, seed, check_actions)

        # host-side buffers (numpy) of what _observe returns
        self._obs = np.zeros((b, n, obs_dim), dtype=np.float32)
        self._state = np.zeros((b, state_dim), dtype=np.float32)
        self._alive = np.zeros((b, n), dtype=bool)
        self._avail = np.zeros((b, n, spec.max_actions), dtype=bool) if spec.is_discrete else None
        self._pad_avail = None
        if spec.is_discrete:
            self._pad_avail = np.arange(spec.max_actions)[None, :] < np.asarray(spec.n_actions)[:, None]
        self._pending_seed: int | None = None
        self._ever_reset = False
        self._env_truncated = torch.zeros(b, dtype=torch.bool)

    # --- construction helpers ---------------------------------------------------------------------
    def _check_parallel(self, env: Any) -> None:
        if hasattr(env, "agent_iter") and hasattr(env, "last"):  # the AEC API (pettingzoo.AECEnv)
            raise TypeError("env_fn must build a PettingZoo ParallelEnv, got an AEC environment "
                            f"({type(env).__name__}); use the module's parallel_env() or "
                            "pettingzoo.utils.conversions.aec_to_parallel")
        for attr in ("possible_agents", "reset", "step", "observation_space", "action_space"):
            if not hasattr(env, attr):
                raise TypeError(f"env_fn must build a PettingZoo ParallelEnv; {type(env).__name__} has no {attr!r}")

    def _observation_part(self, space: Any) -> tuple[Any, bool]:
        """The part of an observation space that is observed, and whether it carries an ``action_mask``."""
        if isinstance(space, self._spaces_mod.Dict) and "observation" in space.spaces:
            return space.spaces["observation"], "action_mask" in space.spaces
        return space, False

    # --- public helpers -----------------------------------------------------------------------------
    @property
    def instances(self) -> list[Any]:
        """The wrapped PettingZoo environments (instance ``b`` is environment ``b`` of the batch)."""
        return list(self._envs)

    @property
    def active(self) -> torch.Tensor:
        """bool ``[B, n]``: the agents alive in the current observation."""
        return torch.from_numpy(self._alive.copy()).to(self.device)

    def close(self) -> None:
        """Close every instance."""
        for env in self._envs:
            env.close()

    # --- per-instance conversion -----------------------------------------------------------------------
    def _flat_obs(self, i: int, value: Any) -> np.ndarray:
        if self._mask_in_obs[i] or (isinstance(value, dict) and "observation" in value):
            value = value["observation"]
        if self._obs_is_box[i]:
            return np.asarray(value, dtype=np.float32).reshape(-1)
        return np.asarray(self._spaces_mod.flatten(self._obs_spaces[i], value), dtype=np.float32).reshape(-1)

    def _write(self, b: int, obs: dict, infos: dict, alive: Sequence[bool]) -> None:
        """Fill row ``b`` of the buffers from one reset/step result of instance ``b``."""
        dims = self.agent_obs_dims
        row = self._obs[b]
        row.fill(0.0)
        for i, agent in enumerate(self.agents):
            if agent in obs:
                row[i, : dims[i]] = self._flat_obs(i, obs[agent])
        self._alive[b] = alive
        if self._avail is not None:
            avail = self._avail[b]
            avail[:] = self._pad_avail
            for i, agent in enumerate(self.agents):
                if not alive[i]:
                    avail[i] = False
                    avail[i, 0] = True
                    continue
                mask = None
                info = infos.get(agent) if isinstance(infos, dict) else None
                if isinstance(info, dict) and "action_mask" in info:
                    mask = info["action_mask"]
                elif isinstance(obs.get(agent), dict) and "action_mask" in obs[agent]:
                    mask = obs[agent]["action_mask"]
                if mask is not None:
                    mask = np.asarray(mask).astype(bool).reshape(-1)
                    k = self.spec.n_actions[i]
                    if mask.size != k:
                        raise ValueError(f"{self.name}: action_mask of agent {agent!r} has {mask.size} entries, "
                                         f"its action space has {k}")
                    if not mask.any():
                        raise ValueError(f"{self.name}: action_mask of live agent {agent!r} allows no action")
                    avail[i, :k] = mask
        if self._state_from_env and not (self._state_is_obs_concat and all(alive) and len(obs) == len(dims)):
            self._state[b] = np.asarray(self._envs[b].state(), dtype=np.float32).reshape(-1)
        else:
            self._state[b] = row.reshape(-1)[self._concat_index]

    # --- protocol ---------------------------------------------------------------------------------------
    def reset(self, seed: int | None = None) -> Step:
        """Reset every instance: with seeds ``seed + b`` when ``seed`` is given (or on the first reset, with the
        constructor's seed), else continuing each instance's own random stream (module docstring)."""
        if seed is not None:
            self._pending_seed = _check_int(seed, "seed", 0)
        elif not self._ever_reset:
            if self._ctor_seed is not None:
                self._pending_seed = self._ctor_seed
            else:
                self._pending_seed = int(torch.randint(0, 2**31 - 1, (1,), generator=self._generator).item())
        else:
            self._pending_seed = None
        try:
            step = super().reset(seed)
        finally:
            self._pending_seed = None
        self._ever_reset = True
        return step

    def step(self, actions: torch.Tensor) -> Step:
        """Step every instance (module docstring); ends an episode when no agent is left, or at ``episode_limit``."""
        if self._needs_reset:
            raise RuntimeError("call reset() before step()")
        actions = self.validate_actions(actions) if self.check_actions else self._coerce(actions)
        self._elapsed += 1
        reward, terminated, agent_rewards = self._advance_all(actions)
        limit_hit = self._elapsed >= self._spec.episode_limit
        truncated = (self._env_truncated.to(self.device) | limit_hit) & ~terminated
        self._episode_return += reward
        final_obs, final_state, final_avail = self._observe()
        final_active = self.active
        done = terminated | truncated
        info: dict[str, Any] = {
            "final_obs": final_obs,
            "final_state": final_state,
            "final_avail_actions": final_avail,
            "episode_return": self._episode_return.clone(),
            "episode_length": self._elapsed.clone(),
            "agent_rewards": agent_rewards,
            "final_active": final_active,
        }
        self._reset_where(done)
        self._elapsed.masked_fill_(done, 0)  # in place: info holds clones
        self._episode_return.masked_fill_(done, 0.0)
        obs, state, avail = self._observe()
        info["active"] = self.active
        return Step(obs=obs, state=state, avail_actions=avail, reward=reward,
                    terminated=terminated, truncated=truncated, info=info)

    def _advance(self, actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        reward, terminated, _ = self._advance_all(actions)
        return reward, terminated

    def _advance_all(self, actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        b_count, n = self.num_envs, self.spec.n_agents
        acts = actions.detach().cpu().numpy()
        acts_list = acts.tolist() if self.spec.is_discrete else None  # Python ints: no numpy scalar per entry
        rewards = np.zeros((b_count, n), dtype=np.float32)
        terminated = np.zeros(b_count, dtype=bool)
        env_truncated = np.zeros(b_count, dtype=bool)
        discrete = self.spec.is_discrete
        for b, env in enumerate(self._envs):
            live = set(env.agents)
            action_dict: dict[str, Any] = {}
            for i, agent in enumerate(self.agents):
                if agent not in live:
                    continue
                if discrete:
                    action_dict[agent] = acts_list[b][i] + self._act_starts[i]
                else:
                    shape, dtype = self._act_shapes[i]
                    dim = self.spec.agent_spaces[i].dim
                    action_dict[agent] = np.asarray(acts[b, i, :dim], dtype=dtype).reshape(shape)
            if self._step_fn is not None and len(live) == n:
                obs, rew, term, trunc, infos = self._step_fn(env, action_dict)
            else:
                obs, rew, term, trunc, infos = env.step(action_dict)
            still = set(env.agents)
            alive = []
            for i, agent in enumerate(self.agents):
                rewards[b, i] = float(rew.get(agent, 0.0))
                flagged = bool(term.get(agent, False)) or bool(trunc.get(agent, False))
                alive.append(agent in still and not flagged)
            if not any(alive):
                terminated[b] = any(bool(v) for v in term.values())
                env_truncated[b] = not terminated[b]
            else:  # an agent that died while others go on observes zeros from now on
                obs = {agent: obs[agent] for i, agent in enumerate(self.agents) if alive[i] and agent in obs}
            self._write(b, obs, infos, alive)
        team = rewards.sum(axis=1)
        if self._reduction == "mean":
            team = team / n
        self._env_truncated = torch.from_numpy(env_truncated)
        dev = self.device
        return (torch.from_numpy(team).to(dev), torch.from_numpy(terminated).to(dev),
                torch.from_numpy(rewards).to(dev))

    def _reset_where(self, mask: torch.Tensor) -> None:
        for b in torch.nonzero(mask.cpu()).flatten().tolist():
            env_seed = None if self._pending_seed is None else self._pending_seed + b
            obs, infos = env_reset(self._envs[b], env_seed)
            live = set(self._envs[b].agents)
            self._write(b, obs, infos, [agent in live for agent in self.agents])

    def _observe(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        dev = self.device
        obs = torch.from_numpy(self._obs.copy()).to(dev)
        state = torch.from_numpy(self._state.copy()).to(dev)
        avail = None if self._avail is None else torch.from_numpy(self._avail.copy()).to(dev)
        return obs, state, avail

    def _current_avail(self) -> torch.Tensor:
        assert self._avail is not None
        return torch.from_numpy(self._avail.copy()).to(self.device)

    def __repr__(self) -> str:
        return f"PettingZooEnv({self.name!r}, num_envs={self.num_envs}, device={str(self.device)!r}, spec={self.spec})"


def env_reset(env: Any, seed: int | None) -> tuple[dict, dict]:
    """``env.reset(seed=seed)`` returning ``(observations, infos)`` (PettingZoo >= 1.23 returns both)."""
    result = env.reset(seed=seed)
    if isinstance(result, tuple) and len(result) == 2:
        return result
    return result, {}


def make_pettingzoo(env_fn: Callable[[], Any], num_envs: int = 1, device: str | torch.device | None = "cpu",
                    seed: int | None = None, **kwargs: Any) -> PettingZooEnv:
    """Wrap any PettingZoo ``ParallelEnv`` factory as a batched seqmarl environment.

    Not a registry name, because it needs the callable: ``make_pettingzoo(simple_spread_v3.parallel_env,
    num_envs=8, seed=0)`` or ``make_pettingzoo(lambda: my_module.parallel_env(level=3), num_envs=8,
    episode_limit=200, reward_reduction="mean")``. Keywords as :class:`PettingZooEnv`.
    """
    return PettingZooEnv(env_fn, num_envs=num_envs, device=device, seed=seed, **kwargs)
