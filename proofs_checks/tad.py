"""TAD's transformation preserves the optimum and distillation recovers it (theory.md §6.1, "How to verify" 1-3)."""

from __future__ import annotations

import itertools

import numpy as np

from seqmarl.theory import evaluate, games
from seqmarl.theory.markov_game import MarkovGame
from seqmarl.theory.transform import (
    CONVENTIONS,
    distill,
    lift_q,
    optimal_values,
    sequential_mdp,
    state_count,
    teacher_joint_policy,
    teacher_policy,
    value_iteration,
)

from .base import Check, CheckResult, Profile

__all__ = ["CHECKS", "transform_errors", "run_tad_transform_values"]


def transform_errors(game: MarkovGame) -> dict[str, float]:
    """Worst errors over every execution order and both discount conventions of the three §6.1 claims:

    ``v``: ``|V~*(s, ()) - c V*(s)|`` with ``c = 1`` (one_then_gamma) or ``gamma^{(n-1)/n}`` (root);
    ``q``: ``|Q~*((s, a^{i_{1:k}}), a^{i_{k+1}}) - c_k max_{a^{i_{k+2:n}}} Q*(s, a)|``;
    ``j``: ``|J(distilled) - J*|`` (skipped for the root convention at ``gamma = 0``, where every
    pre-last sub-step ties; see :mod:`seqmarl.theory.transform`).
    ``V*``/``Q*`` come from joint-action policy iteration, ``V~*``/``Q~*`` from policy iteration on ``M~``.
    Also (``"structure"``): ``|S~| = S sum_k prod_{j<k} A^{i_j}`` (:func:`state_count`), ``decode`` inverts
    ``encode`` on every state of ``M~`` and names the acting agent; the teacher's joint and auto-regressive policies
    earn ``J*``; for the first order and convention, layered value iteration agrees with policy iteration (``"vi"``)."""
    v_star, q_star = optimal_values(game)
    j_star = float(game.initial @ v_star)
    n = game.n_agents
    worst = {"v": 0.0, "q": 0.0, "j": 0.0, "structure": 0.0, "vi": 0.0}
    for k_order, order in enumerate(itertools.permutations(range(n))):
        for convention in CONVENTIONS:
            mdp = sequential_mdp(game, order, convention)
            v, q, greedy = value_iteration(mdp)
            scale = game.gamma ** ((n - 1) / n) if convention == "root" else 1.0
            worst["v"] = max(worst["v"], float(np.max(np.abs(v[: game.n_states] - scale * v_star))))
            mask = mdp.action_mask
            worst["q"] = max(worst["q"], float(np.max(np.abs(q[mask] - lift_q(mdp, q_star)[mask]))))
            acts = [game.n_actions[i] for i in order]
            bad = float(state_count(game.n_states, acts) != mdp.n_states)
            if k_order == 0 and convention == CONVENTIONS[0]:
                for index in range(mdp.n_states):
                    s, prefix = mdp.decode(index)
                    bad += float(mdp.encode(s, prefix) != index or mdp.acting_agent(index) != order[len(prefix)])
                v_vi, _, _ = value_iteration(mdp, method="value")
                worst["vi"] = max(worst["vi"], float(np.max(np.abs(v_vi - v))))
            worst["structure"] = max(worst["structure"], bad)
            if convention == "root" and game.gamma == 0.0:
                continue
            j = evaluate.expected_return(game, distill(mdp, greedy))
            j_teacher = evaluate.expected_return(game, teacher_joint_policy(mdp, greedy))
            j_ar = evaluate.expected_return(game, teacher_policy(mdp, greedy))
            worst["j"] = max(worst["j"], abs(j - j_star), abs(j_teacher - j_star), abs(j_ar - j_star))
    return worst


def run_tad_transform_values(profile: Profile) -> CheckResult:
    """Random MMDPs (2-3 agents, 2-3 actions each, 1-3 states, gamma in {0, 0.5, 0.9}), every order."""
    rng = np.random.default_rng(profile.seed)
    n_games = profile.cases(48)
    worst = 0.0
    cases = 0
    gammas = (0.0, 0.5, 0.9)
    for g in range(n_games):
        n_agents = 2 + g % 2
        acts = [int(a) for a in rng.integers(2, 4, size=n_agents)]
        game = games.random_game(rng, n_agents, acts, int(rng.integers(1, 4)), gamma=gammas[g % 3])
        errors = transform_errors(game)
        worst = max(worst, *errors.values())
        cases += len(list(itertools.permutations(range(n_agents)))) * len(CONVENTIONS)
    passed = worst <= 1e-9
    return CheckResult(
        cases=cases,
        worst_error=worst,
        passed=passed,
        detail=f"{n_games} random games x every order x {len(CONVENTIONS)} conventions; max |V~*-V*|, |Q~*-max Q*|, "
        "|J - J*| of the distilled, teacher and auto-regressive policies, value vs policy iteration, state encoding",
    )


CHECKS = [
    Check(
        name="tad_transform_values",
        claim=(
            "The sequential single-agent MDP of a Markov game (any fixed order) has V~*(s) = V*(s) and "
            "Q~*((s,a^{1:k}),a^{k+1}) = max_{a^{k+2:n}} Q*(s,a) (root convention: scaled by gamma^{(n-1-k)/n}); "
            "its greedy policy distils to decentralised deterministic policies with J = J*"
        ),
        source="TAD (arXiv 2207.11143) transformation, theory.md §6.1",
        method="exact",
        run=run_tad_transform_values,
    )
]
