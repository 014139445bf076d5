"""smac/* and smacv2/*: the adapter conventions on an in-memory stand-in with the pymarl/SMAC API (always run), the
install errors, the SMACv2 scenario configs, and — only where the git packages and StarCraft II are installed —
the real environments."""

from __future__ import annotations

import os
import sys
import types

import numpy as np
import pytest
import torch

from seqmarl import envs
from seqmarl.envs import MissingExtraError
from seqmarl.envs.smac import SMAC_MAPS, SMACV2_SCENARIOS, PymarlEnv, SMACNotInstalled, smacv2_capability_config


class FakeStarCraft:
    """The pymarl/SMAC API of ``smac.env.StarCraft2Env`` with scripted dynamics: 2 agents, 3 actions (0 = no-op).
    Agent 1 dies at step 2 of every episode (then: zero observation, only the no-op); the battle is won at step
    ``win_at`` (``None``: never), else the time limit ends it with ``info["episode_limit"]`` (continuing_episode)."""

    def __init__(self, limit: int = 4, win_at: int | None = None, offset: float = 0.0) -> None:
        self.limit, self.win_at, self.offset = limit, win_at, offset
        self.t = 0
        self.episodes = 0
        self.death_tracker_ally = np.zeros(2)
        self.closed = False

    def get_env_info(self) -> dict:
        return {"state_shape": 3, "obs_shape": 2, "n_actions": 3, "n_agents": 2, "episode_limit": self.limit}

    def reset(self):
        self.t = 0
        self.episodes += 1
        self.death_tracker_ally = np.zeros(2)
        return self.get_obs(), self.get_state()

    def step(self, actions):
        assert len(actions) == 2
        if self.death_tracker_ally[1]:
            assert actions[1] == 0, "a dead agent may only no-op"
        self.t += 1
        if self.t == 2:
            self.death_tracker_ally[1] = 1
        won = self.win_at is not None and self.t == self.win_at
        info = {"battle_won": won, "dead_allies": int(self.death_tracker_ally.sum()), "dead_enemies": 0}
        if won:
            return 10.0 + sum(actions), True, info
        if self.t >= self.limit:
            info["episode_limit"] = True
            return float(sum(actions)), True, info
        return float(sum(actions)), False, info

    def get_obs(self):
        return [np.array([self.t + self.offset, 0.5]), np.zeros(2) if self.death_tracker_ally[1] else np.array([self.t, 1.0])]

    def get_state(self):
        return np.array([self.t, self.episodes, self.offset], dtype=np.float64)

    def get_avail_actions(self):
        return [[1, 1, 1], [1, 0, 0] if self.death_tracker_ally[1] else [1, 1, 0]]

    def close(self):
        self.closed = True


def test_conventions_on_the_stand_in() -> None:
    made: list[FakeStarCraft] = []

    def build(b: int) -> FakeStarCraft:
        made.append(FakeStarCraft(limit=4, win_at=3 if b == 1 else None, offset=10.0 * b))
        return made[-1]

    env = PymarlEnv(build, num_envs=2, seed=0)
    assert env.spec.n_agents == 2 and env.spec.max_actions == 3 and env.spec.episode_limit == 4
    step = env.reset()
    step.check(env.spec, 2)
    assert step.obs[1, 0].tolist() == [10.0, 0.5] and step.state[1].tolist() == [0.0, 1.0, 10.0]
    assert step.avail_actions[0].tolist() == [[True, True, True], [True, True, False]]
    step = env.step(torch.tensor([[1, 1], [2, 0]]))
    assert step.reward.tolist() == [2.0, 2.0] and not bool(step.done.any())
    assert step.info["active"].all()
    step = env.step(torch.tensor([[0, 1], [0, 1]]))  # agent 1 dies in this step
    assert step.info["active"].tolist() == [[True, False], [True, False]]
    assert step.avail_actions[:, 1].tolist() == [[True, False, False]] * 2 and not bool(step.obs[:, 1].any())
    with pytest.raises(ValueError, match="not available"):
        env.step(torch.tensor([[0, 1], [0, 0]]))
    step = env.step(torch.tensor([[2, 0], [1, 0]]))  # env 1 wins at t=3: terminated
    assert step.terminated.tolist() == [False, True] and step.truncated.tolist() == [False, False]
    assert step.info["battle_won"].tolist() == [False, True] and step.reward.tolist() == [2.0, 11.0]
    assert step.info["final_active"][1].tolist() == [True, False] and step.info["active"][1].tolist() == [True, True]
    assert step.info["final_obs"][1, 0, 0] == 13.0 and step.obs[1, 0, 0] == 10.0  # reset after the win
    assert made[1].episodes == 2 and made[0].episodes == 1
    step = env.step(torch.tensor([[0, 0], [0, 0]]))  # env 0 hits the time limit at t=4: truncated (bootstrap)
    assert step.truncated.tolist() == [True, False] and step.terminated.tolist() == [False, False]
    assert step.info["episode_length"].tolist() == [4, 1] and step.info["final_state"][0, 0] == 4.0
    env.close()
    assert all(m.closed for m in made)


