"""HATRPO ingredients (theory.md §1.10), each checked against an independent computation.

* The KL of the line search and of the Fisher-vector product is ``E_s KL(pi_old(.|s) || pi_new(.|s))``
  of the FROZEN pre-update policy: compared with ``torch.distributions.kl_divergence`` of distributions built
  from cloned tensors of a deep copy of the actor, with a learnable ``log_std`` that moves in the step
  (a live view of ``log_std`` in the old distribution makes the ``log(sigma_new / sigma_old)`` term vanish).
* Every accepted step has true KL <= delta.
* KL direction: ``KL(old || new)``, not ``KL(new || old)`` (categorical heads, where the two differ at third
  order).
* The gradient handed to the natural step is ``mean(M * grad log pi^{i_m})`` with the EXACT factor
  ``M / A = prod_{j before i_m} pi^j_new / pi^j_old`` computed from the actors' probabilities.
* Masked actions: zero probability, and the logits of masked actions never move.
"""

from __future__ import annotations

import copy
import math
from typing import Any

import numpy as np
import pytest
import torch
from torch.distributions import Categorical, Normal, kl_divergence

from seqmarl.algos import actor_updates, make_agent
from seqmarl.algos.actor_updates import Batch
from seqmarl.envs import make
from seqmarl.theory import games

Tensor = torch.Tensor


# ------------------------------------------------------------------------------------------------ helpers
def _gaussian_setup(n: int = 4096, seed: int = 0, kl_threshold: float = 0.01):
    """HATRPO on gaussian/a1a2 with linear actors (mean = w * 1 + b) and a LEARNABLE log_std; a batch whose
    advantage rewards spread, ``A = sum_i ((a^i - mu^i)^2 / sigma^2 - 1) + a^1 a^2``, so the step moves
    log_std (and the means)."""
    env = make("gaussian/a1a2", num_envs=1, seed=0)
    agent = make_agent("hatrpo", env.spec, seed=seed, hidden=(), kl_threshold=kl_threshold, fixed_order=True,
                       use_value_norm=False, adv_norm="none")
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for i in range(2):
            head = agent.actors.actor_of(i).head
            head.linear.bias.fill_(0.3 * (i + 1))
            head.log_std.fill_(-0.2)
        obs = torch.ones(n, 2, 1)
        mu = torch.stack([agent.actors.actor_of(i).head.linear.bias.expand(n, 1) for i in range(2)], dim=1)
        actions = mu + math.exp(-0.2) * torch.randn(n, 2, 1, generator=g)
        z = (actions - mu) / math.exp(-0.2)
        adv = (z**2 - 1).sum(dim=(1, 2)) + actions[:, 0, 0] * actions[:, 1, 0]
    batch = Batch(obs=obs, state=torch.ones(n, 1), avail=None, actions=actions,
                  old_log_probs=torch.zeros(n, 2, 1), advantages=adv.unsqueeze(-1).expand(n, 2).contiguous(),
                  returns=torch.zeros(n), raw_values=torch.zeros(n))
    return agent, batch


def _true_kl(old_actors, agent, i: int, batch: Batch) -> float:
    """``mean_b KL(old || new)`` from torch.distributions built on CLONED tensors: ``old`` from a deep copy of
    the pre-update actors, ``new`` from the live actor."""
    obs_i = batch.obs[:, i]
    avail_i = None if batch.avail is None else batch.avail[:, i]
    with torch.no_grad():
        o = old_actors.distribution_agent(i, obs_i, avail_i)
        q = agent.actors.distribution_agent(i, obs_i, avail_i)
        if agent.discrete:
            p_old, p_new = Categorical(probs=o.probs.clone()), Categorical(probs=q.probs.clone())
            return float(kl_divergence(p_old, p_new).mean())
        p_old = Normal(o.mean.clone(), o.log_std.exp().clone())
        p_new = Normal(q.mean.clone(), q.log_std.exp().clone())
        return float(kl_divergence(p_old, p_new).sum(-1).mean())


