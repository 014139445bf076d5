"""Assertion helpers for a user's algorithm, each failing with a readable (and, on generated games, shrunk)
counterexample. Public in :mod:`seqmarl.testing`:

* :func:`assert_reaches_optimum` — ``J(pi) >= J* - tol`` for the policy a train function returns, with ``J*`` the
  exact joint optimum (theory.md §0, §1.4);
* :func:`assert_epsilon_nash` — ``max_i BR_i(pi^{-i}) - J(pi) <= eps`` (ICLR22 Def. 3, theory.md §1.9);
* :func:`assert_advantage_decomposition` — a user's multi-agent advantages against ICLR22 Lemma 1,
  ``A^{i_{1:m}}(s, a^{i_{1:m}}) = sum_{j<=m} A^{i_j}(s, a^{i_{1:j-1}}, a^{i_j})`` (theory.md §1.6), and against the
  exact values ``A^{agents}(s, a^{given}, a^{agents}) = Q^{given, agents} - Q^{given}`` (HATRPO eq. 1).
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np
from hypothesis import strategies as st
from hypothesis.strategies import SearchStrategy

from seqmarl import _strategies as sst
from seqmarl._adapters import _game_and_env, is_train_function, tabular_policy
from seqmarl._assertions import (
    _SEEDS,
    Counterexample,
    _check_int,
    _describe,
    _describe_policy,
    _fmt,
    _games_strategy,
    budget,
    check_tol,
    run_cases,
)
from seqmarl.theory import multiagent
from seqmarl.theory.evaluate import expected_return, q_value
from seqmarl.theory.markov_game import MarkovGame
from seqmarl.theory.policies import Factorized, Policy

__all__ = ["assert_reaches_optimum", "assert_epsilon_nash", "assert_advantage_decomposition"]

TrainFn = Callable[[MarkovGame, np.random.Generator], Any]
AdvantageFn = Callable[[MarkovGame, Factorized, tuple[int, ...], tuple[int, ...]], Any]
_PRODUCT_TOL = 1e-9


class _NotOptimal(Counterexample):
    """``J(pi) < J* - tol``."""


class _NotNash(Counterexample):
    """Some agent gains more than ``eps`` by deviating alone."""


class _NotDecomposed(Counterexample):
    """The user's advantages break Lemma 1 or differ from the exact ones."""


# --- shared plumbing -----------------------------------------------------------------------------------


def _check_seed(seed: object) -> int | None:
    return None if seed is None else _check_int(seed, "seed", 0)


def _check_callable(fn: object, name: str, signature: str) -> None:
    if not callable(fn):
        raise TypeError(f"{name} must be callable {signature}, got {type(fn).__name__}")


def _train(train_fn: TrainFn, game: MarkovGame, rng_seed: int, obs: str | None) -> Policy:
    """``tabular_policy(train_fn(game, rng), game)`` with ``rng = default_rng(rng_seed)``."""
    result = train_fn(game, np.random.default_rng(rng_seed))
    try:
        return tabular_policy(result, game, obs=obs)
    except (TypeError, ValueError) as exc:
        raise type(exc)(f"train_fn returned something that is not a policy of the game: {exc}") from None


def _over_games(game: object, body: Callable[[MarkovGame, int], None], max_examples: int, seed: int | None) -> None:
    """``body(game, rng_seed)`` once for a single game (rng seed ``seed`` or 0), else on hypothesis-drawn games."""
    __tracebackhide__ = True
    if isinstance(game, MarkovGame):
        try:
            body(game, 0 if seed is None else seed)
        except Counterexample as failure:
            raise AssertionError(str(failure)) from None
        return
    games = _games_strategy(game)
    cases = st.tuples(games, _SEEDS)

    def check(case: tuple[MarkovGame, int]) -> None:
        g, rng_seed = case
        if not isinstance(g, MarkovGame):
            raise TypeError(f"game must generate MarkovGame instances, got {type(g).__name__}")
        body(g, rng_seed)

    run_cases(cases, check, max_examples, seed)


def _as_product(pi: Policy, name: str = "policy") -> Factorized:
    """``pi`` as a product policy: itself, or the product of its marginals when ``pi(a|s) = prod_i pi^i(a^i|s)``."""
    if isinstance(pi, Factorized):
        return pi
    marginals = pi.marginals()
    gap = float(np.abs(Factorized(marginals).probs() - pi.probs()).max())
    if gap > _PRODUCT_TOL:
        raise ValueError(f"{name} is a correlated joint policy (max |pi(a|s) - prod_i pi^i(a^i|s)| = {gap:.3g}); "
                         "an eps-Nash equilibrium (ICLR22 Def. 3) is defined for product policies")
    return Factorized(marginals)


