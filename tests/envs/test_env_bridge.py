"""Bridge grid (theory.md §3.1): hand-scripted episodes, every collision rule, masks, auto-reset."""

from __future__ import annotations

import math

import pytest
import torch

from seqmarl.envs import BridgeEnv

STAY, LEFT, RIGHT, UP, DOWN = range(5)
GOAL = ((2, 5), (0, 0))


def dist(p: tuple[int, int], g: tuple[int, int]) -> float:
    return math.hypot(p[0] - g[0], p[1] - g[1])


def expected_reward(p0: tuple[int, int], p1: tuple[int, int]) -> float:
    return -0.01 * (dist(p0, GOAL[0]) + dist(p1, GOAL[1])) / 2


def act(*pairs: tuple[int, int]) -> torch.Tensor:
    return torch.tensor(pairs, dtype=torch.int64)


def test_reset_layout_shapes_and_observation():
    env = BridgeEnv(num_envs=3, seed=0)
    step = env.reset()
    step.check(env.spec, 3)
    assert env.spec.obs_dim == 6 and env.spec.state_dim == 8 and env.spec.n_actions == (5, 5)
    assert env.spec.episode_limit == 30
    assert env.positions.tolist() == [[[0, 0], [2, 5]]] * 3
    assert env.goals.tolist() == [[2, 5], [0, 0]]
    # normalised by (row/2, col/5): agent 0 at (0,0) sees the other at (2,5) = (1,1) and goal (1,1)
    assert step.obs[0].tolist() == [[0, 0, 1, 1, 1, 1], [1, 1, 0, 0, 0, 0]]
    assert step.state[0].tolist() == [0, 0, 1, 1, 1, 1, 0, 0]
    assert bool(step.avail_actions.all())
    blocked = [(r, c) for r in range(3) for c in range(6) if not env.is_open(r, c)]
    assert blocked == [(0, 2), (0, 3), (2, 2), (2, 3)]


def test_agent_id_observation():
    env = BridgeEnv(num_envs=2, agent_id=True)
    step = env.reset(seed=0)
    assert env.spec.obs_dim == 8
    assert step.obs[1, 0, 6:].tolist() == [1.0, 0.0] and step.obs[1, 1, 6:].tolist() == [0.0, 1.0]
    with pytest.raises(TypeError, match="agent_id must be a bool"):
        BridgeEnv(agent_id=1)  # type: ignore[arg-type]


# agent 0 crosses first while agent 1 waits at its start, then agent 1 follows agent 0 out of the bridge
SCRIPT = [(RIGHT, STAY), (DOWN, STAY), (RIGHT, STAY), (RIGHT, STAY), (RIGHT, UP), (DOWN, LEFT), (RIGHT, LEFT),
          (STAY, LEFT), (STAY, LEFT), (STAY, LEFT), (STAY, UP)]
PATH0 = [(0, 1), (1, 1), (1, 2), (1, 3), (1, 4), (2, 4), (2, 5), (2, 5), (2, 5), (2, 5), (2, 5)]
PATH1 = [(2, 5), (2, 5), (2, 5), (2, 5), (1, 5), (1, 4), (1, 3), (1, 2), (1, 1), (1, 0), (0, 0)]


def test_scripted_crossing_reaches_both_goals_with_hand_computed_return():
    env = BridgeEnv(num_envs=1, seed=0)
    env.reset()
    total = 0.0
    for t, (a0, a1) in enumerate(SCRIPT):
        step = env.step(act((a0, a1)))
        total += step.reward.item()
        if t < len(SCRIPT) - 1:
            assert env.positions[0].tolist() == [list(PATH0[t]), list(PATH1[t])]
            assert step.reward.item() == pytest.approx(expected_reward(PATH0[t], PATH1[t]), abs=1e-7)
            assert not step.done.item()
        if t == 6:  # agent 0 is done: only 'stay' remains available to it
            assert env.agents_done[0].tolist() == [True, False]
            assert step.avail_actions[0, 0].tolist() == [True, False, False, False, False]
            assert bool(step.avail_actions[0, 1].all())
    # distances, by hand: agent 0: sqrt20, sqrt17, sqrt10, sqrt5, sqrt2, 1, then 0;
    # agent 1: 4 x sqrt29, sqrt26, sqrt17, sqrt10, sqrt5, sqrt2, 1, 0
    s = math.sqrt
    d0 = s(20) + s(17) + s(10) + s(5) + s(2) + 1
    d1 = 4 * s(29) + s(26) + s(17) + s(10) + s(5) + s(2) + 1
    assert total == pytest.approx(-0.01 * (d0 + d1) / 2, abs=1e-6)
    assert (step.terminated.item(), step.truncated.item()) == (True, False)
    assert step.reward.item() == 0.0
    assert step.info["episode_length"].item() == 11
    assert step.info["episode_return"].item() == pytest.approx(total, abs=1e-6)
    # final_state shows both agents at their goals; obs/state are already the fresh episode
    assert step.info["final_state"][0].tolist() == [1, 1, 0, 0, 1, 1, 0, 0]
    assert step.state[0].tolist() == [0, 0, 1, 1, 1, 1, 0, 0]
    assert env.positions[0].tolist() == [[0, 0], [2, 5]] and env.agents_done[0].tolist() == [False, False]


