"""Networks, heads and distributions: closed-form probabilities/entropies, masking, parameter counts."""

from __future__ import annotations

import math

import pytest
import torch

from seqmarl.algos.core import (
    MLP,
    Actor,
    BoxSpace,
    CategoricalHead,
    Critic,
    DiagGaussian,
    DiagGaussianHead,
    DiscreteSpace,
    GRUCore,
    MaskedCategorical,
    MultiAgentActors,
    as_action_space,
)

D = torch.float64


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def n_params(module):
    return sum(p.numel() for p in module.parameters())


# ---------------------------------------------------------------- MLP
def test_mlp_structure_and_orthogonal_init():
    m = MLP(4, (8, 6), 3, activation="tanh", layer_norm=True, out_gain=0.5, generator=gen(), dtype=D)
    kinds = [type(x).__name__ for x in m.net]
    assert kinds == ["Linear", "Tanh", "LayerNorm", "Linear", "Tanh", "LayerNorm", "Linear"]
    w0 = m.net[0].weight                             # [8, 4], orthogonal columns scaled by gain 5/3 (tanh)
    assert torch.allclose(w0.T @ w0, (5 / 3) ** 2 * torch.eye(4, dtype=D), atol=1e-12)
    w2 = m.net[6].weight                             # [3, 6]: orthonormal rows times out_gain 0.5
    assert torch.allclose(w2 @ w2.T, 0.25 * torch.eye(3, dtype=D), atol=1e-12)
    assert all(float(l.bias.detach().abs().max()) == 0 for l in m.net if isinstance(l, torch.nn.Linear))
    assert m(torch.zeros(5, 4, dtype=D)).shape == (5, 3)
    # parameter count by hand: 4*8+8 + 2*8 (LN) + 8*6+6 + 2*6 + 6*3+3 = 40+16+54+12+21 = 143
    assert n_params(m) == 143
    relu = MLP(4, (8,), None, generator=gen(), dtype=D)
    assert relu.out_dim == 8
    w = relu.net[0].weight
    assert torch.allclose(w.T @ w, 2.0 * torch.eye(4, dtype=D), atol=1e-12)   # gain sqrt(2) for ReLU


def test_mlp_feature_norm_is_a_layer_norm_on_the_input():
    # HARL MLPBase (harl/models/base/mlp.py): LayerNorm(in_dim) -> [Linear -> act -> LayerNorm] per hidden layer
    m = MLP(4, (8,), None, layer_norm=True, feature_norm=True, generator=gen(), dtype=D)
    assert [type(x).__name__ for x in m.net] == ["LayerNorm", "Linear", "ReLU", "LayerNorm"]
    assert m.net[0].normalized_shape == (4,)
    x = torch.randn(7, 4, generator=gen(1), dtype=D)
    # invariant to a per-sample affine map of the input (up to LayerNorm's eps)
    assert torch.allclose(m(x), m(5 * x - 2), atol=1e-6)
    plain = MLP(4, (8,), None, layer_norm=True, generator=gen(), dtype=D)
    assert not torch.allclose(plain(x), plain(5 * x - 2), atol=1e-3)
    with pytest.raises(TypeError, match="feature_norm"):
        MLP(4, (8,), feature_norm=1)


def test_init_is_reproducible_with_generator():
    a = MLP(3, (5,), 2, generator=gen(7))
    b = MLP(3, (5,), 2, generator=gen(7))
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))


