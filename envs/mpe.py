"""The cooperative Multi-Agent Particle Environments of the ``mpe2`` package as ``mpe/<scenario>`` registry names.

Built on the real package (PyPI ``mpe2`` 1.1.x, the Farama Foundation's maintained MPE, ``from mpe2 import
simple_spread_v3``; install with ``pip install seqmarl[mpe]``) through :class:`~seqmarl.envs.pettingzoo.PettingZooEnv`:
each of the ``num_envs`` copies is one ``<module>.parallel_env(...)`` instance stepped in this process.

Registered scenarios (all agents share the task; the ones left out are listed in :data:`EXCLUDED`):

===============================  ==========================  ==========================================================
name                             mpe2 module                 agents / obs / actions (defaults)
===============================  ==========================  ==========================================================
``mpe/simple_spread``            ``simple_spread_v3``        N=3 agents, obs 18, Discrete(5) / Box(0, 1, (5,))
``mpe/simple_reference``         ``simple_reference_v3``     2 agents, obs 21, Discrete(50) / Box(0, 1, (15,))
``mpe/simple_speaker_listener``  ``simple_speaker_listener_v4``  speaker obs 3, listener obs 11 (padded to 11),
                                                             Discrete(3)/Discrete(5) (padded, masked)
``mpe/simple_formation``         ``simple_formation_v1``     N=4 agents, obs 6, Discrete(5)
``mpe/simple_line``              ``simple_line_v1``          N=4 agents, obs 8, Discrete(5)
``mpe/collect_treasure``         ``collect_treasure_v1``     6 collectors (obs 86) + 2 deposits (obs 84), Discrete(5)
===============================  ==========================  ==========================================================

Conventions (and their sources):

* **Reward**: each agent's reward is the package's (e.g. simple_spread: ``(1 - local_ratio) * global + local_ratio
  * local`` with ``local_ratio=0.5``, ``SimpleEnv._execute_world_step`` of mpe2). The team reward is the **sum** of
  the agents' rewards (``reward_reduction="sum"``), as in MAPPO's MPE wrapper (``onpolicy/envs/mpe/environment.py``:
  ``reward = np.sum(reward_n)`` shared by all agents of a collaborative world) and HARL's PettingZoo-MPE wrapper
  (``harl/envs/pettingzoo_mpe/pettingzoo_mpe_env.py``: ``total_reward = sum(rew[agent] ...)``). ``"mean"`` divides by
  the number of agents. Per-agent rewards: ``info["agent_rewards"]``.
* **State**: mpe2's ``state()``, the concatenation of all agents' observations (``SimpleEnv.state``); built from
  the observations the step returned (the same numbers) rather than by calling ``state()``, which would compute
  every observation a second time.
* **Time limit**: ``max_cycles`` (default 25, the package's and MAPPO/HARL's episode length) is the
  ``episode_limit``; an episode that reaches it is ``truncated``. ``terminate_on_success=True`` (where offered)
  ends successful episodes ``terminated``.
* **Actions**: ``continuous_actions=False`` (default) gives the package's ``Discrete`` spaces (every action
  available); ``True`` gives its ``Box(0, 1)`` spaces (movement = ``a[2] - a[1]``, ``a[4] - a[3]``).
* **Seeding**: copy ``b`` is reset with ``seed + b``; later episodes continue each copy's own numpy generator
  (see :mod:`seqmarl.envs.pettingzoo`).
"""

from __future__ import annotations

import functools
import inspect
import os
from typing import Any, Callable

import numpy as np
import torch

from ._extras import import_extra
from .pettingzoo import PettingZooEnv

__all__ = ["SCENARIOS", "EXCLUDED", "make_mpe", "mpe2_cycle_step", "register_all"]

