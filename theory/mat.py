"""The exact tabular Multi-Agent Transformer (MAT) step, and whether it keeps HAPPO's monotonic improvement.

What MAT's update is (checked in the official code, ``PKU-MARL/Multi-Agent-Transformer``,
``mat/algorithms/mat/mat_trainer.py``, ``MATTrainer.ppo_update`` and ``train``, the two stored versions of the file
agree; and ``mat/algorithms/mat/algorithm/transformer_policy.py``, ``TransformerPolicy.evaluate_actions``):

* ``evaluate_actions`` reshapes the batch to ``(-1, num_agents, ...)``, runs the transformer once with teacher
  forcing and returns ``action_log_probs.view(-1, act_num)``: one row per (sample, agent), the log-probability of
  that agent's action under its own decoder conditional ``pi(a^{i_m} | o, a^{i_{1:m-1}})`` (``act_num = 1`` for
  discrete actions);
* ``imp_weights = torch.exp(action_log_probs - old_action_log_probs_batch)``: the ratio is **per agent**
  (``r_m = pi_new(a^{i_m}|.)/pi_old(a^{i_m}|.)``), not the joint ratio and with no factor of the other agents;
* ``surr1 = imp_weights * adv_targ``, ``surr2 = torch.clamp(imp_weights, 1 - clip, 1 + clip) * adv_targ``,
  ``policy_loss = -torch.sum(torch.min(surr1, surr2), dim=-1, keepdim=True).mean()`` (or the active-mask weighted
  mean): the PPO clip of each agent's ratio against the advantage of its row, averaged over samples and agents;
* ``adv_targ`` is the GAE of the shared reward with each agent's value head ``V(o^{i_m})`` (encoder outputs, which
  see every observation but no action), normalised in ``train`` by the mean and std over the buffer;
* ``loss = policy_loss - dist_entropy * entropy_coef + value_loss * value_loss_coef`` goes through **one**
  ``optimizer.step()`` over all transformer parameters, ``ppo_epoch`` x ``num_mini_batch`` times: every agent's
  conditional moves at once.

The exact tabular idealisation implemented here: the state ``s`` is the joint observation; the values are exact, so
every agent's baseline is ``V_pi(s)`` and the advantage of a sample is the joint ``A_pi(s, a) = Q_pi(s, a) - V_pi(s)``
(its mean under on-policy sampling is exactly 0 and the std is a positive scale, so the normalisation in ``train``
changes no maximiser); no entropy term; and the surrogate is maximised exactly instead of by a few gradient epochs.
The policy is an :class:`~seqmarl.theory.policies.AutoRegressive` table in MAT's fixed order ``i_{1:n}``,
``pi(a|s) = prod_k pi_k(a^{i_k} | s, a^{i_{1:k-1}})``, each conditional a free table per *context*
``c = (s, a^{i_{1:k-1}})``.

The program. In expectation under the old policy the MAT loss is

    (1/n) sum_k sum_s rho_pi(s) sum_a pi(a|s) min(r_k A_pi(s, a), clip(r_k, 1 +- eps) A_pi(s, a)),
    r_k = P_k(a^{i_k} | c) / pi_k(a^{i_k} | c).

``min(r A, clip(r) A)`` equals ``A min(r, 1 + eps)`` if ``A >= 0`` and ``A max(r, 1 - eps)`` if ``A < 0`` (for
``r >= 0``), **per sample**: ``A`` depends on the later agents' actions ``a^{i_{k+1:n}}`` too, so the sign split is
made per full joint action and only then summed over the later actions. Grouping the samples by ``(c, a^{i_k})``
(``r_k`` depends on nothing else) gives, for each position ``k`` and context ``c``, the separate program

    max_{P_c}  omega(c) sum_{a_k} [ W+(c, a_k) min(P_c(a_k)/q(a_k), 1 + eps) + W-(c, a_k) max(P_c(a_k)/q(a_k), 1 - eps) ],
    q = pi_k(.|c),   W+-(c, a_k) = q(a_k) E_{a^{i_{k+1:n}} ~ pi(.|c, a_k)}[ A_pi(s, a)^{+-} ],
    omega(c) = rho_pi(s) pi(a^{i_{1:k-1}} | s)        (old prefix: MAT has no factor)

with ``A^+ = max(A, 0)``, ``A^- = min(A, 0)``. The objective is a sum over ``(k, c)`` of terms in disjoint variables
(one free row per context), so maximising MAT's single loss "all at once" is exactly maximising every row on its
own. Each row is the concave piecewise-linear program of :func:`seqmarl.theory.trust_region.solve_happo_lp` (the
context is its "state"), solved exactly; ``P`` stays on the support of ``q`` (the ratio is undefined off it).

The answer to "does MAT keep HAPPO's guarantee" for this exact tabular step: **yes** (:func:`improvement_terms`).

1. *The factor is a per-context constant.* HAPPO's factor for position ``k`` is ``prod_{j<k} P_j/pi_j`` at the
   sampled earlier actions, a function of ``(s, a^{i_{1:k-1}})`` only, i.e. of the context ``c`` that agent
   ``i_k``'s conditional sees. With it the row weight becomes ``rho_pi(s) P(a^{i_{1:k-1}}|s)`` (new prefix) instead
   of ``omega(c)``: a positive rescaling of the same row, so the same maximiser, except on contexts the new policy
   never reaches. Hence ``mat_exact(pi)`` and the sequential, factor-weighted :func:`sequential_ar_step` give the
   same joint policy (identical joint tables).
2. *The bound.* With ``Q^{1:k}(c, a_k) = E_{a^{i_{k+1:n}} ~ pi(.|c, a_k)}[Q_pi(s, a)]`` (old conditionals; ``Q^{1:n} =
   Q_pi``, ``Q^{1:0} = V_pi``) and ``u_c(P) = sum_{a_k} P(a_k) Q^{1:k}(c, a_k) - V_pi(s)``, the chain rule telescopes
   (ICLR22 Lemma 1 along the auto-regressive order) and the performance-difference lemma gives exactly

       J(pibar) - J(pi) = sum_s rho_pibar(s) sum_k E_{a^{i_{1:k-1}} ~ pibar(.|s)}[ u_c(pibar_k(.|c)) - u_c(pi_k(.|c)) ].

   Let ``h_c(P) = sum_{a_k} [W+ min(r, 1+eps) + W- max(r, 1-eps)]`` be the row's clipped surrogate (weights per
   unit ``omega``). Per sample ``min(r A, clip(r) A) <= r A``, so ``h_c(P) <= u_c(P)`` for ``P`` on the support of
   ``q``, with equality at ``P = q`` (``r = 1``). The exact maximiser has ``h_c(P*) >= h_c(q)``, hence
   ``u_c(P*) - u_c(q) >= h_c(P*) - h_c(q) >= 0`` on every row with ``omega(c) > 0``; rows with ``omega(c) = 0``
   keep ``q`` (difference 0). So

       J(mat_exact(pi)) - J(pi) >= sum_s rho_pibar(s) sum_k E_{a^{i_{1:k-1}} ~ pibar}[ h_c(pibar_k) - h_c(pi_k) ] >= 0,

   and the same holds state by state (``V_pibar >= V_pi``; policy improvement). No tabular game or policy makes the
   exact MAT step lower ``J``: :func:`find_mat_decrease` searches and finds none, as it must.
3. *Where the guarantee lives.* It rests on each conditional seeing the earlier agents' actions. The same
   per-agent, factor-free clipped loss on decentralised conditionals ``pi^i(a^i | s)`` (a product policy, i.e. the
   MAPPO/IPPO-style simultaneous step, and MAT-Dec's decentralised actor without parameter sharing) is
   ``iteration.happo_exact(..., simultaneous=True)``, and that can lower ``J`` (:func:`decentralised_counterexample`).
   With function approximation the rows share parameters, the per-row argument no longer applies, and the exact
   tabular statement says nothing about a few gradient epochs on a transformer.

Also here: :func:`mat_kl_exact`, a KL-constrained variant (each conditional maximises the linear surrogate in an
expected-KL ball; monotone by the same argument), and the unclipped limit ``clip=math.inf`` of :func:`mat_exact`
(each conditional becomes greedy in ``Q^{1:k}(c, .)``: exact policy improvement in the auto-regressive chain).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from . import evaluate, trust_region
from .evaluate import _check_game, check_stationary_advantage, expected_return
from .markov_game import MarkovGame, matrix_game
from .policies import AutoRegressive, Factorized

__all__ = [
    "ARQuantities",
    "ar_quantities",
    "context_weights",
    "mat_exact",
    "sequential_ar_step",
    "mat_kl_exact",
    "clipped_row_objective",
    "improvement_terms",
    "improvement_lower_bound",
    "MatCase",
    "evaluate_mat_case",
    "build_ar_case",
    "ar_cases",
    "find_mat_decrease",
    "adversarial_cases",
    "decentralised_counterexample",
]


# --------------------------------------------------------------------------------------------- validation
def _check_ar(game: object, pi: object) -> tuple[MarkovGame, AutoRegressive]:
    game = _check_game(game)
    if not isinstance(pi, AutoRegressive):
        raise TypeError(f"pi must be an AutoRegressive policy (MAT's decoder), got {type(pi).__name__}")
    if pi.n_states != game.n_states or pi.n_actions != game.n_actions:
        raise ValueError(
            f"pi must match the game ({game.n_states} states, actions {game.n_actions}), "
            f"got {pi.n_states} states, actions {pi.n_actions}"
        )
    check_stationary_advantage(game, "mat")
    return game, pi


def _check_clip(clip: object) -> float:
    if isinstance(clip, bool):
        raise TypeError(f"clip must be a real number, got {clip!r}")
    try:
        eps = float(clip)  # type: ignore[arg-type]
    except (TypeError, ValueError) as exc:
        raise TypeError(f"clip must be a real number, got {clip!r}") from exc
    if eps == math.inf:
        return eps
    if not 0 < eps < 1:
        raise ValueError(f"clip must lie in (0, 1) (or be math.inf for the unclipped surrogate), got {clip!r}")
    return eps


def _check_flag(value: object, name: str) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be a bool, got {value!r}")
    return bool(value)


def _check_rng(rng: object) -> None:
    if rng is not None and not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be None or a numpy.random.Generator, got {type(rng).__name__}")


# --------------------------------------------------------------------------------------------- exact quantities
@dataclass(frozen=True)
class ARQuantities:
    """Exact quantities of an auto-regressive policy, axes in its execution order ``i_{1:n}``.

    ``adv[s, a^{i_1}, ..., a^{i_n}] = A_pi(s, a)``, ``v[s] = V_pi(s)``, ``rho[s]`` the improper occupancy
    ``rho_pi`` (``sum = 1/(1 - gamma)``), ``j = J(pi)``; ``q_chain[k][s, a^{i_1}, ..., a^{i_k}] = Q^{1:k}(c, a_k)``
    (``k = 1..n``; ``q_chain[0] = V``, ``q_chain[n] = Q``) with the later agents drawn from the old conditionals."""

    adv: np.ndarray
    v: np.ndarray
    rho: np.ndarray
    j: float
    q_chain: tuple[np.ndarray, ...]


def _in_order(tensor: np.ndarray, order: Sequence[int]) -> np.ndarray:
    """Move agent-index axes ``[S, A_0, ..., A_{n-1}]`` to execution order ``[S, A_{i_1}, ..., A_{i_n}]``."""
    return np.moveaxis(tensor, [1 + a for a in order], list(range(1, len(order) + 1)))


def _broadcast(cond: np.ndarray, n: int) -> np.ndarray:
    """A conditional ``[S, A_{i_1}, ..., A_{i_k}]`` with trailing unit axes up to ``n`` agents."""
    return cond.reshape(cond.shape + (1,) * (n + 1 - cond.ndim))


def _product(conds: Sequence[np.ndarray], n: int) -> np.ndarray:
    out = np.ones((conds[0].shape[0],) + (1,) * n) if conds else None
    for c in conds:
        out = out * _broadcast(c, n)
    return out


def ar_quantities(game: MarkovGame, pi: AutoRegressive) -> ARQuantities:
    """``A_pi``, ``V_pi``, ``rho_pi``, ``J(pi)`` and the chain ``Q^{1:k}`` of ``pi`` (exact, theory.md §0)."""
    game, pi = _check_ar(game, pi)
    n = game.n_agents
    q = _in_order(evaluate.q_value(game, pi), pi.order)
    v = evaluate.value(game, pi)
    adv = q - v.reshape((-1,) + (1,) * n)
    rho = evaluate.occupancy(game, pi)
    chain = [q]
    for k in range(n - 1, -1, -1):  # Q^{1:k} = sum_{a_{k+1}} pi_{k+1}(a_{k+1}|c) Q^{1:k+1}
        chain.append(np.sum(pi.conditionals[k] * chain[-1], axis=-1))
    chain.reverse()
    return ARQuantities(adv=adv, v=v, rho=rho, j=expected_return(game, pi), q_chain=tuple(chain))


def context_weights(pi: AutoRegressive, k: int, adv: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(W+, W-)`` of position ``k`` (0-based), each ``[S, A_{i_1}, ..., A_{i_k}, A_{i_{k+1}}]`` like
    ``pi.conditionals[k]``: ``W+-(c, a_k) = sum_{a^{i_{k+1:n}}} [pi_k(a_k|c) pi(a^{i_{k+1:n}}|c, a_k) A(s, a)]^{+-}``,
    the positive / negative parts taken per full joint action, then summed over the later agents' actions.
    ``adv`` is ``A_pi`` in execution order (:attr:`ARQuantities.adv`)."""
    n = len(pi.order)
    tail = _product(pi.conditionals[k:], n) * adv
    later = tuple(range(k + 2, n + 1))
    return np.maximum(tail, 0.0).sum(axis=later), np.minimum(tail, 0.0).sum(axis=later)