# ---------------------------------------------------------------- categorical
def test_masked_categorical_closed_form():
    # logits log[1, 2, 3, 4] -> probs [0.1, 0.2, 0.3, 0.4]; mask out action 1 -> [1, 0, 3, 4]/8
    logits = torch.log(torch.tensor([[1.0, 2, 3, 4]], dtype=D))
    d = MaskedCategorical(logits)
    assert torch.allclose(d.probs, torch.tensor([[0.1, 0.2, 0.3, 0.4]], dtype=D), atol=1e-15)
    avail = torch.tensor([[True, False, True, True]])
    dm = MaskedCategorical(logits, avail)
    assert torch.allclose(dm.probs, torch.tensor([[1 / 8, 0, 3 / 8, 4 / 8]], dtype=D), atol=1e-15)
    assert float(dm.probs[0, 1]) == 0.0                                   # exactly zero
    h = -(1 / 8 * math.log(1 / 8) + 3 / 8 * math.log(3 / 8) + 4 / 8 * math.log(4 / 8))
    assert abs(float(dm.entropy()) - h) < 1e-12
    assert abs(float(d.entropy()) - -sum(p * math.log(p) for p in (0.1, 0.2, 0.3, 0.4))) < 1e-12
    assert abs(float(dm.log_prob(torch.tensor([2]))) - math.log(3 / 8)) < 1e-12
    assert int(dm.mode()) == 3


def test_masked_actions_never_sampled_and_gradients_finite():
    logits = torch.zeros(2000, 5, requires_grad=True)          # float32; masked action would be most likely otherwise
    bias = torch.tensor([0.0, 0.0, 5.0, 0.0, 0.0])
    avail = torch.tensor([True, True, False, True, False]).expand(2000, 5)
    d = MaskedCategorical(logits + bias, avail)
    a = d.sample(gen(3))
    assert a.dtype == torch.long and set(a.unique().tolist()) <= {0, 1, 3}
    assert set(a.unique().tolist()) == {0, 1, 3}
    # uniform over 3 available actions: entropy log 3
    assert torch.allclose(d.entropy(), torch.full((2000,), math.log(3)), atol=1e-6)
    (d.entropy().sum() + d.log_prob(a).sum()).backward()
    assert torch.isfinite(logits.grad).all()
    assert float(logits.grad[:, [2, 4]].abs().max()) == 0.0     # masked logits get no gradient


def test_sampling_reproducible_and_frequencies():
    d = MaskedCategorical(torch.log(torch.tensor([0.2, 0.8], dtype=D)).expand(20000, 2))
    a1, a2 = d.sample(gen(11)), d.sample(gen(11))
    assert torch.equal(a1, a2)
    # Binomial(20000, 0.8): std = sqrt(20000*0.16) ~ 56.6; 5 sigma = 283
    assert abs(int(a1.sum()) - 16000) < 283


def test_categorical_validation():
    with pytest.raises(ValueError, match="no available action"):
        MaskedCategorical(torch.zeros(2, 3), torch.tensor([[True, False, False], [False, False, False]]))
    with pytest.raises(ValueError, match="avail"):
        MaskedCategorical(torch.zeros(2, 3), torch.ones(2, 2, dtype=torch.bool))
    d = MaskedCategorical(torch.zeros(2, 3))
    with pytest.raises(ValueError, match="actions"):
        d.log_prob(torch.tensor([0, 3]))
    with pytest.raises(TypeError, match="actions"):
        d.log_prob(torch.tensor([0.0, 1.0]))
    with pytest.raises(ValueError, match="actions"):
        d.log_prob(torch.tensor([0]))
    with pytest.raises(TypeError, match="generator"):
        d.sample(generator=0)
    with pytest.raises(TypeError, match="logits"):
        MaskedCategorical(torch.zeros(2, 3, dtype=torch.long))


# ---------------------------------------------------------------- Gaussian
def test_gaussian_log_prob_and_entropy():
    mean = torch.tensor([[0.5, -1.0, 2.0]], dtype=D)
    log_std = torch.tensor([0.0, math.log(2.0), math.log(0.5)], dtype=D)
    d = DiagGaussian(mean, log_std)
    a = torch.tensor([[1.5, 1.0, 2.0]], dtype=D)
    ref = torch.distributions.Normal(mean, log_std.exp())
    assert torch.allclose(d.log_prob(a), ref.log_prob(a).sum(-1), atol=1e-14)
    assert torch.allclose(d.log_prob(a, per_dim=True), ref.log_prob(a), atol=1e-14)
    # closed form: z = [1, 1, 0]; sum(-z^2/2 - log s - log(2 pi)/2) = -1 - log 2 + log 2 - 1.5 log(2 pi)
    assert abs(float(d.log_prob(a)) - (-1.0 - 1.5 * math.log(2 * math.pi))) < 1e-13
    # entropy = sum(1/2 + log(2 pi)/2 + log s) = 1.5 + 1.5 log(2 pi) + 0 (log 2 - log 2)
    assert abs(float(d.entropy()) - (1.5 + 1.5 * math.log(2 * math.pi))) < 1e-13
    assert torch.allclose(d.entropy(per_dim=True), ref.entropy(), atol=1e-14)
    assert torch.equal(d.mode(), mean)


