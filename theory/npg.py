"""Exact tabular softmax natural policy gradient (NPG): independent, shared and sequential (theory.md §3.2, §6.2).

Every routine runs a *batch* of initialisations at once (leading axis ``B``), so hundreds of runs of thousands of
exact iterations take seconds. Values are exact (linear solves, theory.md §0); nothing is sampled.

Derivation (``[DERIVED]``; Kakade 2001, Agarwal et al. 2021 for one agent). Let ``rho_pi`` be the improper
occupancy (sums to ``1/(1-gamma)``) and ``d_pi = (1-gamma) rho_pi`` the normalised one.

* **Independent (product) policy** ``pi(a|s) = prod_i softmax(theta^i_s)(a^i)``. The policy-gradient theorem gives
  ``dJ/dtheta^i_{s,b} = rho_pi(s) pi^i(b|s) A^i_pi(s, b)`` with the *marginal* advantage
  ``A^i_pi(s, a^i) = E_{a^{-i} ~ pi^{-i}}[Q_pi(s, a)] - V_pi(s)`` (HATRPO Def. 1, theory.md §1.2). The Fisher
  matrix of the joint action distribution ``F = E_{s~d_pi, a~pi}[grad log pi grad log pi^T]`` is block diagonal
  over agents, because the scores of different agents are independent given ``s`` and have mean zero:
  ``E[grad log pi^i (grad log pi^j)^T] = E[grad log pi^i] E[grad log pi^j]^T = 0`` for ``i != j``. Agent ``i``'s
  block at state ``s`` is ``d_pi(s) (diag(pi^i_s) - pi^i_s pi^i_s^T)``, and since ``E_{pi^i}[A^i] = 0``,
  ``(diag(p) - p p^T) A^i_s = p * A^i_s``. Hence ``w = F^+ grad J`` equals ``A^i_pi(s, .) / (1-gamma)`` up to a
  per-state constant (which does not change a softmax), and the joint NPG step is, for all agents at once
  from the same ``pi``::

      theta^i_s <- theta^i_s + eta / (1 - gamma) * A^i_pi(s, .)

* **Shared policy without agent id** (all agents use ``softmax(theta_s)``): the gradient is the sum over agents of
  the above, the Fisher is ``n`` times one agent's block (cross terms still vanish), so
  ``theta_s <- theta_s + eta / (1 - gamma) * mean_i A^i_pi(s, .)``.

* **Sequential (auto-regressive) policy** in an order ``i_{1:n}``:
  ``pi(a|s) = prod_k softmax(theta^k_{s, a^{i_{1:k-1}}})(a^{i_k})``. This is the single-agent policy of the
  transformed MDP of theory.md §6.1 (tilde-states ``(s, a^{i_{1:k-1}})``, discount 1 inside a step, ``gamma`` on
  the last sub-step), whose action values are
  ``Q~_n((s, a^{<n}), a^n) = Q_pi(s, a)`` and ``Q~_k((s, a^{<k}), a^k) = V~_{k+1}(s, a^{<=k})
  = E_{a^{k+1} ~ pi~}[Q~_{k+1}]``, ``V~_k = E_{a^k ~ pi~}[Q~_k]``, ``A~_k = Q~_k - V~_k``.
  The gradient is ``dJ/dtheta^k_{s,a^{<k},b} = rho_pi(s) pi(a^{<k}|s) pi~_k(b|s,a^{<k}) A~_k(s, a^{<k}, b)``.
  The Fisher of the joint action distribution is block diagonal over sub-steps (the score of sub-step ``l > k``
  has conditional mean zero given ``a^{<=k}``), with block ``d_pi(s) pi(a^{<k}|s) (diag(pi~) - pi~ pi~^T)`` at
  ``(s, a^{<k})``. Hence::

      theta^k_{s, a^{<k}} <- theta^k_{s, a^{<k}} + eta / (1 - gamma) * A~_k(s, a^{<k}, .)

  This is exactly the NPG of the transformed MDP when each sub-step layer's visitation is normalised to one
  real step (``d~`` of layer ``k`` sums to 1); normalising over all ``n`` layers together would multiply ``eta``
  by ``n``. With this scaling, one agent (n = 1) gives the usual Agarwal et al. update, and independent and
  sequential runs with the same ``eta`` take steps of the same size.

The closed forms hold at every state with ``rho_pi(s) > 0``; at a state the policy never reaches the Fisher block
and the gradient are both zero, and the step above is still applied there (the usual tabular convention of Agarwal et
al.; the minimum-norm solution would leave that state unchanged). Softmax conditionals are
positive, so every tilde-state ``(s, a^{<k})`` of a reached ``s`` is reached.

For one-shot games (``S = 1``, ``gamma = 0``) ``rho_pi = 1`` and the steps are ``eta * A``. Finite-horizon games are
rejected: there a stationary policy's advantage depends on the time step and the closed form above does not hold.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from .markov_game import MarkovGame
from .policies import AutoRegressive, Factorized, Policy, Shared, joint_probs

_LETTERS = "abcdefghijklmnopqrtuvwxyz"  # no "s": it names the state axis


# --- validation -----------------------------------------------------------------------------------------------
def _check_npg_game(game: object) -> MarkovGame:
    if not isinstance(game, MarkovGame):
        raise TypeError(f"game must be a MarkovGame, got {type(game).__name__}")
    if game.horizon is not None:
        raise ValueError(
            f"game must be an infinite-horizon discounted game (horizon=None) for the closed-form NPG step, "
            f"got horizon={game.horizon}"
        )
    if game.n_agents > len(_LETTERS) - 1:
        raise ValueError(f"game has too many agents ({game.n_agents}) for the einsum contractions")
    return game


def _check_eta(eta: object) -> float:
    if isinstance(eta, bool) or not isinstance(eta, (int, float, np.integer, np.floating)):
        raise TypeError(f"eta must be a real number, got {type(eta).__name__}")
    eta = float(eta)
    if not np.isfinite(eta) or eta <= 0:
        raise ValueError(f"eta must be a positive finite step size, got {eta}")
    return eta


def _check_iters(n_iters: object) -> int:
    if isinstance(n_iters, bool) or not isinstance(n_iters, (int, np.integer)):
        raise TypeError(f"n_iters must be an integer, got {type(n_iters).__name__}")
    if n_iters < 0:
        raise ValueError(f"n_iters must be >= 0, got {n_iters}")
    return int(n_iters)


def _check_order(order: Sequence[int] | None, n: int) -> tuple[int, ...]:
    if order is None:
        return tuple(range(n))
    try:
        out = tuple(int(i) for i in order)
    except TypeError as exc:
        raise TypeError(f"order must be a sequence of agent indices, got {order!r}") from exc
    if sorted(out) != list(range(n)):
        raise ValueError(f"order must be a permutation of 0..{n - 1}, got {out}")
    return out


def _check_logits(logits: object, shapes: Sequence[tuple[int, ...]], name: str) -> tuple[list[np.ndarray], bool]:
    """Each ``logits[k]`` must have shape ``shapes[k]`` (unbatched) or ``(B, *shapes[k])`` with one common ``B``."""
    if isinstance(logits, np.ndarray) or not isinstance(logits, (list, tuple)):
        raise TypeError(f"{name} must be a list with one logit array per agent, got {type(logits).__name__}")
    if len(logits) != len(shapes):
        raise ValueError(f"{name} must hold {len(shapes)} arrays (one per agent), got {len(logits)}")
    arrays = []
    for k, (value, shape) in enumerate(zip(logits, shapes)):
        try:
            arr = np.array(value, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"{name}[{k}] must be an array of real numbers") from exc
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"{name}[{k}] must be finite")
        arrays.append(arr)
    batched = arrays[0].ndim == len(shapes[0]) + 1
    batch = arrays[0].shape[0] if batched else None
    for k, (arr, shape) in enumerate(zip(arrays, shapes)):
        expected = (batch, *shape) if batched else tuple(shape)
        if arr.shape != expected:
            what = f"[B, {', '.join(map(str, shape))}] with B = {batch}" if batched else f"{tuple(shape)} or [B, *{tuple(shape)}]"
            raise ValueError(f"{name}[{k}] must have shape {what}, got {arr.shape}")
    if batched and batch == 0:
        raise ValueError(f"{name} must hold at least one initialisation (B >= 1)")
    if not batched:
        arrays = [a[None] for a in arrays]
    return arrays, batched


# --- batched exact evaluation ---------------------------------------------------------------------------------
def softmax(logits: np.ndarray, axis: int = -1) -> np.ndarray:
    """Numerically stable ``exp(x - max) / sum exp(x - max)`` along ``axis``."""
    z = np.asarray(logits, dtype=np.float64)
    z = z - z.max(axis=axis, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=axis, keepdims=True)


def _batched_values(game: MarkovGame, joint: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For ``joint[B, S, |A|]`` return ``(V [B,S], Q [B,S,|A|])`` by exact batched solves (theory.md §0):
    ``V = (I - gamma P_pi)^{-1} r_pi``, ``Q = r + gamma P V``."""
    r = game.reward_flat()
    if game.n_states == 1 and game.gamma == 0:
        v = np.einsum("bsa,sa->bs", joint, r)
        return v, np.broadcast_to(r, joint.shape)
    p = game.transition_flat()
    p_pi = np.einsum("bsa,sat->bst", joint, p)
    r_pi = np.einsum("bsa,sa->bs", joint, r)
    v = np.linalg.solve(np.eye(game.n_states) - game.gamma * p_pi, r_pi[..., None])[..., 0]
    q = r[None] + game.gamma * np.einsum("sat,bt->bsa", p, v)
    return v, q


