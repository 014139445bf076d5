"""TAD's transformation of a Markov game into a sequential single-agent MDP, and distillation (theory.md §6.1).

Given a game ``<S, prod_i A^i, P, r, gamma>`` and an execution order ``i_1, ..., i_n`` the sequential MDP
``M~`` has states ``S~ = U_{k=0}^{n-1} S x A^{i_1} x ... x A^{i_k}``; at ``s~ = (s, a^{i_{1:k}})`` the single
agent picks ``a^{i_{k+1}}`` ("agent ``i_{k+1}``'s turn"):

* ``k + 1 < n``: ``(s, a^{i_{1:k}}) --a^{i_{k+1}}--> (s, a^{i_{1:k+1}})``, deterministic, reward 0;
* ``k + 1 = n``: ``(s, a^{i_{1:n-1}}) --a^{i_n}--> (s', ())`` with ``s' ~ P(.|s, a)`` and reward ``r(s, a)``.

Discount conventions (per transition, ``d(s~, b)``):

* ``"one_then_gamma"``: 1 on the intra-step transitions, ``gamma`` on the last one. Then
  ``V~*(s, a^{i_{1:k}}) = max_{a^{i_{k+1:n}}} Q*(s, a)`` and ``V~*(s, ()) = V*(s)``;
* ``"root"``: ``gamma^{1/n}`` on every sub-step. Then ``V~*(s, a^{i_{1:k}}) = gamma^{(n-1-k)/n} max Q*(s, a)``,
  in particular ``V~*(s, ()) = gamma^{(n-1)/n} V*(s)``; for ``gamma > 0`` the optimal policies are the same.
  With ``gamma = 0`` every sub-step before the last is discounted to 0, so every action there is optimal in
  ``M~`` and a greedy teacher need not distil to an optimal joint policy: use ``"one_then_gamma"``.

State encoding (a bijection ``S~ <-> {0, ..., N-1}``): layer ``k`` occupies the contiguous block
``[offsets[k], offsets[k+1])`` of size ``S * prod_{j<k} A^{i_j}``, and inside it ``(s, a^{i_1}, ..., a^{i_k})``
is the C-order (row-major) mixed-radix number with digits ``(s, a^{i_1}, ..., a^{i_k})`` and radices
``(S, A^{i_1}, ..., A^{i_k})``. So layer 0 is ``s~ = s``, and appending the action ``b`` to a state with
in-layer index ``x`` gives in-layer index ``x * A^{i_{k+1}} + b`` of layer ``k + 1``. Prefixes are always
given in execution order.

Only infinite-horizon discounted games are supported: a finite-horizon game (``game.horizon`` set) raises
``ValueError``, because its optimal policy is non-stationary and the stationary ``M~`` above does not
represent it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import scipy.sparse as sps
import scipy.sparse.linalg as spla

from .markov_game import MarkovGame
from .policies import AutoRegressive, Factorized, Joint

CONVENTIONS = ("one_then_gamma", "root")
METHODS = ("policy", "value")

__all__ = [
    "CONVENTIONS",
    "SequentialMDP",
    "sequential_mdp",
    "state_count",
    "value_iteration",
    "optimal_values",
    "joint_q_star",
    "lift_q",
    "distill",
    "teacher_policy",
    "teacher_joint_policy",
]


def _check_game(game: object) -> MarkovGame:
    if not isinstance(game, MarkovGame):
        raise TypeError(f"game must be a MarkovGame, got {type(game).__name__}")
    if game.horizon is not None:
        raise ValueError(
            f"game must be an infinite-horizon discounted game (horizon=None), got horizon={game.horizon}: "
            "the sequential transformation here is stationary and cannot represent a non-stationary finite-horizon optimum"
        )
    return game


def _check_order(order: Sequence[int] | None, n_agents: int) -> tuple[int, ...]:
    if order is None:
        return tuple(range(n_agents))
    try:
        out = tuple(int(i) for i in order)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"order must be a sequence of agent indices, got {order!r}") from exc
    if sorted(out) != list(range(n_agents)):
        raise ValueError(f"order must be a permutation of 0..{n_agents - 1}, got {out}")
    return out


def _check_tol(value: object, name: str) -> float:
    try:
        tol = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must be a real number, got {value!r}") from exc
    if not np.isfinite(tol) or tol <= 0:
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")
    return tol


def _check_max_iter(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"max_iter must be an integer, got {type(value).__name__}")
    if value < 1:
        raise ValueError(f"max_iter must be >= 1, got {value}")
    return int(value)


def state_count(n_states: int, n_actions_in_order: Sequence[int]) -> int:
    """``|S~| = S * sum_{k=0}^{n-1} prod_{j<k} A^{i_j}`` (theory.md §6.1), actions listed in execution order."""
    total, prefix = 0, 1
    for a in n_actions_in_order:
        total += prefix
        prefix *= int(a)
    return int(n_states) * total


@dataclass(frozen=True, eq=False)
class SequentialMDP:
    """The sequential single-agent MDP ``M~`` of a game (theory.md §6.1); build it with :func:`sequential_mdp`.

    Attributes (``N = |S~|``, ``B = max_k A^{i_k}``; arrays are read-only):
        game, order, convention: the source game, the execution order ``i_{1:n}`` and the discount convention.
        n_actions_in_order: ``(A^{i_1}, ..., A^{i_n})``.
        offsets: ``n + 1`` ints; layer ``k`` (prefix length ``k``) is ``[offsets[k], offsets[k+1])``.
        layer: ``[N]`` prefix length ``k`` of each state.
        n_available: ``[N]`` number of actions ``A^{i_{k+1}}`` at each state (heterogeneous).
        action_mask: ``[N, B]`` bool, true for the available actions.
        reward: ``[N, B]`` ``R(s~, b)`` (0 on masked entries).
        discount: ``[N, B]`` ``d(s~, b)`` (0 on masked entries).
        transition: ``scipy.sparse.csr_array`` of shape ``[N * B, N]``; row ``x * B + b`` is ``T(.|x, b)``
            (an all-zero row for a masked action).
    """

    game: MarkovGame
    order: tuple[int, ...]
    convention: str
    n_actions_in_order: tuple[int, ...]
    offsets: tuple[int, ...]
    layer: np.ndarray
    n_available: np.ndarray
    action_mask: np.ndarray
    reward: np.ndarray
    discount: np.ndarray
    transition: sps.csr_array

    # --- sizes ---------------------------------------------------------------------------------
    @property
    def n_agents(self) -> int:
        return len(self.order)

    @property
    def n_states(self) -> int:
        """``N = |S~|``."""
        return self.offsets[-1]

    @property
    def max_actions(self) -> int:
        return self.action_mask.shape[1]

    def layer_radices(self, k: int) -> tuple[int, ...]:
        """``(S, A^{i_1}, ..., A^{i_k})``: the mixed radices of layer ``k``."""
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 0 <= k < self.n_agents:
            raise ValueError(f"k must be a layer index in [0, {self.n_agents}), got {k!r}")
        return (self.game.n_states, *self.n_actions_in_order[:k])

    # --- encoding ------------------------------------------------------------------------------
    def encode(self, s: int, prefix: Sequence[int] = ()) -> int:
        """Index of ``(s, a^{i_1}, ..., a^{i_k})`` (``prefix`` in execution order, ``k < n``)."""
        if isinstance(s, bool) or not isinstance(s, (int, np.integer)):
            raise TypeError(f"s must be an integer state index, got {type(s).__name__}")
        if not 0 <= s < self.game.n_states:
            raise ValueError(f"s must lie in [0, {self.game.n_states}), got {s}")
        try:
            prefix = tuple(int(a) for a in prefix)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"prefix must be a sequence of action indices, got {prefix!r}") from exc
        k = len(prefix)
        if k >= self.n_agents:
            raise ValueError(f"prefix must hold fewer than n = {self.n_agents} actions, got {k}")
        for j, a in enumerate(prefix):
            if not 0 <= a < self.n_actions_in_order[j]:
                raise ValueError(
                    f"prefix[{j}] (agent {self.order[j]}) must lie in [0, {self.n_actions_in_order[j]}), got {a}"
                )
        local = int(np.ravel_multi_index((int(s), *prefix), self.layer_radices(k)))
        return self.offsets[k] + local

    def decode(self, index: int) -> tuple[int, tuple[int, ...]]:
        """Inverse of :meth:`encode`: ``index -> (s, prefix)``."""
        if isinstance(index, bool) or not isinstance(index, (int, np.integer)):
            raise TypeError(f"index must be an integer, got {type(index).__name__}")
        if not 0 <= index < self.n_states:
            raise ValueError(f"index must lie in [0, {self.n_states}), got {index}")
        k = int(self.layer[index])
        digits = np.unravel_index(int(index) - self.offsets[k], self.layer_radices(k))
        return int(digits[0]), tuple(int(d) for d in digits[1:])

    def acting_agent(self, index: int) -> int:
        """The agent ``i_{k+1}`` whose turn it is at state ``index``."""
        s, prefix = self.decode(index)
        return self.order[len(prefix)]

    # --- Bellman operator ----------------------------------------------------------------------
    def bellman_q(self, values: np.ndarray) -> np.ndarray:
        """``Q~(s~, b) = R(s~, b) + d(s~, b) sum_y T(y|s~, b) V(y)``, ``[N, B]``; ``-inf`` on masked actions."""
        values = np.asarray(values, dtype=np.float64)
        if values.shape != (self.n_states,):
            raise ValueError(f"values must have shape [N] = ({self.n_states},), got {values.shape}")
        nxt = (self.transition @ values).reshape(self.n_states, self.max_actions)
        q = self.reward + self.discount * nxt
        return np.where(self.action_mask, q, -np.inf)

    def transition_dense(self) -> np.ndarray:
        """``T[s~, b, y]`` as a dense ``[N, B, N]`` array (small MDPs only)."""
        return self.transition.toarray().reshape(self.n_states, self.max_actions, self.n_states)

    def __repr__(self) -> str:
        return (
            f"SequentialMDP(game={self.game.name!r}, order={self.order}, convention={self.convention!r}, "
            f"n_states={self.n_states}, max_actions={self.max_actions})"
        )


def _readonly(array: np.ndarray) -> np.ndarray:
    array.setflags(write=False)
    return array


def sequential_mdp(game: MarkovGame, order: Sequence[int] | None = None, convention: str = "one_then_gamma") -> SequentialMDP:
    """Build ``M~`` of theory.md §6.1 from ``game`` for execution ``order`` (identity when ``None``).

    ``convention="one_then_gamma"`` (discount 1 within a step, ``gamma`` on the last sub-step) or ``"root"``
    (``gamma^{1/n}`` per sub-step). Raises ``ValueError`` for a finite-horizon game."""
    game = _check_game(game)
    if convention not in CONVENTIONS:
        raise ValueError(f"convention must be one of {CONVENTIONS}, got {convention!r}")
    n = game.n_agents
    order = _check_order(order, n)
    S = game.n_states
    acts = tuple(game.n_actions[i] for i in order)
    sizes = [S * int(np.prod(acts[:k], dtype=np.int64)) for k in range(n)]
    offsets = tuple(int(x) for x in np.concatenate([[0], np.cumsum(sizes)]))
    N, B = offsets[-1], max(acts)

    layer = np.repeat(np.arange(n), sizes)
    n_available = np.array(acts, dtype=np.int64)[layer]
    mask = np.arange(B)[None, :] < n_available[:, None]
    reward = np.zeros((N, B))
    discount = np.zeros((N, B))
    sub_discount = game.gamma ** (1.0 / n) if convention == "root" else 1.0
    last_discount = game.gamma ** (1.0 / n) if convention == "root" else game.gamma

    rows: list[np.ndarray] = []
    cols: list[np.ndarray] = []
    data: list[np.ndarray] = []
    for k in range(n - 1):  # deterministic intra-step moves
        local = np.arange(sizes[k])
        b = np.arange(acts[k])
        x = offsets[k] + local[:, None]
        rows.append((x * B + b[None, :]).ravel())
        cols.append((offsets[k + 1] + local[:, None] * acts[k] + b[None, :]).ravel())
        data.append(np.ones(sizes[k] * acts[k]))
        discount[offsets[k] : offsets[k + 1], : acts[k]] = sub_discount
    # last sub-step: joint action complete, environment step to (s', ())
    axes = [1 + a for a in order]
    r_order = np.moveaxis(game.reward, axes, list(range(1, n + 1))).reshape(sizes[-1], acts[-1])
    p_order = np.moveaxis(game.transition, axes, list(range(1, n + 1))).reshape(sizes[-1], acts[-1], S)
    lo, hi = offsets[n - 1], offsets[n]
    reward[lo:hi, : acts[-1]] = r_order
    discount[lo:hi, : acts[-1]] = last_discount
    x = np.arange(lo, hi)
    rows.append(np.repeat((x[:, None] * B + np.arange(acts[-1])[None, :]).ravel(), S))
    cols.append(np.tile(np.arange(S), sizes[-1] * acts[-1]))  # layer 0 index of s' is s'
    data.append(p_order.ravel())
    transition = sps.csr_array(
        (np.concatenate(data), (np.concatenate(rows), np.concatenate(cols))), shape=(N * B, N)
    )
    transition.sum_duplicates()
    return SequentialMDP(
        game=game,
        order=order,
        convention=convention,
        n_actions_in_order=acts,
        offsets=offsets,
        layer=_readonly(layer),
        n_available=_readonly(n_available),
        action_mask=_readonly(mask),
        reward=_readonly(reward),
        discount=_readonly(discount),
        transition=transition,
    )


# --- solving M~ ----------------------------------------------------------------------------------


def _check_mdp(mdp: object) -> SequentialMDP:
    if not isinstance(mdp, SequentialMDP):
        raise TypeError(f"mdp must be a SequentialMDP (see sequential_mdp), got {type(mdp).__name__}")
    return mdp


DENSE_LIMIT = 2000
"""Policy evaluation uses a dense ``np.linalg.solve`` up to this many sequential states, a sparse solve above."""


def _evaluate(mdp: SequentialMDP, policy: np.ndarray) -> np.ndarray:
    """``V~_pi = (I - diag(d_pi) T_pi)^{-1} R_pi`` by a linear solve (dense when small, else sparse)."""
    idx = np.arange(mdp.n_states)
    t_pi = mdp.transition[idx * mdp.max_actions + policy]
    d_pi = mdp.discount[idx, policy]
    r_pi = mdp.reward[idx, policy]
    if mdp.n_states <= DENSE_LIMIT:
        system = np.eye(mdp.n_states) - d_pi[:, None] * t_pi.toarray()
        return np.linalg.solve(system, r_pi)
    system = sps.identity(mdp.n_states, format="csc") - sps.csc_array(t_pi.multiply(d_pi[:, None]))
    return np.asarray(spla.spsolve(system, r_pi), dtype=np.float64).reshape(-1)


def _greedy(q: np.ndarray) -> np.ndarray:
    return np.argmax(q, axis=1).astype(np.int64)


def value_iteration(
    mdp: SequentialMDP, tol: float = 1e-12, max_iter: int = 10_000, method: str = "policy"
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Optimal ``(V~* [N], Q~* [N, B], greedy [N])`` of ``M~`` (theory.md §6.1, "How to verify" step 1).

    ``method="policy"`` (default, exact): Howard policy iteration; each policy is evaluated by the sparse
    linear solve ``V = (I - diag(d_pi) T_pi)^{-1} R_pi`` and an action is switched only when it improves
    ``Q~`` by more than ``tol * (1 + |Q~|)`` (so ties never cycle). ``method="value"``: layered value
    iteration, one sweep backs up layers ``n-1, ..., 0`` (a ``c``-contraction in sup-norm with
    ``c = max_k prod_{j>=k} d_j``), stopped when ``c/(1-c) * ||V_{t+1} - V_t|| <= tol``.
    ``Q~*`` holds ``-inf`` on masked actions; ``greedy`` picks the first maximiser (value) or the final
    policy of policy iteration."""
    mdp = _check_mdp(mdp)
    tol = _check_tol(tol, "tol")
    max_iter = _check_max_iter(max_iter)
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if method == "policy":
        policy = _greedy(np.where(mdp.action_mask, mdp.reward, -np.inf))
        rows = np.arange(mdp.n_states)
        for _ in range(max_iter):
            values = _evaluate(mdp, policy)
            q = mdp.bellman_q(values)
            best = _greedy(q)
            current = q[rows, policy]
            better = q[rows, best] > current + tol * (1.0 + np.abs(current))
            if not np.any(better):
                return values, q, policy
            policy = np.where(better, best, policy)
        raise RuntimeError(f"policy iteration did not converge in max_iter={max_iter} iterations")

    n = mdp.n_agents
    layer_disc = [float(mdp.discount[mdp.offsets[k] : mdp.offsets[k + 1]].max()) for k in range(n)]
    c = max(float(np.prod(layer_disc[k:])) for k in range(n))
    values = np.zeros(mdp.n_states)
    B = mdp.max_actions
    blocks = [mdp.transition[mdp.offsets[k] * B : mdp.offsets[k + 1] * B] for k in range(n)]  # slice once
    for _ in range(max_iter):
        old = values.copy()
        for k in reversed(range(n)):
            lo, hi = mdp.offsets[k], mdp.offsets[k + 1]
            nxt = (blocks[k] @ values).reshape(hi - lo, B)
            q_k = np.where(mdp.action_mask[lo:hi], mdp.reward[lo:hi] + mdp.discount[lo:hi] * nxt, -np.inf)
            values[lo:hi] = q_k.max(axis=1)
        change = float(np.max(np.abs(values - old)))
        if c == 0.0 or c / (1.0 - c) * change <= tol:
            q = mdp.bellman_q(values)
            return values, q, _greedy(q)
    raise RuntimeError(f"value iteration did not reach tol={tol} in max_iter={max_iter} sweeps")


