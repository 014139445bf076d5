"""Details of the update rules that the ingredient tests leave open: the logged metrics' exact values, documented
config options (``adv_norm="minibatch"``, ``granularity``, ``backtrack_coeff``), the recurrent replay (mask, KL
reduction, cuDNN off for the double backward) and the input contracts of the core loss / GAE / trust-region /
value-norm functions.

Set-up: tabular actors (``hidden=()``) on a one-shot random matrix game; a batch of sampled joint actions with
random advantages is handed straight to :func:`actor_updates.run`. Spies wrap module functions of
``seqmarl.algos.actor_updates`` and record what the update computed, so the metrics can be recomputed.
"""

from __future__ import annotations

import copy
import math
from typing import Any

import pytest
import torch
from torch.distributions import Categorical, kl_divergence

from seqmarl.algos import Trainer, TrainerConfig, actor_updates, make_agent
from seqmarl.algos.actor_updates import Batch, FrozenDistribution
from seqmarl.algos.core.gae import compute_gae, compute_gae_with_value_norm
from seqmarl.algos.core.losses import (aggregate_ratio, huber_loss, masked_mean, mse_loss, ppo_clip_objective,
                                       value_loss)
from seqmarl.algos.core.trust_region import (backtracking_line_search, conjugate_gradient,
                                             fisher_vector_product)
from seqmarl.algos.core.value_norm import PopArt, ValueNorm
from seqmarl.envs import make

Tensor = torch.Tensor
N_AGENTS, N_ACTIONS, N_STATES = 3, 3, 2


# ================================================================================================ set-up
def _setup(algo: str, n: int = 240, seed: int = 0, **overrides: Any) -> tuple[Any, Batch]:
    """A tabular ``algo`` agent and a feed-forward batch of ``n`` samples (actions drawn from the actors,
    advantages ``N(0.7, 2^2)`` per agent, so that they are far from normalised)."""
    env = make("matrix/random", n_agents=N_AGENTS, n_actions=N_ACTIONS, n_states=N_STATES, gamma=0.0,
               game_seed=seed + 11, num_envs=1)
    kw: dict[str, Any] = dict(hidden=(), use_value_norm=False, adv_norm="none", entropy_coef=0.01)
    kw.update(overrides)
    agent = make_agent(algo, env.spec, seed=seed, **kw)
    g = torch.Generator().manual_seed(seed + 1000)
    with torch.no_grad():
        for p in agent.actors.parameters():
            if p.requires_grad:
                p.copy_(torch.randn(p.shape, generator=g))
        states = torch.randint(0, N_STATES, (n,), generator=g)
        obs = env.observation_table()[states].float()
        actions, _ = agent.actors.sample(obs, None, generator=g)
        lp = agent.actors.log_prob(obs, actions, None)
    adv = 0.7 + 2.0 * torch.randn(n, N_AGENTS, generator=g)
    batch = Batch(obs=obs, state=obs[:, 0], avail=None, actions=actions, old_log_probs=lp, advantages=adv,
                  returns=torch.zeros(n), raw_values=torch.zeros(n))
    return agent, batch


def _joint_ratio_mean(agent, pre_actors, batch: Batch) -> float:
    """``mean_b prod_i pi^i_now(a^i|o^i) / pi^i_pre(a^i|o^i)`` from the actors' probabilities."""
    with torch.no_grad():
        now = agent.actors.log_prob(batch.obs, batch.actions, None)
        pre = pre_actors.log_prob(batch.obs, batch.actions, None)
    return float(torch.exp((now - pre).sum(-1)).mean())


