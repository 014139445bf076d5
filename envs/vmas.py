"""VMAS scenarios (the real ``vmas`` package, 1.5.x) as ``vmas/<scenario>`` registry names, on torch end to end.

VMAS (Bettini et al., "VMAS: A Vectorized Multi-Agent Simulator for Collective Robot Learning", DARS 2022) is
natively batched in torch: ``vmas.make_env(scenario, num_envs, device, continuous_actions, max_steps, seed, ...)``
simulates ``num_envs`` worlds in tensors on ``device``. :class:`VmasEnv` hands its tensors through without a numpy
round trip (the only host synchronisation is reading which worlds ended, to call ``env.reset_at(index)`` for each).
Install with ``pip install seqmarl[vmas]``.

Registered (defaults are the package's scenario defaults; ``max_steps=100`` as BenchMARL's task configs
``benchmarl/conf/task/vmas/{navigation,transport,wheel}.yaml``):

==================  ==============================================================================================
``vmas/balance``     n_agents=3 push a line carrying a package to a goal without dropping it; obs 16
``vmas/transport``   n_agents=4 push a heavy package (mass 50) onto a goal; obs 11
``vmas/navigation``  n_agents=4 reach their goals with lidar, collisions penalised; obs 18
``vmas/wheel``       n_agents=4 spin a line around its centre at ``desired_velocity``; obs 13
==================  ==============================================================================================

Any other VMAS scenario can be built with :func:`make_vmas` (``make_vmas("dispersion", num_envs=64)``).

Conventions (and their sources):

* **Observations**: each agent's VMAS observation, zero-padded to the largest (all four scenarios above are
  homogeneous, so no padding there). **State**: the concatenation of all agents' observations in agent order (VMAS
  has no global state; BenchMARL's MAPPO critic likewise sees all agents' observations).
* **Reward**: VMAS returns one reward tensor per agent. The team reward is their **mean** (``reward_reduction=
  "mean"``, default): in balance, transport and wheel every agent receives the same global reward (the scenario
  computes it once, for ``world.agents[0]``, in ``Scenario.reward``), so the mean *is* that reward, the quantity
  VMAS and BenchMARL report as the episode reward; in navigation (``shared_rew=True``) the mean adds the average
  collision penalty to the shared shaping term. ``"sum"`` is also available. Per-agent rewards:
  ``info["agent_rewards"]``.
* **Episode end**: ``terminated`` is the scenario's ``done()`` (e.g. balance: the package or line touched the floor,
  or the package reached its goal); an episode reaching ``max_steps`` (the ``episode_limit``) is ``truncated``
  (VMAS's ``terminated_truncated=True`` split of ``Environment.done``; never both flags at once here). Ended worlds
  are reset with ``env.reset_at(index)``, one call per world (each touches the whole batch), or with one
  ``env.reset()`` when every world ended in the same step (as TorchRL's ``VmasEnv._reset`` does).
* **Actions**: ``continuous_actions=True`` (default): each agent's ``Box(-u_range, u_range)`` (plus ``[0, 1]``
  communication dimensions for speaking agents). ``False``: VMAS's ``Discrete`` space (the flattened product of
  the per-dimension choices, 9 for a 2-D holonomic agent); every action is available.
* **Seeding**: ``reset(seed)`` calls ``env.seed(seed)`` then ``env.reset()``; automatic resets ``env.reset_at(b)``
  continue the stream. VMAS keeps its random state in the ``vmas.simulator.environment.Environment`` class
  (torch/numpy/random states swapped in around every call), so it is shared by all VMAS environments of a process:
  interleaving two VMAS environments interleaves their random streams. On CUDA, VMAS's swap covers only the CPU
  generator, so device-side sampling also shares the process's CUDA generator.
"""

from __future__ import annotations

import inspect
from typing import Any, Callable

import torch
import torch.nn.functional as F

from ._extras import import_extra
from .base import AgentSpace, EnvSpec, MultiAgentEnv, RestartsOnResume, Step, _check_int, as_device