def _product(tables: Sequence[np.ndarray]) -> np.ndarray:
    """``prod_i tables[i]`` over agents, batched: ``[B, S, A1, ..., An]``."""
    out = tables[0]
    for t in tables[1:]:
        out = out[..., None] * t.reshape(t.shape[:2] + (1,) * (out.ndim - 2) + t.shape[2:])
    return out


def _marginal_q(q: np.ndarray, tables: Sequence[np.ndarray], agent: int) -> np.ndarray:
    """``Q^i(s, a^i) = E_{a^{-i}}[Q(s, a)]``, batched: ``q[B, S, A1..An]`` -> ``[B, S, A_i]``."""
    n = len(tables)
    letters = _LETTERS[:n]
    subs = ["Zs" + letters] + ["Zs" + letters[j] for j in range(n) if j != agent]
    ops = [q] + [tables[j] for j in range(n) if j != agent]
    return np.einsum(",".join(subs) + "->Zs" + letters[agent], *ops, optimize=True)


# --- results --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class NPGRun:
    """Result of an exact NPG run.

    ``kind``: ``"independent"``, ``"shared"`` or ``"sequential"``. ``logits``: the final logits, shaped as passed in
    (with the leading ``B`` axis for a batched run). ``returns``: exact ``J`` before each iteration and after the last, ``[n_iters + 1, B]``.
    ``policies``: the final policy of each initialisation (``Factorized``/``Shared``/``AutoRegressive``).
    ``batched``: whether the caller passed a batch (otherwise ``B = 1`` and :attr:`J` is 1-D).
    """

    kind: str
    game: MarkovGame
    eta: float
    order: tuple[int, ...] | None
    logits: tuple[np.ndarray, ...]
    returns: np.ndarray
    policies: tuple[Policy, ...]
    batched: bool

    @property
    def batch_size(self) -> int:
        return self.returns.shape[1]

    @property
    def policy(self) -> Policy:
        """The final policy of an unbatched run (or of a batch of one)."""
        if self.batch_size != 1:
            raise ValueError(f"this run holds {self.batch_size} initialisations; index .policies instead")
        return self.policies[0]

    @property
    def J(self) -> np.ndarray:
        """The J history: ``[n_iters + 1]`` for an unbatched run, else ``[n_iters + 1, B]``."""
        return self.returns if self.batched else self.returns[:, 0]

    @property
    def final_returns(self) -> np.ndarray:
        """Exact ``J`` of every final policy, ``[B]``."""
        return self.returns[-1]

    def joint_probs(self) -> np.ndarray:
        """Final joint policies ``[B, S, A1, ..., An]`` (agent-index order)."""
        return np.stack([p.probs() for p in self.policies])


