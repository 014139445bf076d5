"""Exact (tabular, optimiser-solved) multi-agent policy-iteration steps: HATRPO's Algorithm 1, HATRPO with an
expected-KL ball, exact HAPPO and a HAML instance with a KL drift (theory.md §1.9, §1.10, §1.11, §2.3).

Every update is a pure function ``update(game, pi, rng, **options) -> Factorized`` taking the current product
policy ``pi = pi_k`` and returning ``pi_{k+1}``. Values, advantages and occupancies are exact (theory.md §0);
only the per-agent maximisation goes through a solver (:mod:`seqmarl.theory.trust_region`: KKT root-finding for the
KL programs, exact to about 1e-13; the HAPPO LP by its exact greedy structure), so results are exact to rounding.

Sequential scheme (default). Agents are updated in the order ``i_{1:n}`` (``order``, or a permutation drawn from
``rng``); agent ``i_m`` maximises its objective against the current ``pi`` with the predecessors ``i_{1:m-1}``
already replaced by their new tables. The objectives use the local gain

    g_s(a) = E_{a^{i_{1:m-1}} ~ pibar^{i_{1:m-1}}(.|s)}[ A^{i_m}_pi(s, a^{i_{1:m-1}}, a) ]          (HATRPO eq. 1, Def. 2)

so that ``sum_a pihat(a|s) g_s(a)`` is the per-state integrand of ``L^{i_{1:m}}_pi(pibar^{i_{1:m-1}}, pihat)``.

Simultaneous scheme (``simultaneous=True``). Every agent ``i`` maximises its own objective against the OLD
policy with no predecessors (``agents = (i,)``) and all tables are replaced at once: the MAPPO/IPPO-style step,
which carries no improvement guarantee (theory.md §1.5).

Numerical safeguard (``safeguard=True``, the default for library use). The exact maximiser of each program is at
least as good as keeping the old table (which is feasible with objective 0), state by state for the
state-separable programs. After solving, any state (and, for the max-KL penalty, the whole table) whose exactly
re-evaluated objective falls below that of the old table is reset to the old table; states of zero weight are kept
at the old table. This only removes solver noise from an exact maximiser, but it also forces ``J`` up whatever the
solver returns (a no-op or a random "solver" passes a monotonicity test behind it). ``safeguard=False`` returns the
solver's maximiser as it is: the pure algorithm, which ``seqmarl verify`` runs (its rows check monotonicity *and*
the KKT conditions of every per-agent program, so they test the theorem, not the safeguard).

In both modes a state whose local gains differ by no more than the rounding level of the advantages
(``1e-12 max(1, max|Q_pi|)``) is treated as one where the agent is indifferent (gain 0), so that a KL-ball program
does not take a full step along rounding noise.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from . import bounds, evaluate, trust_region
from .bounds import check_order, kl_tables
from .evaluate import _check_game, expected_return
from .markov_game import MarkovGame
from .multiagent import advantage_subset
from .policies import Factorized, Policy, product_probs
from .trust_region import happo_objective

# The callees a mutation (or a test's monkeypatch) may replace are looked up through their modules at call time:
# bounds.penalty_constant, evaluate.{occupancy, state_distribution, q_value, advantage}, trust_region.solve_*.

Update = Callable[..., Factorized]

_LETTERS = "abcdefghijklmnopqrtuvwxyz"


# --------------------------------------------------------------------------------------------- validation
def _check_game_policy(game: object, pi: object) -> tuple[MarkovGame, Factorized]:
    game = _check_game(game)
    if not isinstance(pi, Factorized):
        raise TypeError(f"pi must be a Factorized (product) policy, got {type(pi).__name__}")
    if pi.n_states != game.n_states or pi.n_actions != game.n_actions:
        raise ValueError(
            f"pi must match the game ({game.n_states} states, actions {game.n_actions}), "
            f"got {pi.n_states} states, actions {pi.n_actions}"
        )
    return game, pi


def _check_inputs(game: object, pi: object, rng: object) -> tuple[MarkovGame, Factorized]:
    game, pi = _check_game_policy(game, pi)
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    if game.horizon is not None:
        raise ValueError(
            "the exact updates need the infinite-horizon discounted objective (policy-improvement and Lemma 2 "
            f"are stated for it), got horizon={game.horizon}"
        )
    return game, pi


def _positive(value: object, name: str) -> float:
    try:
        out = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must be a real number, got {value!r}") from exc
    if not np.isfinite(out) or out <= 0:
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")
    return out


def _check_safeguard(safeguard: object) -> bool:
    if not isinstance(safeguard, (bool, np.bool_)):
        raise TypeError(f"safeguard must be a bool, got {safeguard!r}")
    return bool(safeguard)


def _schedule(game: MarkovGame, rng: np.random.Generator, order: Sequence[int] | None, simultaneous: bool) -> tuple[int, ...]:
    if not isinstance(simultaneous, (bool, np.bool_)):
        raise TypeError(f"simultaneous must be a bool, got {simultaneous!r}")
    if order is not None:
        return check_order(order, game.n_agents)
    if simultaneous:
        return tuple(range(game.n_agents))
    return tuple(int(i) for i in rng.permutation(game.n_agents))


# --------------------------------------------------------------------------------------------- shared pieces
def local_gain(game: MarkovGame, pi: Factorized, agent: int, prev_agents: Sequence[int],
               prev_tables: Sequence[np.ndarray], q: np.ndarray | None = None) -> np.ndarray:
    """``g[s, a] = E_{a^{prev} ~ pibar^{prev}(.|s)}[A^{agent}_pi(s, a^{prev}, a)]``, ``[S, A_agent]`` (HATRPO eq. 1).

    ``prev_agents = i_{1:m-1}`` with their new tables ``prev_tables``; ``prev_agents = ()`` gives
    ``A^{agent}_pi(s, a) = Q^{agent}_pi - V_pi``."""
    game, pi = _check_game_policy(game, pi)
    prev = tuple(prev_agents)
    if len(prev_tables) != len(prev):
        raise ValueError(f"prev_tables must give one table per agent in prev_agents {prev}, got {len(prev_tables)}")
    adv = advantage_subset(game, pi, (agent,), given=prev, q=q)  # [S, A_prev..., A_agent]
    k = len(prev)
    letters = _LETTERS[: k + 1]
    subs = ["s" + letters] + ["s" + c for c in letters[:k]]
    return np.einsum(",".join(subs) + "->s" + letters[k], adv, *prev_tables, optimize=True)


def _denoise(g: np.ndarray, noise: float) -> np.ndarray:
    """Rows whose gains spread by at most ``noise`` (rounding in ``A_pi``) are set to 0: the agent is indifferent
    there, and a trust-region program would otherwise take a full step along rounding noise."""
    flat = np.ptp(g, axis=1) <= noise
    return np.where(flat[:, None], 0.0, g)


def _noise_level(q: np.ndarray) -> float:
    """Absolute rounding level of advantages computed from ``Q_pi``: ``1e-12 max(1, max |Q_pi|)``."""
    return 1e-12 * max(1.0, float(np.max(np.abs(q))))


def _clean(table: np.ndarray, old: np.ndarray, allowed: np.ndarray | None = None) -> np.ndarray:
    """Project solver output onto the simplex (clip tiny negatives, renormalise); rows that fail fall back to old."""
    out = np.clip(np.asarray(table, dtype=np.float64), 0.0, None)
    if allowed is not None:
        out = np.where(allowed, out, 0.0)
    sums = out.sum(axis=1, keepdims=True)
    bad = ~np.isfinite(sums[:, 0]) | (sums[:, 0] <= 0)
    out = np.where(bad[:, None], old, out / np.where(sums > 0, sums, 1.0))
    return out


def _revert_worse_states(new: np.ndarray, old: np.ndarray, state_objective: Callable[[np.ndarray], np.ndarray],
                         weight: np.ndarray) -> np.ndarray:
    """Reset to ``old`` every state of zero weight and every state whose objective is below old's."""
    gain = state_objective(new) - state_objective(old)
    worse = (weight <= 0) | ~np.isfinite(gain) | (gain < 0)
    return np.where(worse[:, None], old, new)


