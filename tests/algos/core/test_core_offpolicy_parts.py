"""The off-policy building blocks: multi-step TD targets, epsilon-greedy, the episode replay and collector, the
utility network. Oracles: plain-Python loops written from the textbook definitions (Sutton & Barto 2018 eq. 7.1 and
the recursive lambda-return), exact counts, and the env's own step records."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from seqmarl.algos.core.exploration import LinearSchedule, epsilon_greedy, greedy_actions
from seqmarl.algos.core.q_networks import QAgentNetwork
from seqmarl.algos.core.replay import EpisodeCollector, EpisodeReplayBuffer
from seqmarl.algos.core.td_targets import n_step_targets, td_lambda_targets
from seqmarl.envs import make

PROPERTY = settings(max_examples=40, deadline=None, database=None)


# --------------------------------------------------------------------------------------------- TD targets
def _episodes(draw_lengths, T, rng):
    B = len(draw_lengths)
    rewards = torch.tensor(rng.normal(size=(B, T)), dtype=torch.float64)
    values = torch.tensor(rng.normal(size=(B, T)), dtype=torch.float64)
    mask = torch.zeros(B, T, dtype=torch.bool)
    term = torch.zeros(B, T, dtype=torch.bool)
    for b, (L, ends) in enumerate(draw_lengths):
        mask[b, :L] = True
        term[b, L - 1] = ends
    return rewards, term, mask, values


def _n_step_reference(r, term, mask, v, gamma, n):
    B, T = r.shape
    out = np.zeros((B, T))
    for b in range(B):
        L = int(mask[b].sum())
        for t in range(L):
            m = min(n, L - t)
            g = sum(gamma**k * float(r[b, t + k]) for k in range(m))
            if not bool(term[b, t + m - 1]):
                g += gamma**m * float(v[b, t + m - 1])
            out[b, t] = g
    return out


def _lambda_reference(r, term, mask, v, gamma, lam):
    """The forward view: G^lam_t = (1 - lam) sum_{n<m} lam^{n-1} G^(n)_t + lam^{m-1} G^(m)_t, m = steps left."""
    B, T = r.shape
    out = np.zeros((B, T))
    for b in range(B):
        L = int(mask[b].sum())
        for t in range(L):
            m = L - t
            gs = [_n_step_reference(r[b:b + 1], term[b:b + 1], mask[b:b + 1], v[b:b + 1], gamma, n)[0, t]
                  for n in range(1, m + 1)]
            out[b, t] = (1 - lam) * sum(lam ** (n - 1) * gs[n - 1] for n in range(1, m)) + lam ** (m - 1) * gs[m - 1]
    return out


episode_shapes = st.lists(st.tuples(st.integers(1, 5), st.booleans()), min_size=1, max_size=4)


@PROPERTY
@given(episode_shapes, st.integers(1, 6), st.floats(0.0, 1.0), st.integers(0, 10**6))
def test_n_step_targets_match_the_definition(shapes, n, gamma, seed):
    r, term, mask, v = _episodes(shapes, 5, np.random.default_rng(seed))
    got = n_step_targets(r, term, mask, v, gamma, n).numpy()
    np.testing.assert_allclose(got, _n_step_reference(r, term, mask, v, gamma, n), atol=1e-12)


@PROPERTY
@given(episode_shapes, st.floats(0.0, 1.0), st.floats(0.0, 1.0), st.integers(0, 10**6))
def test_td_lambda_targets_match_the_forward_view(shapes, lam, gamma, seed):
    r, term, mask, v = _episodes(shapes, 5, np.random.default_rng(seed))
    got = td_lambda_targets(r, term, mask, v, gamma, lam).numpy()
    np.testing.assert_allclose(got, _lambda_reference(r, term, mask, v, gamma, lam), atol=1e-10)


def test_targets_by_hand():
    """One episode of 3 steps, truncated (no termination): r = (1, 2, 3), V(s_1..s_3) = (10, 20, 30), gamma 0.5."""
    r = torch.tensor([[1.0, 2.0, 3.0]])
    v = torch.tensor([[10.0, 20.0, 30.0]])
    mask = torch.ones(1, 3, dtype=torch.bool)
    live = torch.zeros(1, 3, dtype=torch.bool)
    assert n_step_targets(r, live, mask, v, 0.5, 1).tolist() == [[6.0, 12.0, 18.0]]
    assert n_step_targets(r, live, mask, v, 0.5, 2).tolist() == [[1 + 1 + 5.0, 2 + 1.5 + 7.5, 18.0]]
    ended = torch.tensor([[False, False, True]])
    assert n_step_targets(r, ended, mask, v, 0.5, 3).tolist() == [[1 + 1 + 0.75, 2 + 1.5, 3.0]]
    # lambda = 1: Monte-Carlo return (bootstrapped at the end when truncated); lambda = 0: one step
    assert td_lambda_targets(r, live, mask, v, 0.5, 1.0).tolist() == [[1 + 1 + 0.75 + 3.75, 2 + 1.5 + 7.5, 18.0]]
    assert td_lambda_targets(r, live, mask, v, 0.5, 0.0).tolist() == [[6.0, 12.0, 18.0]]


def test_targets_reject_bad_input():
    r = torch.zeros(2, 3)
    ok = torch.ones(2, 3, dtype=torch.bool)
    with pytest.raises(ValueError, match="mask must mark a prefix"):
        n_step_targets(r, ~ok, torch.tensor([[True, False, True], [True, True, True]]), r, 0.9, 1)
    with pytest.raises(ValueError, match="next_values"):
        td_lambda_targets(r, ~ok, ok, torch.zeros(2, 2), 0.9, 0.5)
    with pytest.raises(ValueError, match="lam"):
        td_lambda_targets(r, ~ok, ok, r, 0.9, 1.5)
    with pytest.raises(ValueError, match="n must be >= 1"):
        n_step_targets(r, ~ok, ok, r, 0.9, 0)


# --------------------------------------------------------------------------------------------- exploration
def test_linear_schedule():
    s = LinearSchedule(1.0, 0.05, 100)
    assert s.value(0) == 1.0 and s.value(100) == pytest.approx(0.05) and s.value(10**6) == pytest.approx(0.05)
    assert s.value(50) == pytest.approx(0.525)
    with pytest.raises(ValueError, match="epsilon_start"):
        LinearSchedule(1.5, 0.0, 10)


def test_epsilon_greedy_frequencies_and_masks():
    """eps = 0.3 over 4 actions, action 3 unavailable, greedy action 1: P(1) = 0.7 + 0.1, P(0) = P(2) = 0.1, P(3) = 0."""
    g = torch.Generator().manual_seed(0)
    q = torch.tensor([0.0, 5.0, 1.0, 9.0]).expand(200_000, 4)
    avail = torch.tensor([True, True, True, False]).expand(200_000, 4)
    a = epsilon_greedy(q, avail, 0.3, g)
    freq = torch.bincount(a, minlength=4).double() / a.numel()
    assert freq[3] == 0
    sd = math.sqrt(0.1 * 0.9 / a.numel())
    assert abs(freq[1] - 0.8) < 5 * math.sqrt(0.8 * 0.2 / a.numel())
    assert abs(freq[0] - 0.1) < 5 * sd and abs(freq[2] - 0.1) < 5 * sd
    assert greedy_actions(q[:1], avail[:1]).item() == 1  # 9.0 is masked
    assert (epsilon_greedy(q[:10], avail[:10], 0.0, g) == 1).all()
    with pytest.raises(ValueError, match="at least one available action"):
        epsilon_greedy(q[:1], torch.zeros(1, 4, dtype=torch.bool), 0.1, g)


# --------------------------------------------------------------------------------------------- replay + collector
def test_collector_stores_exactly_what_the_env_did():
    """Bridge (episodes of different lengths): every stored step equals the env's own record; final observations
    sit after the last step; the mask is the episode's prefix."""
    env = make("bridge", num_envs=3, seed=1)
    buf = EpisodeReplayBuffer(50, env.spec.episode_limit, env.spec.n_agents, env.spec.obs_dim, env.spec.state_dim,
                              env.spec.max_actions)
    col = EpisodeCollector(env, buf)
    col.reset(seed=1)
    g = torch.Generator().manual_seed(0)
    log = []

    def policy(step):
        a = epsilon_greedy(torch.zeros(step.obs.shape[:2] + (env.spec.max_actions,)), step.avail_actions, 1.0, g)
        log.append((step.obs.clone(), a.clone()))
        return a

    n = col.collect(60, policy)
    assert n == len(buf) == len(col.returns) > 0
    batch = buf.all()
    lengths = batch.mask.sum(1)
    for e in range(len(buf)):
        L = int(lengths[e])
        assert batch.mask[e, :L].all() and not batch.mask[e, L:].any()
        assert float(batch.reward[e, :L].sum()) == pytest.approx(col.returns[e], abs=1e-5)
    # the stored first episode of env 0 is the first actions env 0 took
    first = next(e for e in range(len(buf)) if torch.equal(batch.obs[e, 0, :, :], log[0][0][0]))
    L = int(lengths[first])
    assert torch.equal(batch.actions[first, :L], torch.stack([a[0] for _, a in log[:L]]))


