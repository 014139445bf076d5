"""HATRPO's multi-agent lower bound (Lemma 2) and its pieces (theory.md §1.3, §1.7, §1.8).

For a current product policy ``pi``, a new one ``pibar`` and any ordering ``i_{1:n}`` of the agents
[SOURCE: ICLR22, Lemma 2]:

    J(pibar) >= J(pi) + sum_{m=1}^n [ L^{i_{1:m}}_pi(pibar^{i_{1:m-1}}, pibar^{i_m}) - C Dmax_KL(pi^{i_m}, pibar^{i_m}) ],

    C = 4 gamma max_{s,a} |A_pi(s, a)| / (1 - gamma)^2                                    (eq. 2),
    Dmax_KL(pi^i, pibar^i) = max_s KL(pi^i(.|s) || pibar^i(.|s))                          (KL(old || new)).

By Lemma 1 the first-order part ``sum_m L^{i_{1:m}}`` equals ``sum_s rho_pi(s) E_{a ~ pibar}[A_pi(s, a)]
= L_pi(pibar) - J(pi)`` whatever the ordering, and it matches ``J(pibar) - J(pi)`` to ``O(|pibar - pi|^2)``.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from .evaluate import _check_game, advantage, expected_return, occupancy, q_value
from .markov_game import MarkovGame, check_distribution
from .multiagent import surrogate
from .policies import Factorized, Policy


def _prob_table(value: object, name: str) -> np.ndarray:
    try:
        table = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must be an array of probabilities [S, A]") from exc
    if table.ndim != 2:
        raise ValueError(f"{name} must be a [S, A] table of per-state distributions, got shape {table.shape}")
    check_distribution(table, name, axis=-1)
    return np.clip(table, 0.0, None)


def kl_tables(p_old: np.ndarray, p_new: np.ndarray) -> np.ndarray:
    """Per-state ``KL(p_old(.|s) || p_new(.|s)) = sum_a p_old log(p_old / p_new)``, ``[S]`` (theory.md §1.8).

    Terms with ``p_old = 0`` contribute 0; a state where ``p_new = 0 < p_old`` for some action has KL ``inf``."""
    old = _prob_table(p_old, "p_old")
    new = _prob_table(p_new, "p_new")
    if old.shape != new.shape:
        raise ValueError(f"p_old and p_new must have the same shape, got {old.shape} and {new.shape}")
    support = old > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(support, old * (np.log(np.where(support, old, 1.0)) - np.log(np.where(support, new, 1.0))), 0.0)
    out = terms.sum(axis=1)
    out[np.any(support & (new <= 0), axis=1)] = np.inf
    # KL >= 0 exactly; tiny negative values are rounding
    return np.maximum(out, 0.0)


def max_kl(p_old: np.ndarray, p_new: np.ndarray) -> float:
    """``D^max_KL(p_old, p_new) = max_s KL(p_old(.|s) || p_new(.|s))`` (theory.md §1.3)."""
    return float(np.max(kl_tables(p_old, p_new)))


def _product_policy(game: MarkovGame, pi: object, name: str) -> Factorized:
    if not isinstance(pi, Factorized):
        raise TypeError(f"{name} must be a Factorized (product) policy, got {type(pi).__name__}")
    if pi.n_states != game.n_states or pi.n_actions != game.n_actions:
        raise ValueError(
            f"{name} must match the game ({game.n_states} states, actions {game.n_actions}), "
            f"got {pi.n_states} states, actions {pi.n_actions}"
        )
    return pi


def _infinite_horizon(game: MarkovGame) -> None:
    if game.horizon is not None or game.gamma >= 1:
        raise ValueError(
            "the TRPO/HATRPO penalty constant needs an infinite-horizon discounted game with gamma < 1, "
            f"got gamma={game.gamma}, horizon={game.horizon}"
        )


def check_order(order: Sequence[int], n_agents: int) -> tuple[int, ...]:
    """Validate ``order`` as a permutation of ``0..n_agents-1``."""
    try:
        out = tuple(int(i) for i in order)
    except (TypeError, ValueError) as exc:  # int("x") raises ValueError
        raise TypeError(f"order must be a sequence of agent indices, got {order!r}") from exc
    if sorted(out) != list(range(n_agents)):
        raise ValueError(f"order must be a permutation of 0..{n_agents - 1}, got {out}")
    return out


def penalty_constant(game: MarkovGame, pi: Policy) -> float:
    """``C = 4 gamma max_{s,a} |A_pi(s, a)| / (1 - gamma)^2`` (theory.md §1.3 eq. 2, §1.8).

    Raises ``ValueError`` for finite-horizon games (the bound is for the infinite discounted objective)."""
    game = _check_game(game)
    _infinite_horizon(game)
    pi = _product_policy(game, pi, "pi")
    eps = float(np.max(np.abs(advantage(game, pi))))
    return 4.0 * game.gamma * eps / (1.0 - game.gamma) ** 2


def _surrogate_terms(game: MarkovGame, pi: Factorized, new_pi: Factorized, order: tuple[int, ...]) -> list[float]:
    """``[L^{i_{1:m}}_pi(pibar^{i_{1:m-1}}, pibar^{i_m}) for m = 1..n]`` (Def. 2, improper rho)."""
    q = q_value(game, pi)
    rho = occupancy(game, pi)
    terms = []
    for m in range(1, len(order) + 1):
        agents = order[:m]
        terms.append(surrogate(game, pi, agents, [new_pi.tables[i] for i in agents], q=q, rho=rho))
    return terms


def first_order_terms(game: MarkovGame, pi: Policy, new_pi: Policy, order: Sequence[int]) -> float:
    """``sum_m L^{i_{1:m}}_pi(pibar^{i_{1:m-1}}, pibar^{i_m})`` (= ``L_pi(pibar) - J(pi)`` by Lemma 1, theory.md §1.8)."""
    game = _check_game(game)
    pi = _product_policy(game, pi, "pi")
    new_pi = _product_policy(game, new_pi, "new_pi")
    order = check_order(order, game.n_agents)
    return float(sum(_surrogate_terms(game, pi, new_pi, order)))


def lemma2_lower_bound(game: MarkovGame, pi: Policy, new_pi: Policy, order: Sequence[int]) -> float:
    """HATRPO Lemma 2 (theory.md §1.8): ``J(pi) + sum_m [L^{i_{1:m}}_pi(pibar^{i_{1:m-1}}, pibar^{i_m})
    - C Dmax_KL(pi^{i_m}, pibar^{i_m})]``, a lower bound on ``J(pibar)``; ``-inf`` if some KL is infinite
    and ``C > 0`` (with ``gamma = 0``, ``C = 0`` and ``0 * inf`` is taken as 0: the bound is then exact)."""
    game = _check_game(game)
    _infinite_horizon(game)
    pi = _product_policy(game, pi, "pi")
    new_pi = _product_policy(game, new_pi, "new_pi")
    order = check_order(order, game.n_agents)
    c = penalty_constant(game, pi)
    total = expected_return(game, pi)
    for agent, term in zip(order, _surrogate_terms(game, pi, new_pi, order)):
        d = max_kl(pi.tables[agent], new_pi.tables[agent])
        total += term - (0.0 if c == 0 or d == 0 else c * d)  # convention 0 * inf = 0 (gamma = 0)
    return float(total)
