"""What a value-decomposition learner learned on a one-shot matrix game, next to what its class can represent.

On a one-shot game (one state, episodes of one step, ``gamma`` irrelevant) every target is the reward, so the
learners minimise ``sum_u w(u) (Q_tot(u) - r(u))^2`` where ``w`` are the joint-action counts in the replay: the
exact oracle of the learned ``Q_tot`` is the best fit of the learner's class under THOSE weights
(:mod:`seqmarl.theory.factorization`): the least-squares additive fit for VDN (closed form), for QMIX the best
fit of its mixing network's class (monotone AND supermodular in the utilities, :func:`~seqmarl.theory.factorization.
qmix_network_fit`, QP; the best monotone fit is reported beside it), the payoff itself for QPLEX (IGM-complete: an exact fit, or its closure when the optimal set is
not a product), and for IQL each agent's conditional mean reward ``E_w[r | a_i]`` (every agent regresses on the
team reward alone). Weighted QMIX minimises a re-weighted loss on purpose; its row shows QMIX's unweighted fit
for reference. :func:`value_fit_report` reads the learned table out of the agent (every joint action through
the mixer) and compares.

Note on QMIX: its network (one ELU layer, non-negative mixing weights) is monotone, convex and supermodular in
the utilities (the lemma of ``qmix_network_fit``), so it represents only part of the monotone class; on climbing
and penalty the best supermodular fit is ~1.4x the best monotone one, and no QMIX mixer can get below it.
Training is non-convex: each learned QMIX fit sits in the cone of the utility ordering it picked, and the report
gives that cone's exact best fit too (``cone_residual``): a fit can be the exact optimum of its cone and still
miss the class optimum, which lies in another cone (qtran: the basin the QTRAN paper's Table 1 shows for QMIX).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch

from seqmarl.theory import factorization as fz

ORACLE_CLASS = {"vdn": "additive (VDN least squares)",
                "qmix": "monotone + supermodular (QMIX network class, QP); monotone fit beside it",
                "qplex": "IGM-complete (the payoff itself)",
                None: "IQL: each utility is E_w[r | a_i]; the read-out is sum_i Q_i(a_i)"}


@dataclass
class ValueFitReport:
    """Learned ``Q_tot`` vs the oracle fit of its class, both under the replay's joint-action weights."""

    algo: str
    mixer: str | None
    weights: list  # joint-action counts in the replay
    learned: list  # Q_tot(u) for every joint action u
    oracle: list | None  # the class's best fit (IQL: sum_i E_w[r | a_i]; Weighted QMIX: QMIX's unweighted fit)
    monotone_residual: float | None  # QMIX mixers: the best MONOTONE fit's residual (the larger class), else None
    cone_orders: tuple | None  # QMIX mixers: each agent's actions sorted by its learned utility (ascending)
    cone_residual: float | None  # QMIX mixers: the class's best fit with the utilities in cone_orders (QP)
    payoff: list
    learned_residual: float  # sum_u w(u) (Q_tot(u) - r(u))^2 / sum_u w(u)
    oracle_residual: float | None
    max_abs_error: float | None  # max_u |Q_tot(u) - oracle(u)| over the support of w
    learned_greedy: tuple  # argmax of the learned Q_tot (first maximiser)
    oracle_greedy: tuple | None  # argmax set of the oracle fit (every maximiser, to tol; QMIX: over all tied optima)
    individual_greedy: tuple  # per-agent argmax of the utilities (first maximiser)
    learned_greedy_set: tuple  # joint actions within greedy_tol of max Q_tot
    individual_greedy_sets: tuple  # per agent, actions within greedy_tol of its max utility
    igm_consistent: bool  # IGM: the tuple of per-agent argmaxes attains max Q_tot (float64 read-out, 1e-9 relative)
    greedy_tol: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _conditional_mean(payoff: np.ndarray, weights: np.ndarray, agent: int) -> np.ndarray:
    """``E_w[r | a_agent]`` broadcast over the joint table (an action never played gets 0)."""
    others = tuple(j for j in range(payoff.ndim) if j != agent)
    num = (weights * payoff).sum(axis=others, keepdims=True)
    den = weights.sum(axis=others, keepdims=True)
    return np.broadcast_to(np.where(den > 0, num / np.where(den > 0, den, 1.0), 0.0), payoff.shape)


def _argmax_set(table: np.ndarray, tol: float) -> tuple:
    top = table.max()
    return tuple(tuple(int(i) for i in idx) for idx in np.argwhere(table >= top - tol))