def _prefix(conditionals: Sequence[np.ndarray], k: int) -> np.ndarray:
    """``pi(a^{i_{1:k}} | s)`` ``[S, A_{i_1}, ..., A_{i_k}]`` from the first ``k`` conditionals (``k = 0``: ones ``[S]``)."""
    out = np.ones(conditionals[0].shape[0])
    for j in range(k):
        out = out[..., None] * conditionals[j]
    return out


def clipped_row_objective(old: np.ndarray, new: np.ndarray, w_plus: np.ndarray, w_minus: np.ndarray,
                          clip: float) -> np.ndarray:
    """Per-row ``h(P) = sum_a [W+ min(r, 1+eps) + W- max(r, 1-eps)]``, ``r = P/old`` on the support of ``old`` (rows
    are the leading axes, actions the last); ``clip = inf`` gives the unclipped ``sum_a (W+ + W-) r``."""
    on = old > 0
    r = np.where(on, new / np.where(on, old, 1.0), 0.0)
    if clip == math.inf:
        terms = (w_plus + w_minus) * r
    else:
        terms = w_plus * np.minimum(r, 1.0 + clip) + w_minus * np.maximum(r, 1.0 - clip)
    return np.sum(np.where(on, terms, 0.0), axis=-1)


def _clean(rows: np.ndarray, old: np.ndarray, support: bool) -> np.ndarray:
    """Clip tiny negatives, (optionally) keep the support of ``old``, renormalise; a failed row falls back to old."""
    out = np.clip(np.asarray(rows, dtype=np.float64), 0.0, None)
    if support:
        out = np.where(old > 0, out, 0.0)
    sums = out.sum(axis=1, keepdims=True)
    bad = ~np.isfinite(sums[:, 0]) | (sums[:, 0] <= 0)
    return np.where(bad[:, None], old, out / np.where(sums > 0, sums, 1.0))


