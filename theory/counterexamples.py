"""Counterexamples to simultaneous (MAPPO/IPPO-style) trust-region updates (theory.md §1.5, §1.9).

* :func:`a1a2_example` — the closed-form ICLR22 Fig. 1 game ``r(a^1, a^2) = a^1 a^2`` with Gaussian policies:
  the simultaneous trust-region step lowers ``J = mu^1 mu^2`` while the sequential one raises it.
* :func:`find_simultaneous_decrease` — a deterministic hypothesis search over small tabular games (2 agents,
  2 actions; one-shot or 2-state) and soft product policies for a start where one simultaneous step of an exact
  update (``theory.iteration``) lowers ``J`` while the sequential step, in every agent order, does not. Hypothesis
  shrinks what it finds to a minimal case (small integer rewards, probabilities near 1/2).

Why such cases exist ``[DERIVED]``: in a one-shot game ``J(p, q) = p^T R q`` is bilinear, so a simultaneous step
changes ``J`` by ``dp^T R q + p^T R dq + dp^T R dq``. Each agent's own term is its (non-negative) surrogate gain,
but the cross term ``dp^T R dq`` has no sign; near a point where both gradients are small the trust-region steps
still have full length and the cross term dominates. A sequential step makes each agent's surrogate the exact
change of ``J`` given its predecessors' new tables (one-shot), so it cannot decrease ``J`` (theory.md §1.9 Thm 2).
"""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Callable, Sequence

import numpy as np

from .evaluate import expected_return
from .games import ProductGaussianGame
from .markov_game import MarkovGame, matrix_game
from .policies import Factorized

REWARD_RANGE = 3  # rewards are integers in [-3, 3]
PROB_STEPS = 4  # a probability is 1/2 + k/10 with k in [-4, 4]
TRANSITION_STEPS = 4  # P(s' = 0 | s, a) = k/4 with k in [0, 4]
TWO_STATE_GAMMA = 0.5


# --- the §1.5 closed form ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class A1A2Example:
    """ICLR22 Fig. 1 (theory.md §1.5): means and returns of the simultaneous and sequential trust-region steps."""

    delta: float
    mu_start: tuple[float, float]
    mu_simultaneous: tuple[float, float]
    mu_sequential: tuple[tuple[float, float], tuple[float, float]]
    J_start: float
    J_simultaneous: float
    J_sequential_agent1: float
    J_sequential: float

    def values(self) -> tuple[float, float, float, float]:
        """``(J_start, J_simultaneous, J_after_agent_1, J_sequential)``."""
        return (self.J_start, self.J_simultaneous, self.J_sequential_agent1, self.J_sequential)

    def to_text(self) -> str:
        return (
            f"r=a1*a2, delta={self.delta:g}: start mu={self.mu_start} J={self.J_start:g}; simultaneous -> "
            f"mu={self.mu_simultaneous} J={self.J_simultaneous:g}; sequential -> mu={self.mu_sequential[0]} "
            f"J={self.J_sequential_agent1:g} -> mu={self.mu_sequential[1]} J={self.J_sequential:g}"
        )


def a1a2_example(delta: float = 0.5, mu: Sequence[float] = (-0.25, 0.25)) -> A1A2Example:
    """The ICLR22 Fig. 1 numbers from :meth:`ProductGaussianGame.trust_region_step` (unit variance, KL ball
    ``delta``): for ``delta = 0.5`` and ``mu = (-1/4, 1/4)`` the returns are ``-1/16, -9/16, 3/16, 15/16``
    (start, simultaneous, sequential after agent 1, sequential after agent 2)."""
    if isinstance(delta, bool) or not isinstance(delta, (int, float, np.integer, np.floating)):
        raise TypeError(f"delta must be a real number, got {type(delta).__name__}")
    game = ProductGaussianGame(1.0)
    start = game._means(mu)  # validates mu
    (sim,) = game.trust_region_step(start, float(delta), scheme="simultaneous")
    seq = game.trust_region_step(start, float(delta), scheme="sequential", order=(0, 1))

    def pair(m: np.ndarray) -> tuple[float, float]:
        return (float(m[0]), float(m[1]))

    return A1A2Example(
        delta=float(delta),
        mu_start=pair(start),
        mu_simultaneous=pair(sim),
        mu_sequential=(pair(seq[0]), pair(seq[1])),
        J_start=game.expected_return(start),
        J_simultaneous=game.expected_return(sim),
        J_sequential_agent1=game.expected_return(seq[0]),
        J_sequential=game.expected_return(seq[1]),
    )