def test_both_rushing_the_bridge_deadlocks_until_truncation():
    env = BridgeEnv(num_envs=1, seed=0)
    env.reset()
    rush = [(DOWN, UP), (RIGHT, LEFT), (RIGHT, LEFT), (RIGHT, LEFT)]
    for a in rush:
        step = env.step(act(a))
    assert env.positions[0].tolist() == [[1, 2], [1, 3]]  # the 4th step was a swap: both sent back
    for t in range(len(rush) + 1, 31):
        step = env.step(act((RIGHT, LEFT)))
        assert step.done.item() == (t == 30)
    assert (step.terminated.item(), step.truncated.item()) == (False, True)
    assert torch.equal(step.info["final_state"][0, :4], torch.tensor([1 / 2, 2 / 5, 1 / 2, 3 / 5]))


def test_truncation_when_everyone_waits():
    env = BridgeEnv(num_envs=2, episode_limit=30, seed=0)
    env.reset()
    total = torch.zeros(2)
    for t in range(1, 31):
        step = env.step(torch.zeros(2, 2, dtype=torch.int64))
        total += step.reward
        assert step.truncated.tolist() == [t == 30] * 2 and not bool(step.terminated.any())
    assert torch.allclose(total, torch.full((2,), -0.3 * math.sqrt(29)), atol=1e-5)


# (pos0, pos1, act0, act1) -> (new0, new1, done0, done1)
COLLISIONS = {
    "same empty cell: both sent back": (((1, 1), (1, 3), RIGHT, LEFT), ((1, 1), (1, 3), False, False)),
    "mover into a stayer: mover sent back": (((1, 1), (1, 2), RIGHT, STAY), ((1, 1), (1, 2), False, False)),
    "stayer hit from the other side": (((1, 2), (1, 3), STAY, LEFT), ((1, 2), (1, 3), False, False)),
    "swap: both sent back": (((1, 1), (1, 2), RIGHT, LEFT), ((1, 1), (1, 2), False, False)),
    "following is allowed": (((1, 1), (1, 2), RIGHT, RIGHT), ((1, 2), (1, 3), False, False)),
    "following a blocked leader fails": (((1, 1), (1, 2), RIGHT, UP), ((1, 1), (1, 2), False, False)),
    "walls": (((0, 1), (2, 4), RIGHT, LEFT), ((0, 1), (2, 4), False, False)),
    "grid edges": (((0, 0), (2, 5), UP, DOWN), ((0, 0), (2, 5), False, False)),
    "free moves": (((0, 0), (2, 5), DOWN, UP), ((1, 0), (1, 5), False, False)),
    "own goal beats a stayer": (((1, 5), (2, 5), DOWN, STAY), ((2, 5), (2, 5), True, False)),
    "own goal beats a swap": (((1, 5), (2, 5), DOWN, UP), ((2, 5), (1, 5), True, False)),
    "own goal beats a same-cell mover": (((1, 5), (2, 4), DOWN, RIGHT), ((2, 5), (2, 5), True, False)),
    "agent 1 reaches its goal": (((0, 1), (1, 0), STAY, UP), ((0, 1), (0, 0), False, True)),
}


def test_collision_rules_vectorised():
    cases = list(COLLISIONS.values())
    env = BridgeEnv(num_envs=len(cases), seed=0)
    env.reset()
    env.set_positions(torch.tensor([[p0, p1] for (p0, p1, _, _), _ in cases]))
    step = env.step(torch.tensor([[a0, a1] for (_, _, a0, a1), _ in cases]))
    for k, (name, (_, (n0, n1, d0, d1))) in enumerate(COLLISIONS.items()):
        final = step.info["final_state"][k, :4].reshape(2, 2) * torch.tensor([2.0, 5.0])
        assert final.round().to(torch.int64).tolist() == [list(n0), list(n1)], name
        assert step.reward[k].item() == pytest.approx(expected_reward(n0, n1), abs=1e-7), name
        if not (d0 and d1):
            assert env.positions[k].tolist() == [list(n0), list(n1)], name
            assert env.agents_done[k].tolist() == [d0, d1], name