# --- assert_reaches_optimum -----------------------------------------------------------------------------


def assert_reaches_optimum(
    train_fn: TrainFn,
    game: MarkovGame | Sequence[MarkovGame] | SearchStrategy[MarkovGame],
    tol: float = 1e-6,
    *,
    max_examples: int | None = None,
    seed: int | None = None,
    obs: str | None = None,
) -> None:
    """Assert ``J(pi) >= J* - tol`` for ``pi = train_fn(game, rng)``, where ``J(pi) = rho^0 . V_pi`` is evaluated
    exactly and ``J* = max_pi J(pi)`` is the joint optimum of :func:`seqmarl.theory.optima.joint_optimum`
    (for a finite-horizon game the non-stationary optimum, which a stationary policy may not reach).

    ``train_fn(game, rng) -> policy``: anything :func:`seqmarl.testing.tabular_policy` reads (a tabular policy,
    tables, a ``seqmarl.algos`` agent, a torch policy); ``rng`` is ``numpy.random.default_rng(seed)``.
    ``game``: one game (trained once, rng seed ``seed`` or 0), a list of games or a hypothesis strategy of games
    (``max_examples`` draws, 10 scaled by the hypothesis profile when ``None``; a failure is shrunk).

    The ``AssertionError`` states ``J(pi)``, ``J*`` and the gap, an optimal joint action per state, the game's
    arrays and the returned policy's tables."""
    __tracebackhide__ = True
    _check_callable(train_fn, "train_fn", "(game, rng) -> policy")
    tol = check_tol(tol)
    seed = _check_seed(seed)
    n = budget(max_examples, 10)
    from seqmarl.theory.optima import joint_optimum

    def body(g: MarkovGame, rng_seed: int) -> None:
        pi = _train(train_fn, g, rng_seed, obs)
        j, best = expected_return(g, pi), joint_optimum(g)
        if j >= best.value - tol:
            return
        actions = "; ".join(f"s{s}: {tuple(int(x) for x in a)}" for s, a in enumerate(best.actions))
        raise _NotOptimal(
            f"J(pi) = {j:.12g} is {best.value - j:.3g} below the joint optimum J* = {best.value:.12g} (tol {tol:g})\n"
            f"J* by {best.detail}; an optimal joint action per state: {actions}\n"
            f"train_fn rng seed: {rng_seed}\n" + _describe(g) + "\n" + _describe_policy(pi, "returned policy")
        )

    _over_games(game, body, n, seed)


# --- assert_epsilon_nash -----------------------------------------------------------------------------------


def assert_epsilon_nash(
    policy_or_fn: object,
    game: MarkovGame | Sequence[MarkovGame] | SearchStrategy[MarkovGame],
    eps: float = 1e-6,
    *,
    max_examples: int | None = None,
    seed: int | None = None,
    obs: str | None = None,
) -> None:
    """Assert ``pi`` is an ``eps``-Nash equilibrium: ``max_i [max_{pi'^i} J(pi'^i, pi^{-i}) - J(pi)] <= eps``
    (ICLR22 Def. 3, theory.md §1.9), every best response solved exactly as agent ``i``'s MDP with ``pi^{-i}`` fixed
    (:func:`seqmarl.theory.optima.best_response_value`).

    ``policy_or_fn``: a policy of ``game`` (anything :func:`seqmarl.testing.tabular_policy` reads; ``game`` must
    then be one game) or a train function ``fn(game, rng) -> policy`` (a plain function, method or
    ``functools.partial``; ``game`` may then also be a list or a strategy of games, as in
    :func:`assert_reaches_optimum`). The policy must be a product ``prod_i pi^i`` (a joint table that factorises
    is accepted). The ``AssertionError`` lists every agent's best-response value and gain, the game and the
    policy's tables."""
    __tracebackhide__ = True
    eps = check_tol(eps, "eps")
    seed = _check_seed(seed)
    n = budget(max_examples, 10)
    from seqmarl.theory.optima import best_response_value

    def body_for(pi: Policy, g: MarkovGame, origin: str) -> None:
        tables = _as_product(pi)
        j = expected_return(g, tables)
        responses = [best_response_value(g, tables, i) for i in range(g.n_agents)]
        gains = [br - j for br in responses]
        worst = int(np.argmax(gains))
        if gains[worst] <= eps:
            return
        rows = "\n".join(f"  agent {i}: best response J = {br:.12g}, gain {br - j:.3g}" for i, br in enumerate(responses))
        raise _NotNash(
            f"not an eps-Nash equilibrium: agent {worst} gains {gains[worst]:.6g} > eps {eps:g} by deviating alone "
            f"(J(pi) = {j:.12g})\n{rows}\n{origin}" + _describe(g) + "\n" + _describe_policy(tables, "policy")
        )

    if is_train_function(policy_or_fn):
        def body(g: MarkovGame, rng_seed: int) -> None:
            body_for(_train(policy_or_fn, g, rng_seed, obs), g, f"train_fn rng seed: {rng_seed}\n")  # type: ignore[arg-type]

        _over_games(game, body, n, seed)
        return
    if isinstance(game, (list, tuple, SearchStrategy)):
        raise TypeError(f"game must be one MarkovGame (or its MatrixGameEnv) when a policy is given; a list or "
                        f"strategy of games needs a train function fn(game, rng), got {type(game).__name__}")
    pi = tabular_policy(policy_or_fn, game, obs=obs)
    g, _ = _game_and_env(game)
    try:
        body_for(pi, g, "")
    except _NotNash as failure:
        raise AssertionError(str(failure)) from None


