"""Every defining ingredient of MAPPO/IPPO, HAPPO, HAA2C and HATRPO has a test here that fails without it.

Set-up (theory.md §1.10-§1.11, §2.3): tabular policies (one-hot state input, one linear layer: logits
``W[:, s] + b``) on a one-shot random game with 2 states, 3 agents and 3 actions (``gamma = 0``, so the
improper occupancy is the initial distribution and ``A = r - V``). A batch of ``N`` joint actions is drawn
from the actors and pushed through the real pipeline (``RolloutBuffer -> agent.update``) with advantages
``A_hat = r(s, a) - b(s)`` (the critic value we insert; advantages not normalised). Spies wrap the update's
internals (monkeypatched module functions of ``seqmarl.algos.actor_updates``) and compare what the algorithm
computes with an independent computation from deep copies of the pre-update actors:

* the factor handed to agent ``i_m`` is ``prod_{j before i_m} pi^j_now(a^j|s) / pi^j_pre(a^j|s)``;
* the order is identity with ``fixed_order=True`` and a uniform random permutation otherwise (chi-square);
* the objective is ``mean(f * min(r A, clip(r) A))`` (HAPPO), ``mean(f r A)`` (HAA2C),
  ``mean_{b,i} min(r^i A, clip(r^i) A)`` (MAPPO/IPPO), value and gradient;
* per-sample ``d objective / d r`` is 0 exactly where the clip binds (``A > 0, r > 1 + eps`` or
  ``A < 0, r < 1 - eps``) and ``f A / m`` elsewhere;
* ratios use the PRE-update log-probs: exactly 1 at each agent's first step, and far from 1 later;
* the entropy bonus raises the entropy (zero advantages);
* masked actions: zero probability, and their logits never move;
* oracle (ICLR22 Prop. 3 / eq. 10): the sampled gradient of agent ``i_m``'s first step equals the exact
  gradient of the surrogate ``L^{i_{1:m}}(pibar^{i_{1:m-1}}, pi^{i_m}_theta)`` (``theory.multiagent``) within
  ``K_SE`` standard errors computed from the per-sample gradient terms, and the sampled objective at ``r = 1``
  equals ``E_{a ~ pi}[M]`` with ``M = theory.multiagent.estimator_m(...)``.
"""

from __future__ import annotations

import copy
import itertools
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
import torch
from scipy import stats

from seqmarl.algos import actor_updates, make_agent
from seqmarl.algos.core.buffer import RolloutBuffer
from seqmarl.envs import make
from seqmarl.theory import Factorized, multiagent
from seqmarl.theory.evaluate import occupancy

Tensor = torch.Tensor
N_AGENTS, N_ACTIONS, N_STATES = 3, 3, 2
K_SE = 5.0  # CLT bound: |sampled - exact| <= K_SE standard errors per gradient component
EPS = 0.2  # PPO clip


# ================================================================================================ set-up
@dataclass
class Setup:
    """An agent with tabular actors, its env/game and one batch of data (flat index = env index, T = 1)."""

    agent: Any
    env: Any
    game: Any
    states: Tensor  # [N]
    obs: Tensor  # [N, n, S]
    actions: Tensor  # [N, n]
    rewards: Tensor  # [N]
    values: Tensor  # [N] or [N, n]: the critic values inserted in the buffer (A_hat = r - value)
    avail: Tensor | None  # [N, n, A]

    @property
    def n(self) -> int:
        return self.states.shape[0]

    def advantages(self) -> Tensor:
        """``A_hat[N, n]`` the update sees (gamma irrelevant: every step terminates)."""
        v = self.values if self.values.dim() == 2 else self.values.unsqueeze(-1).expand(-1, N_AGENTS)
        return self.rewards.unsqueeze(-1) - v

    def buffer(self) -> RolloutBuffer:
        agent = self.agent
        buf = agent.make_buffer(1, self.n)
        with torch.no_grad():
            lp = agent.actors.log_prob(self.obs, self.actions, self.avail)
        state = self.obs[:, 0]
        done = torch.ones(self.n, dtype=torch.bool)
        buf.insert(obs=self.obs, state=state, actions=self.actions, log_probs=lp, rewards=self.rewards,
                   values=self.values, next_values=torch.zeros_like(self.values), terminated=done,
                   truncated=torch.zeros_like(done),
                   avail_actions=self.avail if self.avail is not None else torch.ones(self.n, N_AGENTS, N_ACTIONS,
                                                                                         dtype=torch.bool))
        return buf

    def update(self) -> dict[str, float]:
        return self.agent.update(self.buffer())


def _linear_heads(agent_or_actors) -> list[torch.nn.Linear]:
    """The linear policy heads (one if the actor is shared) of an agent or of its ``MultiAgentActors``."""
    actors = getattr(agent_or_actors, "actors", agent_or_actors)
    if isinstance(actors, torch.nn.ModuleList):
        actors = agent_or_actors
    return [actors.actors[0].head.linear] if actors.share else [actors.actor_of(i).head.linear for i in range(N_AGENTS)]