class _Spy:
    """Wraps the line search and the Fisher-vector product of ``actor_updates`` and records, per agent, the
    KL the algorithm computes next to the independently computed one."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, agent, batch: Batch) -> None:
        self.agent, self.batch = agent, batch
        self.old = copy.deepcopy(agent.actors)
        self.current: int | None = None
        self.ls_pairs: list[tuple[int, float, float]] = []  # (agent, algorithm's KL, true KL) per candidate
        self.accepted: list[tuple[int, float, float]] = []  # (agent, reported KL, true KL at the accepted x)
        self.fvp_checks: list[tuple[int, float, float]] = []  # KL closure of the FVP at moved params
        self.hvp_checks: list[tuple[Tensor, Tensor]] = []  # (algorithm's FVP v, independent (H + damping) v)
        self.log_std_moves: list[float] = []
        self.fvp_kl: dict[int, Any] = {}
        trainable, ls, fvp = actor_updates._trainable, actor_updates.backtracking_line_search, \
            actor_updates.fisher_vector_product

        def spy_trainable(agent_, i):
            self.current = i
            return trainable(agent_, i)

        def spy_fvp(kl_fn, params, damping=0.0):
            i = self.current
            x0 = actor_updates.flat_params(params)
            gen = torch.Generator().manual_seed(100 + i)
            out = fvp(kl_fn, params, damping)
            v = torch.randn(x0.shape, generator=gen)
            self.hvp_checks.append((out(v).detach(), self._independent_hvp(i, v) + damping * v))
            self.fvp_kl[i] = (kl_fn, params, x0, gen)  # probed after the line search (the FVP graph is then dead)
            return out

        def probe_fvp_kl(i):
            """The FVP's KL closure at params moved in every coordinate (log_std included)."""
            kl_fn, params, x0, gen = self.fvp_kl.pop(i)
            now = actor_updates.flat_params(params)
            for _ in range(3):
                actor_updates.set_flat_params(params, x0 + 0.1 * torch.randn(x0.shape, generator=gen))
                with torch.no_grad():
                    self.fvp_checks.append((i, float(kl_fn()), _true_kl(self.old, agent, i, batch)))
            actor_updates.set_flat_params(params, now)

        def spy_ls(f, x0, full_step, expected_improve, **kw):
            i = self.current
            kl_fn = kw["kl_fn"]

            def kl_spy(x):
                value = kl_fn(x)
                self.ls_pairs.append((i, float(value), _true_kl(self.old, agent, i, batch)))
                return value

            kw["kl_fn"] = kl_spy
            result = ls(f, x0, full_step, expected_improve, **kw)
            probe_fvp_kl(i)
            if result.accepted:
                params = actor_updates._trainable(agent, i)
                actor_updates.set_flat_params(params, result.x)
                self.accepted.append((i, float(result.kl), _true_kl(self.old, agent, i, batch)))
                if not agent.discrete:
                    self.log_std_moves.append(float((agent.actors.actor_of(i).head.log_std.detach()
                                                     - self.old.actor_of(i).head.log_std.detach()).abs().max()))
            self.current = i
            return result

        step = actor_updates.natural_step
        self.steps: dict[int, tuple[Tensor, Tensor, float]] = {}  # agent -> (g, full_step, max_kl)

        def spy_natural_step(g, fvp_, max_kl, *args, **kwargs):
            full, expected = step(g, fvp_, max_kl, *args, **kwargs)
            self.steps[self.current] = (g.detach().clone(), full.detach().clone(), float(max_kl))
            return full, expected

        monkeypatch.setattr(actor_updates, "natural_step", spy_natural_step)
        monkeypatch.setattr(actor_updates, "_trainable", spy_trainable)
        monkeypatch.setattr(actor_updates, "fisher_vector_product", spy_fvp)
        monkeypatch.setattr(actor_updates, "backtracking_line_search", spy_ls)

    def _independent_hvp(self, i: int, v: Tensor) -> Tensor:
        """``(∇² KL(old || pi_theta)) v`` at theta = theta_old by double backprop through a fresh deep copy,
        with the old distribution from cloned tensors (torch.distributions)."""
        probe = copy.deepcopy(self.old.actor_of(i))
        params = [p for p in probe.parameters() if p.requires_grad]
        obs_i = self.batch.obs[:, i]
        avail_i = None if self.batch.avail is None else self.batch.avail[:, i]
        with torch.no_grad():
            o = self.old.distribution_agent(i, obs_i, avail_i)
        if self.agent.discrete:
            avail_i = None if avail_i is None else avail_i[..., : probe.head.linear.out_features]
            q = probe.distribution(obs_i, avail_i)
            kl = kl_divergence(Categorical(probs=o.probs.clone()), Categorical(logits=q.log_probs_all)).mean()
        else:
            q = probe.distribution(obs_i)
            kl = kl_divergence(Normal(o.mean.clone(), o.log_std.exp().clone()),
                               Normal(q.mean, q.log_std.exp())).sum(-1).mean()
        grads = torch.autograd.grad(kl, params, create_graph=True)
        flat = torch.cat([g.reshape(-1) for g in grads])
        hv = torch.autograd.grad(flat @ v, params)
        return torch.cat([h.reshape(-1) for h in hv])


