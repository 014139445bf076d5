"""The finite cooperative Markov game, the object every exact oracle works on.

theory.md §0: a game is ``<N, S, A = prod_i A^i, P, r, gamma, rho^0>`` with a shared reward.
A matrix (one-shot) game is ``S = 1`` with ``gamma = 0``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

STOCHASTIC_TOL = 1e-9


def _has_complex(value: object) -> bool:
    if isinstance(value, complex):
        return True
    if isinstance(value, (list, tuple)):
        return any(_has_complex(v) for v in value)
    return bool(np.iscomplexobj(value))


def _as_float_array(value: object, name: str) -> np.ndarray:
    if _has_complex(value):
        raise TypeError(f"{name} must be an array of real numbers, got complex values")
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must be an array of real numbers, got {type(value).__name__}") from exc
    return array


def check_distribution(array: np.ndarray, name: str, axis: int = -1, tol: float = STOCHASTIC_TOL) -> None:
    """Raise ``ValueError`` unless ``array`` is non-negative and sums to 1 along ``axis``."""
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} must be finite; it contains NaN or inf")
    if np.any(array < -tol):
        raise ValueError(f"{name} must be non-negative; smallest entry is {array.min():.3g}")
    sums = np.asarray(array.sum(axis=axis))
    if sums.size:
        deviation = np.abs(sums - 1.0)
        worst_sum = float(sums.reshape(-1)[int(np.argmax(deviation))])
        if float(deviation.max()) > tol:
            raise ValueError(
                f"{name} must sum to 1 along axis {axis} (tolerance {tol:g}); worst row sums to {worst_sum:.12g}"
            )


@dataclass(frozen=True, eq=False)
class MarkovGame:
    """A finite, fully cooperative Markov game (validated, immutable).

    Attributes:
        reward: ``r[s, a^1, ..., a^n]``, shape ``[S, A1, ..., An]``.
        transition: ``P[s, a^1, ..., a^n, s']``, shape ``[S, A1, ..., An, S]``; rows sum to 1.
        gamma: discount in ``[0, 1)``; ``gamma = 1`` is allowed only with a finite ``horizon``.
        initial: ``rho^0[s]``, shape ``[S]``; sums to 1.
        horizon: ``None`` for the infinite discounted objective, else the number of steps ``H``
            of the finite-horizon objective ``J = E[sum_{t<H} gamma^t r_t]``.
        name: a label used in reports.
    """

    reward: np.ndarray
    transition: np.ndarray
    gamma: float
    initial: np.ndarray
    horizon: int | None = None
    name: str = "game"
    action_names: tuple[tuple[str, ...], ...] | None = field(default=None)

    def __post_init__(self) -> None:
        reward = _as_float_array(self.reward, "reward")
        transition = _as_float_array(self.transition, "transition")
        initial = _as_float_array(self.initial, "initial")
        if reward.ndim < 2:
            raise ValueError(
                f"reward must have shape [S, A1, ..., An] with n >= 1 agents, got shape {reward.shape}"
            )
        n_states = reward.shape[0]
        n_actions = reward.shape[1:]
        if n_states < 1 or any(a < 1 for a in n_actions):
            raise ValueError(f"reward has an empty axis: shape {reward.shape}")
        expected_transition = (n_states, *n_actions, n_states)
        if transition.shape != expected_transition:
            raise ValueError(
                f"transition must have shape [S, A1, ..., An, S] = {expected_transition}, got {transition.shape}"
            )
        if initial.shape != (n_states,):
            raise ValueError(f"initial must have shape [S] = ({n_states},), got {initial.shape}")
        if not np.all(np.isfinite(reward)):
            raise ValueError("reward must be finite; it contains NaN or inf")
        check_distribution(transition, "transition", axis=-1)
        check_distribution(initial, "initial", axis=-1)
        if isinstance(self.gamma, (bool, np.bool_, str, bytes)):  # float("0.9") would silently accept a string
            raise TypeError(f"gamma must be a real number, got {self.gamma!r}")
        try:
            gamma = float(self.gamma)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"gamma must be a real number, got {self.gamma!r}") from exc
        horizon = self.horizon
        if horizon is not None:
            if isinstance(horizon, bool) or not isinstance(horizon, (int, np.integer)) or horizon < 1:
                raise ValueError(f"horizon must be a positive integer or None, got {horizon!r}")
            horizon = int(horizon)
        if not np.isfinite(gamma) or gamma < 0 or gamma > 1:
            raise ValueError(f"gamma must lie in [0, 1), got {gamma}")
        if gamma == 1 and horizon is None:
            raise ValueError("gamma = 1 needs a finite horizon (pass horizon=H); otherwise use gamma < 1")
        for name, value in (("reward", reward), ("transition", transition), ("initial", initial)):
            value.setflags(write=False)
            object.__setattr__(self, name, value)
        object.__setattr__(self, "gamma", gamma)
        object.__setattr__(self, "horizon", horizon)
        if self.action_names is not None:
            names = tuple(tuple(str(x) for x in agent) for agent in self.action_names)
            if len(names) != len(n_actions) or any(len(a) != k for a, k in zip(names, n_actions)):
                raise ValueError(f"action_names must give {n_actions} names per agent, got {names}")
            object.__setattr__(self, "action_names", names)

    # --- shape helpers -------------------------------------------------------------------------
    @property
    def n_agents(self) -> int:
        return self.reward.ndim - 1

    @property
    def n_states(self) -> int:
        return self.reward.shape[0]

    @property
    def n_actions(self) -> tuple[int, ...]:
        return tuple(self.reward.shape[1:])

    @property
    def n_joint_actions(self) -> int:
        return int(np.prod(self.n_actions))

    @property
    def is_one_shot(self) -> bool:
        """True for a matrix game: one state and no future (``gamma = 0`` or ``horizon = 1``)."""
        return self.n_states == 1 and (self.gamma == 0 or self.horizon == 1)

    def reward_flat(self) -> np.ndarray:
        """``r`` reshaped to ``[S, |A|]`` (joint actions in C order)."""
        return self.reward.reshape(self.n_states, -1)

    def transition_flat(self) -> np.ndarray:
        """``P`` reshaped to ``[S, |A|, S]``."""
        return self.transition.reshape(self.n_states, -1, self.n_states)

    def __repr__(self) -> str:
        return (
            f"MarkovGame(name={self.name!r}, n_agents={self.n_agents}, n_states={self.n_states}, "
            f"n_actions={self.n_actions}, gamma={self.gamma}, horizon={self.horizon})"
        )


def matrix_game(payoff: np.ndarray, name: str = "matrix", action_names: Sequence[Sequence[str]] | None = None) -> MarkovGame:
    """A one-shot game ``S = 1, gamma = 0`` from a payoff tensor ``[A1, ..., An]``."""
    payoff = _as_float_array(payoff, "payoff")
    if payoff.ndim < 1:
        raise ValueError(f"payoff must have one axis per agent, got shape {payoff.shape}")
    reward = payoff[None, ...]
    transition = np.ones(reward.shape + (1,))
    return MarkovGame(
        reward=reward,
        transition=transition,
        gamma=0.0,
        initial=np.ones(1),
        name=name,
        action_names=None if action_names is None else tuple(tuple(a) for a in action_names),
    )
