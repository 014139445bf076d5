"""Acting with separate actors in one pass (algos/core/stacked.py): the same distributions as agent by agent, a
cache that follows every parameter change, and the cases that must fall back to the per-agent loop."""

from __future__ import annotations

import pytest
import torch

from seqmarl.algos.core import BoxSpace, MultiAgentActors
from seqmarl.algos.core.stacked import StackedActors, same_architecture

D = torch.float64


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _loop_outputs(ma: MultiAgentActors, obs: torch.Tensor, avail: torch.Tensor | None) -> torch.Tensor:
    """Agent by agent: the logits / Gaussian means of each actor on its own observations ``[M, n, k]``."""
    outs = []
    for i in range(ma.n_agents):
        d = ma.distribution_agent(i, obs[:, i], None if avail is None else avail[:, i])
        outs.append(d.logits if ma.discrete else d.mean)
    return torch.stack(outs, 1)


CASES = [
    dict(spaces=5, hidden=(16, 16), layer_norm=True, feature_norm=True),
    dict(spaces=4, hidden=(8,), activation="tanh"),
    dict(spaces=[BoxSpace(2)] * 3, hidden=(16, 16), layer_norm=True, feature_norm=True, std_param="harl"),
    dict(spaces=[BoxSpace(3)] * 3, hidden=(8, 8), log_std_init=-0.5),
]


@pytest.mark.parametrize("case", CASES, ids=["discrete-ln", "discrete-tanh", "gauss-harl", "gauss-exp"])
def test_stacked_outputs_equal_each_actor_and_sampling_uses_them(case: dict) -> None:
    kw = dict(case)
    spaces = kw.pop("spaces")
    ma = MultiAgentActors(3, 6, spaces, out_gain=1.0, generator=gen(), dtype=D, **kw)
    for actor in ma.actors:  # make the agents differ beyond their initialisation (affine LayerNorms too)
        for p in actor.parameters():
            p.data.add_(0.1 * torch.randn(p.shape, generator=gen(int(p.numel())), dtype=D))
    obs = torch.randn(9, 3, 6, generator=gen(1), dtype=D)
    avail = None
    if ma.discrete:
        avail = torch.rand(9, 3, ma.size_max, generator=gen(2)) > 0.4
        avail[..., 1] = True
    stacked = ma._stacked_actors()
    assert isinstance(stacked, StackedActors)
    loop = masked = _loop_outputs(ma, obs, avail)
    raw = stacked.head_inputs(obs)
    if ma.discrete:  # the loop's logits are masked; compare where available
        loop = torch.where(avail, loop, raw)
    assert torch.allclose(raw, loop, atol=1e-12, rtol=0)
    if not ma.discrete:
        expected = torch.stack([a.head.log_std_value() for a in ma.actors])
        assert torch.allclose(stacked.log_std(), expected, atol=1e-15, rtol=0)
    with torch.no_grad():
        a, lp = ma.sample(obs, avail, generator=gen(3))
        mode, _ = ma.sample(obs, avail, deterministic=True)
    assert torch.allclose(lp, ma.log_prob(obs, a, avail), atol=1e-12, rtol=0)
    expected_mode = masked.argmax(-1) if ma.discrete else loop
    assert torch.equal(mode, expected_mode) if ma.discrete else torch.allclose(mode, expected_mode, atol=1e-12)
    if avail is not None:
        assert bool(avail.gather(-1, a.unsqueeze(-1)).all())  # never an unavailable action


def test_the_stacked_pass_replaces_the_per_agent_forward_passes() -> None:
    ma = MultiAgentActors(4, 5, 3, hidden=(8,), generator=gen(), dtype=D)
    calls = [0]
    for actor in ma.actors:
        actor.head.register_forward_hook(lambda *_: calls.__setitem__(0, calls[0] + 1))
    obs = torch.randn(6, 4, 5, generator=gen(1), dtype=D)
    with torch.no_grad():
        ma.sample(obs, generator=gen(2))
    assert calls[0] == 0  # no actor module ran: one stacked pass
    ma.stacked_inference = False  # the switch: agent by agent
    with torch.no_grad():
        ma.sample(obs, generator=gen(2))
    assert calls[0] == 4
    ma.stacked_inference = True
    a, lp = ma.sample(obs, generator=gen(2))  # with gradients: the per-agent loop (differentiable log-probs)
    assert calls[0] == 8 and lp.requires_grad