def _sequential(game: MarkovGame, pi: Factorized, order: tuple[int, ...], simultaneous: bool,
                step: Callable[[int, tuple[int, ...], list[np.ndarray]], np.ndarray]) -> Factorized:
    """Drive the per-agent ``step(agent, prev_agents, new_tables_so_far) -> new table`` in order."""
    new_tables = list(pi.tables)
    for m, agent in enumerate(order):
        if simultaneous:
            new_tables[agent] = step(agent, (), list(pi.tables))
        else:
            new_tables[agent] = step(agent, order[:m], new_tables)
    return Factorized(new_tables)


# --------------------------------------------------------------------------------------------- updates
def hatrpo_exact(game: MarkovGame, pi: Factorized, rng: np.random.Generator, order: Sequence[int] | None = None,
                 simultaneous: bool = False, safeguard: bool = True) -> Factorized:
    """One iteration of HATRPO's Algorithm 1 (theory.md §1.9), exactly: agent ``i_m`` takes

        pi_{k+1}^{i_m} = argmax_P  L^{i_{1:m}}_{pi_k}(pi_{k+1}^{i_{1:m-1}}, P) - C Dmax_KL(pi_k^{i_m}, P),
        C = 4 gamma max|A_{pi_k}| / (1 - gamma)^2,

    solved as ``max sum_s rho(s) <P_s, g_s> - C t  s.t. KL(pi_k^{i_m}(.|s) || P_s) <= t  for all s`` (a concave
    program, solved exactly through its KKT conditions by :func:`seqmarl.theory.trust_region.solve_max_kl_penalty`;
    a generic exponential-cone solve is only ~1e-8 accurate, too coarse for the tiny steps a large ``C`` allows). With ``C = 0`` (``gamma = 0``: one-shot games, or a constant advantage) the program is linear and its
    maximiser is taken in closed form: the old row if it already attains ``max_a g_s(a)``, else the uniform
    distribution over the maximising actions (a best response). States with ``rho(s) = 0`` keep their old row.
    Theorem 2: ``J(pi_{k+1}) >= J(pi_k)`` (sequential scheme only). ``safeguard``: see the module docstring
    (``False``: the solver's maximiser as it is)."""
    game, pi = _check_inputs(game, pi, rng)
    safeguard = _check_safeguard(safeguard)
    order = _schedule(game, rng, order, simultaneous)
    c = bounds.penalty_constant(game, pi)
    q = evaluate.q_value(game, pi)
    noise = _noise_level(q)
    rho = evaluate.occupancy(game, pi)

    def step(agent: int, prev: tuple[int, ...], tables: list[np.ndarray]) -> np.ndarray:
        old = pi.tables[agent]
        g = _denoise(local_gain(game, pi, agent, prev, [tables[j] for j in prev], q=q), noise)
        if c == 0:
            best = g.max(axis=1, keepdims=True)
            tol = 1e-12 * (1.0 + np.abs(best))
            ties = g >= best - tol
            keep = np.sum(old * g, axis=1, keepdims=True) >= best - tol
            response = ties / ties.sum(axis=1, keepdims=True)
            new = np.where(keep | (rho[:, None] <= 0), old, response)
            return new
        lin = rho[:, None] * g
        new = _clean(trust_region.solve_max_kl_penalty(old, lin, c), old)
        if not safeguard:
            return new
        new = _revert_worse_states(new, old, lambda p: np.sum(lin * p, axis=1), rho)
        value = np.sum(lin * (new - old)) - c * float(np.max(kl_tables(old, new)))
        return new if value >= 0 else old

    return _sequential(game, pi, order, simultaneous, step)


