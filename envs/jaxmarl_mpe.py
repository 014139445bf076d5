"""MPE simple_spread on JaxMARL's JAX implementation of the Multi-Agent Particle Environments, batched:
``jaxmarl_mpe/simple_spread``.

The task of ``mpe/simple_spread`` (Farama's mpe2, stepped one copy after another in Python) computed by the real
``jaxmarl`` package (``jaxmarl.environments.mpe.SimpleSpreadMPE``, registry name ``MPE_simple_spread_v3``): all
``B`` copies are one jitted, vmapped step (:class:`~seqmarl.envs.jaxbatch.JaxBatchedEnv`), about 20x the copies per
second of the Python package on one core. Same conventions as ``mpe/simple_spread``, so a config runs on either
by changing ``env`` alone::

    env = seqmarl.envs.make("jaxmarl_mpe/simple_spread", num_envs=20, seed=0, continuous_actions=True)
    seqmarl train config=happo-mpe-simple-spread env=jaxmarl_mpe/simple_spread

Needs the ``smax`` extra (``jaxmarl`` with a CPU ``jax``). Conventions (sources: jaxmarl 0.2.0
``jaxmarl/environments/mpe/simple.py`` and ``simple_spread.py``):

* **Dynamics, observations, rewards**: the package's; they equal mpe2's ``simple_spread_v3`` from the same
  positions and actions up to float32 rounding (damping 0.25, contact force 100 with margin 1e-3, ``dt`` 0.1,
  acceleration 5, agent radius 0.15, reward ``local_ratio * (-collisions) + (1 - local_ratio) * (-sum of the
  landmarks' nearest-agent distances)``; observation ``[own velocity, own position, landmarks relative, other
  agents relative, their (silent) communication]``) — checked step by step in ``tests/envs/test_jaxmarl_mpe.py``.
  Initial positions are uniform in ``[-1, 1]^2`` in both packages, drawn by different generators.
* **Team reward**: the **sum** of the agents' rewards (``reward_reduction="sum"``, MAPPO's and HARL's MPE
  wrappers; ``"mean"`` divides by the number of agents); per-agent rewards in ``info["agent_rewards"]``.
* **State**: the concatenation of the agents' observations (mpe2's ``state()``): a view of the observations.
* **Time limit**: ``max_cycles`` (default 25) is the ``episode_limit``; episodes are ``truncated`` there (the
  scenario never terminates). jaxmarl's MPE tests ``step >= max_steps`` before counting the step being taken, so
  the package is built with ``max_steps = max_cycles - 1``.
* **Actions**: ``continuous_actions=False`` (default) ``Discrete(5)`` (0 no-op, 1/2 left/right, 3/4 down/up);
  ``True`` the package's ``Box(0, 1, (5,))`` (movement ``a[2] - a[1]``, ``a[4] - a[3]``), clipped into the box
  before the step (as mpe2's ``ClipOutOfBoundsWrapper``).
* **Keys, auto-reset, checkpoints**: as every :class:`~seqmarl.envs.jaxbatch.JaxBatchedEnv`.
"""

from __future__ import annotations

import functools
import inspect
from typing import Any, Callable

import torch

from .base import AgentSpace, EnvSpec, Step, _check_int
from .jaxbatch import JaxBatchedEnv, _pad_to_line, _to_torch, enable_compilation_cache, require_jaxmarl

__all__ = ["JaxMarlMPEEnv", "SCENARIOS", "registry_entries"]

# scenario -> jaxmarl registry name (the keywords and their defaults, mpe2's, are JaxMarlMPEEnv's)
SCENARIOS: dict[str, str] = {"simple_spread": "MPE_simple_spread_v3"}


