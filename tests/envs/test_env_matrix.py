"""MatrixGameEnv against the MarkovGame it simulates: rewards, transitions, masks, episode ends."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from seqmarl.envs import MatrixGameEnv
from seqmarl.envs.matrix import default_episode_limit
from seqmarl.theory import MarkovGame, games
from seqmarl.theory.games import all_joint_actions


def chain_game(horizon: int | None = None, gamma: float = 0.9) -> MarkovGame:
    """Deterministic 3-state chain 0 -> 1 -> 2 -> 2 (actions irrelevant), rewards r(s, .) = s + 1,
    always starting in state 0."""
    reward = np.repeat(np.array([1.0, 2.0, 3.0])[:, None, None], 2, axis=1).repeat(2, axis=2)
    transition = np.zeros((3, 2, 2, 3))
    transition[0, :, :, 1] = 1.0
    transition[1, :, :, 2] = 1.0
    transition[2, :, :, 2] = 1.0
    return MarkovGame(reward, transition, gamma, np.array([1.0, 0.0, 0.0]), horizon=horizon, name="chain")


# --- shapes, observations, masks -------------------------------------------------------------------
@pytest.mark.parametrize("mode,dim", [("state", 3), ("state+agent_id", 5), ("none", 1)])
def test_observation_modes(mode, dim):
    env = MatrixGameEnv(chain_game(), num_envs=4, obs=mode, seed=0)
    step = env.reset()
    step.check(env.spec, 4)
    assert env.spec.obs_dim == dim and env.spec.state_dim == 3
    expected = {
        "state": torch.tensor([[1.0, 0, 0], [1.0, 0, 0]]),
        "state+agent_id": torch.tensor([[1.0, 0, 0, 1, 0], [1.0, 0, 0, 0, 1]]),
        "none": torch.ones(2, 1),
    }[mode]
    assert torch.equal(step.obs, expected.expand(4, 2, dim))
    assert torch.equal(step.state, torch.tensor([1.0, 0, 0]).expand(4, 3))
    assert torch.equal(env.observation_of_state(0), expected)
    table = env.observation_table()
    assert table.shape == (3, 2, dim)
    for s in range(3):
        assert torch.equal(table[s], env.observation_of_state(s))
        assert torch.equal(env.state_of_state(s), torch.eye(3)[s])


def test_observation_follows_state():
    env = MatrixGameEnv(chain_game(), num_envs=2, obs="state+agent_id", seed=0)
    env.reset()
    step = env.step(torch.zeros(2, 2, dtype=torch.int64))
    assert torch.equal(env.current_state, torch.tensor([1, 1]))
    assert torch.equal(step.obs[0], env.observation_of_state(1))
    assert torch.equal(step.state[1], env.state_of_state(1))


def test_heterogeneous_actions_pad_and_mask():
    game = games.random_game(np.random.default_rng(2), n_agents=2, n_actions=(2, 3), n_states=2, gamma=0.5)
    env = MatrixGameEnv(game, num_envs=5, seed=0)
    step = env.reset()
    assert env.spec.n_actions == (2, 3) and env.spec.max_actions == 3
    expected = torch.tensor([[True, True, False], [True, True, True]])
    assert torch.equal(step.avail_actions, expected.expand(5, 2, 3))
    assert torch.equal(env.avail_actions_of_state(1), expected)
    # every real joint action is accepted and pays r(s, a)
    for a in all_joint_actions(game.n_actions):
        s = env.current_state
        step = env.step(torch.tensor(a).expand(5, 2).contiguous())
        assert torch.allclose(step.reward, torch.tensor(game.reward[s.numpy(), a[0], a[1]], dtype=torch.float32))


def test_observation_of_state_validation():
    env = MatrixGameEnv(chain_game(), num_envs=1)
    with pytest.raises(ValueError, match=r"s must be a state index in \[0, 3\)"):
        env.observation_of_state(3)
    with pytest.raises(TypeError, match="s must be an integer"):
        env.observation_of_state(1.0)  # type: ignore[arg-type]


def test_constructor_validation():
    with pytest.raises(TypeError, match="game must be a seqmarl.theory.MarkovGame"):
        MatrixGameEnv("xor")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="obs must be one of"):
        MatrixGameEnv(games.xor(2), obs="pixels")
    with pytest.raises(ValueError, match="episode_limit must be None or 1 for a single-step game"):
        MatrixGameEnv(games.xor(2), episode_limit=2)
    with pytest.raises(ValueError, match="episode_limit must be <= the game's horizon 3"):
        MatrixGameEnv(chain_game(horizon=3), episode_limit=4)
    with pytest.raises(ValueError, match="episode_limit must be >= 1"):
        MatrixGameEnv(chain_game(), episode_limit=0)


# --- rewards equal the theory game -------------------------------------------------------------------
@pytest.mark.parametrize(
    "game",
    [games.xor(4), games.climbing(), games.penalty(-50.0), games.qtran(), games.permutation(3),
     games.random_game(np.random.default_rng(7), n_agents=3, n_actions=(2, 3, 2), n_states=1, gamma=0.0)],
    ids=lambda g: g.name,
)
def test_one_shot_reward_equals_game_for_every_joint_action(game):
    joint = torch.tensor(all_joint_actions(game.n_actions))
    env = MatrixGameEnv(game, num_envs=joint.shape[0], seed=0)
    env.reset()
    step = env.step(joint)
    expected = torch.tensor([game.reward[(0, *a)] for a in joint.tolist()], dtype=torch.float32)
    assert torch.equal(step.reward, expected)
    assert bool(step.terminated.all()) and not bool(step.truncated.any())
    assert env.spec.episode_limit == 1


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), n_states=st.integers(1, 4),
       n_actions=st.lists(st.integers(1, 3), min_size=1, max_size=3))
def test_multistate_reward_is_r_of_current_state(seed, n_states, n_actions):
    game = games.random_game(np.random.default_rng(seed), n_agents=len(n_actions), n_actions=n_actions,
                             n_states=n_states, gamma=0.8)
    env = MatrixGameEnv(game, num_envs=16, seed=seed % 1000)
    env.reset()
    gen = torch.Generator().manual_seed(seed)
    for _ in range(5):
        s = env.current_state
        a = torch.stack([torch.randint(0, k, (16,), generator=gen) for k in n_actions], dim=1)
        step = env.step(a)
        expected = torch.tensor(game.reward[(s.numpy(), *a.T.numpy())], dtype=torch.float32)
        assert torch.equal(step.reward, expected)


# --- transition and initial-state frequencies ---------------------------------------------------------
def _binomial_ok(counts: np.ndarray, probs: np.ndarray, total: int, sigmas: float = 5.0) -> bool:
    std = np.sqrt(total * probs * (1 - probs))
    return bool(np.all(np.abs(counts - total * probs) <= sigmas * std + 1e-9))


def test_transition_frequencies_match_game():
    game = games.random_game(np.random.default_rng(3), n_agents=2, n_actions=(2, 3), n_states=3, gamma=0.9)
    pairs = [(s, a) for s in range(3) for a in all_joint_actions(game.n_actions).tolist()]
    per_pair = 4000
    env = MatrixGameEnv(game, num_envs=len(pairs) * per_pair, seed=0)
    env.reset()
    states = torch.tensor([s for s, _ in pairs]).repeat_interleave(per_pair)
    actions = torch.tensor([a for _, a in pairs]).repeat_interleave(per_pair, dim=0)
    env.set_state(states)
    step = env.step(actions)
    reached = step.info["final_state"].argmax(dim=-1).reshape(len(pairs), per_pair)
    for k, (s, a) in enumerate(pairs):
        counts = np.bincount(reached[k].numpy(), minlength=3)
        assert _binomial_ok(counts, game.transition[s, a[0], a[1]], per_pair), (s, a, counts)


def test_initial_state_frequencies_and_zero_probability_states():
    initial = np.array([0.0, 0.3, 0.0, 0.7, 0.0])
    game = MarkovGame(np.zeros((5, 2)), np.full((5, 2, 5), 0.2), 0.9, initial)
    env = MatrixGameEnv(game, num_envs=20000, seed=4)
    env.reset()
    counts = np.bincount(env.current_state.numpy(), minlength=5)
    assert counts[0] == counts[2] == counts[4] == 0
    assert _binomial_ok(counts, initial, 20000)


def test_set_state_validation():
    env = MatrixGameEnv(chain_game(), num_envs=2)
    with pytest.raises(RuntimeError, match="reset"):
        env.set_state(torch.tensor([0, 1]))
    env.reset()
    with pytest.raises(ValueError, match=r"states must lie in \[0, 3\)"):
        env.set_state(torch.tensor([0, 3]))
    with pytest.raises(ValueError, match="states must have shape"):
        env.set_state(torch.tensor([0]))
    with pytest.raises(TypeError, match="states must be an int64 tensor"):
        env.set_state(torch.tensor([0.0, 1.0]))


# --- episode ends, auto-reset and final_obs ----------------------------------------------------------------
def test_default_episode_limits():
    assert default_episode_limit(games.xor(2)) == 1
    assert default_episode_limit(chain_game(gamma=0.9)) == 50
    assert default_episode_limit(chain_game(gamma=0.5)) == 10
    assert default_episode_limit(chain_game(gamma=0.95)) == math.ceil(5 / 0.05 - 1e-9) == 100
    assert default_episode_limit(chain_game(horizon=4)) == 4
    assert default_episode_limit(chain_game(gamma=0.0)) == 1
    assert MatrixGameEnv(chain_game(gamma=0.9)).spec.episode_limit == 50


def test_truncation_auto_reset_and_final_obs():
    env = MatrixGameEnv(chain_game(gamma=0.9), num_envs=2, episode_limit=3, obs="state", seed=0)
    env.reset()
    zero = torch.zeros(2, 2, dtype=torch.int64)
    rewards, dones = [], []
    for t in range(1, 4):
        step = env.step(zero)
        rewards.append(step.reward[0].item())
        dones.append((step.terminated[0].item(), step.truncated[0].item()))
        if t < 3:  # no reset yet: obs is the state reached and equals final_obs
            assert torch.equal(step.obs, step.info["final_obs"])
    assert rewards == [1.0, 2.0, 3.0]  # r(0), r(1), r(2)
    assert dones == [(False, False), (False, False), (False, True)]
    # the 3rd transition went 2 -> 2: final_obs shows state 2, obs is already the reset state 0
    assert torch.equal(step.info["final_obs"][0], env.observation_of_state(2))
    assert torch.equal(step.info["final_state"][0], env.state_of_state(2))
    assert torch.equal(step.obs[0], env.observation_of_state(0))
    assert torch.equal(env.current_state, torch.tensor([0, 0]))
    assert step.info["episode_return"].tolist() == [6.0, 6.0]
    assert step.info["episode_length"].tolist() == [3, 3]
    # the next episode starts from scratch
    step = env.step(zero)
    assert step.reward.tolist() == [1.0, 1.0] and step.info["episode_length"].tolist() == [1, 1]


def test_finite_horizon_terminates_at_h():
    env = MatrixGameEnv(chain_game(horizon=2, gamma=1.0), num_envs=1, seed=0)
    env.reset()
    zero = torch.zeros(1, 2, dtype=torch.int64)
    first, second = env.step(zero), env.step(zero)
    assert (first.terminated.item(), first.truncated.item()) == (False, False)
    assert (second.terminated.item(), second.truncated.item()) == (True, False)
    assert second.info["episode_return"].item() == 3.0


def test_finite_horizon_with_shorter_limit_truncates():
    env = MatrixGameEnv(chain_game(horizon=3, gamma=1.0), num_envs=1, episode_limit=2, seed=0)
    env.reset()
    zero = torch.zeros(1, 2, dtype=torch.int64)
    env.step(zero)
    step = env.step(zero)
    assert (step.terminated.item(), step.truncated.item()) == (False, True)


def test_gamma_zero_multistate_game_is_single_step():
    env = MatrixGameEnv(chain_game(gamma=0.0), num_envs=3, seed=0)
    env.reset()
    step = env.step(torch.zeros(3, 2, dtype=torch.int64))
    assert bool(step.terminated.all()) and step.reward.tolist() == [1.0] * 3
    assert torch.equal(step.info["final_obs"][0], env.observation_of_state(1))
    assert torch.equal(step.obs[0], env.observation_of_state(0))


def test_one_shot_every_step_terminates():
    env = MatrixGameEnv(games.climbing(), num_envs=4, seed=0)
    env.reset()
    for _ in range(3):
        step = env.step(torch.zeros(4, 2, dtype=torch.int64))
        assert bool(step.terminated.all()) and not bool(step.truncated.any())
        assert step.info["episode_length"].tolist() == [1] * 4
        assert step.info["episode_return"].tolist() == [11.0] * 4


def test_set_state_places_envs_without_resetting_counters():
    env = MatrixGameEnv(chain_game(gamma=0.9), num_envs=2, episode_limit=50, seed=0)
    env.reset()
    env.set_state(torch.tensor([2, 0]))
    step = env.step(torch.zeros(2, 2, dtype=torch.int64))
    assert step.reward.tolist() == [3.0, 1.0]
    assert torch.equal(env.current_state, torch.tensor([2, 1]))
    assert step.info["episode_length"].tolist() == [1, 1]