# --- assert_advantage_decomposition --------------------------------------------------------------------


def _default_advantage_games() -> SearchStrategy[MarkovGame]:
    return sst.markov_games(n_agents=st.integers(2, 3), n_actions=st.integers(2, 3), n_states=st.integers(1, 3),
                            max_joint_actions=27)


def _call(advantage_fn: AdvantageFn, game: MarkovGame, pi: Factorized, agents: tuple[int, ...],
          given: tuple[int, ...]) -> np.ndarray:
    """The user's ``A^{agents}(s, a^{given}, a^{agents})`` as a float array of the expected shape."""
    call = f"advantage_fn(game, pi, agents={agents}, given={given})"
    out = advantage_fn(game, pi, agents, given)
    try:
        array = np.asarray(out.detach().cpu().numpy() if hasattr(out, "detach") else out, dtype=np.float64)
    except (TypeError, ValueError):
        raise _NotDecomposed(f"{call} returned {type(out).__name__}, not an array of advantages") from None
    expected = (game.n_states, *(game.n_actions[i] for i in given + agents))
    if array.shape != expected:
        axes = ", ".join(["S"] + [f"A_{i}" for i in given + agents])
        raise _NotDecomposed(f"{call} returned shape {array.shape}; A^{agents}(s, a^{given}, a^{agents}) has shape "
                             f"[{axes}] = {expected} (given agents' axes first, in the order listed)\n" + _describe(game))
    if not np.all(np.isfinite(array)):
        raise _NotDecomposed(f"{call} returned non-finite values:\n{_fmt(array)}\n" + _describe(game))
    return array


def _table_row(label: str, joint: float | str, terms: list[float] | str, total: float | str) -> str:
    def cell(x: float | str) -> str:
        return x if isinstance(x, str) else f"{x:.12g}"

    listed = terms if isinstance(terms, str) else "[" + ", ".join(f"{t:.12g}" for t in terms) + "]"
    return f"  {label:<9} {cell(joint):<22} {listed:<50} {cell(total)}\n"


def _where(index: tuple[int, ...], agents: Sequence[int]) -> str:
    acts = ", ".join(f"a^{i}={a}" for i, a in zip(agents, index[1:]))
    return f"s={index[0]}, {acts}"