def test_replay_ring_sampling_and_state():
    buf = EpisodeReplayBuffer(4, 2, 1, 1, 1, 2)

    def ep(k, L=1):
        out = {"obs": torch.full((1, 3, 1, 1), float(k)), "state": torch.zeros(1, 3, 1),
               "avail": torch.ones(1, 3, 1, 2, dtype=torch.bool), "actions": torch.zeros(1, 2, 1, dtype=torch.int64),
               "reward": torch.full((1, 2), float(k)), "terminated": torch.zeros(1, 2, dtype=torch.bool),
               "mask": torch.zeros(1, 2, dtype=torch.bool)}
        out["mask"][:, :L] = True
        return out

    for k in range(6):
        buf.insert(ep(k))
    assert len(buf) == 4 and buf.episodes_added == 6
    assert sorted(buf.all().obs[:, 0, 0, 0].tolist()) == [2.0, 3.0, 4.0, 5.0]  # the oldest two overwritten
    b = buf.sample(3, torch.Generator().manual_seed(0))
    assert b.batch_size == 3 and b.max_length == 1 and b.obs.shape[1] == 2  # trimmed to the longest + final obs
    assert len(set(b.obs[:, 0, 0, 0].tolist())) == 3  # without replacement
    copy = EpisodeReplayBuffer(4, 2, 1, 1, 1, 2)
    copy.load_state_dict(buf.state_dict())
    assert torch.equal(copy.all().obs, buf.all().obs) and copy.next == buf.next
    with pytest.raises(ValueError, match="batch_size=5 exceeds"):
        buf.sample(5)
    with pytest.raises(ValueError, match="episodes\\['reward'\\]"):
        buf.insert({**ep(0), "reward": torch.zeros(1, 3)})


