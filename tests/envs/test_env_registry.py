"""make / register / known_envs: names, keyword checking, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from seqmarl import envs
from seqmarl.envs import BridgeEnv, GaussianProductEnv, MatrixGameEnv
from seqmarl.theory import games

BUILTIN = ["bridge", "gaussian/a1a2", "matrix/climbing", "matrix/penalty", "matrix/permutation", "matrix/qtran",
           "matrix/random", "matrix/xor"]


def test_known_envs_lists_builtins():
    assert set(BUILTIN) <= set(envs.known_envs())
    assert envs.known_envs() == sorted(envs.known_envs())


@pytest.mark.parametrize(
    "name,kwargs,game",
    [
        ("matrix/xor", {}, games.xor(2)),
        ("matrix/xor", {"n_agents": 4}, games.xor(4)),
        ("matrix/permutation", {"n_agents": 4}, games.permutation(4)),
        ("matrix/climbing", {}, games.climbing()),
        ("matrix/penalty", {"k": -30}, games.penalty(-30)),
        ("matrix/qtran", {}, games.qtran()),
    ],
)
def test_matrix_names_build_the_theory_game(name, kwargs, game):
    env = envs.make(name, num_envs=3, seed=0, **kwargs)
    assert isinstance(env, MatrixGameEnv) and env.num_envs == 3
    assert np.array_equal(env.game.reward, game.reward) and env.spec.n_actions == game.n_actions


def test_matrix_random_uses_game_seed_then_seed():
    env = envs.make("matrix/random", n_agents=3, n_actions=(2, 3, 2), n_states=2, gamma=0.5, seed=7)
    ref = games.random_game(np.random.default_rng(7), n_agents=3, n_actions=(2, 3, 2), n_states=2, gamma=0.5)
    assert np.array_equal(env.game.reward, ref.reward) and np.array_equal(env.game.transition, ref.transition)
    assert env.spec.episode_limit == 10
    other = envs.make("matrix/random", game_seed=7, seed=1, n_agents=3, n_actions=(2, 3, 2), n_states=2, gamma=0.5)
    assert np.array_equal(other.game.reward, ref.reward)
    default = envs.make("matrix/random")
    assert np.array_equal(default.game.reward, games.random_game(np.random.default_rng(0)).reward)


def test_matrix_common_options_pass_through():
    env = envs.make("matrix/random", obs="state+agent_id", episode_limit=4, seed=0)
    assert env.spec.obs_dim == 2 + 2 and env.spec.episode_limit == 4


def test_bridge_and_gaussian():
    bridge = envs.make("bridge", num_envs=2, episode_limit=10, agent_id=True, seed=0)
    assert isinstance(bridge, BridgeEnv) and bridge.spec.episode_limit == 10 and bridge.spec.obs_dim == 8
    gauss = envs.make("gaussian/a1a2", num_envs=5, device=torch.device("cpu"))
    assert isinstance(gauss, GaussianProductEnv) and gauss.num_envs == 5


def test_unknown_name_lists_known_names():
    with pytest.raises(ValueError, match=r"unknown environment 'matrix/nope'; known environments: \[.*'bridge'"):
        envs.make("matrix/nope")
    with pytest.raises(TypeError, match="name must be a str"):
        envs.make(3)  # type: ignore[arg-type]


def test_bad_kwargs_are_named():
    with pytest.raises(TypeError, match=r"unexpected keyword arguments \['n_agent'\]"):
        envs.make("matrix/xor", n_agent=4)
    with pytest.raises(TypeError, match=r"\['colour', 'k'\]"):
        envs.make("bridge", k=1, colour="red")


def test_bad_values_raise_from_the_game():
    with pytest.raises(ValueError, match="n must be even"):
        envs.make("matrix/xor", n_agents=3)


def test_register_custom_factory_and_errors():
    def factory(num_envs=1, device="cpu", seed=None, payoff=2.0):  # noqa: ANN001, ANN202
        return MatrixGameEnv(games.xor(2), num_envs=num_envs, device=device, seed=seed)

    envs.register("test/custom-xor", factory)
    try:
        assert "test/custom-xor" in envs.known_envs()
        assert isinstance(envs.make("test/custom-xor", num_envs=2, payoff=3.0), MatrixGameEnv)
        assert envs.describe("test/custom-xor") == {"num_envs": 1, "device": "cpu", "seed": None, "payoff": 2.0}
        with pytest.raises(ValueError, match="already registered"):
            envs.register("test/custom-xor", factory)
        envs.register("test/custom-xor", factory, overwrite=True)
    finally:
        from seqmarl.envs import registry

        registry._REGISTRY.pop("test/custom-xor", None)
    with pytest.raises(TypeError, match=r"must accept the keyword arguments \['device', 'seed'\]"):
        envs.register("test/bad", lambda num_envs=1: None)
    with pytest.raises(TypeError, match="factory must be callable"):
        envs.register("test/bad", 3)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="name must be a non-empty str"):
        envs.register("", lambda **kw: None)
    assert "test/bad" not in envs.known_envs()


def test_describe_builtin():
    assert envs.describe("bridge") == {"num_envs": 1, "device": "cpu", "seed": None, "episode_limit": 30,
                                       "agent_id": False, "symmetric": False}