# ------------------------------------------------------------------------------------------------ KL value
def test_line_search_and_fvp_use_the_kl_of_the_frozen_old_gaussian(monkeypatch: pytest.MonkeyPatch) -> None:
    """Continuous actions, learnable log_std: every KL the line search checks, and the KL closure handed to
    the Fisher-vector product (evaluated at moved parameters), equal ``KL(old || new)`` of frozen deep copies
    (torch.distributions) to float32 rounding; the FVP at x0 equals the independent Hessian-vector product;
    every accepted step has true KL <= delta; log_std really moved (else the check would be vacuous)."""
    delta = 0.01
    agent, batch = _gaussian_setup(kl_threshold=delta)
    spy = _Spy(monkeypatch, agent, batch)
    actor_updates.run(agent, batch)
    assert len(spy.ls_pairs) >= 2 and len(spy.fvp_checks) == 6
    for i, got, true in spy.ls_pairs + spy.fvp_checks:
        assert got == pytest.approx(true, rel=1e-4, abs=1e-6), (i, got, true)
    for got, ref in spy.hvp_checks:
        assert torch.allclose(got, ref, rtol=1e-4, atol=1e-6), (got, ref)
    assert len(spy.accepted) == 2, spy.accepted
    for i, reported, true in spy.accepted:
        assert true <= delta, (i, reported, true)
        assert reported == pytest.approx(true, rel=1e-4, abs=1e-6)
    assert min(spy.log_std_moves) > 0.02, spy.log_std_moves


def test_hatrpo_training_on_a1a2_never_accepts_a_step_beyond_delta(monkeypatch: pytest.MonkeyPatch) -> None:
    """12 HATRPO iterations on gaussian/a1a2 (16x16 ReLU MLPs, learnable log_std, HARL delta 0.01):
    every ACCEPTED step has true ``KL(old || new) <= delta`` (frozen deep copies, torch.distributions), and every
    KL the line search checks is that true KL. (With a live ``log_std`` view in pi_old, steps with true KL up
    to 0.0103 are accepted from iteration 7 on in this run.)"""
    from seqmarl.algos import Trainer, TrainerConfig

    delta = 0.01
    env = make("gaussian/a1a2", num_envs=512, seed=0)
    agent = make_agent("hatrpo", env.spec, seed=0, hidden=(16, 16), kl_threshold=delta)
    accepted: list[tuple[int, int, float]] = []
    pairs: list[tuple[float, float]] = []
    run = actor_updates.run

    def spied_run(agent_, batch):
        with pytest.MonkeyPatch.context() as mp:
            spy = _Spy(mp, agent_, batch)
            out = run(agent_, batch)
        accepted.extend((agent_.n_updates, i, true) for i, _, true in spy.accepted)
        pairs.extend((got, true) for _, got, true in spy.ls_pairs + spy.fvp_checks)
        return out

    monkeypatch.setattr(actor_updates, "run", spied_run)
    Trainer(env, agent, TrainerConfig(total_steps=512 * 12, rollout_length=1, progress=False, tensorboard=False),
            seed=0).train()
    assert len(accepted) >= 12, accepted
    assert all(true <= delta * (1 + 1e-5) for _, _, true in accepted), [a for a in accepted if a[2] > delta]
    for got, true in pairs:
        assert got == pytest.approx(true, rel=1e-4, abs=1e-6), (got, true)


