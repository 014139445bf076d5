"""Property checks of the exact identities behind sequential updates, on random games and policies.

* ``pdl_identity`` — performance difference (Kakade & Langford; theory.md §0).
* ``lemma1_decomposition`` — multi-agent advantage decomposition, every ordering and prefix (ICLR22 Lemma 1,
  MAT Thm 1; theory.md §1.6).
* ``zero_surrogate_eq6`` — ``L^{i_{1:m}}_pi(pibar^{i_{1:m-1}}, pi^{i_m}) = 0`` (ICLR22 eq. 6; theory.md §1.7).
* ``prop3_estimator_eq9`` — the importance-weighted estimator of the local advantage (ICLR22 Prop. 3, eq. 9;
  theory.md §1.10).

Each row draws its cases from ``numpy.random.default_rng(profile.seed)``: 2-4 agents with 2-3 actions each
(heterogeneous), 1-4 states, gamma in {0, 0.5, 0.9}, Dirichlet transitions and Gaussian rewards (theory.md §0);
policies are Dirichlet, nearly deterministic or deterministic (eta-soft where a ratio needs it).
"""

from __future__ import annotations

import itertools
from typing import Callable, Sequence

import numpy as np

from seqmarl.theory import evaluate as ev
from seqmarl.theory import multiagent as ma
from seqmarl.theory.games import random_game
from seqmarl.theory.markov_game import MarkovGame
from seqmarl.theory.policies import Factorized, Policy

from .base import Check, CheckResult, Profile

GAMMAS = (0.0, 0.5, 0.9)
SOFT = 0.05


# --- random cases ------------------------------------------------------------------------------------


def random_tables(rng: np.random.Generator, game: MarkovGame, min_prob: float = 0.0, style: str | None = None) -> list[np.ndarray]:
    """One ``[S, A_i]`` table per agent, each entry ``>= min_prob``; ``style`` in {dirichlet, peaked,
    deterministic} (drawn at random when ``None``), mixed with the floor as ``min_prob + (1 - A min_prob) b``."""
    style = style or str(rng.choice(["dirichlet", "dirichlet", "peaked", "deterministic"]))
    if style not in ("dirichlet", "peaked", "deterministic"):
        raise ValueError(f"style must be dirichlet, peaked or deterministic, got {style!r}")
    tables = []
    for a in game.n_actions:
        if min_prob < 0 or min_prob * a > 1:
            raise ValueError(f"min_prob = {min_prob} is infeasible for {a} actions (need 0 <= min_prob <= 1/{a})")
        base = rng.dirichlet(np.ones(a), size=game.n_states)
        if style != "dirichlet":
            point = np.eye(a)[rng.integers(a, size=game.n_states)]
            base = point if style == "deterministic" else (1 - 1e-6) * point + 1e-6 * base
        table = min_prob + (1 - a * min_prob) * base
        tables.append(table / table.sum(axis=1, keepdims=True))
    return tables


def random_case(rng: np.random.Generator, min_prob: float = 0.0) -> tuple[MarkovGame, Factorized]:
    """A random game in the span above and a random product policy on it."""
    n = int(rng.integers(2, 5))
    actions = tuple(int(a) for a in rng.integers(2, 4, size=n))
    game = random_game(rng, n, actions, int(rng.integers(1, 5)), float(rng.choice(GAMMAS)))
    return game, Factorized(random_tables(rng, game, min_prob))


# --- errors of each identity -------------------------------------------------------------------------


def pdl_error(game: MarkovGame, pi: Policy, pibar: Policy) -> float:
    """``|J(pibar) - J(pi) - sum_s rho_pibar(s) sum_a pibar(a|s) A_pi(s, a)|`` (theory.md §0)."""
    axes = tuple(range(1, game.n_agents + 1))
    gain = ev.occupancy(game, pibar) @ (pibar.probs() * ev.advantage(game, pi)).sum(axis=axes)
    return abs(ev.expected_return(game, pibar) - ev.expected_return(game, pi) - float(gain))