# ================================================================================================ metrics
@pytest.mark.parametrize("epochs,mbs", [(1, 1), (2, 3)])
def test_joint_clip_logs_the_mean_objective_and_entropy_over_minibatches(monkeypatch, epochs: int, mbs: int) -> None:
    """MAPPO: ``policy_objective`` is the mean of the clipped objectives of the minibatch steps and ``entropy`` the
    mean over steps of the agents' mean entropy (one step too: no division by more than the number of steps)."""
    agent, batch = _setup("mappo", ppo_epoch=epochs, actor_num_mini_batch=mbs, lr=0.05)
    objectives: list[float] = []
    entropies: list[Tensor] = []
    orig_obj, orig_ent = actor_updates.ppo_clip_objective, actor_updates._every_agent_log_prob_and_entropy

    def obj_spy(*a, **k):
        out = orig_obj(*a, **k)
        objectives.append(float(out.detach()))
        return out

    def ent_spy(*a, **k):
        lps, ents = orig_ent(*a, **k)
        entropies.extend(e.detach().clone() for e in ents)
        return lps, ents

    monkeypatch.setattr(actor_updates, "ppo_clip_objective", obj_spy)
    monkeypatch.setattr(actor_updates, "_every_agent_log_prob_and_entropy", ent_spy)
    metrics = actor_updates.run(agent, batch)
    steps = epochs * mbs
    assert len(objectives) == steps and len(entropies) == steps * N_AGENTS
    per_step_entropy = [float(torch.stack(entropies[k * N_AGENTS:(k + 1) * N_AGENTS], -1).mean()) for k in range(steps)]
    assert metrics["policy_objective"] == pytest.approx(sum(objectives) / steps, rel=1e-6, abs=1e-7)
    assert metrics["entropy"] == pytest.approx(sum(per_step_entropy) / steps, rel=1e-6)
    assert metrics["entropy"] > 0.1


@pytest.mark.parametrize("algo,granularity,fixed", [("happo", "agent_outer", True), ("happo", "minibatch_outer", True),
                                                    ("haa2c", "agent_outer", False),
                                                    ("happo", "minibatch_outer", False)])
def test_sequential_updates_log_exact_metrics_and_follow_the_granularity(monkeypatch, algo: str, granularity: str,
                                                                         fixed: bool) -> None:
    """HAPPO/HAA2C: ``policy_objective``/``entropy`` are the means of the per-step objectives/entropies;
    ``first_agent`` is the first agent updated; ``agent_outer`` runs all of an agent's steps before the next
    agent (and logs ``factor_mean = mean_b prod_i r^i`` of the final actors), ``minibatch_outer`` cycles through
    all agents on every minibatch."""
    epochs, mbs = 2, 2
    agent, batch = _setup(algo, ppo_epoch=epochs, actor_num_mini_batch=mbs, lr=0.05, granularity=granularity,
                          fixed_order=fixed, seed=3)
    pre = copy.deepcopy(agent.actors)
    calls: list[tuple[int, float, float]] = []
    orig = actor_updates._sequential_objective

    def spy(agent_, i, batch_, idx, factor):
        obj, ent = orig(agent_, i, batch_, idx, factor)
        calls.append((i, float(obj.detach()), float(ent.detach())))
        return obj, ent

    monkeypatch.setattr(actor_updates, "_sequential_objective", spy)
    metrics = actor_updates.run(agent, batch)
    k = epochs * mbs
    assert len(calls) == k * N_AGENTS
    seq = [c[0] for c in calls]
    order = list(dict.fromkeys(seq))
    assert sorted(order) == list(range(N_AGENTS))
    if fixed:
        assert order == list(range(N_AGENTS))
    if granularity == "agent_outer":
        assert seq == [i for i in order for _ in range(k)]
        assert metrics["factor_mean"] == pytest.approx(_joint_ratio_mean(agent, pre, batch), rel=1e-5)
        assert abs(metrics["factor_mean"] - 1.0) > 1e-3
    else:
        assert seq == order * k
    assert metrics["first_agent"] == float(order[0])
    assert metrics["policy_objective"] == pytest.approx(sum(c[1] for c in calls) / len(calls), rel=1e-6, abs=1e-7)
    assert metrics["entropy"] == pytest.approx(sum(c[2] for c in calls) / len(calls), rel=1e-6)
    assert metrics["entropy"] > 0.1