def _unbatch(thetas: Sequence[np.ndarray], batched: bool) -> tuple[np.ndarray, ...]:
    return tuple(thetas) if batched else tuple(t[0] for t in thetas)


# --- the three NPG variants -----------------------------------------------------------------------------------
def npg_independent(game: MarkovGame, logits: Sequence[np.ndarray], eta: float, n_iters: int) -> NPGRun:
    """Exact independent NPG: ``theta^i_s += eta/(1-gamma) * A^i_pi(s, .)`` for all agents simultaneously
    from the same ``pi`` (module docstring; theory.md §6.2 negative control, §3.2 PG-Ind).

    ``logits[i]``: ``[S, A_i]`` or batched ``[B, S, A_i]``.
    """
    game = _check_npg_game(game)
    eta = _check_eta(eta)
    n_iters = _check_iters(n_iters)
    shapes = [(game.n_states, a) for a in game.n_actions]
    thetas, batched = _check_logits(logits, shapes, "logits")
    scale = eta / (1.0 - game.gamma)
    batch = thetas[0].shape[0]
    returns = np.empty((n_iters + 1, batch))
    for t in range(n_iters + 1):
        tables = [softmax(th) for th in thetas]
        joint = _product(tables)
        v, q = _batched_values(game, joint.reshape(batch, game.n_states, -1))
        returns[t] = v @ game.initial
        if t == n_iters:
            break
        q = q.reshape(joint.shape)
        thetas = [th + scale * (_marginal_q(q, tables, i) - v[..., None]) for i, th in enumerate(thetas)]
    policies = tuple(Factorized([tab[b] for tab in tables]) for b in range(batch))
    return NPGRun("independent", game, eta, None, _unbatch(thetas, batched), returns, policies, batched)