__all__ = ["VmasEnv", "SCENARIOS", "make_vmas", "register_all"]

# registered scenario -> the scenario's keyword arguments with their defaults (vmas 1.5.x)
SCENARIOS: dict[str, dict[str, Any]] = {
    "balance": {"n_agents": 3, "package_mass": 5, "random_package_pos_on_line": True},
    "transport": {"n_agents": 4, "n_packages": 1, "package_width": 0.15, "package_length": 0.15, "package_mass": 50},
    "navigation": {"n_agents": 4, "collisions": True, "world_spawning_x": 1, "world_spawning_y": 1,
                   "enforce_bounds": False, "agents_with_same_goal": 1, "split_goals": False,
                   "observe_all_goals": False, "lidar_range": 0.35, "agent_radius": 0.1, "comms_range": 0,
                   "n_lidar_rays": 12, "shared_rew": True, "pos_shaping_factor": 1, "final_reward": 0.01,
                   "agent_collision_penalty": -1},
    "wheel": {"n_agents": 4, "line_length": 2, "line_mass": 30, "desired_velocity": 0.05},
}
DEFAULT_MAX_STEPS = 100
_REDUCTIONS = ("mean", "sum")


class VmasEnv(RestartsOnResume, MultiAgentEnv):
    """A VMAS scenario as a batched seqmarl environment (module docstring for the conventions).

    Args:
        scenario: a VMAS scenario name (``"balance"``, ...; any file of ``vmas.scenarios``).
        num_envs: number of worlds simulated in one batch.
        device: torch device of the simulation and of every tensor returned.
        seed: seed of VMAS's random state (drawn from :attr:`generator` when None).
        continuous_actions: Box actions (default) or VMAS's discrete actions.
        max_steps: episode limit; an episode reaching it is truncated.
        reward_reduction: ``"mean"`` (default) or ``"sum"`` of the agents' rewards as the team reward.
        check_actions: validate actions every step.
        clip_actions: clip continuous actions into the action box before stepping (default True, as the
            ``mamujoco/*`` adapter does, so a Gaussian policy's unbounded samples are accepted; VMAS itself also
            clamps to ``u_range``). ``False``: an action outside the box raises ``ValueError``.
        **scenario_kwargs: passed to the scenario (``n_agents``, ...).
    """

    def __init__(self, scenario: str, num_envs: int = 1, device: str | torch.device | None = "cpu",
                 seed: int | None = None, continuous_actions: bool = True, max_steps: int = DEFAULT_MAX_STEPS,
                 reward_reduction: str = "mean", check_actions: bool = True, clip_actions: bool = True,
                 **scenario_kwargs: Any) -> None:
        if not isinstance(clip_actions, bool):
            raise TypeError(f"clip_actions must be a bool, got {type(clip_actions).__name__}")
        self.clip_actions = clip_actions
        if not isinstance(scenario, str) or not scenario:
            raise TypeError(f"scenario must be a VMAS scenario name (str), got {scenario!r}")
        if not isinstance(continuous_actions, bool):
            raise TypeError(f"continuous_actions must be a bool, got {type(continuous_actions).__name__}")
        if reward_reduction not in _REDUCTIONS:
            raise ValueError(f"reward_reduction must be one of {_REDUCTIONS}, got {reward_reduction!r}")
        limit = _check_int(max_steps, "max_steps", 1)
        b = _check_int(num_envs, "num_envs", 1)
        if seed is not None:
            seed = _check_int(seed, "seed", 0)
        self.name = f"vmas/{scenario}"
        vmas = import_extra("vmas", "vmas", self.name)
        known = _vmas_scenarios(vmas)
        if known is not None and scenario not in known:
            raise ValueError(f"scenario must be a VMAS scenario, one of {sorted(known)}; got {scenario!r}")
        dev = as_device(device)
        self._env = vmas.make_env(scenario, num_envs=b, device=dev, continuous_actions=continuous_actions,
                                  max_steps=limit, seed=seed, terminated_truncated=True, dict_spaces=False,
                                  **scenario_kwargs)
        env = self._env
        n = env.n_agents
        self.agents: tuple[str, ...] = tuple(a.name for a in env.agents)
        self.agent_obs_dims: tuple[int, ...] = tuple(int(env.observation_space[i].shape[0]) for i in range(n))
        spaces = []
        for i in range(n):
            space = env.action_space[i]
            if continuous_actions:
                low = [float(x) for x in space.low.reshape(-1)]
                high = [float(x) for x in space.high.reshape(-1)]
                spaces.append(AgentSpace.continuous(tuple(low), tuple(high), (len(low),)))
            else:
                if not hasattr(space, "n"):
                    raise TypeError(f"{self.name}: discrete action space of agent {self.agents[i]!r} is {space}; "
                                    "only Discrete is supported (multidiscrete_actions is not)")
                spaces.append(AgentSpace.discrete(int(space.n)))
        spec = EnvSpec(n_agents=n, obs_dim=max(self.agent_obs_dims), state_dim=sum(self.agent_obs_dims),
                       agent_spaces=tuple(spaces), episode_limit=limit)
        super().__init__(spec, b, dev, seed, check_actions)
        self._reduction = reward_reduction
        self._ctor_seed = seed
        self._ever_reset = False
        self._full_reset_seed: int | None = None
        self._in_full_reset = False
        self._obs_list: list[torch.Tensor] = []
        self._avail = (torch.ones(b, n, spec.max_actions, dtype=torch.bool, device=self.device) & self._padding_mask()
                       if spec.is_discrete else None)

    # --- public helpers -----------------------------------------------------------------------------
    @property
    def vmas_env(self) -> Any:
        """The wrapped ``vmas.simulator.environment.Environment``."""
        return self._env

    # --- protocol -----------------------------------------------------------------------------------
    def reset(self, seed: int | None = None) -> Step:
        """Reset every world; ``seed`` (or, on the first reset, the constructor's seed) re-seeds VMAS's random state
        with ``env.seed(seed)`` first; otherwise its stream continues."""
        if seed is not None:
            self._full_reset_seed = _check_int(seed, "seed", 0)
        elif not self._ever_reset:
            self._full_reset_seed = (self._ctor_seed if self._ctor_seed is not None else
                                     int(torch.randint(0, 2**31 - 1, (1,), generator=self._generator).item()))
        else:
            self._full_reset_seed = None
        self._in_full_reset = True
        try:
            step = super().reset(seed)
        finally:
            self._in_full_reset = False
            self._full_reset_seed = None
        self._ever_reset = True
        return step

    def step(self, actions: torch.Tensor) -> Step:
        """Step every world (module docstring); ``info["agent_rewards"]`` holds the per-agent rewards ``[B, n]``."""
        step = super().step(actions)
        step.info["agent_rewards"] = self._agent_rewards
        return step

    def _reset_where(self, mask: torch.Tensor) -> None:
        env = self._env
        if self._in_full_reset:
            if self._full_reset_seed is not None:
                env.seed(self._full_reset_seed)
            self._obs_list = list(env.reset())
            return
        idx = torch.nonzero(mask).flatten().tolist()  # one host synchronisation per step
        if not idx:
            return
        if len(idx) == self.num_envs:  # every world ended (e.g. a common time limit): one vectorised reset
            self._obs_list = list(env.reset())
            return
        for i in idx:  # VMAS resets one world per call; each call touches the whole batch
            env.reset_at(i, return_observations=False)
        self._obs_list = list(env.get_from_scenario(get_observations=True, get_rewards=False, get_infos=False,
                                                    get_dones=False)[0])

    def _advance(self, actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        spec = self.spec
        if spec.is_discrete:
            acts = [actions[:, i: i + 1] for i in range(spec.n_agents)]
        else:
            acts = [actions[:, i, : spec.agent_spaces[i].dim] for i in range(spec.n_agents)]
        obs, rews, terminated, _truncated, _infos = self._env.step(acts)
        self._obs_list = list(obs)
        rewards = torch.stack([r.reshape(self.num_envs) for r in rews], dim=1).to(torch.float32)
        self._agent_rewards = rewards
        team = rewards.mean(dim=1) if self._reduction == "mean" else rewards.sum(dim=1)
        return team, terminated.reshape(self.num_envs).to(torch.bool)

    def _observe(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        parts = [o.to(torch.float32) for o in self._obs_list]
        width = self.spec.obs_dim
        obs = torch.stack([F.pad(o, (0, width - o.shape[1])) for o in parts], dim=1)
        state = torch.cat(parts, dim=1)
        avail = None if self._avail is None else self._avail.clone()
        return obs, state, avail

    def _current_avail(self) -> torch.Tensor:
        assert self._avail is not None
        return self._avail

    def __repr__(self) -> str:
        return f"VmasEnv({self.name!r}, num_envs={self.num_envs}, device={str(self.device)!r}, spec={self.spec})"


def _vmas_scenarios(vmas: Any) -> set[str] | None:
    """The scenario names the installed vmas lists (``vmas.scenarios``, ``mpe_scenarios``, ``debug_scenarios``);
    None if it lists none (then the name is left to ``vmas.make_env`` to check)."""
    out: set[str] = set()
    for attr in ("scenarios", "mpe_scenarios", "debug_scenarios"):
        value = getattr(vmas, attr, None)
        if isinstance(value, (list, tuple)):
            out.update(str(v) for v in value)
    return out or None


def make_vmas(scenario: str, num_envs: int = 1, device: str | torch.device | None = "cpu", seed: int | None = None,
              continuous_actions: bool = True, max_steps: int = DEFAULT_MAX_STEPS, reward_reduction: str = "mean",
              clip_actions: bool = True, **scenario_kwargs: Any) -> VmasEnv:
    """Build any VMAS scenario as a :class:`VmasEnv` (registered or not; keywords as :class:`VmasEnv`)."""
    return VmasEnv(scenario, num_envs=num_envs, device=device, seed=seed, continuous_actions=continuous_actions,
                   max_steps=max_steps, reward_reduction=reward_reduction, clip_actions=clip_actions,
                   **scenario_kwargs)


def _factory(scenario: str) -> Callable[..., VmasEnv]:
    """A registry factory for ``vmas/<scenario>`` whose signature lists the accepted keywords and defaults."""
    defaults = SCENARIOS[scenario]
    adapter = {"continuous_actions": True, "max_steps": DEFAULT_MAX_STEPS, "reward_reduction": "mean",
               "clip_actions": True}

    def factory(**kwargs: Any) -> VmasEnv:
        unknown = sorted(set(kwargs) - set(defaults) - set(adapter) - {"num_envs", "device", "seed"})
        if unknown:
            raise TypeError(f"vmas/{scenario} got unexpected keyword arguments {unknown}; accepted: "
                            f"{sorted(set(defaults) | set(adapter) | {'num_envs', 'device', 'seed'})}")
        return make_vmas(scenario, **{**defaults, **kwargs})

    params = [inspect.Parameter("num_envs", inspect.Parameter.KEYWORD_ONLY, default=1),
              inspect.Parameter("device", inspect.Parameter.KEYWORD_ONLY, default="cpu"),
              inspect.Parameter("seed", inspect.Parameter.KEYWORD_ONLY, default=None)]
    params += [inspect.Parameter(k, inspect.Parameter.KEYWORD_ONLY, default=v) for k, v in {**adapter, **defaults}.items()]
    factory.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    factory.__name__ = f"vmas_{scenario}"
    factory.__qualname__ = factory.__name__
    factory.__doc__ = f"``vmas/{scenario}``: VMAS's ``{scenario}`` scenario (see :mod:`seqmarl.envs.vmas`)."
    return factory


def register_all(register: Callable[..., None]) -> None:
    """Register every ``vmas/<scenario>`` name with ``register(name, factory)`` (no import of vmas here)."""
    for scenario in SCENARIOS:
        register(f"vmas/{scenario}", _factory(scenario))
