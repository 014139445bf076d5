"""Tabular joint policies: factorised, shared, auto-regressive and unrestricted joint.

All expose ``.probs()`` -> ``pi(a^1, ..., a^n | s)`` of shape ``[S, A1, ..., An]`` (agent-index order)
and ``.entropy()`` -> the per-state joint entropy ``H(pi(.|s)) = -sum_a pi(a|s) log pi(a|s)`` (nats), ``[S]``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Sequence

import numpy as np

from .markov_game import check_distribution


def _table(value: object, name: str, ndim: int | None = None) -> np.ndarray:
    try:
        table = np.array(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must be an array of probabilities") from exc
    if ndim is not None and table.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} axes, got shape {table.shape}")
    check_distribution(table, name, axis=-1)
    table = np.clip(table, 0.0, None)
    table.setflags(write=False)
    return table


def _action_indices(value: object, name: str) -> np.ndarray:
    """``value`` as an int64 array of action indices; integral floats are accepted, 1.5 or NaN are not."""
    arr = np.asarray(value)
    if arr.dtype.kind in "iu":
        return arr.astype(np.int64)
    if arr.dtype.kind == "f" and np.all(np.isfinite(arr)) and np.array_equal(arr, np.floor(arr)):
        return arr.astype(np.int64)
    raise TypeError(f"{name} must hold integer action indices, got dtype {arr.dtype} with values {arr.tolist()!r:.80}")


def entropy_of(probs: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
    """``-sum p log p`` over ``axes`` with ``0 log 0 = 0``."""
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(probs > 0, -probs * np.log(np.where(probs > 0, probs, 1.0)), 0.0)
    return terms.sum(axis=axes)


def product_probs(tables: Sequence[np.ndarray]) -> np.ndarray:
    """Outer product ``prod_i pi^i(a^i|s)`` -> ``[S, A1, ..., An]`` (one einsum, no loop over joint actions)."""
    n_states = tables[0].shape[0]
    out = tables[0]
    for table in tables[1:]:
        out = (out[..., None] * table.reshape((n_states,) + (1,) * (out.ndim - 1) + (table.shape[1],)))
    return out


class Policy(ABC):
    """A tabular joint policy over ``S`` states and per-agent action counts ``n_actions``."""

    @property
    @abstractmethod
    def n_states(self) -> int: ...

    @property
    @abstractmethod
    def n_actions(self) -> tuple[int, ...]: ...

    @property
    def n_agents(self) -> int:
        return len(self.n_actions)

    @abstractmethod
    def probs(self) -> np.ndarray:
        """``pi(a|s)`` as ``[S, A1, ..., An]``."""

    def entropy(self) -> np.ndarray:
        """Joint entropy per state, ``[S]``."""
        return entropy_of(self.probs(), tuple(range(1, self.n_agents + 1)))

    def marginals(self) -> list[np.ndarray]:
        """Per-agent marginals ``pi^i(a^i|s)``, each ``[S, A_i]``."""
        joint = self.probs()
        n = self.n_agents
        return [joint.sum(axis=tuple(j + 1 for j in range(n) if j != i)) for i in range(n)]


class Factorized(Policy):
    """Independent per-agent policies ``pi(a|s) = prod_i pi^i(a^i|s)``; ``tables[i]`` is ``[S, A_i]``."""

    def __init__(self, tables: Sequence[np.ndarray]):
        if isinstance(tables, np.ndarray) and tables.ndim == 2:
            raise TypeError("tables must be a sequence with one [S, A_i] table per agent, not a single array")
        tables = [_table(t, f"tables[{i}]", ndim=2) for i, t in enumerate(tables)]
        if not tables:
            raise ValueError("tables must hold at least one agent's table")
        n_states = {t.shape[0] for t in tables}
        if len(n_states) != 1:
            raise ValueError(f"tables must all have the same number of states, got shapes {[t.shape for t in tables]}")
        self.tables: tuple[np.ndarray, ...] = tuple(tables)

    @property
    def n_states(self) -> int:
        return self.tables[0].shape[0]

    @property
    def n_actions(self) -> tuple[int, ...]:
        return tuple(t.shape[1] for t in self.tables)

    def probs(self) -> np.ndarray:
        return product_probs(self.tables)

    def entropy(self) -> np.ndarray:
        """Joint entropy is additive over independent agents: ``H = sum_i H(pi^i)``."""
        return sum(entropy_of(t, (1,)) for t in self.tables)

    def marginals(self) -> list[np.ndarray]:
        return [t.copy() for t in self.tables]

    def replace(self, agent: int, table: np.ndarray) -> "Factorized":
        """A copy with agent ``agent``'s table replaced."""
        if not 0 <= agent < self.n_agents:
            raise ValueError(f"agent must be in [0, {self.n_agents}), got {agent}")
        new = _table(table, "table", ndim=2)
        if new.shape != self.tables[agent].shape:
            raise ValueError(f"table must have agent {agent}'s shape {self.tables[agent].shape}, got {new.shape}")
        tables = list(self.tables)
        tables[agent] = new
        return Factorized(tables)

    @classmethod
    def uniform(cls, n_states: int, n_actions: Sequence[int]) -> "Factorized":
        """Uniform tables; ``n_states >= 1`` and every action count ``>= 1``."""
        if isinstance(n_states, bool) or not isinstance(n_states, (int, np.integer)) or n_states < 1:
            raise ValueError(f"n_states must be an integer >= 1, got {n_states!r}")
        if isinstance(n_actions, (str, bytes)) or not hasattr(n_actions, "__iter__"):
            raise TypeError(f"n_actions must be a sequence of action counts, got {n_actions!r}")
        n_actions = list(n_actions)
        if not n_actions or any(isinstance(a, bool) or not isinstance(a, (int, np.integer)) or a < 1 for a in n_actions):
            raise ValueError(f"n_actions must be a non-empty sequence of integers >= 1, got {n_actions!r}")
        return cls([np.full((n_states, a), 1.0 / a) for a in n_actions])

    @classmethod
    def deterministic(cls, actions: np.ndarray, n_actions: Sequence[int]) -> "Factorized":
        """From an int array ``actions[s, i]`` of chosen actions."""
        actions = _action_indices(actions, "actions")
        if actions.ndim != 2 or actions.shape[1] != len(n_actions):
            raise ValueError(f"actions must have shape [S, {len(n_actions)}], got {actions.shape}")
        tables = []
        for i, a in enumerate(n_actions):
            if np.any(actions[:, i] < 0) or np.any(actions[:, i] >= a):
                raise ValueError(f"actions[:, {i}] must lie in [0, {a})")
            tables.append(np.eye(a)[actions[:, i]])
        return cls(tables)

    def __repr__(self) -> str:
        return f"Factorized(n_states={self.n_states}, n_actions={self.n_actions})"