def make_setup(algo: str, n: int = 2000, seed: int = 0, *, mask: bool = False, zero_adv: bool = False,
               baseline: str = "zero", scale: float = 1.0, **overrides: Any) -> Setup:
    """Tabular ``algo`` agent (``hidden=()``, no value normalisation, advantages not normalised, one minibatch)
    with random non-uniform logits; ``N = n`` samples with states from the initial distribution and actions
    from the actors. ``mask``: action 2 unavailable in state 0 for every agent. ``zero_adv``: values = rewards.
    ``baseline``: ``"zero"`` or ``"per_agent"`` (decentralised critic: ``b_i = 0.3 i``)."""
    env = make("matrix/random", n_agents=N_AGENTS, n_actions=N_ACTIONS, n_states=N_STATES, gamma=0.0,
               game_seed=seed + 11, num_envs=1)
    game = env.game
    kw: dict[str, Any] = dict(hidden=(), use_value_norm=False, adv_norm="none", entropy_coef=0.0)
    kw.update(overrides)
    agent = make_agent(algo, env.spec, seed=seed, **kw)
    g = torch.Generator().manual_seed(seed + 1000)
    with torch.no_grad():
        for lin in _linear_heads(agent):
            lin.weight.copy_(scale * torch.randn(lin.weight.shape, generator=g))
            lin.bias.copy_(0.5 * scale * torch.randn(lin.bias.shape, generator=g))
        init = torch.tensor(np.array(game.initial), dtype=torch.float64)
        states = torch.multinomial(init, n, replacement=True, generator=g)
        obs = env.observation_table()[states]
        avail = None
        if mask:
            avail = torch.ones(n, N_AGENTS, N_ACTIONS, dtype=torch.bool)
            avail[states == 0, :, 2] = False
        actions, _ = agent.actors.sample(obs, avail, generator=g)
        idx = (states.numpy(),) + tuple(actions[:, i].numpy() for i in range(N_AGENTS))
        rewards = torch.as_tensor(game.reward[idx], dtype=torch.float32)
        centralised = agent.config.critic == "centralised"
        if zero_adv:
            values = rewards.clone() if centralised else rewards.unsqueeze(-1).repeat(1, N_AGENTS)
        elif centralised:
            values = torch.zeros(n)
        else:
            per = torch.zeros(N_AGENTS)
            if baseline == "per_agent":
                per = 0.3 * torch.arange(N_AGENTS, dtype=torch.float32)
            values = per.expand(n, N_AGENTS).clone()
    return Setup(agent, env, game, states, obs, actions, rewards, values, avail)


# ================================================================================================ spy
def _rel_err(got: Tensor, ref: Tensor) -> float:
    """``|got - ref| / max(1, |ref|)`` of two scalars."""
    g, r = float(got.detach()), float(ref.detach())
    return abs(g - r) / max(1.0, abs(r))


@dataclass
class Record:
    order: list[int] = field(default_factory=list)
    factor_err: list[float] = field(default_factory=list)
    objective_err: list[float] = field(default_factory=list)
    grad_err: list[float] = field(default_factory=list)
    first_grad: dict[int, dict[str, Tensor]] = field(default_factory=dict)  # agent -> name -> grad (ascent)
    first_objective: dict[int, float] = field(default_factory=dict)
    first_factor: dict[int, Tensor] = field(default_factory=dict)
    first_idx: dict[int, Tensor] = field(default_factory=dict)
    ratio_first_is_one: list[bool] = field(default_factory=list)
    ratio_err: list[float] = field(default_factory=list)
    ratio_far: int = 0  # samples seen with |r - 1| > 2 eps
    clip_grad_err: list[float] = field(default_factory=list)
    clipped_samples: int = 0  # samples in the clipped region (zero gradient expected)
    pessimistic_samples: int = 0  # outside [1-eps, 1+eps] but NOT clipped (gradient kept)
    product_vs_factor_gap: float = 0.0  # max |mean f min(rA, clip(r)A) - mean min(frA, clip(fr)A)|
    entropy_err: list[float] = field(default_factory=list)


