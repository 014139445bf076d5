"""Name -> environment factory: ``make("matrix/xor", n_agents=4, num_envs=512, device="cuda", seed=0)``.

Every factory accepts the common keywords ``num_envs`` (default 1), ``device`` (default ``"cpu"``) and
``seed`` (default ``None``) plus its own (listed by :func:`describe`). Unknown names raise ``ValueError``
listing the known names; unknown keywords raise ``TypeError`` naming them.

Built-in names:

==========================  =====================================================================
``matrix/xor``              ``theory.games.xor(n_agents)`` (n_agents=2, even)
``matrix/permutation``      ``theory.games.permutation(n_agents)`` (n_agents=3)
``matrix/climbing``         ``theory.games.climbing()``
``matrix/penalty``          ``theory.games.penalty(k)`` (k=-100)
``matrix/qtran``            ``theory.games.qtran()``
``matrix/random``           ``theory.games.random_game(default_rng(game_seed), n_agents=2, n_actions=2,
                            n_states=2, gamma=0.9)``; ``game_seed`` defaults to ``seed`` (0 if both None)
``bridge``                  :class:`BridgeEnv` (episode_limit=30, agent_id=False, symmetric=False: Fu-code's
                            swap-symmetric observations with True)
``gaussian/a1a2``           :class:`GaussianProductEnv` (low=-inf, high=inf)
==========================  =====================================================================

All ``matrix/*`` names also take ``obs`` ("state", "state+agent_id", "none") and ``episode_limit``.

Real benchmarks on their own packages (optional extras; see ``docs/envs.md``): ``mpe/<scenario>``
(:mod:`seqmarl.envs.mpe`, ``pip install seqmarl[mpe]``) and ``vmas/<scenario>`` (:mod:`seqmarl.envs.vmas`,
``pip install seqmarl[vmas]``); any PettingZoo ``ParallelEnv`` through :func:`seqmarl.envs.make_pettingzoo`.
"""

from __future__ import annotations

import inspect
import math
from typing import Callable, Sequence

import numpy as np
import torch

from seqmarl.theory import MarkovGame, games

from .base import MultiAgentEnv
from .bridge import BridgeEnv, EgocentricBridgeEnv
from .gaussian import GaussianProductEnv
from .matrix import MatrixGameEnv

__all__ = ["make", "register", "known_envs", "describe"]

Factory = Callable[..., MultiAgentEnv]
_REGISTRY: dict[str, Factory] = {}
COMMON_KWARGS = ("num_envs", "device", "seed")


def register(name: str, factory: Factory, *, overwrite: bool = False) -> None:
    """Register ``factory(**kwargs) -> MultiAgentEnv`` under ``name``. The factory must accept the common
    keywords ``num_envs``, ``device`` and ``seed``. Re-registering a name needs ``overwrite=True``."""
    if not isinstance(name, str) or not name:
        raise TypeError(f"name must be a non-empty str, got {name!r}")
    if not callable(factory):
        raise TypeError(f"factory must be callable, got {type(factory).__name__}")
    params = _parameters(factory)
    if params is not None:
        missing = [k for k in COMMON_KWARGS if k not in params]
        if missing:
            raise TypeError(f"factory for {name!r} must accept the keyword arguments {missing}")
    if name in _REGISTRY and not overwrite:
        raise ValueError(f"environment {name!r} is already registered (pass overwrite=True to replace it)")
    _REGISTRY[name] = factory


def known_envs() -> list[str]:
    """The registered environment names, sorted."""
    return sorted(_REGISTRY)


def _parameters(factory: Factory) -> dict[str, inspect.Parameter] | None:
    """Keyword parameters of ``factory``, or None if it takes ``**kwargs`` (anything goes)."""
    params = inspect.signature(factory).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return None
    return {k: p for k, p in params.items() if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)}


def describe(name: str) -> dict[str, object]:
    """The keyword arguments of environment ``name`` with their defaults."""
    factory = _lookup(name)
    params = _parameters(factory) or {}
    return {k: (None if p.default is inspect.Parameter.empty else p.default) for k, p in params.items()}


def _lookup(name: str) -> Factory:
    if not isinstance(name, str):
        raise TypeError(f"name must be a str, got {type(name).__name__}")
    if name not in _REGISTRY:
        raise ValueError(f"unknown environment {name!r}; known environments: {known_envs()}")
    return _REGISTRY[name]


def make(name: str, **kwargs: object) -> MultiAgentEnv:
    """Build the environment registered as ``name`` with ``kwargs`` (module docstring)."""
    factory = _lookup(name)
    params = _parameters(factory)
    if params is not None:
        bad = sorted(set(kwargs) - set(params))
        if bad:
            raise TypeError(f"make({name!r}) got unexpected keyword arguments {bad}; accepted: {sorted(params)}")
    return factory(**kwargs)


# --------------------------------------------------------------------------------------------------
# built-in factories
# --------------------------------------------------------------------------------------------------
def _matrix(game: MarkovGame, num_envs: int, device: str | torch.device | None, seed: int | None, obs: str,
            episode_limit: int | None) -> MatrixGameEnv:
    return MatrixGameEnv(game, num_envs=num_envs, device=device, obs=obs, episode_limit=episode_limit, seed=seed)


