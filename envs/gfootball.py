"""Google Research Football academy scenarios on the real ``gfootball`` package: ``gfootball/<scenario>``.

Needs ``pip install "seqmarl[gfootball]"`` (``gfootball>=2.10``, ``gym``). gfootball has no wheels: pip compiles
its C++ engine, which needs system packages first (Debian/Ubuntu: ``apt-get install cmake build-essential
libgl1-mesa-dev libsdl2-dev libsdl2-image-dev libsdl2-ttf-dev libsdl2-gfx-dev libboost-python-dev
libboost-system-dev libboost-filesystem-dev libboost-thread-dev``) and takes several minutes; it is therefore not
part of ``make install``.

Conventions (sources: ``gfootball/env/__init__.py`` ``create_environment``, ``football_env.py``,
``football_env_core.py`` and ``scenarios/academy_*.py`` of gfootball 2.10.2; HARL,
``harl/envs/football/football_env.py`` of PKU-MARL/HARL):

* **Instances**: ``gfootball.env.create_environment(env_name=scenario, representation="simple115v2",
  rewards=rewards, number_of_left_players_agent_controls=n, other_config_options={"game_engine_random_seed":
  s_b})``, ``B`` of them stepped in this process (``workers=0``) or by worker processes
  (:mod:`seqmarl.envs.workers`). The default ``n`` per scenario is HARL's (:data:`GFOOTBALL_SCENARIOS`).
* **Observations** ``[B, n, 115]``: the package's ``simple115v2`` vector of each controlled player.
* **State** ``[B, 115 + 11 (n - 1)]``: the global part of the simple115 layout once — positions and directions of
  both teams (22 numbers each, missing players filled with ``-1``), ball position and direction, ball-owner one-hot
  (none/left/right), game-mode one-hot (7) — then the active-player one-hot (11) of every controlled player, read
  from the raw observation ``env.unwrapped.observation()``; the layout of HARL's ``FootballEnv.get_state``.
* **Actions**: ``Discrete(19)`` per player (the default action set), always available.
* **Reward**: the package's reward of the first controlled player (every left player gets the same ``scoring``
  reward; HARL uses ``rew[0]`` too). ``rewards="scoring,checkpoints"`` adds the package's checkpoint shaping.
* **Episode ends**: the package's ``done`` before the scenario's ``game_duration`` (a goal, a lost ball, the ball
  out: academy scenarios end there) is ``terminated``; reaching ``game_duration`` (400 steps; 3000 for
  ``academy_single_goal_versus_lazy``) is ``truncated``.
* **Seeding**: instance ``b``'s engine seed ``s_b`` is drawn from the env's generator at construction
  (``game_engine_random_seed``); the engine keeps its own stream across episodes, so ``reset(seed)`` cannot
  re-seed it.
"""

from __future__ import annotations

import contextlib
import functools
from typing import Any, Callable, Mapping

import numpy as np
import torch

from ._extras import import_extra
from .base import AgentSpace, EnvSpec, MultiAgentEnv, RestartsOnResume, _check_int
from .workers import Field, VectorBackend, make_backend

__all__ = ["GFootballEnv", "GFootballSlice", "GFOOTBALL_SCENARIOS", "simple115_state", "registry_entries"]

# scenario -> (controlled left players as in HARL's env_num_agents, game_duration of the scenario file)
GFOOTBALL_SCENARIOS: dict[str, tuple[int, int]] = {
    "academy_pass_and_shoot_with_keeper": (2, 400),
    "academy_run_pass_and_shoot_with_keeper": (2, 400),
    "academy_3_vs_1_with_keeper": (3, 400),
    "academy_counterattack_easy": (4, 400),
    "academy_counterattack_hard": (4, 400),
    "academy_corner": (11, 400),
    "academy_single_goal_versus_lazy": (11, 3000),
}
N_ACTIONS = 19
OBS_DIM = 115


def simple115_state(raw: list[Mapping[str, Any]]) -> np.ndarray:
    """The global state of the module docstring from the raw observations (one dict per controlled player)."""
    first = raw[0]
    parts: list[np.ndarray] = []
    for key in ("left_team", "left_team_direction", "right_team", "right_team_direction"):
        values = np.asarray(first[key], dtype=np.float32).reshape(-1)[:22]
        parts.append(np.concatenate([values, np.full(22 - values.size, -1.0, dtype=np.float32)]))
    parts.append(np.asarray(first["ball"], dtype=np.float32).reshape(3))
    parts.append(np.asarray(first["ball_direction"], dtype=np.float32).reshape(3))
    owner = np.zeros(3, dtype=np.float32)
    owner[int(first["ball_owned_team"]) + 1] = 1.0  # -1 none, 0 left, 1 right
    mode = np.zeros(7, dtype=np.float32)
    mode[int(first["game_mode"])] = 1.0
    parts += [owner, mode]
    for player in raw:
        active = np.zeros(11, dtype=np.float32)
        if int(player["active"]) != -1:
            active[int(player["active"])] = 1.0
        parts.append(active)
    return np.concatenate(parts)