def test_gaussian_sampling_statistics():
    d = DiagGaussian(torch.tensor([[1.0, -2.0]], dtype=D).expand(40000, 2), torch.tensor([0.0, math.log(3.0)], dtype=D))
    x = d.sample(gen(5))
    assert torch.equal(x, d.sample(gen(5)))
    # sample mean within 5 standard errors (std/sqrt(N) = [0.005, 0.015])
    assert abs(float(x[:, 0].mean()) - 1.0) < 0.025 and abs(float(x[:, 1].mean()) + 2.0) < 0.075
    assert abs(float(x[:, 1].std()) - 3.0) < 0.06


def test_gaussian_head():
    h = DiagGaussianHead(4, 2, log_std_init=-0.5, generator=gen(), dtype=D)
    d = h(torch.zeros(3, 4, dtype=D))
    assert torch.equal(d.mean, torch.zeros(3, 2, dtype=D))               # zero bias, zero input
    assert torch.allclose(d.log_std, torch.full((3, 2), -0.5, dtype=D))
    with pytest.raises(ValueError, match="avail"):
        h(torch.zeros(3, 4, dtype=D), torch.ones(3, 2, dtype=torch.bool))
    with pytest.raises(ValueError, match="actions"):
        d.log_prob(torch.zeros(3, 3, dtype=D))


def test_gaussian_head_harl_std_parametrisation():
    # HARL harl/models/base/distributions.py DiagGaussian: p = ones * x, std = sigmoid(p / x) * y
    h = DiagGaussianHead(4, 2, std_param="harl", std_x_coef=1.0, std_y_coef=0.5, generator=gen(), dtype=D)
    assert torch.equal(h.log_std.detach(), torch.ones(2, dtype=D))
    d = h(torch.zeros(3, 4, dtype=D))
    s0 = 0.5 / (1 + math.exp(-1.0))
    assert torch.allclose(d.std, torch.full((3, 2), s0, dtype=D), atol=1e-15)
    assert torch.allclose(d.log_std, torch.full((3, 2), math.log(s0), dtype=D), atol=1e-15)
    assert torch.allclose(h.std(), torch.full((2,), s0, dtype=D), atol=1e-15)
    with torch.no_grad():
        h.log_std.copy_(torch.tensor([-30.0, 30.0], dtype=D))
    s = h(torch.zeros(1, 4, dtype=D)).std[0].detach()
    assert 0 < float(s[0]) < 1e-13 and float(s[1]) <= 0.5 and abs(float(s[1]) - 0.5) < 1e-12
    # the gradient reaches the parameter through the sigmoid
    h2 = DiagGaussianHead(4, 1, std_param="harl", std_x_coef=2.0, std_y_coef=0.3, generator=gen(), dtype=D)
    assert float(h2.log_std.detach()) == 2.0
    h2(torch.zeros(1, 4, dtype=D)).entropy().sum().backward()
    # d/dp log(sigmoid(p / x) * y) = (1 - sigmoid(p / x)) / x at p = x: (1 - sigmoid(1)) / 2
    assert abs(float(h2.log_std.grad) - (1 - 1 / (1 + math.exp(-1.0))) / 2) < 1e-12
    with pytest.raises(ValueError, match="std_param"):
        DiagGaussianHead(4, 2, std_param="softplus")
    with pytest.raises(ValueError, match="std_y_coef"):
        DiagGaussianHead(4, 2, std_param="harl", std_y_coef=0.0)