def a1a2_exact(delta: Fraction | int = Fraction(1, 2), mu: Sequence[Fraction] = (Fraction(-1, 4), Fraction(1, 4))) -> tuple[Fraction, ...]:
    """The same four returns in exact rationals when ``sqrt(2 delta)`` is rational (``delta = 1/2`` gives step 1):
    ``J = mu1 mu2``; simultaneous step ``mu_i + sign(mu_j) h``; sequential agent 1 then agent 2 (theory.md §1.5)."""
    delta = Fraction(delta)
    h_sq = 2 * delta
    num, den = h_sq.numerator, h_sq.denominator
    rn, rd = int(round(num**0.5)), int(round(den**0.5))
    if rn * rn != num or rd * rd != den:
        raise ValueError(f"delta must make sqrt(2 delta) rational for the exact form, got {delta}")
    h = Fraction(rn, rd)
    m1, m2 = (Fraction(x) for x in mu)

    def sgn(x: Fraction) -> int:
        return (x > 0) - (x < 0)

    sim = (m1 + sgn(m2) * h, m2 + sgn(m1) * h)
    s1 = m1 + sgn(m2) * h
    s2 = m2 + sgn(s1) * h
    return (m1 * m2, sim[0] * sim[1], s1 * m2, s1 * s2)


# --- tabular search ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SimultaneousDecrease:
    """A start where one simultaneous step lowers ``J`` and the sequential step (every order) does not.

    ``J_sequential`` is the smallest ``J`` over the agent orders; ``J_sequential_by_order`` gives each.
    """

    game: MarkovGame
    policy: Factorized
    update_name: str
    options: dict
    J_old: float
    J_simultaneous: float
    J_sequential: float
    J_sequential_by_order: dict = field(default_factory=dict)
    simultaneous_policy: Factorized | None = None

    @property
    def decrease(self) -> float:
        """``J_old - J_simultaneous`` (> 0)."""
        return self.J_old - self.J_simultaneous

    def to_text(self) -> str:
        """One line: game, policy and the three returns."""
        g = self.game
        opts = ", ".join(f"{k}={v}" for k, v in self.options.items())
        if g.is_one_shot:
            game_txt = f"one-shot R={g.reward[0].tolist()}"
        else:
            game_txt = (
                f"{g.n_states}-state gamma={g.gamma:g} R={g.reward.tolist()} P(s'=0|s,a)={g.transition[..., 0].tolist()} "
                f"rho0={g.initial.tolist()}"
            )
        pol = "; ".join(
            f"pi{i + 1}(a=0|s)={[round(float(x), 6) for x in t[:, 0]]}" for i, t in enumerate(self.policy.tables)
        )
        seq = ", ".join(f"{o}: {j:.6g}" for o, j in self.J_sequential_by_order.items())
        return (
            f"{self.update_name}({opts}) on {game_txt}; {pol}: J_old={self.J_old:.6g}, "
            f"J_simultaneous={self.J_simultaneous:.6g} (decrease {self.decrease:.3g}), J_sequential={{{seq}}}"
        )


def build_case(case: tuple) -> tuple[MarkovGame, Factorized]:
    """Turn a raw integer case (as drawn by :func:`small_cases`) into ``(game, policy)``.

    ``("one-shot", R[2][2], (k1, k2))``: payoff ``R``, ``pi^i(0) = 1/2 + k_i/10``.
    ``("two-state", R[2][2][2], T[2][2][2], (k per agent per state))``: rewards ``R[s][a1][a2]``,
    ``P(s'=0|s,a) = T/4``, ``gamma = 1/2``, uniform initial state.
    """
    if not isinstance(case, tuple) or not case or case[0] not in ("one-shot", "two-state"):
        raise ValueError(f"case must be a tuple starting with 'one-shot' or 'two-state', got {case!r}")
    if case[0] == "one-shot":
        _, reward, ks = case
        game = matrix_game(np.array(reward, dtype=np.float64), name="one-shot 2x2")
        tables = [np.array([[0.5 + k / 10, 0.5 - k / 10]]) for k in ks]
        return game, Factorized(tables)
    _, reward, trans, ks = case
    p0 = np.array(trans, dtype=np.float64) / TRANSITION_STEPS
    transition = np.stack([p0, 1.0 - p0], axis=-1)
    game = MarkovGame(
        np.array(reward, dtype=np.float64), transition, TWO_STATE_GAMMA, np.full(2, 0.5), name="two-state 2x2"
    )
    tables = [np.array([[0.5 + k / 10, 0.5 - k / 10] for k in agent_ks]) for agent_ks in ks]
    return game, Factorized(tables)