class Spy:
    """Monkeypatches ``actor_updates`` internals and checks every call against an independent computation
    from the live actors (``now``) and a deep copy taken before the update (``pre``)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, s: Setup) -> None:
        self.s = s
        self.agent = s.agent
        self.pre = copy.deepcopy(s.agent.actors)
        self.rec = Record()
        self.last: tuple[int, Tensor] | None = None
        self.every: tuple[Tensor, int] | None = None  # (minibatch indices, agents) of the last all-agent call
        self.current: int | None = None
        self._seen_ratio: set[int] = set()
        cfg = s.agent.config
        self.kind = cfg.actor_update
        au = actor_updates
        orig = {name: getattr(au, name) for name in ("_trainable", "_agent_log_prob", "_ratio", "_sequential_objective",
                                                     "ppo_clip_objective", "natural_step", "_agent_entropy",
                                                     "_agent_log_prob_and_entropy",
                                                     "_every_agent_log_prob_and_entropy")}
        self.orig = orig

        def trainable(agent, i):
            if i not in self.rec.order:
                self.rec.order.append(i)
            self.current = i
            return orig["_trainable"](agent, i)

        def agent_log_prob(agent, i, batch, idx):
            self.last = (i, self._index(idx))
            return orig["_agent_log_prob"](agent, i, batch, idx)

        def agent_log_prob_and_entropy(agent, i, batch, idx):  # the fused call (one forward pass)
            self.last = (i, self._index(idx))
            lp, ent = orig["_agent_log_prob_and_entropy"](agent, i, batch, idx)
            if self.kind == "joint_clip":
                self.check_entropy(i, self._index(idx), ent.mean())
            return lp, ent

        def every_agent_log_prob_and_entropy(agent, batch, idx):  # MAPPO: all agents' log-probs in one call
            lps, ents = orig["_every_agent_log_prob_and_entropy"](agent, batch, idx)
            self.every = (self._index(idx), len(lps))
            for i, ent in enumerate(ents):
                self.check_entropy(i, self._index(idx), ent.mean())
            return lps, ents

        def ratio(agent, new_lp, old_lp, i):
            out = orig["_ratio"](agent, new_lp, old_lp, i)
            if self.kind == "joint_clip" and self.every is not None:  # agent i's column of the all-agent call
                idx = self.every[0]
            else:
                assert self.last is not None and self.last[0] == i
                idx = self.last[1]
            expected = self.ratio_ind(i, idx).detach()
            if i not in self._seen_ratio:
                self._seen_ratio.add(i)
                self.rec.ratio_first_is_one.append(bool(torch.all(out.detach() == 1.0)))
            self.rec.ratio_err.append(float((out.detach() - expected).abs().max()))
            self.rec.ratio_far += int(((out.detach() - 1).abs() > 2 * EPS).sum())
            return out

        def sequential_objective(agent, i, batch, idx, factor):
            if i not in self.rec.order:  # minibatch_outer asks for the parameters after the objective
                self.rec.order.append(i)
            objective, entropy = orig["_sequential_objective"](agent, i, batch, idx, factor)
            self.check_sequential(i, self._index(idx), factor, objective)
            self.check_entropy(i, self._index(idx), entropy)
            return objective, entropy

        def clip_objective(ratio, adv, clip, weight=None, mask=None, reduction="mean"):
            out = orig["ppo_clip_objective"](ratio, adv, clip, weight=weight, mask=mask, reduction=reduction)
            self.check_clip(ratio, adv, clip, weight, out)
            if self.kind == "joint_clip":
                self.check_joint(out)
            return out

        def natural_step(g, fvp, max_kl, cg_iters=10, residual_tol=1e-10):
            i = self.current
            if i not in self.rec.first_grad:
                self.rec.first_grad[i] = self._named(i, g)
            return orig["natural_step"](g, fvp, max_kl, cg_iters, residual_tol)

        def agent_entropy(agent, i, batch, idx):
            out = orig["_agent_entropy"](agent, i, batch, idx)
            if self.kind == "joint_clip":
                self.check_entropy(i, self._index(idx), out.mean())
            return out

        for name, fn in (("_trainable", trainable), ("_agent_log_prob", agent_log_prob), ("_ratio", ratio),
                         ("_sequential_objective", sequential_objective), ("ppo_clip_objective", clip_objective),
                         ("natural_step", natural_step), ("_agent_entropy", agent_entropy),
                         ("_agent_log_prob_and_entropy", agent_log_prob_and_entropy),
                         ("_every_agent_log_prob_and_entropy", every_agent_log_prob_and_entropy)):
            monkeypatch.setattr(au, name, fn)

    # ---------------------------------------------------------------- independent quantities
    def _index(self, idx) -> Tensor:
        return torch.arange(self.s.n) if isinstance(idx, slice) else idx

    def _avail(self, i: int, idx: Tensor) -> Tensor | None:
        return None if self.s.avail is None else self.s.avail[idx, i]

    def lp(self, actors, i: int, idx: Tensor) -> Tensor:
        """``log pi^i(a^i|s)`` on samples ``idx`` under ``actors`` (graph kept for the live actors)."""
        return actors.log_prob_agent(i, self.s.obs[idx, i], self.s.actions[idx, i], self._avail(i, idx))

    def ratio_ind(self, i: int, idx: Tensor) -> Tensor:
        """``pi^i_now / pi^i_pre`` on ``idx``, differentiable in the live parameters."""
        with torch.no_grad():
            pre = self.lp(self.pre, i, idx)
        return torch.exp(self.lp(self.agent.actors, i, idx) - pre)

    def exact_factor(self, i: int, idx: Tensor) -> Tensor:
        """``prod_{j updated before i} pi^j_now / pi^j_pre`` (1 with ``simultaneous``)."""
        f = torch.ones(idx.numel())
        if self.agent.config.simultaneous:
            return f
        with torch.no_grad():
            for j in self.rec.order[: self.rec.order.index(i)]:
                f = f * self.ratio_ind(j, idx)
        return f

    def _params(self, i: int) -> list[tuple[str, torch.nn.Parameter]]:
        actors = self.agent.actors
        module = actors.actors[0] if actors.share else actors.actor_of(i)
        return [(k, p) for k, p in module.named_parameters() if p.requires_grad]

    def _named(self, i: int, flat: Tensor) -> dict[str, Tensor]:
        out, k = {}, 0
        for name, p in self._params(i):
            out[name] = flat[k: k + p.numel()].detach().reshape(p.shape).clone()
            k += p.numel()
        return out

    def _grad(self, objective: Tensor, i: int) -> dict[str, Tensor]:
        params = self._params(i)
        grads = torch.autograd.grad(objective, [p for _, p in params], retain_graph=True, allow_unused=True)
        return {k: (torch.zeros_like(p) if g is None else g.detach().clone()) for (k, p), g in zip(params, grads)}

    def adv_seen(self) -> Tensor:
        """The advantages the objective must use: ``A_hat`` (``adv_norm="none"``) or, with ``adv_norm="batch"``
        (HARL), ``(A_hat - mean) / (std + 1e-5)`` over the whole batch before any minibatching."""
        adv = self.s.advantages()
        norm = self.agent.config.adv_norm
        if norm == "none":
            return adv
        assert norm == "batch", norm
        return (adv - adv.mean()) / (adv.std(correction=0) + 1e-5)

    # ---------------------------------------------------------------- checks
    def check_sequential(self, i: int, idx: Tensor, factor: Tensor, objective: Tensor) -> None:
        rec = self.rec
        f_exact = self.exact_factor(i, idx)
        rec.factor_err.append(float(((factor.detach() - f_exact).abs() / f_exact.clamp(min=1.0)).max()))
        adv = self.adv_seen()[idx, i]
        r = self.ratio_ind(i, idx)
        if self.kind == "sequential_clip":
            ind = (f_exact * torch.minimum(r * adv, r.clamp(1 - EPS, 1 + EPS) * adv)).mean()
            with torch.no_grad():  # the two clip placements differ on this batch (checked by the test)
                fr = f_exact * r
                other = torch.minimum(fr * adv, fr.clamp(1 - EPS, 1 + EPS) * adv).mean()
                rec.product_vs_factor_gap = max(rec.product_vs_factor_gap, float((ind - other).abs()))
        else:
            ind = (f_exact * r * adv).mean()
        rec.objective_err.append(_rel_err(objective, ind))
        g_alg, g_ind = self._grad(objective, i), self._grad(ind, i)
        rec.grad_err.append(max(float((g_alg[k] - g_ind[k]).abs().max()) for k in g_alg))
        if i not in rec.first_grad:
            rec.first_grad[i] = g_alg
            rec.first_objective[i] = float(objective.detach())
            rec.first_factor[i] = factor.detach().clone()
            rec.first_idx[i] = idx.clone()

    def check_joint(self, out: Tensor) -> None:
        """MAPPO/IPPO: the objective is ``mean_{b,i} min(r^i A^i, clip(r^i) A^i)`` with each agent's OWN ratio."""
        rec = self.rec
        if self.every is not None:  # the all-agent call
            idx = self.every[0]
        else:
            assert self.last is not None
            idx = self.last[1]
        adv = self.adv_seen()[idx]
        r = torch.stack([self.ratio_ind(i, idx) for i in range(N_AGENTS)], dim=-1)
        ind = torch.minimum(r * adv, r.clamp(1 - EPS, 1 + EPS) * adv).mean()
        rec.objective_err.append(_rel_err(out, ind))
        agents = [0] if self.agent.actors.share else list(range(N_AGENTS))
        for i in agents:
            g_alg, g_ind = self._grad(out, i), self._grad(ind, i)
            rec.grad_err.append(max(float((g_alg[k] - g_ind[k]).abs().max()) for k in g_alg))
            if i not in rec.first_grad:
                rec.first_grad[i] = g_alg
                rec.first_idx[i] = idx.clone()

    def check_clip(self, ratio: Tensor, adv: Tensor, clip: float, weight: Tensor | None, out: Tensor) -> None:
        """Per-sample ``d out / d r``: 0 where the clip binds, ``w A / m`` elsewhere."""
        if not ratio.requires_grad:
            return
        rec = self.rec
        (d,) = torch.autograd.grad(out, ratio, retain_graph=True)
        r, a = ratio.detach(), torch.broadcast_to(adv.detach(), ratio.shape)
        w = torch.ones_like(r) if weight is None else torch.broadcast_to(weight.detach(), r.shape)
        clipped = ((a > 0) & (r > 1 + clip)) | ((a < 0) & (r < 1 - clip))
        expected = torch.where(clipped, torch.zeros_like(r), w * a / r.numel())
        rec.clip_grad_err.append(float((d - expected).abs().max() * r.numel()))
        rec.clipped_samples += int(clipped.sum())
        rec.pessimistic_samples += int((((r > 1 + clip) | (r < 1 - clip)) & ~clipped).sum())

    def check_entropy(self, i: int, idx: Tensor, entropy: Tensor) -> None:
        """The entropy the update sees is the (masked) entropy of the live actor on the minibatch."""
        with torch.no_grad():
            dist = self.agent.actors.distribution_agent(i, self.s.obs[idx, i], self._avail(i, idx))
            p = dist.probs
            h = -(torch.where(p > 0, p * p.log(), torch.zeros_like(p))).sum(-1).mean()
        self.rec.entropy_err.append(abs(float(entropy.detach()) - float(h)))


