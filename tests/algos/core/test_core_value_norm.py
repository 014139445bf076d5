"""ValueNorm (EMA and exact modes) and PopArt, with hand-derived statistics."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from seqmarl.algos.core import PopArt, ValueNorm

D = torch.float64


def t(*xs):
    return torch.tensor(xs, dtype=D)


def test_ema_statistics_by_hand():
    # beta = 0.5. Batch 1 = [1, 3]: mean 2, mean square 5.
    #   m = 0.5*0 + 0.5*2 = 1 ; q = 0.5*5 = 2.5 ; d = 0.5  ->  mu = 2, E[x^2] = 5, var = 5 - 4 = 1
    vn = ValueNorm(mode="ema", beta=0.5)
    vn.update(t(1, 3))
    mean, var = vn.mean_var()
    assert float(mean) == 2.0 and float(var) == 1.0
    # Batch 2 = [5]: m = 0.5*1 + 0.5*5 = 3 ; q = 0.5*2.5 + 0.5*25 = 13.75 ; d = 0.5*0.5 + 0.5 = 0.75
    #   mu = 3/0.75 = 4 ; E[x^2] = 13.75/0.75 = 55/3 ; var = 55/3 - 16 = 7/3
    vn.update(t(5))
    mean, var = vn.mean_var()
    assert abs(float(mean) - 4.0) < 1e-12
    assert abs(float(var) - float(Fraction(7, 3))) < 1e-12


def test_ema_per_element_update_by_hand():
    # beta = 0.5, per element: batch [1, 3] has N = 2 -> w = 0.25: m = 0.75*2 = 1.5, q = 0.75*5 = 3.75, d = 0.75
    # batch [5]: w = 0.5: m = 0.75 + 2.5 = 3.25, q = 1.875 + 12.5 = 14.375, d = 0.375 + 0.5 = 0.875
    #   mu = 3.25/0.875 = 26/7 ; E[x^2] = 14.375/0.875 = 115/7 ; var = 115/7 - 676/49 = 129/49
    vn = ValueNorm(mode="ema", beta=0.5, per_element_update=True)
    vn.update(t(1, 3))
    assert abs(float(vn.mean_var()[0]) - 2.0) < 1e-12
    vn.update(t(5))
    mean, var = vn.mean_var()
    assert abs(float(mean) - 26 / 7) < 1e-12
    assert abs(float(var) - 129 / 49) < 1e-12


def test_min_var_floor_and_identity_before_update():
    vn = ValueNorm(mode="ema")
    x = t(1.5, -2.0)
    assert torch.equal(vn.normalize(x), x) and torch.equal(vn.denormalize(x), x)  # identity before data
    assert not vn.has_data
    vn.update(t(3, 3, 3))                      # constant data: var 0 -> floored at min_var = 1e-2, std = 0.1
    mean, var = vn.mean_var()
    assert vn.has_data
    assert abs(float(mean) - 3) < 1e-9 and abs(float(var) - 1e-2) < 1e-12
    assert torch.allclose(vn.normalize(t(3.1)), t(1.0), atol=1e-9)


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(1, 20), min_size=1, max_size=6), st.integers(0, 2**31 - 1))
def test_exact_mode_equals_numpy_mean_var(sizes, seed):
    rng = np.random.default_rng(seed)
    batches = [rng.normal(3.0, 5.0, size=s) for s in sizes]
    vn = ValueNorm(mode="exact", min_var=1e-12)
    for b in batches:
        vn.update(torch.tensor(b))
    data = np.concatenate(batches)
    mean, var = vn.mean_var()
    assert abs(float(mean) - data.mean()) < 1e-9
    assert abs(float(var) - max(data.var(), 1e-12)) < 1e-9
    assert int(vn.count) == data.size


def test_exact_mode_small_hand_example():
    # [1, 3] then [5]: mean 3, population var ((1-3)^2 + 0 + (5-3)^2)/3 = 8/3
    vn = ValueNorm(mode="exact")
    vn.update(t(1, 3))
    vn.update(t(5))
    mean, var = vn.mean_var()
    assert abs(float(mean) - 3) < 1e-12 and abs(float(var) - 8 / 3) < 1e-12
    assert torch.allclose(vn.normalize(t(3 + (8 / 3) ** 0.5)), t(1.0), atol=1e-12)


def test_vector_statistics_per_column():
    # shape (2,): statistics per trailing column over all leading axes.
    vn = ValueNorm(2, mode="exact")
    x = torch.tensor([[[1.0, 10.0], [3.0, 10.0]], [[5.0, 40.0], [7.0, 40.0]]], dtype=D)   # [2, 2, 2]
    vn.update(x)
    mean, var = vn.mean_var()
    # col 0: [1,3,5,7] mean 4 var 5 ; col 1: [10,10,40,40] mean 25 var 225
    assert torch.allclose(mean, t(4, 25)) and torch.allclose(var, t(5, 225))


@pytest.mark.parametrize("mode", ["ema", "exact"])
def test_round_trip_and_state_dict(mode):
    g = torch.Generator().manual_seed(0)
    vn = ValueNorm(mode=mode, beta=0.9)
    for _ in range(3):
        vn.update(torch.randn(50, generator=g, dtype=D) * 4 + 1)
    x = torch.randn(7, generator=g, dtype=D)
    assert torch.allclose(vn.denormalize(vn.normalize(x)), x, atol=1e-12)
    assert torch.allclose(vn.normalize(vn.denormalize(x)), x, atol=1e-12)
    other = ValueNorm(mode=mode, beta=0.9)
    other.load_state_dict(vn.state_dict())
    assert torch.equal(other.normalize(x), vn.normalize(x))
    xf = x.float()
    assert vn.normalize(xf).dtype == torch.float32


def test_normalize_is_differentiable():
    vn = ValueNorm(mode="exact")
    vn.update(t(0, 4))                                     # std 2
    x = torch.tensor([1.0], dtype=D, requires_grad=True)
    vn.normalize(x).sum().backward()
    assert float(x.grad) == 0.5


@pytest.mark.parametrize("mode", ["ema", "exact"])
def test_popart_preserves_outputs_exactly(mode):
    g = torch.Generator().manual_seed(1)
    pa = PopArt(5, 3, mode=mode, beta=0.7, dtype=D, generator=g)
    with torch.no_grad():
        pa.linear.bias.copy_(torch.randn(3, generator=g, dtype=D))
    h = torch.randn(11, 5, generator=g, dtype=D)
    for scale in (1.0, 100.0, 0.01):
        with torch.no_grad():
            before = pa.value(h)
        stats_before = pa.stats.mean_std()
        pa.update(torch.randn(40, 3, generator=g, dtype=D) * scale + 7.0)
        with torch.no_grad():
            after = pa.value(h)
        assert not torch.allclose(stats_before[1], pa.stats.mean_std()[1])      # statistics really changed
        assert torch.allclose(after, before, atol=1e-9 * max(1.0, float(before.abs().max())), rtol=1e-12)


def test_validation():
    with pytest.raises(ValueError, match="mode"):
        ValueNorm(mode="popart")
    with pytest.raises(ValueError, match="beta"):
        ValueNorm(beta=1.0)
    with pytest.raises(ValueError, match="min_var"):
        ValueNorm(min_var=0.0)
    with pytest.raises(ValueError, match="epsilon"):
        ValueNorm(epsilon=-1.0)
    with pytest.raises(TypeError, match="per_element_update"):
        ValueNorm(per_element_update=1)
    with pytest.raises(ValueError, match="shape"):
        ValueNorm(shape=-2)
    vn = ValueNorm(3)
    with pytest.raises(ValueError, match="x"):
        vn.update(torch.zeros(4, 2, dtype=D))
    with pytest.raises(TypeError, match="x"):
        vn.update(torch.zeros(4, 3, dtype=torch.long))
    with pytest.raises(ValueError, match="finite"):
        ValueNorm().update(t(1.0, float("nan")))
    with pytest.raises(ValueError, match="at least one"):
        ValueNorm().update(torch.zeros(0, dtype=D))
    with pytest.raises(ValueError, match="out_dim"):
        PopArt(4, 0)
