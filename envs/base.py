"""The batched multi-agent environment protocol of seqmarl (DESIGN.md §3).

Every environment simulates ``B = num_envs`` independent copies of one cooperative task with ``n`` agents
and returns torch tensors whose first axis is the environment and second the agent:

=================  ======================  =====================================================
field              shape / dtype           meaning
=================  ======================  =====================================================
``obs``            ``[B, n, obs_dim]`` f32 each agent's observation
``state``          ``[B, state_dim]`` f32  the global state (for centralised critics)
``avail_actions``  ``[B, n, A_max]`` bool  discrete only (else ``None``); agent ``i`` with ``A_i < A_max``
                                           actions has its padding ``A_i..A_max-1`` masked ``False``
``reward``         ``[B]`` f32             the shared team reward of the transition just taken
``terminated``     ``[B]`` bool            the episode reached a terminal state (no bootstrapping)
``truncated``      ``[B]`` bool            the episode was cut by a time limit (bootstrap from ``final_obs``)
=================  ======================  =====================================================

**Auto-reset (read this before writing GAE).** ``step(actions)`` advances every environment. If the
transition ended environment ``b`` (``terminated[b] | truncated[b]``), the returned ``reward[b]``,
``terminated[b]`` and ``truncated[b]`` are those of the *ending* transition, but ``obs[b]``, ``state[b]`` and
``avail_actions[b]`` already belong to the *first step of the next episode*. The observation the ending
transition actually reached is in ``info["final_obs"][b]`` (and ``info["final_state"][b]``,
``info["final_avail_actions"][b]``). These ``final_*`` tensors are always full ``[B, ...]`` tensors; for an
environment that did not end they equal the returned ``obs``/``state``. A value target therefore reads::

    next_value = critic(step.info["final_state"])                  # V(s_{t+1}) of the transition taken
    target     = reward + gamma * (~terminated) * next_value        # truncated episodes still bootstrap

``info`` also carries ``episode_return`` ``[B]`` (undiscounted sum of rewards of the current episode up to and
including this step; for ended environments the return of the episode that just ended) and ``episode_length``
``[B]`` (int64, same convention).

**Randomness.** All randomness comes from one ``torch.Generator`` on the environment's device. It is
seeded by the constructor's ``seed`` and re-seeded by ``reset(seed)``; the same seed and the same action
sequence give the same trajectories. ``reset(None)`` keeps the current generator stream.
"""

from __future__ import annotations

import math
import numbers
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Sequence

import torch

__all__ = ["AgentSpace", "EnvSpec", "Step", "MultiAgentEnv", "as_device"]


_STARTED = object()  # MultiAgentEnv.step_async: a step of the class's own protocol is under way
MAX_ENV_BYTES = 16 * 2**30  # a batched env whose per-step buffers would exceed this is refused before allocating


def as_device(device: str | torch.device | None) -> torch.device:
    """Normalise ``device`` (a string, ``torch.device`` or ``None`` meaning cpu) to a ``torch.device``."""
    if device is None:
        return torch.device("cpu")
    if isinstance(device, torch.device):
        return device
    if isinstance(device, str):
        try:
            return torch.device(device)
        except RuntimeError as exc:
            raise ValueError(f"device must name a torch device such as 'cpu' or 'cuda', got {device!r}") from exc
    raise TypeError(f"device must be a str or torch.device, got {type(device).__name__}")