def lemma1_error(game: MarkovGame, pi: Factorized, orders: Sequence[Sequence[int]] | None = None) -> float:
    """max over orderings (all by default), prefixes m and entries of
    ``|A^{i_{1:m}}(s, a^{i_{1:m}}) - sum_{j<=m} A^{i_j}(s, a^{i_{1:j-1}}, a^{i_j})|`` (ICLR22 Lemma 1)."""
    q = ev.q_value(game, pi)
    orders = itertools.permutations(range(game.n_agents)) if orders is None else orders
    worst = 0.0
    for order in orders:
        order = tuple(order)
        total = np.zeros((game.n_states,))
        for m in range(1, len(order) + 1):
            summand = ma.advantage_subset(game, pi, order[m - 1 : m], given=order[: m - 1], q=q)
            total = total[..., None] + summand  # the new agent's axis goes last, as in A^{i_{1:m}}
            joint = ma.advantage_subset(game, pi, order[:m], q=q)
            worst = max(worst, float(np.abs(joint - total).max()))
    return worst


def zero_surrogate_error(game: MarkovGame, pi: Factorized, pibar: Factorized, order: Sequence[int]) -> float:
    """max over prefixes m of ``|L^{i_{1:m}}_pi(pibar^{i_{1:m-1}}, pi^{i_m})|`` (ICLR22 eq. 6)."""
    q, rho = ev.q_value(game, pi), ev.occupancy(game, pi)
    order = tuple(order)
    worst = 0.0
    for m in range(1, len(order) + 1):
        new = [pibar.tables[i] for i in order[: m - 1]] + [pi.tables[order[m - 1]]]
        worst = max(worst, abs(ma.surrogate(game, pi, order[:m], new, q=q, rho=rho)))
    return worst


def prop3_error(game: MarkovGame, pi: Factorized, pibar: Factorized, pihat: Factorized, order: Sequence[int]) -> float:
    """max over prefixes m and states s of
    ``|E_{a^{prev}~pibar, a^{i_m}~pihat}[A^{i_m}] - E_{a~pi}[(pihat^{i_m}/pi^{i_m} - 1) M^{i_{1:m}}]|`` (ICLR22 eq. 9),
    with ``M`` from :func:`seqmarl.theory.multiagent.estimator_m` (eq. 10); ``pi`` must be soft."""
    order = tuple(order)
    adv = ev.advantage(game, pi)
    probs = pi.probs()
    axes = tuple(range(1, game.n_agents + 1))
    worst = 0.0
    for m in range(1, len(order) + 1):
        prev, im = order[: m - 1], order[m - 1]
        prev_tables = [pibar.tables[i] for i in prev]
        # left side: contract A^{i_m}(s, a^{prev}, a^{i_m}) with pibar^{prev} and pihat^{i_m}, last axis first
        lhs = ma.advantage_subset(game, pi, (im,), given=prev)
        for table in reversed(prev_tables + [pihat.tables[im]]):
            lhs = np.einsum("s...a,sa->s...", lhs, table)
        shape = [game.n_states] + [1] * game.n_agents
        shape[1 + im] = game.n_actions[im]
        ratio = (pihat.tables[im] / pi.tables[im]).reshape(shape)
        m_values = ma.estimator_m(game, pi, prev, prev_tables, adv=adv)
        rhs = (probs * (ratio - 1.0) * m_values).sum(axis=axes)
        worst = max(worst, float(np.abs(lhs - rhs).max()))
    return worst


# --- check runners -----------------------------------------------------------------------------------