class Shared(Factorized):
    """One table ``[S, A]`` used by all ``n_agents`` agents (parameter sharing without agent id)."""

    def __init__(self, table: np.ndarray, n_agents: int):
        if isinstance(n_agents, bool) or not isinstance(n_agents, (int, np.integer)) or n_agents < 1:
            raise ValueError(f"n_agents must be a positive integer, got {n_agents!r}")
        table = _table(table, "table", ndim=2)
        super().__init__([table] * int(n_agents))
        self.table = table

    def __repr__(self) -> str:
        return f"Shared(n_states={self.n_states}, n_actions={self.n_actions[0]}, n_agents={self.n_agents})"


class AutoRegressive(Policy):
    """``pi(a|s) = prod_k pi^{i_k}(a^{i_k} | s, a^{i_1}, ..., a^{i_{k-1}})`` for an execution order ``i_{1:n}``.

    ``conditionals[k]`` has shape ``[S, A_{i_1}, ..., A_{i_{k-1}}, A_{i_k}]`` (the previous agents'
    actions in execution order, then the acting agent's action); its last axis sums to 1.
    """

    def __init__(self, order: Sequence[int], conditionals: Sequence[np.ndarray]):
        if isinstance(order, (str, bytes)) or not hasattr(order, "__iter__"):
            raise TypeError(f"order must be a sequence of agent indices (a permutation of 0..n-1), got {order!r}")
        order = tuple(order)
        if any(isinstance(i, bool) or not isinstance(i, (int, np.integer)) for i in order):
            raise TypeError(f"order must hold integer agent indices (a permutation of 0..n-1), got {order!r}")
        order = tuple(int(i) for i in order)
        n = len(order)
        if sorted(order) != list(range(n)):
            raise ValueError(f"order must be a permutation of 0..{n - 1}, got {order}")
        if len(conditionals) != n:
            raise ValueError(f"conditionals must have one table per agent ({n}), got {len(conditionals)}")
        tables = [_table(c, f"conditionals[{k}]", ndim=k + 2) for k, c in enumerate(conditionals)]
        n_states = tables[0].shape[0]
        acts = [t.shape[-1] for t in tables]
        for k, t in enumerate(tables):
            expected = (n_states, *acts[:k], acts[k])
            if t.shape != expected:
                raise ValueError(f"conditionals[{k}] must have shape {expected}, got {t.shape}")
        self.order = order
        self.conditionals: tuple[np.ndarray, ...] = tuple(tables)
        self._n_actions_in_order = tuple(acts)

    @property
    def n_states(self) -> int:
        return self.conditionals[0].shape[0]

    @property
    def n_actions(self) -> tuple[int, ...]:
        out = [0] * len(self.order)
        for k, agent in enumerate(self.order):
            out[agent] = self._n_actions_in_order[k]
        return tuple(out)

    def probs_in_order(self) -> np.ndarray:
        """``pi(a|s)`` with axes in execution order, ``[S, A_{i_1}, ..., A_{i_n}]``."""
        joint = self.conditionals[0]
        for k in range(1, len(self.order)):
            joint = joint[..., None] * self.conditionals[k]
        return joint

    def probs(self) -> np.ndarray:
        joint = self.probs_in_order()
        # axis 1 + k holds agent order[k]; move it to axis 1 + order[k]
        return np.moveaxis(joint, [1 + k for k in range(len(self.order))], [1 + a for a in self.order])

    def conditional_entropies(self) -> list[np.ndarray]:
        """``H(pi^{i_k} | s, a^{i_{1:k-1}})`` averaged over the previous actions, each ``[S]``; they sum to the joint entropy."""
        out = []
        prefix = np.ones((self.n_states,))
        for k, cond in enumerate(self.conditionals):
            h = entropy_of(cond, (cond.ndim - 1,))  # [S, A_prev...]
            out.append((prefix * h).reshape(self.n_states, -1).sum(axis=1))
            prefix = prefix[..., None] * cond
        return out

    @classmethod
    def from_joint(cls, joint: np.ndarray, order: Sequence[int]) -> "AutoRegressive":
        """Chain-rule factorisation of any joint table ``[S, A1..An]`` in ``order``; conditionals of
        zero-probability prefixes are set uniform (they never matter)."""
        joint = _table(np.asarray(joint).reshape(np.asarray(joint).shape[0], -1), "joint").reshape(np.asarray(joint).shape)
        order = tuple(int(i) for i in order)
        n = joint.ndim - 1
        if sorted(order) != list(range(n)):
            raise ValueError(f"order must be a permutation of 0..{n - 1}, got {order}")
        in_order = np.moveaxis(joint, [1 + a for a in order], list(range(1, n + 1)))
        conditionals = []
        for k in range(n):
            marg = in_order.sum(axis=tuple(range(k + 2, n + 1))) if k + 2 <= n else in_order
            denom = marg.sum(axis=-1, keepdims=True)
            with np.errstate(invalid="ignore", divide="ignore"):
                cond = np.where(denom > 0, marg / np.where(denom > 0, denom, 1.0), 1.0 / marg.shape[-1])
            conditionals.append(cond)
        return cls(order, conditionals)

    def __repr__(self) -> str:
        return f"AutoRegressive(order={self.order}, n_states={self.n_states}, n_actions={self.n_actions})"