# ---------------------------------------------------------------- GRU
def test_gru_reset_on_episode_start():
    core = GRUCore(3, 4, generator=gen(), dtype=D)
    g = gen(1)
    x = torch.randn(5, 2, 3, generator=g, dtype=D)
    h0 = torch.randn(1, 2, 4, generator=g, dtype=D)
    starts = torch.zeros(5, 2, dtype=torch.bool)
    starts[2, 0] = True
    out, hT = core(x, h0, starts)
    # env 0: steps 2..4 must equal a fresh run from the zero state
    fresh, _ = core(x[2:, :1], torch.zeros(1, 1, 4, dtype=D), torch.zeros(3, 1, dtype=torch.bool))
    assert torch.allclose(out[2:, :1], fresh, atol=1e-14)
    # without the reset the output differs (the state really carries over)
    carry, _ = core(x, h0, torch.zeros(5, 2, dtype=torch.bool))
    assert not torch.allclose(carry[2:, 0], out[2:, 0])
    assert torch.allclose(carry[:, 1], out[:, 1], atol=1e-14)             # env 1 untouched
    # one step at a time equals the sequence call
    h = h0
    for t in range(5):
        o, h = core(x[t], h, starts[t])
        assert torch.allclose(o, out[t], atol=1e-14)
    assert torch.allclose(h, hT, atol=1e-14)
    with pytest.raises(ValueError, match="h must"):
        core(x, torch.zeros(1, 3, 4, dtype=D), starts)
    with pytest.raises(ValueError, match="episode_start"):
        core(x, h0, starts[:2])


# ---------------------------------------------------------------- actor / critic
def test_actor_and_critic():
    act = Actor(4, 3, hidden=(8,), generator=gen(), dtype=D)
    obs = torch.randn(6, 4, generator=gen(2), dtype=D)
    avail = torch.tensor([True, False, True]).expand(6, 3)
    a, lp = act.sample(obs, avail, generator=gen(3))
    assert set(a.tolist()) <= {0, 2}
    assert torch.allclose(lp, act.log_prob(obs, a, avail), atol=1e-14)
    ad, _ = act.sample(obs, avail, deterministic=True)
    assert torch.equal(ad, act.distribution(obs, avail).probs.argmax(-1))
    cont = Actor(4, BoxSpace(2), hidden=(8,), generator=gen(), dtype=D)
    a, lp = cont.sample(obs, generator=gen(4))
    assert a.shape == (6, 2) and torch.allclose(lp, cont.log_prob(obs, a), atol=1e-14)
    assert cont.log_prob(obs, a, per_dim=True).shape == (6, 2)
    with pytest.raises(ValueError, match="per_dim"):
        act.log_prob(obs, ad, per_dim=True)
    crit = Critic(5, (8,), generator=gen(), dtype=D)
    assert crit(torch.zeros(7, 5, dtype=D)).shape == (7,)
    assert Critic(5, (8,), out_dim=3, dtype=D)(torch.zeros(7, 5, dtype=D)).shape == (7, 3)
    with pytest.raises(ValueError, match="x must"):
        crit(torch.zeros(7, 4, dtype=D))


def test_action_space_parsing():
    class GymDiscrete:
        n = 5

    class GymBox:
        shape = (3,)

    assert as_action_space(4) == DiscreteSpace(4)
    assert as_action_space(GymDiscrete()) == DiscreteSpace(5)
    assert as_action_space(GymBox()) == BoxSpace(3)
    with pytest.raises(TypeError, match="action_space"):
        as_action_space("discrete")
    with pytest.raises(ValueError, match="n"):
        DiscreteSpace(0)


# ---------------------------------------------------------------- multi-agent actors
def test_parameter_counts_shared_vs_separate():
    # obs 3, hidden (4,), 2 actions. One actor: body 3*4+4 = 16, head 4*2+2 = 10 -> 26.
    sep = MultiAgentActors(3, 3, 2, share=False, hidden=(4,))
    assert n_params(sep) == 3 * 26
    shared = MultiAgentActors(3, 3, 2, share=True, hidden=(4,))
    assert n_params(shared) == 26
    # with one-hot ids the input is 3 + 3 = 6: body 6*4+4 = 28, head 10 -> 38
    assert n_params(MultiAgentActors(3, 3, 2, share=True, agent_id=True, hidden=(4,))) == 38