def _property(default_cases: int, tol: float, one_case: Callable[[np.random.Generator], tuple[float, str]]) -> Callable[[Profile], CheckResult]:
    def run(profile: Profile) -> CheckResult:
        rng = np.random.default_rng(profile.seed)
        cases = profile.cases(default_cases)
        worst, where = 0.0, ""
        for k in range(cases):
            err, label = one_case(rng)
            if np.isfinite(worst) and not err <= worst:  # a NaN error sticks as the worst
                worst, where = err, f"case {k}: {label}"
        passed = bool(worst <= tol)
        detail = f"tolerance {tol:g}; worst at {where}" if where else f"tolerance {tol:g}"
        return CheckResult(cases=cases, worst_error=worst, passed=passed, detail=detail)

    return run


def _label(game: MarkovGame) -> str:
    return f"n_actions={game.n_actions}, S={game.n_states}, gamma={game.gamma}"


def _pdl_case(rng: np.random.Generator) -> tuple[float, str]:
    game, pi = random_case(rng)
    pibar = Factorized(random_tables(rng, game))
    return pdl_error(game, pi, pibar), _label(game)


def _lemma1_case(rng: np.random.Generator) -> tuple[float, str]:
    game, pi = random_case(rng)
    return lemma1_error(game, pi), _label(game)


def _eq6_case(rng: np.random.Generator) -> tuple[float, str]:
    game, pi = random_case(rng)
    pibar = Factorized(random_tables(rng, game))
    return zero_surrogate_error(game, pi, pibar, rng.permutation(game.n_agents)), _label(game)


def _prop3_case(rng: np.random.Generator) -> tuple[float, str]:
    game, pi = random_case(rng, min_prob=SOFT)
    pibar, pihat = Factorized(random_tables(rng, game)), Factorized(random_tables(rng, game))
    return prop3_error(game, pi, pibar, pihat, rng.permutation(game.n_agents)), _label(game)


def _entropy(joint: np.ndarray) -> np.ndarray:
    """``-sum_a p log p`` per state (``0 log 0 = 0``), written out."""
    flat = joint.reshape(joint.shape[0], -1)
    return np.array([-sum(float(x) * np.log(float(x)) for x in row if x > 0) for row in flat])


