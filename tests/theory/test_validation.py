"""One test per validation rule of the theory core; each checks the message names the offending argument."""

from __future__ import annotations

import numpy as np
import pytest

from seqmarl.theory import evaluate as ev
from seqmarl.theory import games
from seqmarl.theory import multiagent as ma
from seqmarl.theory.markov_game import MarkovGame
from seqmarl.theory.policies import AutoRegressive, Factorized, Joint

S, ACTS = 2, (2, 3)


def _parts() -> dict:
    """A valid 2-state game's fields: uniform transitions, zero rewards."""
    return {
        "reward": np.zeros((S, *ACTS)),
        "transition": np.full((S, *ACTS, S), 1.0 / S),
        "gamma": 0.9,
        "initial": np.full(S, 1.0 / S),
    }


def _game() -> MarkovGame:
    return MarkovGame(**_parts())


def _pi() -> Factorized:
    return Factorized.uniform(S, ACTS)


def test_valid_parts_build() -> None:
    assert _game().n_actions == ACTS


# --- MarkovGame -------------------------------------------------------------------------------------


def test_reward_needs_an_agent_axis() -> None:
    with pytest.raises(ValueError, match="reward must have shape"):
        MarkovGame(**{**_parts(), "reward": np.zeros(S)})


def test_transition_shape() -> None:
    with pytest.raises(ValueError, match="transition must have shape"):
        MarkovGame(**{**_parts(), "transition": np.full((S, *ACTS), 1.0 / S)})


def test_initial_shape() -> None:
    with pytest.raises(ValueError, match="initial must have shape"):
        MarkovGame(**{**_parts(), "initial": np.full(S + 1, 1.0 / (S + 1))})


def test_transition_rows_must_sum_to_one_within_1e9() -> None:
    bad = _parts()["transition"].copy()
    bad[0, 0, 0] = [0.5 + 1e-8, 0.5]
    with pytest.raises(ValueError, match="transition must sum to 1"):
        MarkovGame(**{**_parts(), "transition": bad})
    ok = _parts()["transition"].copy()
    ok[0, 0, 0] = [0.5 + 1e-11, 0.5]
    MarkovGame(**{**_parts(), "transition": ok})  # inside the 1e-9 tolerance


def test_initial_must_sum_to_one_within_1e9() -> None:
    with pytest.raises(ValueError, match="initial must sum to 1"):
        MarkovGame(**{**_parts(), "initial": np.array([0.5, 0.5 - 1e-8])})
    MarkovGame(**{**_parts(), "initial": np.array([0.5, 0.5 - 1e-11])})


def test_transition_must_be_non_negative() -> None:
    bad = _parts()["transition"].copy()
    bad[1, 1, 2] = [1.5, -0.5]  # sums to 1 but is not a distribution
    with pytest.raises(ValueError, match="transition must be non-negative"):
        MarkovGame(**{**_parts(), "transition": bad})


def test_initial_must_be_non_negative() -> None:
    with pytest.raises(ValueError, match="initial must be non-negative"):
        MarkovGame(**{**_parts(), "initial": np.array([1.25, -0.25])})


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_reward_must_be_finite(bad: float) -> None:
    reward = np.zeros((S, *ACTS))
    reward[1, 0, 2] = bad
    with pytest.raises(ValueError, match="reward must be finite"):
        MarkovGame(**{**_parts(), "reward": reward})


@pytest.mark.parametrize("gamma", [-0.1, 1.0 + 1e-9, 2.0, np.nan, np.inf])
def test_gamma_outside_unit_interval(gamma: float) -> None:
    with pytest.raises(ValueError, match="gamma"):
        MarkovGame(**{**_parts(), "gamma": gamma})


def test_gamma_not_a_number_type() -> None:
    with pytest.raises(TypeError, match="gamma"):
        MarkovGame(**{**_parts(), "gamma": "high"})


def test_gamma_one_needs_horizon() -> None:
    with pytest.raises(ValueError, match="horizon"):
        MarkovGame(**{**_parts(), "gamma": 1.0})
    assert MarkovGame(**{**_parts(), "gamma": 1.0}, horizon=3).horizon == 3


@pytest.mark.parametrize("horizon", [0, -2, 2.5, True, "3"])
def test_bad_horizon(horizon: object) -> None:
    with pytest.raises(ValueError, match="horizon must be a positive integer"):
        MarkovGame(**_parts(), horizon=horizon)


# --- policies ---------------------------------------------------------------------------------------


def test_policy_row_must_sum_to_one() -> None:
    with pytest.raises(ValueError, match=r"tables\[1\] must sum to 1"):
        Factorized([np.full((S, 2), 0.5), np.full((S, 3), 0.3)])