def test_agent_id_changes_outputs_per_agent():
    obs = torch.randn(5, 1, 3, generator=gen(1), dtype=D).expand(5, 3, 3)   # identical obs for every agent
    acts = torch.zeros(5, 3, dtype=torch.long)
    no_id = MultiAgentActors(3, 3, 4, share=True, hidden=(8,), out_gain=1.0, generator=gen(), dtype=D)
    lp = no_id.log_prob(obs, acts)
    assert torch.allclose(lp, lp[:, :1].expand(5, 3), atol=1e-15)          # indistinguishable agents
    with_id = MultiAgentActors(3, 3, 4, share=True, agent_id=True, hidden=(8,), out_gain=1.0, generator=gen(),
                               dtype=D)
    lp = with_id.log_prob(obs, acts)
    assert (lp[:, 0] - lp[:, 1]).abs().min() > 1e-6 and (lp[:, 1] - lp[:, 2]).abs().min() > 1e-6


def test_per_agent_parameter_groups():
    ma = MultiAgentActors(3, 4, 3, share=False, hidden=(8,), out_gain=1.0, generator=gen(), dtype=D)
    groups = [ma.parameters_of(i) for i in range(3)]
    ids = [{id(p) for p in g} for g in groups]
    assert not (ids[0] & ids[1]) and not (ids[1] & ids[2])
    assert set().union(*ids) == {id(p) for p in ma.parameters()}
    obs = torch.randn(6, 3, 4, generator=gen(2), dtype=D)
    a, _ = ma.sample(obs, generator=gen(3))
    ma.log_prob(obs, a)[:, 1].sum().backward()            # agent 1's log-prob touches only agent 1's parameters
    # (torch.stack's backward hands zero tensors to the other columns, so their grads are None or exactly 0)
    assert all(p.grad is None or float(p.grad.abs().max()) == 0.0 for i in (0, 2) for p in groups[i])
    assert sum(float(p.grad.abs().sum()) for p in groups[1]) > 0
    shared = MultiAgentActors(3, 4, 3, share=True, hidden=(4,))
    with pytest.raises(ValueError, match="share=True"):
        shared.parameters_of(0)
    with pytest.raises(ValueError, match="agent"):
        ma.parameters_of(3)


@pytest.mark.parametrize("share", [False, True])
def test_heterogeneous_discrete_agents(share):
    # agents with 2, 3, 4 actions; avail given over A_max = 4 (extra columns are ignored / masked).
    ma = MultiAgentActors(3, 2, [2, 3, 4], share=share, agent_id=share, hidden=(8,), out_gain=1.0,
                          generator=gen(), dtype=D)
    obs = torch.randn(3000, 3, 2, generator=gen(1), dtype=D)
    avail = torch.ones(3000, 3, 4, dtype=torch.bool)
    avail[:, 2, 0] = False                                  # agent 2 may not take action 0
    a, lp = ma.sample(obs, avail, generator=gen(2))
    assert a.shape == (3000, 3) and lp.shape == (3000, 3)
    assert int(a[:, 0].max()) <= 1 and int(a[:, 1].max()) <= 2 and int(a[:, 2].min()) >= 1
    assert torch.allclose(lp, ma.log_prob(obs, a, avail), atol=1e-12)
    for i in range(3):
        assert torch.allclose(ma.log_prob_agent(i, obs[:, i], a[:, i], avail[:, i]), lp[:, i], atol=1e-12)
    # per-agent probabilities sum to 1 over the agent's own actions: sum_a exp(log_prob(a)) = 1
    for i, n_i in enumerate((2, 3, 4)):
        tot = sum(ma.log_prob_agent(i, obs[:5, i], torch.full((5,), k), avail[:5, i]).exp() for k in range(n_i))
        assert torch.allclose(tot, torch.ones(5, dtype=D), atol=1e-12)
    ent = ma.entropy(obs[:5], avail[:5]).detach()
    for i in range(3):
        d = ma.distribution_agent(i, obs[:5, i], avail[:5, i])
        assert torch.allclose(d.entropy(), ent[:, i], atol=1e-12)
    assert ent.shape == (5, 3)
    assert float(ent[:, 0].max()) <= math.log(2) + 1e-12 and float(ent[:, 2].max()) <= math.log(3) + 1e-12