def _check_int(value: object, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


# --------------------------------------------------------------------------------------------------
# spaces and spec
# --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class AgentSpace:
    """One agent's action space: ``kind="discrete"`` with ``n`` actions ``{0..n-1}``, or
    ``kind="continuous"`` with a box ``[low, high]`` of shape ``(dim,)``. Build with
    :meth:`discrete` / :meth:`continuous`."""

    kind: str
    n: int = 0
    low: tuple[float, ...] = ()
    high: tuple[float, ...] = ()
    shape: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if self.kind == "discrete":
            n = _check_int(self.n, "n", 1)
            object.__setattr__(self, "n", n)
            if self.low or self.high or self.shape:
                raise ValueError("a discrete AgentSpace takes only n (low, high and shape must be empty)")
        elif self.kind == "continuous":
            shape = tuple(_check_int(d, "shape[i]", 1) for d in self.shape)
            if len(shape) != 1:
                raise ValueError(f"shape of a continuous AgentSpace must be (dim,), got {self.shape}")
            dim = shape[0]
            low, high = self._bounds(self.low, dim, "low"), self._bounds(self.high, dim, "high")
            if any(lo > hi for lo, hi in zip(low, high)):
                raise ValueError(f"low must be <= high elementwise, got low={low}, high={high}")
            object.__setattr__(self, "shape", shape)
            object.__setattr__(self, "low", low)
            object.__setattr__(self, "high", high)
            if self.n:
                raise ValueError("a continuous AgentSpace has no n")
        else:
            raise ValueError(f"kind must be 'discrete' or 'continuous', got {self.kind!r}")

    @staticmethod
    def _bounds(value: Sequence[float], dim: int, name: str) -> tuple[float, ...]:
        values = tuple(float(v) for v in value)
        if len(values) != dim:
            raise ValueError(f"{name} must have {dim} entries (one per action dimension), got {len(values)}")
        if any(math.isnan(v) for v in values):
            raise ValueError(f"{name} must not contain NaN")
        return values

    @classmethod
    def discrete(cls, n: int) -> "AgentSpace":
        """``n`` actions ``{0, ..., n-1}``."""
        return cls(kind="discrete", n=n)

    @classmethod
    def continuous(cls, low: float | Sequence[float], high: float | Sequence[float], shape: Sequence[int] | int = (1,)) -> "AgentSpace":
        """A box ``[low, high]^dim``; scalar bounds are broadcast over ``shape = (dim,)``."""
        shape_t = (shape,) if isinstance(shape, int) else tuple(shape)
        dim = shape_t[0] if len(shape_t) == 1 and isinstance(shape_t[0], int) else 0
        low_t = (float(low),) * dim if isinstance(low, (int, float)) else tuple(low)
        high_t = (float(high),) * dim if isinstance(high, (int, float)) else tuple(high)
        return cls(kind="continuous", low=low_t, high=high_t, shape=shape_t)

    @property
    def is_discrete(self) -> bool:
        return self.kind == "discrete"

    @property
    def dim(self) -> int:
        """Action dimension (1 for a discrete agent: one index)."""
        return 1 if self.is_discrete else self.shape[0]


@dataclass(frozen=True)
class EnvSpec:
    """What an environment looks like: ``n_agents``, per-agent ``obs_dim``, ``state_dim``, one
    :class:`AgentSpace` per agent (heterogeneous allowed, but all discrete or all continuous) and the
    maximal ``episode_limit`` (steps after which an episode always ends)."""

    n_agents: int
    obs_dim: int
    state_dim: int
    agent_spaces: tuple[AgentSpace, ...]
    episode_limit: int

    def __post_init__(self) -> None:
        _check_int(self.n_agents, "n_agents", 1)
        _check_int(self.obs_dim, "obs_dim", 1)
        _check_int(self.state_dim, "state_dim", 1)
        _check_int(self.episode_limit, "episode_limit", 1)
        spaces = tuple(self.agent_spaces)
        if len(spaces) != self.n_agents:
            raise ValueError(f"agent_spaces must have one AgentSpace per agent ({self.n_agents}), got {len(spaces)}")
        if not all(isinstance(s, AgentSpace) for s in spaces):
            raise TypeError("agent_spaces must contain AgentSpace objects")
        if len({s.kind for s in spaces}) != 1:
            raise ValueError("agent_spaces must be all discrete or all continuous; mixed spaces are not supported")
        object.__setattr__(self, "agent_spaces", spaces)

    @property
    def is_discrete(self) -> bool:
        return self.agent_spaces[0].is_discrete

    @property
    def n_actions(self) -> tuple[int, ...]:
        """Per-agent action counts (discrete only)."""
        if not self.is_discrete:
            raise ValueError("n_actions is defined only for discrete action spaces")
        return tuple(s.n for s in self.agent_spaces)

    @property
    def max_actions(self) -> int:
        """``A_max``, the width of ``avail_actions`` (discrete only)."""
        return max(self.n_actions)

    @property
    def act_dim(self) -> int:
        """Width of a continuous action tensor ``[B, n, act_dim]`` (max over agents; 1 if discrete)."""
        return max(s.dim for s in self.agent_spaces)


# --------------------------------------------------------------------------------------------------
# step record
# --------------------------------------------------------------------------------------------------
@dataclass
class Step:
    """One batched transition record (see the module docstring for shapes and auto-reset)."""

    obs: torch.Tensor
    state: torch.Tensor
    avail_actions: torch.Tensor | None
    reward: torch.Tensor
    terminated: torch.Tensor
    truncated: torch.Tensor
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def done(self) -> torch.Tensor:
        """``terminated | truncated``: the environments that were auto-reset by this step."""
        return self.terminated | self.truncated

    def check(self, spec: EnvSpec, num_envs: int) -> None:
        """Raise ``ValueError`` unless every field has the shape and dtype of the protocol."""
        b, n = num_envs, spec.n_agents
        expected = {
            "obs": ((b, n, spec.obs_dim), torch.float32),
            "state": ((b, spec.state_dim), torch.float32),
            "reward": ((b,), torch.float32),
            "terminated": ((b,), torch.bool),
            "truncated": ((b,), torch.bool),
        }
        if spec.is_discrete:
            expected["avail_actions"] = ((b, n, spec.max_actions), torch.bool)
        elif self.avail_actions is not None:
            raise ValueError("avail_actions must be None for continuous action spaces")
        for name, (shape, dtype) in expected.items():
            value = getattr(self, name)
            if not isinstance(value, torch.Tensor):
                raise ValueError(f"Step.{name} must be a torch.Tensor, got {type(value).__name__}")
            if tuple(value.shape) != shape or value.dtype != dtype:
                raise ValueError(f"Step.{name} must be {dtype} of shape {shape}, got {value.dtype} {tuple(value.shape)}")


# --------------------------------------------------------------------------------------------------
# checkpoints of envs whose simulators cannot be saved
# --------------------------------------------------------------------------------------------------
class RestartsOnResume:
    """Checkpoint protocol (``state_dict`` / ``load_state_dict``, used by the trainer) of an env whose simulator
    states cannot be saved (MuJoCo, PettingZoo, GRF, StarCraft II): a checkpoint keeps the env's generator; loading
    it restarts every episode with a seed drawn from the restored generator and returns the fresh first
    :class:`Step`, which the trainer acts from. The episodes running at the checkpoint are lost; the run's data,
    weights and optimiser states are not. Mix in before :class:`MultiAgentEnv`."""

    def state_dict(self) -> dict[str, Any]:
        return {"generator": self.generator.get_state(), "note": "simulator states are not checkpointed"}

    def load_state_dict(self, state: dict[str, Any]) -> Step:
        self.generator.set_state(state["generator"])
        self._async = None  # no split step survives a checkpoint
        return self.reset(seed=int(torch.randint(0, 2**31 - 1, (1,), generator=self.generator).item()))


# --------------------------------------------------------------------------------------------------
# the environment base class
# --------------------------------------------------------------------------------------------------
class MultiAgentEnv(ABC):
    """Batched, auto-resetting cooperative multi-agent environment (see the module docstring).

    Subclasses implement three hooks, all vectorised over environments (no Python loop over environments):

    * ``_reset_where(mask)``: start a new episode in every environment with ``mask[b]`` (bool ``[B]``);
      must consume the generator identically whatever ``mask`` is (e.g. sample for all, then ``where``).
    * ``_advance(actions) -> (reward [B] f32, terminated [B] bool)``: apply validated actions; at that point
      ``self._elapsed`` already counts the step being taken (1 on the first step of an episode).
    * ``_observe() -> (obs, state, avail_actions)`` of the current internal state.
    * optionally ``_current_avail()`` (a cheaper ``avail_actions`` for validation) and
      ``_check_extra(actions)`` (extra action rules; range and availability are checked here already).

    ``reset`` returns a Step with an empty ``info``; every ``step`` fills ``info`` as the module docstring says.

    Truncation at ``spec.episode_limit`` is done here: an episode that reaches the limit without
    terminating is ``truncated``.
    """

    def __init__(self, spec: EnvSpec, num_envs: int, device: str | torch.device | None = "cpu",
                 seed: int | None = None, check_actions: bool = True) -> None:
        if not isinstance(spec, EnvSpec):
            raise TypeError(f"spec must be an EnvSpec, got {type(spec).__name__}")
        self._spec = spec
        self._num_envs = _check_int(num_envs, "num_envs", 1)
        per_env = 4 * (3 * (spec.n_agents * spec.obs_dim + spec.state_dim) + 4 * spec.n_agents * 8 + 16)
        if self._num_envs * per_env > MAX_ENV_BYTES:
            raise ValueError(f"num_envs={self._num_envs:,} would need about {self._num_envs * per_env / 2**30:,.1f} GiB "
                             f"for one step's buffers alone (limit {MAX_ENV_BYTES / 2**30:.0f} GiB, "
                             "seqmarl.envs.base.MAX_ENV_BYTES)")
        self._device = as_device(device)
        if seed is not None:
            seed = _check_int(seed, "seed", 0)
        self.check_actions = bool(check_actions)
        self._generator = torch.Generator(device=self._device)
        if seed is None:
            self._generator.seed()
        else:
            self._generator.manual_seed(seed)
        self._elapsed = torch.zeros(self._num_envs, dtype=torch.int64, device=self._device)
        self._episode_return = torch.zeros(self._num_envs, dtype=torch.float32, device=self._device)
        self._needs_reset = True
        if spec.is_discrete:
            self._n_actions_t = torch.tensor(spec.n_actions, dtype=torch.int64, device=self._device)
        else:
            d = spec.act_dim
            self._act_dim = d
            real = torch.zeros(spec.n_agents, d, dtype=torch.bool)
            low = torch.full((spec.n_agents, d), -math.inf)
            high = torch.full((spec.n_agents, d), math.inf)
            for i, space in enumerate(spec.agent_spaces):
                real[i, : space.dim] = True
                low[i, : space.dim] = torch.tensor(space.low)
                high[i, : space.dim] = torch.tensor(space.high)
            self._act_real = real.to(self._device)
            self._act_padding = ~self._act_real
            self._act_low = low.to(self._device)
            self._act_high = high.to(self._device)

    # --- public properties --------------------------------------------------------------------
    @property
    def num_envs(self) -> int:
        return self._num_envs

    @property
    def device(self) -> torch.device:
        return self._device

    @property
    def spec(self) -> EnvSpec:
        return self._spec

    @property
    def generator(self) -> torch.Generator:
        """The environment's random generator (seeded by ``reset(seed)``)."""
        return self._generator

    @property
    def elapsed(self) -> torch.Tensor:
        """Steps taken in each environment's current episode, int64 ``[B]``."""
        return self._elapsed.clone()

    # --- protocol -------------------------------------------------------------------------------
    def reset(self, seed: int | None = None) -> Step:
        """Start a new episode in every environment. ``seed`` re-seeds the generator (same seed, same
        trajectories); ``None`` continues the current stream. Returns a Step with zero reward and no
        termination flags."""
        if seed is not None:
            self._generator.manual_seed(_check_int(seed, "seed", 0))
        everything = torch.ones(self._num_envs, dtype=torch.bool, device=self._device)
        self._reset_where(everything)
        self._elapsed.zero_()
        self._episode_return.zero_()
        self._needs_reset = False
        obs, state, avail = self._observe()
        zeros_b = torch.zeros(self._num_envs, dtype=torch.bool, device=self._device)
        return Step(obs=obs, state=state, avail_actions=avail,
                    reward=torch.zeros(self._num_envs, dtype=torch.float32, device=self._device),
                    terminated=zeros_b, truncated=zeros_b.clone(), info={})

    def step(self, actions: torch.Tensor) -> Step:
        """Apply ``actions`` (int ``[B, n]`` for discrete, float ``[B, n, act_dim]`` for continuous) in every
        environment; auto-resets the environments whose episode ended (module docstring)."""
        self._step_start(actions)
        return self._step_finish()

    # --- split stepping: start a step, do other work, then take its result ---------------------------
    def step_async(self, actions: torch.Tensor) -> None:
        """Start ``step(actions)``; :meth:`step_wait` returns its :class:`Step`. Environments whose simulation runs
        elsewhere (worker processes, JAX's asynchronous dispatch) are already stepping when this returns, so the
        caller can do unrelated work meanwhile (the trainer stores the previous transition then); elsewhere the step
        runs inside :meth:`step_wait`. ``step_async(a); step_wait()`` is exactly ``step(a)``: same checks, same
        results. Nothing else may be called on the environment in between."""
        if getattr(self, "_async", None) is not None:
            raise RuntimeError("step_async() called again before step_wait()")
        if type(self).step is MultiAgentEnv.step:  # this class's own step: start it now
            self._step_start(actions)
            self._async = _STARTED
        else:  # a subclass with its own step(): run it in step_wait
            self._async = (actions,)

    def step_wait(self) -> Step:
        """The :class:`Step` of the last :meth:`step_async`."""
        pending, self._async = getattr(self, "_async", None), None
        if pending is None:
            raise RuntimeError("step_wait() without a step_async() before it")
        return self._step_finish() if pending is _STARTED else self.step(pending[0])

    def _step_start(self, actions: torch.Tensor) -> None:
        if self._needs_reset:
            raise RuntimeError("call reset() before step()")
        actions = self.validate_actions(actions) if self.check_actions else self._coerce(actions)
        self._elapsed += 1
        self._advance_start(actions)

    def _step_finish(self) -> Step:
        reward, terminated = self._advance_finish()
        reward = reward.to(torch.float32)
        terminated = terminated.to(torch.bool)
        truncated = (self._elapsed >= self._spec.episode_limit) & ~terminated
        self._episode_return += reward
        final_obs, final_state, final_avail = self._observe()
        done = terminated | truncated
        info: dict[str, Any] = {
            "final_obs": final_obs,
            "final_state": final_state,
            "final_avail_actions": final_avail,
            "episode_return": self._episode_return.clone(),
            "episode_length": self._elapsed.clone(),
        }
        # Unconditional masked reset: no host synchronisation, same generator consumption every step.
        self._reset_where(done)
        self._elapsed.masked_fill_(done, 0)  # in place: info holds clones
        self._episode_return.masked_fill_(done, 0.0)
        obs, state, avail = self._observe()
        return Step(obs=obs, state=state, avail_actions=avail, reward=reward,
                    terminated=terminated, truncated=truncated, info=info)

    # --- validation -----------------------------------------------------------------------------
    #: Continuous actions are clipped into their box before the range check (subclasses that wrap simulators
    #: which clamp anyway, e.g. MaMuJoCo, VMAS, MPE, set it from their ``clip_actions`` argument), so a Gaussian
    #: policy's unbounded samples are accepted; NaN is never clipped (it is still refused).
    clip_actions: bool = False

    def _clip_to_box(self, actions: torch.Tensor) -> torch.Tensor:
        """``min(max(actions, low), high)`` elementwise (padding dims have infinite bounds); ``torch.clamp``
        propagates NaN, so a NaN action stays NaN and is refused by the check."""
        low, high = self._act_low, self._act_high
        if actions.dtype != low.dtype:
            low, high = low.to(actions.dtype), high.to(actions.dtype)
        return torch.clamp(actions, low, high)

    def _coerce(self, actions: torch.Tensor) -> torch.Tensor:
        if self._spec.is_discrete:
            return actions.to(device=self._device, dtype=torch.int64)
        actions = actions.to(device=self._device, dtype=torch.float32)
        return self._clip_to_box(actions) if self.clip_actions else actions

    def validate_actions(self, actions: torch.Tensor) -> torch.Tensor:
        """Check ``actions`` against the spec (type, shape, dtype, device, range, availability) and return
        it as int64 (discrete) or float32 (continuous). Raises ``TypeError``/``ValueError`` naming ``actions``.
        With :attr:`clip_actions`, well-formed continuous actions are first clipped into the box."""
        spec = self._spec
        clipped = (self.clip_actions and not spec.is_discrete and isinstance(actions, torch.Tensor)
                   and actions.is_floating_point() and actions.device == self._device
                   and tuple(actions.shape) == (self.num_envs, spec.n_agents, self._act_dim))
        if clipped:
            actions = self._clip_to_box(actions)
        if not isinstance(actions, torch.Tensor):
            raise TypeError(f"actions must be a torch.Tensor, got {type(actions).__name__}")
        if actions.device.type != self._device.type or (
            self._device.index is not None and actions.device.index not in (None, self._device.index)
        ):
            raise ValueError(f"actions must be on the environment's device {self._device}, got {actions.device}")
        b, n = self._num_envs, spec.n_agents
        if spec.is_discrete:
            if actions.dtype == torch.bool or actions.is_floating_point() or actions.is_complex():
                raise TypeError(f"actions must be an integer tensor (torch.int64) for discrete spaces, got {actions.dtype}")
            if tuple(actions.shape) != (b, n):
                raise ValueError(f"actions must have shape [num_envs, n_agents] = {(b, n)}, got {tuple(actions.shape)}")
            actions = actions.to(torch.int64)
            bad = (actions < 0) | (actions >= self._n_actions_t)
            avail = self._current_avail()
            # one host synchronisation for both checks (out-of-range entries are gathered at a clamped index and
            # reported by the range check below, which comes first as before)
            ok = avail.gather(2, actions.clamp(0, spec.max_actions - 1).unsqueeze(-1)).squeeze(-1)
            if not bool((ok & ~bad).all()):
                if bool(bad.any()):
                    env, agent = (int(x) for x in bad.nonzero()[0])
                    raise ValueError(
                        f"actions[{env}, {agent}] = {int(actions[env, agent])} is out of range for agent {agent} "
                        f"with {spec.n_actions[agent]} actions"
                    )
                env, agent = (int(x) for x in (~ok).nonzero()[0])
                raise ValueError(
                    f"actions[{env}, {agent}] = {int(actions[env, agent])} is not available "
                    f"(avail_actions[{env}, {agent}] is False there)"
                )
        else:
            if not actions.is_floating_point():
                raise TypeError(f"actions must be a floating-point tensor for continuous spaces, got {actions.dtype}")
            d = self._act_dim
            if tuple(actions.shape) != (b, n, d):
                raise ValueError(f"actions must have shape [num_envs, n_agents, act_dim] = {(b, n, d)}, got {tuple(actions.shape)}")
            actions = actions.to(torch.float32)
            if clipped:  # inside the box already unless NaN (or infinite where a bound is): finiteness suffices
                ok = bool((torch.isfinite(actions) | self._act_padding).all())
            else:  # one host synchronisation for both checks
                ok = bool(((torch.isfinite(actions) & (actions >= self._act_low) & (actions <= self._act_high))
                           | self._act_padding).all())
            if not ok:
                finite = torch.isfinite(actions)
                inside = (actions >= self._act_low) & (actions <= self._act_high)
                real = self._act_real.expand(b, n, d)
                bad = real & ~finite
                if bool(bad.any()):
                    env, agent, dim = (int(x) for x in bad.nonzero()[0])
                    raise ValueError(f"actions[{env}, {agent}, {dim}] must be finite, got {float(actions[env, agent, dim])}")
                bad = real & ~inside
                env, agent, dim = (int(x) for x in bad.nonzero()[0])
                space = spec.agent_spaces[agent]
                raise ValueError(
                    f"actions[{env}, {agent}, {dim}] = {float(actions[env, agent, dim])} lies outside agent {agent}'s box "
                    f"[{space.low[dim]}, {space.high[dim]}] (clip before stepping)"
                )
        self._check_extra(actions)
        return actions

    def _current_avail(self) -> torch.Tensor:
        """Current ``avail_actions``; subclasses may override with something cheaper than ``_observe``."""
        _, _, avail = self._observe()
        assert avail is not None
        return avail

    def _check_extra(self, actions: torch.Tensor) -> None:  # noqa: B027 - optional hook
        """Hook for environment-specific action rules."""

    # --- hooks ----------------------------------------------------------------------------------
    @abstractmethod
    def _reset_where(self, mask: torch.Tensor) -> None:
        """Reset the internal state of every environment with ``mask[b]`` true."""

    @abstractmethod
    def _advance(self, actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Apply the (validated) actions; return ``(reward [B], terminated [B])``."""

    def _advance_start(self, actions: torch.Tensor) -> None:
        """Optional split of :meth:`_advance` (with :meth:`_advance_finish`) for simulators that run outside this
        thread: start applying the actions and return at once. By default the actions are kept for
        :meth:`_advance_finish`, which calls :meth:`_advance`."""
        self._advance_actions = actions

    def _advance_finish(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(reward [B], terminated [B])`` of the step begun by :meth:`_advance_start`."""
        actions, self._advance_actions = self._advance_actions, None
        return self._advance(actions)

    @abstractmethod
    def _observe(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """``(obs [B, n, obs_dim], state [B, state_dim], avail_actions [B, n, A_max] or None)``."""

    # --- helpers for subclasses -----------------------------------------------------------------
    def _padding_mask(self) -> torch.Tensor:
        """``[n, A_max]`` bool: True for the real actions of each agent, False for the padding."""
        n_actions = torch.tensor(self._spec.n_actions, device=self._device)
        return torch.arange(self._spec.max_actions, device=self._device)[None, :] < n_actions[:, None]

    def __repr__(self) -> str:
        return f"{type(self).__name__}(num_envs={self._num_envs}, device={str(self._device)!r}, spec={self._spec})"