# --- the original game's optimum -----------------------------------------------------------------


def optimal_values(game: MarkovGame, tol: float = 1e-12, max_iter: int = 1000) -> tuple[np.ndarray, np.ndarray]:
    """``(V* [S], Q* [S, A1..An])`` of ``game`` by joint-action policy iteration (exact linear solves):
    ``V* = max_a Q*(s, a)``, ``Q*(s, a) = r(s, a) + gamma sum_s' P(s'|s, a) V*(s')`` (theory.md §0, §6.1)."""
    game = _check_game(game)
    tol = _check_tol(tol, "tol")
    max_iter = _check_max_iter(max_iter)
    r, p = game.reward_flat(), game.transition_flat()
    S = game.n_states
    rows = np.arange(S)
    policy = np.argmax(r, axis=1)
    for _ in range(max_iter):
        values = np.linalg.solve(np.eye(S) - game.gamma * p[rows, policy], r[rows, policy])
        q = r + game.gamma * p @ values
        best = np.argmax(q, axis=1)
        current = q[rows, policy]
        better = q[rows, best] > current + tol * (1.0 + np.abs(current))
        if not np.any(better):
            return values, q.reshape(game.reward.shape)
        policy = np.where(better, best, policy)
    raise RuntimeError(f"joint policy iteration did not converge in max_iter={max_iter} iterations")


