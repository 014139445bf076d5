"""Loss pieces with hand-computed numbers."""

from __future__ import annotations

import math

import pytest
import torch

from seqmarl.algos.core import aggregate_ratio, huber_loss, masked_mean, mse_loss, ppo_clip_objective, value_loss

D = torch.float64


def t(*xs):
    return torch.tensor(xs, dtype=D)


def test_huber_by_hand():
    # delta = 1: |e| <= 1 -> e^2/2 ; else |e| - 1/2
    #   e = -3 -> 2.5 ; -1 -> 0.5 ; -0.5 -> 0.125 ; 0 -> 0 ; 0.5 -> 0.125 ; 2 -> 1.5
    assert torch.equal(huber_loss(t(-3, -1, -0.5, 0, 0.5, 2), 1.0), t(2.5, 0.5, 0.125, 0, 0.125, 1.5))
    # default delta = 10: e = 12 -> 10*(12 - 5) = 70 ; e = 10 -> 50 (both branches agree) ; e = 3 -> 4.5
    assert torch.equal(huber_loss(t(12, 10, -3)), t(70, 50, 4.5))
    assert torch.equal(mse_loss(t(2, -3)), t(2, 4.5))


# values V, old values V_old, returns R, clip 0.2
#   unclipped errors R - V = [2, -1, -1]           -> e^2/2 = [2, 0.5, 0.5]
#   clipped V = V_old + clamp(V - V_old, ±0.2) = [0.2, 2.3, 0.7] ; errors [2.8, -1.3, -0.7] -> [3.92, 0.845, 0.245]
#   elementwise max = [3.92, 0.845, 0.5] ; mean = 5.265 / 3 = 1.755
V, VOLD, RET = t(1, 2, 1), t(0, 2.5, 0.5), t(3, 1, 0)


def test_value_loss_clipped_mse():
    assert abs(float(value_loss(V, VOLD, RET, 0.2)) - 1.755) < 1e-12


def test_value_loss_unclipped_and_huber_and_mask():
    assert abs(float(value_loss(V, VOLD, RET, None, clipped=False)) - 1.0) < 1e-12     # mean [2, .5, .5]
    # Huber delta 1: unclipped |e| = [2, 1, 1] -> [1.5, 0.5, 0.5] ; clipped [2.8, 1.3, 0.7] -> [2.3, 0.8, 0.245]
    #   max = [2.3, 0.8, 0.5] ; mean = 1.2
    assert abs(float(value_loss(V, VOLD, RET, 0.2, huber_delta=1.0)) - 1.2) < 1e-12
    # mask out the last entry: (3.92 + 0.845) / 2 = 2.3825
    mask = torch.tensor([True, True, False])
    assert abs(float(value_loss(V, VOLD, RET, 0.2, mask=mask)) - 2.3825) < 1e-12


def test_value_loss_gradient_respects_clip():
    # entry 0: the clipped branch wins (3.92 > 2) and V - V_old = 1 > 0.2 -> no gradient to V[0];
    # entry 2: the unclipped branch wins -> d/dV (R - V)^2/2 / 3 = -(R - V)/3 = 1/3
    v = V.clone().requires_grad_(True)
    value_loss(v, VOLD, RET, 0.2).backward()
    assert float(v.grad[0]) == 0.0
    assert abs(float(v.grad[2]) - 1 / 3) < 1e-15


# ratio r, advantage A, clip 0.2
#   r=0.5 A=1  -> min(0.5, 0.8)   = 0.5   (unclipped)
#   r=1.5 A=1  -> min(1.5, 1.2)   = 1.2   (clipped)
#   r=1.1 A=-2 -> min(-2.2, -2.2) = -2.2
#   r=0.7 A=-1 -> min(-0.7, -0.8) = -0.8  (clipped)
#   r=1.5 A=-1 -> min(-1.5, -1.2) = -1.5  (unclipped)
#   mean = -2.8 / 5 = -0.56
R_, A_ = t(0.5, 1.5, 1.1, 0.7, 1.5), t(1, 1, -2, -1, -1)


def test_ppo_clip_objective_by_hand():
    assert abs(float(ppo_clip_objective(R_, A_, 0.2)) - -0.56) < 1e-12
    assert torch.allclose(ppo_clip_objective(R_, A_, 0.2, reduction="none"), t(0.5, 1.2, -2.2, -0.8, -1.5),
                          atol=1e-15)
    # HAPPO factor weights [2, 1, 1, 1, 0.5]: [1.0, 1.2, -2.2, -0.8, -0.75] -> mean -1.55/5 = -0.31
    assert abs(float(ppo_clip_objective(R_, A_, 0.2, weight=t(2, 1, 1, 1, 0.5))) - -0.31) < 1e-12
    # weight outside the min == min of weighted terms for positive weights (theory.md §1.11)
    w = t(2, 1, 1, 1, 0.5)
    inner = torch.minimum(R_ * w * A_, R_.clamp(0.8, 1.2) * w * A_).mean()
    assert abs(float(inner) - -0.31) < 1e-12


def test_ppo_clip_gradient_zero_where_clipped():
    # d/dr of the mean: A/5 where the unclipped term is active, 0 where clipped: [1, 0, -2, 0, -1] / 5
    r = R_.clone().requires_grad_(True)
    ppo_clip_objective(r, A_, 0.2).backward()
    assert torch.allclose(r.grad, t(1, 0, -2, 0, -1) / 5, atol=1e-15)


def test_aggregate_ratio():
    lr = torch.log(t(2, 0.5, 4))
    assert abs(float(aggregate_ratio(lr, "prod")) - 4.0) < 1e-12            # 2 * 0.5 * 4
    assert abs(float(aggregate_ratio(lr, "mean")) - 6.5 / 3) < 1e-12        # (2 + 0.5 + 4) / 3
    m = torch.tensor([True, True, False])
    assert abs(float(aggregate_ratio(lr, "prod", m)) - 1.0) < 1e-12         # 2 * 0.5
    assert abs(float(aggregate_ratio(lr, "mean", m)) - 1.25) < 1e-12        # (2 + 0.5) / 2


def test_masked_mean():
    assert float(masked_mean(t(1, 2, 3, 10), torch.tensor([1, 1, 1, 0]))) == 2.0


def test_validation():
    with pytest.raises(ValueError, match="delta"):
        huber_loss(t(1.0), 0.0)
    with pytest.raises(TypeError, match="err"):
        huber_loss([1.0])
    with pytest.raises(ValueError, match="clip_eps"):
        value_loss(V, VOLD, RET, None)
    with pytest.raises(ValueError, match="returns"):
        value_loss(V, VOLD, RET[:2], 0.2)
    with pytest.raises(ValueError, match="old_values"):
        value_loss(V, VOLD[:2], RET, 0.2)
    with pytest.raises(ValueError, match="clip"):
        ppo_clip_objective(R_, A_, -0.1)
    with pytest.raises(ValueError, match="reduction"):
        ppo_clip_objective(R_, A_, 0.2, reduction="sum")
    with pytest.raises(ValueError, match="how"):
        aggregate_ratio(R_, "max")
    with pytest.raises(ValueError, match="dim_mask"):
        aggregate_ratio(R_, "prod", torch.zeros(5, dtype=torch.bool))
    with pytest.raises(ValueError, match="mask"):
        masked_mean(t(1, 2), torch.tensor([False, False]))
    with pytest.raises(ValueError, match="mask"):
        masked_mean(t(1, 2), torch.tensor([True]))
    assert math.isfinite(float(value_loss(V, VOLD, RET, 0.2)))