def _greedy_rows(old: np.ndarray, w_plus: np.ndarray, w_minus: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """Unclipped limit: maximise ``sum_a (W+ + W-)/q P_a`` (``= sum_a P_a E[A | c, a]``) over the support of ``q``.
    The maximisers are the distributions on the best actions ``M`` (within ``1e-12`` relative); every one of them
    is at L1 distance ``2 (1 - q(M))`` from ``q``, and the returned one is ``q`` restricted to ``M``, renormalised."""
    on = old > 0
    gain = np.where(on, (w_plus + w_minus) / np.where(on, old, 1.0), -np.inf)
    best = gain.max(axis=1, keepdims=True)
    tol = 1e-12 * np.maximum(1.0, np.abs(best))
    keep = on & (gain >= best - tol)
    new = np.where(keep, old, 0.0)
    new = new / new.sum(axis=1, keepdims=True)
    return np.where((weight > 0)[:, None], new, old)


def _clip_step(old: np.ndarray, w_plus: np.ndarray, w_minus: np.ndarray, weight: np.ndarray, eps: float,
               safeguard: bool) -> np.ndarray:
    """The exact maximiser of every row of one position (rows = contexts, flattened)."""
    if eps == math.inf:
        new = _greedy_rows(old, w_plus, w_minus, weight)
    else:
        new = _clean(trust_region.solve_happo_lp(old, w_plus, w_minus, weight, eps), old, support=True)
    if safeguard:
        worse = (weight <= 0) | ~(clipped_row_objective(old, new, w_plus, w_minus, eps)
                                  >= clipped_row_objective(old, old, w_plus, w_minus, eps))
        new = np.where(worse[:, None], old, new)
    return new


def _ar_clip_update(game: MarkovGame, pi: AutoRegressive, clip: object, safeguard: object, sequential: bool) -> AutoRegressive:
    game, pi = _check_ar(game, pi)
    eps = _check_clip(clip)
    safeguard = _check_flag(safeguard, "safeguard")
    n = game.n_agents
    quant = ar_quantities(game, pi)
    new_conds = list(pi.conditionals)
    for k in range(n):
        old = pi.conditionals[k]
        w_plus, w_minus = context_weights(pi, k, quant.adv)
        prefix = _prefix(new_conds if sequential else pi.conditionals, k)
        weight = (quant.rho.reshape((-1,) + (1,) * k) * prefix).reshape(-1)
        a_k = old.shape[-1]
        # per unit of context weight: W+- are conditional on c, so rows of different weight are comparable
        rows = _clip_step(old.reshape(-1, a_k), w_plus.reshape(-1, a_k), w_minus.reshape(-1, a_k), weight, eps, safeguard)
        new_conds[k] = rows.reshape(old.shape)
    return AutoRegressive(pi.order, new_conds)


def mat_exact(game: MarkovGame, pi: AutoRegressive, rng: np.random.Generator | None = None, clip: float = 0.2,
              safeguard: bool = False) -> AutoRegressive:
    """One exact tabular MAT step (module docstring): every conditional ``pi_k(.|c)`` of every context ``c`` with
    ``omega(c) = rho_pi(s) pi(a^{i_{1:k-1}}|s) > 0`` becomes the exact maximiser of its clipped surrogate

        max_P sum_{a_k} [ W+(c, a_k) min(P(a_k)/q(a_k), 1 + eps) + W-(c, a_k) max(P(a_k)/q(a_k), 1 - eps) ],

    ``W+-`` the per-sample sign split of ``pi_k(a_k|c) pi(a^{i_{k+1:n}}|c, a_k) A_pi(s, a)`` summed over the later
    agents (:func:`context_weights`), all positions against the OLD policy (no factor), all at once. Among the maximisers
    the one nearest ``q`` in L1 is taken (:func:`seqmarl.theory.trust_region.solve_happo_lp`); contexts with
    ``omega(c) = 0`` keep ``q``. ``clip`` in ``(0, 1)``, or ``math.inf`` for the unclipped surrogate (each
    conditional greedy in ``Q^{1:k}(c, .)`` on its support). ``rng`` is accepted for the ``update(game, pi, rng)``
    signature of :mod:`seqmarl.theory.iteration` and unused (MAT's order is fixed). ``safeguard=True`` resets any
    row whose exactly re-evaluated objective is below the old row's (solver noise only); the default ``False`` is
    the pure step. ``J`` never drops (module docstring, point 2)."""
    _check_rng(rng)
    return _ar_clip_update(game, pi, clip, safeguard, sequential=False)


def sequential_ar_step(game: MarkovGame, pi: AutoRegressive, rng: np.random.Generator | None = None,
                       clip: float = 0.2, safeguard: bool = False) -> AutoRegressive:
    """The HAPPO-style sequential step on the auto-regressive conditionals: position ``k`` maximises
    ``E_{s ~ rho_pi, a ~ pi}[min(r_k M, clip(r_k) M)]`` with ``M = prod_{j<k} (P_j/pi_j)(a^{i_j}|.) A_pi(s, a)``
    (HAPPO's factor, ICLR22 eq. 10, over the already-updated earlier conditionals), positions in MAT's order.
    The factor depends on ``(s, a^{i_{1:k-1}})`` only, so per context it is the positive constant
    ``P(a^{i_{1:k-1}}|s) / pi(a^{i_{1:k-1}}|s)``: the row weight becomes ``rho_pi(s) P(a^{i_{1:k-1}}|s)``, the
    rows' maximisers do not change, and the joint policy equals :func:`mat_exact`'s (contexts the new policy never
    reaches keep their old row here). Same options as :func:`mat_exact`."""
    _check_rng(rng)
    return _ar_clip_update(game, pi, clip, safeguard, sequential=True)


def mat_kl_exact(game: MarkovGame, pi: AutoRegressive, rng: np.random.Generator | None = None, delta: float = 0.01,
                 safeguard: bool = False) -> AutoRegressive:
    """A KL-constrained MAT step (TRPO's program per conditional, all at once against the old policy): position
    ``k`` solves

        max_P  sum_c w(c) <P_c, g_c>   s.t.  sum_c w(c) KL(pi_k(.|c) || P_c) <= delta,
        g_c(a_k) = Q^{1:k}(c, a_k) - V_pi(s),   w(c) = rho_pi(s) pi(a^{i_{1:k-1}}|s) / sum_s rho_pi(s),

    (``E_{a ~ pi}[r_k A]`` with the expected KL of the conditional under the old sampling distribution), exactly by
    :func:`seqmarl.theory.trust_region.solve_mean_kl_ball`. Contexts with ``w = 0`` keep their row; rows whose gains
    spread by no more than the rounding level ``1e-12 max(1, max|Q|)`` count as indifferent (gain 0). Monotone: at the
    optimum every row has ``<P_c, g_c> - mu KL_c >= <pi_k(.|c), g_c>`` (one multiplier ``mu >= 0``), and the
    decomposition of the module docstring (point 2) does the rest. ``safeguard`` resets rows whose linear gain
    ``<P_c - pi_k(.|c), g_c>`` is negative."""
    _check_rng(rng)
    game, pi = _check_ar(game, pi)
    safeguard = _check_flag(safeguard, "safeguard")
    if isinstance(delta, bool):
        raise TypeError(f"delta must be a real number, got {delta!r}")
    try:
        delta_f = float(delta)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"delta must be a real number, got {delta!r}") from exc
    if not np.isfinite(delta_f) or delta_f <= 0:
        raise ValueError(f"delta must be a positive finite radius, got {delta!r}")
    quant = ar_quantities(game, pi)
    noise = 1e-12 * max(1.0, float(np.max(np.abs(quant.q_chain[-1]))))
    rho_norm = quant.rho / quant.rho.sum()
    new_conds = list(pi.conditionals)
    for k in range(game.n_agents):
        old = pi.conditionals[k]
        a_k = old.shape[-1]
        g = (quant.q_chain[k + 1] - quant.v.reshape((-1,) + (1,) * (k + 1))).reshape(-1, a_k)
        g = np.where((np.ptp(g, axis=1) <= noise)[:, None], 0.0, g)
        w = (rho_norm.reshape((-1,) + (1,) * k) * _prefix(pi.conditionals, k)).reshape(-1)
        old_rows = old.reshape(-1, a_k)
        rows = _clean(trust_region.solve_mean_kl_ball(old_rows, g, w, delta_f), old_rows, support=False)
        if safeguard:
            worse = (w <= 0) | ~(np.sum(g * (rows - old_rows), axis=1) >= 0)
            rows = np.where(worse[:, None], old_rows, rows)
        new_conds[k] = rows.reshape(old.shape)
    return AutoRegressive(pi.order, new_conds)