def hatrpo_kl_ball(game: MarkovGame, pi: Factorized, rng: np.random.Generator, delta: float = 0.01,
                   order: Sequence[int] | None = None, simultaneous: bool = False, safeguard: bool = True) -> Factorized:
    """HATRPO with the expected-KL trust region (theory.md §1.10 eq. 7), solved exactly per agent:

        maximise  L^{i_{1:m}}_{pi_k}(pi_{k+1}^{i_{1:m-1}}, P) = sum_s rho(s) <P_s, g_s>
        s.t.      sum_s rho_norm(s) KL(pi_k^{i_m}(.|s) || P_s) <= delta,

    with ``rho_norm = rho_{pi_k} / sum rho_{pi_k}`` the normalised discounted occupancy (so ``delta`` is an average
    per-state KL, as the sample mean over a rollout buffer in the practical algorithm). States with
    ``rho(s) = 0`` keep their old row. Monotone in ``J`` (HAML with trivial drift, theory.md §2.2): at the exact
    maximiser every visited state has ``<P_s, g_s> >= 0``. ``safeguard``: see the module docstring."""
    game, pi = _check_inputs(game, pi, rng)
    delta = _positive(delta, "delta")
    safeguard = _check_safeguard(safeguard)
    order = _schedule(game, rng, order, simultaneous)
    q = evaluate.q_value(game, pi)
    noise = _noise_level(q)
    rho_norm = evaluate.state_distribution(game, pi)

    def step(agent: int, prev: tuple[int, ...], tables: list[np.ndarray]) -> np.ndarray:
        old = pi.tables[agent]
        g = _denoise(local_gain(game, pi, agent, prev, [tables[j] for j in prev], q=q), noise)
        lin = rho_norm[:, None] * g
        new = _clean(trust_region.solve_mean_kl_ball(old, g, rho_norm, delta), old)
        if not safeguard:
            return new
        return _revert_worse_states(new, old, lambda p: np.sum(lin * p, axis=1), rho_norm)

    return _sequential(game, pi, order, simultaneous, step)