class Joint(Policy):
    """An unrestricted (centralised) joint policy table ``[S, A1, ..., An]``."""

    def __init__(self, table: np.ndarray):
        arr = np.asarray(table, dtype=np.float64)
        if arr.ndim < 2:
            raise ValueError(f"table must have shape [S, A1, ..., An], got {arr.shape}")
        flat = _table(arr.reshape(arr.shape[0], -1), "table")
        self.table = flat.reshape(arr.shape)

    @property
    def n_states(self) -> int:
        return self.table.shape[0]

    @property
    def n_actions(self) -> tuple[int, ...]:
        return tuple(self.table.shape[1:])

    def probs(self) -> np.ndarray:
        return self.table

    @classmethod
    def deterministic(cls, joint_actions: np.ndarray, n_actions: Sequence[int]) -> "Joint":
        """From ``joint_actions[s] = (a^1, ..., a^n)``."""
        joint_actions = _action_indices(joint_actions, "joint_actions")
        n_actions = tuple(int(a) for a in n_actions)
        if joint_actions.ndim != 2 or joint_actions.shape[1] != len(n_actions):
            raise ValueError(f"joint_actions must have shape [S, {len(n_actions)}], got {joint_actions.shape}")
        if np.any(joint_actions < 0) or np.any(joint_actions >= np.array(n_actions)):
            raise ValueError(f"joint_actions must hold action indices in [0, n_actions) = {n_actions}")
        table = np.zeros((joint_actions.shape[0], *n_actions))
        for s, a in enumerate(joint_actions):
            table[(s, *a)] = 1.0
        return cls(table)

    def __repr__(self) -> str:
        return f"Joint(n_states={self.n_states}, n_actions={self.n_actions})"


