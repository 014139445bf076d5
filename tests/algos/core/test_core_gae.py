"""GAE with terminated/truncated, hand-derived numbers (every expected value is derived in the comments)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from seqmarl.algos.core import ValueNorm, compute_gae, compute_gae_with_value_norm

D = torch.float64


def col(*xs):
    """A [T, 1] float64 column."""
    return torch.tensor(xs, dtype=D).reshape(-1, 1)


def flags(*xs):
    return torch.tensor(xs, dtype=torch.bool).reshape(-1, 1)


# ---------------------------------------------------------------- case A: no episode end, T = 3
# r = [1, 2, 3], V = [0.5, 1, 1.5], V' = [1, 1.5, 2] (V'(s_3) = 2 is the bootstrap after the rollout),
# gamma = lam = 0.5, so gamma*lam = 0.25.
#   d0 = 1 + 0.5*1.0 - 0.5 = 1.0 ; d1 = 2 + 0.5*1.5 - 1.0 = 1.75 ; d2 = 3 + 0.5*2.0 - 1.5 = 2.5
#   A2 = 2.5 ; A1 = 1.75 + 0.25*2.5 = 2.375 ; A0 = 1.0 + 0.25*2.375 = 1.59375
#   returns = A + V = [2.09375, 3.375, 4.0]
R_A, V_A, NV_A = col(1, 2, 3), col(0.5, 1.0, 1.5), col(1.0, 1.5, 2.0)
NO = flags(0, 0, 0)


def test_no_episode_end():
    adv, ret = compute_gae(R_A, V_A, NV_A, NO, NO, 0.5, 0.5)
    assert torch.equal(adv, col(1.59375, 2.375, 2.5))
    assert torch.equal(ret, col(2.09375, 3.375, 4.0))


def test_lambda_zero_is_one_step_td():
    # lam = 0: A_t = d_t = [1.0, 1.75, 2.5]; returns = r + gamma V' = [1.5, 2.75, 4.0]
    adv, ret = compute_gae(R_A, V_A, NV_A, NO, NO, 0.5, 0.0)
    assert torch.equal(adv, col(1.0, 1.75, 2.5))
    assert torch.equal(ret, col(1.5, 2.75, 4.0))


def test_lambda_one_is_monte_carlo_to_bootstrap():
    # lam = 1: returns_t = sum_k gamma^k r_{t+k} + gamma^{T-t} V'_{T-1}
    #   ret0 = 1 + 0.5*2 + 0.25*3 + 0.125*2 = 3.0 ; ret1 = 2 + 0.5*3 + 0.25*2 = 4.0 ; ret2 = 3 + 0.5*2 = 4.0
    #   A = ret - V = [2.5, 3.0, 2.5]
    adv, ret = compute_gae(R_A, V_A, NV_A, NO, NO, 0.5, 1.0)
    assert torch.equal(ret, col(3.0, 4.0, 4.0))
    assert torch.equal(adv, col(2.5, 3.0, 2.5))


def test_last_step_bootstraps_from_next_value():
    # raising V'(s_3) by 1 raises A2 by gamma = 0.5, A1 by gamma*lam*gamma = 0.125, A0 by 0.03125
    nv = NV_A.clone()
    nv[-1] += 1.0
    adv, _ = compute_gae(R_A, V_A, nv, NO, NO, 0.5, 0.5)
    assert torch.equal(adv, col(1.59375 + 0.03125, 2.375 + 0.125, 2.5 + 0.5))


# ---------------------------------------------------------------- cases B/C: an episode ends at t = 1, T = 4
# r = [1, 2, 3, 4], V = [1, 2, 3, 4], gamma = lam = 0.5. Row 2 starts a new episode whose first value is V[2] = 3.
R_B, V_B = col(1, 2, 3, 4), col(1, 2, 3, 4)
END = flags(0, 1, 0, 0)


def test_termination_mid_rollout():
    # V' = [2, 3, 4, 8]; V'[1] = 3 is the reset state's value and must be IGNORED (terminated -> bootstrap 0).
    #   d0 = 1 + 0.5*2 - 1 = 1 ; d1 = 2 + 0 - 2 = 0 ; d2 = 3 + 0.5*4 - 3 = 2 ; d3 = 4 + 0.5*8 - 4 = 4
    #   A3 = 4 ; A2 = 2 + 0.25*4 = 3 ; A1 = 0 (recursion cut) ; A0 = 1 + 0.25*0 = 1 ; returns = [2, 2, 6, 8]
    nv = col(2, 3, 4, 8)
    adv, ret = compute_gae(R_B, V_B, nv, END, flags(0, 0, 0, 0), 0.5, 0.5)
    assert torch.equal(adv, col(1, 0, 3, 4))
    assert torch.equal(ret, col(2, 2, 6, 8))
    # the ignored entry really is ignored
    nv2 = nv.clone()
    nv2[1] = 1e6
    assert torch.equal(compute_gae(R_B, V_B, nv2, END, flags(0, 0, 0, 0), 0.5, 0.5)[0], adv)


def test_truncation_mid_rollout_bootstraps_from_final_value():
    # V' = [2, 6, 4, 8]; V'[1] = 6 = V(final pre-reset obs) of the truncated episode.
    #   d1 = 2 + 0.5*6 - 2 = 3 ; A1 = 3 (cut) ; A0 = 1 + 0.25*3 = 1.75 ; A2 = 3 ; A3 = 4
    #   returns = [2.75, 5, 6, 8]
    nv = col(2, 6, 4, 8)
    adv, ret = compute_gae(R_B, V_B, nv, flags(0, 0, 0, 0), END, 0.5, 0.5)
    assert torch.equal(adv, col(1.75, 3, 3, 4))
    assert torch.equal(ret, col(2.75, 5, 6, 8))


def test_classic_bug_truncation_as_termination_differs():
    # Treating the truncation as a termination would give d1 = 0, A1 = 0, A0 = 1 -- wrong.
    nv = col(2, 6, 4, 8)
    right, _ = compute_gae(R_B, V_B, nv, flags(0, 0, 0, 0), END, 0.5, 0.5)
    buggy, _ = compute_gae(R_B, V_B, nv, END, flags(0, 0, 0, 0), 0.5, 0.5)
    assert torch.equal(buggy, col(1, 0, 3, 4))
    assert right[0, 0] == 1.75 and right[1, 0] == 3.0
    assert not torch.equal(right, buggy)


def test_truncation_uses_next_values_not_next_row_value():
    # A second classic bug bootstraps a truncated step from values[t+1] (the RESET state's value, 3):
    # that would give d1 = 2 + 0.5*3 - 2 = 1.5 instead of 3.
    adv, _ = compute_gae(R_B, V_B, col(2, 6, 4, 8), flags(0, 0, 0, 0), END, 0.5, 0.5)
    assert adv[1, 0] == 3.0 and adv[1, 0] != 1.5


def test_terminated_and_truncated_together_counts_as_termination():
    adv, _ = compute_gae(R_B, V_B, col(2, 6, 4, 8), END, END, 0.5, 0.5)
    assert torch.equal(adv, col(1, 0, 3, 4))


def test_batch_and_agent_axes_broadcast():
    # two envs (case A, case C) and a per-agent value axis of size 2 (agent 1's values shifted by +1).
    T = 4
    r = torch.stack([torch.tensor([1., 2, 3, 0], dtype=D), R_B[:, 0]], 1)
    v = torch.stack([torch.tensor([0.5, 1, 1.5, 2], dtype=D), V_B[:, 0]], 1)
    nv = torch.stack([torch.tensor([1, 1.5, 2, 2], dtype=D), torch.tensor([2., 6, 4, 8], dtype=D)], 1)
    term = torch.zeros(T, 2, dtype=torch.bool)
    trunc = torch.zeros(T, 2, dtype=torch.bool)
    trunc[1, 1] = True
    adv, _ = compute_gae(r, v, nv, term, trunc, 0.5, 0.5)
    assert torch.equal(adv[:, 1], torch.tensor([1.75, 3, 3, 4], dtype=D))
    v3 = torch.stack([v, v + 1], -1)
    nv3 = torch.stack([nv, nv + 1], -1)
    adv3, ret3 = compute_gae(r, v3, nv3, term, trunc, 0.5, 0.5)
    assert adv3.shape == (T, 2, 2)
    assert torch.equal(adv3[..., 0], adv)
    a1, r1 = compute_gae(r, v + 1, nv + 1, term, trunc, 0.5, 0.5)
    assert torch.equal(adv3[..., 1], a1) and torch.equal(ret3[..., 1], r1)


# ---------------------------------------------------------------- value normalisation must be undone before GAE
def test_value_norm_helper_denormalises_before_gae():
    # exact ValueNorm on data [0, 4]: mean 2, var 4, std 2 -> normalised v = (V - 2) / 2.
    vn = ValueNorm(mode="exact")
    vn.update(torch.tensor([0.0, 4.0], dtype=D))
    v_norm, nv_norm = (V_A - 2) / 2, (NV_A - 2) / 2   # [-0.75, -0.5, -0.25], [-0.5, -0.25, 0]
    adv, ret = compute_gae_with_value_norm(R_A, v_norm, nv_norm, NO, NO, 0.5, 0.5, vn)
    assert torch.allclose(adv, col(1.59375, 2.375, 2.5), atol=1e-12, rtol=0)   # case A's numbers
    assert torch.allclose(ret, col(2.09375, 3.375, 4.0), atol=1e-12, rtol=0)
    # the bug: GAE on normalised values. d2 = 3 + 0.5*0 - (-0.25) = 3.25 != 2.5
    bug, _ = compute_gae(R_A, v_norm, nv_norm, NO, NO, 0.5, 0.5)
    assert bug[2, 0] == 3.25


# ---------------------------------------------------------------- property: GAE = truncated sum of (gamma*lam)^k deltas
@settings(max_examples=40, deadline=None)
@given(st.integers(1, 7), st.integers(1, 3), st.floats(0, 1), st.floats(0, 1), st.integers(0, 2**31 - 1))
def test_matches_explicit_sum_within_episodes(T, B, gamma, lam, seed):
    rng = np.random.default_rng(seed)
    r, v, nv = (torch.tensor(rng.normal(size=(T, B))) for _ in range(3))
    term = torch.tensor(rng.random((T, B)) < 0.25)
    trunc = torch.tensor(rng.random((T, B)) < 0.25)
    adv, ret = compute_gae(r, v, nv, term, trunc, gamma, lam)
    done = term | trunc
    for b in range(B):
        for t in range(T):
            # A_t = sum_{k=t}^{K} (gamma lam)^{k-t} delta_k, K = first done at or after t (or T-1)
            total, w = 0.0, 1.0
            for k in range(t, T):
                boot = 0.0 if term[k, b] else gamma * float(nv[k, b])
                total += w * (float(r[k, b]) + boot - float(v[k, b]))
                if done[k, b]:
                    break
                w *= gamma * lam
            assert abs(float(adv[t, b]) - total) < 1e-9
    assert torch.allclose(ret, adv + v, atol=1e-12)


# ---------------------------------------------------------------- validation
def test_validation():
    with pytest.raises(TypeError, match="values"):
        compute_gae(R_A, [0.5, 1, 1.5], NV_A, NO, NO, 0.5, 0.5)
    with pytest.raises(ValueError, match="next_values"):
        compute_gae(R_A, V_A, NV_A[:2], NO, NO, 0.5, 0.5)
    with pytest.raises(ValueError, match="rewards"):
        compute_gae(R_A[:2], V_A, NV_A, NO, NO, 0.5, 0.5)
    with pytest.raises(ValueError, match="terminated"):
        compute_gae(R_A, V_A, NV_A, flags(0, 0), NO, 0.5, 0.5)
    with pytest.raises(ValueError, match="truncated"):
        compute_gae(R_A, V_A, NV_A, NO, col(0, 2, 0), 0.5, 0.5)
    with pytest.raises(ValueError, match="gamma"):
        compute_gae(R_A, V_A, NV_A, NO, NO, 1.5, 0.5)
    with pytest.raises(ValueError, match="lam"):
        compute_gae(R_A, V_A, NV_A, NO, NO, 0.5, -0.1)
    with pytest.raises(TypeError, match="values"):
        compute_gae(R_A, torch.ones(3, 1, dtype=torch.long), NV_A, NO, NO, 0.5, 0.5)
    with pytest.raises(ValueError, match="values"):
        compute_gae(R_A[:, 0], V_A[:, 0], NV_A[:, 0], NO[:, 0], NO[:, 0], 0.5, 0.5)
    with pytest.raises(TypeError, match="value_norm"):
        compute_gae_with_value_norm(R_A, V_A, NV_A, NO, NO, 0.5, 0.5, object())