def joint_q_star(game: MarkovGame) -> np.ndarray:
    """``Q*`` of ``game`` ``[S, A1..An]`` (see :func:`optimal_values`)."""
    return optimal_values(game)[1]


def lift_q(mdp: SequentialMDP, q: np.ndarray) -> np.ndarray:
    """The ``Q~`` that theory.md §6.1 predicts from a joint ``Q [S, A1..An]`` (e.g. ``Q*``), ``[N, B]``:

    ``Q~((s, a^{i_{1:k}}), a^{i_{k+1}}) = c_k max_{a^{i_{k+2:n}}} Q(s, a)`` with ``c_k = 1`` (one_then_gamma)
    or ``c_k = gamma^{(n-1-k)/n}`` (root); ``-inf`` on masked actions."""
    mdp = _check_mdp(mdp)
    q = np.asarray(q, dtype=np.float64)
    game = mdp.game
    if q.shape != game.reward.shape:
        raise ValueError(f"q must have shape [S, A1..An] = {game.reward.shape}, got {q.shape}")
    n = mdp.n_agents
    in_order = np.moveaxis(q, [1 + a for a in mdp.order], list(range(1, n + 1)))
    out = np.full((mdp.n_states, mdp.max_actions), -np.inf)
    for k in range(n):
        best = in_order.max(axis=tuple(range(k + 2, n + 1))) if k + 2 <= n else in_order
        scale = game.gamma ** ((n - 1 - k) / n) if mdp.convention == "root" else 1.0
        lo, hi = mdp.offsets[k], mdp.offsets[k + 1]
        out[lo:hi, : mdp.n_actions_in_order[k]] = scale * best.reshape(hi - lo, -1)
    return out


