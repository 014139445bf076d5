"""Multi-agent values, advantages and the HATRPO surrogate by tensor contraction (theory.md §1.2, §1.7, §1.10).

Notation: ``pi`` is the current product policy, ``agents = i_{1:m}`` an ordered subset of agents.

* ``Q^{i_{1:m}}_pi(s, a^{i_{1:m}}) = E_{a^{-i_{1:m}} ~ pi^{-i_{1:m}}}[Q_pi(s, a)]``       (HATRPO Def. 1)
* ``A^{i_{1:m}}_pi(s, a^{j_{1:k}}, a^{i_{1:m}}) = Q^{j,i}_pi - Q^{j}_pi``                   (HATRPO eq. 1)
* ``L^{i_{1:m}}_pi(pibar^{i_{1:m-1}}, pihat^{i_m})
      = sum_s rho_pi(s) E_{a^{i_{1:m-1}} ~ pibar, a^{i_m} ~ pihat}[A^{i_m}_pi(s, a^{i_{1:m-1}}, a^{i_m})]``  (Def. 2)
* ``M^{i_{1:m}}(s, a) = pibar^{i_{1:m-1}}(a^{i_{1:m-1}}|s) / pi^{i_{1:m-1}}(a^{i_{1:m-1}}|s) * A_pi(s, a)`` (eq. 10)
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from .evaluate import _check_game, advantage, check_stationary_advantage, occupancy, q_value
from .markov_game import MarkovGame
from .policies import Policy, _table, agent_tables

ProductPolicy = Policy | Sequence[np.ndarray]


def _check_agents(agents: Sequence[int], n_agents: int, name: str = "agents") -> tuple[int, ...]:
    try:
        out = tuple(int(a) for a in agents)
    except TypeError as exc:
        raise TypeError(f"{name} must be a sequence of agent indices") from exc
    if len(set(out)) != len(out):
        raise ValueError(f"{name} must not repeat an agent, got {out}")
    if any(a < 0 or a >= n_agents for a in out):
        raise ValueError(f"{name} must hold agent indices in [0, {n_agents}), got {out}")
    return out


def _tables_for(game: MarkovGame, pi: ProductPolicy) -> list[np.ndarray]:
    tables = agent_tables(pi)
    if len(tables) != game.n_agents or any(
        t.shape != (game.n_states, a) for t, a in zip(tables, game.n_actions)
    ):
        raise ValueError(
            f"pi must hold one [S, A_i] table per agent matching the game "
            f"({game.n_states} states, actions {game.n_actions}), got {[t.shape for t in tables]}"
        )
    return tables


def marginalise(joint: np.ndarray, tables: Sequence[np.ndarray], keep: Sequence[int]) -> np.ndarray:
    """Contract ``joint[S, A1..An]`` with ``pi^j(.|s)`` over every agent ``j`` not in ``keep`` and order
    the kept axes as ``keep`` lists them -> ``[S, A_{keep[0]}, ..., A_{keep[-1]}]``."""
    keep = tuple(keep)
    n = joint.ndim - 1
    out = joint
    for j in reversed(range(n)):  # contract the dropped agents one at a time (batched mat-vec), last axis first
        if j in keep:
            continue
        t = tables[j]
        moved = np.moveaxis(out, 1 + j, -1)
        out = (moved.reshape(t.shape[0], -1, t.shape[1]) @ t[:, :, None]).reshape(moved.shape[:-1])
    kept = sorted(keep)
    return np.transpose(out, (0, *(1 + kept.index(k) for k in keep)))


def q_subset(game: MarkovGame, pi: ProductPolicy, agents: Sequence[int], q: np.ndarray | None = None) -> np.ndarray:
    """``Q^{agents}_pi(s, a^{agents})`` (HATRPO Def. 1), ``[S, A_{agents[0]}, ...]``; ``agents=()`` gives ``V_pi``.

    ``q`` may pass a precomputed ``Q_pi`` to avoid re-solving."""
    game = _check_game(game)
    tables = _tables_for(game, pi)
    agents = _check_agents(agents, game.n_agents)
    if q is None:
        q = q_value(game, _as_policy(tables))
    return marginalise(q, tables, agents)


def _as_policy(tables: Sequence[np.ndarray]) -> Policy:
    from .policies import Factorized

    return Factorized(tables)


def advantage_subset(
    game: MarkovGame,
    pi: ProductPolicy,
    agents: Sequence[int],
    given: Sequence[int] = (),
    q: np.ndarray | None = None,
) -> np.ndarray:
    """``A^{agents}_pi(s, a^{given}, a^{agents}) = Q^{given, agents}_pi - Q^{given}_pi`` (HATRPO eq. 1).

    Shape ``[S, A_{given...}, A_{agents...}]`` (given agents first, in the order listed). ``ValueError`` for a game
    with a finite horizon ``H > 1`` (the advantage is then time-dependent; see
    :func:`seqmarl.theory.evaluate.check_stationary_advantage`)."""
    game = _check_game(game)
    check_stationary_advantage(game, "advantage_subset")
    tables = _tables_for(game, pi)
    agents = _check_agents(agents, game.n_agents)
    given = _check_agents(given, game.n_agents, "given")
    if set(agents) & set(given):
        raise ValueError(f"agents {agents} and given {given} must be disjoint")
    if q is None:
        q = q_value(game, _as_policy(tables))
    both = marginalise(q, tables, given + agents)
    base = marginalise(q, tables, given)
    return both - base.reshape(base.shape + (1,) * len(agents))


def _new_tables(game: MarkovGame, agents: tuple[int, ...], new_tables: Sequence[np.ndarray], name: str) -> list[np.ndarray]:
    if len(new_tables) != len(agents):
        raise ValueError(f"{name} must give one table per agent in {agents}, got {len(new_tables)}")
    out = []
    for k, (agent, table) in enumerate(zip(agents, new_tables)):
        t = _table(table, f"{name}[{k}]", ndim=2)
        if t.shape != (game.n_states, game.n_actions[agent]):
            raise ValueError(
                f"{name}[{k}] (agent {agent}) must have shape {(game.n_states, game.n_actions[agent])}, got {t.shape}"
            )
        out.append(t)
    return out


def expected_local_advantage(
    game: MarkovGame,
    pi: ProductPolicy,
    agents: Sequence[int],
    new_tables: Sequence[np.ndarray],
    q: np.ndarray | None = None,
) -> np.ndarray:
    """Per state ``g(s) = E_{a^{i_{1:m-1}} ~ pibar, a^{i_m} ~ pihat}[A^{i_m}_pi(s, a^{i_{1:m-1}}, a^{i_m})]``, ``[S]``.
    ``ValueError`` for a game with a finite horizon ``H > 1``."""
    game = _check_game(game)
    check_stationary_advantage(game, "expected_local_advantage")
    agents = _check_agents(agents, game.n_agents)
    if not agents:
        raise ValueError("agents must name at least the updating agent i_m")
    new = _new_tables(game, agents, new_tables, "new_tables")
    adv = advantage_subset(game, pi, agents[-1:], given=agents[:-1], q=q)
    letters = "abcdefghijklmnopqrtuvwxyz"[: len(agents)]
    subs = ["s" + letters] + ["s" + c for c in letters]
    return np.einsum(",".join(subs) + "->s", adv, *new, optimize=True)


def surrogate(
    game: MarkovGame,
    pi: ProductPolicy,
    agents: Sequence[int],
    new_tables: Sequence[np.ndarray],
    q: np.ndarray | None = None,
    rho: np.ndarray | None = None,
) -> float:
    """HATRPO Def. 2: ``L^{i_{1:m}}_pi(pibar^{i_{1:m-1}}, pihat^{i_m}) = sum_s rho_pi(s) g(s)``.

    ``agents = i_{1:m}``; ``new_tables = [pibar^{i_1}, ..., pibar^{i_{m-1}}, pihat^{i_m}]``, each ``[S, A]``.
    ``rho`` is the improper occupancy ``rho_pi`` (computed if omitted). ``ValueError`` for a game with a finite
    horizon ``H > 1``: Def. 2 and Lemma 2 are stated for the infinite-horizon discounted objective, and the t = 0
    ``Q``/``rho`` of a finite-horizon game do not give ``L`` its meaning (``sum_m L != J(pibar) - J(pi)`` to first
    order)."""
    game = _check_game(game)
    check_stationary_advantage(game, "surrogate")
    g = expected_local_advantage(game, pi, agents, new_tables, q=q)
    if rho is None:
        rho = occupancy(game, _as_policy(_tables_for(game, pi)))
    return float(rho @ g)


def estimator_m(
    game: MarkovGame,
    pi: ProductPolicy,
    prev_agents: Sequence[int],
    prev_new_tables: Sequence[np.ndarray],
    adv: np.ndarray | None = None,
) -> np.ndarray:
    """HATRPO eq. (10): ``M^{i_{1:m}}(s, a) = [pibar^{i_{1:m-1}}(a^{i_{1:m-1}}|s) / pi^{i_{1:m-1}}(a^{i_{1:m-1}}|s)] A_pi(s, a)``.

    ``prev_agents = i_{1:m-1}`` are the agents already updated to ``prev_new_tables``; ``adv`` defaults to the
    exact ``A_pi``. Returns ``[S, A1, ..., An]``. Needs ``pi`` positive on the previous agents' actions.
    ``ValueError`` for a game with a finite horizon ``H > 1`` (eq. 9-10 use the stationary advantage)."""
    game = _check_game(game)
    check_stationary_advantage(game, "estimator_m")
    tables = _tables_for(game, pi)
    prev_agents = _check_agents(prev_agents, game.n_agents, "prev_agents")
    new = _new_tables(game, prev_agents, prev_new_tables, "prev_new_tables")
    if adv is None:
        adv = advantage(game, _as_policy(tables))
    elif not isinstance(adv, np.ndarray):
        raise TypeError(f"adv must be a numpy array of shape {game.reward.shape}, got {type(adv).__name__}")
    elif adv.shape != game.reward.shape:
        raise ValueError(f"adv must have shape {game.reward.shape}, got {adv.shape}")
    factor = np.ones(game.reward.shape)
    for agent, table in zip(prev_agents, new):
        old = tables[agent]
        if np.any(old <= 0):
            raise ValueError(f"pi^{agent} must be positive (eta-soft, HATRPO Assumption 1) for the ratio in M")
        ratio = table / old
        shape = [game.n_states] + [1] * game.n_agents
        shape[1 + agent] = game.n_actions[agent]
        factor = factor * ratio.reshape(shape)
    return factor * adv
