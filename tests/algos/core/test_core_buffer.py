"""RolloutBuffer: shapes, GAE wiring, minibatch partition, advantage normalisation."""

from __future__ import annotations

import math

import pytest
import torch

from seqmarl.algos.core import RolloutBuffer, ValueNorm, compute_gae, minibatch_indices, normalise_advantages

D = torch.float64
T, B, N, OBS, STATE, A = 4, 3, 2, 5, 6, 3


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def filled(critic="centralised", seed=0, **kw):
    buf = RolloutBuffer(T, B, N, OBS, STATE, (), A, "cpu", critic=critic, dtype=D, **kw)
    g = gen(seed)
    vshape = (B,) if critic == "centralised" else (B, N)
    for t in range(T):
        avail = torch.ones(B, N, A, dtype=torch.bool)
        avail[:, 1, 0] = False
        buf.insert(
            obs=torch.randn(B, N, OBS, generator=g, dtype=D),
            state=torch.randn(B, STATE, generator=g, dtype=D),
            actions=torch.randint(0, A, (B, N), generator=g),
            log_probs=torch.randn(B, N, generator=g, dtype=D),
            rewards=torch.randn(B, generator=g, dtype=D),
            values=torch.randn(vshape, generator=g, dtype=D),
            next_values=torch.randn(vshape, generator=g, dtype=D),
            terminated=torch.rand(B, generator=g) < 0.3,
            truncated=torch.rand(B, generator=g) < 0.3,
            avail_actions=avail,
        )
    return buf


def test_shapes_and_dtypes():
    buf = filled()
    assert buf.full and buf.step == T
    assert buf.obs.shape == (T, B, N, OBS) and buf.state.shape == (T, B, STATE)
    assert buf.actions.shape == (T, B, N) and buf.actions.dtype == torch.long
    assert buf.log_probs.shape == (T, B, N) and buf.values.shape == (T, B)
    assert buf.avail_actions.shape == (T, B, N, A) and buf.active.dtype == torch.bool
    per = filled("per_agent")
    assert per.values.shape == (T, B, N) and per.advantages.shape == (T, B, N)
    cont = RolloutBuffer(T, B, N, OBS, STATE, (2,), None, "cpu", log_prob_shape=(2,), actor_rnn_shape=(1, 8),
                         critic_rnn_shape=(1, 16))
    assert cont.actions.shape == (T, B, N, 2) and cont.actions.dtype == torch.float32
    assert cont.log_probs.shape == (T, B, N, 2) and cont.avail_actions is None
    assert cont.actor_rnn.shape == (T, B, N, 1, 8) and cont.critic_rnn.shape == (T, B, 1, 16)


@pytest.mark.parametrize("critic", ["centralised", "per_agent"])
def test_returns_equal_compute_gae(critic):
    buf = filled(critic)
    adv, ret = buf.compute_returns(0.9, 0.8)
    ref_adv, ref_ret = compute_gae(buf.rewards, buf.values, buf.next_values, buf.terminated, buf.truncated, 0.9, 0.8)
    assert torch.equal(adv, ref_adv) and torch.equal(ret, ref_ret)


def test_returns_with_value_norm_are_denormalised():
    buf = filled()
    vn = ValueNorm(mode="exact")
    vn.update(torch.tensor([0.0, 4.0], dtype=D))       # mean 2, std 2
    adv, ret = buf.compute_returns(0.9, 0.8, value_norm=vn)
    ref_adv, ref_ret = compute_gae(buf.rewards, 2 * buf.values + 2, 2 * buf.next_values + 2, buf.terminated,
                                   buf.truncated, 0.9, 0.8)
    assert torch.allclose(adv, ref_adv, atol=1e-12) and torch.allclose(ret, ref_ret, atol=1e-12)


