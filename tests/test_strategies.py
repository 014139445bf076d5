"""The public hypothesis strategies (seqmarl.testing.strategies) draw valid objects of the requested sizes/kinds."""

from __future__ import annotations

import textwrap

import numpy as np
import pytest
from hypothesis import find, given, settings
from hypothesis import strategies as st

from seqmarl import testing
from seqmarl.testing import strategies as sst
from seqmarl.theory import games
from seqmarl.theory.markov_game import MarkovGame
from seqmarl.theory.policies import AutoRegressive, Factorized, Joint, Policy, Shared

FAST = settings(max_examples=30, deadline=None, database=None)
CLASSES = {"factorized": Factorized, "shared": Shared, "autoregressive": AutoRegressive, "joint": Joint}


def _assert_valid_policy(pi: Policy, game: MarkovGame, min_prob: float = 0.0) -> None:
    probs = pi.probs()
    assert probs.shape == (game.n_states, *game.n_actions)
    assert np.all(probs >= 0)
    np.testing.assert_allclose(probs.reshape(game.n_states, -1).sum(axis=1), 1.0, rtol=0, atol=1e-12)
    if min_prob > 0:
        for marginal in pi.marginals():
            assert marginal.min() >= min_prob - 1e-12


def test_strategies_are_reexported() -> None:
    assert testing.strategies is sst
    for name in ("markov_games", "policies", "orderings", "games_and_policies"):
        assert callable(getattr(sst, name))


def test_module_docstring_example_runs() -> None:
    code = sst.__doc__.split("::", 1)[1].split("The plain-numpy", 1)[0]
    exec(compile(textwrap.dedent(code), "seqmarl._strategies docstring", "exec"), {})


# --- markov_games ------------------------------------------------------------------------------------


@FAST
@given(sst.markov_games())
def test_default_games_are_in_the_documented_range(game: MarkovGame) -> None:
    assert isinstance(game, MarkovGame)
    assert 2 <= game.n_agents <= 4
    assert all(2 <= a <= 3 for a in game.n_actions)
    assert 1 <= game.n_states <= 4
    assert game.gamma in (0.0, 0.5, 0.9) and game.horizon is None
    assert game.n_joint_actions <= 81
    np.testing.assert_allclose(game.transition.sum(axis=-1), 1.0, rtol=0, atol=1e-12)
    assert np.all(np.isfinite(game.reward))


@pytest.mark.parametrize(
    ("condition", "label"),
    [
        (lambda g: g.n_agents == 2, "2 agents"),
        (lambda g: g.n_agents == 4, "4 agents"),
        (lambda g: g.n_states == 1, "1 state"),
        (lambda g: g.n_states == 4, "4 states"),
        (lambda g: g.gamma == 0.9 and g.n_states > 1, "gamma 0.9"),
        (lambda g: g.gamma == 0.0, "gamma 0"),
        (lambda g: 2 in g.n_actions and 3 in g.n_actions, "heterogeneous"),
        (lambda g: g.n_actions == (3, 3, 3, 3), "largest game"),
    ],
)
def test_default_games_span_the_space(condition, label: str) -> None:  # type: ignore[no-untyped-def]
    assert condition(find(sst.markov_games(), condition, settings=settings(database=None, max_examples=2000))), label


@FAST
@given(sst.markov_games(n_agents=3, n_actions=st.integers(2, 4), n_states=2, gammas=0.5, heterogeneous=False))
def test_fixed_sizes_and_homogeneous(game: MarkovGame) -> None:
    assert game.n_agents == 3 and game.n_states == 2 and game.gamma == 0.5
    assert len(set(game.n_actions)) == 1 and 2 <= game.n_actions[0] <= 4


@FAST
@given(sst.markov_games(n_actions=(2, 3, 1), gammas=1.0, horizons=st.integers(1, 5)))
def test_fixed_action_counts_and_finite_horizon(game: MarkovGame) -> None:
    assert game.n_actions == (2, 3, 1)
    assert game.gamma == 1.0 and 1 <= game.horizon <= 5


@FAST
@given(sst.markov_games(n_agents=5, n_actions=3, max_joint_actions=40))
def test_joint_size_is_capped(game: MarkovGame) -> None:
    assert game.n_agents == 5 and game.n_joint_actions <= 40 and min(game.n_actions) >= 1


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"n_agents": 0}, ValueError),
        ({"n_agents": 2.5}, TypeError),
        ({"n_actions": "3"}, TypeError),
        ({"n_actions": (2, 0)}, ValueError),
        ({"n_actions": (3, 3, 3, 3, 3)}, ValueError),
        ({"max_joint_actions": 0}, ValueError),
        ({"gammas": [0.5]}, TypeError),
    ],
)
def test_markov_games_argument_validation(kwargs: dict, error: type) -> None:
    name = next(iter(kwargs))
    with pytest.raises(error, match=name):
        sst.markov_games(**kwargs)


# --- policies ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", sst.KINDS)
@FAST
@given(data=st.data())
def test_policies_of_each_kind(kind: str, data: st.DataObject) -> None:
    game = data.draw(sst.markov_games(heterogeneous=kind != "shared"), label="game")
    pi = data.draw(sst.policies(game, kind), label="pi")
    assert type(pi) is CLASSES[kind]
    _assert_valid_policy(pi, game)


@pytest.mark.parametrize("kind", sst.KINDS)
@FAST
@given(data=st.data())
def test_soft_policies_have_floor(kind: str, data: st.DataObject) -> None:
    game = data.draw(sst.markov_games(heterogeneous=kind != "shared"), label="game")
    eta = data.draw(st.sampled_from([0.01, 0.1, 1 / 3]), label="eta")
    pi = data.draw(sst.policies(game, kind, min_prob=eta), label="pi")
    _assert_valid_policy(pi, game, min_prob=eta)


