"""Per-agent conditional entropies of a joint action table, and the permutation game's ceilings.

For a joint distribution ``p(a^1, ..., a^n)`` of one state and an execution order ``i_1, ..., i_n`` the chain
rule splits the joint entropy into the agents' conditional entropies (nats)::

    H(a) = sum_k h_k,     h_k = H(a^{i_k} | a^{i_{<k}}) = H(a^{i_{1:k}}) - H(a^{i_{1:k-1}}),

where ``H(a^{i_{1:k}}) = -sum p_k log p_k`` over the marginal ``p_k`` of the first ``k`` agents in the order
(``H(a^{i_{1:0}}) = 0``). Closed forms used by the tests:

* a product policy ``p = prod_i p^i`` gives ``h_k = H(p^{i_k})``, the marginal entropies, in every order;
* the uniform distribution over the ``n!`` permutations of ``n`` actions (the max-entropy optimum of Fu et al.'s
  permutation game, :func:`seqmarl.theory.games.permutation`) gives ``h_k = log(n - k + 1)``: after ``k - 1``
  distinct actions, agent ``i_k`` is uniform over the ``n - k + 1`` that remain. Any policy supported on
  permutations (``J = 1``) has ``h_k <= log(n - k + 1)`` — the ceiling :func:`permutation_ceiling`.

Pure numpy, float64; no torch.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from .markov_game import MarkovGame

__all__ = ["conditional_entropies", "prefix_entropies", "permutation_ceiling", "heatmap_matrix",
           "is_permutation_game"]

_TOL = 1e-9


def _check_joint(joint: object, name: str = "joint") -> np.ndarray:
    p = np.asarray(joint, dtype=np.float64)
    if p.ndim < 1 or p.size == 0:
        raise ValueError(f"{name} must be a joint table [A_1, ..., A_n] with n >= 1 agents, got shape {p.shape}")
    if not np.all(np.isfinite(p)) or np.any(p < -_TOL):
        raise ValueError(f"{name} must hold finite non-negative probabilities")
    total = p.sum()
    if abs(total - 1.0) > 1e-6:
        raise ValueError(f"{name} must sum to 1 (one state's joint distribution), sums to {total:.9g}")
    return np.clip(p, 0.0, None) / total


def _check_order(order: Sequence[int] | None, n: int) -> tuple[int, ...]:
    if order is None:
        return tuple(range(n))
    try:
        out = tuple(int(i) for i in order)
    except (TypeError, ValueError):
        raise TypeError(f"order must be a sequence of agent indices, got {order!r}") from None
    if sorted(out) != list(range(n)):
        raise ValueError(f"order must be a permutation of the {n} agents 0..{n - 1}, got {out}")
    return out


def _entropy(p: np.ndarray) -> float:
    q = p[p > 0]
    return float(-(q * np.log(q)).sum())


def prefix_entropies(joint: object, order: Sequence[int] | None = None) -> np.ndarray:
    """``[H(a^{i_{1:k}}) for k = 0..n]`` (nats; ``H(a^{i_{1:0}}) = 0``, the last is the joint entropy) of the
    one-state joint table ``joint [A_1, ..., A_n]`` in ``order`` (default ``0, ..., n-1``)."""
    p = _check_joint(joint)
    order = _check_order(order, p.ndim)
    p = np.transpose(p, order)
    n = p.ndim
    out = [0.0]
    for k in range(1, n + 1):
        marginal = p.sum(axis=tuple(range(k, n))) if k < n else p
        out.append(_entropy(marginal))
    return np.asarray(out)


def conditional_entropies(joint: object, order: Sequence[int] | None = None) -> np.ndarray:
    """``h [n]`` with ``h[k-1] = H(a^{i_k} | a^{i_{<k}}) = H(a^{i_{1:k}}) - H(a^{i_{1:k-1}})`` (nats; chain rule,
    module docstring) of the one-state joint table ``joint [A_1, ..., A_n]``, the agents taken in ``order``
    (the execution order; default ``0, ..., n-1``). ``h.sum()`` is the joint entropy. Tiny negative rounding
    (< 1e-12) is clipped to 0."""
    h = np.diff(prefix_entropies(joint, order))
    return np.where(np.abs(h) < 1e-12, 0.0, h)


def permutation_ceiling(n: int) -> np.ndarray:
    """``[log(n - k + 1) for k = 1..n]``: the largest ``H(a^{i_k} | a^{i_{<k}})`` of a policy supported on the
    permutations of ``n`` actions (attained by the uniform one; module docstring)."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    return np.log(np.arange(int(n), 0, -1, dtype=np.float64))


def heatmap_matrix(joint: object, n_rows: int | None = None) -> np.ndarray:
    """The one-state joint table as a matrix: rows = the joint actions of the first ``n_rows`` agents (default
    ``ceil(n / 2)``), columns = those of the rest, both enumerated in C order (agent 1's action the slowest).
    For ``n = 4`` agents with 4 actions: 16 x 16, agents 1-2 on the rows, 3-4 on the columns."""
    p = _check_joint(joint)
    n = p.ndim
    if n < 2:
        raise ValueError(f"heatmap_matrix needs at least 2 agents, got a table of {n}")
    n_rows = math.ceil(n / 2) if n_rows is None else n_rows
    if isinstance(n_rows, bool) or not isinstance(n_rows, (int, np.integer)) or not 1 <= n_rows < n:
        raise ValueError(f"n_rows must be an integer in [1, {n - 1}], got {n_rows!r}")
    return p.reshape(math.prod(p.shape[:n_rows]), math.prod(p.shape[n_rows:]))


def is_permutation_game(game: MarkovGame) -> bool:
    """Whether ``game`` is Fu et al.'s permutation game: one state, ``n`` agents with ``n`` actions each, reward 1
    iff the actions are pairwise distinct, else 0 (compared with :func:`seqmarl.theory.games.permutation`)."""
    if not isinstance(game, MarkovGame):
        raise TypeError(f"game must be a MarkovGame, got {type(game).__name__}")
    n = game.n_agents
    if game.n_states != 1 or n < 2 or any(a != n for a in game.n_actions) or n ** n > 10 ** 7:
        return False
    from .games import permutation

    return bool(np.array_equal(np.asarray(game.reward)[0], permutation(n).reward[0]))