def _greedy_over_ties(payoff: np.ndarray, weights: np.ndarray, fit: Any, tol: float) -> tuple:
    """The union of the argmax sets of every optimal fit: one per ordering tuple in ``fit.tied_orders`` (each QP
    has a unique solution when all weights are positive). The greedy joint action of the class's best fit is
    unique iff this has one element (xor(2): the tied orderings put the maximum on different cells)."""
    cells: set = set()
    for orders in fit.tied_orders:
        tied = fz.qmix_network_fit(payoff, weights, orders=[orders])
        scale = 1e-7 * (1.0 + float(np.abs(payoff).max()))
        cells.update(_argmax_set(tied.fitted, max(tol, scale)))
    return tuple(sorted(cells))


@torch.no_grad()
def value_fit_report(agent: Any, env: Any, tol: float = 1e-9, greedy_tol: float = 1e-4) -> ValueFitReport:
    """Compare ``agent`` (a :class:`~seqmarl.algos.ValueDecompositionAgent`) trained on ``env`` (a one-shot
    :class:`~seqmarl.envs.MatrixGameEnv`) with the oracle of its class (module docstring). Greedy SETS use the
    absolute tolerance ``greedy_tol * (1 + max |r|)`` (informative: float32 training ties only approximately).
    IGM is checked on the exact read-out: the networks are evaluated in float64 and the tuple of per-agent argmax
    actions must attain ``max_u Q_tot(u)`` to 1e-9 relative."""
    if getattr(agent, "family", None) != "off_policy":
        raise TypeError(f"agent must be a value-decomposition agent, got {type(agent).__name__}")
    game = getattr(env, "game", None)
    if game is None or game.n_states != 1 or env.spec.episode_limit != 1:
        raise ValueError("value_fit_report needs a one-shot matrix game env (one state, episodes of one step)")
    if len(agent.replay) == 0:
        raise ValueError("the agent's replay is empty: train it first")
    payoff = np.asarray(game.reward[0], dtype=np.float64)
    shape = payoff.shape
    obs, state, avail = env.observation_of_state(0), env.state_of_state(0), env.avail_actions_of_state(0)
    agent.modules.double()  # read out in float64 (exact ties stay ties); float32 -> float64 -> float32 is exact
    try:
        learned_full = agent.joint_q(obs[None], state[None], avail[None])[0].cpu().numpy()
        util = agent.utilities(obs[None])[0].cpu().numpy()
    finally:
        agent.modules.float()
    learned = learned_full[tuple(slice(0, a) for a in shape)]
    actions = agent.replay.all().actions[:, 0].cpu().numpy()
    weights = np.zeros(shape)
    np.add.at(weights, tuple(actions.T), 1.0)
    total = weights.sum()
    learned_residual = float((weights * (learned - payoff) ** 2).sum() / total)
    mixer = agent.config.mixer
    oracle: np.ndarray | None
    monotone_residual = cone_residual = cone_orders = None
    oracle_greedy = None
    if mixer == "vdn":
        oracle = fz.vdn_fit(payoff, weights).fitted
    elif mixer == "qmix":
        fit = fz.qmix_network_fit(payoff, weights)
        oracle = fit.fitted
        oracle_greedy = _greedy_over_ties(payoff, weights, fit, tol)
        monotone_residual = float(fz.qmix_best_fit(payoff, weights).residual / weights.sum())
        cone_orders = tuple(tuple(int(a) for a in np.argsort(util[i, : shape[i]], kind="stable"))
                            for i in range(len(shape)))
        cone_residual = float(fz.qmix_network_fit(payoff, weights, orders=[cone_orders]).residual / weights.sum())
    elif mixer == "qplex":
        oracle = payoff.copy()
    else:  # IQL: each Q_i(a_i) regresses on r, so it is E_w[r | a_i]; compare the same read-out, sum_i Q_i(a_i)
        oracle = sum(_conditional_mean(payoff, weights, i) for i in range(len(shape)))
    individual = tuple(int(np.argmax(util[i, : shape[i]])) for i in range(len(shape)))
    learned_greedy = tuple(int(i) for i in np.unravel_index(int(np.argmax(learned)), shape))
    support = weights > 0
    gtol = float(greedy_tol) * (1.0 + float(np.abs(payoff).max()))
    sets = tuple(tuple(int(a) for a in np.flatnonzero(util[i, : shape[i]] >= util[i, : shape[i]].max() - gtol))
                 for i in range(len(shape)))
    learned_set = _argmax_set(learned, gtol)
    return ValueFitReport(
        algo=type(agent.config).algo_name, mixer=mixer, weights=weights.tolist(), learned=learned.tolist(),
        oracle=None if oracle is None else oracle.tolist(), monotone_residual=monotone_residual,
        cone_orders=cone_orders, cone_residual=cone_residual,
        payoff=payoff.tolist(),
        learned_residual=learned_residual,
        oracle_residual=None if oracle is None else float((weights * (oracle - payoff) ** 2).sum() / total),
        max_abs_error=None if oracle is None else float(np.abs(learned - oracle)[support].max()),
        learned_greedy=learned_greedy,
        oracle_greedy=oracle_greedy if oracle_greedy is not None else (
            None if oracle is None else _argmax_set(oracle, tol)),
        individual_greedy=individual,
        learned_greedy_set=learned_set,
        individual_greedy_sets=sets,
        igm_consistent=bool(learned[individual] >= learned.max() - 1e-9 * (1.0 + float(np.abs(learned).max()))),
        greedy_tol=gtol,
    )


