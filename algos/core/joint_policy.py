"""The joint-policy interface of the on-policy engine, and what is built on it alone.

A joint policy of ``n`` agents factorises along an execution ``order`` (a permutation of ``0..n-1``):

.. math:: \\pi(a \\mid o) = \\prod_{k=1}^{n} \\pi^{i_k}\\big(a^{i_k} \\mid o, a^{i_1}, \\dots, a^{i_{k-1}}\\big).

:class:`JointPolicy` is what the joint-ratio update (``actor_update="joint_ratio_clip"``) and the exact readout
(:func:`exact_joint_table`) use. Its methods return PER-AGENT quantities ``[..., n]`` indexed by agent (not by
position in the order):

* ``sample(obs, avail, generator, order=None, deterministic=False) -> (actions [..., n], log_probs [..., n])`` —
  agents act one after another in ``order``; ``log_probs[..., i]`` is agent i's conditional log-prob given the
  actions of the agents before it;
* ``log_prob(obs, actions, avail, order=None) -> [..., n]`` — the same conditionals, teacher-forced on given
  joint ``actions`` (equal to the sampled ones for sampled actions);
* ``entropy(obs, avail, order=None, actions=None) -> [..., n]`` — the conditional entropies given the earlier
  agents' taken ``actions`` (their sum estimates the joint entropy);
* ``parameters()``.

``order`` is ``None`` (``0, 1, ..., n-1``) or an int64 tensor ``[..., n]`` with one permutation per sample
(``order[..., k]`` is the agent acting k-th). Two implementations:

* :class:`seqmarl.algos.core.networks.MultiAgentActors` — a product policy: every conditional is the agent's
  marginal, so ``order`` changes nothing and ``entropy`` ignores ``actions``;
* :class:`seqmarl.algos.core.ar_policy.AutoRegressiveActor` — one shared network conditioned on the earlier
  agents' actions (AR-MAPPO).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch
from torch import nn

from ._checks import check_int, check_tensor

Tensor = torch.Tensor

__all__ = ["JointPolicy", "is_autoregressive", "check_order", "order_positions", "fixed_orders", "random_orders",
           "all_orders", "exact_joint_table"]


@runtime_checkable
class JointPolicy(Protocol):
    """The joint policy of ``n_agents`` agents (module docstring). ``discrete``: categorical actions."""

    n_agents: int
    discrete: bool

    def sample(self, obs: Tensor, avail: Tensor | None = None, generator: torch.Generator | None = None, *,
               order: Tensor | None = None, deterministic: bool = False) -> Any: ...

    def log_prob(self, obs: Tensor, actions: Tensor, avail: Tensor | None = None, *,
                 order: Tensor | None = None) -> Tensor: ...

    def entropy(self, obs: Tensor, avail: Tensor | None = None, *, order: Tensor | None = None,
                actions: Tensor | None = None) -> Tensor: ...

    def parameters(self, recurse: bool = True) -> Iterator[nn.Parameter]: ...


def is_autoregressive(policy: Any) -> bool:
    """True for a policy whose conditionals depend on the earlier agents' actions (``policy.autoregressive``)."""
    return bool(getattr(policy, "autoregressive", False))


def check_order(order: Tensor | None, lead: tuple[int, ...], n_agents: int) -> Tensor | None:
    """Validate ``order`` (``None`` or an integer tensor ``lead + (n,)`` holding a permutation of ``0..n-1`` in
    every row); returns it as int64."""
    if order is None:
        return None
    check_tensor(order, "order")
    if order.is_floating_point() or order.dtype == torch.bool:
        raise TypeError(f"order must be an integer tensor (agent indices), got dtype {order.dtype}")
    if tuple(order.shape) != tuple(lead) + (n_agents,):
        raise ValueError(f"order must have shape {tuple(lead) + (n_agents,)} (one permutation of the {n_agents} "
                         f"agents per sample), got {tuple(order.shape)}")
    order = order.long()
    if order.numel():
        expected = torch.arange(n_agents, device=order.device)
        if not bool((order.sort(-1).values == expected).all()):
            raise ValueError(f"order must hold a permutation of 0..{n_agents - 1} in every row")
    return order