def _xor(n_agents: int = 2, num_envs: int = 1, device: str | torch.device | None = "cpu", seed: int | None = None,
         obs: str = "state", episode_limit: int | None = None) -> MatrixGameEnv:
    return _matrix(games.xor(n_agents), num_envs, device, seed, obs, episode_limit)


def _permutation(n_agents: int = 3, num_envs: int = 1, device: str | torch.device | None = "cpu",
                 seed: int | None = None, obs: str = "state", episode_limit: int | None = None) -> MatrixGameEnv:
    return _matrix(games.permutation(n_agents), num_envs, device, seed, obs, episode_limit)


def _climbing(num_envs: int = 1, device: str | torch.device | None = "cpu", seed: int | None = None,
              obs: str = "state", episode_limit: int | None = None) -> MatrixGameEnv:
    return _matrix(games.climbing(), num_envs, device, seed, obs, episode_limit)


def _penalty(k: float = -100.0, num_envs: int = 1, device: str | torch.device | None = "cpu", seed: int | None = None,
             obs: str = "state", episode_limit: int | None = None) -> MatrixGameEnv:
    return _matrix(games.penalty(k), num_envs, device, seed, obs, episode_limit)


def _qtran(num_envs: int = 1, device: str | torch.device | None = "cpu", seed: int | None = None,
           obs: str = "state", episode_limit: int | None = None) -> MatrixGameEnv:
    return _matrix(games.qtran(), num_envs, device, seed, obs, episode_limit)


def _random(n_agents: int = 2, n_actions: int | Sequence[int] = 2, n_states: int = 2, gamma: float = 0.9,
            game_seed: int | None = None, num_envs: int = 1, device: str | torch.device | None = "cpu",
            seed: int | None = None, obs: str = "state", episode_limit: int | None = None) -> MatrixGameEnv:
    chosen = game_seed if game_seed is not None else (seed if seed is not None else 0)
    game = games.random_game(np.random.default_rng(chosen), n_agents=n_agents, n_actions=n_actions,
                             n_states=n_states, gamma=gamma)
    return _matrix(game, num_envs, device, seed, obs, episode_limit)


def _bridge(num_envs: int = 1, device: str | torch.device | None = "cpu", seed: int | None = None,
            episode_limit: int = 30, agent_id: bool = False, symmetric: bool = False) -> BridgeEnv:
    """``symmetric=True``: :class:`EgocentricBridgeEnv`, agent 1 sees and acts in the map turned by 180 degrees —
    Fu-code's Bridge (``environment/gridworld/bridge.py`` ``_set_state_obs``: the second group's coordinates are
    ``(rows - 1, cols - 1) - x``, its actions mapped by ``ACTION180``). The default keeps absolute coordinates."""
    if not isinstance(symmetric, bool):
        raise TypeError(f"symmetric must be a bool, got {symmetric!r}")
    cls = EgocentricBridgeEnv if symmetric else BridgeEnv
    return cls(num_envs=num_envs, device=device, episode_limit=episode_limit, agent_id=agent_id, seed=seed)


def _gaussian(num_envs: int = 1, device: str | torch.device | None = "cpu", seed: int | None = None,
              low: float = -math.inf, high: float = math.inf) -> GaussianProductEnv:
    return GaussianProductEnv(num_envs=num_envs, device=device, low=low, high=high, seed=seed)


for _name, _factory in {
    "matrix/xor": _xor,
    "matrix/permutation": _permutation,
    "matrix/climbing": _climbing,
    "matrix/penalty": _penalty,
    "matrix/qtran": _qtran,
    "matrix/random": _random,
    "bridge": _bridge,
    "gaussian/a1a2": _gaussian,
}.items():
    register(_name, _factory)


# --------------------------------------------------------------------------------------------------
# real benchmarks from their own packages (issue 8, part A): mpe/<scenario> (mpe2) and vmas/<scenario> (vmas).
# Registered whether or not the packages are installed; building one without its package raises
# seqmarl.envs.MissingExtraError naming the extra (pip install seqmarl[mpe] / seqmarl[vmas]).
# --------------------------------------------------------------------------------------------------
def _register_part_a() -> None:
    from . import mpe as _mpe, vmas as _vmas

    _mpe.register_all(register)
    _vmas.register_all(register)


_register_part_a()


# --------------------------------------------------------------------------------------------------
# real benchmarks from their own packages (issue 8, part B): mamujoco/<Scenario>-<conf> (gymnasium-robotics),
# smax/<map> and jaxmarl_mpe/<scenario> (jaxmarl), smac/<map> and smacv2/<scenario> (git-only packages + StarCraft II), gfootball/<scenario>.
# Registered whether or not the packages are installed (the modules import them only when an env is built);
# building one without its package raises seqmarl.envs.MissingExtraError with the install command.
# --------------------------------------------------------------------------------------------------
def _register_part_b() -> None:
    from . import gfootball as _gfootball, jaxmarl_mpe as _jaxmarl_mpe, mamujoco as _mamujoco, smac as _smac, smax as _smax

    for _module in (_mamujoco, _smax, _jaxmarl_mpe, _smac, _gfootball):
        for _entry, _entry_factory in _module.registry_entries().items():
            register(_entry, _entry_factory)


_register_part_b()