def test_missing_packages_raise_with_the_git_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "smac", None)
    monkeypatch.setitem(sys.modules, "smac.env", None)
    with pytest.raises(SMACNotInstalled, match=r"pip install git\+https://github.com/oxwhirl/smac.git") as info:
        envs.make("smac/3m")
    assert isinstance(info.value, MissingExtraError) and isinstance(info.value, ImportError)
    assert "smac/3m" in str(info.value) and info.value.install_hint.startswith("pip install git+")
    monkeypatch.setitem(sys.modules, "smacv2", None)
    monkeypatch.setitem(sys.modules, "smacv2.env", None)
    with pytest.raises(SMACNotInstalled, match=r"git\+https://github.com/oxwhirl/smacv2.git"):
        envs.make("smacv2/protoss_5_vs_5")


def test_pypi_smac3_is_recognised(monkeypatch: pytest.MonkeyPatch) -> None:
    """`pip install smac` gives SMAC3 (hyperparameter optimisation): it has no smac.env."""
    fake = types.ModuleType("smac")
    fake.__path__ = []  # a package without the env subpackage
    monkeypatch.setitem(sys.modules, "smac", fake)
    monkeypatch.delitem(sys.modules, "smac.env", raising=False)
    with pytest.raises(SMACNotInstalled, match="SMAC3"):
        envs.make("smac/3m")


def test_names_and_smacv2_configs() -> None:
    names = set(envs.known_envs())
    assert {f"smac/{m}" for m in SMAC_MAPS} <= names and {f"smacv2/{s}" for s in SMACV2_SCENARIOS} <= names
    assert {"smac/3m", "smac/2s3z", "smac/MMM2", "smac/corridor"} <= names
    map_name, cfg = smacv2_capability_config("protoss_5_vs_5")  # smacv2 examples/configs/sc2_gen_protoss.yaml
    assert map_name == "10gen_protoss" and cfg["n_units"] == 5 and cfg["n_enemies"] == 5
    assert cfg["team_gen"] == {"dist_type": "weighted_teams", "unit_types": ["stalker", "zealot", "colossus"],
                               "weights": [0.45, 0.45, 0.1], "observe": True}
    assert cfg["start_positions"] == {"dist_type": "surrounded_and_reflect", "p": 0.5, "map_x": 32, "map_y": 32}
    map_name, cfg = smacv2_capability_config("zerg_20_vs_23")
    assert map_name == "10gen_zerg" and (cfg["n_units"], cfg["n_enemies"]) == (20, 23)
    assert cfg["team_gen"]["exception_unit_types"] == ["baneling"]
    with pytest.raises(ValueError, match="unknown SMACv2 scenario 'elf_5_vs_5'"):
        smacv2_capability_config("elf_5_vs_5")


# ------------------------------------------------------------------------------------------------------
# the real packages (need git installs and StarCraft II)
# ------------------------------------------------------------------------------------------------------
def _real(module: str) -> str:
    try:
        __import__(module)
    except ImportError as exc:
        return f"{module} is not installed ({exc}); pip install git+https://github.com/oxwhirl/{module.split('.')[0]}.git"
    if not os.environ.get("SC2PATH") and not os.path.isdir(os.path.expanduser("~/StarCraftII")):
        return "StarCraft II is not installed (no SC2PATH, no ~/StarCraftII)"
    return ""


WHY_SMAC, WHY_SMACV2 = _real("smac.env"), _real("smacv2.env")
for _why in (WHY_SMAC, WHY_SMACV2):
    if _why:
        print(f"SKIP real StarCraft tests: {_why}", file=sys.stderr)


@pytest.mark.slow
@pytest.mark.skipif(bool(WHY_SMAC), reason=WHY_SMAC or "-")
def test_real_smac_3m_steps() -> None:  # pragma: no cover - needs StarCraft II
    env = envs.make("smac/3m", num_envs=1, seed=0)
    step = env.reset()
    gen = torch.Generator().manual_seed(0)
    for _ in range(5):
        b, n, a = step.avail_actions.shape
        step = env.step(torch.multinomial(step.avail_actions.reshape(b * n, a).float(), 1, generator=gen).reshape(b, n))
        step.check(env.spec, 1)
    env.close()


@pytest.mark.slow
@pytest.mark.skipif(bool(WHY_SMACV2), reason=WHY_SMACV2 or "-")
def test_real_smacv2_protoss_steps() -> None:  # pragma: no cover - needs StarCraft II
    env = envs.make("smacv2/protoss_5_vs_5", num_envs=1, seed=0)
    step = env.reset()
    step.check(env.spec, 1)
    env.close()
