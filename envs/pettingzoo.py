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

import functools
import numbers
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import torch

from ._extras import import_extra
from .base import AgentSpace, EnvSpec, MultiAgentEnv, RestartsOnResume, Step, _check_int, as_device
from .workers import Field, VectorBackend, make_backend

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
        workers: ``0`` (default) steps the instances in this process; ``W >= 1`` splits them into ``W`` contiguous
            slices stepped by worker processes (:mod:`seqmarl.envs.workers`), each slice an in-process
            :class:`PettingZooEnv` of its instances (:class:`PettingZooWorkerSlice`), so the results are the same
            as with ``workers=0`` (instance ``b`` is still seeded ``seed + b``). ``env_fn`` (and ``step_fn``) must
            then be picklable (a module-level function or a :func:`functools.partial` of one), and
            :attr:`instances` is not available in this process.
        start_method: the worker processes' multiprocessing start method (``"spawn"``, safe with torch/jax threads).
    """

    def __init__(self, env_fn: Callable[[], Any], num_envs: int = 1, device: str | torch.device | None = "cpu",
                 seed: int | None = None, episode_limit: int | None = None, reward_reduction: str = "sum",
                 state: str = "auto", name: str | None = None, check_actions: bool = True,
                 clip_actions: bool = True, state_is_obs_concat: bool = False,
                 step_fn: Callable[[Any, dict], tuple] | None = None, workers: int = 0,
                 start_method: str = "spawn") -> None:
        if isinstance(workers, bool) or not isinstance(workers, numbers.Integral) or workers < 0:
            raise ValueError(f"workers must be an integer >= 0 (0 = step in this process), got {workers!r}")
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
        workers = min(int(workers), b)
        self._envs = [first] + [env_fn() for _ in range(b - 1 if workers == 0 else 0)]
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
        self.workers = workers
        self._backend: VectorBackend | None = None
        if workers:
            first.close()
            self._envs = []
            kwargs = dict(episode_limit=limit, reward_reduction=reward_reduction, state=self.state_mode,
                          name=self.name, clip_actions=clip_actions, state_is_obs_concat=state_is_obs_concat,
                          step_fn=step_fn)
            factory = functools.partial(PettingZooWorkerSlice, env_fn=env_fn, env_kwargs=kwargs)
            self._backend = make_backend(factory, b, worker_fields(spec, state_dim), workers, start_method)

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
        if self._backend is not None:
            raise ValueError(f"instances: with workers={self.workers} the environments live in the worker processes")
        return list(self._envs)

    @property
    def active(self) -> torch.Tensor:
        """bool ``[B, n]``: the agents alive in the current observation."""
        return torch.from_numpy(self._alive.copy()).to(self.device)

    def close(self) -> None:
        """Close every instance (and the worker processes)."""
        for env in self._envs:
            env.close()
        if self._backend is not None:
            self._backend.close()
            self._backend = None

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

    def step_async(self, actions: torch.Tensor) -> None:
        """Worker processes: start the step (they step while this returns); else as :class:`MultiAgentEnv`."""
        if self._backend is None:
            return super().step_async(actions)
        if getattr(self, "_async", None) is not None:
            raise RuntimeError("step_async() called again before step_wait()")
        self._workers_begin(actions)
        self._async = ("workers",)

    def step_wait(self) -> Step:
        if self._backend is None or getattr(self, "_async", None) != ("workers",):
            return super().step_wait()
        self._async = None
        return self._workers_finish()

    def _workers_begin(self, actions: torch.Tensor) -> None:
        if self._needs_reset:
            raise RuntimeError("call reset() before step()")
        actions = self.validate_actions(actions) if self.check_actions else self._coerce(actions)
        backend = self._backend
        if backend is None:
            raise RuntimeError("the environment is closed")
        np.copyto(backend.buffers["actions"], actions.detach().cpu().numpy())
        backend.step_begin()

    def _workers_finish(self) -> Step:
        """The step's result from the shared buffers (each slice stepped and auto-reset its instances)."""
        backend = self._backend
        if backend is None:
            raise RuntimeError("the environment is closed")
        backend.step_end()
        buf = backend.buffers
        dev = self.device

        def t(name: str) -> torch.Tensor:
            return torch.from_numpy(buf[name].copy()).to(dev)

        terminated, truncated = t("terminated"), t("truncated")
        done = terminated | truncated
        length, ret = t("episode_length"), t("episode_return")
        info: dict[str, Any] = {
            "final_obs": t("final_obs"), "final_state": t("final_state"),
            "final_avail_actions": t("final_avail") if "final_avail" in buf else None,
            "episode_return": ret, "episode_length": length, "agent_rewards": t("agent_rewards"),
            "final_active": t("final_active"),
        }
        self._copy_current(buf)
        self._elapsed = torch.where(done, torch.zeros_like(length), length)
        self._episode_return = torch.where(done, torch.zeros_like(ret), ret)
        obs, state, avail = self._observe()
        info["active"] = self.active
        return Step(obs=obs, state=state, avail_actions=avail, reward=t("reward"), terminated=terminated,
                    truncated=truncated, info=info)

    def _copy_current(self, buf: Mapping[str, np.ndarray]) -> None:
        """This process's copies of the current observations, states, masks and live agents."""
        np.copyto(self._obs, buf["obs"])
        np.copyto(self._state, buf["state"])
        np.copyto(self._alive, buf["active"])
        if self._avail is not None:
            np.copyto(self._avail, buf["avail"])

    def step(self, actions: torch.Tensor) -> Step:
        """Step every instance (module docstring); ends an episode when no agent is left, or at ``episode_limit``."""
        if self._backend is not None:
            self._workers_begin(actions)
            return self._workers_finish()
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
        if self._backend is not None:  # only full resets come here: the slices restart ended episodes themselves
            if not bool(mask.all()):
                raise RuntimeError("internal error: a partial reset of worker-stepped instances")
            base = self._pending_seed
            seeds = (np.full(self.num_envs, -1, dtype=np.int64) if base is None
                     else base + np.arange(self.num_envs, dtype=np.int64))
            self._backend.reset(seeds)
            self._copy_current(self._backend.buffers)
            return
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