def create_gfootball(scenario: str, n_agents: int, rewards: str, seed: int) -> Any:
    """One package environment (the call of the module docstring)."""
    env_module = import_extra("gfootball.env", "gfootball", f"gfootball/{scenario}")
    return env_module.create_environment(env_name=scenario, representation="simple115v2", rewards=rewards,
                                         number_of_left_players_agent_controls=n_agents, stacked=False, render=False,
                                         write_video=False, write_goal_dumps=False, write_full_episode_dumps=False,
                                         logdir="", other_config_options={"game_engine_random_seed": int(seed)})


class GFootballSlice:
    """``k`` gfootball environments stepped in a loop (a :class:`~seqmarl.envs.workers.SliceSimulator`).
    ``create_fn(seed)`` builds one; the seeds are read from the ``seeds`` buffer when the slice is first reset."""

    def __init__(self, k: int, create_fn: Callable[[int], Any], n_agents: int, episode_limit: int) -> None:
        self.k, self.create_fn, self.n = int(k), create_fn, int(n_agents)
        self.episode_limit = int(episode_limit)
        self.envs: list[Any] = []
        self._elapsed = np.zeros(self.k, dtype=np.int64)
        self.buffers: Mapping[str, np.ndarray] = {}

    @staticmethod
    def fields(n: int) -> list[Field]:
        state_dim = OBS_DIM + 11 * (n - 1)
        return [Field("seeds", (), "int64"), Field("actions", (n,), "int64"), Field("obs", (n, OBS_DIM), "float32"),
                Field("state", (state_dim,), "float32"), Field("reward", (), "float32"), Field("done", (), "bool"),
                Field("terminated", (), "bool"), Field("reset_obs", (n, OBS_DIM), "float32"),
                Field("reset_state", (state_dim,), "float32")]

    def bind(self, buffers: Mapping[str, np.ndarray]) -> None:
        self.buffers = buffers

    def _write(self, b: int, obs: Any, obs_name: str, state_name: str) -> None:
        env = self.envs[b]
        self.buffers[obs_name][b] = np.asarray(obs, dtype=np.float32).reshape(self.n, OBS_DIM)
        self.buffers[state_name][b] = simple115_state(env.unwrapped.observation())

    def reset(self) -> None:
        if not self.envs:  # the engine seed is fixed at creation
            self.envs = [self.create_fn(int(s)) for s in self.buffers["seeds"]]
        for b, env in enumerate(self.envs):
            self._write(b, env.reset(), "obs", "state")
        self._elapsed[:] = 0

    def step(self) -> None:
        actions = self.buffers["actions"]
        for b, env in enumerate(self.envs):
            obs, reward, done, _ = env.step([int(a) for a in actions[b]])
            self._write(b, obs, "obs", "state")
            self._elapsed[b] += 1
            ended = bool(done) or self._elapsed[b] >= self.episode_limit
            self.buffers["reward"][b] = float(np.asarray(reward, dtype=np.float32).reshape(-1)[0])
            self.buffers["terminated"][b] = bool(done) and self._elapsed[b] < self.episode_limit
            self.buffers["done"][b] = ended
            if ended:
                self._write(b, env.reset(), "reset_obs", "reset_state")
                self._elapsed[b] = 0

    def close(self) -> None:
        for env in self.envs:
            with contextlib.suppress(Exception):
                env.close()
        self.envs = []