def test_hatrpo_logs_the_final_factor_mean_and_the_first_agent() -> None:
    """HATRPO: ``factor_mean`` is ``mean_b prod_i pi^i_new / pi^i_old`` of the final actors and ``first_agent``
    the first of the (fixed) order."""
    agent, batch = _setup("hatrpo", kl_threshold=0.05, fixed_order=True, seed=1)
    pre = copy.deepcopy(agent.actors)
    metrics = actor_updates.run(agent, batch)
    assert metrics["accepted_steps"] >= 1
    assert metrics["factor_mean"] == pytest.approx(_joint_ratio_mean(agent, pre, batch), rel=1e-5)
    assert abs(metrics["factor_mean"] - 1.0) > 1e-4
    assert metrics["first_agent"] == 0.0


def test_minibatch_adv_norm_normalises_each_minibatch_advantage(monkeypatch) -> None:
    """``adv_norm="minibatch"``: every objective sees its minibatch's advantages with mean 0 and population std 1
    (the raw advantages have mean ~0.7 and std ~2); ``"none"`` hands them over unchanged."""
    seen: list[Tensor] = []
    orig = actor_updates.ppo_clip_objective

    def spy(ratio, adv, *a, **k):
        seen.append(adv.detach().clone())
        return orig(ratio, adv, *a, **k)

    monkeypatch.setattr(actor_updates, "ppo_clip_objective", spy)
    agent, batch = _setup("mappo", adv_norm="minibatch", actor_num_mini_batch=2, ppo_epoch=1)
    raw = batch.advantages.clone()
    actor_updates.run(agent, batch)
    assert len(seen) == 2
    for adv in seen:
        assert abs(float(adv.mean())) < 1e-5
        assert float(adv.std(unbiased=False)) == pytest.approx(1.0, abs=1e-4)
    seen.clear()
    agent, batch = _setup("mappo", adv_norm="none", actor_num_mini_batch=1, ppo_epoch=1)
    actor_updates.run(agent, batch)
    assert torch.equal(torch.sort(seen[0].flatten()).values, torch.sort(raw.flatten()).values)  # a permutation


def test_hatrpo_backtracks_by_the_configured_coefficient(monkeypatch) -> None:
    """``backtrack_coeff`` is the line search's shrink factor: with ``c = 0.5`` every accepted step has fraction
    ``0.5**(tries - 1)``, and a large KL budget with a strict acceptance ratio makes some steps backtrack."""
    results = []
    orig = actor_updates.backtracking_line_search

    def spy(*a, **k):
        out = orig(*a, **k)
        results.append(out)
        return out

    monkeypatch.setattr(actor_updates, "backtracking_line_search", spy)
    agent, batch = _setup("hatrpo", kl_threshold=2.0, accept_ratio=0.9, backtrack_coeff=0.5, fixed_order=True)
    actor_updates.run(agent, batch)
    accepted = [r for r in results if r.accepted]
    assert any(r.n_tries > 1 for r in accepted), [(r.accepted, r.n_tries) for r in results]
    for r in accepted:
        assert r.fraction == 0.5 ** (r.n_tries - 1)


# ================================================================================================ replay
def test_entropy_of_a_discrete_batch_without_avail_is_the_unmasked_entropy() -> None:
    """A discrete batch with no ``avail`` (buffer built without action masks): agent i's entropies are those of
    its unmasked distribution."""
    agent, batch = _setup("happo")
    idx = torch.arange(10)
    with torch.no_grad():
        got = actor_updates._agent_entropy(agent, 1, batch, idx)
        ref = agent.actors.distribution_agent(1, batch.obs[idx, 1]).entropy()
    assert torch.allclose(got, ref)


def _recurrent_batch(algo: str = "hatrpo") -> tuple[Any, Batch]:
    """A recurrent agent (GRU) and a collected batch with T = 6, B = 2 environments, 3 actions (B != A)."""
    env = make("matrix/random", n_agents=2, n_actions=3, n_states=3, gamma=0.9, num_envs=2, seed=0)
    agent = make_agent(algo, env.spec, seed=1, use_rnn=True, rnn_hidden=8, hidden=(16,))
    cfg = TrainerConfig(total_steps=12, rollout_length=6, progress=False, tensorboard=False)
    buffer = Trainer(env, agent, cfg, seed=0).collect()
    buffer.compute_returns(agent.config.gamma, agent.config.gae_lambda, agent.value_norm)
    return agent, actor_updates.from_buffer(buffer, agent.spec.n_agents, recurrent=True)