def npg_shared(game: MarkovGame, logits: np.ndarray, eta: float, n_iters: int) -> NPGRun:
    """Exact NPG for one softmax table shared by all agents without agent id:
    ``theta_s += eta/(1-gamma) * mean_i A^i_pi(s, .)`` (module docstring; theory.md §1.4, §3.2).

    ``logits``: ``[S, A]`` or batched ``[B, S, A]``; every agent must have ``A`` actions.
    """
    game = _check_npg_game(game)
    eta = _check_eta(eta)
    n_iters = _check_iters(n_iters)
    if len(set(game.n_actions)) != 1:
        raise ValueError(f"a shared policy needs every agent to have the same action count, got {game.n_actions}")
    (theta,), batched = _check_logits([logits], [(game.n_states, game.n_actions[0])], "logits")
    n = game.n_agents
    scale = eta / (1.0 - game.gamma)
    batch = theta.shape[0]
    returns = np.empty((n_iters + 1, batch))
    for t in range(n_iters + 1):
        table = softmax(theta)
        tables = [table] * n
        joint = _product(tables)
        v, q = _batched_values(game, joint.reshape(batch, game.n_states, -1))
        returns[t] = v @ game.initial
        if t == n_iters:
            break
        q = q.reshape(joint.shape)
        mean_adv = sum(_marginal_q(q, tables, i) for i in range(n)) / n - v[..., None]
        theta = theta + scale * mean_adv
    policies = tuple(Shared(table[b], n) for b in range(batch))
    return NPGRun("shared", game, eta, None, _unbatch([theta], batched), returns, policies, batched)


def _ar_joint(conds: Sequence[np.ndarray]) -> np.ndarray:
    joint = conds[0]
    for c in conds[1:]:
        joint = joint[..., None] * c
    return joint


def sequential_advantages(q_in_order: np.ndarray, conds: Sequence[np.ndarray]) -> tuple[list[np.ndarray], np.ndarray]:
    """Backward recursion of the transformed MDP (theory.md §6.1) at one real step, batched.

    ``q_in_order[B, S, A_{i_1}, ..., A_{i_n}]`` and ``conds[k][B, S, A_{i_1}, ..., A_{i_k}]`` (softmax
    conditionals). Returns ``([A~_1, ..., A~_n], V [B, S])`` with ``Q~_n = Q``, ``V~_k = sum_b pi~_k Q~_k``,
    ``Q~_{k-1} = V~_k`` and ``A~_k = Q~_k - V~_k``; ``A~_k`` has the shape of ``conds[k]``.
    """
    n = len(conds)
    q_tilde = q_in_order
    advs: list[np.ndarray] = [np.empty(0)] * n
    for k in range(n - 1, -1, -1):
        v_tilde = (conds[k] * q_tilde).sum(axis=-1)
        advs[k] = q_tilde - v_tilde[..., None]
        q_tilde = v_tilde
    return advs, q_tilde


