"""Per-agent conditional entropies of a joint table (issue 9 §5): closed forms and contracts."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from seqmarl.theory import games
from seqmarl.theory.conditional_entropy import (conditional_entropies, heatmap_matrix, is_permutation_game,
                                                permutation_ceiling, prefix_entropies)


def _uniform_on_permutations(n: int) -> np.ndarray:
    p = np.zeros((n,) * n)
    for perm in itertools.permutations(range(n)):
        p[perm] = 1.0
    return p / p.sum()


def _entropy(q: np.ndarray) -> float:
    q = q[q > 0]
    return float(-(q * np.log(q)).sum())


@pytest.mark.parametrize("n", [2, 3, 4, 5])
def test_uniform_over_permutations_meets_the_ceiling_exactly(n: int) -> None:
    p = _uniform_on_permutations(n)
    expected = np.log(np.arange(n, 0, -1))  # log(n - k + 1), k = 1..n
    np.testing.assert_allclose(permutation_ceiling(n), expected, rtol=0, atol=0)
    for order in [None, tuple(reversed(range(n))), tuple(np.random.default_rng(n).permutation(n))]:
        np.testing.assert_allclose(conditional_entropies(p, order), expected, rtol=0, atol=1e-12)
    assert conditional_entropies(p).sum() == pytest.approx(math.lgamma(n + 1), abs=1e-12)  # log n!


def test_product_policy_gives_the_marginal_entropies_in_every_order() -> None:
    rng = np.random.default_rng(0)
    marginals = [rng.dirichlet(np.ones(a)) for a in (2, 3, 4)]
    p = np.einsum("i,j,k->ijk", *marginals)
    for order in itertools.permutations(range(3)):
        np.testing.assert_allclose(conditional_entropies(p, order), [_entropy(marginals[i]) for i in order],
                                   rtol=0, atol=1e-12)


def test_conditioning_depends_on_the_order() -> None:
    """a^1 uniform on 4 actions, a^2 = a^1 mod 2: H(a^1), H(a^2|a^1) = log 4, 0; in the order (2, 1): log 2, log 2."""
    p = np.zeros((4, 2))
    for a in range(4):
        p[a, a % 2] = 0.25
    np.testing.assert_allclose(conditional_entropies(p), [math.log(4), 0.0], atol=1e-12)
    np.testing.assert_allclose(conditional_entropies(p, [1, 0]), [math.log(2), math.log(2)], atol=1e-12)


def test_chain_rule_and_prefixes_on_a_random_joint() -> None:
    p = np.random.default_rng(1).dirichlet(np.ones(3 * 2 * 4)).reshape(3, 2, 4)
    h = conditional_entropies(p, [2, 0, 1])
    assert h.sum() == pytest.approx(_entropy(p.ravel()), abs=1e-12)
    pre = prefix_entropies(p, [2, 0, 1])
    assert pre[0] == 0.0 and pre[1] == pytest.approx(_entropy(p.sum(axis=(0, 1))), abs=1e-12)
    assert pre[2] == pytest.approx(_entropy(p.sum(axis=1).ravel()), abs=1e-12)
    assert np.all(h >= 0)


def test_deterministic_policy_has_zero_entropy() -> None:
    p = np.zeros((4,) * 4)
    p[1, 0, 3, 2] = 1.0
    np.testing.assert_array_equal(conditional_entropies(p), np.zeros(4))


def test_heatmap_rows_are_the_first_half_of_the_agents() -> None:
    p = np.random.default_rng(2).dirichlet(np.ones(4 ** 4)).reshape((4,) * 4)
    m = heatmap_matrix(p)
    assert m.shape == (16, 16)
    for a in itertools.product(range(4), repeat=4):
        assert m[a[0] * 4 + a[1], a[2] * 4 + a[3]] == pytest.approx(p[a], rel=1e-12)
    assert heatmap_matrix(np.full((3, 3, 3), 1 / 27)).shape == (9, 3)  # ceil(3/2) = 2 agents on the rows
    assert heatmap_matrix(np.full((3, 3, 3), 1 / 27), n_rows=1).shape == (3, 9)


def test_is_permutation_game() -> None:
    for n in (2, 3, 4):
        assert is_permutation_game(games.permutation(n))
    assert is_permutation_game(games.xor(2))  # the XOR of Fu et al. is the permutation game with n = 2
    assert not is_permutation_game(games.xor(4))
    assert not is_permutation_game(games.climbing())
    assert not is_permutation_game(games.penalty())


@pytest.mark.parametrize("call, message", [
    (lambda: conditional_entropies(np.full((2, 2), 0.3)), "must sum to 1"),
    (lambda: conditional_entropies(np.array([[0.5, -0.1], [0.3, 0.3]])), "non-negative"),
    (lambda: conditional_entropies(np.full((2, 2), 0.25), [0, 0]), "order must be a permutation"),
    (lambda: conditional_entropies(np.full((2, 2), 0.25), "ab"), "order must be a sequence"),
    (lambda: heatmap_matrix(np.full((2, 2), 0.25), n_rows=2), "n_rows must be an integer in [1, 1]"),
    (lambda: heatmap_matrix(np.full(4, 0.25)), "at least 2 agents"),
    (lambda: permutation_ceiling(0), "n must be a positive integer"),
    (lambda: is_permutation_game("permutation"), "game must be a MarkovGame"),
])
def test_bad_arguments_are_named(call, message: str) -> None:
    with pytest.raises((ValueError, TypeError), match=None) as info:
        call()
    assert message in str(info.value)