# --------------------------------------------------------------------------------------------- the bound
def improvement_terms(game: MarkovGame, pi: AutoRegressive, new: AutoRegressive) -> np.ndarray:
    """``T[s, k] = E_{a^{i_{1:k-1}} ~ new(.|s)}[ u_c(new_k(.|c)) - u_c(pi_k(.|c)) ]`` ``[S, n]``, with
    ``u_c(P) = sum_{a_k} P(a_k) Q^{1:k}(c, a_k)`` (old chain). Exact identity (module docstring, point 2):
    ``sum_k T[s, k] = E_{a ~ new(.|s)}[A_pi(s, a)]`` and ``J(new) - J(pi) = sum_s rho_new(s) sum_k T[s, k]``."""
    game, pi = _check_ar(game, pi)
    if not isinstance(new, AutoRegressive) or new.order != pi.order or new.n_actions != pi.n_actions \
            or new.n_states != pi.n_states:
        raise ValueError("new must be an AutoRegressive policy with pi's order and shape")
    quant = ar_quantities(game, pi)
    out = np.zeros((game.n_states, game.n_agents))
    for k in range(game.n_agents):
        chain = quant.q_chain[k + 1]
        diff = np.sum((new.conditionals[k] - pi.conditionals[k]) * chain, axis=-1)  # [S, A_{<k}]
        out[:, k] = (_prefix(new.conditionals, k) * diff).reshape(game.n_states, -1).sum(axis=1)
    return out