def haml_kl_drift(game: MarkovGame, pi: Factorized, rng: np.random.Generator, lam: float = 1.0, delta: float = 0.5,
                  order: Sequence[int] | None = None, simultaneous: bool = False, safeguard: bool = True) -> Factorized:
    """A HAML instance (theory.md §2.2-§2.3 "How to verify"): drift ``D(P|s) = lam KL(pi_k^{i_m}(.|s) || P_s)``
    (a valid HADF: non-negative, zero with zero gradient at ``P = pi_k^{i_m}``), neighbourhood the per-state KL
    ball ``KL(pi_k^{i_m}(.|s) || P_s) <= delta``, sampling distribution ``beta`` uniform over states:

        maximise  sum_s beta(s) [ <P_s, g_s> - lam KL_s ]   s.t.  KL_s <= delta  for all s.

    Monotone in ``J`` (HAML Theorem 14, statewise policy improvement). ``safeguard``: see the module docstring."""
    game, pi = _check_inputs(game, pi, rng)
    safeguard = _check_safeguard(safeguard)
    try:
        lam_f = float(lam)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"lam must be a real number, got {lam!r}") from exc
    if not np.isfinite(lam_f) or lam_f < 0:
        raise ValueError(f"lam must be a finite number >= 0, got {lam!r}")
    delta = _positive(delta, "delta")
    order = _schedule(game, rng, order, simultaneous)
    q = evaluate.q_value(game, pi)
    noise = _noise_level(q)
    beta = np.full(game.n_states, 1.0 / game.n_states)

    def step(agent: int, prev: tuple[int, ...], tables: list[np.ndarray]) -> np.ndarray:
        old = pi.tables[agent]
        g = _denoise(local_gain(game, pi, agent, prev, [tables[j] for j in prev], q=q), noise)
        lin = beta[:, None] * g
        new = _clean(trust_region.solve_state_kl_penalty_ball(old, g, lam_f, delta), old)
        if not safeguard:
            return new

        def objective(p: np.ndarray) -> np.ndarray:
            return np.sum(lin * p, axis=1) - lam_f * beta * kl_tables(old, p)

        return _revert_worse_states(new, old, objective, beta)

    return _sequential(game, pi, order, simultaneous, step)