# scenario -> (mpe2 module, the package's keyword arguments with their defaults, mpe2 1.1.x)
SCENARIOS: dict[str, tuple[str, dict[str, Any]]] = {
    "simple_spread": ("simple_spread_v3", {"N": 3, "local_ratio": 0.5, "max_cycles": 25, "terminate_on_success": False,
                                           "num_agent_neighbors": None, "num_landmark_neighbors": None}),
    "simple_reference": ("simple_reference_v3", {"local_ratio": 0.5, "max_cycles": 25}),
    "simple_speaker_listener": ("simple_speaker_listener_v4", {"max_cycles": 25}),
    "simple_formation": ("simple_formation_v1", {"N": 4, "max_cycles": 25, "terminate_on_success": False}),
    "simple_line": ("simple_line_v1", {"N": 4, "max_cycles": 25, "terminate_on_success": False}),
    "collect_treasure": ("collect_treasure_v1", {"num_collectors": 6, "num_deposits": 2, "num_treasures": 6,
                                                 "max_cycles": 25}),
}

# mpe2 scenarios that are not registered, and why
EXCLUDED: dict[str, str] = {
    "simple": "single agent",
    "simple_adversary": "adversarial (good agents vs an adversary with opposite rewards)",
    "simple_crypto": "adversarial (speaker/listener vs an eavesdropper)",
    "simple_push": "adversarial (agent vs adversary)",
    "simple_tag": "adversarial (predators vs prey)",
    "simple_world_comm": "adversarial (predators vs prey)",
}

_ADAPTER_DEFAULTS: dict[str, Any] = {"continuous_actions": False, "reward_reduction": "sum", "workers": 0,
                                     "start_method": "spawn"}


def _import_scenario(module_name: str, name: str) -> Any:
    """``mpe2.<module_name>`` (e.g. ``mpe2.simple_spread_v3``), or MissingExtraError naming the ``mpe`` extra."""
    os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")  # pygame's import banner would pollute stdout
    import_extra("mpe2", "mpe", name)
    return import_extra(f"mpe2.{module_name}", "mpe", name)


def mpe2_cycle_step(env: Any, actions: dict[str, Any]) -> tuple[dict, dict, dict, dict, dict]:
    """mpe2's ``parallel_env(...).step(actions)`` unrolled, with the same results, for an instance whose agents
    are all alive.

    The package's parallel step is PettingZoo's ``aec_to_parallel_wrapper.step``: for every agent in turn it calls
    ``last()`` — which computes that agent's observation and discards it — and the AEC ``step`` through the
    ``OrderEnforcingWrapper`` and the ``AssertOutOfBoundsWrapper`` (discrete) / ``ClipOutOfBoundsWrapper``
    (continuous), where ``SimpleEnv.step`` stores the action and, after the last agent, runs
    ``_execute_world_step()``, ``steps += 1`` and sets every agent's truncation (``steps >= max_cycles``) or else
    termination (``scenario.is_terminal``); it then returns the rewards of the world step, the flags, the infos and
    every agent's observation (``observe``). Here the same calls on the underlying ``SimpleEnv`` (actions
    validated / clipped as the two wrappers do, without their warnings), once per step. The AEC bookkeeping
    (agent selection, cumulative rewards, dead-agent steps) is not advanced: the adapter resets an instance through
    the package's own ``reset`` as soon as its episode ends. Differential test: ``tests/envs/test_mpe_differential.py``.
    """
    raw = env.aec_env.unwrapped
    index = raw._index_map
    continuous = raw.continuous_actions
    for agent, action in actions.items():
        space = raw.action_spaces[agent]
        if continuous:  # ClipOutOfBoundsWrapper clips what is outside; clipping what is inside changes nothing
            if np.shape(action) != space.shape:
                raise AssertionError(f"action should have shape {space.shape}, has shape {np.shape(action)}")
            action = np.clip(action, space.low, space.high)
        elif not space.contains(action):
            raise AssertionError("action is not in action space")  # AssertOutOfBoundsWrapper's check
        raw.current_actions[index[agent]] = action
    raw._execute_world_step()
    raw.steps += 1
    truncated = raw.steps >= raw.max_cycles
    terminated = (not truncated) and bool(raw.scenario.is_terminal(raw.world))
    agents = raw.agents
    return ({a: raw.observe(a) for a in agents}, {a: raw.rewards[a] for a in agents},
            {a: terminated for a in agents}, {a: truncated for a in agents}, {a: raw.infos[a] for a in agents})