def improvement_lower_bound(game: MarkovGame, pi: AutoRegressive, new: AutoRegressive, clip: float = 0.2) -> float:
    """``B = sum_s rho_new(s) sum_k E_{a^{i_{1:k-1}} ~ new}[ h_c(new_k) - h_c(pi_k) ]`` with ``h_c`` the clipped
    surrogate per unit context weight (:func:`clipped_row_objective` of :func:`context_weights`, conditional on c).
    For ``new`` on the old supports, ``J(new) - J(pi) >= B``, and ``B >= 0`` when every reached row is an exact
    maximiser (module docstring, point 2)."""
    game, pi = _check_ar(game, pi)
    eps = _check_clip(clip)
    quant = ar_quantities(game, pi)
    rho_new = evaluate.occupancy(game, new)
    total = 0.0
    for k in range(game.n_agents):
        w_plus, w_minus = context_weights(pi, k, quant.adv)
        gain = (clipped_row_objective(pi.conditionals[k], new.conditionals[k], w_plus, w_minus, eps)
                - clipped_row_objective(pi.conditionals[k], pi.conditionals[k], w_plus, w_minus, eps))
        per_state = (_prefix(new.conditionals, k) * gain).reshape(game.n_states, -1).sum(axis=1)
        total += float(rho_new @ per_state)
    return total


