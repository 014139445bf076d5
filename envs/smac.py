"""StarCraft Multi-Agent Challenge on the real ``smac`` (``smac/<map>``) and ``smacv2`` (``smacv2/<scenario>``).

Neither package is on PyPI (the PyPI project named ``smac`` is SMAC3, a hyperparameter optimiser) and both need
the StarCraft II game (``SC2PATH``), so they are not installed by any extra::

    pip install git+https://github.com/oxwhirl/smac.git      # smac/<map>
    pip install git+https://github.com/oxwhirl/smacv2.git    # smacv2/<scenario>
    # plus StarCraft II and the SMAC maps: see the two repositories' READMEs

Building a ``smac/*`` or ``smacv2/*`` name without its package raises :class:`SMACNotInstalled` (a
:class:`~seqmarl.envs.MissingExtraError`, hence an ``ImportError``) with the command above.

Conventions (sources: ``smac/env/starcraft2/starcraft2.py`` of oxwhirl/smac and ``smacv2/env/starcraft2/
starcraft2.py``, ``wrapper.py``, ``examples/configs/sc2_gen_*.yaml`` of oxwhirl/smacv2):

* **Instances**: ``B`` package environments stepped one after another in this process (each talks to its own
  StarCraft II process, which does the heavy work). The package's API (pymarl's ``MultiAgentEnv``):
  ``reset()``, ``step(actions) -> (reward, terminated, info)``, ``get_obs()``, ``get_state()``,
  ``get_avail_actions()``, ``get_env_info()``; :class:`PymarlEnv` adapts any object with that API.
* **Observations / state / masks**: ``get_obs()`` ``[n, obs_dim]``, ``get_state()``, ``get_avail_actions()``
  (0/1 lists, as bool).
* **Dead agents**: the package gives a dead unit zero observations and only the no-op (action 0) available;
  ``info["active"]`` / ``info["final_active"]`` ``[B, n]`` are ``death_tracker_ally == 0`` (every agent alive
  for an object without that attribute).
* **Reward**: the package's shared team reward (scaled as the package does by default).
* **Episode ends**: the package ends an episode on a battle result or at its time limit. The instances are built
  with ``continuing_episode=True``, whose only effect is that the package marks a time-limit end with
  ``info["episode_limit"] = True``: that end is ``truncated`` here (bootstrap), every other end ``terminated``.
  ``episode_limit`` is the map's (``get_env_info()["episode_limit"]``). A StarCraft II crash that the package
  recovers from (it then returns ``(0, True, {})``) ends the episode as ``terminated``.
  ``info["battle_won"]`` ``[B]`` is the package's flag of the step.
* **Seeding**: instance ``b`` is built with ``seed=s_b`` (the game's random seed, fixed when StarCraft II is
  launched), ``s_b`` drawn from the env's generator at construction; ``reset(seed)`` cannot re-seed running
  games, so StarCraft runs are not reproducible from ``reset(seed)`` alone (nor, for SMACv2, is the unit/position
  generation, which the package draws from an unseeded ``numpy.random.default_rng()``).
"""

from __future__ import annotations

import importlib
from typing import Any, Callable

import numpy as np
import torch

from ._extras import MissingExtraError
from .base import AgentSpace, EnvSpec, MultiAgentEnv, RestartsOnResume, Step, _check_int

__all__ = ["PymarlEnv", "SMACEnv", "SMACv2Env", "SMACNotInstalled", "SMAC_MAPS", "SMACV2_SCENARIOS",
           "smacv2_capability_config", "registry_entries"]

SMAC_URL = "https://github.com/oxwhirl/smac.git"
SMACV2_URL = "https://github.com/oxwhirl/smacv2.git"