# ================================================================================================ helpers
def tables(actors, env, avail_state0: bool = False) -> list[np.ndarray]:
    """Exact policy tables ``pi^i[s, a]`` (float64) of the actors on every state."""
    obs = env.observation_table()
    out = []
    with torch.no_grad():
        for i in range(N_AGENTS):
            p = actors.distribution_agent(i, obs[:, i]).probs.double()
            out.append((p / p.sum(-1, keepdim=True)).numpy())
    return out


def onehot_table(a: int) -> np.ndarray:
    t = np.zeros((N_STATES, N_ACTIONS))
    t[:, a] = 1.0
    return t


def exact_gradient(s: Setup, pre_tables: list[np.ndarray], prev: list[int], prev_new: list[np.ndarray],
                   agent_i: int, linear: torch.nn.Linear, weight: float = 1.0) -> dict[str, Tensor]:
    """``weight * grad_theta L^{prev + (i,)}_pi(pibar^{prev}, pi^i_theta)`` at theta = the pre-update logits
    (theory.multiagent.expected_local_advantage with one-hot tables gives ``G[s, a]``; the surrogate is
    ``sum_s rho(s) sum_a pi_theta(a|s) G[s, a]``), float64, for ``W`` and ``b`` of the linear head."""
    pi = Factorized(pre_tables)
    agents = tuple(prev) + (agent_i,)
    G = np.stack([multiagent.expected_local_advantage(s.game, pi, agents, list(prev_new) + [onehot_table(a)])
                  for a in range(N_ACTIONS)], axis=-1)  # [S, A]
    # eq. (6): L(pibar, pi^i_old) = 0 for any pibar
    assert abs(multiagent.surrogate(s.game, pi, agents, list(prev_new) + [pre_tables[agent_i]])) < 1e-9
    rho = occupancy(s.game, pi)
    W = linear.weight.detach().double().clone().requires_grad_(True)
    b = linear.bias.detach().double().clone().requires_grad_(True)
    probs = torch.softmax(W.T + b, dim=-1)  # [S, A]: one-hot state s selects column s of W
    L = weight * (torch.as_tensor(rho).unsqueeze(-1) * probs * torch.as_tensor(G)).sum()
    gW, gb = torch.autograd.grad(L, [W, b])
    return {"weight": gW, "bias": gb}