# --------------------------------------------------------------------------------------------- search
REWARD_RANGE = 3  # integer payoffs in [-3, 3]
WEIGHT_MAX = 4  # a conditional row is integer weights in [0, 4] per action, normalised (all zero: uniform)
TRANSITION_STEPS = 4  # P(s' = 0 | s, a) = k / 4
TWO_STATE_GAMMA = 0.5


@dataclass(frozen=True)
class MatCase:
    """One start ``(game, pi)`` and the returns after one step of each update (exact)."""

    game: MarkovGame
    policy: AutoRegressive
    options: dict
    J_old: float
    J_mat: float
    J_sequential: float
    lower_bound: float

    @property
    def decrease(self) -> float:
        """``J_old - J_mat`` (positive would be a counterexample)."""
        return self.J_old - self.J_mat

    def to_text(self) -> str:
        g = self.game
        game_txt = f"one-shot R={g.reward[0].tolist()}" if g.is_one_shot else (
            f"{g.n_states}-state gamma={g.gamma:g} R={g.reward.tolist()}")
        conds = "; ".join(f"pi_{k + 1}={np.round(c, 6).tolist()}" for k, c in enumerate(self.policy.conditionals))
        opts = ", ".join(f"{k}={v}" for k, v in self.options.items())
        return (f"mat_exact({opts}) on {game_txt}, order {self.policy.order}; {conds}: J_old={self.J_old:.6g}, "
                f"J_mat={self.J_mat:.6g}, J_sequential={self.J_sequential:.6g}, lower bound {self.lower_bound:.3g}")


def evaluate_mat_case(game: MarkovGame, policy: AutoRegressive, clip: float = 0.2) -> MatCase:
    """Run :func:`mat_exact` and :func:`sequential_ar_step` (pure) from ``policy``; exact returns and the bound."""
    new = mat_exact(game, policy, clip=clip)
    seq = sequential_ar_step(game, policy, clip=clip)
    return MatCase(game=game, policy=policy, options={"clip": clip}, J_old=expected_return(game, policy),
                   J_mat=expected_return(game, new), J_sequential=expected_return(game, seq),
                   lower_bound=improvement_lower_bound(game, policy, new, clip))


def _row(weights: Sequence[int]) -> np.ndarray:
    w = np.asarray(weights, dtype=np.float64)
    return w / w.sum() if w.sum() > 0 else np.full(w.size, 1.0 / w.size)


