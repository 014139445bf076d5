"""Two MAPPO/HAPPO updates with tiny sizes on each real-package adapter of issue 8 part B: the trainer's collection
path runs on the adapter, an update happens and every metric is finite. Skipped (with the reason) only when the
adapter's package is missing."""

from __future__ import annotations

import math
import sys

import pytest
import torch

from seqmarl import envs
from seqmarl.algos import Trainer, TrainerConfig, make_agent
from seqmarl.envs import MissingExtraError


def _build(name: str, **kwargs: object) -> envs.MultiAgentEnv:
    try:
        return envs.make(name, **kwargs)
    except MissingExtraError as exc:
        print(f"SKIP {name}: {exc}", file=sys.stderr)
        pytest.skip(f"{name}: {exc}")
    raise AssertionError("unreachable")


def _two_updates(env: envs.MultiAgentEnv, algo: str) -> list[dict[str, float]]:
    agent = make_agent(algo, env.spec, seed=0, hidden=(16, 16), ppo_epoch=1, critic_epoch=1)
    before = [p.detach().clone() for p in agent.networks()["critic"].parameters()]
    rollout = 8
    trainer = Trainer(env, agent, TrainerConfig(total_steps=2 * rollout * env.num_envs, rollout_length=rollout,
                                                progress=False, tensorboard=False), seed=0)
    rows = trainer.train()
    assert len(rows) == 2 and trainer.iteration == 2 and trainer.env_steps == 2 * rollout * env.num_envs
    for row in rows:
        bad = {k: v for k, v in row.items() if isinstance(v, float) and k != "episode_return" and not math.isfinite(v)}
        assert not bad, bad
    after = list(agent.networks()["critic"].parameters())
    assert any(not torch.equal(a, b) for a, b in zip(before, after)), "no parameter changed: no update happened"
    return rows


@pytest.mark.parametrize("algo", ["mappo", "happo"])
def test_mamujoco(algo: str) -> None:
    env = _build("mamujoco/HalfCheetah-2x3", num_envs=2, seed=0, episode_limit=12)
    try:
        rows = _two_updates(env, algo)
        assert math.isfinite(rows[-1]["episode_return"])  # 16 steps > limit 12: an episode ended
    finally:
        env.close()


def test_mamujoco_state_id_with_workers() -> None:
    env = _build("mamujoco/Walker2d-2x3", num_envs=2, seed=0, episode_limit=12, obs="state+id", workers=2)
    try:
        _two_updates(env, "mappo")
    finally:
        env.close()


@pytest.mark.slow
def test_smax() -> None:
    env = _build("smax/3m", num_envs=4, seed=0, episode_limit=6)
    _two_updates(env, "mappo")


def test_gfootball() -> None:
    env = _build("gfootball/academy_3_vs_1_with_keeper", num_envs=2, seed=0)
    try:
        _two_updates(env, "mappo")
    finally:
        env.close()


@pytest.mark.slow
def test_smac() -> None:
    env = _build("smac/3m", num_envs=1, seed=0)
    try:
        _two_updates(env, "mappo")
    finally:
        env.close()


@pytest.mark.parametrize("continuous", [False, True])
def test_mpe(continuous: bool) -> None:
    _two_updates(_build("mpe/simple_spread", num_envs=2, seed=0, continuous_actions=continuous), "mappo")


@pytest.mark.parametrize("continuous", [False, True])
def test_jaxmarl_mpe(continuous: bool) -> None:
    """jaxmarl's MPE: 8 steps x 2 updates = 16 > max_cycles 5, so episodes end inside the jitted step."""
    rows = _two_updates(_build("jaxmarl_mpe/simple_spread", num_envs=2, seed=0, continuous_actions=continuous,
                               max_cycles=5), "happo")
    assert math.isfinite(rows[-1]["episode_return"])


@pytest.mark.parametrize("continuous", [False, True])
def test_vmas(continuous: bool) -> None:
    """Continuous VMAS with a Gaussian policy: its unbounded samples are clipped into the box (clip_actions)."""
    _two_updates(_build("vmas/balance", num_envs=4, seed=0, continuous_actions=continuous), "happo")


def test_vmas_clips_continuous_actions_into_the_box() -> None:
    env = _build("vmas/balance", num_envs=2, seed=0)
    space = env.spec.agent_spaces[0]
    env.reset(seed=0)
    big = torch.full((2, env.spec.n_agents, env.spec.act_dim), 1e6)
    clipped = env.validate_actions(big)
    assert float(clipped.max()) == max(space.high)
    strict = _build("vmas/balance", num_envs=2, seed=0, clip_actions=False)
    strict.reset(seed=0)
    with pytest.raises(ValueError):
        strict.step(big)


# ---------------------------------------------------------------------------------------------------------------
# The sequence models of issue 9 (AR-MAPPO, MAT, MAT-Dec, TAD-PPO): discrete and continuous actions, heterogeneous
# action sizes (MaMuJoCo), action masks and dying units (SMAX).
SEQUENCE_ALGOS = ["ar_mappo", "mat", "mat_dec", "tad_ppo"]


@pytest.mark.parametrize("algo", SEQUENCE_ALGOS)
def test_mamujoco_continuous(algo: str) -> None:
    env = _build("mamujoco/HalfCheetah-2x3", num_envs=2, seed=0, episode_limit=12)
    try:
        _two_updates(env, algo)
    finally:
        env.close()


@pytest.mark.parametrize("continuous", [False, True])
@pytest.mark.parametrize("algo", SEQUENCE_ALGOS)
def test_mpe(algo: str, continuous: bool) -> None:
    _two_updates(_build("mpe/simple_spread", num_envs=2, seed=0, continuous_actions=continuous), algo)


@pytest.mark.parametrize("continuous", [False, True])
@pytest.mark.parametrize("algo", SEQUENCE_ALGOS)
def test_vmas(algo: str, continuous: bool) -> None:
    _two_updates(_build("vmas/balance", num_envs=4, seed=0, continuous_actions=continuous), algo)


@pytest.mark.slow
@pytest.mark.parametrize("algo", SEQUENCE_ALGOS)
def test_smax(algo: str) -> None:
    _two_updates(_build("smax/3m", num_envs=4, seed=0, episode_limit=6), algo)


@pytest.mark.parametrize("algo", ["ar_mappo", "mat"])
def test_gfootball(algo: str) -> None:
    env = _build("gfootball/academy_3_vs_1_with_keeper", num_envs=2, seed=0)
    try:
        _two_updates(env, algo)
    finally:
        env.close()