def assert_advantage_decomposition(
    advantage_fn: AdvantageFn,
    games: SearchStrategy[MarkovGame] | Sequence[MarkovGame] | None = None,
    *,
    max_examples: int | None = None,
    tol: float = 1e-8,
    exact: bool = True,
    min_prob: float = 0.0,
    seed: int | None = None,
) -> None:
    """Check a user's multi-agent advantage estimates on generated games, product policies and orderings
    ``i_{1:n}``, for every prefix ``m``:

    * Lemma 1 (ICLR22, MAT Thm 1; theory.md §1.6):
      ``A^{i_{1:m}}(s, a^{i_{1:m}}) = sum_{j<=m} A^{i_j}(s, a^{i_{1:j-1}}, a^{i_j})`` within ``tol``;
    * with ``exact`` (default), every value also equals the exact
      ``A^{agents}(s, a^{given}, a^{agents}) = Q^{given, agents}_pi - Q^{given}_pi`` (HATRPO eq. 1) of
      :func:`seqmarl.theory.multiagent.advantage_subset` within ``tol`` (``exact=False`` for an estimator that is
      only meant to be self-consistent).

    ``advantage_fn(game, pi, agents, given) -> array [S, A_{given...}, A_{agents...}]`` (numpy or torch; the given
    agents' axes first, in the order listed — the signature of ``advantage_subset``, which passes); ``pi`` is a
    :class:`seqmarl.theory.Factorized` with every ``pi^i(a|s) >= min_prob``. ``games``: ``None`` (random games with
    2-3 agents, 2-3 actions, 1-3 states, gamma in {0, 0.5, 0.9}), a strategy or a list of games; their horizon must
    be ``None`` or 1 (the advantage is stationary). ``max_examples``: ``None`` gives 50 scaled by the hypothesis
    profile. The ``AssertionError`` gives the shrunk game, policy and ordering, and the worst entry with the
    returned joint value, the returned terms, their sum and the exact value."""
    __tracebackhide__ = True
    _check_callable(advantage_fn, "advantage_fn", "(game, pi, agents, given) -> array")
    tol = check_tol(tol)
    if not isinstance(exact, bool):
        raise TypeError(f"exact must be a bool, got {type(exact).__name__}")
    min_prob = check_tol(min_prob, "min_prob")
    if min_prob > 0.5:
        raise ValueError(f"min_prob must be <= 1/A for every agent (at most 0.5), got {min_prob}")
    seed = _check_seed(seed)
    n = budget(max_examples, 50)
    games_st = _default_advantage_games() if games is None else _games_strategy(games)

    @st.composite
    def cases(draw: st.DrawFn) -> tuple[MarkovGame, Factorized, tuple[int, ...]]:
        game = draw(games_st)
        if not isinstance(game, MarkovGame):
            raise TypeError(f"games must generate MarkovGame instances, got {type(game).__name__}")
        if game.horizon is not None and game.horizon > 1:
            raise ValueError(f"games must have horizon None or 1 (Lemma 1's advantage is stationary), got {game!r}")
        for a in game.n_actions:
            if min_prob * a > 1 + 1e-12:
                raise ValueError(f"min_prob = {min_prob} is infeasible for an agent with {a} actions")
        pi = draw(sst.policies(game, "factorized", min_prob=min_prob))
        return game, pi, draw(sst.orderings(game.n_agents))

    def check(case: tuple[MarkovGame, Factorized, tuple[int, ...]]) -> None:
        game, pi, order = case
        q = q_value(game, pi)
        context = (f"ordering i_1..i_n = {order}\n" + _describe(game) + "\n" + _describe_policy(pi, "pi"))
        terms, exact_terms = [], []
        for j in range(len(order)):
            agents, given = order[j : j + 1], order[:j]
            terms.append(_call(advantage_fn, game, pi, agents, given))
            exact_terms.append(multiagent.advantage_subset(game, pi, agents, given, q=q))
        total = np.zeros(game.n_states)
        for m in range(1, len(order) + 1):
            prefix = order[:m]
            total = total[..., None] + terms[m - 1]
            joint = _call(advantage_fn, game, pi, prefix, ())
            truth = multiagent.advantage_subset(game, pi, prefix, (), q=q)
            lemma_err = np.abs(joint - total)
            exact_err = np.abs(joint - truth) if exact else np.zeros_like(joint)
            for k in range(m):  # each returned term against its exact value, broadcast over the later agents
                if exact:
                    shape = terms[k].shape + (1,) * (m - 1 - k)
                    diff = np.abs(terms[k] - exact_terms[k]).reshape(shape)
                    exact_err = np.maximum(exact_err, np.broadcast_to(diff, joint.shape))
            worst = float(max(lemma_err.max(), exact_err.max()))
            if worst <= tol:
                continue
            at = np.unravel_index(int(np.argmax(np.maximum(lemma_err, exact_err))), joint.shape)
            pieces = [float(terms[k][at[: k + 2]]) for k in range(m)]
            truths = [float(exact_terms[k][at[: k + 2]]) for k in range(m)]
            what = "Lemma 1 fails" if lemma_err.max() > tol else "the advantages differ from the exact values"
            raise _NotDecomposed(
                f"{what} for the prefix i_1..i_m = {prefix} (m = {m}, tol {tol:g}); worst entry at {_where(at, prefix)}:\n"
                + _table_row("", "joint A^{i_1:m}(s, a)", "terms A^{i_j}(s, a^{i_1:j-1}, a^{i_j}), j = 1..m", "sum of terms")
                + _table_row("returned", float(joint[at]), pieces, float(total[at]))
                + _table_row("exact", float(truth[at]), truths, float(sum(truths)))
                + f"  Lemma 1 error |joint - sum of terms| = {float(lemma_err[at]):.3g}"
                + (f"; error against the exact values = {float(exact_err[at]):.3g}" if exact else "")
                + "\n" + context
            )

    run_cases(cases(), check, n, seed)