def build_ar_case(case: tuple) -> tuple[MarkovGame, AutoRegressive]:
    """Turn a raw integer case (as drawn by :func:`ar_cases`) into ``(game, policy)``, two agents, order (0, 1).

    ``("one-shot", R[A1][A2], w1[A1], w2[A1][A2])``: payoff ``R``; ``pi_1 = w1 / sum w1`` and
    ``pi_2(.|a1) = w2[a1] / sum w2[a1]`` (an all-zero row is uniform).
    ``("two-state", R[2][A1][A2], T[2][A1][A2], w1[2][A1], w2[2][A1][A2])``: ``P(s'=0|s,a) = T/4``,
    ``gamma = 1/2``, uniform initial state."""
    if not isinstance(case, tuple) or not case or case[0] not in ("one-shot", "two-state"):
        raise ValueError(f"case must be a tuple starting with 'one-shot' or 'two-state', got {case!r}")
    if case[0] == "one-shot":
        _, reward, w1, w2 = case
        game = matrix_game(np.array(reward, dtype=np.float64), name="one-shot")
        c1 = _row(w1)[None]
        c2 = np.array([_row(r) for r in w2])[None]
        return game, AutoRegressive((0, 1), [c1, c2])
    _, reward, trans, w1, w2 = case
    p0 = np.array(trans, dtype=np.float64) / TRANSITION_STEPS
    game = MarkovGame(np.array(reward, dtype=np.float64), np.stack([p0, 1.0 - p0], axis=-1), TWO_STATE_GAMMA,
                      np.full(2, 0.5), name="two-state")
    c1 = np.array([_row(r) for r in w1])
    c2 = np.array([[_row(r) for r in per_state] for per_state in w2])
    return game, AutoRegressive((0, 1), [c1, c2])


def ar_cases(one_shot: bool = True, two_state: bool = True, max_actions: int = 3):
    """Hypothesis strategy of raw cases for :func:`build_ar_case`: two agents with 2..``max_actions`` actions each,
    integer payoffs and integer conditional weights (zeros allowed, so deterministic rows and abandoned actions occur;
    shrinking goes to small payoffs and uniform rows)."""
    from hypothesis import strategies as st

    if not (one_shot or two_state):
        raise ValueError("at least one of one_shot and two_state must be True")
    r = st.integers(-REWARD_RANGE, REWARD_RANGE)
    w = st.integers(0, WEIGHT_MAX)

    def grid(elem, *shape):
        out = elem
        for size in reversed(shape):
            out = st.lists(out, min_size=size, max_size=size).map(tuple)
        return out

    def one(a1: int, a2: int):
        return st.tuples(st.just("one-shot"), grid(r, a1, a2), grid(w, a1), grid(w, a1, a2))

    def two(a1: int, a2: int):
        return st.tuples(st.just("two-state"), grid(r, 2, a1, a2), grid(st.integers(0, TRANSITION_STEPS), 2, a1, a2),
                         grid(w, 2, a1), grid(w, 2, a1, a2))

    sizes = st.tuples(st.integers(2, max_actions), st.integers(2, max_actions))
    options = []
    if one_shot:
        options.append(sizes.flatmap(lambda s: one(*s)))
    if two_state:
        options.append(sizes.flatmap(lambda s: two(*s)))
    return st.one_of(*options)


def find_mat_decrease(max_examples: int = 200, seed: int = 0, one_shot: bool = True, two_state: bool = True,
                      min_decrease: float = 1e-6, clip: float = 0.2,
                      update: Callable[..., AutoRegressive] | None = None) -> MatCase:
    """Hypothesis search (``hypothesis.find``, target on the decrease, shrinking on; no example database and a
    fixed ``random.Random(seed)``, so deterministic) for a small game and auto-regressive policy with

        J(update(pi)) < J(pi) - min_decrease,       update = mat_exact (pure, ``safeguard=False``) by default.

    ``min_decrease = 1e-6`` is far above the rounding of the exact solver. Raises ``LookupError`` when nothing is
    found, which is what the bound of the module docstring predicts for :func:`mat_exact`."""
    from hypothesis import HealthCheck, Phase, find, settings, target
    from hypothesis.errors import NoSuchExample

    update = mat_exact if update is None else update
    if not callable(update):
        raise TypeError(f"update must be callable (game, pi, clip=...), got {update!r}")
    if isinstance(max_examples, bool) or not isinstance(max_examples, (int, np.integer)) or max_examples < 1:
        raise ValueError(f"max_examples must be a positive integer, got {max_examples!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed must be an integer, got {type(seed).__name__}")
    if not np.isfinite(min_decrease) or min_decrease < 0:
        raise ValueError(f"min_decrease must be a finite number >= 0, got {min_decrease}")
    eps = _check_clip(clip)

    def condition(case: tuple) -> bool:
        game, policy = build_ar_case(case)
        drop = expected_return(game, policy) - expected_return(game, update(game, policy, clip=eps))
        target(float(drop), label="MAT decrease")
        return drop > min_decrease

    config = settings(max_examples=int(max_examples), database=None, deadline=None, derandomize=False,
                      phases=[Phase.generate, Phase.target, Phase.shrink], suppress_health_check=list(HealthCheck))
    try:
        case = find(ar_cases(one_shot, two_state), condition, settings=config, random=random.Random(int(seed)))
    except NoSuchExample as exc:
        raise LookupError(f"no decrease of J by {getattr(update, '__name__', update)} in {max_examples} examples") from exc
    game, policy = build_ar_case(case)
    return evaluate_mat_case(game, policy, eps)


