"""``assert_monotone_improvement``: property-test a user's exact update rule for monotone ``J`` (theory.md §1.9
Theorem 2, §2.2 Theorem 14), with hypothesis shrinking any counterexample to a small game.

Public as :func:`seqmarl.testing.assert_monotone_improvement` (import it from there). Also the plumbing the other
helpers (:mod:`seqmarl._helpers`) share: :func:`run_cases` (hypothesis run that ends in a plain, shrunk
``AssertionError``), :func:`budget` (example counts scaled by the hypothesis profile), :func:`check_tol`, and
the game / policy descriptions of the failure messages.
"""

from __future__ import annotations

from typing import Callable, Sequence, TypeVar

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st
from hypothesis.strategies import SearchStrategy

from seqmarl.theory.evaluate import expected_return
from seqmarl.theory.games import random_game
from seqmarl.theory.markov_game import MarkovGame
from seqmarl.theory.policies import Factorized, Policy

__all__ = ["assert_monotone_improvement"]

T = TypeVar("T")

_SEEDS = st.integers(min_value=0, max_value=2**32 - 1)
_MIN_PROB = 0.05


def _fallback_games() -> SearchStrategy[MarkovGame]:
    """Small random games (theory.md §0) when :mod:`seqmarl._strategies` has no ``markov_games``."""

    @st.composite
    def build(draw: st.DrawFn) -> MarkovGame:
        n_agents = draw(st.integers(1, 3))
        counts = [draw(st.integers(2, 3)) for _ in range(n_agents)]
        n_states = draw(st.integers(1, 3))
        gamma = draw(st.sampled_from([0.0, 0.5, 0.9]))
        return random_game(np.random.default_rng(draw(_SEEDS)), n_agents, counts, n_states, gamma=gamma)

    return build()


def _default_games() -> SearchStrategy[MarkovGame]:
    try:
        from seqmarl import _strategies

        maker = getattr(_strategies, "markov_games", None)
        if callable(maker):
            strategy = maker()
            if isinstance(strategy, SearchStrategy):
                return strategy
    except Exception:  # pragma: no cover - only while the strategies module is unusable
        pass
    return _fallback_games()  # pragma: no cover


def _soft_product_policy(game: MarkovGame) -> SearchStrategy[Factorized]:
    """Random eta-soft product policies (HATRPO Assumption 1, eta = 0.05 mixed with Dirichlet(1) tables)."""

    @st.composite
    def build(draw: st.DrawFn) -> Factorized:
        rng = np.random.default_rng(draw(_SEEDS))
        tables = []
        for a in game.n_actions:
            eta = min(_MIN_PROB, 0.5 / a)
            tables.append(eta + (1.0 - a * eta) * rng.dirichlet(np.ones(a), size=game.n_states))
        return Factorized(tables)

    return build()


def _games_strategy(games: object) -> SearchStrategy[MarkovGame]:
    if games is None:
        return _default_games()
    if isinstance(games, SearchStrategy):
        return games
    if isinstance(games, MarkovGame):
        return st.just(games)
    try:
        items = list(games)  # type: ignore[call-overload]
    except TypeError as exc:
        raise TypeError(
            f"games must be None, a hypothesis strategy of MarkovGame or a sequence of MarkovGame, got {type(games).__name__}"
        ) from exc
    if not items or not all(isinstance(g, MarkovGame) for g in items):
        raise TypeError("games must be a non-empty sequence of MarkovGame")
    return st.sampled_from(items)


def _fmt(array: np.ndarray) -> str:
    return np.array2string(np.asarray(array), precision=4, separator=", ", suppress_small=True, max_line_width=120, threshold=2000)


def _describe(game: MarkovGame) -> str:
    return "\n".join(
        [
            f"game: {game.name!r}, n_agents={game.n_agents}, n_states={game.n_states}, n_actions={game.n_actions}, "
            f"gamma={game.gamma}, horizon={game.horizon}",
            f"reward[S, A1..An] =\n{_fmt(game.reward)}",
            f"transition[S, A1..An, S'] =\n{_fmt(game.transition)}",
            f"initial = {_fmt(game.initial)}",
        ]
    )


def _describe_policy(pi: Policy, label: str) -> str:
    if isinstance(pi, Factorized):
        return "\n".join(f"{label} table[{i}] (agent {i}, [S, A]) =\n{_fmt(t)}" for i, t in enumerate(pi.tables))
    return f"{label} joint probs [S, A1..An] =\n{_fmt(pi.probs())}"


class Counterexample(AssertionError):
    """A helper's failure raised inside hypothesis; :func:`run_cases` re-raises it as a plain ``AssertionError``
    (its message only, without hypothesis' notes) once shrinking is done."""


class _NotMonotone(Counterexample):
    """``J`` decreased along the update."""


DEFAULT_PROFILE_EXAMPLES = 100
"""hypothesis' default ``max_examples`` (also that of the ``seqmarl-ci`` profile): a helper's budget scale of 1."""


def budget(max_examples: int | None, default: int) -> int:
    """The number of examples a helper tries: ``max_examples`` when given, else ``default`` scaled by the loaded
    hypothesis profile, ``default * settings.default.max_examples / 100`` (``seqmarl-ci``: x1, ``seqmarl-thorough``:
    x10), at least 1."""
    if max_examples is not None:
        return _check_int(max_examples, "max_examples", 1)
    return max(1, round(default * settings.default.max_examples / DEFAULT_PROFILE_EXAMPLES))