def test_policy_entries_non_negative() -> None:
    with pytest.raises(ValueError, match=r"tables\[0\] must be non-negative"):
        Factorized([np.array([[1.5, -0.5], [0.5, 0.5]]), np.full((S, 3), 1 / 3)])


def test_policy_table_ndim() -> None:
    with pytest.raises(ValueError, match=r"tables\[0\] must have 2 axes"):
        Factorized([np.array([0.5, 0.5]), np.full((S, 3), 1 / 3)])


def test_policy_tables_same_states() -> None:
    with pytest.raises(ValueError, match="tables must all have the same number of states"):
        Factorized([np.full((2, 2), 0.5), np.full((3, 3), 1 / 3)])


def test_joint_table_ndim() -> None:
    with pytest.raises(ValueError, match="table must have shape"):
        Joint(np.array([0.5, 0.5]))


def test_joint_table_rows_sum_to_one() -> None:
    with pytest.raises(ValueError, match="table must sum to 1"):
        Joint(np.full((1, 2, 2), 0.3))


def test_shared_n_agents() -> None:
    from seqmarl.theory.policies import Shared

    with pytest.raises(ValueError, match="n_agents"):
        Shared(np.full((S, 2), 0.5), 0)


def test_autoregressive_order_is_a_permutation() -> None:
    conditionals = [np.full((S, 2), 0.5), np.full((S, 2, 2), 0.5)]
    with pytest.raises(ValueError, match="order must be a permutation"):
        AutoRegressive((0, 0), conditionals)
    with pytest.raises(ValueError, match="order must be a permutation"):
        AutoRegressive((1, 2), conditionals)


def test_autoregressive_conditional_shapes() -> None:
    with pytest.raises(ValueError, match=r"conditionals\[1\] must have shape"):
        AutoRegressive((0, 1), [np.full((S, 2), 0.5), np.full((S, 3, 2), 0.5)])
    with pytest.raises(ValueError, match=r"conditionals\[1\] must have 3 axes"):
        AutoRegressive((0, 1), [np.full((S, 2), 0.5), np.full((S, 2), 0.5)])


def test_autoregressive_conditional_count() -> None:
    with pytest.raises(ValueError, match="conditionals must have one table per agent"):
        AutoRegressive((0, 1), [np.full((S, 2), 0.5)])


def test_from_joint_order() -> None:
    with pytest.raises(ValueError, match="order must be a permutation"):
        AutoRegressive.from_joint(np.full((1, 2, 2), 0.25), (0, 2))


# --- games ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [3, 5])
def test_xor_needs_even_n(n: int) -> None:
    with pytest.raises(ValueError, match="n must be even"):
        games.xor(n)


def test_xor_n_type() -> None:
    with pytest.raises(TypeError, match="n must be an integer"):
        games.xor(2.0)  # type: ignore[arg-type]


def test_penalty_k_positive() -> None:
    with pytest.raises(ValueError, match="k must be"):
        games.penalty(1.0)


def test_random_game_rng_type() -> None:
    with pytest.raises(TypeError, match="rng must be a numpy.random.Generator"):
        games.random_game(np.random.RandomState(0))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="rng"):
        games.random_game(0)  # type: ignore[arg-type]


def test_random_game_heterogeneous_actions_length() -> None:
    with pytest.raises(ValueError, match="n_actions must have one entry per agent"):
        games.random_game(np.random.default_rng(0), n_agents=3, n_actions=(2, 3))


def test_random_game_dirichlet_alpha() -> None:
    with pytest.raises(ValueError, match="dirichlet_alpha"):
        games.random_game(np.random.default_rng(0), dirichlet_alpha=0.0)


def test_game_from_name_unknown() -> None:
    with pytest.raises(ValueError, match="unknown game"):
        games.game_from_name("chicken")


# --- multiagent -------------------------------------------------------------------------------------


def test_agents_repeated() -> None:
    with pytest.raises(ValueError, match="agents must not repeat"):
        ma.q_subset(_game(), _pi(), (1, 1))


def test_agents_out_of_range() -> None:
    with pytest.raises(ValueError, match=r"agents must hold agent indices in \[0, 2\)"):
        ma.advantage_subset(_game(), _pi(), (2,))
    with pytest.raises(ValueError, match="agents must hold agent indices"):
        ma.q_subset(_game(), _pi(), (-1,))


def test_given_out_of_range() -> None:
    with pytest.raises(ValueError, match="given must hold agent indices"):
        ma.advantage_subset(_game(), _pi(), (0,), given=(5,))


def test_agents_and_given_disjoint() -> None:
    with pytest.raises(ValueError, match=r"agents \(0,\) and given \(1, 0\) must be disjoint"):
        ma.advantage_subset(_game(), _pi(), (0,), given=(1, 0))