class _Compiled:
    """The package environment and the jitted, vmapped reset / step / observe of ``B`` copies."""

    def __init__(self, scenario: str, num_envs: int, n: int, local_ratio: float, limit: int,
                 continuous: bool) -> None:
        jax, jnp, jaxmarl = require_jaxmarl(f"jaxmarl_mpe/{scenario}")
        from jaxmarl.environments.mpe.default_params import CONTINUOUS_ACT, DISCRETE_ACT

        enable_compilation_cache(jax)
        penv = jaxmarl.make(SCENARIOS[scenario], num_agents=n, num_landmarks=n, local_ratio=local_ratio,
                            action_type=CONTINUOUS_ACT if continuous else DISCRETE_ACT, max_steps=limit - 1)
        self.penv = penv
        self.device = jax.devices("cpu")[0]
        agents, B = tuple(penv.agents), int(num_envs)
        self.obs_size = int(penv.observation_spaces[agents[0]].shape[0])

        def stack(obs: dict) -> Any:
            return jnp.stack([obs[a] for a in agents]).astype(jnp.float32)

        def reset_one(key: Any) -> tuple[Any, Any]:
            obs, state = penv.reset(key)
            return state, stack(obs)

        def step_one(key: Any, state: Any, action: Any) -> tuple[Any, Any, Any, Any, Any]:
            k_step, k_reset = jax.random.split(key)  # as jaxmarl MultiAgentEnv.step
            obs_st, state_st, rewards, dones, _ = penv.step_env(k_step, state, {a: action[i] for i, a in enumerate(agents)})
            obs_re, state_re = penv.reset(k_reset)
            done = dones["__all__"]
            final, fresh = stack(obs_st), stack(obs_re)
            nxt_state = jax.tree.map(lambda r, s: jax.lax.select(done, r, s), state_re, state_st)
            nxt = jax.lax.select(done, fresh, final)
            return nxt_state, final, nxt, jnp.stack([rewards[a] for a in agents]).astype(jnp.float32), done

        def batched_reset(root: Any) -> tuple[Any, Any, dict]:
            keys = jax.random.split(root, B + 1)
            state, obs = jax.vmap(reset_one)(keys[1:])
            state = jax.tree.map(lambda x: jnp.asarray(x, dtype=x.dtype), state)  # strong dtypes: one compile
            return keys[0], state, {"obs": obs}

        def batched_step(root: Any, state: Any, actions: Any) -> tuple:
            """One float32 array ``[final obs | next obs | agents' rewards]`` (each field on its own 64-byte line)
            and one bool array (done) per step."""
            keys = jax.random.split(root, B + 1)
            state, final, nxt, rewards, done = jax.vmap(step_one)(keys[1:], state, actions)
            floats = jnp.concatenate([_pad_to_line(final.reshape(B, -1)), _pad_to_line(nxt.reshape(B, -1)), rewards],
                                     axis=1)
            return keys[0], state, floats, done[:, None]

        width = len(agents) * self.obs_size
        line = _pad_to_line(jnp.zeros((1, width))).shape[1]
        self.float_fields = [(0, width), (line, width), (2 * line, len(agents))]
        self.shapes = (B, len(agents), self.obs_size)
        self.reset = jax.jit(batched_reset)
        self.step = jax.jit(batched_step)
        self.pack = jax.jit(jax.vmap(lambda s: {"obs": stack(penv.get_obs(s))}))


@functools.lru_cache(maxsize=16)
def _compiled(scenario: str, num_envs: int, n: int, local_ratio: float, limit: int, continuous: bool) -> _Compiled:
    return _Compiled(scenario, num_envs, n, local_ratio, limit, continuous)