def check_tol(tol: object, name: str = "tol") -> float:
    """A finite real ``>= 0`` or ``TypeError``/``ValueError`` naming ``name``."""
    if isinstance(tol, bool):
        raise TypeError(f"{name} must be a real number, got {tol!r}")
    try:
        value = float(tol)  # type: ignore[arg-type]
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must be a real number, got {tol!r}") from exc
    if not np.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {value}")
    return value


def run_cases(cases: SearchStrategy[T], body: Callable[[T], None], max_examples: int, seed: int | None) -> None:
    """Run ``body`` on ``max_examples`` hypothesis draws of ``cases`` (shrinking a failure, no deadline, no example
    database); a :class:`Counterexample` raised by ``body`` ends as a plain ``AssertionError`` with the message of
    the shrunk example. ``seed`` fixes hypothesis' own randomness."""
    __tracebackhide__ = True

    @settings(
        max_examples=max_examples,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
        report_multiple_bugs=False,
    )
    @given(cases)
    def check(case: T) -> None:
        body(case)

    if seed is not None:
        check = hypothesis_seed(seed)(check)
    try:
        check()
    except Counterexample as failure:  # the shrunk example, without hypothesis' notes
        raise AssertionError(str(failure)) from None


def _check_int(value: object, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def assert_monotone_improvement(
    update: Callable[[MarkovGame, Policy, np.random.Generator], Policy],
    games: SearchStrategy[MarkovGame] | Sequence[MarkovGame] | None = None,
    max_examples: int | None = None,
    tol: float = 1e-7,
    n_iters: int = 3,
    seed: int | None = None,
) -> None:
    """Assert ``J(pi_{k+1}) >= J(pi_k) - tol`` for ``n_iters`` steps of ``pi_{k+1} = update(game, pi_k, rng)``
    (the monotonic-improvement property of theory.md §1.9 Theorem 2 / §2.2 Theorem 14) on hypothesis-generated
    games and random eta-soft product policies (eta = 0.05). An example of a monotone rule is
    :func:`seqmarl.theory.iteration.hatrpo_exact`.

    ``update(game, pi, rng) -> Policy``: ``pi`` is a :class:`seqmarl.theory.Factorized` (later steps get what
    ``update`` returned); ``rng`` is ``numpy.random.default_rng`` of a drawn seed, so a failure is reproducible.
    ``max_examples``: the number of generated cases; ``None`` gives 50 scaled by the loaded hypothesis profile
    (``seqmarl-ci``: 50, ``seqmarl-thorough``: 500).
    ``games``: ``None`` (random games from :func:`seqmarl.testing.strategies.markov_games`), a hypothesis
    strategy of :class:`seqmarl.theory.MarkovGame`, or a list of games. ``seed`` fixes hypothesis' own
    randomness.

    On failure hypothesis shrinks the example and an ``AssertionError`` reports the shrunk game (sizes, gamma,
    reward, transition and initial arrays), every agent's policy table before and after the failing step, and
    ``J`` before and after; pytest shows it at the caller's line, without this helper's source."""
    __tracebackhide__ = True  # pytest: report the failure at the caller's line, not in this helper
    if not callable(update):
        raise TypeError(f"update must be callable (game, pi, rng) -> policy, got {update!r}")
    max_examples = budget(max_examples, 50)
    n_iters = _check_int(n_iters, "n_iters", 1)
    tol = check_tol(tol)
    if seed is not None:
        seed = _check_int(seed, "seed", 0)
    games_st = _games_strategy(games)

    @st.composite
    def cases(draw: st.DrawFn) -> tuple[MarkovGame, Factorized, int]:
        game = draw(games_st)
        if not isinstance(game, MarkovGame):
            raise TypeError(f"games must generate MarkovGame instances, got {type(game).__name__}")
        return game, draw(_soft_product_policy(game)), draw(_SEEDS)

    def check(case: tuple[MarkovGame, Factorized, int]) -> None:
        game, pi, rng_seed = case
        rng = np.random.default_rng(rng_seed)
        returns = [expected_return(game, pi)]
        current: Policy = pi
        for k in range(n_iters):
            nxt = update(game, current, rng)
            if not isinstance(nxt, Policy):
                raise TypeError(f"update must return a Policy, got {type(nxt).__name__}")
            j_next = expected_return(game, nxt)
            if not j_next >= returns[-1] - tol:
                raise _NotMonotone(
                    f"J decreased at step {k + 1} of {n_iters}: J(pi_{k}) = {returns[-1]:.12g} -> "
                    f"J(pi_{k + 1}) = {j_next:.12g} (drop {returns[-1] - j_next:.3g} > tol {tol:g})\n"
                    f"returns so far: {[float(f'{j:.12g}') for j in returns + [j_next]]}\n"
                    f"update rng seed: {rng_seed}\n"
                    + _describe(game)
                    + "\n"
                    + (_describe_policy(pi, "pi_0") + "\n" if k > 0 else "")
                    + _describe_policy(current, f"pi_{k} (before)")
                    + "\n"
                    + _describe_policy(nxt, f"pi_{k + 1} (after)")
                )
            returns.append(j_next)
            current = nxt

    run_cases(cases(), check, max_examples, seed)
