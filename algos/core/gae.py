"""Generalised advantage estimation with the terminated / truncated distinction.

Conventions (DESIGN.md §4): a step that ends its episode by *termination* has no future, so its
TD target does not bootstrap; a step that ends by *truncation* (time limit) bootstraps from the value of the
final, pre-reset observation. In both cases the GAE recursion is cut, because the next row of the buffer
belongs to a new episode.
"""

from __future__ import annotations

from typing import Protocol

import torch

from ._checks import check_flag_tensor, check_prob, check_tensor

Tensor = torch.Tensor

__all__ = ["compute_gae", "compute_gae_with_value_norm"]


class _Denormaliser(Protocol):
    def denormalize(self, x: Tensor) -> Tensor: ...


def _expand_like(x: Tensor, ref: Tensor, name: str) -> Tensor:
    """Broadcast a [T, B] tensor to ref's shape [T, B, *extra] (or accept ref's exact shape)."""
    if tuple(x.shape) == tuple(ref.shape):
        return x
    if tuple(x.shape) == tuple(ref.shape[:2]):
        return x.reshape(x.shape + (1,) * (ref.dim() - 2)).expand(ref.shape)
    raise ValueError(
        f"{name} must have shape {tuple(ref.shape[:2])} or {tuple(ref.shape)} (values' shape), got {tuple(x.shape)}"
    )


def compute_gae(
    rewards: Tensor,
    values: Tensor,
    next_values: Tensor,
    terminated: Tensor,
    truncated: Tensor,
    gamma: float,
    lam: float,
) -> tuple[Tensor, Tensor]:
    r"""GAE(gamma, lambda) advantages and lambda-returns (Schulman et al. 2016; theory.md §1.10 "A-hat e.g. GAE").

    For t = T-1, ..., 0 (time is the first axis, environments the second):

    .. math::
        \delta_t = r_t + \gamma (1 - \mathrm{term}_t) V'_t - V_t, \qquad
        A_t = \delta_t + \gamma\lambda (1 - \mathrm{done}_t) A_{t+1}, \qquad A_T = 0,

    with ``done = terminated | truncated`` and ``returns = A + values``.

    Args:
        rewards: ``[T, B]`` (or values' shape) rewards r_t.
        values: ``[T, B, *extra]`` V(s_t) -- **de-normalised**: if the critic is trained on normalised targets
            the caller must pass ``value_norm.denormalize(v)`` (or use :func:`compute_gae_with_value_norm`).
            ``extra`` may hold e.g. an agent axis for per-agent critics.
        next_values: same shape, ``V'_t = V(s_{t+1})``. For a step that ended by truncation, ``s_{t+1}`` is the
            final (pre-reset) observation of that episode; at the last row it is the value of the observation
            after the rollout. Entries at terminated steps are ignored (multiplied by 0).
        terminated, truncated: ``[T, B]`` (or values' shape), bool or 0/1.
        gamma: discount in [0, 1]. lam: GAE lambda in [0, 1] (0: one-step TD, 1: Monte Carlo to the bootstrap).

    Returns:
        ``(advantages, returns)`` with values' shape and dtype.
    """
    check_tensor(values, "values", floating=True, ndim_min=2)
    check_tensor(next_values, "next_values", floating=True)
    check_tensor(rewards, "rewards", floating=True)
    if tuple(next_values.shape) != tuple(values.shape):
        raise ValueError(f"next_values must have values' shape {tuple(values.shape)}, got {tuple(next_values.shape)}")
    term = check_flag_tensor(terminated, "terminated")
    trunc = check_flag_tensor(truncated, "truncated")
    gamma = check_prob(gamma, "gamma")
    lam = check_prob(lam, "lam")
    rewards = _expand_like(rewards, values, "rewards").to(values.dtype)
    term = _expand_like(term, values, "terminated")
    trunc = _expand_like(trunc, values, "truncated")

    not_term = (~term).to(values.dtype)
    not_done = (~(term | trunc)).to(values.dtype)
    next_values = next_values.to(values.dtype)
    deltas = rewards + gamma * not_term * next_values - values
    advantages = torch.empty_like(values)
    running = torch.zeros_like(values[0])
    for t in range(values.shape[0] - 1, -1, -1):
        running = deltas[t] + gamma * lam * not_done[t] * running
        advantages[t] = running
    return advantages, advantages + values


def compute_gae_with_value_norm(
    rewards: Tensor,
    values: Tensor,
    next_values: Tensor,
    terminated: Tensor,
    truncated: Tensor,
    gamma: float,
    lam: float,
    value_norm: _Denormaliser,
) -> tuple[Tensor, Tensor]:
    """:func:`compute_gae` for a critic that outputs *normalised* values.

    ``values`` and ``next_values`` are the critic's normalised outputs; they are mapped back with
    ``value_norm.denormalize`` before the recursion (DESIGN.md §4: "value normalisation is de-normalised before
    GAE"). The returned advantages and returns are in the original (de-normalised) reward scale; to train the
    critic, normalise the returns with the same ValueNorm (after updating it).
    """
    if not hasattr(value_norm, "denormalize"):
        raise TypeError(f"value_norm must provide denormalize(), got {type(value_norm).__name__}")
    check_tensor(values, "values", floating=True)
    check_tensor(next_values, "next_values", floating=True)
    return compute_gae(
        rewards,
        value_norm.denormalize(values),
        value_norm.denormalize(next_values),
        terminated,
        truncated,
        gamma,
        lam,
    )