# --- distillation --------------------------------------------------------------------------------


def _check_greedy(mdp: SequentialMDP, greedy: object) -> np.ndarray:
    arr = np.asarray(greedy)
    if arr.shape != (mdp.n_states,):
        raise ValueError(f"greedy must hold one action per sequential state, shape ({mdp.n_states},), got {arr.shape}")
    if not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"greedy must be an integer array of actions, got dtype {arr.dtype}")
    if np.any(arr < 0) or np.any(arr >= mdp.n_available):
        bad = int(np.flatnonzero((arr < 0) | (arr >= mdp.n_available))[0])
        raise ValueError(f"greedy[{bad}] = {arr[bad]} is not an available action (state has {mdp.n_available[bad]})")
    return arr.astype(np.int64)


def _distilled_actions(mdp: SequentialMDP, greedy: np.ndarray) -> np.ndarray:
    S, n = mdp.game.n_states, mdp.n_agents
    actions = np.zeros((S, n), dtype=np.int64)
    for s in range(S):
        prefix: list[int] = []
        for k in range(n):
            b = int(greedy[mdp.encode(s, prefix)])
            actions[s, mdp.order[k]] = b
            prefix.append(b)
    return actions


def distill(mdp: SequentialMDP, greedy: np.ndarray) -> Factorized:
    """Decentralised deterministic policies ``pi^{i_k}(s) = pi~(s, pi^{i_1}(s), ..., pi^{i_{k-1}}(s))``
    (theory.md §6.1, MMDP distillation) as a :class:`Factorized` over agent indices; they reproduce the
    teacher's joint action in every state."""
    mdp = _check_mdp(mdp)
    greedy = _check_greedy(mdp, greedy)
    return Factorized.deterministic(_distilled_actions(mdp, greedy), mdp.game.n_actions)