def npg_sequential(
    game: MarkovGame, logits_ar: Sequence[np.ndarray], eta: float, n_iters: int, order: Sequence[int] | None = None
) -> NPGRun:
    """Exact NPG on the transformed sequential problem (theory.md §6.1-§6.2): an auto-regressive softmax policy
    with ``theta^k_{s, a^{i_{1:k-1}}} += eta/(1-gamma) * A~_k(s, a^{i_{1:k-1}}, .)`` (module docstring).

    ``logits_ar[k]``: ``[S, A_{i_1}, ..., A_{i_k}]`` (previous agents' actions in execution ``order``, then agent
    ``i_k``'s logits), or batched with a leading ``B``. ``order`` defaults to ``0..n-1``.
    """
    game = _check_npg_game(game)
    eta = _check_eta(eta)
    n_iters = _check_iters(n_iters)
    n = game.n_agents
    order = _check_order(order, n)
    acts = [game.n_actions[i] for i in order]
    shapes = [(game.n_states, *acts[: k + 1]) for k in range(n)]
    thetas, batched = _check_logits(logits_ar, shapes, "logits_ar")
    scale = eta / (1.0 - game.gamma)
    batch = thetas[0].shape[0]
    # Q from agent-index axes to execution-order axes
    src = [2 + i for i in order]
    dst = list(range(2, n + 2))
    returns = np.empty((n_iters + 1, batch))
    for t in range(n_iters + 1):
        conds = [softmax(th) for th in thetas]
        joint_in_order = _ar_joint(conds)
        joint = np.moveaxis(joint_in_order, dst, src)
        v, q = _batched_values(game, joint.reshape(batch, game.n_states, -1))
        returns[t] = v @ game.initial
        if t == n_iters:
            break
        q_in_order = np.moveaxis(q.reshape(joint.shape), src, dst)
        advs, _ = sequential_advantages(q_in_order, conds)
        thetas = [th + scale * adv for th, adv in zip(thetas, advs)]
    policies = tuple(AutoRegressive(order, [c[b] for c in conds]) for b in range(batch))
    return NPGRun("sequential", game, eta, order, _unbatch(thetas, batched), returns, policies, batched)


# --- initialisation and outcomes ------------------------------------------------------------------------------
def random_logits(
    rng: np.random.Generator,
    game: MarkovGame,
    batch: int,
    kind: str = "independent",
    order: Sequence[int] | None = None,
    scale: float = 1.0,
) -> list[np.ndarray] | np.ndarray:
    """``batch`` i.i.d. ``N(0, scale^2)`` logit initialisations for ``kind`` in
    ``{"independent", "shared", "sequential"}`` (shapes as the matching ``npg_*`` expects, batched): a list of
    arrays, except ``"shared"`` which gives the one ``[B, S, A]`` array."""
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    if not isinstance(game, MarkovGame):
        raise TypeError(f"game must be a MarkovGame, got {type(game).__name__}")
    if isinstance(batch, bool) or not isinstance(batch, (int, np.integer)) or batch < 1:
        raise ValueError(f"batch must be a positive integer, got {batch!r}")
    if not np.isfinite(scale) or scale <= 0:
        raise ValueError(f"scale must be a positive finite number, got {scale}")
    s = game.n_states
    if kind == "independent":
        return [scale * rng.standard_normal((batch, s, a)) for a in game.n_actions]
    if kind == "shared":
        if len(set(game.n_actions)) != 1:
            raise ValueError(f"a shared policy needs equal action counts, got {game.n_actions}")
        return scale * rng.standard_normal((batch, s, game.n_actions[0]))
    if kind == "sequential":
        acts = [game.n_actions[i] for i in _check_order(order, game.n_agents)]
        return [scale * rng.standard_normal((batch, s, *acts[: k + 1])) for k in range(len(acts))]
    raise ValueError(f"kind must be 'independent', 'shared' or 'sequential', got {kind!r}")