def per_sample_terms(s: Setup, agents: list[int], factor: Tensor, adv: Tensor, pre_actors, idx: Tensor,
                     share: bool) -> Tensor:
    """Per-sample gradient terms ``x_k = f_k A_k grad log pi(a_k|s_k)`` (summed over ``agents`` / n when
    ``share``) for (W [A, S], b [A]) flattened: ``[m, A*S + A]``; float64."""
    st = s.states[idx]
    onehot_s = torch.nn.functional.one_hot(st, N_STATES).double()
    total = torch.zeros(idx.numel(), N_ACTIONS * N_STATES + N_ACTIONS, dtype=torch.float64)
    for i in agents:
        with torch.no_grad():
            p = pre_actors.distribution_agent(i, s.obs[idx, i], None if s.avail is None else s.avail[idx, i]).probs
        e = torch.nn.functional.one_hot(s.actions[idx, i], N_ACTIONS).double() - p.double()  # d log pi / d logits
        coef = (factor.double() * adv[:, i].double()).unsqueeze(-1)
        dW = (coef * e).unsqueeze(-1) * onehot_s.unsqueeze(1)  # [m, A, S]
        total += torch.cat([dW.reshape(idx.numel(), -1), coef * e], dim=-1) / (N_AGENTS if share else 1)
    return total


def assert_clt(sampled: dict[str, Tensor], terms: Tensor, exact: dict[str, Tensor], label: str) -> float:
    """``sampled`` equals the mean of ``terms`` (float32 rounding) and lies within ``K_SE`` standard errors
    (``std(terms) / sqrt(m)``, per component) of ``exact``. Returns the largest |z|."""
    flat = torch.cat([sampled["head.linear.weight"].double().reshape(-1), sampled["head.linear.bias"].double()])
    ex = torch.cat([exact["weight"].reshape(-1), exact["bias"]])
    mean = terms.mean(0)
    # float32 pipeline (logits, advantages, the mean over m samples) against float64 terms: the gap is measured as a
    # fraction of the terms' scale mean|term| (5.8e-5 of it measured for shared MAPPO on an AMD EPYC; a wrong
    # factor, weight or clip moves the gradient by O(1) of it)
    scale = terms.abs().mean(0)
    assert bool(((flat - mean).abs() <= 1e-4 * mean.abs() + 5e-4 * scale + 1e-9).all()), (label, flat, mean)
    se = terms.std(0) / math.sqrt(terms.shape[0])
    z = (flat - ex) / (se + 1e-12)
    live = se > 1e-9
    assert bool(((flat - ex).abs() <= K_SE * se + 1e-7).all()), (label, z[live], flat, ex)
    return float(z[live].abs().max())


# ================================================================================================ tests
SEQ = ["happo", "haa2c"]


@pytest.mark.parametrize("algo,granularity,simultaneous,adv_norm", [
    ("happo", "agent_outer", False, "none"), ("happo", "minibatch_outer", False, "none"),
    ("haa2c", "agent_outer", False, "none"), ("haa2c", "minibatch_outer", False, "none"),
    ("happo", "agent_outer", True, "none"), ("happo", "agent_outer", False, "batch"),
])
def test_factor_is_the_exact_product_of_the_earlier_agents_ratios(monkeypatch: pytest.MonkeyPatch, algo: str,
                                                                 granularity: str, simultaneous: bool,
                                                                 adv_norm: str) -> None:
    """At EVERY objective evaluation (every epoch and minibatch), the factor handed to agent ``i_m`` equals
    ``prod_{j before i_m} pi^j_now(a^j|s) / pi^j_pre(a^j|s)`` computed from the actors' probabilities (1 for the
    first agent; constant over agent ``i_m``'s epochs in ``agent_outer``; 1 everywhere with ``simultaneous``);
    and the objective and its gradient equal the independent formula (HAPPO eq. 11 / HAA2C) with that factor
    (and with advantages normalised over the whole batch for ``adv_norm="batch"``)."""
    s = make_setup(algo, n=1000, lr=0.05, ppo_epoch=4, actor_num_mini_batch=2, granularity=granularity,
                   simultaneous=simultaneous, adv_norm=adv_norm)
    spy = Spy(monkeypatch, s)
    s.update()
    rec = spy.rec
    assert sorted(rec.order) == list(range(N_AGENTS))
    assert len(rec.factor_err) == N_AGENTS * 4 * 2
    assert max(rec.factor_err) < 1e-5, rec.factor_err
    assert max(rec.objective_err) < 1e-5, rec.objective_err
    assert max(rec.grad_err) < 1e-5, rec.grad_err
    last = rec.order[-1]
    spread = float((spy.exact_factor(last, torch.arange(s.n)) - 1).abs().max())
    if simultaneous:
        assert spread == 0.0
    else:  # the earlier agents really moved, so a factor left at 1 (or advanced too often) is detected
        assert spread > 0.2, spread