def teacher_joint_policy(mdp: SequentialMDP, greedy: np.ndarray) -> Joint:
    """The deterministic joint policy ``a*(s)`` obtained by rolling the teacher ``pi~`` through the ``n`` sub-steps."""
    mdp = _check_mdp(mdp)
    greedy = _check_greedy(mdp, greedy)
    return Joint.deterministic(_distilled_actions(mdp, greedy), mdp.game.n_actions)


def teacher_policy(mdp: SequentialMDP, pi_tilde: np.ndarray) -> AutoRegressive:
    """A (possibly stochastic) teacher ``pi~(b|s~)`` ``[N, B]`` (or deterministic ``[N]`` ints) as the
    auto-regressive joint policy ``pi(a|s) = prod_k pi~(a^{i_{k+1}} | (s, a^{i_{1:k}}))`` in the MDP's order."""
    mdp = _check_mdp(mdp)
    arr = np.asarray(pi_tilde)
    if arr.ndim == 1:
        greedy = _check_greedy(mdp, arr)
        probs = np.zeros((mdp.n_states, mdp.max_actions))
        probs[np.arange(mdp.n_states), greedy] = 1.0
    else:
        probs = np.asarray(arr, dtype=np.float64)
        if probs.shape != (mdp.n_states, mdp.max_actions):
            raise ValueError(
                f"pi_tilde must have shape [N, B] = ({mdp.n_states}, {mdp.max_actions}) or [N], got {probs.shape}"
            )
        if np.any(np.abs(probs[~mdp.action_mask]) > 0):
            raise ValueError("pi_tilde must put zero probability on unavailable (masked) actions")
    conditionals = []
    for k in range(mdp.n_agents):
        lo, hi = mdp.offsets[k], mdp.offsets[k + 1]
        shape = (*mdp.layer_radices(k), mdp.n_actions_in_order[k])
        conditionals.append(probs[lo:hi, : mdp.n_actions_in_order[k]].reshape(shape))
    return AutoRegressive(mdp.order, conditionals)