# --------------------------------------------------------------------------------------------- hand-made cases
def adversarial_cases() -> list[tuple[str, MarkovGame, AutoRegressive]]:
    """Deterministic starts chosen to stress the factor-free clip (theory.md §8 games):

    * climbing (``R = [[11, -30, 0], [-30, 7, 6], [0, 0, 5]]``) with agent 1 spread over the cliff and agent 2's
      conditionals mixing the -30 and 11 cells, so that the joint advantage of agent 2's samples changes sign with
      its own action while agent 1 moves at the same time;
    * penalty(-100) near the two optima, agent 2 hedging against agent 1's switch;
    * the xor-like product payoff ``[[1, -1], [-1, 1]]`` just off its saddle, where the same factor-free loss on
      decentralised policies lowers ``J`` (:func:`decentralised_counterexample`);
    * a two-state chain where agent 1's action moves the state and agent 2's conditional is nearly indifferent."""
    from .games import climbing, penalty

    cases = []
    cl = climbing()
    cases.append(("climbing, cliff", cl, AutoRegressive((0, 1), [
        np.array([[0.4, 0.35, 0.25]]),
        np.array([[[0.3, 0.1, 0.6], [0.45, 0.5, 0.05], [0.2, 0.2, 0.6]]]),
    ])))
    cases.append(("climbing, reversed order", cl, AutoRegressive((1, 0), [
        np.array([[0.34, 0.33, 0.33]]),
        np.array([[[0.34, 0.33, 0.33], [0.2, 0.5, 0.3], [0.1, 0.1, 0.8]]]),
    ])))
    pe = penalty(-100.0)
    cases.append(("penalty(-100), hedging", pe, AutoRegressive((0, 1), [
        np.array([[0.49, 0.02, 0.49]]),
        np.array([[[0.5, 0.0, 0.5], [0.3, 0.4, 0.3], [0.5, 0.0, 0.5]]]),
    ])))
    xor_like = matrix_game(np.array([[1.0, -1.0], [-1.0, 1.0]]), name="a1*a2 (xor-like)")
    cases.append(("a1*a2 off the saddle", xor_like, AutoRegressive.from_joint(
        np.outer([0.48, 0.52], [0.52, 0.48])[None], (0, 1))))
    reward = np.array([[[1.0, 0.0], [0.0, 2.0]], [[-1.0, 3.0], [0.5, 0.0]]])
    to0 = np.array([[[1.0, 0.75], [0.0, 0.25]], [[0.5, 0.5], [0.0, 1.0]]])
    chain = MarkovGame(reward, np.stack([to0, 1.0 - to0], axis=-1), 0.9, np.array([1.0, 0.0]), name="two-state chain")
    cases.append(("two-state chain, gamma 0.9", chain, AutoRegressive((0, 1), [
        np.array([[0.5, 0.5], [0.6, 0.4]]),
        np.array([[[0.5, 0.5], [0.49, 0.51]], [[0.5, 0.5], [0.5, 0.5]]]),
    ])))
    return cases


def decentralised_counterexample(clip: float = 0.2) -> tuple[MarkovGame, Factorized, dict]:
    """The same per-agent, factor-free clipped loss on decentralised conditionals lowers ``J``: ``R = [[1, -1],
    [-1, 1]]`` (one shot), ``pi^1(0) = 0.48``, ``pi^2(0) = 0.52``, ``J = -0.0016``. Each agent's exact clipped step
    (``iteration.happo_exact(simultaneous=True)``) moves it across the saddle (agent 1 to ``0.576``, agent 2 to
    ``0.424``) and ``J`` drops to ``-0.023104``; the sequential HAPPO step (factor) and :func:`mat_exact` on the same
    joint policy written auto-regressively do not lower ``J``. Returns ``(game, policy, returns)`` with the exact
    returns of the three steps."""
    from .iteration import happo_exact

    game = matrix_game(np.array([[1.0, -1.0], [-1.0, 1.0]]), name="a1*a2 (xor-like)")
    pi = Factorized([np.array([[0.48, 0.52]]), np.array([[0.52, 0.48]])])
    rng = np.random.default_rng(0)
    ar = AutoRegressive.from_joint(pi.probs(), (0, 1))
    returns = {
        "J_old": expected_return(game, pi),
        "J_decentralised": expected_return(game, happo_exact(game, pi, rng, clip=clip, simultaneous=True, safeguard=False)),
        "J_happo_sequential": min(expected_return(game, happo_exact(game, pi, rng, clip=clip, order=o, safeguard=False))
                                  for o in ((0, 1), (1, 0))),
        "J_mat": expected_return(game, mat_exact(game, ar, clip=clip)),
    }
    return game, pi, returns
