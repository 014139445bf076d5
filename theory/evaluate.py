"""Exact policy evaluation by linear solves (theory.md §0), vectorised over joint actions.

    P_pi(s'|s) = sum_a pi(a|s) P(s'|s,a),   r_pi(s) = sum_a pi(a|s) r(s,a)
    V_pi = (I - gamma P_pi)^{-1} r_pi,       Q_pi(s,a) = r(s,a) + gamma sum_s' P(s'|s,a) V_pi(s')
    A_pi = Q_pi - V_pi,                      rho_pi = (I - gamma P_pi^T)^{-1} rho^0   (improper),
    J(pi) = rho^0 . V_pi.

With a finite ``horizon`` H the same quantities are the t = 0 values of the stationary policy over H steps:
``V_H = sum_{t<H} (gamma P_pi)^t r_pi``, ``Q = r + gamma P V_{H-1}``, ``rho = sum_{t<H} (gamma P_pi^T)^t rho^0``.
:func:`advantage` refuses such games (``H > 1``): ``Q_H - V_H`` is a t = 0 quantity, and the performance-difference
identity ``J(pibar) - J(pi) = sum_s rho_pibar(s) E_pibar[A_pi(s, .)]`` fails for it (the advantage of a
finite-horizon problem depends on the time step).
"""

from __future__ import annotations

import numpy as np

from .markov_game import MarkovGame
from .policies import Policy, joint_probs

PolicyLike = Policy | np.ndarray


def _check_game(game: object) -> MarkovGame:
    if not isinstance(game, MarkovGame):
        raise TypeError(f"game must be a MarkovGame, got {type(game).__name__}")
    return game


def policy_arrays(game: MarkovGame, pi: PolicyLike) -> np.ndarray:
    """``pi(a|s)`` flattened to ``[S, |A|]`` after checking it matches ``game``."""
    probs = joint_probs(pi, game.n_states, game.n_actions)
    return probs.reshape(game.n_states, -1)


def induced_chain(game: MarkovGame, pi: PolicyLike) -> tuple[np.ndarray, np.ndarray]:
    """``(P_pi [S, S], r_pi [S])`` by contraction over joint actions."""
    game = _check_game(game)
    p = policy_arrays(game, pi)
    p_pi = np.einsum("sa,sat->st", p, game.transition_flat())
    r_pi = np.einsum("sa,sa->s", p, game.reward_flat())
    return p_pi, r_pi


def _values_finite_horizon(game: MarkovGame, p_pi: np.ndarray, r_pi: np.ndarray, steps: int) -> np.ndarray:
    v = np.zeros(game.n_states)
    for _ in range(steps):
        v = r_pi + game.gamma * p_pi @ v
    return v


def value(game: MarkovGame, pi: PolicyLike) -> np.ndarray:
    """``V_pi [S]`` (theory.md §0), by ``np.linalg.solve`` (never an explicit inverse)."""
    p_pi, r_pi = induced_chain(game, pi)
    if game.horizon is not None:
        return _values_finite_horizon(game, p_pi, r_pi, game.horizon)
    return np.linalg.solve(np.eye(game.n_states) - game.gamma * p_pi, r_pi)


def q_from_values(game: MarkovGame, next_values: np.ndarray) -> np.ndarray:
    """``Q(s,a) = r(s,a) + gamma sum_s' P(s'|s,a) V(s')`` ``[S, A1..An]``."""
    q = game.reward_flat() + game.gamma * game.transition_flat() @ next_values
    return q.reshape(game.reward.shape)


def q_value(game: MarkovGame, pi: PolicyLike) -> np.ndarray:
    """``Q_pi [S, A1, ..., An]``."""
    game = _check_game(game)
    if game.horizon is not None:
        p_pi, r_pi = induced_chain(game, pi)
        return q_from_values(game, _values_finite_horizon(game, p_pi, r_pi, game.horizon - 1))
    return q_from_values(game, value(game, pi))


def check_stationary_advantage(game: MarkovGame, caller: str) -> None:
    """Raise ``ValueError`` naming ``game`` if it has a finite horizon ``H > 1`` (theory.md §0: the advantage,
    the surrogates and estimators built on it are those of the infinite-horizon discounted objective; with
    ``H = 1`` the t = 0 quantities are the whole problem and the identities hold)."""
    if game.horizon is not None and game.horizon > 1:
        raise ValueError(
            f"{caller}: game has a finite horizon (horizon={game.horizon}): the advantage A_pi = Q_pi - V_pi of a "
            "stationary policy is time-dependent there, and the t = 0 quantities Q_H - V_H do not satisfy the "
            "performance-difference identity; use an infinite-horizon discounted game (horizon=None) or horizon=1"
        )


def advantage(game: MarkovGame, pi: PolicyLike) -> np.ndarray:
    """``A_pi(s,a) = Q_pi(s,a) - V_pi(s)`` ``[S, A1..An]`` (theory.md §0). ``ValueError`` for a game with a finite
    horizon ``H > 1`` (see :func:`check_stationary_advantage`)."""
    game = _check_game(game)
    check_stationary_advantage(game, "advantage")
    q = q_value(game, pi)
    v = value(game, pi)
    return q - v.reshape((-1,) + (1,) * game.n_agents)


def occupancy(game: MarkovGame, pi: PolicyLike) -> np.ndarray:
    """Improper discounted occupancy ``rho_pi = sum_t gamma^t Pr(s_t = s)`` ``[S]``;
    it sums to ``1/(1-gamma)`` in the infinite-horizon case."""
    p_pi, _ = induced_chain(game, pi)
    if game.horizon is not None:
        rho = np.zeros(game.n_states)
        d = game.initial.copy()
        for _ in range(game.horizon):
            rho += d
            d = game.gamma * p_pi.T @ d
        return rho
    return np.linalg.solve(np.eye(game.n_states) - game.gamma * p_pi.T, game.initial)


def expected_return(game: MarkovGame, pi: PolicyLike) -> float:
    """``J(pi) = rho^0 . V_pi``. For a one-shot game this is ``sum_a pi(a) r(a)`` (no solve)."""
    game = _check_game(game)
    if game.n_states == 1 and (game.gamma == 0 or game.horizon == 1):
        p = policy_arrays(game, pi)
        return float(p[0] @ game.reward_flat()[0])
    return float(game.initial @ value(game, pi))


def state_distribution(game: MarkovGame, pi: PolicyLike) -> np.ndarray:
    """The normalised occupancy ``rho_pi / sum(rho_pi)`` (a probability vector)."""
    rho = occupancy(game, pi)
    return rho / rho.sum()
