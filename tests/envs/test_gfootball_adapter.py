"""gfootball/*: the adapter conventions on an in-memory stand-in with gfootball's gym API (always run: observation
and state layout, team reward, terminated vs truncated, automatic reset, worker pool), the missing-package error,
and — only where gfootball is installed — the real academy scenarios."""

from __future__ import annotations

import functools
import sys

import numpy as np
import pytest
import torch

from seqmarl import envs
from seqmarl.envs import MissingExtraError
from seqmarl.envs.gfootball import GFOOTBALL_SCENARIOS, GFootballEnv, simple115_state


def raw_observation(t: int, n: int, seed: int) -> list[dict]:
    """A raw gfootball observation (``env.unwrapped.observation()``) with 3 left and 2 right players."""
    base = {"left_team": np.arange(6, dtype=np.float32).reshape(3, 2) + t, "left_team_direction": np.full((3, 2), 0.5),
            "right_team": -np.ones((2, 2)) * seed, "right_team_direction": np.zeros((2, 2)),
            "ball": np.array([0.1 * t, 0.2, 0.3]), "ball_direction": np.array([1.0, 2.0, 3.0]),
            "ball_owned_team": t % 3 - 1, "game_mode": t % 7}
    return [dict(base, active=(i + 1 if i < n - 1 else -1)) for i in range(n)]


class FakeFootball:
    """gfootball's gym API for ``n`` controlled players: the episode ends (``done``) at step ``score_at`` (a goal)
    or at ``duration``; reward ``[n]``, each player's entry equal (scoring)."""

    def __init__(self, seed: int, n: int = 3, score_at: int | None = None, duration: int = 5) -> None:
        self.seed, self.n, self.score_at, self.duration = seed, n, score_at, duration
        self.t = 0
        self.unwrapped = self

    def observation(self) -> list[dict]:
        return raw_observation(self.t, self.n, self.seed)

    def _obs(self) -> np.ndarray:
        return np.stack([np.full(115, self.t + 100 * i + 1000 * (self.seed % 7), dtype=np.float32) for i in range(self.n)])

    def reset(self):
        self.t = 0
        return self._obs()

    def step(self, actions):
        assert len(actions) == self.n and all(0 <= a < 19 for a in actions)
        self.t += 1
        goal = self.score_at is not None and self.t == self.score_at
        done = goal or self.t >= self.duration
        return self._obs(), np.full(self.n, 1.0 if goal else 0.0, dtype=np.float32), done, {}

    def close(self) -> None:
        pass


def make_fake(seed: int, score_at: int | None = 3) -> FakeFootball:
    return FakeFootball(seed, n=3, score_at=score_at if seed % 2 == 0 else None, duration=5)


def test_simple115_state_layout() -> None:
    raw = raw_observation(t=4, n=3, seed=2)
    s = simple115_state(raw)
    assert s.shape == (115 + 11 * 2,) and s.dtype == np.float32
    np.testing.assert_array_equal(s[:6], np.arange(6) + 4)  # left positions
    assert (s[6:22] == -1).all()  # 8 missing left players filled with -1
    assert (s[22:28] == 0.5).all() and (s[28:44] == -1).all()
    assert (s[44:48] == -2).all() and (s[48:66] == -1).all()  # right team positions (seed 2), padding
    assert (s[66:70] == 0).all() and (s[70:88] == -1).all()
    np.testing.assert_allclose(s[88:94], [0.4, 0.2, 0.3, 1.0, 2.0, 3.0])
    assert s[94:97].tolist() == [0, 1, 0]  # ball_owned_team = 4 % 3 - 1 = 0: left
    assert s[97:104].tolist() == [0, 0, 0, 0, 1, 0, 0]  # game_mode 4
    assert s[104:115].tolist() == [0, 1] + [0] * 9 and s[115:126].tolist() == [0, 0, 1] + [0] * 8
    assert not s[126:].any()  # the third player has no active index (-1)


def _mixed_seed() -> int:
    """A constructor seed whose two engine seeds differ in parity: one stand-in scores, the other runs out of time."""
    for seed in range(100):
        draws = torch.randint(0, 2**31 - 1, (2,), generator=torch.Generator().manual_seed(seed)).tolist()
        if draws[0] % 2 != draws[1] % 2:
            return seed
    raise AssertionError("no seed found")


def test_conventions_on_the_stand_in() -> None:
    env = GFootballEnv("academy_3_vs_1_with_keeper", num_envs=2, seed=_mixed_seed(), episode_limit=5,
                       create_fn=make_fake)
    assert env.spec.n_agents == 3 and env.spec.obs_dim == 115 and env.spec.state_dim == 137
    assert env.spec.max_actions == 19 and env.spec.episode_limit == 5
    step = env.reset()
    step.check(env.spec, 2)
    seeds = env._seeds.tolist()
    assert step.avail_actions.all()
    assert step.obs[1, 2, 0] == 200 + 1000 * (seeds[1] % 7)
    np.testing.assert_array_equal(step.state[0].numpy(), simple115_state(raw_observation(0, 3, seeds[0])))
    goal_env = 0 if seeds[0] % 2 == 0 else 1
    for t in range(1, 6):
        step = env.step(torch.zeros(2, 3, dtype=torch.int64))
        for b in range(2):
            if b == goal_env and t == 3:  # a goal before game_duration: terminated, reward 1
                assert step.terminated[b] and not step.truncated[b] and step.reward[b] == 1.0
                assert step.info["final_obs"][b, 0, 0] == 3 + 1000 * (seeds[b] % 7) and step.obs[b, 0, 0] == 1000 * (seeds[b] % 7)
            elif b != goal_env and t == 5:  # the scenario's duration: truncated
                assert step.truncated[b] and not step.terminated[b]
                np.testing.assert_array_equal(step.info["final_state"][b].numpy(), simple115_state(raw_observation(5, 3, seeds[b])))
            else:
                assert not step.done[b] and step.reward[b] == 0.0
    with pytest.raises(ValueError, match="out of range"):
        env.step(torch.full((2, 3), 19))
    env.close()