@pytest.mark.parametrize("share", [False, True])
def test_heterogeneous_continuous_agents(share):
    ma = MultiAgentActors(2, 3, [BoxSpace(1), BoxSpace(3)], share=share, hidden=(8,), generator=gen(), dtype=D)
    obs = torch.randn(4, 2, 3, generator=gen(1), dtype=D)
    a, lp = ma.sample(obs, generator=gen(2))
    assert a.shape == (4, 2, 3)
    assert torch.equal(a[:, 0, 1:], torch.zeros(4, 2, dtype=D))             # padded dims are 0
    per = ma.log_prob(obs, a, per_dim=True)
    assert per.shape == (4, 2, 3) and torch.equal(per[:, 0, 1:], torch.zeros(4, 2, dtype=D))
    assert torch.allclose(per.sum(-1), lp, atol=1e-12)
    # agent 0 is a 1-D Gaussian with std exp(0) = 1: entropy = 1/2 + log(2 pi)/2; agent 1: three times that
    h1 = 0.5 + 0.5 * math.log(2 * math.pi)
    ent = ma.entropy(obs)
    assert torch.allclose(ent, torch.tensor([h1, 3 * h1], dtype=D).expand(4, 2), atol=1e-12)
    with pytest.raises(ValueError, match="avail"):
        ma.log_prob(obs, a, torch.ones(4, 2, 3, dtype=torch.bool))


def test_multiagent_validation():
    with pytest.raises(ValueError, match="agent_id"):
        MultiAgentActors(2, 3, 2, share=False, agent_id=True)
    with pytest.raises(ValueError, match="action_spaces"):
        MultiAgentActors(2, 3, [2, 2, 2])
    with pytest.raises(ValueError, match="mixed"):
        MultiAgentActors(2, 3, [2, BoxSpace(2)])
    with pytest.raises(TypeError, match="share"):
        MultiAgentActors(2, 3, 2, share=1)
    ma = MultiAgentActors(2, 3, 2, hidden=(4,))
    with pytest.raises(ValueError, match="obs"):
        ma.log_prob(torch.zeros(4, 3, 3), torch.zeros(4, 3, dtype=torch.long))
    with pytest.raises(ValueError, match="actions"):
        ma.log_prob(torch.zeros(4, 2, 3), torch.zeros(4, 3, dtype=torch.long))
    with pytest.raises(ValueError, match="avail"):
        ma.log_prob(torch.zeros(4, 2, 3), torch.zeros(4, 2, dtype=torch.long), torch.ones(4, 2, 3, dtype=torch.bool))
    with pytest.raises(ValueError, match="n_actions"):
        MultiAgentActors(2, 3, BoxSpace(2), hidden=(4,)).n_actions
    with pytest.raises(ValueError, match="activation"):
        MLP(3, (4,), 2, activation="gelu")
    with pytest.raises(ValueError, match="hidden"):
        MLP(3, (4, 0), 2)
    with pytest.raises(TypeError, match="generator"):
        MLP(3, (4,), 2, generator=1)
    with pytest.raises(ValueError, match="n_actions"):
        CategoricalHead(3, 0)


def _head_calls(ma: MultiAgentActors) -> list[int]:
    """A counter of head forward passes (one per forward pass of an actor network)."""
    calls = [0]
    for actor in ma.actors:
        actor.head.register_forward_hook(lambda *_: calls.__setitem__(0, calls[0] + 1))
    return calls