def _cosine_fit(agent: Any, lr: float, steps: int, cosine: bool) -> None:
    """``steps - 1`` further full-batch updates, step size ``lr/2 (1 + cos(pi k / steps))`` (or ``lr``)."""
    for k in range(1, int(steps)):
        for group in agent.optimizer.param_groups:
            group["lr"] = 0.5 * lr * (1.0 + math.cos(math.pi * k / steps)) if cosine else lr
        agent.update()


@torch.no_grad()
def training_loss(agent: Any) -> float:
    """The agent's own loss on its whole replay (what :func:`fit_on_uniform_data` selects restarts by)."""
    return float(agent.loss(agent.replay.all())[0])


def fit_on_uniform_data(algo: str, game: Any, episodes_per_action: int = 10, steps: int = 1000, lr: float = 0.01,
                        seed: int = 0, epsilon: float = 1.0, cosine: bool = True, restarts: int = 1,
                        **overrides: Any) -> tuple[Any, Any]:
    """Train ``algo`` on ``game`` the way the oracle tests do: one batch of ``episodes_per_action x |A|`` one-step
    episodes collected with ``epsilon``-greedy (1.0: uniform), then ``steps`` full-batch Adam updates
    (``agent.update``) on the whole replay with a cosine step-size decay from ``lr`` to 0 (``cosine``; a fitting schedule of
    this harness, not of the algorithm: targets are rewards, so this converges to the class's fit under the
    replay's weights without the step-size jitter of a constant rate).

    ``restarts`` > 1 fits that many networks (initialisation seeds ``seed``, ``seed + 1000``, ...) on the SAME replay
    and keeps the one with the lowest training loss (:func:`training_loss`; the oracle plays no part in the choice).
    Mixing networks are non-convex in their parameters: QMIX's fit settles in the basin of one utility ordering, and
    from some initialisations that basin is not the best one (e.g. xor(2), seed 0: the additive fit, 1.4x the
    class optimum). Returns ``(agent, env)``."""
    from seqmarl.algos import Trainer, TrainerConfig, make_agent
    from seqmarl.envs.matrix import MatrixGameEnv

    if isinstance(restarts, bool) or not isinstance(restarts, int) or restarts < 1:
        raise ValueError(f"restarts must be an int >= 1, got {restarts!r}")
    n = int(np.prod(game.n_actions)) * int(episodes_per_action)
    env = MatrixGameEnv(game, num_envs=n, seed=seed)
    kw = dict(batch_size=n, buffer_size=n, epsilon_start=epsilon, epsilon_finish=epsilon, use_rnn=False,
              optimizer="adam", lr=lr, updates_per_iteration=1, target_update_interval=10**9)
    kw.update(overrides)
    agent = make_agent(algo, env.spec, seed=seed, **kw)
    Trainer(env, agent, TrainerConfig(total_steps=n, rollout_length=1, progress=False, tensorboard=False),
            seed=seed).train()  # collects the data and takes the first update
    _cosine_fit(agent, lr, steps, cosine)
    best, best_loss = agent, training_loss(agent)
    for k in range(1, restarts):
        other = make_agent(algo, env.spec, seed=seed + 1000 * k, **kw)
        other.replay.load_state_dict(agent.replay.state_dict())
        other.update()
        _cosine_fit(other, lr, steps, cosine)
        loss = training_loss(other)
        if loss < best_loss:
            best, best_loss = other, loss
    return best, env