@FAST
@given(sst.games_and_policies(kind="joint", min_prob=0.3))
def test_soft_joint_policies_have_marginal_floor(case: tuple[MarkovGame, Policy]) -> None:
    game, pi = case
    _assert_valid_policy(pi, game, min_prob=0.3)
    assert pi.probs().min() >= 0.3 * max(game.n_actions) / game.n_joint_actions - 1e-15


def test_near_deterministic_policies_are_drawn() -> None:
    game = games.random_game(np.random.default_rng(0), 2, (2, 3), 2, 0.5)
    quiet = settings(database=None)

    def point_mass(p: Factorized) -> bool:
        return all(np.all(t.max(axis=1) == 1.0) for t in p.tables)

    def peaked_not_point(p: Factorized) -> bool:
        return all(np.all((t.max(axis=1) > 0.99) & (t.max(axis=1) < 1.0)) for t in p.tables)

    exact = find(sst.policies(game), point_mass, settings=quiet)
    _assert_valid_policy(exact, game)
    peaked = find(sst.policies(game), peaked_not_point, settings=quiet)
    _assert_valid_policy(peaked, game)


@FAST
@given(data=st.data())
def test_near_deterministic_off_gives_full_support(data: st.DataObject) -> None:
    game = data.draw(sst.markov_games(), label="game")
    pi = data.draw(sst.policies(game, near_deterministic=False), label="pi")
    assert all(np.all(t > 0) for t in pi.tables)


def test_shared_rejects_heterogeneous_games() -> None:
    game = games.random_game(np.random.default_rng(0), 3, (2, 3, 2), 2, 0.5)
    with pytest.raises(ValueError, match="shared"):
        sst.policies(game, "shared")
    with pytest.raises(ValueError, match="shared"):
        sst.random_policy(np.random.default_rng(0), game, "shared")


def test_policies_argument_validation() -> None:
    game = games.xor(2)
    with pytest.raises(ValueError, match="kind"):
        sst.policies(game, "greedy")
    with pytest.raises(ValueError, match="min_prob"):
        sst.policies(game, min_prob=0.6)  # 2 actions x 0.6 > 1
    with pytest.raises(ValueError, match="min_prob"):
        sst.policies(game, min_prob=-0.1)
    with pytest.raises(TypeError, match="game"):
        sst.policies("xor")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="kind"):
        sst.games_and_policies(kind="greedy")


@FAST
@given(sst.games_and_policies(kind="shared"))
def test_games_and_policies_shared_gets_homogeneous_games(case: tuple[MarkovGame, Policy]) -> None:
    game, pi = case
    assert isinstance(pi, Shared) and len(set(game.n_actions)) == 1
    _assert_valid_policy(pi, game)


@FAST
@given(sst.games_and_policies(kind=st.sampled_from(sst.KINDS), min_prob=0.05))
def test_games_and_policies_any_kind(case: tuple[MarkovGame, Policy]) -> None:
    game, pi = case
    _assert_valid_policy(pi, game)


# --- orderings -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [1, 2, 4, 6])
@FAST
@given(data=st.data())
def test_orderings_are_permutations(n: int, data: st.DataObject) -> None:
    order = data.draw(sst.orderings(n))
    assert isinstance(order, tuple) and sorted(order) == list(range(n))


@pytest.mark.parametrize("n", [0, -1, 2.0, True])
def test_orderings_validation(n: object) -> None:
    with pytest.raises(ValueError, match="n must be a positive integer"):
        sst.orderings(n)  # type: ignore[arg-type]


# --- plain numpy generators ----------------------------------------------------------------------------


@pytest.mark.parametrize("style", sst.STYLES)
@pytest.mark.parametrize("min_prob", [0.0, 0.1, 0.25])
def test_random_distribution(style: str, min_prob: float) -> None:
    out = sst.random_distribution(np.random.default_rng(3), (5, 2, 4), min_prob, style)
    assert out.shape == (5, 2, 4)
    np.testing.assert_allclose(out.sum(axis=-1), 1.0, rtol=0, atol=1e-15)
    assert out.min() >= min_prob - 1e-15
    if style == "deterministic":
        np.testing.assert_allclose(out.max(axis=-1), 1.0 - 3 * min_prob, rtol=0, atol=1e-15)


def test_random_generators_are_reproducible_and_validate() -> None:
    game = games.random_game(np.random.default_rng(1), 3, (2, 3, 2), 3, 0.9)
    a = sst.random_policy(np.random.default_rng(7), game, "autoregressive", 0.05, order=(2, 0, 1))
    b = sst.random_policy(np.random.default_rng(7), game, "autoregressive", 0.05, order=(2, 0, 1))
    assert a.order == (2, 0, 1)
    np.testing.assert_array_equal(a.probs(), b.probs())
    with pytest.raises(TypeError, match="rng"):
        sst.random_distribution(np.random.RandomState(0), (2, 2))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="style"):
        sst.random_distribution(np.random.default_rng(0), (2, 2), style="spiky")
    with pytest.raises(ValueError, match="shape"):
        sst.random_distribution(np.random.default_rng(0), (2, 0))
    with pytest.raises(ValueError, match="order"):
        sst.random_policy(np.random.default_rng(0), game, "autoregressive", order=(0, 1, 1))
    with pytest.raises(ValueError, match="min_prob"):
        sst.random_product_policy(np.random.default_rng(0), game, min_prob=0.4)  # agent 1 has 3 actions
    # the floor 1/A leaves only the uniform policy
    np.testing.assert_allclose(sst.random_product_policy(np.random.default_rng(0), games.xor(2), 0.5).tables[0], 0.5, rtol=0, atol=1e-15)