def happo_weights(game: MarkovGame, pi: Factorized, agent: int, prev_agents: Sequence[int],
                  prev_tables: Sequence[np.ndarray], adv: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(W_plus, W_minus)``, each ``[S, A_agent]``: the positive and negative parts of ``pi(a|s) M(s, a)``
    summed over the other agents' actions with ``a^{agent}`` fixed (theory.md §1.11 eq. 10-11).

    ``pi(a|s) M^{i_{1:m}}(s, a) = pibar^{i_{1:m-1}}(a^{i_{1:m-1}}|s) pi^{-i_{1:m-1}}(a^{-i_{1:m-1}}|s) A_pi(s, a)``
    (the ratio in ``M`` cancels against ``pi``, so no division is needed)."""
    game, pi = _check_game_policy(game, pi)
    if not 0 <= int(agent) < game.n_agents or int(agent) in tuple(prev_agents):
        raise ValueError(f"agent must be an agent index in [0, {game.n_agents}) not in prev_agents, got {agent}")
    if len(prev_tables) != len(tuple(prev_agents)):
        raise ValueError("prev_tables must give one table per agent in prev_agents")
    tables = list(pi.tables)
    for j, t in zip(prev_agents, prev_tables):
        tables[j] = t
    if adv is None:
        adv = evaluate.advantage(game, pi)
    w = product_probs(tables) * adv
    other = tuple(1 + j for j in range(game.n_agents) if j != agent)
    return np.clip(w, 0.0, None).sum(axis=other), np.clip(w, None, 0.0).sum(axis=other)


def happo_exact(game: MarkovGame, pi: Factorized, rng: np.random.Generator, clip: float = 0.2,
                order: Sequence[int] | None = None, simultaneous: bool = False, safeguard: bool = True) -> Factorized:
    """One exact HAPPO iteration (theory.md §1.11 eq. 11, "How to verify exactly"): agent ``i_m`` maximises

        E_{s ~ rho_pi, a ~ pi}[ min(r M(s,a), clip(r, 1 +- eps) M(s,a)) ],  r = P(a^{i_m}|s) / pi^{i_m}(a^{i_m}|s),

    with the exact ``M = M^{i_{1:m}}`` of eq. (10) (predecessors' new tables, exact ``A_pi``). The expectation
    keeps the joint-action sum: each joint action contributes ``pi(a|s) M(s,a) min(r, 1+eps)`` if ``M > 0`` and
    ``pi(a|s) M(s,a) max(r, 1-eps)`` if ``M < 0``. As ``r`` depends on ``a^{i_m}`` only, these group into
    ``W+(s, a^{i_m}) min(r, 1+eps) + W-(s, a^{i_m}) max(r, 1-eps)`` with ``W+ >= 0 >= W-`` the sums of the positive
    and negative parts of ``pi M`` over ``a^{-i_m}`` (:func:`happo_weights`): a concave piecewise-linear objective,
    maximised exactly (:func:`seqmarl.theory.trust_region.solve_happo_lp`). ``P`` is kept on the support of the old table (the importance ratio is
    undefined off it). Among maximisers the one nearest the old table in L1 is returned.
    Monotone in ``J`` (HAML, theory.md §2.2). ``safeguard``: see the module docstring."""
    game, pi = _check_inputs(game, pi, rng)
    safeguard = _check_safeguard(safeguard)
    try:
        eps = float(clip)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"clip must be a real number, got {clip!r}") from exc
    if not 0 < eps < 1:
        raise ValueError(f"clip must lie in (0, 1), got {clip!r}")
    order = _schedule(game, rng, order, simultaneous)
    adv = evaluate.advantage(game, pi)
    rho = evaluate.occupancy(game, pi)

    def step(agent: int, prev: tuple[int, ...], tables: list[np.ndarray]) -> np.ndarray:
        old = pi.tables[agent]
        w_plus, w_minus = happo_weights(game, pi, agent, prev, [tables[j] for j in prev], adv=adv)
        new = _clean(trust_region.solve_happo_lp(old, w_plus, w_minus, rho, eps), old, allowed=old > 0)
        if not safeguard:
            return new
        return _revert_worse_states(new, old, lambda p: happo_objective(old, p, w_plus, w_minus, eps), rho)

    return _sequential(game, pi, order, simultaneous, step)


# --------------------------------------------------------------------------------------------- driving
def run_iteration(update: Update, game: MarkovGame, pi0: Policy, rng: np.random.Generator, n_iters: int,
                  **kw: object) -> list[Factorized]:
    """``[pi_0, pi_1, ..., pi_{n_iters}]`` with ``pi_{k+1} = update(game, pi_k, rng, **kw)``."""
    if not callable(update):
        raise TypeError(f"update must be callable (game, pi, rng, **options) -> Factorized, got {update!r}")
    game = _check_game(game)
    if not isinstance(pi0, Factorized):
        raise TypeError(f"pi0 must be a Factorized (product) policy, got {type(pi0).__name__}")
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    if isinstance(n_iters, bool) or not isinstance(n_iters, (int, np.integer)) or n_iters < 0:
        raise ValueError(f"n_iters must be a non-negative integer, got {n_iters!r}")
    policies = [pi0]
    for _ in range(int(n_iters)):
        nxt = update(game, policies[-1], rng, **kw)
        if not isinstance(nxt, Factorized):
            raise TypeError(f"update must return a Factorized policy, got {type(nxt).__name__}")
        policies.append(nxt)
    return policies


def returns_along(game: MarkovGame, policies: Sequence[Policy]) -> np.ndarray:
    """Exact ``J(pi_k)`` for each policy of a run, ``[len(policies)]``."""
    game = _check_game(game)
    return np.array([expected_return(game, p) for p in policies], dtype=np.float64)