class GFootballEnv(RestartsOnResume, MultiAgentEnv):
    """``B`` copies of a gfootball academy scenario (module docstring).

    Args:
        scenario: a key of :data:`GFOOTBALL_SCENARIOS` (or another scenario name of the package, with ``n_agents``
            and ``episode_limit`` given).
        n_agents: controlled left players (default: HARL's number for the scenario).
        rewards: the package's ``rewards`` option (``"scoring"`` or ``"scoring,checkpoints"``).
        episode_limit: default the scenario's ``game_duration``.
        workers, start_method: worker processes (:mod:`seqmarl.envs.workers`); 0 = this process.
        create_fn: ``create_fn(seed)`` building one environment (default: the package, :func:`create_gfootball`);
            must be picklable for ``workers >= 1``.
    """

    def __init__(self, scenario: str, num_envs: int = 1, device: str | torch.device | None = "cpu",
                 seed: int | None = None, n_agents: int | None = None, rewards: str = "scoring",
                 episode_limit: int | None = None, workers: int = 0, start_method: str = "spawn",
                 check_actions: bool = True, create_fn: Callable[[int], Any] | None = None) -> None:
        if not isinstance(scenario, str):
            raise TypeError(f"scenario must be a str, got {type(scenario).__name__}")
        known = GFOOTBALL_SCENARIOS.get(scenario)
        if known is None and (n_agents is None or episode_limit is None):
            raise ValueError(f"unknown gfootball scenario {scenario!r} (give n_agents and episode_limit for another "
                             f"scenario of the package); known: {sorted(GFOOTBALL_SCENARIOS)}")
        n = _check_int(n_agents if n_agents is not None else known[0], "n_agents", 1)  # type: ignore[index]
        limit = _check_int(episode_limit if episode_limit is not None else known[1], "episode_limit", 1)  # type: ignore[index]
        if create_fn is None:
            import_extra("gfootball.env", "gfootball", f"gfootball/{scenario}")
            create_fn = functools.partial(create_gfootball, scenario, n, rewards)
        self.scenario, self.rewards = scenario, rewards
        spec = EnvSpec(n_agents=n, obs_dim=OBS_DIM, state_dim=OBS_DIM + 11 * (n - 1),
                       agent_spaces=(AgentSpace.discrete(N_ACTIONS),) * n, episode_limit=limit)
        super().__init__(spec, num_envs, device, seed, check_actions)
        factory = functools.partial(GFootballSlice, create_fn=create_fn, n_agents=n, episode_limit=limit)
        # engine seeds: drawn now, used when the slices first reset (creation)
        self._seeds = torch.randint(0, 2**31 - 1, (self.num_envs,), generator=self._generator,
                                    device=self.device).cpu().numpy()
        self._backend: VectorBackend | None = make_backend(factory, self.num_envs, GFootballSlice.fields(n), workers,
                                                           start_method)
        self.workers = self._backend.workers
        self._avail = torch.ones(self.num_envs, n, N_ACTIONS, dtype=torch.bool, device=self.device)
        self._obs: torch.Tensor | None = None
        self._state: torch.Tensor | None = None
        self._in_step = False
        self._slice_done: torch.Tensor | None = None

    def _tensor(self, name: str) -> torch.Tensor:
        if self._backend is None:
            raise RuntimeError("the environment is closed")
        return torch.from_numpy(self._backend.buffers[name]).to(self.device, copy=True)

    def _reset_where(self, mask: torch.Tensor) -> None:
        if self._in_step:
            self._in_step = False
            assert self._slice_done is not None and self._obs is not None and self._state is not None
            if not torch.equal(mask.cpu(), self._slice_done):
                raise RuntimeError("internal error: episodes ended by the simulators differ from the protocol's")
            m = mask.to(self.device)
            self._obs = torch.where(m[:, None, None], self._tensor("reset_obs"), self._obs)
            self._state = torch.where(m[:, None], self._tensor("reset_state"), self._state)
            return
        if self._backend is None:
            raise RuntimeError("the environment is closed")
        self._backend.reset(self._seeds)
        self._obs, self._state = self._tensor("obs"), self._tensor("state")

    def _advance(self, actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self._backend is None:
            raise RuntimeError("the environment is closed")
        np.copyto(self._backend.buffers["actions"], actions.cpu().numpy())
        self._backend.step()
        self._obs, self._state = self._tensor("obs"), self._tensor("state")
        self._slice_done = torch.from_numpy(self._backend.buffers["done"].copy())
        self._in_step = True
        return self._tensor("reward"), self._tensor("terminated")

    def _observe(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        if self._obs is None or self._state is None:
            raise RuntimeError("call reset() before step()")
        return self._obs, self._state, self._avail.clone()

    def _current_avail(self) -> torch.Tensor:
        return self._avail

    def close(self) -> None:
        """Stop the simulators (and the worker processes). Idempotent."""
        backend, self._backend = getattr(self, "_backend", None), None
        if backend is not None:
            backend.close()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self.close()


def registry_entries() -> dict[str, Callable[..., GFootballEnv]]:
    """``{"gfootball/<scenario>": factory}`` for :data:`GFOOTBALL_SCENARIOS`."""
    return {f"gfootball/{s}": _factory(s) for s in GFOOTBALL_SCENARIOS}


def _factory(scenario: str) -> Callable[..., GFootballEnv]:
    def factory(num_envs: int = 1, device: str | torch.device | None = "cpu", seed: int | None = None,
                n_agents: int | None = None, rewards: str = "scoring", episode_limit: int | None = None,
                workers: int = 0, start_method: str = "spawn") -> GFootballEnv:
        return GFootballEnv(scenario, num_envs=num_envs, device=device, seed=seed, n_agents=n_agents, rewards=rewards,
                            episode_limit=episode_limit, workers=workers, start_method=start_method)

    factory.__name__ = f"gfootball_{scenario}"
    factory.__doc__ = f"``GFootballEnv({scenario!r}, ...)`` (seqmarl.envs.gfootball)."
    return factory