def _discrete_setup(n: int = 4096, seed: int = 0, kl_threshold: float = 0.05, mask: bool = False):
    """HATRPO with tabular actors (one-hot state, linear logits) on a 2-state, 3-agent, 3-action one-shot
    game; actions sampled from the actors; advantages ``r(s, a) - mean`` with rewards from the game.
    ``mask``: action 2 is unavailable in state 0 for every agent (the batch's ``avail``)."""
    env = make("matrix/random", n_agents=3, n_actions=3, n_states=2, gamma=0.0, game_seed=seed, num_envs=1)
    game = env.game
    agent = make_agent("hatrpo", env.spec, seed=seed, hidden=(), kl_threshold=kl_threshold, fixed_order=True,
                       use_value_norm=False, adv_norm="none", fvp_damping=0.0)
    # the batch is drawn agent by agent (the per-agent loop's random stream), for which the reverse-KL
    # discrimination below has a wide margin; the stacked one-pass sampler draws the same law in another order
    agent.actors.stacked_inference = False
    g = torch.Generator().manual_seed(seed + 7)
    with torch.no_grad():
        for i in range(3):  # non-uniform start
            lin = agent.actors.actor_of(i).head.linear
            lin.weight.copy_(torch.randn(lin.weight.shape, generator=g))
        states = torch.randint(0, 2, (n,), generator=g)
        obs = torch.nn.functional.one_hot(states, 2).float().unsqueeze(1).expand(n, 3, 2).contiguous()
        avail = None
        if mask:
            avail = torch.ones(n, 3, 3, dtype=torch.bool)
            avail[states == 0, :, 2] = False
        actions, _ = agent.actors.sample(obs, avail, generator=g)
        r = torch.as_tensor(game.reward[states.numpy(), actions[:, 0].numpy(), actions[:, 1].numpy(),
                                        actions[:, 2].numpy()], dtype=torch.float32)
        adv = (r - r.mean()).unsqueeze(-1).expand(n, 3).contiguous()
    batch = Batch(obs=obs, state=obs[:, 0], avail=avail, actions=actions, old_log_probs=torch.zeros(n, 3),
                  advantages=adv, returns=torch.zeros(n), raw_values=torch.zeros(n))
    return agent, batch, states


@pytest.mark.parametrize("mask", [False, True])
def test_categorical_kl_is_old_to_new_and_accepted_steps_respect_delta(monkeypatch: pytest.MonkeyPatch,
                                                                        mask: bool) -> None:
    """Discrete actions (tabular actors, 3 agents): every KL the line search checks and the FVP's KL closure
    equal ``KL(old || new)`` of frozen deep copies (torch.distributions.Categorical; with ``mask``, of the
    masked distributions), which differs from ``KL(new || old)`` at the accepted points by far more than the
    tolerance; accepted steps have true KL <= delta."""
    delta = 0.05
    agent, batch, _ = _discrete_setup(kl_threshold=delta, mask=mask)
    spy = _Spy(monkeypatch, agent, batch)
    actor_updates.run(agent, batch)
    assert len(spy.accepted) == 3, spy.accepted
    for i, got, true in spy.ls_pairs + spy.fvp_checks:
        assert got == pytest.approx(true, rel=1e-4, abs=1e-6), (i, got, true)
    for got, ref in spy.hvp_checks:
        assert torch.allclose(got, ref, rtol=1e-4, atol=1e-6), (got, ref)
    for i, reported, true in spy.accepted:
        assert true <= delta and reported == pytest.approx(true, rel=1e-4, abs=1e-6), (i, reported, true)
        # the reverse direction is measurably different here, so the check above discriminates
        obs_i, avail_i = batch.obs[:, i], None if batch.avail is None else batch.avail[:, i]
        with torch.no_grad():
            p_old = Categorical(probs=spy.old.distribution_agent(i, obs_i, avail_i).probs.clone())
            p_new = Categorical(probs=agent.actors.distribution_agent(i, obs_i, avail_i).probs.clone())
            reverse = float(kl_divergence(p_new, p_old).mean())
        assert abs(reverse - true) > 1e-3 * true + 1e-5, (reverse, true)


def test_masked_actions_keep_zero_probability_and_their_logits_never_move() -> None:
    """HATRPO with a state-dependent action mask (action 2 unavailable in state 0): the logit weight of the
    masked (state, action) pair receives no step (the surrogate and the KL never see it), while the other
    weights move; the updated policy still gives the masked action probability 0."""
    agent, batch, states = _discrete_setup(kl_threshold=0.05, mask=True)
    before = [agent.actors.actor_of(i).head.linear.weight.detach().clone() for i in range(3)]
    metrics = actor_updates.run(agent, batch)
    assert metrics["accepted_steps"] == 3.0
    for i in range(3):
        w = agent.actors.actor_of(i).head.linear.weight.detach()
        assert w[2, 0] == before[i][2, 0], (i, w, before[i])  # W[action, state]: masked pair untouched
        assert float((w - before[i]).abs().max()) > 1e-3
        with torch.no_grad():
            probs = agent.actors.distribution_agent(i, batch.obs[:, i], batch.avail[:, i]).probs
        assert bool((probs[states == 0, 2] == 0).all())