def worker_fields(spec: EnvSpec, state_dim: int) -> list[Field]:
    """Shared buffers of :class:`PettingZooWorkerSlice`: the inputs ``seeds`` (``-1``: no seed) and ``actions``;
    the current ``obs``/``state``/``avail``/``active`` (after any automatic reset) and the step's ``final_*``
    values, ``reward``, ``agent_rewards``, flags and episode statistics (as :meth:`PettingZooEnv.step` gives)."""
    n, d = spec.n_agents, spec.obs_dim
    act = Field("actions", (n,), "int64") if spec.is_discrete else Field("actions", (n, spec.act_dim), "float32")
    fields = [Field("seeds", (), "int64"), act]
    for prefix in ("", "final_"):
        fields += [Field(prefix + "obs", (n, d), "float32"), Field(prefix + "state", (state_dim,), "float32"),
                   Field(prefix + "active", (n,), "bool")]
        if spec.is_discrete:
            fields.append(Field(prefix + "avail", (n, spec.max_actions), "bool"))
    return fields + [Field("reward", (), "float32"), Field("agent_rewards", (n,), "float32"),
                     Field("terminated", (), "bool"), Field("truncated", (), "bool"),
                     Field("episode_return", (), "float32"), Field("episode_length", (), "int64")]


class PettingZooWorkerSlice:
    """``k`` instances stepped in a worker process: an in-process :class:`PettingZooEnv` of them (the same code as
    ``workers=0``), whose reset and step results are written to the shared buffers (:func:`worker_fields`).
    Reset: ``seeds[0]`` is the seed of the slice's first instance (``seed + start``; its instance ``j`` gets
    ``seed + start + j``), ``-1`` continues every instance's own stream."""

    def __init__(self, k: int, env_fn: Callable[[], Any], env_kwargs: dict[str, Any]) -> None:
        self.env = PettingZooEnv(env_fn, num_envs=int(k), check_actions=False, **env_kwargs)
        self.buffers: Mapping[str, np.ndarray] = {}

    def bind(self, buffers: Mapping[str, np.ndarray]) -> None:
        self.buffers = buffers

    def _write_current(self, step: Step, prefix: str = "") -> None:
        buf = self.buffers
        buf[prefix + "obs"][:] = step.obs.numpy()
        buf[prefix + "state"][:] = step.state.numpy()
        if step.avail_actions is not None:
            buf[prefix + "avail"][:] = step.avail_actions.numpy()

    def reset(self) -> None:
        first = int(self.buffers["seeds"][0])
        step = self.env.reset(None if first < 0 else first)
        self._write_current(step)
        self.buffers["active"][:] = self.env.active.numpy()

    def step(self) -> None:
        buf = self.buffers
        step = self.env.step(torch.from_numpy(buf["actions"].copy()))
        info = step.info
        buf["final_obs"][:] = info["final_obs"].numpy()
        buf["final_state"][:] = info["final_state"].numpy()
        if info["final_avail_actions"] is not None:
            buf["final_avail"][:] = info["final_avail_actions"].numpy()
        buf["final_active"][:] = info["final_active"].numpy()
        self._write_current(step)
        buf["active"][:] = info["active"].numpy()
        buf["reward"][:] = step.reward.numpy()
        buf["agent_rewards"][:] = info["agent_rewards"].numpy()
        buf["terminated"][:] = step.terminated.numpy()
        buf["truncated"][:] = step.truncated.numpy()
        buf["episode_return"][:] = info["episode_return"].numpy()
        buf["episode_length"][:] = info["episode_length"].numpy()

    def close(self) -> None:
        self.env.close()


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