def order_positions(order: Tensor) -> Tensor:
    """``pos[..., j]`` = the position of agent ``j`` in ``order`` (the inverse permutation), int64."""
    pos = torch.empty_like(order)
    steps = torch.arange(order.shape[-1], device=order.device).expand_as(order)
    return pos.scatter_(-1, order, steps)


def fixed_orders(lead: tuple[int, ...], n_agents: int, device: torch.device | str | None = None) -> Tensor:
    """The order ``0, 1, ..., n-1`` for every sample: ``lead + (n,)``."""
    return torch.arange(n_agents, device=device).expand(tuple(lead) + (n_agents,)).clone()


def random_orders(batch: int, n_agents: int, generator: torch.Generator | None = None,
                  device: torch.device | str | None = None) -> Tensor:
    """A fresh uniform permutation per sample, ``[batch, n]`` int64 (drawn with ``generator`` on its device)."""
    batch = check_int(batch, "batch", minimum=0)
    n_agents = check_int(n_agents, "n_agents")
    gen_device = generator.device if generator is not None else device
    keys = torch.rand(batch, n_agents, generator=generator, device=gen_device)
    order = keys.argsort(-1)
    return order if device is None else order.to(device)


def all_orders(n_agents: int) -> list[tuple[int, ...]]:
    """Every permutation of ``0..n-1`` (``n!`` of them), in lexicographic order."""
    return list(itertools.permutations(range(check_int(n_agents, "n_agents"))))


@torch.no_grad()
def exact_joint_table(policy: JointPolicy, obs: Tensor, avail: Tensor | None, n_actions: Sequence[int],
                      orders: Sequence[Sequence[int]] | None = None) -> np.ndarray:
    """The exact joint table ``pi(a | s)`` ``[S, A_1, ..., A_n]`` (float64) of a discrete joint policy on the
    observations ``obs [S, n, d]`` (masks ``avail [S, n, A_max]``), by enumeration — no sampling.

    For every state and every joint action ``a`` (each agent's actions ``0..A_i-1``; equivalently every action
    prefix), ``pi(a | s) = prod_k pi^{i_k}(a^{i_k} | s, a^{i_{<k}})`` is the product of the teacher-forced
    conditionals ``policy.log_prob(obs, a, avail, order=...)``. With several ``orders`` (e.g. all ``n!`` for a
    policy that draws a uniform random order per sample) the table is their uniform mixture, the distribution the
    sampler draws from. Rows are renormalised in float64 (float32 products sum to 1 within ~1e-6)."""
    if not getattr(policy, "discrete", True):
        raise ValueError("exact_joint_table needs discrete actions")
    check_tensor(obs, "obs", floating=True, ndim_min=3)
    n = obs.shape[-2]
    n_actions = tuple(int(a) for a in n_actions)
    if len(n_actions) != n:
        raise ValueError(f"n_actions must have one entry per agent ({n}), got {n_actions}")
    S = obs.shape[0]
    grid = torch.tensor(list(itertools.product(*[range(a) for a in n_actions])), dtype=torch.long,
                        device=obs.device).reshape(-1, n)  # [J, n], C order (the layout of [A_1, ..., A_n])
    J = grid.shape[0]
    obs_rep = obs.unsqueeze(1).expand(S, J, *obs.shape[1:]).reshape(S * J, *obs.shape[1:])
    act_rep = grid.unsqueeze(0).expand(S, J, n).reshape(S * J, n)
    avail_rep = None if avail is None else avail.unsqueeze(1).expand(S, J, *avail.shape[1:]).reshape(
        S * J, *avail.shape[1:])
    orders = [tuple(range(n))] if orders is None else [tuple(int(i) for i in o) for o in orders]
    if not orders:
        raise ValueError("orders must hold at least one order")
    table = np.zeros((S, J))
    for o in orders:
        order = torch.tensor(o, dtype=torch.long, device=obs.device).expand(S * J, n)
        lp = policy.log_prob(obs_rep, act_rep, avail_rep, order=order)  # [S * J, n]
        table += lp.double().sum(-1).exp().reshape(S, J).cpu().numpy()
    table /= table.sum(axis=1, keepdims=True)
    return table.reshape((S,) + n_actions)