class JaxMarlMPEEnv(JaxBatchedEnv):
    """``B`` copies of a cooperative MPE scenario computed by jaxmarl (module docstring).

    Args:
        scenario: a key of :data:`SCENARIOS` (``"simple_spread"``).
        num_envs, device, seed, check_actions: as every :class:`~seqmarl.envs.base.MultiAgentEnv`.
        N: agents (and landmarks), >= 2 (default 3).
        local_ratio: weight of the collision penalty in ``[0, 1]`` (default 0.5).
        max_cycles: episode length, >= 2 (default 25).
        continuous_actions: ``Box(0, 1, (5,))`` actions instead of ``Discrete(5)``.
        reward_reduction: ``"sum"`` (default) or ``"mean"`` of the agents' rewards.
    """

    def __init__(self, scenario: str = "simple_spread", num_envs: int = 1,
                 device: str | torch.device | None = "cpu", seed: int | None = None, N: int = 3,
                 local_ratio: float = 0.5, max_cycles: int = 25, continuous_actions: bool = False,
                 reward_reduction: str = "sum", check_actions: bool = True) -> None:
        if not isinstance(scenario, str) or scenario not in SCENARIOS:
            raise ValueError(f"scenario must be one of {sorted(SCENARIOS)}, got {scenario!r}")
        n = _check_int(N, "N", 2)
        if isinstance(local_ratio, bool) or not isinstance(local_ratio, (int, float)) or not 0.0 <= local_ratio <= 1.0:
            raise ValueError(f"local_ratio must be a number in [0, 1], got {local_ratio!r}")
        limit = _check_int(max_cycles, "max_cycles", 2)
        if not isinstance(continuous_actions, bool):
            raise TypeError(f"continuous_actions must be a bool, got {type(continuous_actions).__name__}")
        if reward_reduction not in ("sum", "mean"):
            raise ValueError(f"reward_reduction must be 'sum' or 'mean', got {reward_reduction!r}")
        jax, jnp, _ = require_jaxmarl(f"jaxmarl_mpe/{scenario}")
        b = _check_int(num_envs, "num_envs", 1)
        compiled = _compiled(scenario, b, n, float(local_ratio), limit, continuous_actions)
        self.scenario = scenario
        self.package_env = compiled.penv
        self.agent_names: tuple[str, ...] = tuple(compiled.penv.agents)
        space = AgentSpace.continuous(0.0, 1.0, (5,)) if continuous_actions else AgentSpace.discrete(5)
        spec = EnvSpec(n_agents=n, obs_dim=compiled.obs_size, state_dim=n * compiled.obs_size,
                       agent_spaces=(space,) * n, episode_limit=limit)
        #: continuous actions are clipped into ``[0, 1]`` before the step (module docstring)
        self.clip_actions = continuous_actions
        self._host_action_dtype = torch.float32 if continuous_actions else torch.int32
        self.reward_reduction = reward_reduction
        super().__init__(spec, num_envs, device, seed, check_actions, compiled, jax, jnp)
        self._agent_rewards: torch.Tensor | None = None
        self._all_available = torch.ones(b, n, 5, dtype=torch.bool, device=self.device)  # for discrete validation

    def _with_state(self, obs: torch.Tensor) -> dict[str, torch.Tensor]:
        """``{"obs": [B, n, o] view, "state": [B, n * o] view (, "avail": all True)}`` of the observations
        ``[B, n * o]``."""
        b, n, o = self._fns.shapes
        out = {"obs": obs.view(b, n, o), "state": obs}
        if not self.clip_actions:  # discrete: every action is available (the protocol's avail_actions)
            out["avail"] = self._all_available
        return out

    def _torch(self, out: dict) -> dict[str, torch.Tensor]:
        b, n, o = self._fns.shapes
        return self._with_state(_to_torch(out["obs"], self.device).reshape(b, n * o))

    def _unpack(self, floats: Any, bools: Any) -> tuple[dict, dict, torch.Tensor, torch.Tensor, torch.Tensor]:
        f = _to_torch(floats, self.device)
        final, nxt, rewards = (f[:, a: a + w] for a, w in self._fns.float_fields)
        done = _to_torch(bools, self.device)[:, 0]
        self._agent_rewards = rewards
        team = rewards.sum(dim=1) if self.reward_reduction == "sum" else rewards.mean(dim=1)
        return self._with_state(final), self._with_state(nxt), team, done, torch.zeros_like(done)

    def _current_avail(self) -> torch.Tensor:
        return self._all_available

    def _step_finish(self) -> Step:
        """:meth:`MultiAgentEnv.step` plus ``info["agent_rewards"]`` ``[B, n]``."""
        out = super()._step_finish()
        out.info["agent_rewards"] = self._agent_rewards
        return out

    def __repr__(self) -> str:
        space = "Box(0, 1, (5,))" if self.clip_actions else "Discrete(5)"
        return (f"JaxMarlMPEEnv({self.scenario!r}, num_envs={self.num_envs}, n_agents={self._spec.n_agents}, "
                f"obs_dim={self._spec.obs_dim}, actions={space}, episode_limit={self._spec.episode_limit})")


def registry_entries() -> dict[str, Callable[..., JaxMarlMPEEnv]]:
    """``{"jaxmarl_mpe/<scenario>": factory}`` (jaxmarl is imported only when a factory is called)."""
    return {f"jaxmarl_mpe/{s}": _factory(s) for s in SCENARIOS}


def _factory(scenario: str) -> Callable[..., JaxMarlMPEEnv]:
    """``JaxMarlMPEEnv(scenario, **kwargs)`` with the class's keywords and defaults as its signature (what
    :func:`seqmarl.envs.describe` and :func:`seqmarl.envs.make`'s keyword check read)."""
    def factory(**kwargs: Any) -> JaxMarlMPEEnv:
        return JaxMarlMPEEnv(scenario, **kwargs)

    params = inspect.signature(JaxMarlMPEEnv.__init__).parameters.values()
    factory.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in params if p.name not in ("self", "scenario",
                                                                                          "check_actions")])
    factory.__name__ = f"jaxmarl_mpe_{scenario}"
    factory.__doc__ = f"``JaxMarlMPEEnv({scenario!r}, ...)`` (seqmarl.envs.jaxmarl_mpe)."
    return factory