def test_recurrent_replay_applies_the_action_mask() -> None:
    """Recurrent replay with ``avail``: masked actions get probability exactly 0 (and the rest renormalise)."""
    agent, batch = _recurrent_batch("happo")
    n = batch.obs.shape[0]
    avail = torch.ones(n, 2, 3, dtype=torch.bool)
    avail[::2, :, 0] = False
    batch.avail = avail
    with torch.no_grad():
        p = actor_updates.replay_distribution(agent, 0, batch).probs.reshape(n, 3)
    assert bool((p[::2, 0] == 0).all())
    assert bool((p[1::2, 0] > 0).all())
    assert torch.allclose(p.sum(-1), torch.ones(n))


def test_recurrent_kl_is_the_mean_over_samples_of_the_categorical_kl(monkeypatch) -> None:
    """``_agent_kl`` on a recurrent batch (batch shape ``[T, E]``, E != number of actions) equals
    ``mean_{t,e} KL(pi_old || pi_new)`` from ``torch.distributions``, and the replay runs with cuDNN disabled
    (the Fisher-vector product differentiates it twice), which is restored afterwards."""
    agent, batch = _recurrent_batch("hatrpo")
    with torch.no_grad():
        old_dist = actor_updates.replay_distribution(agent, 0, batch)
        old = FrozenDistribution.of(old_dist)
        for p in agent.actors.parameters_of(0):
            p.add_(0.3 * torch.randn(p.shape, generator=torch.Generator().manual_seed(5)))
        new_dist = actor_updates.replay_distribution(agent, 0, batch)
    ref = kl_divergence(Categorical(probs=old.probs), Categorical(probs=new_dist.probs)).mean()
    cudnn_seen: list[bool] = []
    orig = actor_updates.replay_distribution

    def spy(*a, **k):
        cudnn_seen.append(torch.backends.cudnn.enabled)
        return orig(*a, **k)

    monkeypatch.setattr(actor_updates, "replay_distribution", spy)
    before = torch.backends.cudnn.enabled
    got = actor_updates._agent_kl(agent, 0, batch, old)
    assert cudnn_seen == [False]
    assert torch.backends.cudnn.enabled == before
    assert float(ref) > 1e-3
    assert float(got.detach()) == pytest.approx(float(ref), rel=1e-5)


# ================================================================================================ losses
def test_losses_reject_integer_tensors() -> None:
    """Every loss input must be floating point (an integer tensor would silently promote or truncate)."""
    i = torch.tensor([1, -2, 3])
    f = torch.tensor([1.0, -2.0, 3.0])
    with pytest.raises(TypeError, match="err must be a floating"):
        huber_loss(i)
    with pytest.raises(TypeError, match="err must be a floating"):
        mse_loss(i)
    with pytest.raises(TypeError, match="x must be a floating"):
        masked_mean(i)
    with pytest.raises(TypeError, match="adv must be a floating"):
        ppo_clip_objective(f, i, 0.2)
    with pytest.raises(TypeError, match="values must be a floating"):
        value_loss(i, f, f, 0.2)
    with pytest.raises(TypeError, match="old_values must be a floating"):
        value_loss(f, i, f, 0.2)


def test_ppo_clip_objective_with_mask_is_the_masked_mean() -> None:
    """``mask`` restricts the mean: r = (1, 1.5, 0.5), A = (1, 2, -4), eps = 0.2: elementwise (1, 2.4, -3.2);
    mask (1, 1, 0) gives 1.7 (unmasked mean: 0.2 / 3)."""
    r = torch.tensor([1.0, 1.5, 0.5])
    a = torch.tensor([1.0, 2.0, -4.0])
    m = torch.tensor([True, True, False])
    assert float(ppo_clip_objective(r, a, 0.2, mask=m)) == pytest.approx(1.7)
    assert float(ppo_clip_objective(r, a, 0.2)) == pytest.approx(0.2 / 3)


