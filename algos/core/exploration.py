"""Epsilon-greedy action selection over available actions, and the linear epsilon schedule of PyMARL.

* :class:`LinearSchedule`: ``eps(t) = start + (finish - start) * min(1, t / anneal_steps)`` over environment steps
  ``t`` (PyMARL ``DecayThenFlatSchedule`` with ``decay="linear"``; ``epsilon_start 1.0``, ``epsilon_finish 0.05``,
  ``epsilon_anneal_time 50000`` in ``src/config/algs/qmix.yaml``).
* :func:`epsilon_greedy`: with probability ``eps`` an action drawn uniformly from the AVAILABLE actions of the
  agent, otherwise ``argmax_a Q(a)`` over the available actions (PyMARL ``EpsilonGreedyActionSelector``; ties go
  to the lowest index, as ``torch.argmax`` does).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ._checks import check_int, check_prob, check_tensor

Tensor = torch.Tensor


@dataclass(frozen=True)
class LinearSchedule:
    """``value(t)``: linear from ``start`` to ``finish`` over ``anneal_steps`` steps, then flat."""

    start: float = 1.0
    finish: float = 0.05
    anneal_steps: int = 50_000

    def __post_init__(self) -> None:
        check_prob(self.start, "epsilon_start")
        check_prob(self.finish, "epsilon_finish")
        check_int(self.anneal_steps, "epsilon_anneal_steps", minimum=1)

    def value(self, t: int) -> float:
        frac = min(1.0, max(0, int(t)) / self.anneal_steps)
        return self.start + (self.finish - self.start) * frac


def masked_q(q: Tensor, avail: Tensor | None) -> Tensor:
    """``q`` with unavailable actions set to ``-inf`` (so ``max``/``argmax`` ignore them)."""
    if avail is None:
        return q
    if avail.shape != q.shape:
        raise ValueError(f"avail must have the shape of q {tuple(q.shape)}, got {tuple(avail.shape)}")
    return q.masked_fill(~avail.bool(), float("-inf"))


def greedy_actions(q: Tensor, avail: Tensor | None) -> Tensor:
    """``argmax`` over the available actions of the last axis (int64)."""
    return masked_q(q, avail).argmax(dim=-1)


def epsilon_greedy(q: Tensor, avail: Tensor | None, epsilon: float, generator: torch.Generator | None = None) -> Tensor:
    """Actions ``[...]`` from utilities ``q [..., A]``: uniform over available actions w.p. ``epsilon``, else greedy.

    Every row must have at least one available action. Draws use ``generator`` (on ``q``'s device)."""
    check_tensor(q, "q", floating=True, ndim_min=1)
    epsilon = check_prob(epsilon, "epsilon")
    if avail is None:
        avail = torch.ones_like(q, dtype=torch.bool)
    avail = avail.bool()
    if bool((~avail.any(dim=-1)).any()):
        raise ValueError("avail must leave at least one available action per agent")
    greedy = greedy_actions(q, avail)
    # uniform over the available actions: argmax of masked uniform noise
    noise = torch.rand(q.shape, generator=generator, device=q.device).masked_fill(~avail, -1.0)
    random_actions = noise.argmax(dim=-1)
    explore = torch.rand(greedy.shape, generator=generator, device=q.device) < epsilon
    return torch.where(explore, random_actions, greedy)