@pytest.mark.parametrize("algo", ["happo", "haa2c", "hatrpo", "mappo", "ippo", "mappo_shared"])
def test_first_step_gradient_matches_the_exact_surrogate_gradient(monkeypatch: pytest.MonkeyPatch, algo: str) -> None:
    """Oracle (ICLR22 Prop. 3, eq. 10): for every agent ``i_m`` the gradient of its first objective (HATRPO: the
    ``g`` handed to the natural step) is the sample mean of ``M grad log pi^{i_m}`` with the EXACT factor, and
    lies within ``K_SE`` standard errors of ``grad L^{i_{1:m}}(pibar^{i_{1:m-1}}, pi^{i_m}_theta)`` of the exact
    oracle, with ``pibar`` the earlier agents' updated tables (MAPPO/IPPO: ``pibar = pi``, one ``1/n`` weight per
    agent in the joint mean; IPPO uses per-agent baselines; shared MAPPO: the sum over agents of those gradients
    through the one actor). Also: at ``r = 1`` HAPPO/HAA2C's objective
    matches ``E_{a ~ pi}[M]`` with ``M = theory.multiagent.estimator_m``."""
    overrides: dict[str, Any] = dict(lr=0.1, ppo_epoch=5)
    if algo == "hatrpo":
        overrides = dict(kl_threshold=0.05)
    if algo in ("mappo", "ippo"):
        overrides["share_param"] = False
    shared = algo == "mappo_shared"
    s = make_setup("mappo" if shared else algo, n=20000, baseline="per_agent", **overrides)
    pre_tables = tables(s.agent.actors, s.env)
    pre = copy.deepcopy(s.agent.actors)
    snapshots: dict[int, list[np.ndarray]] = {}
    spy = Spy(monkeypatch, s)
    if algo in ("happo", "haa2c", "hatrpo"):  # tables of every agent when agent i starts (earlier ones are done)
        trainable = actor_updates._trainable

        def snap(agent, i):
            if i not in snapshots:
                snapshots[i] = tables(agent.actors, s.env)
            return trainable(agent, i)

        monkeypatch.setattr(actor_updates, "_trainable", snap)
    s.update()
    rec = spy.rec
    adv = s.advantages()
    if shared:  # one actor: the gradient is (1/n) sum_i grad L^i through the same logits
        linear = pre.actors[0].head.linear
        parts = [exact_gradient(s, pre_tables, [], [], i, linear, 1.0 / N_AGENTS) for i in range(N_AGENTS)]
        exact = {k: sum(p[k] for p in parts) for k in parts[0]}
        idx = rec.first_idx[0]
        terms = per_sample_terms(s, list(range(N_AGENTS)), torch.ones(idx.numel(), dtype=torch.float64), adv[idx],
                                 pre, idx, share=True)
        assert assert_clt(rec.first_grad[0], terms, exact, "mappo shared") < K_SE
        return
    zs = []
    for i in range(N_AGENTS):
        if algo in ("mappo", "ippo"):
            prev, prev_new, weight = [], [], 1.0 / N_AGENTS
        else:
            prev = rec.order[: rec.order.index(i)]
            prev_new = [snapshots[i][j] for j in prev]
            weight = 1.0
        linear = pre.actor_of(i).head.linear
        exact = exact_gradient(s, pre_tables, prev, prev_new, i, linear, weight)
        idx = rec.first_idx.get(i, torch.arange(s.n))
        f = torch.ones(idx.numel(), dtype=torch.float64)
        for j in prev:
            col = s.actions[idx, j]
            f = f * torch.as_tensor(snapshots[i][j] / pre_tables[j])[s.states[idx], col]
        terms = per_sample_terms(s, [i], f, adv[idx], pre, idx, share=False) * weight
        zs.append(assert_clt(rec.first_grad[i], terms, exact, f"{algo} agent {i}"))
        if algo in ("happo", "haa2c"):
            M = multiagent.estimator_m(s.game, Factorized(pre_tables), prev, prev_new,
                                       adv=_adv_table(s, i))
            expected = float((occupancy(s.game, Factorized(pre_tables))[:, None, None, None]
                              * Factorized(pre_tables).probs() * M).sum())
            x = (f * adv[idx, i].double())
            se = float(x.std() / math.sqrt(idx.numel()))
            assert abs(rec.first_objective[i] - float(x.mean())) < 1e-4 * (1 + abs(float(x.mean())))
            assert abs(rec.first_objective[i] - expected) <= K_SE * se, (rec.first_objective[i], expected, se)
    assert max(zs) < K_SE


def _adv_table(s: Setup, i: int) -> np.ndarray:
    """``A_hat(s, a) = r(s, a) - b_i(s)`` as a table (the baseline is constant per agent here)."""
    b = float(s.values[0, i]) if s.values.dim() == 2 else 0.0
    return s.game.reward - b