def _check_tol(tol: object) -> float:
    if isinstance(tol, bool) or not isinstance(tol, (int, float, np.integer, np.floating)):
        raise TypeError(f"tol must be a real number, got {type(tol).__name__}")
    tol = float(tol)
    if not 0 < tol < 0.5:
        raise ValueError(f"tol must lie in (0, 0.5), got {tol}")
    return tol


def classify_outcome(game: MarkovGame, policy: Policy | np.ndarray, tol: float = 1e-3) -> tuple | None:
    """The pure joint action the policy has concentrated on, or ``None``.

    A state is concentrated when its most likely joint action has probability ``>= 1 - tol``. For a one-state
    game the result is that joint action ``(a^1, ..., a^n)``; for ``S > 1`` it is one such tuple per state.
    ``None`` when some state is not concentrated.
    """
    if not isinstance(game, MarkovGame):
        raise TypeError(f"game must be a MarkovGame, got {type(game).__name__}")
    tol = _check_tol(tol)
    probs = joint_probs(policy, game.n_states, game.n_actions).reshape(game.n_states, -1)
    best = probs.argmax(axis=1)
    if np.any(probs[np.arange(game.n_states), best] < 1.0 - tol):
        return None
    actions = [tuple(int(x) for x in np.unravel_index(int(j), game.n_actions)) for j in best]
    return actions[0] if game.n_states == 1 else tuple(actions)


def outcome_counts(run: NPGRun, tol: float = 1e-3) -> dict[tuple | None, int]:
    """How many of the run's final policies concentrated on each pure joint action (``None`` = not concentrated)."""
    if not isinstance(run, NPGRun):
        raise TypeError(f"run must be an NPGRun, got {type(run).__name__}")
    counts: dict[tuple | None, int] = {}
    for p in run.policies:
        key = classify_outcome(run.game, p, tol)
        counts[key] = counts.get(key, 0) + 1
    return counts


@dataclass(frozen=True)
class OutcomeComparison:
    """Where independent and sequential NPG end from ``n_inits`` random ``N(0,1)`` initialisations (theory.md §6.2).

    ``independent`` / ``sequential``: counts per pure joint action (``None`` = not concentrated).
    """

    game_name: str
    n_inits: int
    eta: float
    n_iters: int
    independent: dict
    sequential: dict

    def rate(self, kind: str, outcome: tuple | None) -> float:
        """Fraction of initialisations of ``kind`` (``"independent"``/``"sequential"``) that ended at ``outcome``."""
        if kind not in ("independent", "sequential"):
            raise ValueError(f"kind must be 'independent' or 'sequential', got {kind!r}")
        return getattr(self, kind).get(outcome, 0) / self.n_inits

    def to_text(self) -> str:
        def fmt(counts: dict) -> str:
            return ", ".join(f"{k}: {v}/{self.n_inits}" for k, v in sorted(counts.items(), key=lambda kv: -kv[1]))

        return (
            f"{self.game_name}, eta={self.eta:g}, {self.n_iters} iterations: independent NPG -> {fmt(self.independent)}; "
            f"sequential NPG -> {fmt(self.sequential)}"
        )


def compare_independent_sequential(
    game: MarkovGame,
    rng: np.random.Generator,
    n_inits: int,
    eta: float = 0.1,
    n_iters: int = 2000,
    tol: float = 1e-3,
    order: Sequence[int] | None = None,
) -> OutcomeComparison:
    """Run independent and sequential NPG from ``n_inits`` i.i.d. ``N(0,1)`` logit draws each (independent logits
    first, then sequential, from ``rng``) and count the pure joint actions they concentrate on."""
    ind = npg_independent(game, random_logits(rng, game, n_inits, "independent"), eta, n_iters)
    seq = npg_sequential(game, random_logits(rng, game, n_inits, "sequential", order), eta, n_iters, order)
    return OutcomeComparison(game.name, n_inits, float(eta), int(n_iters), outcome_counts(ind, tol), outcome_counts(seq, tol))