# smac/env/starcraft2/maps/smac_maps.py of oxwhirl/smac (map_param_registry keys)
SMAC_MAPS: tuple[str, ...] = ("3m", "8m", "25m", "5m_vs_6m", "8m_vs_9m", "10m_vs_11m", "27m_vs_30m", "MMM", "MMM2",
                              "2s3z", "3s5z", "3s5z_vs_3s6z", "3s_vs_3z", "3s_vs_4z", "3s_vs_5z", "1c3s5z", "2m_vs_1z",
                              "corridor", "6h_vs_8z", "2s_vs_1sc", "so_many_baneling", "bane_vs_bane", "2c_vs_64zg")

# SMACv2 races: map, unit types, weights, exception_unit_types (smacv2 examples/configs/sc2_gen_<race>.yaml)
_RACES: dict[str, tuple[str, tuple[str, ...], tuple[float, ...], tuple[str, ...]]] = {
    "protoss": ("10gen_protoss", ("stalker", "zealot", "colossus"), (0.45, 0.45, 0.1), ()),
    "terran": ("10gen_terran", ("marine", "marauder", "medivac"), (0.45, 0.45, 0.1), ("medivac",)),
    "zerg": ("10gen_zerg", ("zergling", "baneling", "hydralisk"), (0.45, 0.1, 0.45), ("baneling",)),
}
# the scenarios of the SMACv2 paper: 5v5, 10v10, 20v20, 10v11, 20v23 per race
_SIZES: tuple[tuple[int, int], ...] = ((5, 5), (10, 10), (20, 20), (10, 11), (20, 23))
SMACV2_SCENARIOS: tuple[str, ...] = tuple(f"{race}_{a}_vs_{e}" for race in _RACES for a, e in _SIZES)


class SMACNotInstalled(MissingExtraError):
    """``smac`` / ``smacv2`` is missing (or the installed ``smac`` is SMAC3): the message has the git install line."""

    def __init__(self, package: str, url: str, env: str | None = None, detail: str | None = None) -> None:
        self.package, self.extra, self.env, self.url = package, "smac", env, url
        what = f"environment {env!r} needs" if env else "this environment needs"
        message = (f"{what} the package {package!r} (not on PyPI), which is not installed: pip install git+{url} "
                   "(and StarCraft II with the SMAC maps; see the repository's README)")
        if detail:
            message += f" ({detail})"
        ImportError.__init__(self, message, name=package)

    @property
    def install_hint(self) -> str:
        return f"pip install git+{self.url}"


def _import(module: str, package: str, url: str, env: str | None) -> Any:
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        detail = None
        if package == "smac" and (exc.name or "").startswith("smac."):
            detail = "the installed 'smac' has no smac.env: it is SMAC3 (hyperparameter optimisation), not StarCraft"
        elif exc.name and exc.name.split(".")[0] != package:
            detail = f"its dependency {exc.name!r} is missing"
        raise SMACNotInstalled(package, url, env, detail) from exc


def smacv2_capability_config(scenario: str) -> tuple[str, dict[str, Any]]:
    """``(map_name, capability_config)`` of a SMACv2 scenario ``"<race>_<n>_vs_<m>"`` as the package's example
    configs define them (weighted teams, ``surrounded_and_reflect`` start positions on a 32x32 map)."""
    try:
        race, n_units, vs, n_enemies = scenario.split("_")
        if vs != "vs" or race not in _RACES:
            raise ValueError
        n, m = int(n_units), int(n_enemies)
    except ValueError:
        raise ValueError(f"unknown SMACv2 scenario {scenario!r}; expected '<race>_<n>_vs_<m>' with race in "
                         f"{sorted(_RACES)}, e.g. {list(SMACV2_SCENARIOS[:3])}") from None
    map_name, units, weights, exceptions = _RACES[race]
    team_gen: dict[str, Any] = {"dist_type": "weighted_teams", "unit_types": list(units), "weights": list(weights),
                                "observe": True}
    if exceptions:
        team_gen["exception_unit_types"] = list(exceptions)
    config = {"n_units": n, "n_enemies": m, "team_gen": team_gen,
              "start_positions": {"dist_type": "surrounded_and_reflect", "p": 0.5, "map_x": 32, "map_y": 32}}
    return map_name, config


