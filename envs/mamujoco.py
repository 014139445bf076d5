"""Multi-Agent MuJoCo on the real ``gymnasium_robotics.mamujoco_v1`` (PettingZoo parallel API), batched.

Registry names ``mamujoco/<Scenario>-<agent_conf>`` (:data:`MAMUJOCO_TASKS`), e.g. ``mamujoco/HalfCheetah-6x1``::

    env = seqmarl.envs.make("mamujoco/Ant-2x4", num_envs=8, seed=0, workers=2)

Needs the ``mujoco`` extra: ``pip install "seqmarl[mujoco]"`` (``gymnasium-robotics>=1.4,<1.5`` and ``mujoco``).

Conventions (sources: the package, ``gymnasium_robotics/envs/multiagent_mujoco/mujoco_multi.py`` and
``obsk.py`` of gymnasium-robotics 1.4.2; HARL, ``harl/envs/mamujoco/multiagent_mujoco/mujoco_multi.py`` of
PKU-MARL/HARL):

* **Instances.** ``B = num_envs`` independent ``mamujoco_v1.parallel_env(scenario, agent_conf,
  agent_obsk=agent_obsk)`` objects, stepped one after another in this process (``workers=0``) or by ``W``
  worker processes through shared memory (``workers=W``, :mod:`seqmarl.envs.workers`); both give the same
  trajectories.
* **Agents** are the package's ``possible_agents`` (``agent_0``, ``agent_1``, ...) in that order.
* **Actions**: float ``[B, n, act_dim]`` with ``act_dim = max_i dim_i``; agent ``i`` uses its first
  ``act_dims[i]`` entries (the rest is padding and ignored). The boxes are the package's per-agent
  ``action_space`` (``[-1, 1]`` for most robots, ``[-0.4, 0.4]`` Humanoid). With
  ``clip_actions=True`` (default) actions are clipped into the box before stepping, as MuJoCo itself clamps
  ``ctrl`` to the actuators' ``ctrlrange`` (so an unbounded Gaussian policy can be used as in HARL); with
  ``clip_actions=False`` an action outside the box raises ``ValueError``.
* **Observations**, ``obs=``:

  - ``"agent_obsk"`` (default): the package's partial observation of each agent (its joints and those
    ``agent_obsk`` hops away, plus global nodes). Sizes differ between agents: each is zero-padded at the end
    to ``obs_dim = max_i obs_sizes[i]``; the true sizes are :attr:`MaMuJoCoEnv.obs_sizes`.
  - ``"state+id"``: the HARL/MAT convention, so published curves compare like for like: agent ``i`` sees
    ``concat(state, one_hot(i))``; with ``normalize=True`` (default) that vector is standardised per vector,
    ``(x - mean(x)) / std(x)``, and the critic's state likewise, exactly as HARL's ``MujocoMulti.get_obs`` /
    ``get_state`` do (``normalize=False`` keeps the raw values).
* **State**: the package's ``state()`` (the single-agent MuJoCo observation, e.g. 17 numbers for
  HalfCheetah, 105 for Ant v5).
* **Reward**: the package's shared reward (every agent gets the same number; that number).
* **Episode ends**: ``terminated`` when the package's ``terminations`` are set (an unhealthy Hopper, Walker2d,
  Ant, Humanoid); ``truncated`` at ``episode_limit`` steps (default: the package's own ``TimeLimit`` —
  1000, or 50 for Reacher; a different value is passed to it as ``max_episode_steps``).
* **Seeding**: :meth:`reset` draws one seed per instance from the env's torch generator and calls the
  package's ``reset(seed=s_b)``; automatic resets call ``reset()`` without a seed, so instance ``b``
  continues its own numpy stream. The same seed and actions give the same trajectories, with any ``workers``.
* **Checkpoints**: the MuJoCo states are not saved; :meth:`load_state_dict` restores the generator and
  restarts every episode (documented approximation of resume).

Refused (:data:`UNSUPPORTED`, with the reason in the error): ``CoupledHalfCheetah-1p1`` (gymnasium-robotics 1.4.2
fails on it with mujoco 3: ``IndexError`` in ``obsk.py`` reading ``data.ten_J``) and ``Pusher-3p`` (three joints
share one label, so the package orders agent 0's observation differently in different instances). Not registered:
the single-agent ``agent_conf=None`` tasks, and the ``ManySegment*`` family beyond the few names of
:data:`MAMUJOCO_TASKS` (any ``NxK`` works with :class:`MaMuJoCoEnv`).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import tempfile
from typing import Any, Callable, Iterator, Mapping, Sequence

import numpy as np
import torch

from ._extras import import_extra
from .base import AgentSpace, EnvSpec, MultiAgentEnv, RestartsOnResume, Step, _check_int
from .workers import Field, VectorBackend, make_backend

__all__ = ["MaMuJoCoEnv", "PettingZooBoxEnv", "MAMUJOCO_TASKS", "INSTALL_HINT", "make_mamujoco",
           "require_gymnasium_robotics"]

INSTALL_HINT = 'pip install "seqmarl[mujoco]"  (or: pip install "gymnasium-robotics>=1.4,<1.5" "mujoco>=3,<4")'

# The agent_conf values that gymnasium-robotics 1.4.2 accepts per scenario (obsk.get_parts_and_edges; the
# package exposes no list). ManySegment* accept any "NxK"; a few common ones are registered.
MAMUJOCO_TASKS: dict[str, tuple[str, ...]] = {
    "HalfCheetah": ("2x3", "6x1"),
    "Ant": ("2x4", "2x4d", "4x2"),
    "Hopper": ("3x1",),
    "Walker2d": ("2x3",),
    "Humanoid": ("9|8",),
    "HumanoidStandup": ("9|8",),
    "Reacher": ("2x1",),
    "Swimmer": ("2x1",),
    "ManySegmentSwimmer": ("4x2", "10x2"),
    "ManySegmentAnt": ("2x3", "3x2"),
}
_PARAMETRIC = ("ManySegmentSwimmer", "ManySegmentAnt")
# scenarios the package offers but that are refused here, with the reason (gymnasium-robotics 1.4.2, mujoco 3)
UNSUPPORTED: dict[str, str] = {
    "CoupledHalfCheetah": "gymnasium-robotics 1.4.2 fails to build it with mujoco 3 (IndexError in obsk.py reading "
                          "data.ten_J)",
    "Pusher": "gymnasium-robotics 1.4.2 gives three Pusher joints the same label 'r_wrist_roll_joint' (obsk.py), and "
              "get_joints_at_kdist orders observations by label from a set, so the order of agent 0's observation "
              "entries differs between instances (non-deterministic observations)",
}
OBS_MODES = ("agent_obsk", "state+id")


def require_gymnasium_robotics(env: str | None = None) -> Any:
    """Import ``gymnasium_robotics.mamujoco_v1`` or raise :class:`~seqmarl.envs.MissingExtraError` (an
    ``ImportError``) naming the ``mujoco`` extra."""
    import_extra("mujoco", "mujoco", env)
    return import_extra("gymnasium_robotics", "mujoco", env).mamujoco_v1


@contextlib.contextmanager
def _asset_lock(scenario: str) -> Iterator[None]:
    """ManySegment* scenarios write and delete a generated XML inside the package's asset folder (one file
    name per segment count), so concurrent constructions in several worker processes are serialised."""
    if scenario not in _PARAMETRIC:
        yield
        return
    import fcntl

    path = os.path.join(tempfile.gettempdir(), "seqmarl-mamujoco-assets.lock")
    with open(path, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _route_mujoco_warnings() -> None:
    """MuJoCo's default warning handler prints and appends to ``MUJOCO_LOG.TXT`` in the working directory (e.g. the
    compiler's "settotalmass is deprecated" for some gymnasium models); unless a handler is installed already, send
    each distinct warning once to the ``seqmarl.envs.mamujoco`` logger instead."""
    try:
        import mujoco
    except ImportError:  # pragma: no cover
        return
    if getattr(mujoco, "get_mju_user_warning", None) is None or mujoco.get_mju_user_warning() is not None:
        return
    seen: set[str] = set()

    def warn(message: str) -> None:  # each distinct message once per process (models are compiled per instance)
        text = message.strip()
        if text not in seen:
            seen.add(text)
            logging.getLogger(__name__).warning("MuJoCo: %s", text)

    mujoco.set_mju_user_warning(warn)


def make_mamujoco(scenario: str, agent_conf: str, agent_obsk: int = 1, max_episode_steps: int | None = None,
                  **kwargs: Any) -> Any:
    """One package environment, ``mamujoco_v1.parallel_env(scenario, agent_conf, agent_obsk, **kwargs)``
    (picklable as a ``functools.partial`` for worker processes). ``max_episode_steps`` goes to the package's
    ``gymnasium.make`` (its ``TimeLimit``)."""
    mamujoco_v1 = require_gymnasium_robotics()
    _route_mujoco_warnings()
    if max_episode_steps is not None:
        kwargs["max_episode_steps"] = max_episode_steps
    with _asset_lock(scenario):
        return mamujoco_v1.parallel_env(scenario, agent_conf, agent_obsk=agent_obsk, **kwargs)


# --------------------------------------------------------------------------------------------------
# the simulator slice (runs in this process or in a worker)
# --------------------------------------------------------------------------------------------------
def pettingzoo_fields(n: int, obs_dim: int, state_dim: int, act_dim: int) -> list[Field]:
    """Shared buffers of :class:`PettingZooSlice`: inputs ``seeds``, ``actions``; outputs of the last step
    ``obs``/``state`` (the observation reached, before any reset), ``reward`` (float64, as the package),
    ``terminated``/``truncated`` (the package's flags), ``done`` (the slice restarted the instance), and
    ``reset_obs``/``reset_state`` (the first observation of the new episode where ``done``)."""
    return [Field("seeds", (), "int64"), Field("actions", (n, act_dim), "float32"),
            Field("obs", (n, obs_dim), "float32"), Field("state", (state_dim,), "float32"),
            Field("reward", (), "float64"), Field("terminated", (), "bool"), Field("truncated", (), "bool"),
            Field("done", (), "bool"), Field("reset_obs", (n, obs_dim), "float32"),
            Field("reset_state", (state_dim,), "float32")]


class PettingZooSlice:
    """``k`` PettingZoo parallel environments with Box actions stepped in a loop (a
    :class:`~seqmarl.envs.workers.SliceSimulator`).

    Per instance and step: the agents' actions ``actions[b, i, :act_dims[i]]`` go to ``env.step`` as a dict;
    the observations are written zero-padded, ``state()`` is read, the reward is the first agent's (shared),
    ``terminated``/``truncated`` are "any agent's". The instance is restarted (``env.reset()`` without seed)
    when it terminated, was truncated by the package, or reached ``episode_limit`` steps.

    The Python loop over instances only calls the package; the shared buffers are written once per step for the
    whole slice (one gather of every padded observation, one write per flag), not once per instance.
    """

    def __init__(self, k: int, env_fn: Callable[[], Any], obs_sizes: Sequence[int], act_dims: Sequence[int],
                 obs_dim: int, episode_limit: int, agent_obs: bool = True) -> None:
        self.k = int(k)
        #: write the agents' observations to ``obs``; False (``obs="state+id"``, which reads only the state) leaves
        #: ``obs``/``reset_obs`` at zero, and :class:`MaMuJoCoSlice` then does not build them at all
        self.agent_obs = bool(agent_obs)
        self.envs = [env_fn() for _ in range(self.k)]
        self.agents = list(self.envs[0].possible_agents)
        self.act_dims = tuple(int(d) for d in act_dims)
        self.episode_limit = int(episode_limit)
        sizes = tuple(int(s) for s in obs_sizes)
        n = len(sizes)
        # flat positions of every real observation entry inside one padded [n, obs_dim] row, and inside the
        # slice's whole [k, n, obs_dim] block
        self._obs_index = np.concatenate([i * obs_dim + np.arange(s) for i, s in enumerate(sizes)])
        self._obs_index_all = (np.arange(self.k)[:, None] * (n * obs_dim) + self._obs_index[None, :]).reshape(-1)
        self._elapsed = np.zeros(self.k, dtype=np.int64)
        self.buffers: Mapping[str, np.ndarray] = {}

    def bind(self, buffers: Mapping[str, np.ndarray]) -> None:
        for name in ("obs", "reset_obs"):
            if name in buffers and not buffers[name].flags.c_contiguous:
                raise ValueError(f"buffer {name!r} must be C-contiguous (written through a flat view)")
        self.buffers = buffers

    def _write_obs(self, obs: dict[str, np.ndarray], obs_buf: np.ndarray, state_buf: np.ndarray, env: Any) -> None:
        if self.agent_obs:
            obs_buf.reshape(-1)[self._obs_index] = np.concatenate([obs[a] for a in self.agents])
        state_buf[:] = env.state()

    def reset(self) -> None:
        seeds = self.buffers["seeds"]
        obs_buf, state_buf = self.buffers["obs"], self.buffers["state"]
        obs_buf[:] = 0.0
        self.buffers["reset_obs"][:] = 0.0
        for b, env in enumerate(self.envs):
            obs, _ = env.reset(seed=int(seeds[b]))
            self._write_obs(obs, obs_buf[b], state_buf[b], env)
        self._elapsed[:] = 0

    def _step_instance(self, b: int, env: Any, act: np.ndarray) -> tuple[dict[str, np.ndarray], Any, float, bool, bool]:
        """Step instance ``b`` with its ``[n, act_dim]`` actions: ``(observations, state, reward, term, trunc)``."""
        dims = self.act_dims
        obs, rewards, terms, truncs, _ = env.step({a: act[i, :dims[i]] for i, a in enumerate(self.agents)})
        return obs, env.state(), rewards[self.agents[0]], any(terms.values()), any(truncs.values())

    def step(self) -> None:
        buf = self.buffers
        actions = buf["actions"]
        agents = self.agents
        flat_obs: list[np.ndarray] = []
        states, rewards, terms, truncs = [], [], [], []
        for b, env in enumerate(self.envs):
            obs, state, reward, term, trunc = self._step_instance(b, env, actions[b])
            if self.agent_obs:
                flat_obs.extend([obs[a] for a in agents])
            states.append(state)
            rewards.append(reward)
            terms.append(term)
            truncs.append(trunc)
        if self.agent_obs:
            buf["obs"].reshape(-1)[self._obs_index_all] = np.concatenate(flat_obs)
        buf["state"][:] = states
        buf["reward"][:] = rewards
        buf["terminated"][:] = terms
        buf["truncated"][:] = truncs
        self._elapsed += 1
        done = buf["terminated"] | buf["truncated"] | (self._elapsed >= self.episode_limit)
        buf["done"][:] = done
        if done.any():
            for b in np.flatnonzero(done).tolist():
                env = self.envs[b]
                obs, _ = env.reset()
                self._write_obs(obs, buf["reset_obs"][b], buf["reset_state"][b], env)
                self._elapsed[b] = 0

    def close(self) -> None:
        for env in self.envs:
            with contextlib.suppress(Exception):
                env.close()
        self.envs = []


class MaMuJoCoSlice(PettingZooSlice):
    """:class:`PettingZooSlice` for ``mamujoco_v1`` instances, with the package's own step unrolled (same numbers):

    ``mamujoco_v1``'s ``step(actions)`` maps the agents' actions to the robot's action vector
    (``map_local_actions_to_global_action``: Python loops with asserts, per instance and step), steps the
    single-agent MuJoCo env, *discards* the observation it returns, and builds the agents' observations
    (``_get_obs``); its ``state()`` then computes that discarded observation again. Here the mapping is one
    precomputed gather for the whole slice — the permutation is read off the package's own mapping at start-up (a
    probe action whose entries are their own flat indices) — and the state is the single-agent observation the
    step returned (checked at start-up to equal ``state()``; where it does not, ``state()`` is called as before).
    With ``obs="state+id"`` (``agent_obs=False``) the agents' observations, which that mode never reads, are not
    built at all (HARL's state mode does not build them either); ``obs`` stays zero.
    The agents' observations, reward and flags are the package's (``_get_obs``; the single-agent
    ``terminated``/``truncated``, which the package copies to every agent), and ``agents`` is emptied at an
    episode end as the package does. Differential test: ``tests/envs/test_mamujoco_differential.py``.
    """

    def __init__(self, k: int, env_fn: Callable[[], Any], obs_sizes: Sequence[int], act_dims: Sequence[int],
                 obs_dim: int, episode_limit: int, agent_obs: bool = True) -> None:
        super().__init__(k, env_fn, obs_sizes, act_dims, obs_dim, episode_limit, agent_obs)
        env = self.envs[0]
        n, d = len(self.agents), max(self.act_dims)
        probe = {a: (i * d + np.arange(self.act_dims[i])).astype(np.float64) for i, a in enumerate(self.agents)}
        self._perm = np.asarray(env.map_local_actions_to_global_action(probe)).astype(np.int64)
        if sorted(self._perm.tolist()) != sorted(int(x) for x in np.concatenate(list(probe.values()))):
            raise RuntimeError("internal error: the package's action mapping is not a permutation of the agents' actions")
        self._n_act = n * d
        self._state_from_step = _step_observation_is_state(env_fn)
        self._global: np.ndarray | None = None

    def step(self) -> None:
        actions = self.buffers["actions"]
        # the robot's action vector of every instance at once, float64 as the package builds it
        self._global = actions.reshape(self.k, self._n_act)[:, self._perm].astype(np.float64)
        super().step()

    def _step_instance(self, b: int, env: Any, act: np.ndarray) -> tuple[dict[str, np.ndarray] | None, Any, float, bool, bool]:
        assert self._global is not None
        single, reward, term, trunc, _ = env.single_agent_env.step(self._global[b])
        obs = env._get_obs() if self.agent_obs else None  # state+id reads the state only: nothing to build
        if term or trunc:
            env.agents = []
        return obs, (single if self._state_from_step else env.state()), reward, bool(term), bool(trunc)


def _step_observation_is_state(env_fn: Callable[[], Any]) -> bool:
    """Does the single-agent step of a fresh ``env_fn()`` instance return the package's ``state()``? (A zero
    action from ``reset(seed=0)``; any failure answers no, and ``state()`` is then called every step.)"""
    try:
        env = env_fn()
    except Exception:  # noqa: BLE001 - the slice's own instances were built; a probe failure only costs speed
        return False
    try:
        env.reset(seed=0)
        single = env.single_agent_env
        observation = single.step(np.zeros(single.action_space.shape, dtype=np.float64))[0]
        return bool(np.array_equal(np.asarray(observation), np.asarray(env.state())))
    except Exception:  # noqa: BLE001
        return False
    finally:
        with contextlib.suppress(Exception):
            env.close()


# --------------------------------------------------------------------------------------------------
# the batched adapter
# --------------------------------------------------------------------------------------------------
class PettingZooBoxEnv(RestartsOnResume, MultiAgentEnv):
    """Batched adapter of any PettingZoo parallel environment with Box action spaces and a ``state()``.

    Args:
        env_fn: picklable zero-argument callable building one environment (e.g. a ``functools.partial`` of a
            module-level function) — called once here to read the spaces, then once per instance.
        num_envs, device, seed, check_actions: as every :class:`MultiAgentEnv`.
        episode_limit: steps before truncation (the environments' own time limit must not be shorter).
        obs: ``"agent_obsk"`` (the environment's own observations, padded) or ``"state+id"`` (module docstring).
        normalize: in ``"state+id"`` mode, standardise each observation vector and the state (HARL).
        workers: 0 = step in this process; ``W >= 1`` worker processes (:mod:`seqmarl.envs.workers`).
        start_method: multiprocessing start method of the workers.
        clip_actions: clip actions into the boxes before stepping (module docstring).
    """

    #: the simulator slice run by the backend (a subclass may unroll its package's step, e.g. MaMuJoCo)
    slice_class: type[PettingZooSlice] = PettingZooSlice

    def __init__(self, env_fn: Callable[[], Any], num_envs: int = 1, device: str | torch.device | None = "cpu",
                 seed: int | None = None, episode_limit: int = 1000, obs: str = "agent_obsk", normalize: bool = True,
                 workers: int = 0, start_method: str = "spawn", clip_actions: bool = True,
                 check_actions: bool = True) -> None:
        if obs not in OBS_MODES:
            raise ValueError(f"obs must be one of {OBS_MODES}, got {obs!r}")
        for name, value in (("normalize", normalize), ("clip_actions", clip_actions)):
            if not isinstance(value, bool):
                raise TypeError(f"{name} must be a bool, got {type(value).__name__}")
        limit = _check_int(episode_limit, "episode_limit", 1)
        probe = env_fn()
        try:
            probe.reset(seed=0)
            agents = list(probe.possible_agents)
            obs_sizes = tuple(int(np.prod(probe.observation_space(a).shape)) for a in agents)
            boxes = [probe.action_space(a) for a in agents]
            state_dim = int(np.asarray(probe.state()).size)
        finally:
            probe.close()
        for a, box in zip(agents, boxes):
            if getattr(box, "shape", None) is None or len(box.shape) != 1 or not np.issubdtype(box.dtype, np.floating):
                raise ValueError(f"agent {a!r} has action space {box}; PettingZooBoxEnv needs 1-d Box actions")
        self.agent_names: tuple[str, ...] = tuple(agents)
        self.obs_sizes: tuple[int, ...] = obs_sizes
        self.act_dims: tuple[int, ...] = tuple(int(box.shape[0]) for box in boxes)
        self.obs_mode = obs
        self.normalize = normalize
        self.clip_actions = clip_actions
        n = len(agents)
        raw_obs_dim = max(obs_sizes)
        obs_dim = raw_obs_dim if obs == "agent_obsk" else state_dim + n
        spaces = tuple(AgentSpace.continuous(tuple(float(x) for x in box.low), tuple(float(x) for x in box.high),
                                             (int(box.shape[0]),)) for box in boxes)
        spec = EnvSpec(n_agents=n, obs_dim=obs_dim, state_dim=state_dim, agent_spaces=spaces, episode_limit=limit)
        super().__init__(spec, num_envs, device, seed, check_actions)
        fields = pettingzoo_fields(n, raw_obs_dim, state_dim, spec.act_dim)
        factory = functools.partial(self.slice_class, env_fn=env_fn, obs_sizes=obs_sizes, act_dims=self.act_dims,
                                    obs_dim=raw_obs_dim, episode_limit=limit, agent_obs=obs == "agent_obsk")
        self._backend: VectorBackend | None = make_backend(factory, self.num_envs, fields, workers, start_method)
        self.workers = self._backend.workers
        self._eye = torch.eye(n, dtype=torch.float32, device=self.device)
        self._in_step = False
        self._obs: torch.Tensor | None = None
        self._state: torch.Tensor | None = None
        self._slice_done: torch.Tensor | None = None
        #: the package seeds of the last full reset, one per instance (module docstring, "Seeding")
        self.instance_seeds: tuple[int, ...] = ()

    # --- helpers ------------------------------------------------------------------------------------
    def _buffers(self) -> dict[str, np.ndarray]:
        if self._backend is None:
            raise RuntimeError("the environment is closed")
        return self._backend.buffers

    def _tensor(self, name: str) -> torch.Tensor:
        """A fresh copy of a shared buffer on the env's device (the buffer is overwritten next step)."""
        t = torch.from_numpy(self._buffers()[name])
        return t.to(self.device, copy=True) if self.device.type != "cpu" else t.clone()

    def _present(self, raw_obs: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.obs_mode == "agent_obsk":
            return raw_obs, state
        b, n = state.shape[0], self._spec.n_agents
        obs = torch.cat([state.unsqueeze(1).expand(b, n, -1), self._eye.expand(b, n, n)], dim=-1)
        if self.normalize:  # HARL MujocoMulti.get_obs / get_state: per-vector z-score (np.std: population)
            obs = (obs - obs.mean(-1, keepdim=True)) / obs.std(-1, unbiased=False, keepdim=True)
            state = (state - state.mean(-1, keepdim=True)) / state.std(-1, unbiased=False, keepdim=True)
        return obs, state

    # --- protocol hooks -----------------------------------------------------------------------------
    def _reset_where(self, mask: torch.Tensor) -> None:
        if self._in_step:  # automatic reset after a step: the slices already restarted the ended instances
            self._in_step = False
            assert self._slice_done is not None and self._obs is not None and self._state is not None
            if not torch.equal(mask.cpu(), self._slice_done):
                raise RuntimeError("internal error: the instances that ended in the simulators "
                                   f"({self._slice_done.nonzero().flatten().tolist()}) differ from the episodes "
                                   f"ended by the protocol ({mask.nonzero().flatten().tolist()}); is the package's "
                                   "time limit shorter than episode_limit?")
            if bool(mask.any()):
                new_obs, new_state = self._present(self._tensor("reset_obs"), self._tensor("reset_state"))
                m = mask.to(self.device)
                self._obs = torch.where(m[:, None, None], new_obs, self._obs)
                self._state = torch.where(m[:, None], new_state, self._state)
            return
        # a full reset: one seed per instance from the generator (same consumption for every call)
        seeds = torch.randint(0, 2**31 - 1, (self.num_envs,), generator=self._generator, device=self.device)
        backend = self._backend
        if backend is None:
            raise RuntimeError("the environment is closed")
        self.instance_seeds = tuple(int(x) for x in seeds.cpu().tolist())
        backend.reset(np.asarray(self.instance_seeds, dtype=np.int64))
        self._obs, self._state = self._present(self._tensor("obs"), self._tensor("state"))

    def _advance(self, actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        self._advance_start(actions)
        return self._advance_finish()

    def _advance_start(self, actions: torch.Tensor) -> None:
        """Write the actions and start the slices (worker processes step while this returns)."""
        backend = self._backend
        if backend is None:
            raise RuntimeError("the environment is closed")
        np.copyto(backend.buffers["actions"], actions.detach().to("cpu", torch.float32).numpy())
        backend.step_begin()

    def _advance_finish(self) -> tuple[torch.Tensor, torch.Tensor]:
        backend = self._backend
        if backend is None:
            raise RuntimeError("the environment is closed")
        backend.step_end()
        self._obs, self._state = self._present(self._tensor("obs"), self._tensor("state"))
        self._slice_done = torch.from_numpy(backend.buffers["done"].copy())
        self._in_step = True
        reward = torch.from_numpy(backend.buffers["reward"].astype(np.float32)).to(self.device)
        terminated = torch.from_numpy(backend.buffers["terminated"].copy()).to(self.device)
        return reward, terminated

    def _observe(self) -> tuple[torch.Tensor, torch.Tensor, None]:
        if self._obs is None or self._state is None:
            raise RuntimeError("call reset() before step()")
        return self._obs, self._state, None

    # --- lifecycle ------------------------------------------------------------------------------------
    def load_state_dict(self, state: dict[str, Any]) -> Step:
        """:class:`~seqmarl.envs.base.RestartsOnResume` (simulator states cannot be saved; module docstring)."""
        self._in_step = False
        return super().load_state_dict(state)

    def close(self) -> None:
        """Stop the simulators (and the worker processes). Idempotent."""
        backend, self._backend = getattr(self, "_backend", None), None
        if backend is not None:
            backend.close()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self.close()

    def __enter__(self) -> "PettingZooBoxEnv":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class MaMuJoCoEnv(PettingZooBoxEnv):
    """``B`` copies of ``gymnasium_robotics.mamujoco_v1.parallel_env(scenario, agent_conf)`` (module docstring),
    stepped by :class:`MaMuJoCoSlice` (the package's step unrolled: same numbers, less Python).

    Args:
        scenario: e.g. ``"HalfCheetah"``, ``"Ant"`` (keys of :data:`MAMUJOCO_TASKS`).
        agent_conf: the package's factorisation, e.g. ``"6x1"``, ``"2x4"``.
        agent_obsk: the package's observation depth ``k`` (``obs="agent_obsk"``; 1 by default as the package).
        episode_limit: ``None`` = the package's time limit (1000; Reacher 50).
        package_kwargs: extra keyword arguments for the package (e.g. ``ctrl_cost_weight``).
        broken_agents: indices of agents whose actuators are disabled (their actions replaced by 0 before every
            step): the "broken joints" tasks of MAT's generalisation study (Wen et al. 2022 §5), e.g.
            ``seqmarl.envs.make("mamujoco/HalfCheetah-6x1", broken_agents=(1,))``. The agents still observe and act.
        Others: :class:`PettingZooBoxEnv`.
    """

    slice_class = MaMuJoCoSlice

    def __init__(self, scenario: str, agent_conf: str, num_envs: int = 1, device: str | torch.device | None = "cpu",
                 seed: int | None = None, obs: str = "agent_obsk", agent_obsk: int = 1,
                 episode_limit: int | None = None, normalize: bool = True, workers: int = 0,
                 start_method: str = "spawn", clip_actions: bool = True, check_actions: bool = True,
                 package_kwargs: dict[str, Any] | None = None, broken_agents: Sequence[int] = ()) -> None:
        require_gymnasium_robotics(f"mamujoco/{scenario}-{agent_conf}")
        if scenario in UNSUPPORTED:
            raise ValueError(f"MaMuJoCo scenario {scenario!r} is not supported: {UNSUPPORTED[scenario]}")
        if scenario not in MAMUJOCO_TASKS:
            raise ValueError(f"unknown MaMuJoCo scenario {scenario!r}; known scenarios: {sorted(MAMUJOCO_TASKS)}")
        if not isinstance(agent_conf, str):
            raise TypeError(f"agent_conf must be a str such as '2x3', got {type(agent_conf).__name__}")
        obsk = _check_int(agent_obsk, "agent_obsk", 0)
        if episode_limit is not None:
            episode_limit = _check_int(episode_limit, "episode_limit", 1)
        env_fn = functools.partial(make_mamujoco, scenario, agent_conf, obsk, episode_limit, **(package_kwargs or {}))
        try:
            probe = env_fn()
        except Exception as exc:
            if "UNKNOWN partitioning config" in str(exc):
                raise ValueError(f"agent_conf {agent_conf!r} is not a factorisation of {scenario} in gymnasium-robotics; "
                                 f"known: {list(MAMUJOCO_TASKS[scenario])}"
                                 + (" (or any 'NxK')" if scenario in _PARAMETRIC else "")) from None
            raise
        try:
            package_limit = probe.single_agent_env.spec.max_episode_steps
        finally:
            probe.close()
        self.scenario, self.agent_conf, self.agent_obsk = scenario, agent_conf, obsk
        if isinstance(broken_agents, str) and broken_agents.replace(",", "").replace(" ", "").isdigit():
            broken_agents = tuple(int(x) for x in broken_agents.replace(" ", "").split(",") if x)  # CLI: "1,3"
        elif isinstance(broken_agents, int) and not isinstance(broken_agents, bool):
            broken_agents = (broken_agents,)
        if isinstance(broken_agents, (str, bytes)) or not isinstance(broken_agents, Sequence) or any(
                isinstance(i, bool) or not isinstance(i, int) for i in broken_agents):
            raise TypeError(f"broken_agents must be a sequence of agent indices such as (0, 2), got {broken_agents!r}")
        self.broken_agents = tuple(sorted(set(int(i) for i in broken_agents)))
        super().__init__(env_fn, num_envs=num_envs, device=device, seed=seed,
                         episode_limit=episode_limit if episode_limit is not None else int(package_limit),
                         obs=obs, normalize=normalize, workers=workers, start_method=start_method,
                         clip_actions=clip_actions, check_actions=check_actions)

        n = self._spec.n_agents
        bad = [i for i in self.broken_agents if not 0 <= i < n]
        if bad:
            self.close()
            raise ValueError(f"broken_agents must index agents 0..{n - 1} of {scenario}-{agent_conf}, got {bad}")
        self._working = torch.ones(n, 1, dtype=torch.float32)
        self._working[list(self.broken_agents)] = 0.0

    def _advance_start(self, actions: torch.Tensor) -> None:
        """Broken agents (``broken_agents``): their actuators are disabled — their actions are replaced by 0
        (no torque) before the simulator sees them (MAT's "broken joints" evaluation, Wen et al. 2022 §5)."""
        if self.broken_agents:
            actions = actions.detach().to("cpu", torch.float32) * self._working
        super()._advance_start(actions)

    def __repr__(self) -> str:
        return (f"MaMuJoCoEnv({self.scenario!r}, {self.agent_conf!r}, num_envs={self.num_envs}, obs={self.obs_mode!r}, "
                f"workers={self.workers}, n_agents={self._spec.n_agents}, obs_sizes={self.obs_sizes}, "
                f"act_dims={self.act_dims})")


def registry_entries() -> dict[str, Callable[..., MaMuJoCoEnv]]:
    """``{"mamujoco/<Scenario>-<conf>": factory}`` for every entry of :data:`MAMUJOCO_TASKS` (the factories
    import the package only when called, so the names are listed without the extra installed)."""
    out = {}
    for scenario, confs in MAMUJOCO_TASKS.items():
        for conf in confs:
            out[f"mamujoco/{scenario}-{conf}"] = _factory(scenario, conf)
    return out


def _factory(scenario: str, conf: str) -> Callable[..., MaMuJoCoEnv]:
    def factory(num_envs: int = 1, device: str | torch.device | None = "cpu", seed: int | None = None,
                obs: str = "agent_obsk", agent_obsk: int = 1, episode_limit: int | None = None, normalize: bool = True,
                workers: int = 0, start_method: str = "spawn", clip_actions: bool = True,
                package_kwargs: dict[str, Any] | None = None, broken_agents: Sequence[int] = ()) -> MaMuJoCoEnv:
        return MaMuJoCoEnv(scenario, conf, num_envs=num_envs, device=device, seed=seed, obs=obs, agent_obsk=agent_obsk,
                           episode_limit=episode_limit, normalize=normalize, workers=workers,
                           start_method=start_method, clip_actions=clip_actions, package_kwargs=package_kwargs,
                           broken_agents=broken_agents)

    factory.__name__ = f"mamujoco_{scenario}_{conf}"
    factory.__doc__ = f"``MaMuJoCoEnv({scenario!r}, {conf!r}, ...)`` (seqmarl.envs.mamujoco)."
    return factory
