"""The batched protocol: spaces, spec, Step, action validation, seeding and devices for every env."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from seqmarl import envs
from seqmarl.envs import AgentSpace, EnvSpec, MatrixGameEnv, Step
from seqmarl.theory import games

ALL_NAMES = ["matrix/xor", "matrix/permutation", "matrix/climbing", "matrix/penalty", "matrix/qtran",
             "matrix/random", "bridge", "gaussian/a1a2"]


def random_actions(env: envs.MultiAgentEnv, step: Step, gen: torch.Generator) -> torch.Tensor:
    """Uniform random actions among the available ones (discrete) or N(0, 1) (continuous)."""
    spec = env.spec
    if spec.is_discrete:
        weights = step.avail_actions.to(torch.float32).reshape(-1, spec.max_actions)
        draws = torch.multinomial(weights.cpu(), 1, generator=gen).reshape(env.num_envs, spec.n_agents)
        return draws.to(env.device)
    return torch.randn(env.num_envs, spec.n_agents, spec.act_dim, generator=gen).to(env.device)


def rollout(env: envs.MultiAgentEnv, seed: int, steps: int) -> list[Step]:
    gen = torch.Generator().manual_seed(1234)
    out = [env.reset(seed=seed)]
    for _ in range(steps):
        out.append(env.step(random_actions(env, out[-1], gen)))
    return out


# --- spaces and spec ------------------------------------------------------------------------------
def test_agent_space_discrete_and_continuous():
    d = AgentSpace.discrete(4)
    assert d.is_discrete and d.n == 4 and d.dim == 1
    c = AgentSpace.continuous(-1.0, 2.0, (3,))
    assert not c.is_discrete and c.low == (-1.0,) * 3 and c.high == (2.0,) * 3 and c.dim == 3


def test_agent_space_validation():
    with pytest.raises(ValueError, match="n must be >= 1"):
        AgentSpace.discrete(0)
    with pytest.raises(TypeError, match="n must be an integer"):
        AgentSpace.discrete(2.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="low must be <= high"):
        AgentSpace.continuous(1.0, 0.0)
    with pytest.raises(ValueError, match="low must have 2 entries"):
        AgentSpace.continuous((0.0,), (1.0, 1.0), (2,))
    with pytest.raises(ValueError, match="kind must be"):
        AgentSpace(kind="box")


def test_env_spec_properties_and_validation():
    spec = EnvSpec(2, 3, 4, (AgentSpace.discrete(2), AgentSpace.discrete(5)), 10)
    assert spec.is_discrete and spec.n_actions == (2, 5) and spec.max_actions == 5 and spec.act_dim == 1
    with pytest.raises(ValueError, match="one AgentSpace per agent"):
        EnvSpec(3, 3, 4, (AgentSpace.discrete(2),) * 2, 10)
    with pytest.raises(ValueError, match="all discrete or all continuous"):
        EnvSpec(2, 3, 4, (AgentSpace.discrete(2), AgentSpace.continuous(0, 1)), 10)
    with pytest.raises(ValueError, match="episode_limit must be >= 1"):
        EnvSpec(2, 3, 4, (AgentSpace.discrete(2),) * 2, 0)
    with pytest.raises(TypeError, match="agent_spaces must contain AgentSpace"):
        EnvSpec(1, 3, 4, (2,), 10)  # type: ignore[arg-type]
    cont = EnvSpec(2, 1, 1, (AgentSpace.continuous(0, 1, 2), AgentSpace.continuous(0, 1, 3)), 1)
    assert cont.act_dim == 3
    with pytest.raises(ValueError, match="only for discrete"):
        _ = cont.n_actions


def test_step_check_rejects_wrong_shapes():
    env = envs.make("matrix/xor", num_envs=3, seed=0)
    step = env.reset()
    step.check(env.spec, 3)
    bad = Step(step.obs, step.state, step.avail_actions, step.reward.double(), step.terminated, step.truncated)
    with pytest.raises(ValueError, match="Step.reward"):
        bad.check(env.spec, 3)


# --- every environment: shapes, dtypes, seeding ---------------------------------------------------
@pytest.mark.parametrize("name", ALL_NAMES)
def test_shapes_and_dtypes_every_env(name):
    env = envs.make(name, num_envs=7, seed=0)
    spec = env.spec
    for step in rollout(env, seed=0, steps=4):
        step.check(spec, 7)
        assert step.obs.device == torch.device("cpu")
    info = step.info  # the last Step came from step(): it carries the final_* tensors
    assert info["final_obs"].shape == step.obs.shape and info["final_obs"].dtype == torch.float32
    assert info["final_state"].shape == step.state.shape
    assert info["episode_return"].shape == (7,) and info["episode_length"].dtype == torch.int64
    assert (spec.is_discrete) == (name != "gaussian/a1a2")


@pytest.mark.parametrize("name", ALL_NAMES)
def test_same_seed_same_trajectory(name):
    extra = {"game_seed": 0} if name == "matrix/random" else {}  # that name's seed also picks the game
    a = rollout(envs.make(name, num_envs=16, seed=5, **extra), seed=11, steps=12)
    b = rollout(envs.make(name, num_envs=16, seed=99, **extra), seed=11, steps=12)  # reset(seed) overrides
    for x, y in zip(a, b):
        for field in ("obs", "state", "reward", "terminated", "truncated"):
            assert torch.equal(getattr(x, field), getattr(y, field)), field


def test_different_seed_differs_for_stochastic_env():
    game = games.random_game(np.random.default_rng(0), n_agents=2, n_actions=2, n_states=4, gamma=0.9)
    env = MatrixGameEnv(game, num_envs=64)
    a = rollout(env, seed=1, steps=5)
    b = rollout(env, seed=2, steps=5)
    assert any(not torch.equal(x.state, y.state) for x, y in zip(a, b))


def test_reset_without_seed_continues_stream():
    game = games.random_game(np.random.default_rng(0), n_agents=2, n_actions=2, n_states=4, gamma=0.9)
    env = MatrixGameEnv(game, num_envs=256, seed=3)
    first = env.reset().state
    second = env.reset().state
    assert not torch.equal(first, second)
    assert torch.equal(env.reset(seed=3).state, MatrixGameEnv(game, num_envs=256, seed=3).reset().state)


# --- action validation ----------------------------------------------------------------------------
def test_step_before_reset_raises():
    env = envs.make("matrix/climbing", num_envs=2)
    with pytest.raises(RuntimeError, match="reset"):
        env.step(torch.zeros(2, 2, dtype=torch.int64))


def test_discrete_action_validation_messages():
    env = envs.make("matrix/climbing", num_envs=2, seed=0)
    env.reset()
    with pytest.raises(TypeError, match="actions must be a torch.Tensor"):
        env.step([[0, 0], [0, 0]])  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="actions must be an integer tensor"):
        env.step(torch.zeros(2, 2))
    with pytest.raises(TypeError, match="actions must be an integer tensor"):
        env.step(torch.zeros(2, 2, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"actions must have shape \[num_envs, n_agents\]"):
        env.step(torch.zeros(2, 3, dtype=torch.int64))
    with pytest.raises(ValueError, match=r"actions\[1, 0\] = 3 is out of range"):
        env.step(torch.tensor([[0, 0], [3, 0]]))
    with pytest.raises(ValueError, match=r"actions\[0, 1\] = -1 is out of range"):
        env.step(torch.tensor([[0, -1], [0, 0]]))
    with pytest.raises(ValueError, match="actions must be on the environment's device"):
        env.step(torch.zeros(2, 2, dtype=torch.int64, device="meta"))
    # int32 is accepted and converted
    assert env.step(torch.zeros(2, 2, dtype=torch.int32)).reward.tolist() == [11.0, 11.0]


def test_unavailable_padding_action_is_rejected():
    game = games.random_game(np.random.default_rng(1), n_agents=2, n_actions=(2, 3), n_states=1, gamma=0.0)
    env = MatrixGameEnv(game, num_envs=2, seed=0)
    env.reset()
    with pytest.raises(ValueError, match=r"actions\[1, 0\] = 2 is out of range for agent 0 with 2 actions"):
        env.step(torch.tensor([[0, 2], [2, 0]]))


def test_continuous_action_validation_messages():
    env = envs.make("gaussian/a1a2", num_envs=2, low=-1.0, high=1.0)
    env.reset(seed=0)
    with pytest.raises(TypeError, match="actions must be a floating-point tensor"):
        env.step(torch.zeros(2, 2, 1, dtype=torch.int64))
    with pytest.raises(ValueError, match=r"actions must have shape \[num_envs, n_agents, act_dim\]"):
        env.step(torch.zeros(2, 2))
    with pytest.raises(ValueError, match=r"actions\[0, 1, 0\] must be finite"):
        env.step(torch.tensor([[[0.0], [math.nan]], [[0.0], [0.0]]]))
    with pytest.raises(ValueError, match=r"actions\[1, 0, 0\] = 1.5 lies outside agent 0's box"):
        env.step(torch.tensor([[[0.0], [0.0]], [[1.5], [0.0]]]))


def test_check_actions_false_skips_validation():
    env = MatrixGameEnv(games.climbing(), num_envs=1, seed=0, check_actions=False)
    env.reset()
    assert env.step(torch.tensor([[2.0, 2.0]])).reward.item() == 5.0  # float actions coerced, unchecked


def test_constructor_validation():
    with pytest.raises(ValueError, match="num_envs must be >= 1"):
        MatrixGameEnv(games.xor(2), num_envs=0)
    with pytest.raises(TypeError, match="num_envs must be an integer"):
        MatrixGameEnv(games.xor(2), num_envs=2.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="seed must be >= 0"):
        MatrixGameEnv(games.xor(2), seed=-1)
    with pytest.raises(TypeError, match="device must be a str or torch.device"):
        MatrixGameEnv(games.xor(2), device=0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="device must name a torch device"):
        MatrixGameEnv(games.xor(2), device="gpu7")
    env = MatrixGameEnv(games.xor(2), num_envs=1)
    with pytest.raises(TypeError, match="seed must be an integer"):
        env.reset(seed="1")  # type: ignore[arg-type]


# --- devices ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ALL_NAMES)
def test_device_cpu_argument(name):
    env = envs.make(name, num_envs=3, device=torch.device("cpu"), seed=0)
    step = rollout(env, seed=0, steps=2)[-1]
    assert env.device == torch.device("cpu")
    assert step.obs.device.type == "cpu" and step.reward.device.type == "cpu"


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("name", ALL_NAMES)
def test_device_cuda_matches_cpu_shapes(name):
    env = envs.make(name, num_envs=32, device="cuda", seed=0)
    steps = rollout(env, seed=0, steps=6)
    for step in steps:
        step.check(env.spec, 32)
        assert step.obs.device.type == "cuda" and step.reward.device.type == "cuda"
        assert step.info.get("final_obs", step.obs).device.type == "cuda"
    again = rollout(envs.make(name, num_envs=32, device="cuda", seed=0), seed=0, steps=6)
    for x, y in zip(steps, again):
        assert torch.equal(x.state, y.state) and torch.equal(x.reward, y.reward)