# fork is needed for a test-local create_fn (spawn re-imports it by name); the forked children run only the numpy
# stand-in, never jax, so jax's warning about forking a multithreaded process does not apply to them
@pytest.mark.filterwarnings("ignore:os.fork\\(\\) was called:RuntimeWarning")
def test_worker_pool_gives_the_same_steps() -> None:
    """The stand-in through two fork-started workers (a test-local create_fn cannot be re-imported by spawn)."""
    def run(workers: int) -> list[torch.Tensor]:
        env = GFootballEnv("academy_3_vs_1_with_keeper", num_envs=3, seed=1, episode_limit=5, create_fn=make_fake,
                           workers=workers, start_method="fork")
        out = [env.reset().obs]
        for _ in range(7):
            s = env.step(torch.ones(3, 3, dtype=torch.int64))
            out += [s.obs, s.state, s.reward, s.terminated, s.truncated]
        env.close()
        return out

    for a, b in zip(run(0), run(2)):
        assert torch.equal(a, b)


def test_names_and_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    assert {f"gfootball/{s}" for s in GFOOTBALL_SCENARIOS} <= set(envs.known_envs())
    assert "gfootball/academy_3_vs_1_with_keeper" in envs.known_envs()
    with pytest.raises(ValueError, match=r"unknown gfootball scenario 'academy_nope'"):
        GFootballEnv("academy_nope", create_fn=make_fake)
    monkeypatch.setitem(sys.modules, "gfootball", None)
    monkeypatch.setitem(sys.modules, "gfootball.env", None)
    with pytest.raises(MissingExtraError, match=r"pip install seqmarl\[gfootball\]"):
        envs.make("gfootball/academy_corner")


try:
    import gfootball.env  # noqa: F401

    HAVE, WHY = True, ""
except ImportError as exc:
    HAVE, WHY = False, f"gfootball is not installed ({exc}); pip install seqmarl[gfootball] (compiles its engine)"
    print(f"SKIP real gfootball tests: {WHY}", file=sys.stderr)


@pytest.mark.slow
@pytest.mark.skipif(not HAVE, reason=WHY)
def test_real_academy_3_vs_1() -> None:  # pragma: no cover - needs the compiled engine
    env = envs.make("gfootball/academy_3_vs_1_with_keeper", num_envs=2, seed=0)
    step = env.reset()
    step.check(env.spec, 2)
    gen = torch.Generator().manual_seed(0)
    for _ in range(10):
        step = env.step(torch.randint(0, 19, (2, 3), generator=gen))
        step.check(env.spec, 2)
    env.close()


@pytest.mark.skipif(not HAVE, reason=WHY)
def test_real_package_differential() -> None:  # pragma: no cover - needs the compiled engine
    """The adapter against the package stepped directly (same engine seed, same actions): observations, state,
    rewards and episode ends agree at every step until the episode ends, and the final observation is the
    package's last one."""
    from seqmarl.envs.gfootball import create_gfootball, simple115_state

    scenario, n = "academy_3_vs_1_with_keeper", 3
    env = envs.make(f"gfootball/{scenario}", num_envs=1, seed=0)
    try:
        step = env.reset()
        raw = create_gfootball(scenario, n, "scoring", int(env._seeds[0]))
        obs = np.asarray(raw.reset(), dtype=np.float32).reshape(n, -1)
        np.testing.assert_array_equal(step.obs[0].numpy(), obs)
        np.testing.assert_array_equal(step.state[0].numpy(), simple115_state(raw.unwrapped.observation()))
        gen = torch.Generator().manual_seed(0)
        for _ in range(env.spec.episode_limit):
            actions = torch.randint(0, 19, (1, n), generator=gen)
            step = env.step(actions)
            obs, reward, done, _ = raw.step([int(a) for a in actions[0]])
            obs = np.asarray(obs, dtype=np.float32).reshape(n, -1)
            assert float(step.reward[0]) == float(np.asarray(reward).reshape(-1)[0])
            assert bool(step.terminated[0] | step.truncated[0]) == bool(done)
            if done:
                np.testing.assert_array_equal(step.info["final_obs"][0].numpy(), obs)
                break
            np.testing.assert_array_equal(step.obs[0].numpy(), obs)
            np.testing.assert_array_equal(step.state[0].numpy(), simple115_state(raw.unwrapped.observation()))
        assert done, "the academy episode ends before the limit (a lost ball or a goal)"
        raw.close()
    finally:
        env.close()
