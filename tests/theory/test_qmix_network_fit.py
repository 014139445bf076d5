"""``qmix_network_fit``: the best fit inside the class QMIX's mixing network represents (monotone + supermodular)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from seqmarl.theory import factorization as fz
from seqmarl.theory import games


def test_or_is_monotone_but_not_supermodular_closed_form():
    """OR = [[0, 1], [1, 1]] is monotone (residual 0) but its mixed difference is 0 - 1 - 1 + 1 = -1 < 0 in the only
    monotone orientation. Projection onto the half-space {T: v.T >= 0}, v = (1, -1, -1, 1): T = r + v/4, residual
    (v.r)^2 / |v|^2 = 1/4; the reversed orientations are not monotone for r and cost more."""
    q = np.array([[0.0, 1.0], [1.0, 1.0]])
    assert fz.qmix_best_fit(q).residual == pytest.approx(0.0, abs=1e-9)
    fit = fz.qmix_network_fit(q)
    assert fit.residual == pytest.approx(0.25, abs=1e-7)
    np.testing.assert_allclose(fit.fitted, [[0.25, 0.75], [0.75, 1.25]], atol=1e-6)
    assert fit.greedy == ((1, 1),)


def test_and_is_in_the_network_class():
    """AND = [[0, 0], [0, 1]] has mixed difference +1: it is what an ELU unit of a + b makes, residual 0."""
    assert fz.qmix_network_fit(np.array([[0.0, 0.0], [0.0, 1.0]])).residual == pytest.approx(0.0, abs=1e-7)


@pytest.mark.parametrize("seed", range(4))
def test_convex_ridge_sums_with_non_negative_directions_have_residual_zero(seed):
    """The lemma, checked on random members: f(q) = sum_k c_k softplus-like convex phi(a_k . q + d_k), a, c >= 0, on
    a random 3 x 3 x 2 utility grid (3 agents: every pair of axes) is fitted exactly."""
    rng = np.random.default_rng(seed)
    grids = [np.sort(rng.normal(size=m)) * 2 for m in (3, 3, 2)]
    pts = np.stack(np.meshgrid(*grids, indexing="ij"), -1)
    a, c, d = rng.uniform(0, 2, size=(5, 3)), rng.uniform(0, 2, size=5), rng.normal(size=5)
    z = pts @ a.T + d
    table = (np.where(z > 0, z, np.expm1(np.minimum(z, 0))) * c).sum(-1)  # ELU
    perm = [rng.permutation(m) for m in table.shape]  # actions need not be listed in utility order
    table = table[np.ix_(*perm)]
    scale = 1.0 + np.abs(table).max()
    assert fz.qmix_network_fit(table).residual / scale**2 < 1e-9


def test_a_negative_interaction_on_one_pair_of_three_agents_is_caught():
    """3 agents, additive in agent 1 and submodular (OR-like) between agents 0 and 2: monotone (residual 0) but
    not in the network class."""
    x = np.arange(2.0)
    table = np.maximum(x[:, None, None], x[None, None, :]) + x[None, :, None]
    assert fz.qmix_best_fit(table).residual == pytest.approx(0.0, abs=1e-9)
    assert fz.qmix_network_fit(table).residual > 0.1


@pytest.mark.parametrize("game", [games.climbing(), games.penalty(-100.0)])
def test_the_network_class_is_strictly_smaller_on_climbing_and_penalty(game):
    """On these games no QMIX mixer reaches the monotone optimum: the network class's best residual is > 1.3x it
    (uniform weights). Every candidate cone's network residual is >= its monotone residual (subset)."""
    mono, net = fz.qmix_best_fit(game), fz.qmix_network_fit(game, prune=False)
    assert net.residual > 1.3 * mono.residual
    mono_by_cone = dict(fz.qmix_best_fit(game, prune=False).candidates)
    for orders, residual in net.candidates:
        assert residual >= mono_by_cone[orders] - 1e-6 * (1 + residual)


def test_pruning_does_not_change_the_network_fit():
    game = games.climbing()
    a, b = fz.qmix_network_fit(game), fz.qmix_network_fit(game, prune=False)
    assert a.residual == pytest.approx(b.residual, rel=1e-9)
    assert a.orders == b.orders and a.greedy == b.greedy


def test_fitted_table_satisfies_the_constraints_in_its_orders():
    game = games.climbing()
    fit = fz.qmix_network_fit(game)
    t = fit.fitted[np.ix_(*[list(o) for o in fit.orders])]
    tol = 1e-6 * (1 + np.abs(t).max())
    assert (np.diff(t, axis=0) >= -tol).all() and (np.diff(t, axis=1) >= -tol).all()
    for i, j in itertools.product(range(2), range(2)):
        assert t[i + 1, j + 1] - t[i + 1, j] - t[i, j + 1] + t[i, j] >= -tol