def test_step_is_the_natural_gradient_step_of_eq_8_with_the_configured_delta(monkeypatch: pytest.MonkeyPatch) -> None:
    """HATRPO eq. (8): the full step handed to the line search is ``sqrt(2 delta / g^T H^+ g) H^+ g`` with ``H``
    the Hessian of ``E KL(old || pi_theta)`` at theta_old, built here independently (double backprop through a
    deep copy, torch.distributions; pseudo-inverse because the softmax Fisher is singular along the logits'
    constant direction), ``g`` the surrogate gradient and ``delta = kl_threshold``; with a small delta the true
    KL of that full step is delta to within 5% (the quadratic model)."""
    delta = 1e-3
    agent, batch, _ = _discrete_setup(kl_threshold=delta)
    spy = _Spy(monkeypatch, agent, batch)
    actor_updates.run(agent, batch)
    assert sorted(spy.steps) == [0, 1, 2]
    first_kl = {}
    for i, got, true in spy.ls_pairs:
        first_kl.setdefault(i, true)
    for i, (g, full, max_kl) in spy.steps.items():
        assert max_kl == delta
        dim = g.numel()
        H = torch.stack([spy._independent_hvp(i, e) for e in torch.eye(dim)]).double()
        # H is built in float32: its null space (the logits' constant directions, 5 of 9 here) carries eigenvalues
        # of float32 noise (|lambda| < 4e-6 measured) against >= 4e-2 for the rest; cut well between the two
        x = torch.linalg.pinv(H, hermitian=True, rtol=1e-4) @ g.double()
        expected = torch.sqrt(2 * delta / (g.double() @ x)) * x
        assert torch.allclose(full.double(), expected, rtol=2e-3, atol=1e-4 * float(expected.abs().max())), \
            (i, full, expected)
        assert first_kl[i] == pytest.approx(delta, rel=0.05), (i, first_kl[i])


def test_frozen_distribution_does_not_follow_in_place_parameter_updates() -> None:
    """The Gaussian head's ``log_std`` in a distribution is a VIEW of the parameter (the Part-1 bug's root):
    an in-place update moves it. :class:`FrozenDistribution` holds copies that stay put (Gaussian and
    categorical), and ``_agent_kl`` refuses anything else."""
    from seqmarl.algos.actor_updates import FrozenDistribution  # here, so the file also runs on the pre-fix code

    env = make("gaussian/a1a2", num_envs=1, seed=0)
    agent = make_agent("hatrpo", env.spec, seed=0, hidden=())
    obs = torch.ones(4, 1)
    head = agent.actors.actor_of(0).head
    with torch.no_grad():
        live = agent.actors.distribution_agent(0, obs)
        frozen = FrozenDistribution.of(live)
        before = frozen.log_std.clone()
        head.log_std.add_(0.5)
        head.linear.bias.add_(1.0)
    assert torch.equal(frozen.log_std, before) and torch.equal(frozen.std, before.exp())
    assert not torch.equal(frozen.mean, agent.actors.distribution_agent(0, obs).mean)
    disc = make_agent("hatrpo", make("matrix/climbing", num_envs=1).spec, seed=0, hidden=())
    with torch.no_grad():
        cat = disc.actors.distribution_agent(0, torch.ones(4, 1))
        fz = FrozenDistribution.of(cat)
        p0 = fz.probs.clone()
        disc.actors.actor_of(0).head.linear.bias.add_(torch.tensor([1.0, 0.0, -1.0]))
    assert torch.equal(fz.probs, p0) and torch.allclose(fz.log_probs_all.exp(), p0)
    batch = Batch(obs=torch.ones(4, 2, 1), state=torch.ones(4, 1), avail=None,
                  actions=torch.zeros(4, 2, dtype=torch.long), old_log_probs=torch.zeros(4, 2),
                  advantages=torch.zeros(4, 2), returns=torch.zeros(4), raw_values=torch.zeros(4))
    assert float(actor_updates._agent_kl(disc, 0, batch, fz).detach()) > 0
    with pytest.raises(TypeError, match="FrozenDistribution"):
        actor_updates._agent_kl(disc, 0, batch, cat)