@pytest.mark.parametrize("algo", ["happo", "haa2c", "hatrpo"])
def test_sampled_gradient_with_a_factor_of_one_would_be_rejected_by_the_clt_check(algo: str) -> None:
    """Power of the oracle test above: with the factor left at 1 (``pibar = pi``) the sampled gradient of the
    last agent misses the exact ``grad L^{i_{1:3}}`` by more than ``2 K_SE`` standard errors on a set-up like the
    oracle test's (fixed order; measured: |z| = 27 HAPPO, 39 HAA2C, 20 HATRPO)."""
    kw: dict[str, Any] = dict(kl_threshold=0.05) if algo == "hatrpo" else dict(lr=0.1, ppo_epoch=5)
    s = make_setup(algo, n=20000, fixed_order=True, **kw)
    pre_tables = tables(s.agent.actors, s.env)
    pre = copy.deepcopy(s.agent.actors)
    snapshots: dict[int, list[np.ndarray]] = {}
    trainable = actor_updates._trainable

    def snap(agent, i):
        snapshots.setdefault(i, tables(agent.actors, s.env))
        return trainable(agent, i)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(actor_updates, "_trainable", snap)
        s.update()
    i, prev = 2, [0, 1]
    exact = exact_gradient(s, pre_tables, prev, [snapshots[2][j] for j in prev], i, pre.actor_of(i).head.linear)
    idx = torch.arange(s.n)
    terms = per_sample_terms(s, [i], torch.ones(s.n, dtype=torch.float64), s.advantages(), pre, idx, share=False)
    mean, se = terms.mean(0), terms.std(0) / math.sqrt(s.n)
    ex = torch.cat([exact["weight"].reshape(-1), exact["bias"]])
    assert float(((mean - ex).abs() / (se + 1e-12)).max()) > 2 * K_SE


@pytest.mark.parametrize("algo,kw", [
    ("happo", {}), ("happo", {"granularity": "minibatch_outer"}), ("haa2c", {}), ("hatrpo", {}),
])
def test_agent_order_is_identity_when_fixed_and_a_uniform_permutation_otherwise(algo: str, kw: dict) -> None:
    """``fixed_order=True``: the agents are updated as 0, 1, 2 every time. ``fixed_order=False``: a fresh
    permutation per update; over 300 updates (fixed seed) the 6 permutations pass a chi-square test of
    uniformity (p > 1e-4) and the sequence is reproducible from the agent's seed."""
    def orders(fixed: bool, seed: int, count: int) -> list[tuple[int, ...]]:
        s = make_setup(algo, n=6, seed=seed, zero_adv=True, ppo_epoch=1, fixed_order=fixed, **kw)
        batch = actor_updates.from_buffer(_returns(s), N_AGENTS)
        out = []
        with pytest.MonkeyPatch.context() as mp:
            seen: list[int] = []
            trainable = actor_updates._trainable

            def spy(agent, i):
                seen.append(i)
                return trainable(agent, i)

            mp.setattr(actor_updates, "_trainable", spy)
            for _ in range(count):
                seen.clear()
                actor_updates.run(s.agent, batch)
                out.append(tuple(seen[:N_AGENTS]))
        return out

    assert set(orders(True, 0, 20)) == {(0, 1, 2)}
    drawn = orders(False, 0, 300)
    counts = np.array([drawn.count(p) for p in itertools.permutations(range(N_AGENTS))])
    assert counts.sum() == 300, counts
    assert stats.chisquare(counts).pvalue > 1e-4, counts
    assert orders(False, 0, 30) == drawn[:30]


def _returns(s: Setup) -> RolloutBuffer:
    buf = s.buffer()
    buf.compute_returns(s.agent.config.gamma, s.agent.config.gae_lambda, None)
    return buf


@pytest.mark.parametrize("algo", ["happo", "mappo"])
def test_clip_zeroes_the_per_sample_gradient_only_where_it_binds(monkeypatch: pytest.MonkeyPatch, algo: str) -> None:
    """Large steps (lr 0.5, 8 epochs) push ratios far outside [1 - eps, 1 + eps]. In every call of the clipped
    objective, ``d objective / d r_k`` is exactly 0 where ``A_k > 0, r_k > 1 + eps`` or ``A_k < 0, r_k < 1 - eps``
    and ``f_k A_k / m`` elsewhere, including the pessimistic side (``A < 0, r > 1 + eps``) that must keep its
    gradient; ratios are the pre-update ones (exactly 1 at each agent's first step, far from 1 later)."""
    s = make_setup(algo, n=600, lr=0.5, ppo_epoch=8, scale=0.5)
    spy = Spy(monkeypatch, s)
    s.update()
    rec = spy.rec
    assert max(rec.clip_grad_err) < 1e-5, rec.clip_grad_err
    assert rec.clipped_samples > 100 and rec.pessimistic_samples > 20, (rec.clipped_samples, rec.pessimistic_samples)
    assert all(rec.ratio_first_is_one) and len(rec.ratio_first_is_one) == N_AGENTS
    assert max(rec.ratio_err) < 1e-5, max(rec.ratio_err)
    assert rec.ratio_far > 50
    assert max(rec.objective_err) < 1e-5 and max(rec.grad_err) < 1e-5


def test_happo_clips_the_ratio_inside_the_factor_not_the_product(monkeypatch: pytest.MonkeyPatch) -> None:
    """HAPPO eq. (11): ``f * min(r A, clip(r) A)``, not ``min(f r A, clip(f r) A)``. On this batch the later
    agents' factors leave [1 - eps, 1 + eps] while their own ratios start at 1, so the two differ by far more than
    the tolerance, and the algorithm's objective and gradient follow the first at every call."""
    s = make_setup("happo", n=1000, lr=0.3, ppo_epoch=5, fixed_order=True)
    spy = Spy(monkeypatch, s)
    s.update()
    rec = spy.rec
    assert rec.product_vs_factor_gap > 1e-2, rec.product_vs_factor_gap
    assert max(rec.objective_err) < 1e-5 and max(rec.grad_err) < 1e-5
    f = rec.first_factor[2]
    assert float(((f > 1 + EPS) | (f < 1 - EPS)).float().mean()) > 0.2