# --------------------------------------------------------------------------------------------- network
@pytest.mark.parametrize("use_rnn", [True, False])
def test_unroll_equals_stepping(use_rnn):
    """Replaying an episode batch gives the utilities acting computed step by step (same inputs, same state)."""
    torch.manual_seed(0)
    net = QAgentNetwork(5, 3, 4, hidden=16, use_rnn=use_rnn)
    B, T = 2, 4
    obs = torch.randn(B, T, 3, 5)
    actions = torch.randint(0, 4, (B, T - 1, 3))
    q_seq = net.unroll(obs, actions)
    h = net.initial_state(B)
    last = torch.full((B, 3), -1)
    for t in range(T):
        q, h = net(obs[:, t], last, h, torch.full((B,), t == 0))
        torch.testing.assert_close(q, q_seq[:, t], rtol=1e-5, atol=1e-6)
        if t < T - 1:
            last = actions[:, t]


def test_inputs_carry_last_action_and_agent_id():
    net = QAgentNetwork(2, 2, 3, hidden=8, use_rnn=False)
    x = net._inputs(torch.zeros(1, 2, 2), torch.tensor([[-1, 2]]))
    assert x.tolist() == [[[0, 0, 0, 0, 0, 1, 0], [0, 0, 0, 0, 1, 0, 1]]]