def small_cases(one_shot: bool = True, two_state: bool = True):
    """Hypothesis strategy of raw cases for :func:`build_case` (integers, so shrinking gives simple numbers)."""
    from hypothesis import strategies as st

    if not (one_shot or two_state):
        raise ValueError("at least one of one_shot and two_state must be True")
    r = st.integers(-REWARD_RANGE, REWARD_RANGE)
    k = st.integers(-PROB_STEPS, PROB_STEPS)
    mat = st.lists(st.lists(r, min_size=2, max_size=2).map(tuple), min_size=2, max_size=2).map(tuple)
    options = []
    if one_shot:
        options.append(st.tuples(st.just("one-shot"), mat, st.tuples(k, k)))
    if two_state:
        tmat = st.lists(
            st.lists(st.integers(0, TRANSITION_STEPS), min_size=2, max_size=2).map(tuple), min_size=2, max_size=2
        ).map(tuple)
        options.append(
            st.tuples(
                st.just("two-state"), st.tuples(mat, mat), st.tuples(tmat, tmat), st.tuples(st.tuples(k, k), st.tuples(k, k))
            )
        )
    return st.one_of(*options)


def _default_update() -> Callable:
    from .iteration import hatrpo_kl_ball

    return hatrpo_kl_ball


def evaluate_case(
    update: Callable, game: MarkovGame, policy: Factorized, options: dict | None = None, rng_seed: int = 0
) -> SimultaneousDecrease:
    """Run one simultaneous step and the sequential step in every order from ``policy``; exact ``J`` throughout."""
    options = dict(options or {})
    rng = np.random.default_rng(rng_seed)
    j_old = expected_return(game, policy)
    sim = update(game, policy, rng, simultaneous=True, **options)
    by_order = {}
    for order in itertools.permutations(range(game.n_agents)):
        by_order[order] = expected_return(game, update(game, policy, rng, order=order, simultaneous=False, **options))
    return SimultaneousDecrease(
        game=game,
        policy=policy,
        update_name=getattr(update, "__name__", repr(update)),
        options=options,
        J_old=j_old,
        J_simultaneous=expected_return(game, sim),
        J_sequential=min(by_order.values()),
        J_sequential_by_order=by_order,
        simultaneous_policy=sim,
    )


def find_simultaneous_decrease(
    update: Callable | None = None,
    max_examples: int = 200,
    seed: int = 0,
    one_shot: bool = True,
    two_state: bool = True,
    min_decrease: float = 1e-6,
    **options: object,
) -> SimultaneousDecrease:
    """Hypothesis search (``hypothesis.find``, shrinking on) for a small case where

        J(simultaneous step) < J_old - min_decrease   and   J(sequential step, order o) >= J_old - 1e-9 for every o.

    ``update`` is one of the exact updates of ``theory.iteration``; ``options`` are passed to it. The default is
    ``hatrpo_kl_ball`` with ``delta=0.5`` (the KL radius of ICLR22 Fig. 1, theory.md §1.5, so the result is the
    tabular analogue of that figure; at ``delta=0.01`` the probability grid of :func:`small_cases` is too coarse
    to land close enough to indifference for the cross term to win). ``min_decrease`` defaults to 1e-6, well above the solvers' ~1e-8
    accuracy, so the decrease is not solver noise. The search is deterministic: no example database and a fixed
    ``random.Random(seed)``. Raises ``LookupError`` when ``max_examples`` draws find nothing.
    """
    from hypothesis import HealthCheck, Phase, find, settings, target
    from hypothesis.errors import NoSuchExample

    if update is None:
        update = _default_update()
        options.setdefault("delta", 0.5)
    if not callable(update):
        raise TypeError(f"update must be callable (game, pi, rng, order=, simultaneous=, **options), got {update!r}")
    if isinstance(max_examples, bool) or not isinstance(max_examples, (int, np.integer)) or max_examples < 1:
        raise ValueError(f"max_examples must be a positive integer, got {max_examples!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed must be an integer, got {type(seed).__name__}")
    if not np.isfinite(min_decrease) or min_decrease < 0:
        raise ValueError(f"min_decrease must be a finite number >= 0, got {min_decrease}")
    strategy = small_cases(one_shot, two_state)

    def condition(case: tuple) -> bool:
        game, policy = build_case(case)
        rng = np.random.default_rng(0)
        j_old = expected_return(game, policy)
        j_sim = expected_return(game, update(game, policy, rng, simultaneous=True, **options))
        target(float(j_old - j_sim), label="simultaneous decrease")
        if not j_sim < j_old - min_decrease:
            return False
        for order in itertools.permutations(range(game.n_agents)):
            new = update(game, policy, rng, order=order, simultaneous=False, **options)
            if expected_return(game, new) < j_old - 1e-9:
                return False
        return True

    config = settings(
        max_examples=int(max_examples),
        database=None,
        deadline=None,
        derandomize=False,
        phases=[Phase.generate, Phase.target, Phase.shrink],
        suppress_health_check=list(HealthCheck),
    )
    try:
        case = find(strategy, condition, settings=config, random=random.Random(int(seed)))
    except NoSuchExample as exc:
        raise LookupError(
            f"no simultaneous-decrease case found in {max_examples} examples for {getattr(update, '__name__', update)}"
        ) from exc
    game, policy = build_case(case)
    return evaluate_case(update, game, policy, options)