@pytest.mark.parametrize("algo", ["happo", "haa2c", "hatrpo", "mappo", "ippo"])
def test_masked_actions_get_zero_probability_and_zero_gradient(monkeypatch: pytest.MonkeyPatch, algo: str) -> None:
    """State-dependent mask (action 2 unavailable in state 0, stored in the buffer's ``avail_actions``): the
    ratios and entropies the update computes are those of the MASKED policies, the logit weight ``W[2, 0]`` of the
    masked (action, state) pair never moves, the other weights do, and the masked probability stays 0."""
    kw: dict[str, Any] = dict(lr=0.1, ppo_epoch=3, entropy_coef=0.05)
    if algo == "hatrpo":
        kw = dict(kl_threshold=0.05)
    s = make_setup(algo, n=600, mask=True, **kw)
    before = [lin.weight.detach().clone() for lin in _linear_heads(s.agent)]
    spy = Spy(monkeypatch, s)
    s.update()
    rec = spy.rec
    assert rec.ratio_err and max(rec.ratio_err) < 1e-5
    if algo != "hatrpo":
        assert rec.entropy_err and max(rec.entropy_err) < 1e-5
    for lin, w0 in zip(_linear_heads(s.agent), before):
        w = lin.weight.detach()
        assert w[2, 0] == w0[2, 0], (w, w0)
        assert float((w - w0).abs().max()) > 1e-3
    with torch.no_grad():
        for i in range(N_AGENTS):
            p = s.agent.actors.distribution_agent(i, s.obs[:, i], s.avail[:, i]).probs
            assert bool((p[s.states == 0, 2] == 0).all())


@pytest.mark.parametrize("algo,kw", [("happo", {}), ("happo", {"granularity": "minibatch_outer"}), ("haa2c", {}),
                                     ("mappo", {}), ("ippo", {})])
def test_entropy_bonus_raises_the_entropy_when_advantages_are_zero(algo: str, kw: dict) -> None:
    """With ``A = 0`` the only force is ``+ c_H H``: every agent's mean entropy over the batch states goes up,
    every logit weight moves in the direction of ``+ grad H`` (sign-wise; Adam's first steps follow the gradient's
    sign), and without the bonus (``c_H = 0``) nothing moves."""
    s = make_setup(algo, n=400, zero_adv=True, lr=0.05, ppo_epoch=2, entropy_coef=0.05, scale=1.5, **kw)

    def entropies(actors) -> Tensor:
        with torch.no_grad():
            return torch.stack([actors.distribution_agent(i, s.obs[:, i]).entropy().mean() for i in range(N_AGENTS)])

    h0 = entropies(s.agent.actors)
    probe = copy.deepcopy(s.agent.actors)
    ent = torch.stack([probe.entropy_agent(i, s.obs[:, i]).mean() for i in range(N_AGENTS)]).sum()
    ent.backward()
    grad_h = [lin.weight.grad.clone() for lin in _linear_heads(probe)]
    before = [lin.weight.detach().clone() for lin in _linear_heads(s.agent)]
    s.update()
    h1 = entropies(s.agent.actors)
    assert bool((h1 > h0 + 1e-3).all()), (h0, h1)
    for lin, w0, gh in zip(_linear_heads(s.agent), before, grad_h):
        move = lin.weight.detach() - w0
        strong = gh.abs() > 1e-3
        assert bool((torch.sign(move[strong]) == torch.sign(gh[strong])).all()), (move, gh)
    still = make_setup(algo, n=400, zero_adv=True, lr=0.05, ppo_epoch=2, entropy_coef=0.0, scale=1.5, **kw)
    w_before = [lin.weight.detach().clone() for lin in _linear_heads(still.agent)]
    still.update()
    assert all(torch.equal(lin.weight.detach(), w) for lin, w in zip(_linear_heads(still.agent), w_before))


def test_haa2c_does_not_clip(monkeypatch: pytest.MonkeyPatch) -> None:
    """HAA2C (HARL actors/haa2c.py) has no clip: with ratios far outside [1 - eps, 1 + eps] its objective is still
    ``mean(f r A)`` with gradient ``f A grad r`` on every sample (checked at every call), and it never calls the
    clipped objective."""
    s = make_setup("haa2c", n=600, lr=0.5, ppo_epoch=8, scale=0.5)
    spy = Spy(monkeypatch, s)
    s.update()
    rec = spy.rec
    assert rec.ratio_far > 50
    assert not rec.clip_grad_err  # ppo_clip_objective never called
    assert max(rec.objective_err) < 1e-5 and max(rec.grad_err) < 1e-5


def test_joint_clip_uses_each_agents_own_ratio_and_advantage(monkeypatch: pytest.MonkeyPatch) -> None:
    """IPPO with separate actors and per-agent baselines: the objective is ``mean_{b,i} min(r^i A^i, clip(r^i)
    A^i)`` with agent i's own ratio and advantage (not a joint ratio, not agent 0's advantage), value and
    gradient, at every call, with steps large enough that the clip binds."""
    s = make_setup("ippo", n=600, lr=0.5, ppo_epoch=6, scale=0.5, share_param=False, baseline="per_agent")
    spy = Spy(monkeypatch, s)
    s.update()
    rec = spy.rec
    assert rec.clipped_samples > 50
    assert max(rec.objective_err) < 1e-5 and max(rec.grad_err) < 1e-5 and max(rec.clip_grad_err) < 1e-5
