"""The games the literature uses as oracles (theory.md §1.4, §1.5, §3.1, §7.6, §8) and random games."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from .markov_game import MarkovGame, matrix_game


def _check_int(value: object, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


MAX_GAME_BYTES = 4 * 2**30  # reward + transition tables above this are refused before allocating


def check_game_size(n_states: int, n_actions: Sequence[int] | tuple[int, int], what: str) -> None:
    """Raise ``ValueError`` if the game's reward and transition tables (float64) would exceed
    :data:`MAX_GAME_BYTES`, naming the size they would need. ``n_actions`` is one count per agent, or
    ``(count, n_agents)`` given as a dict ``{"each": count, "agents": n}`` for huge agent numbers."""
    if isinstance(n_actions, dict):
        each, agents = int(n_actions["each"]), int(n_actions["agents"])
        joint = 1 if each <= 1 else each ** agents if agents < 4096 else 2**4096
    else:
        joint = 1
        for a in n_actions:
            joint *= int(a)
    need = 8 * n_states * joint * (1 + n_states)
    if need > MAX_GAME_BYTES:
        gib = f"{need / 2**30:,.1f}" if need < 2**1000 else f"more than 2^{need.bit_length() - 31:,}"
        count = f"{joint:,}" if joint < 10**30 else f"about 2^{joint.bit_length() - 1:,}"
        raise ValueError(f"{what} has {count} joint actions x {n_states} state(s): its reward and transition "
                         f"tables would need {gib} GiB (limit {MAX_GAME_BYTES / 2**30:.0f} GiB, "
                         "seqmarl.theory.games.MAX_GAME_BYTES)")


def _check_number(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a real number, got {value!r} ({type(value).__name__})")
    return float(value)


def xor(n: int = 2) -> MarkovGame:
    """HATRPO Prop. 1 game [SOURCE: ICLR22 §1.4]: n (even) agents with actions {0, 1};
    ``r(0^{n/2}, 1^{n/2}) = r(1^{n/2}, 0^{n/2}) = 1`` and 0 otherwise. ``xor(2)`` is Fu et al.'s XOR.
    """
    n = _check_int(n, "n", 2)
    if n % 2:
        raise ValueError(f"n must be even (the first half plays one action, the second half the other), got {n}")
    check_game_size(1, {"each": 2, "agents": n}, f"xor(n={n})")
    payoff = np.zeros((2,) * n)
    half = n // 2
    payoff[(0,) * half + (1,) * half] = 1.0
    payoff[(1,) * half + (0,) * half] = 1.0
    return matrix_game(payoff, name=f"xor({n})")


def permutation(n: int = 3) -> MarkovGame:
    """Fu et al.'s n-player permutation game [SOURCE: Fu-code]: n agents with n actions each,
    reward 1 iff all actions are distinct."""
    n = _check_int(n, "n", 2)
    check_game_size(1, {"each": n, "agents": n}, f"permutation(n={n})")
    grids = np.indices((n,) * n).reshape(n, -1).T
    ordered = np.sort(grids, axis=1)
    distinct = np.all(np.diff(ordered, axis=1) != 0, axis=1).astype(np.float64)
    return matrix_game(distinct.reshape((n,) * n), name=f"permutation({n})")


def climbing() -> MarkovGame:
    """Climbing game (theory.md §8): pure NE (a,a)=11 and (b,b)=7."""
    payoff = np.array([[11.0, -30.0, 0.0], [-30.0, 7.0, 6.0], [0.0, 0.0, 5.0]])
    return matrix_game(payoff, name="climbing", action_names=[("a", "b", "c")] * 2)


def penalty(k: float = -100.0) -> MarkovGame:
    """Penalty game with miscoordination penalty ``k <= 0`` (theory.md §8)."""
    k = _check_number(k, "k")
    if not np.isfinite(k) or k > 0:
        raise ValueError(f"k must be a finite number <= 0, got {k}")
    payoff = np.array([[10.0, 0.0, k], [0.0, 2.0, 0.0], [k, 0.0, 10.0]])
    return matrix_game(payoff, name=f"penalty({k:g})", action_names=[("a", "b", "c")] * 2)


def qtran() -> MarkovGame:
    """The QTRAN / QPLEX one-step matrix game (theory.md §7.6)."""
    payoff = np.array([[8.0, -12.0, -12.0], [-12.0, 0.0, 0.0], [-12.0, 0.0, 0.0]])
    return matrix_game(payoff, name="qtran", action_names=[("A", "B", "C")] * 2)


def random_game(
    rng: np.random.Generator,
    n_agents: int = 2,
    n_actions: int | Sequence[int] = 2,
    n_states: int = 2,
    gamma: float = 0.9,
    dirichlet_alpha: float = 1.0,
) -> MarkovGame:
    """A random game as in theory.md §0: Dirichlet(alpha) transitions and initial state,
    standard Gaussian rewards. ``n_actions`` may be one count for all or one per agent."""
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    n_agents = _check_int(n_agents, "n_agents", 1)
    n_states = _check_int(n_states, "n_states", 1)
    if isinstance(n_actions, (int, np.integer)):
        check_game_size(n_states, {"each": _check_int(n_actions, "n_actions", 1), "agents": n_agents},
                        f"random_game(n_agents={n_agents}, n_actions={n_actions}, n_states={n_states})")
        actions = (_check_int(n_actions, "n_actions", 1),) * n_agents
    else:
        actions = tuple(_check_int(a, "n_actions[i]", 1) for a in n_actions)
        if len(actions) != n_agents:
            raise ValueError(f"n_actions must have one entry per agent ({n_agents}), got {len(actions)}")
    dirichlet_alpha = _check_number(dirichlet_alpha, "dirichlet_alpha")
    gamma = _check_number(gamma, "gamma")
    if not np.isfinite(dirichlet_alpha) or dirichlet_alpha <= 0:
        raise ValueError(f"dirichlet_alpha must be > 0, got {dirichlet_alpha}")
    check_game_size(n_states, actions, f"random_game(n_states={n_states}, n_actions={actions})")
    shape = (n_states, *actions)
    reward = rng.standard_normal(shape)
    transition = rng.dirichlet(np.full(n_states, dirichlet_alpha), size=shape)
    initial = rng.dirichlet(np.full(n_states, dirichlet_alpha))
    return MarkovGame(reward, transition, gamma, initial, name=f"random{shape}")


def game_from_name(name: str, **kwargs: object) -> MarkovGame:
    """Look up a named game: ``xor``, ``permutation``, ``climbing``, ``penalty``, ``qtran``."""
    table = {"xor": xor, "permutation": permutation, "climbing": climbing, "penalty": penalty, "qtran": qtran}
    if name not in table:
        raise ValueError(f"unknown game {name!r}; known games: {sorted(table)}")
    return table[name](**kwargs)  # type: ignore[operator]


@dataclass(frozen=True)
class ProductGaussianGame:
    """The one-state differential game of HATRPO Fig. 1 (theory.md §1.5): ``r(a^1, a^2) = a^1 a^2``
    with ``a^i ~ N(mu^i, sigma^2)`` (``sigma = 1`` in the paper).

    ``J(mu) = mu^1 mu^2`` (independence), ``KL(N(mu,s^2) || N(mu',s^2)) = (mu - mu')^2 / (2 s^2)``.
    """

    sigma: float = 1.0

    def __post_init__(self) -> None:
        if not np.isfinite(self.sigma) or self.sigma <= 0:
            raise ValueError(f"sigma must be a positive finite number, got {self.sigma}")

    @staticmethod
    def _means(mu: Sequence[float]) -> np.ndarray:
        mu = np.asarray(mu, dtype=np.float64)
        if mu.shape != (2,) or not np.all(np.isfinite(mu)):
            raise ValueError(f"mu must be two finite means (mu1, mu2), got {mu}")
        return mu

    def expected_return(self, mu: Sequence[float]) -> float:
        """``J(mu) = E[a^1 a^2] = mu^1 mu^2``."""
        m = self._means(mu)
        return float(m[0] * m[1])

    def gradient(self, mu: Sequence[float]) -> np.ndarray:
        """``grad J = (mu^2, mu^1)``."""
        m = self._means(mu)
        return np.array([m[1], m[0]])

    def kl(self, mu_old: float, mu_new: float) -> float:
        """``KL(N(mu_old, s^2) || N(mu_new, s^2)) = (mu_old - mu_new)^2 / (2 s^2)``."""
        return float((mu_old - mu_new) ** 2 / (2 * self.sigma**2))

    def max_step(self, delta: float) -> float:
        """Largest ``|d mu|`` with KL <= delta: ``sigma * sqrt(2 delta)``."""
        if not np.isfinite(delta) or delta <= 0:
            raise ValueError(f"delta must be a positive finite KL radius, got {delta}")
        return float(self.sigma * np.sqrt(2 * delta))

    def trust_region_step(self, mu: Sequence[float], delta: float, scheme: str = "sequential", order: Sequence[int] = (0, 1)) -> list[np.ndarray]:
        """Exact per-agent trust-region steps. Each agent's surrogate is linear in its own mean, so
        its maximiser in the KL ball is the boundary point ``mu^i + sign(dJ/dmu^i) sigma sqrt(2 delta)``.

        ``scheme="simultaneous"``: every agent steps against the old means (MAPPO/IPPO style).
        ``scheme="sequential"``: agents step in ``order``, each against the already-updated means (HATRPO).
        Returns the list of mean vectors after each step (one entry for simultaneous).
        """
        m = self._means(mu).copy()
        step = self.max_step(delta)
        if scheme == "simultaneous":
            return [m + np.sign(self.gradient(m)) * step]
        if scheme != "sequential":
            raise ValueError(f"scheme must be 'sequential' or 'simultaneous', got {scheme!r}")
        if sorted(order) != [0, 1]:
            raise ValueError(f"order must be a permutation of (0, 1), got {tuple(order)}")
        path = []
        for agent in order:
            m = m.copy()
            m[agent] += np.sign(self.gradient(m)[agent]) * step
            path.append(m)
        return path


def all_joint_actions(n_actions: Sequence[int]) -> np.ndarray:
    """Every joint action as rows of an int array ``[|A|, n]`` in C order."""
    return np.array(list(itertools.product(*[range(a) for a in n_actions])), dtype=np.int64).reshape(-1, len(n_actions))