def _policy_case(rng: np.random.Generator) -> tuple[float, str]:
    """Every policy class against the joint table built by :func:`._reference.joint_table` (theory.md §0, §3.3)."""
    from seqmarl.theory.policies import AutoRegressive, Joint, Shared, agent_tables, joint_probs

    from . import _reference as ref

    n = int(rng.integers(1, 4))
    acts = tuple(int(a) for a in rng.integers(2, 4, size=n))
    n_states = int(rng.integers(1, 4))
    tables = [rng.dirichlet(np.ones(a), size=n_states) for a in acts]
    if rng.random() < 0.3:
        tables[0] = np.eye(acts[0])[rng.integers(acts[0], size=n_states)]
    pol = Factorized(tables)
    joint = ref.joint_table(tables)
    errs = {
        "Factorized.probs": float(np.max(np.abs(pol.probs() - joint))),
        "Factorized.entropy = sum_i H(pi^i)": float(np.max(np.abs(pol.entropy() - _entropy(joint)))),
        "Factorized.marginals": max(float(np.max(np.abs(m - t))) for m, t in zip(pol.marginals(), tables)),
        "Policy.marginals of the joint": max(float(np.max(np.abs(m - t))) for m, t in zip(Joint(joint).marginals(), tables)),
        "joint_probs / agent_tables": max(float(np.max(np.abs(joint_probs(pol, n_states, acts) - joint))),
                                          max(float(np.max(np.abs(a - t))) for a, t in zip(agent_tables(pol), tables))),
    }
    k = int(rng.integers(n))
    other = rng.dirichlet(np.ones(acts[k]), size=n_states)
    swapped = list(tables)
    swapped[k] = other
    errs["Factorized.replace"] = float(np.max(np.abs(pol.replace(k, other).probs() - ref.joint_table(swapped))))
    shared = Shared(tables[-1], n)
    errs["Shared = n copies"] = max(float(np.max(np.abs(shared.probs() - ref.joint_table([tables[-1]] * n)))),
                                    float(np.max(np.abs(shared.entropy() - n * _entropy(tables[-1])))))
    full = rng.dirichlet(np.ones(int(np.prod(acts))), size=n_states)
    if rng.random() < 0.3:
        full[:, : max(1, full.shape[1] // 3)] = 0.0  # zero-probability prefixes
        full /= full.sum(axis=1, keepdims=True)
    full = full.reshape((n_states, *acts))
    order = tuple(int(i) for i in rng.permutation(n))
    ar = AutoRegressive.from_joint(full, order)
    h = _entropy(full)
    errs["AutoRegressive.from_joint(joint).probs"] = float(np.max(np.abs(ar.probs() - full)))
    errs["chain rule: sum_k H(pi^{i_k} | prefix) = H"] = max(float(np.max(np.abs(ar.entropy() - h))),
                                                              float(np.max(np.abs(sum(ar.conditional_entropies()) - h))))
    errs["AutoRegressive.marginals"] = max(float(np.max(np.abs(m - full.sum(axis=tuple(1 + j for j in range(n) if j != i)))))
                                           for i, m in enumerate(ar.marginals()))
    actions = np.stack([rng.integers(a, size=n_states) for a in acts], axis=1)
    onehot = ref.joint_table([np.eye(a)[actions[:, i]] for i, a in enumerate(acts)])
    errs["deterministic policies are one-hot"] = max(
        float(np.max(np.abs(Joint.deterministic(actions, acts).probs() - onehot))),
        float(np.max(np.abs(Factorized.deterministic(actions, acts).probs() - onehot))),
        float(np.max(np.abs(Factorized.uniform(n_states, acts).probs() - 1.0 / np.prod(acts)))),
    )
    name, worst = max(errs.items(), key=lambda kv: kv[1])
    return worst, f"{name} (actions {acts}, S={n_states}, order {order})"


CHECKS = [
    Check(
        name="policy_algebra",
        claim="Policy tables: product probabilities with additive entropy H = sum_i H(pi^i), shared = identical "
        "tables, the auto-regressive chain rule (from_joint reproduces any joint, sum_k H(pi^{i_k} | prefix) = H), "
        "marginals, deterministic policies one-hot",
        source="theory.md §0, §3.3 (entropy chain rule)",
        method="property",
        run=_property(30, 1e-12, _policy_case),
    ),
    Check(
        name="pdl_identity",
        claim="J(pibar) - J(pi) = sum_s rho_pibar(s) sum_a pibar(a|s) A_pi(s,a) (performance difference)",
        source="Kakade & Langford 2002, theory.md §0",
        method="property",
        run=_property(200, 1e-9, _pdl_case),
    ),
    Check(
        name="lemma1_decomposition",
        claim="A^{i_1:m}(s, a^{i_1:m}) = sum_j A^{i_j}(s, a^{i_1:j-1}, a^{i_j}) for every ordering and prefix",
        source="ICLR22 Lemma 1 / MAT Thm 1, theory.md §1.6",
        method="property",
        run=_property(60, 1e-12, _lemma1_case),
    ),
    Check(
        name="zero_surrogate_eq6",
        claim="L^{i_1:m}_pi(pibar^{i_1:m-1}, pi^{i_m}) = 0 for any pibar (surrogate at the old policy)",
        source="ICLR22 eq. 6, theory.md §1.7",
        method="property",
        run=_property(150, 1e-12, _eq6_case),
    ),
    Check(
        name="prop3_estimator_eq9",
        claim="E_{pibar, pihat}[A^{i_m}(s, a^{prev}, a^{i_m})] = E_{a~pi}[(pihat/pi - 1) M^{i_1:m}(s,a)] at every state",
        source="ICLR22 Prop. 3, eq. 9-10, theory.md §1.10",
        method="property",
        run=_property(150, 1e-12, _prop3_case),
    ),
]
