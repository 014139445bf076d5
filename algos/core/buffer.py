"""On-policy rollout storage for multi-agent PPO/TRPO-style algorithms.

Layout (time first, then environments, then agents):

============== =================================== =========================================
name           shape                               meaning
============== =================================== =========================================
obs            [T, B, n, obs_dim]                  per-agent observations o_t
state          [T, B, state_dim]                   global state s_t (critic input)
actions        [T, B, n, *action_shape]            int64 if action_shape == () else float
log_probs      [T, B, n, *log_prob_shape]          behaviour log-probs (per agent; per dim optional)
rewards        [T, B]                              shared reward r_t
values         [T, B] or [T, B, n]                 critic output at s_t (as the critic outputs it)
next_values    same as values                      critic output at s_{t+1}; for a truncated step the
                                                   value of the final (pre-reset) observation
terminated     [T, B] bool                         episode ended by termination at this step
truncated      [T, B] bool                         episode ended by truncation at this step
avail_actions  [T, B, n, n_actions_max] bool       optional (discrete)
active         [T, B, n] bool                      agent alive/active (default True)
actor_rnn      [T, B, n, *actor_rnn_shape]         optional recurrent states entering step t
critic_rnn     [T, B, *critic_rnn_shape]           optional
episode_start  [T, B] bool                         with rnn states: step t is the first of an episode (the
                                                   stored rnn states are already zero there)
orders         [T, B, n] int64                     optional (``store_order``): the execution order an
                                                   auto-regressive policy sampled the step in
advantages     like values                         filled by compute_returns
returns        like values                         filled by compute_returns (de-normalised)
============== =================================== =========================================
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch

from ._checks import check_flag_tensor, check_int, check_tensor
from .gae import compute_gae

Tensor = torch.Tensor

__all__ = ["RolloutBuffer", "normalise_advantages", "minibatch_indices"]


def normalise_advantages(adv: Tensor, mask: Tensor | None = None, eps: float = 1e-5) -> Tensor:
    r"""``(adv - mean) / (std + eps)`` with mean and population std (ddof = 0) over the entries where ``mask`` is
    True (all entries if ``mask`` is None); the affine map is applied to every entry (HARL: statistics over
    active entries, theory.md §1.10 "Advantage normalisation")."""
    check_tensor(adv, "adv", floating=True)
    if adv.numel() == 0:
        raise ValueError("adv must be non-empty")
    if isinstance(eps, bool) or not isinstance(eps, (int, float)) or eps < 0:
        raise ValueError(f"eps must be a non-negative number, got {eps!r}")
    if mask is None:
        sel = adv.reshape(-1)
    else:
        m = check_flag_tensor(mask, "mask")
        try:
            m = torch.broadcast_to(m, adv.shape)
        except RuntimeError as exc:
            raise ValueError(f"mask of shape {tuple(mask.shape)} does not broadcast to adv's {tuple(adv.shape)}") \
                from exc
        sel = adv[m]
        if sel.numel() == 0:
            raise ValueError("mask selects no entry")
    mean = sel.mean()
    std = sel.std(correction=0)
    return (adv - mean) / (std + eps)


def minibatch_indices(n: int, num_minibatch: int, generator: torch.Generator | None = None,
                      device: torch.device | str | None = None) -> list[Tensor]:
    """A random partition of ``range(n)`` into ``num_minibatch`` index tensors whose sizes differ by at most 1
    (every index appears exactly once; unlike HARL, no remainder is dropped). The permutation is drawn on the
    generator's device and moved to ``device``."""
    n = check_int(n, "n")
    num_minibatch = check_int(num_minibatch, "num_minibatch")
    if num_minibatch > n:
        raise ValueError(f"num_minibatch must be <= the number of samples {n}, got {num_minibatch}")
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator or None, got {type(generator).__name__}")
    gen_device = generator.device if generator is not None else "cpu"
    perm = torch.randperm(n, generator=generator, device=gen_device)
    if device is not None:
        perm = perm.to(device)
    return list(torch.tensor_split(perm, num_minibatch))


