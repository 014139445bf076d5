"""Finite-horizon games (``MarkovGame(horizon=H)``): the advantage-based quantities of theory.md §0-§1.10 refuse
them with a ``ValueError`` naming ``game`` and saying why, instead of returning t = 0 quantities for which the
performance-difference identity fails; ``horizon = 1`` (one step: t = 0 is the whole problem) still works."""

from __future__ import annotations

import numpy as np
import pytest

from seqmarl.theory import evaluate as ev
from seqmarl.theory import games
from seqmarl.theory import multiagent as ma
from seqmarl.theory.markov_game import MarkovGame
from seqmarl.theory.policies import Factorized


def _finite(horizon: int, seed: int = 0) -> tuple[MarkovGame, Factorized, Factorized]:
    rng = np.random.default_rng(seed)
    base = games.random_game(rng, 2, [2, 2], 3, gamma=0.9)
    game = MarkovGame(base.reward, base.transition, 0.9, base.initial, horizon=horizon)
    pi = Factorized([rng.dirichlet(np.ones(2), size=3) for _ in range(2)])
    pibar = Factorized([rng.dirichlet(np.ones(2), size=3) for _ in range(2)])
    return game, pi, pibar


def _pdl_error_with_t0_quantities(game: MarkovGame, pi: Factorized, pibar: Factorized) -> float:
    """|J(pibar) - J(pi) - sum_s rho_pibar(s) E_pibar[Q_H - V_H]| with the t = 0 Q and V of the H-step problem."""
    adv = ev.q_value(game, pi) - ev.value(game, pi)[:, None, None]
    gain = ev.occupancy(game, pibar) @ (pibar.probs() * adv).sum(axis=(1, 2))
    return abs(ev.expected_return(game, pibar) - ev.expected_return(game, pi) - float(gain))


def test_why_t0_advantages_are_refused():
    """The identity the advantage exists for fails with t = 0 quantities at H = 3, holds at H = 1."""
    game, pi, pibar = _finite(3)
    assert _pdl_error_with_t0_quantities(game, pi, pibar) > 1e-3
    game1, pi1, pibar1 = _finite(1)
    assert _pdl_error_with_t0_quantities(game1, pi1, pibar1) <= 1e-12


CALLS = {
    "advantage": lambda g, pi, pibar: ev.advantage(g, pi),
    "advantage_subset": lambda g, pi, pibar: ma.advantage_subset(g, pi, (1,), given=(0,)),
    "expected_local_advantage": lambda g, pi, pibar: ma.expected_local_advantage(g, pi, (0, 1), list(pibar.tables)),
    "surrogate": lambda g, pi, pibar: ma.surrogate(g, pi, (0,), [pibar.tables[0]]),
    "estimator_m": lambda g, pi, pibar: ma.estimator_m(g, pi, (0,), [pibar.tables[0]]),
}


@pytest.mark.parametrize("name", sorted(CALLS))
@pytest.mark.parametrize("horizon", [2, 3, 10])
def test_advantage_quantities_refuse_finite_horizon(name, horizon):
    game, pi, pibar = _finite(horizon)
    with pytest.raises(ValueError, match=rf"{name}: game has a finite horizon \(horizon={horizon}\).*performance-difference"):
        CALLS[name](game, pi, pibar)


@pytest.mark.parametrize("name", sorted(CALLS))
def test_horizon_one_and_discounted_games_are_accepted(name):
    for horizon in (1, None):
        game, pi, pibar = _finite(1)
        game = MarkovGame(game.reward, game.transition, 0.9, game.initial, horizon=horizon)
        out = CALLS[name](game, pi, pibar)
        assert np.all(np.isfinite(out))


def test_values_q_and_occupancy_remain_the_documented_t0_quantities():
    """value, q_value, occupancy, expected_return keep working on finite-horizon games (J = rho^0 . V_H)."""
    game, pi, _ = _finite(3)
    assert np.isfinite(ev.expected_return(game, pi))
    assert ev.occupancy(game, pi).sum() == pytest.approx(1 + 0.9 + 0.81, abs=1e-12)
    assert ev.q_value(game, pi).shape == game.reward.shape