def make_mpe(scenario: str, num_envs: int = 1, device: str | torch.device | None = "cpu", seed: int | None = None,
             continuous_actions: bool = False, reward_reduction: str = "sum", workers: int = 0,
             start_method: str = "spawn", **scenario_kwargs: Any) -> PettingZooEnv:
    """Build ``num_envs`` copies of the mpe2 scenario ``scenario`` (module docstring for the conventions).

    Args:
        scenario: one of :data:`SCENARIOS` (e.g. ``"simple_spread"``).
        num_envs, device, seed: as every environment (copy ``b`` is seeded ``seed + b``).
        continuous_actions: the package's ``Box(0, 1)`` actions instead of ``Discrete``.
        reward_reduction: ``"sum"`` (default, MAPPO/HARL) or ``"mean"`` of the agents' rewards.
        workers: ``W >= 1`` steps the copies in ``W`` worker processes (same results as ``0``, the default: in this
            process); ``start_method`` is theirs (:class:`~seqmarl.envs.pettingzoo.PettingZooEnv`).
        **scenario_kwargs: the package's own keywords (``N``, ``local_ratio``, ``max_cycles``, ...); unknown ones raise.
    """
    if not isinstance(scenario, str) or scenario not in SCENARIOS:
        hint = f" ({scenario} is not registered: {EXCLUDED[scenario]})" if scenario in EXCLUDED else ""
        raise ValueError(f"scenario must be one of the cooperative MPE scenarios {sorted(SCENARIOS)}, "
                         f"got {scenario!r}{hint}")
    module_name, defaults = SCENARIOS[scenario]
    unknown = sorted(set(scenario_kwargs) - set(defaults))
    if unknown:
        raise TypeError(f"mpe/{scenario} got unexpected keyword arguments {unknown}; accepted: "
                        f"{sorted(set(defaults) | set(_ADAPTER_DEFAULTS) | {'num_envs', 'device', 'seed'})}")
    if not isinstance(continuous_actions, bool):
        raise TypeError(f"continuous_actions must be a bool, got {type(continuous_actions).__name__}")
    name = f"mpe/{scenario}"
    _import_scenario(module_name, name)
    kwargs = {**defaults, **scenario_kwargs, "continuous_actions": continuous_actions}
    env_fn = functools.partial(_build_parallel_env, module_name, kwargs)  # picklable: worker processes build it
    return PettingZooEnv(env_fn, num_envs=num_envs, device=device, seed=seed, episode_limit=kwargs["max_cycles"],
                         reward_reduction=reward_reduction, state="env", name=name, state_is_obs_concat=True,
                         step_fn=mpe2_cycle_step, workers=workers, start_method=start_method)


def _build_parallel_env(module_name: str, kwargs: dict[str, Any]) -> Any:
    """``mpe2.<module_name>.parallel_env(**kwargs)`` (module-level, so that worker processes can unpickle it)."""
    return _import_scenario(module_name, f"mpe/{module_name}").parallel_env(**kwargs)


def _factory(scenario: str) -> Callable[..., PettingZooEnv]:
    """A registry factory for ``mpe/<scenario>`` whose signature lists every accepted keyword with its default
    (so :func:`seqmarl.envs.describe` and :func:`seqmarl.envs.make`'s keyword check see them)."""
    _, defaults = SCENARIOS[scenario]

    def factory(**kwargs: Any) -> PettingZooEnv:
        return make_mpe(scenario, **kwargs)

    params = [inspect.Parameter("num_envs", inspect.Parameter.KEYWORD_ONLY, default=1),
              inspect.Parameter("device", inspect.Parameter.KEYWORD_ONLY, default="cpu"),
              inspect.Parameter("seed", inspect.Parameter.KEYWORD_ONLY, default=None)]
    params += [inspect.Parameter(k, inspect.Parameter.KEYWORD_ONLY, default=v)
               for k, v in {**_ADAPTER_DEFAULTS, **defaults}.items()]
    factory.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    factory.__name__ = f"mpe_{scenario}"
    factory.__qualname__ = factory.__name__
    factory.__doc__ = f"``mpe/{scenario}``: mpe2's ``{SCENARIOS[scenario][0]}`` (see :mod:`seqmarl.envs.mpe`)."
    return factory


def register_all(register: Callable[..., None]) -> None:
    """Register every ``mpe/<scenario>`` name with ``register(name, factory)`` (no import of mpe2 here)."""
    for scenario in SCENARIOS:
        register(f"mpe/{scenario}", _factory(scenario))