def joint_probs(policy: Policy | np.ndarray, n_states: int | None = None, n_actions: Sequence[int] | None = None) -> np.ndarray:
    """``pi(a|s)`` ``[S, A1..An]`` from a :class:`Policy` or a raw joint array, checked against a game's shape."""
    expected = None if n_states is None or n_actions is None else (n_states, *n_actions)
    if isinstance(policy, Policy):
        probs = policy.probs()
    else:
        shape = tuple(np.shape(policy))
        if expected is not None and shape != expected:
            hint = ""
            if shape == expected[1:]:
                hint = "; it lacks the state axis: pass array[None] for a one-state game"
            elif len(shape) == len(expected) - 1:
                hint = "; it has one axis too few: a raw array is read as a joint table with the state axis first"
            raise ValueError(f"policy (a raw array, read as a joint table pi(a|s) [S, A1, ..., An]) must have shape "
                             f"{expected} for this game, got {shape}{hint}")
        probs = Joint(policy).probs()
    if expected is not None and probs.shape != expected:
        raise ValueError(f"policy must have shape [S, A1, ..., An] = {expected}, got {probs.shape}")
    return probs


def agent_tables(policy: Policy | Sequence[np.ndarray]) -> list[np.ndarray]:
    """Per-agent tables of a product policy (``Factorized``/``Shared``, or a list of ``[S, A_i]`` tables)."""
    if isinstance(policy, Factorized):
        return list(policy.tables)
    if isinstance(policy, Policy):
        raise TypeError(
            f"this routine needs a product policy (Factorized or Shared), got {type(policy).__name__}; "
            "multi-agent advantages of HATRPO Def. 1 marginalise agents independently"
        )
    return list(Factorized(policy).tables)