def test_done_agent_is_stay_only_ignored_and_not_an_obstacle():
    env = BridgeEnv(num_envs=1, seed=0)
    env.reset()
    step = env.set_positions(torch.tensor([[[2, 5], [2, 4]]]))
    assert env.agents_done[0].tolist() == [True, False]
    assert step.avail_actions[0].tolist() == [[True, False, False, False, False], [True] * 5]
    with pytest.raises(ValueError, match=r"actions\[0, 0\] = 1 is not available"):
        env.step(act((LEFT, RIGHT)))
    step = env.step(act((STAY, RIGHT)))  # agent 1 walks onto the done agent's cell
    assert env.positions[0].tolist() == [[2, 5], [2, 5]]
    assert step.reward.item() == pytest.approx(expected_reward((2, 5), (2, 5)), abs=1e-7)
    # unchecked actions of a done agent are ignored
    unchecked = BridgeEnv(num_envs=1, seed=0, check_actions=False)
    unchecked.reset()
    unchecked.set_positions(torch.tensor([[[2, 5], [1, 1]]]))
    unchecked.step(act((LEFT, STAY)))
    assert unchecked.positions[0].tolist() == [[2, 5], [1, 1]]


def test_envs_end_at_different_times_and_reset_independently():
    env = BridgeEnv(num_envs=2, seed=0)
    env.reset()
    for t in range(1, 31):
        scripted = SCRIPT[t - 1] if t <= len(SCRIPT) else (STAY, STAY)
        step = env.step(act(scripted, (STAY, STAY)))
        assert step.terminated.tolist() == [t == 11, False]
        assert step.truncated.tolist() == [False, t == 30]
        assert step.info["episode_length"].tolist() == [t if t <= 11 else t - 11, t]
    assert env.elapsed.tolist() == [19, 0]


def test_random_play_invariants():
    env = BridgeEnv(num_envs=256, seed=0)
    step = env.reset()
    gen = torch.Generator().manual_seed(0)
    scale = torch.tensor([2.0, 5.0])
    goal = torch.tensor([[2, 5], [0, 0]])
    blocked = torch.tensor([[not env.is_open(r, c) for c in range(6)] for r in range(3)])
    for _ in range(80):
        actions = torch.multinomial(step.avail_actions.reshape(-1, 5).float(), 1, generator=gen).reshape(256, 2)
        step = env.step(actions)
        pos = (step.info["final_state"][:, :4].reshape(256, 2, 2) * scale).round().to(torch.int64)
        assert not bool(blocked[pos[..., 0], pos[..., 1]].any())
        done = (pos == goal).all(-1)
        assert not bool(((pos[:, 0] == pos[:, 1]).all(-1) & ~done.any(-1)).any())
        d = (pos - goal).float().norm(dim=-1).mean(-1)
        assert torch.allclose(step.reward, -0.01 * d, atol=1e-7)
        assert torch.equal(step.terminated, done.all(-1))
        assert bool((step.info["episode_length"] <= 30).all())


def test_set_positions_validation():
    env = BridgeEnv(num_envs=1)
    with pytest.raises(RuntimeError, match="reset"):
        env.set_positions(torch.tensor([[[0, 0], [2, 5]]]))
    env.reset(seed=0)
    with pytest.raises(ValueError, match="open cells"):
        env.set_positions(torch.tensor([[[0, 2], [2, 5]]]))
    with pytest.raises(ValueError, match="open cells"):
        env.set_positions(torch.tensor([[[3, 0], [2, 5]]]))
    with pytest.raises(ValueError, match="different cells"):
        env.set_positions(torch.tensor([[[1, 1], [1, 1]]]))
    with pytest.raises(ValueError, match="shape"):
        env.set_positions(torch.tensor([[0, 0], [2, 5]]))
    with pytest.raises(TypeError, match="integer tensor"):
        env.set_positions(torch.tensor([[[0.0, 0.0], [2.0, 5.0]]]))
    with pytest.raises(ValueError, match="episode_limit must be >= 1"):
        BridgeEnv(episode_limit=0)