def test_minibatches_partition_every_index_once():
    buf = filled()
    buf.compute_returns(0.99, 0.95)
    batches = list(buf.minibatches(5, gen(1)))       # 12 samples into 5 minibatches: sizes 3,3,2,2,2
    idx = torch.cat([b["indices"] for b in batches])
    assert sorted(idx.tolist()) == list(range(T * B))
    assert sorted(len(b["indices"]) for b in batches) == [2, 2, 2, 3, 3]
    # flat index k = t * B + e; per-agent fields keep the agent axis
    b0 = batches[0]
    for j, k in enumerate(b0["indices"].tolist()):
        t, e = divmod(k, B)
        assert torch.equal(b0["obs"][j], buf.obs[t, e])
        assert torch.equal(b0["actions"][j], buf.actions[t, e])
        assert torch.equal(b0["avail_actions"][j], buf.avail_actions[t, e])
        assert b0["advantages"][j] == buf.advantages[t, e]
    assert b0["obs"].shape[1:] == (N, OBS) and b0["log_probs"].shape[1:] == (N,)
    # same generator seed -> same partition
    again = [b["indices"] for b in buf.minibatches(5, gen(1))]
    assert all(torch.equal(a, b["indices"]) for a, b in zip(again, batches))


def test_minibatch_indices_validation():
    assert sorted(torch.cat(minibatch_indices(7, 7, gen())).tolist()) == list(range(7))
    with pytest.raises(ValueError, match="num_minibatch"):
        minibatch_indices(3, 4)
    with pytest.raises(TypeError, match="generator"):
        minibatch_indices(3, 1, generator=3)


def test_normalise_advantages_by_hand():
    # masked entries [1, 2, 3, 4]: mean 2.5, population std sqrt(1.25); the map applies to every entry
    adv = torch.tensor([1.0, 2.0, 3.0, 4.0, 100.0], dtype=D)
    mask = torch.tensor([True, True, True, True, False])
    out = normalise_advantages(adv, mask, eps=0.0)
    s = math.sqrt(1.25)
    assert torch.allclose(out, torch.tensor([-1.5 / s, -0.5 / s, 0.5 / s, 1.5 / s, 97.5 / s], dtype=D), atol=1e-12)
    full = normalise_advantages(adv[:4], eps=0.0)
    assert abs(float(full.mean())) < 1e-15 and abs(float(full.std(correction=0)) - 1.0) < 1e-12
    # default eps = 1e-5 in the denominator
    assert torch.allclose(normalise_advantages(adv[:4]), (adv[:4] - 2.5) / (s + 1e-5), atol=1e-15)
    # a [T, B] advantage with a [T, B, n] active mask is not broadcastable -> error names the mask
    with pytest.raises(ValueError, match="mask"):
        normalise_advantages(torch.zeros(2, 3, dtype=D), torch.ones(2, 3, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match="mask"):
        normalise_advantages(adv, torch.zeros(5, dtype=torch.bool))


def test_insert_validation_and_reset():
    buf = filled()
    with pytest.raises(ValueError, match="full"):
        buf.insert(*(getattr(buf, n)[0] for n in ("obs", "state", "actions", "log_probs", "rewards", "values",
                                                   "next_values", "terminated", "truncated")))
    buf.reset()
    assert buf.step == 0 and not buf.full
    args = dict(obs=buf.obs[0], state=buf.state[0], actions=buf.actions[0], log_probs=buf.log_probs[0],
                rewards=buf.rewards[0], values=buf.values[0], next_values=buf.next_values[0],
                terminated=buf.terminated[0], truncated=buf.truncated[0])
    with pytest.raises(ValueError, match="obs"):
        buf.insert(**{**args, "obs": buf.obs[0, :, :1]})
    with pytest.raises(TypeError, match="actions"):
        buf.insert(**{**args, "actions": buf.actions[0].double()})
    with pytest.raises(ValueError, match="terminated"):
        buf.insert(**{**args, "terminated": torch.full((B,), 2)})
    with pytest.raises(ValueError, match="actor_rnn"):
        buf.insert(**args, actor_rnn=torch.zeros(B, N, 4, dtype=D))
    with pytest.raises(ValueError, match="compute_returns"):
        next(buf.minibatches(2, gen()))
    with pytest.raises(ValueError, match="fill"):
        buf.compute_returns(0.99, 0.95)
    with pytest.raises(ValueError, match="critic"):
        RolloutBuffer(T, B, N, OBS, STATE, critic="joint")
    with pytest.raises(ValueError, match="n_actions_max"):
        RolloutBuffer(T, B, N, OBS, STATE, (2,), 3)
    with pytest.raises(ValueError, match="T"):
        RolloutBuffer(0, B, N, OBS, STATE)
    with pytest.raises(ValueError, match="name"):
        buf.flat("nope")