class PymarlEnv(RestartsOnResume, MultiAgentEnv):
    """Batched adapter of ``B`` objects with the pymarl/SMAC API (module docstring).

    Args:
        env_fn: ``env_fn(b)`` builds instance ``b`` (``b = 0..B-1``).
        num_envs, device, seed, check_actions: as every :class:`MultiAgentEnv`.
    """

    def __init__(self, env_fn: Callable[[int], Any], num_envs: int = 1, device: str | torch.device | None = "cpu",
                 seed: int | None = None, check_actions: bool = True) -> None:
        b = _check_int(num_envs, "num_envs", 1)
        self.instances: list[Any] = []
        try:
            for i in range(b):
                self.instances.append(env_fn(i))
            info = self.instances[0].get_env_info()
        except BaseException:
            self.close()
            raise
        n, n_actions = int(info["n_agents"]), int(info["n_actions"])
        spec = EnvSpec(n_agents=n, obs_dim=int(info["obs_shape"]), state_dim=int(info["state_shape"]),
                       agent_spaces=(AgentSpace.discrete(n_actions),) * n, episode_limit=int(info["episode_limit"]))
        super().__init__(spec, b, device, seed, check_actions)
        self._obs = torch.zeros(b, n, spec.obs_dim)
        self._state = torch.zeros(b, spec.state_dim)
        self._avail = torch.zeros(b, n, n_actions, dtype=torch.bool)
        self._active = torch.ones(b, n, dtype=torch.bool)
        self._won = torch.zeros(b, dtype=torch.bool)
        self._final_active = self._active.clone()

    # --- reading one instance -------------------------------------------------------------------------
    def _read(self, b: int) -> None:
        env = self.instances[b]
        self._obs[b] = torch.as_tensor(np.asarray(env.get_obs(), dtype=np.float32))
        self._state[b] = torch.as_tensor(np.asarray(env.get_state(), dtype=np.float32))
        self._avail[b] = torch.as_tensor(np.asarray(env.get_avail_actions()) != 0)
        dead = getattr(env, "death_tracker_ally", None)
        self._active[b] = True if dead is None else torch.as_tensor(np.asarray(dead) == 0)

    def _snapshot(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        d = self.device
        return self._obs.to(d, copy=True), self._state.to(d, copy=True), self._avail.to(d, copy=True)

    # --- protocol hooks -----------------------------------------------------------------------------
    def _reset_where(self, mask: torch.Tensor) -> None:
        for b in mask.cpu().nonzero().flatten().tolist():
            self.instances[b].reset()
            self._read(b)

    def _advance(self, actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        acts = actions.cpu().numpy()
        reward = torch.zeros(self.num_envs)
        terminated = torch.zeros(self.num_envs, dtype=torch.bool)
        for b, env in enumerate(self.instances):
            r, done, info = env.step([int(a) for a in acts[b]])
            info = info or {}
            reward[b] = float(r)
            terminated[b] = bool(done) and not bool(info.get("episode_limit", False))
            self._won[b] = bool(info.get("battle_won", False))
            self._read(b)
        self._final_active = self._active.clone()  # before the automatic reset
        return reward.to(self.device), terminated.to(self.device)

    def _observe(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return self._snapshot()

    def _current_avail(self) -> torch.Tensor:
        return self._avail.to(self.device)

    def step(self, actions: torch.Tensor) -> Step:
        """:meth:`MultiAgentEnv.step` plus ``info["active"]``, ``info["final_active"]`` and ``info["battle_won"]``."""
        out = super().step(actions)
        out.info["final_active"] = self._final_active.to(self.device)
        out.info["active"] = self._active.to(self.device, copy=True)
        out.info["battle_won"] = self._won.to(self.device, copy=True) & out.terminated
        return out

    def close(self) -> None:
        """Close every instance (and its StarCraft II process)."""
        for env in getattr(self, "instances", []):
            try:
                env.close()
            except Exception:  # noqa: BLE001 - best effort
                pass
        self.instances = []


def _seeds(seed: int | None, b: int) -> list[int]:
    gen = torch.Generator()
    if seed is None:
        gen.seed()
    else:
        gen.manual_seed(_check_int(seed, "seed", 0))
    return torch.randint(0, 2**31 - 1, (b,), generator=gen).tolist()


class SMACEnv(PymarlEnv):
    """``B`` copies of ``smac.env.StarCraft2Env(map_name=..., continuing_episode=True, seed=s_b, **package_kwargs)``."""

    def __init__(self, map_name: str, num_envs: int = 1, device: str | torch.device | None = "cpu",
                 seed: int | None = None, check_actions: bool = True, package_kwargs: dict[str, Any] | None = None) -> None:
        name = f"smac/{map_name}"
        module = _import("smac.env", "smac", SMAC_URL, name)
        if map_name not in SMAC_MAPS:
            raise ValueError(f"unknown SMAC map_name {map_name!r}; known maps: {list(SMAC_MAPS)}")
        seeds = _seeds(seed, _check_int(num_envs, "num_envs", 1))
        kwargs = {"continuing_episode": True, **(package_kwargs or {})}
        self.map_name = map_name
        super().__init__(lambda b: module.StarCraft2Env(map_name=map_name, seed=seeds[b], **kwargs), num_envs=num_envs,
                         device=device, seed=seed, check_actions=check_actions)


class SMACv2Env(PymarlEnv):
    """``B`` copies of ``smacv2.env.StarCraftCapabilityEnvWrapper`` for a scenario ``<race>_<n>_vs_<m>``, with the
    package's example options (``conic_fov=False``, ``use_unit_ranges=True``, ``min_attack_range=2``,
    ``obs_own_pos=True``, ``fully_observable=False``) and :func:`smacv2_capability_config`."""

    def __init__(self, scenario: str, num_envs: int = 1, device: str | torch.device | None = "cpu",
                 seed: int | None = None, check_actions: bool = True, package_kwargs: dict[str, Any] | None = None) -> None:
        name = f"smacv2/{scenario}"
        module = _import("smacv2.env", "smacv2", SMACV2_URL, name)
        map_name, capability = smacv2_capability_config(scenario)
        seeds = _seeds(seed, _check_int(num_envs, "num_envs", 1))
        kwargs = {"continuing_episode": True, "conic_fov": False, "use_unit_ranges": True, "min_attack_range": 2,
                  "obs_own_pos": True, "fully_observable": False, **(package_kwargs or {})}
        self.scenario = scenario

        def build(b: int) -> Any:
            import copy

            return module.StarCraftCapabilityEnvWrapper(capability_config=copy.deepcopy(capability), map_name=map_name,
                                                        seed=seeds[b], **kwargs)

        super().__init__(build, num_envs=num_envs, device=device, seed=seed, check_actions=check_actions)


def registry_entries() -> dict[str, Callable[..., PymarlEnv]]:
    """``smac/<map>`` for :data:`SMAC_MAPS` and ``smacv2/<scenario>`` for :data:`SMACV2_SCENARIOS`."""
    out: dict[str, Callable[..., PymarlEnv]] = {}
    for m in SMAC_MAPS:
        out[f"smac/{m}"] = _factory(SMACEnv, m)
    for s in SMACV2_SCENARIOS:
        out[f"smacv2/{s}"] = _factory(SMACv2Env, s)
    return out


def _factory(cls: type, which: str) -> Callable[..., PymarlEnv]:
    def factory(num_envs: int = 1, device: str | torch.device | None = "cpu", seed: int | None = None,
                package_kwargs: dict[str, Any] | None = None) -> PymarlEnv:
        return cls(which, num_envs=num_envs, device=device, seed=seed, package_kwargs=package_kwargs)

    factory.__name__ = f"{cls.__name__}_{which}"
    factory.__doc__ = f"``{cls.__name__}({which!r}, ...)`` (seqmarl.envs.smac)."
    return factory