def test_the_cache_follows_optimiser_steps_loads_and_swapped_tensors() -> None:
    ma = MultiAgentActors(3, 4, [BoxSpace(2)] * 3, hidden=(8,), layer_norm=True, generator=gen(), dtype=D)
    obs = torch.randn(5, 3, 4, generator=gen(1), dtype=D)
    stacked = ma._stacked_actors()
    assert stacked is not None

    def check() -> None:
        assert torch.allclose(stacked.head_inputs(obs), _loop_outputs(ma, obs, None), atol=1e-12, rtol=0)
        assert torch.allclose(stacked.log_std(), torch.stack([a.head.log_std_value() for a in ma.actors]),
                              atol=1e-15, rtol=0)

    check()
    opt = torch.optim.SGD(ma.actor_of(1).parameters(), lr=0.5)  # one agent only, in place
    loss = ma.log_prob_agent(1, obs[:, 1], torch.ones(5, 2, dtype=D)).sum() + ma.actor_of(1).head.log_std.sum()
    loss.backward()
    opt.step()
    check()
    other = MultiAgentActors(3, 4, [BoxSpace(2)] * 3, hidden=(8,), layer_norm=True, generator=gen(7), dtype=D)
    ma.load_state_dict(other.state_dict())
    check()
    ma.actor_of(2).body.net[0].weight.data = torch.randn(8, 4, generator=gen(9), dtype=D)  # a new tensor
    check()
    ma.actor_of(0).head.log_std = torch.nn.Parameter(torch.full((2,), -1.0, dtype=D))  # a new parameter object
    check()
    ma.actor_of(1).body.net[0] = torch.nn.Linear(4, 8, dtype=D)  # a new layer
    check()


def test_actors_that_cannot_be_stacked_use_the_loop() -> None:
    assert MultiAgentActors(2, 3, [2, 3], hidden=(8,))._stacked_actors() is None  # different action counts
    assert MultiAgentActors(2, 3, [BoxSpace(1), BoxSpace(2)], hidden=(8,))._stacked_actors() is None
    assert MultiAgentActors(2, 3, 2, hidden=(8,), rnn_hidden=4)._stacked_actors() is None  # recurrent
    assert MultiAgentActors(2, 3, 2, hidden=(8,), share=True)._stacked_actors() is None  # one actor already
    ma = MultiAgentActors(2, 3, [2, 3], hidden=(8,), generator=gen())
    obs = torch.randn(4, 2, 3, generator=gen(1))
    with torch.no_grad():
        a, lp = ma.sample(obs, generator=gen(2))
    assert torch.allclose(lp, ma.log_prob(obs, a))
    assert not same_architecture([])
    with pytest.raises(ValueError, match="identical layers"):
        StackedActors(list(MultiAgentActors(2, 3, [2, 3], hidden=(8,)).actors))


def test_same_architecture_refuses_what_the_stacked_pass_cannot_plan() -> None:
    """Recurrent actors, a LayerNorm without affine parameters, a layer type the plan does not know, actors whose
    layer types or Gaussian std parametrisations differ: not stackable (the loop is used)."""
    def actors(**kw):
        return list(MultiAgentActors(2, 3, [BoxSpace(2)] * 2, hidden=(8,), layer_norm=True, **kw).actors)

    assert same_architecture(actors())
    rec = list(MultiAgentActors(2, 3, 2, hidden=(8,), rnn_hidden=4).actors)
    assert not same_architecture(rec)
    bare = actors()
    for a in bare:
        a.body.net[2] = torch.nn.LayerNorm(8, elementwise_affine=False)
    assert not same_architecture(bare)
    no_bias = actors()
    for a in no_bias:
        a.body.net[2] = torch.nn.LayerNorm(8, bias=False)  # a scale but no shift
    assert not same_architecture(no_bias)
    odd = actors()
    for a in odd:
        a.body.net[1] = torch.nn.GELU()
    assert not same_architecture(odd)
    mixed = actors()
    mixed[1].body.net[1] = torch.nn.Tanh()  # same parameters, another activation for agent 1
    assert not same_architecture(mixed)
    std = actors() + list(MultiAgentActors(1, 3, [BoxSpace(2)], hidden=(8,), layer_norm=True, std_param="harl").actors)
    assert not same_architecture(std)


def test_unchanged_block_keys_once_and_sees_changes_only_after_it(monkeypatch) -> None:
    ma = MultiAgentActors(3, 4, [BoxSpace(2)] * 3, hidden=(8,), layer_norm=True, generator=gen(), dtype=D)
    obs = torch.randn(5, 3, 4, generator=gen(1), dtype=D)
    stacked = ma._stacked_actors()
    assert stacked is not None
    calls = []
    original = StackedActors._current_key
    monkeypatch.setattr(StackedActors, "_current_key", lambda self: calls.append(1) or original(self))
    before = stacked.head_inputs(obs).clone()
    with ma.parameters_unchanged():
        n_entry = len(calls)
        for _ in range(4):
            with torch.no_grad():
                ma.sample(obs, generator=gen(3))  # head_inputs and log_std: no key rebuilt
        assert len(calls) == n_entry
        with torch.no_grad():
            ma.actor_of(0).head.linear.bias.add_(1.0)  # breaks the promise: not seen inside the block
        assert torch.equal(stacked.head_inputs(obs), before)
        with ma.parameters_unchanged():  # nested
            pass
        assert torch.equal(stacked.head_inputs(obs), before)  # the inner exit did not end the outer block
        assert len(calls) == n_entry
    after = stacked.head_inputs(obs)  # after the block: the change is seen
    assert torch.allclose(after, _loop_outputs(ma, obs, None), atol=1e-12, rtol=0)
    assert not torch.equal(after, before)


def test_parameters_unchanged_is_a_no_op_for_unstacked_actors() -> None:
    ma = MultiAgentActors(3, 4, 5, hidden=(8,), share=True, generator=gen(), dtype=D)
    with ma.parameters_unchanged():
        pass
    assert ma._stacked_actors() is None