class RolloutBuffer:
    """Fixed-size on-policy buffer (see the module docstring for the layout).

    Args:
        T: rollout length; num_envs: B; n_agents: n.
        obs_dim, state_dim: feature sizes.
        action_shape: ``()`` for discrete actions (stored int64) or ``(d,)`` for continuous (stored float).
        n_actions_max: if given, ``avail_actions [T, B, n, n_actions_max]`` is stored (discrete only).
        device: where every tensor lives.
        critic: ``"centralised"`` (values [T, B]) or ``"per_agent"`` (values [T, B, n]).
        log_prob_shape: trailing shape of stored log-probs (``()``; ``(d,)`` for per-dimension log-probs).
        actor_rnn_shape, critic_rnn_shape: optional recurrent-state shapes (per agent / per env); with either,
            an ``episode_start [T, B]`` flag is stored too (the reset mask a recurrent replay needs).
        dtype: float dtype of float fields.
        store_order: keep ``orders [T, B, n]`` (int64), the per-sample execution order of an auto-regressive
            policy that draws a random order per sample (``insert(..., order=)``), for the update to teacher-force.
    """

    def __init__(
        self,
        T: int,
        num_envs: int,
        n_agents: int,
        obs_dim: int,
        state_dim: int,
        action_shape: Sequence[int] = (),
        n_actions_max: int | None = None,
        device: torch.device | str = "cpu",
        *,
        critic: str = "centralised",
        log_prob_shape: Sequence[int] = (),
        actor_rnn_shape: Sequence[int] | None = None,
        critic_rnn_shape: Sequence[int] | None = None,
        dtype: torch.dtype = torch.float32,
        store_order: bool = False,
    ) -> None:
        self.T = check_int(T, "T")
        self.num_envs = check_int(num_envs, "num_envs")
        self.n_agents = check_int(n_agents, "n_agents")
        self.obs_dim = check_int(obs_dim, "obs_dim")
        self.state_dim = check_int(state_dim, "state_dim")
        self.action_shape = self._shape(action_shape, "action_shape")
        if len(self.action_shape) > 1:
            raise ValueError(f"action_shape must be () or (d,), got {self.action_shape}")
        self.discrete = self.action_shape == ()
        if n_actions_max is not None:
            n_actions_max = check_int(n_actions_max, "n_actions_max")
            if not self.discrete:
                raise ValueError("n_actions_max (avail_actions) is only meaningful for discrete actions "
                                 "(action_shape=())")
        self.n_actions_max = n_actions_max
        if critic not in ("centralised", "per_agent"):
            raise ValueError(f"critic must be 'centralised' or 'per_agent', got {critic!r}")
        self.critic = critic
        self.log_prob_shape = self._shape(log_prob_shape, "log_prob_shape")
        if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
            raise TypeError(f"dtype must be a floating torch.dtype, got {dtype!r}")
        self.device = torch.device(device)
        self.dtype = dtype
        T, B, n = self.T, self.num_envs, self.n_agents
        f = dict(device=self.device, dtype=dtype)
        bo = dict(device=self.device, dtype=torch.bool)
        self.value_shape: tuple[int, ...] = (T, B) if critic == "centralised" else (T, B, n)
        self.obs = torch.zeros(T, B, n, obs_dim, **f)
        self.state = torch.zeros(T, B, state_dim, **f)
        a_dtype = torch.long if self.discrete else dtype
        self.actions = torch.zeros((T, B, n) + self.action_shape, device=self.device, dtype=a_dtype)
        self.log_probs = torch.zeros((T, B, n) + self.log_prob_shape, **f)
        self.rewards = torch.zeros(T, B, **f)
        self.values = torch.zeros(self.value_shape, **f)
        self.next_values = torch.zeros(self.value_shape, **f)
        self.terminated = torch.zeros(T, B, **bo)
        self.truncated = torch.zeros(T, B, **bo)
        self.active = torch.ones(T, B, n, **bo)
        self.avail_actions = None if n_actions_max is None else torch.ones(T, B, n, n_actions_max, **bo)
        self.actor_rnn = None if actor_rnn_shape is None else torch.zeros(
            (T, B, n) + self._shape(actor_rnn_shape, "actor_rnn_shape"), **f)
        self.critic_rnn = None if critic_rnn_shape is None else torch.zeros(
            (T, B) + self._shape(critic_rnn_shape, "critic_rnn_shape"), **f)
        recurrent = actor_rnn_shape is not None or critic_rnn_shape is not None
        self.episode_start = torch.zeros(T, B, **bo) if recurrent else None
        if not isinstance(store_order, bool):
            raise TypeError(f"store_order must be a bool, got {type(store_order).__name__}")
        self.orders = torch.zeros(T, B, n, device=self.device, dtype=torch.long) if store_order else None
        self.advantages = torch.zeros(self.value_shape, **f)
        self.returns = torch.zeros(self.value_shape, **f)
        self.step = 0
        self._returns_ready = False

    @staticmethod
    def _shape(shape: Sequence[int], name: str) -> tuple[int, ...]:
        if isinstance(shape, (str, bytes)) or not isinstance(shape, Sequence):
            raise TypeError(f"{name} must be a sequence of ints, got {type(shape).__name__}")
        return tuple(check_int(s, f"{name}[{i}]") for i, s in enumerate(shape))

    # ------------------------------------------------------------------ filling
    @property
    def full(self) -> bool:
        return self.step == self.T

    def reset(self) -> None:
        """Start a new rollout (storage is overwritten by the next inserts)."""
        self.step = 0
        self._returns_ready = False
        self.active.fill_(True)
        if self.avail_actions is not None:
            self.avail_actions.fill_(True)

    def _put(self, name: str, dst: Tensor, src: Tensor, *, flag: bool = False) -> None:
        # fast path (every collection step): exactly the stored dtype and shape, so every check below passes
        if type(src) is Tensor and src.dtype == dst.dtype and src.shape == dst.shape[1:]:
            dst[self.step].copy_(src.detach() if src.requires_grad else src)
            return
        check_tensor(src, name)
        if flag:
            src = check_flag_tensor(src, name)
        elif dst.is_floating_point() and not src.is_floating_point():
            raise TypeError(f"{name} must be a floating-point tensor, got dtype {src.dtype}")
        elif not dst.is_floating_point() and (src.is_floating_point() or src.dtype == torch.bool):
            raise TypeError(f"{name} must be an integer tensor, got dtype {src.dtype}")
        if tuple(src.shape) != tuple(dst.shape[1:]):
            raise ValueError(f"{name} must have shape {tuple(dst.shape[1:])}, got {tuple(src.shape)}")
        dst[self.step].copy_(src.detach())

    def insert(
        self,
        obs: Tensor,
        state: Tensor,
        actions: Tensor,
        log_probs: Tensor,
        rewards: Tensor,
        values: Tensor,
        next_values: Tensor,
        terminated: Tensor,
        truncated: Tensor,
        avail_actions: Tensor | None = None,
        active: Tensor | None = None,
        actor_rnn: Tensor | None = None,
        critic_rnn: Tensor | None = None,
        episode_start: Tensor | None = None,
        order: Tensor | None = None,
    ) -> None:
        """Store one time step (all tensors without the T axis). See the module docstring for ``next_values``."""
        if self.full:
            raise ValueError(f"buffer is full (T={self.T}); call reset() before inserting")
        self._put("obs", self.obs, obs)
        self._put("state", self.state, state)
        self._put("actions", self.actions, actions)
        self._put("log_probs", self.log_probs, log_probs)
        self._put("rewards", self.rewards, rewards)
        self._put("values", self.values, values)
        self._put("next_values", self.next_values, next_values)
        self._put("terminated", self.terminated, terminated, flag=True)
        self._put("truncated", self.truncated, truncated, flag=True)
        if avail_actions is not None:
            if self.avail_actions is None:
                raise ValueError("avail_actions given but the buffer was built without n_actions_max")
            self._put("avail_actions", self.avail_actions, avail_actions, flag=True)
        if active is not None:
            self._put("active", self.active, active, flag=True)
        for name, store, src in (("actor_rnn", self.actor_rnn, actor_rnn), ("critic_rnn", self.critic_rnn, critic_rnn)):
            if src is not None:
                if store is None:
                    raise ValueError(f"{name} given but the buffer was built without {name}_shape")
                self._put(name, store, src)
        if episode_start is not None:
            if self.episode_start is None:
                raise ValueError("episode_start given but the buffer was built without rnn state shapes")
            self._put("episode_start", self.episode_start, episode_start, flag=True)
        if (order is None) != (self.orders is None):
            raise ValueError("order given but the buffer was built without store_order=True" if order is not None
                             else "the buffer was built with store_order=True: insert(..., order=) is required")
        if order is not None:
            self._put("order", self.orders, order)
        self.step += 1
        self._returns_ready = False

    # ------------------------------------------------------------------ returns
    def compute_returns(self, gamma: float, lam: float, value_norm=None) -> tuple[Tensor, Tensor]:
        """Fill ``advantages`` and ``returns`` with :func:`compute_gae` over the full buffer.

        If ``value_norm`` is given, the stored values/next_values are the critic's *normalised* outputs and are
        de-normalised before GAE; ``returns`` are then de-normalised targets.
        """
        if not self.full:
            raise ValueError(f"buffer holds {self.step} of T={self.T} steps; fill it before compute_returns")
        values, next_values = self.values, self.next_values
        if value_norm is not None:
            if not hasattr(value_norm, "denormalize"):
                raise TypeError(f"value_norm must provide denormalize(), got {type(value_norm).__name__}")
            values = value_norm.denormalize(values)
            next_values = value_norm.denormalize(next_values)
        adv, ret = compute_gae(self.rewards, values, next_values, self.terminated, self.truncated, gamma, lam)
        self.advantages.copy_(adv)
        self.returns.copy_(ret)
        self._returns_ready = True
        return self.advantages, self.returns

    # ------------------------------------------------------------------ sampling
    @property
    def batch_size(self) -> int:
        return self.T * self.num_envs

    def fields(self) -> dict[str, Tensor]:
        """All stored tensors by name (optional ones only when present)."""
        out = {
            "obs": self.obs, "state": self.state, "actions": self.actions, "log_probs": self.log_probs,
            "rewards": self.rewards, "values": self.values, "next_values": self.next_values,
            "terminated": self.terminated, "truncated": self.truncated, "active": self.active,
            "advantages": self.advantages, "returns": self.returns,
        }
        for name in ("avail_actions", "actor_rnn", "critic_rnn", "episode_start", "orders"):
            t = getattr(self, name)
            if t is not None:
                out[name] = t
        return out

    def flat(self, name: str) -> Tensor:
        """Field ``name`` reshaped to ``[T*B, ...]`` (the agent axis, if any, is kept)."""
        f = self.fields()
        if name not in f:
            raise ValueError(f"name must be one of {sorted(f)}, got {name!r}")
        t = f[name]
        return t.reshape((self.batch_size,) + tuple(t.shape[2:]))

    def get(self, indices: Tensor) -> dict[str, Tensor]:
        """Every field at the flat indices ``indices`` (into T*B): ``{name: [len(indices), ...]}``."""
        check_tensor(indices, "indices")
        if indices.dtype != torch.long or indices.dim() != 1:
            raise TypeError("indices must be a 1-D int64 tensor")
        if not self._returns_ready:
            raise ValueError("call compute_returns() before sampling minibatches")
        idx = indices.to(self.device)
        return {name: self.flat(name)[idx] for name in self.fields()}

    def minibatches(self, num_minibatch: int, generator: torch.Generator | None = None) -> Iterator[dict[str, Tensor]]:
        """Yield ``num_minibatch`` minibatches partitioning the T*B samples (each index exactly once).

        Each minibatch is :meth:`get`'s dict plus ``"indices"``; per-agent fields keep their agent axis so a
        sequential per-agent update can take agent i's column ``batch["obs"][:, i]``.
        """
        if not self._returns_ready:
            raise ValueError("call compute_returns() before sampling minibatches")
        for idx in minibatch_indices(self.batch_size, num_minibatch, generator, device=self.device):
            batch = self.get(idx)
            batch["indices"] = idx
            yield batch