def test_aggregate_ratio_defaults_to_the_product_and_needs_an_action_axis() -> None:
    """Default ``how`` is ``"prod"`` (``exp(sum log r)``); a 0-d log-ratio has no action axis and is refused."""
    lr = torch.tensor([[0.1, -0.3], [0.2, 0.5]])
    assert torch.allclose(aggregate_ratio(lr), torch.exp(torch.tensor([-0.2, 0.7])))
    with pytest.raises(ValueError, match="at least 1 dimensions"):
        aggregate_ratio(torch.tensor(0.1))


# ================================================================================================ GAE
def test_gae_input_contracts() -> None:
    """Integer rewards are refused; a wrongly shaped ``truncated`` is reported under its own name; with a
    value normaliser, integer critic outputs are refused before de-normalisation."""
    v = torch.zeros(3, 2)
    flags = torch.zeros(3, 2, dtype=torch.bool)
    with pytest.raises(TypeError, match="rewards must be a floating"):
        compute_gae(torch.ones(3, 2, dtype=torch.int64), v, v, flags, flags, 0.9, 0.9)
    with pytest.raises(ValueError, match="truncated must have shape"):
        compute_gae(torch.ones(3, 2), v, v, flags, torch.zeros(3, 5, dtype=torch.bool), 0.9, 0.9)

    class Scale:  # a de-normaliser that would turn integers into floats
        def denormalize(self, x: Tensor) -> Tensor:
            return 2.0 * x

    vi = torch.zeros(3, 2, dtype=torch.int64)
    with pytest.raises(TypeError, match="values must be a floating"):
        compute_gae_with_value_norm(torch.ones(3, 2), vi, v, flags, flags, 0.9, 0.9, Scale())
    with pytest.raises(TypeError, match="next_values must be a floating"):
        compute_gae_with_value_norm(torch.ones(3, 2), v, vi, flags, flags, 0.9, 0.9, Scale())


# ================================================================================================ trust region
def test_line_search_kl_limit_is_strict() -> None:
    """Acceptance needs ``kl < kl_limit``: with f(x) = x, KL(x) = x^2, limit 1 and a unit step, the full step
    (KL exactly 1) is refused and the second candidate (fraction 0.8, KL 0.64) accepted."""
    res = backtracking_line_search(lambda x: x.sum(), torch.zeros(1, dtype=torch.float64),
                                   torch.ones(1, dtype=torch.float64), 1.0, kl_fn=lambda x: (x * x).sum(),
                                   kl_limit=1.0)
    assert res.accepted is True and res.n_tries == 2 and res.fraction == 0.8
    assert res.kl == pytest.approx(0.64)


def test_line_search_rollback_reports_the_last_candidate() -> None:
    """On rollback (f decreasing along the step): ``accepted`` is the bool False, x = x0, fraction 0, and
    ``expected_improve`` is that of the last candidate, ``c^(max_steps-1) * expected``."""
    x0 = torch.tensor([1.0, 2.0], dtype=torch.float64)
    res = backtracking_line_search(lambda x: -x.sum(), x0, torch.ones(2, dtype=torch.float64), 3.0,
                                   backtrack_coeff=0.5, max_steps=4)
    assert isinstance(res.accepted, bool) and not res.accepted
    assert torch.equal(res.x, x0) and res.fraction == 0.0 and res.n_tries == 4
    assert res.expected_improve == pytest.approx(3.0 * 0.5 ** 3)
    assert res.improve == pytest.approx(-2.0 * 0.5 ** 3)


def test_trust_region_input_contracts() -> None:
    """Integer step / rhs / probe vectors are refused; ``backtrack_coeff`` must lie in the open (0, 1)."""
    x0 = torch.zeros(2)
    with pytest.raises(TypeError, match="full_step must be a floating"):
        backtracking_line_search(lambda x: x.sum(), x0, torch.ones(2, dtype=torch.int64), 1.0)
    with pytest.raises(ValueError, match="backtrack_coeff"):
        backtracking_line_search(lambda x: x.sum(), x0, torch.ones(2), 1.0, backtrack_coeff=0.0)
    with pytest.raises(TypeError, match="b must be a floating"):
        conjugate_gradient(lambda v: v, torch.ones(2, dtype=torch.int64))
    w = torch.tensor([0.5, -0.5], requires_grad=True)
    fvp = fisher_vector_product(lambda: (w * w).sum(), [w])
    with pytest.raises(TypeError, match="v must be a floating"):
        fvp(torch.ones(2, dtype=torch.int64))