def test_new_tables_count() -> None:
    with pytest.raises(ValueError, match="new_tables must give one table per agent"):
        ma.surrogate(_game(), _pi(), (0, 1), [np.full((S, 2), 0.5)])


def test_new_tables_shape() -> None:
    with pytest.raises(ValueError, match=r"new_tables\[1\] \(agent 1\) must have shape \(2, 3\)"):
        ma.surrogate(_game(), _pi(), (0, 1), [np.full((S, 2), 0.5), np.full((S, 2), 0.5)])


def test_new_tables_not_distributions() -> None:
    with pytest.raises(ValueError, match=r"new_tables\[0\] must sum to 1"):
        ma.expected_local_advantage(_game(), _pi(), (0,), [np.full((S, 2), 0.7)])


def test_local_advantage_needs_an_updating_agent() -> None:
    with pytest.raises(ValueError, match="agents must name at least"):
        ma.expected_local_advantage(_game(), _pi(), (), [])


def test_estimator_m_needs_soft_old_policy() -> None:
    pi = Factorized([np.array([[1.0, 0.0], [0.5, 0.5]]), np.full((S, 3), 1 / 3)])
    with pytest.raises(ValueError, match=r"pi\^0 must be positive"):
        ma.estimator_m(_game(), pi, (0,), [np.full((S, 2), 0.5)])


def test_estimator_m_prev_new_tables_count() -> None:
    with pytest.raises(ValueError, match="prev_new_tables must give one table per agent"):
        ma.estimator_m(_game(), _pi(), (0, 1), [np.full((S, 2), 0.5)])


def test_estimator_m_adv_shape() -> None:
    with pytest.raises(ValueError, match="adv must have shape"):
        ma.estimator_m(_game(), _pi(), (0,), [np.full((S, 2), 0.5)], adv=np.zeros((S, 2)))


def test_multiagent_needs_product_policy() -> None:
    with pytest.raises(TypeError, match="product policy"):
        ma.q_subset(_game(), Joint(_pi().probs()), (0,))


def test_multiagent_policy_must_match_game() -> None:
    with pytest.raises(ValueError, match="pi must hold one"):
        ma.q_subset(_game(), Factorized.uniform(S, (2, 2)), (0,))


def test_multiagent_game_type() -> None:
    with pytest.raises(TypeError, match="game must be a MarkovGame"):
        ma.q_subset("xor", _pi(), (0,))  # type: ignore[arg-type]


# --- evaluate ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("fn", [ev.value, ev.q_value, ev.advantage, ev.occupancy, ev.expected_return])
def test_evaluate_policy_shape(fn) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match=r"policy must have shape \[S, A1, ..., An\] = \(2, 2, 3\)"):
        fn(_game(), Factorized.uniform(S, (3, 2)))


def test_evaluate_policy_states() -> None:
    with pytest.raises(ValueError, match="policy must have shape"):
        ev.value(_game(), Joint(np.full((3, 2, 3), 1 / 6)))


def test_evaluate_game_type() -> None:
    with pytest.raises(TypeError, match="game must be a MarkovGame"):
        ev.value(None, _pi())  # type: ignore[arg-type]


def test_joint_deterministic_rejects_bad_actions() -> None:
    import numpy as np
    import pytest

    from seqmarl.theory import Joint

    with pytest.raises(ValueError, match="joint_actions must hold action indices"):
        Joint.deterministic(np.array([[-1, 0]]), (2, 2))
    with pytest.raises(ValueError, match="joint_actions must have shape"):
        Joint.deterministic(np.array([[0, 0, 1]]), (2, 2))


def test_factorized_replace_checks_the_table_shape() -> None:
    import numpy as np
    import pytest

    from seqmarl.theory import Factorized

    pi = Factorized([np.full((1, 2), 0.5), np.full((1, 3), 1 / 3)])
    with pytest.raises(ValueError, match="table must have agent 0's shape"):
        pi.replace(0, np.full((1, 4), 0.25))


def test_random_game_rejects_nan_alpha() -> None:
    import numpy as np
    import pytest

    from seqmarl.theory import random_game

    with pytest.raises(ValueError, match="dirichlet_alpha"):
        random_game(np.random.default_rng(0), dirichlet_alpha=float("nan"))


@pytest.mark.parametrize("gamma", ["0.9", b"0.9", True, np.bool_(False)])
def test_gamma_must_be_a_number_not_a_string_or_bool(gamma: object) -> None:
    with pytest.raises(TypeError, match="gamma must be a real number"):
        MarkovGame(**{**_parts(), "gamma": gamma})


def test_order_with_a_non_integer_names_order() -> None:
    from seqmarl.theory import bounds

    with pytest.raises(TypeError, match="order must be a sequence of agent indices"):
        bounds.check_order([1, "x"], 2)