@pytest.mark.parametrize("share", [False, True])
@pytest.mark.parametrize("kind", ["discrete", "continuous", "recurrent"])
def test_log_prob_and_entropy_equal_the_separate_calls_in_one_forward_pass(share, kind):
    """The fused calls (used by the PPO losses) give exactly :meth:`log_prob`/:meth:`entropy` (and the per-agent
    ones), from ONE forward pass per actor network: one in all for a shared feed-forward actor."""
    n, b = 3, 7
    spaces = [2, 3, 4] if kind != "continuous" else [BoxSpace(1), BoxSpace(3), BoxSpace(2)]
    ma = MultiAgentActors(n, 5, spaces, share=share, agent_id=share, hidden=(8,), out_gain=1.0, generator=gen(),
                          dtype=D, rnn_hidden=6 if kind == "recurrent" else None)
    obs = torch.randn(b, n, 5, generator=gen(1), dtype=D)
    avail = None
    if kind != "continuous":
        avail = torch.ones(b, n, 4, dtype=torch.bool)
        avail[:, 2, 0] = False
    rnn = (ma.initial_state(b), torch.zeros(b, dtype=torch.bool)) if kind == "recurrent" else None
    if kind == "recurrent":
        h = torch.randn(b, n, 6, generator=gen(3), dtype=D)
        rnn = (h, torch.tensor([True, False] * 3 + [False]))
    a = ma.sample(obs, avail, generator=gen(2), rnn=rnn)[0]
    per_dims = [False] if kind != "continuous" else [False, True]
    for per_dim in per_dims:
        calls = _head_calls(ma) if per_dim is per_dims[0] else None
        lp, ent = ma.log_prob_and_entropy(obs, a, avail, per_dim=per_dim, rnn=rnn)
        if calls is not None:
            assert calls[0] == (1 if share and kind != "recurrent" else n)
        assert torch.equal(lp, ma.log_prob(obs, a, avail, per_dim=per_dim, rnn=rnn))
        assert torch.equal(ent, ma.entropy(obs, avail, rnn=rnn))
        for i in range(n):
            rnn_i = None if rnn is None else (rnn[0][:, i], rnn[1])
            avail_i = None if avail is None else avail[:, i]
            before = calls[0] if calls is not None else 0
            lp_i, ent_i = ma.log_prob_and_entropy_agent(i, obs[:, i], a[:, i], avail_i, per_dim=per_dim, rnn=rnn_i)
            if calls is not None:
                assert calls[0] == before + 1
            assert torch.allclose(lp_i, lp[:, i], atol=1e-12, rtol=0)
            assert torch.allclose(ent_i, ent[:, i], atol=1e-12, rtol=0)
            assert torch.equal(lp_i, ma.log_prob_agent(i, obs[:, i], a[:, i], avail_i, per_dim=per_dim, rnn=rnn_i))
            assert torch.equal(ent_i, ma.entropy_agent(i, obs[:, i], avail_i, rnn=rnn_i))


def test_log_prob_and_entropy_validation():
    ma = MultiAgentActors(2, 3, [2, 3], hidden=(8,), generator=gen(), dtype=D)
    obs = torch.randn(4, 2, 3, generator=gen(1), dtype=D)
    with pytest.raises(ValueError, match="actions must have shape"):
        ma.log_prob_and_entropy(obs, torch.zeros(4, 3, dtype=torch.long))
    with pytest.raises(ValueError, match="per_dim"):
        ma.log_prob_and_entropy(obs, torch.zeros(4, 2, dtype=torch.long), per_dim=True)
    with pytest.raises(ValueError, match="actions must have shape"):
        ma.log_prob_and_entropy_agent(0, obs[:, 0], torch.zeros(5, dtype=torch.long))
    with pytest.raises(ValueError, match="per_dim"):
        ma.log_prob_and_entropy_agent(0, obs[:, 0], torch.zeros(4, dtype=torch.long), per_dim=True)
    with pytest.raises(ValueError, match="avail"):
        ma.log_prob_and_entropy(obs, torch.zeros(4, 2, dtype=torch.long), torch.ones(4, 2, 2, dtype=torch.bool))