def test_cg_curvature_floor_is_strict() -> None:
    """The relative curvature floor stops CG only BELOW ``1e-6 * first curvature``: a second direction whose
    curvature equals it exactly is still taken. Operator: first product ``[1, -1]`` on p0 = b = [1, 0]
    (curvature 1, x1 = [1, 0], r1 = [0, 1], p1 = [1, 1]); then ``1e-6 * p`` (curvature exactly 1e-6), so
    alpha = 1 / 2e-6 and x2 = [1 + 5e5, 5e5]."""
    calls = []

    def avp(p: Tensor) -> Tensor:
        calls.append(p.clone())
        return torch.tensor([1.0, -1.0], dtype=torch.float64) if len(calls) == 1 else 1e-6 * p

    x = conjugate_gradient(avp, torch.tensor([1.0, 0.0], dtype=torch.float64), n_iters=2)
    assert torch.allclose(x, torch.tensor([1.0 + 5e5, 5e5], dtype=torch.float64))


# ================================================================================================ value norm
def test_value_norm_shape_zero_is_a_scalar_statistic_and_denormalize_keeps_dtype() -> None:
    """``shape=0`` means one scalar statistic (``()``); ``denormalize`` returns x's dtype (stats are float64)."""
    vn = ValueNorm(0)
    assert vn.shape == ()
    vn.update(torch.tensor([1.0, 3.0]))
    out = vn.denormalize(torch.tensor([0.0, 1.0], dtype=torch.float32))
    assert out.dtype == torch.float32
    assert torch.allclose(out, torch.tensor([2.0, 3.0]))  # mean 2, population std 1


def test_popart_honours_mode_generator_and_device() -> None:
    """PopArt's ``mode="exact"`` gives exact statistics (two batches of sizes 1 and 3: mean of all 4 targets,
    where an EMA would weigh the batches equally); its init depends only on ``generator`` (not on the global RNG);
    ``device`` places the layer and the statistics there even when the default device is another one."""
    pa = PopArt(2, 1, mode="exact", beta=0.5)
    pa.update(torch.tensor([[4.0]]))
    pa.update(torch.tensor([[0.0], [0.0], [0.0]]))
    mean, var = pa.stats.mean_var()
    assert float(mean) == pytest.approx(1.0) and float(var) == pytest.approx(3.0)

    torch.manual_seed(1)
    a = PopArt(4, 3, generator=torch.Generator().manual_seed(0))
    torch.manual_seed(2)
    b = PopArt(4, 3, generator=torch.Generator().manual_seed(0))
    assert torch.equal(a.linear.weight, b.linear.weight)

    with torch.device("meta"):
        c = PopArt(4, 2, device="cpu", generator=torch.Generator().manual_seed(0))
    assert c.linear.weight.device.type == "cpu" and c.linear.bias.device.type == "cpu"
    assert all(buf.device.type == "cpu" for buf in c.stats.buffers())
    assert torch.equal(c.linear.weight[:, :], PopArt(4, 2, generator=torch.Generator().manual_seed(0)).linear.weight)


@pytest.mark.parametrize("granularity", ["agent_outer", "minibatch_outer"])
def test_sequential_update_places_its_tensors_on_the_agents_device(granularity: str) -> None:
    """The sequential update creates its tensors (the factor included) on ``agent.device``, not on the global
    default device: under ``torch.device("meta")`` as default, a CPU agent gives exactly the metrics and
    parameters of the same update run normally."""
    runs = []
    for default in (None, "meta"):
        agent, batch = _setup("happo", granularity=granularity, fixed_order=False, actor_num_mini_batch=2, seed=2)
        if default is None:
            metrics = actor_updates.run(agent, batch)
        else:
            with torch.device(default):
                metrics = actor_updates.run(agent, batch)
        runs.append((metrics, [p.detach().clone() for p in agent.actors.parameters()]))
    (m0, p0), (m1, p1) = runs
    assert m0 == m1
    assert all(a.device.type == "cpu" and torch.equal(a, b) for a, b in zip(p1, p0))
