"""``seqmarl.testing.assert_monotone_improvement``: passes for a monotone exact rule, fails with a shrunk, readable
counterexample for non-monotone rules, validates its inputs."""

from __future__ import annotations

import re

import numpy as np
import pytest
from hypothesis import strategies as st

from seqmarl import _strategies as sst
from seqmarl.testing import assert_monotone_improvement
from seqmarl.theory import iteration
from seqmarl.theory.markov_game import matrix_game
from seqmarl.theory.policies import Factorized, Joint

SMALL = sst.markov_games(n_agents=st.integers(1, 3), n_actions=st.integers(2, 3), n_states=st.integers(1, 3))


def _random_deterministic(game, pi, rng):
    """Not monotone: jumps every agent to a random deterministic policy."""
    actions = np.stack([rng.integers(0, a, size=game.n_states) for a in game.n_actions], axis=1)
    return Factorized.deterministic(actions, game.n_actions)


def test_passes_for_algorithm1():
    assert_monotone_improvement(iteration.hatrpo_exact, games=SMALL, max_examples=10, n_iters=2, seed=0)


def test_passes_with_default_games_and_a_list_of_games():
    assert_monotone_improvement(iteration.haml_kl_drift, max_examples=5, n_iters=2, seed=1)
    game = matrix_game(np.array([[1.0, -1.0], [-1.0, 1.0]]), name="a1a2")
    assert_monotone_improvement(iteration.hatrpo_kl_ball, games=[game], max_examples=5, seed=2)


def test_fails_for_a_random_deterministic_jump_and_reports_the_shrunk_game():
    with pytest.raises(AssertionError) as info:
        assert_monotone_improvement(_random_deterministic, max_examples=50, seed=0)
    message = str(info.value)
    for piece in ("J decreased", "J(pi_0) =", "n_agents=", "n_states=", "gamma=", "reward[S, A1..An]",
                  "transition[S, A1..An, S']", "initial =", "table[0]", "(after)"):
        assert piece in message
    # hypothesis shrinks towards the smallest game: one state, the fewest agents the strategy allows
    assert "n_states=1" in message
    assert re.search(r"n_agents=2\b", message)


def test_fails_for_the_simultaneous_trust_region_step_on_the_a1a2_game():
    """Simultaneous (MAPPO-style) KL-ball steps can lower J (theory.md §1.5); sequential ones cannot."""
    game = matrix_game(np.array([[1.0, -1.0], [-1.0, 1.0]]), name="a1a2")

    def simultaneous(g, pi, rng):
        return iteration.hatrpo_kl_ball(g, pi, rng, delta=0.5, simultaneous=True)

    with pytest.raises(AssertionError) as info:
        assert_monotone_improvement(simultaneous, games=[game], max_examples=50, seed=0)
    assert "'a1a2'" in str(info.value) and "J decreased" in str(info.value)

    def sequential(g, pi, rng):
        return iteration.hatrpo_kl_ball(g, pi, rng, delta=0.5)

    assert_monotone_improvement(sequential, games=[game], max_examples=20, seed=0)


def test_the_tolerance_is_honoured():
    def slightly_worse(game, pi, rng):
        # lowers J by at most 1e-9 |r| (a tiny mixing towards uniform)
        eps = 1e-10
        return Factorized([(1 - eps) * t + eps / t.shape[1] for t in pi.tables])

    assert_monotone_improvement(slightly_worse, games=SMALL, max_examples=10, tol=1e-7, seed=3)
    with pytest.raises(AssertionError):
        assert_monotone_improvement(slightly_worse, games=SMALL, max_examples=30, tol=0.0, seed=3)


@pytest.mark.parametrize(
    "kwargs, exc",
    [
        ({"update": 3}, TypeError),
        ({"max_examples": 0}, ValueError),
        ({"max_examples": 2.5}, TypeError),
        ({"tol": -1.0}, ValueError),
        ({"tol": "x"}, TypeError),
        ({"n_iters": 0}, ValueError),
        ({"seed": -1}, ValueError),
        ({"games": 5}, TypeError),
        ({"games": []}, TypeError),
        ({"games": ["climbing"]}, TypeError),
    ],
)
def test_validation(kwargs, exc):
    args = {"update": iteration.hatrpo_exact, "max_examples": 2}
    args.update(kwargs)
    with pytest.raises(exc):
        assert_monotone_improvement(**args)


def test_update_must_return_a_policy():
    with pytest.raises(TypeError, match="Policy"):
        assert_monotone_improvement(lambda g, pi, rng: pi.tables, games=SMALL, max_examples=3, seed=0)


def test_non_product_policies_returned_by_the_update_are_accepted():
    def to_joint(game, pi, rng):
        return Joint(pi.probs()) if isinstance(pi, Factorized) else pi

    assert_monotone_improvement(to_joint, games=SMALL, max_examples=5, seed=0)
