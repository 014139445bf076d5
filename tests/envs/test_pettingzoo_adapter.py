"""The generic PettingZoo ``ParallelEnv`` adapter (seqmarl.envs.pettingzoo) against small ParallelEnvs stepped directly.

The toy environments below exercise what MPE does not: agents that die before the others, action masks (in
``info`` and in ``Dict`` observations), heterogeneous observation sizes and action counts, no ``state()``, a
``Discrete`` observation, continuous actions of different widths, termination vs truncation at the episode's end.
Each behaviour is compared with a reference instance stepped with the same seed and actions.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest
import torch

pytest.importorskip("pettingzoo", reason="the pettingzoo package is not installed (pip install seqmarl[pettingzoo]); "
                    "the PettingZoo adapter tests need it")

from gymnasium import spaces  # noqa: E402
from pettingzoo import ParallelEnv  # noqa: E402

from seqmarl.envs import MultiAgentEnv, PettingZooEnv, make_pettingzoo  # noqa: E402


class Relay(ParallelEnv):
    """Three agents with observation sizes 2, 3, 4 and 3, 4, 2 actions. ``runner`` dies (terminated) after
    ``die_at`` steps; the episode is truncated at ``max_cycles`` (or terminated for everybody at ``all_end`` if
    set). Masks in ``info``: action ``k`` is available iff ``(step + k) % 3 != 2`` (action 0 always). Reward of
    agent i: ``(i + 1) * action + 0.5 * noise``. Actions of dead agents must not be sent."""

    metadata = {"name": "relay_v0"}

    def __init__(self, max_cycles: int = 5, die_at: int = 2, all_end: int | None = None) -> None:
        self.possible_agents = ["lead", "runner", "tail"]
        self._obs_dims = {"lead": 2, "runner": 3, "tail": 4}
        self._n_actions = {"lead": 3, "runner": 4, "tail": 2}
        self.max_cycles, self.die_at, self.all_end = max_cycles, die_at, all_end
        self.np_random = np.random.default_rng()
        self.agents: list[str] = []

    def observation_space(self, agent: str) -> spaces.Space:
        return spaces.Box(-np.inf, np.inf, (self._obs_dims[agent],), np.float32)

    def action_space(self, agent: str) -> spaces.Space:
        return spaces.Discrete(self._n_actions[agent])

    def _obs(self, agent: str) -> np.ndarray:
        return (self.np_random.standard_normal(self._obs_dims[agent]) + self.t).astype(np.float32)

    def _info(self, agent: str) -> dict:
        k = np.arange(self._n_actions[agent])
        return {"action_mask": ((self.t + k) % 3 != 2) | (k == 0)}

    def reset(self, seed: int | None = None, options: dict | None = None) -> tuple[dict, dict]:
        if seed is not None:
            self.np_random = np.random.default_rng(seed)
        self.t = 0
        self.agents = list(self.possible_agents)
        return {a: self._obs(a) for a in self.agents}, {a: self._info(a) for a in self.agents}

    def step(self, actions: dict) -> tuple[dict, dict, dict, dict, dict]:
        assert set(actions) == set(self.agents), f"actions for {sorted(actions)} but live agents are {self.agents}"
        for a, act in actions.items():
            assert self._info(a)["action_mask"][act], f"{a} took a masked action {act}"
        self.t += 1
        obs = {a: self._obs(a) for a in self.agents}
        rew = {a: float((i + 1) * actions[a] + 0.5 * self.np_random.random())
               for i, a in enumerate(self.possible_agents) if a in self.agents}
        term = {a: False for a in self.agents}
        trunc = {a: False for a in self.agents}
        if "runner" in self.agents and self.t >= self.die_at:
            term["runner"] = True
        if self.all_end is not None and self.t >= self.all_end:
            term = {a: True for a in self.agents}
        elif self.t >= self.max_cycles:
            trunc = {a: True for a in self.agents}
        infos = {a: self._info(a) for a in self.agents}
        self.agents = [a for a in self.agents if not (term[a] or trunc[a])]
        return obs, rew, term, trunc, infos


class DictObs(ParallelEnv):
    """Two agents whose observation is ``{"observation": Discrete(4), "action_mask": ...}`` (masks in the
    observation, as PettingZoo's classic games); a ``state()``; never ends by itself (no declared limit)."""

    metadata = {"name": "dict_obs_v0"}

    def __init__(self) -> None:
        self.possible_agents = ["a", "b"]
        self.agents: list[str] = []
        self.np_random = np.random.default_rng()

    def observation_space(self, agent: str) -> spaces.Space:
        return spaces.Dict({"observation": spaces.Discrete(4), "action_mask": spaces.MultiBinary(3)})

    def action_space(self, agent: str) -> spaces.Space:
        return spaces.Discrete(3, start=1)

    def _obs(self) -> dict:
        return {a: {"observation": int(self.pos[i]), "action_mask": np.array([1, int(self.pos[i] % 2), 1], np.int8)}
                for i, a in enumerate(self.possible_agents)}

    def state(self) -> np.ndarray:
        return np.array([self.pos[0], self.pos[1], self.pos.sum()], dtype=np.float32)

    def reset(self, seed: int | None = None, options: dict | None = None) -> tuple[dict, dict]:
        if seed is not None:
            self.np_random = np.random.default_rng(seed)
        self.agents = list(self.possible_agents)
        self.pos = self.np_random.integers(0, 4, 2)
        return self._obs(), {a: {} for a in self.agents}

    def step(self, actions: dict) -> tuple[dict, dict, dict, dict, dict]:
        for i, a in enumerate(self.possible_agents):
            assert actions[a] in (1, 2, 3), "Discrete(start=1) actions are 1..3"
            self.pos[i] = (self.pos[i] + actions[a]) % 4
        rew = {a: float(self.pos.sum()) for a in self.agents}
        no = {a: False for a in self.agents}
        return self._obs(), rew, no, dict(no), {a: {} for a in self.agents}


class Boxes(ParallelEnv):
    """Two continuous agents with Box actions of widths 2 and 3 and different bounds; terminates when the sum of
    all actions exceeds ``threshold``; ``max_steps = 4``."""

    metadata = {"name": "boxes_v0"}
    max_steps = 4

    def __init__(self, threshold: float = 3.0) -> None:
        self.possible_agents = ["x", "y"]
        self.agents: list[str] = []
        self.threshold = threshold
        self.received: list[dict] = []

    def observation_space(self, agent: str) -> spaces.Space:
        return spaces.Box(-1, 1, (1, 2), np.float32)

    def action_space(self, agent: str) -> spaces.Space:
        return spaces.Box(-1, 1, (2,), np.float32) if agent == "x" else spaces.Box(0, 2, (3,), np.float32)

    def reset(self, seed: int | None = None, options: dict | None = None) -> tuple[dict, dict]:
        self.agents, self.t = list(self.possible_agents), 0
        return {a: np.zeros((1, 2), np.float32) for a in self.agents}, {}

    def step(self, actions: dict) -> tuple[dict, dict, dict, dict, dict]:
        self.received.append({k: np.array(v) for k, v in actions.items()})
        self.t += 1
        total = float(sum(np.sum(v) for v in actions.values()))
        obs = {a: np.full((1, 2), self.t / 10, np.float32) for a in self.agents}
        done = total > self.threshold
        term = {a: done for a in self.agents}
        trunc = {a: (not done) and self.t >= self.max_steps for a in self.agents}
        rew = {a: total for a in self.agents}
        self.agents = [a for a in self.agents if not (term[a] or trunc[a])]
        return obs, rew, term, trunc, {}


def _valid_actions(step, rng: np.random.Generator) -> torch.Tensor:
    avail = step.avail_actions.numpy()
    out = np.zeros(avail.shape[:2], dtype=np.int64)
    for b in range(avail.shape[0]):
        for i in range(avail.shape[1]):
            out[b, i] = rng.choice(np.flatnonzero(avail[b, i]))
    return torch.from_numpy(out)


def _padded(obs: dict, agents: tuple[str, ...], width: int) -> torch.Tensor:
    out = torch.zeros(len(agents), width)
    for i, a in enumerate(agents):
        if a in obs:
            v = torch.from_numpy(np.asarray(obs[a], np.float32).reshape(-1))
            out[i, : v.numel()] = v
    return out


def test_relay_matches_reference_with_dead_agent_and_masks() -> None:
    env = make_pettingzoo(Relay, num_envs=2, seed=40)
    assert isinstance(env, MultiAgentEnv) and env.name == "relay_v0"
    assert env.agents == ("lead", "runner", "tail") and env.agent_obs_dims == (2, 3, 4)
    assert env.spec.obs_dim == 4 and env.spec.state_dim == 9 and env.spec.n_actions == (3, 4, 2)
    assert env.spec.episode_limit == 5 and env.state_mode == "concat"
    refs = [Relay() for _ in range(2)]
    ref_out = [ref.reset(seed=40 + b) for b, ref in enumerate(refs)]
    step = env.reset()
    rng = np.random.default_rng(0)
    seen_dead = seen_end = 0
    for t in range(12):
        for b, ref in enumerate(refs):
            obs, infos = ref_out[b][0], ref_out[b][-1]
            assert torch.equal(step.obs[b], _padded(obs, env.agents, 4)), f"t={t} b={b}"
            state = torch.cat([step.obs[b, i, :d] for i, d in enumerate(env.agent_obs_dims)])
            assert torch.equal(step.state[b], state)  # no state(): concatenated unpadded observations
            for i, a in enumerate(env.agents):
                if a in ref.agents:
                    mask = torch.zeros(4, dtype=torch.bool)
                    mask[: env.spec.n_actions[i]] = torch.from_numpy(infos[a]["action_mask"])
                    assert torch.equal(step.avail_actions[b, i], mask)
                else:  # dead: zero observation, only action 0, inactive
                    assert step.avail_actions[b, i].tolist() == [True, False, False, False]
                    assert bool((step.obs[b, i] == 0).all()) and not bool(env.active[b, i])
                    seen_dead += 1
        actions = _valid_actions(step, rng)
        step = env.step(actions)
        for b, ref in enumerate(refs):
            live = list(ref.agents)
            obs, rew, term, trunc, infos = ref.step({a: int(actions[b, i]) for i, a in enumerate(env.agents) if a in live})
            expected_rewards = torch.tensor([rew.get(a, 0.0) for a in env.agents], dtype=torch.float32)
            assert torch.equal(step.info["agent_rewards"][b], expected_rewards)
            assert step.reward[b].item() == pytest.approx(expected_rewards.sum().item(), rel=1e-6)
            ended = not ref.agents
            if not ended:  # an agent that died while others go on observes zeros from this step on
                obs = {a: v for a, v in obs.items() if a in ref.agents}
            assert torch.equal(step.info["final_obs"][b], _padded(obs, env.agents, 4))
            assert bool(step.done[b]) == ended
            if ended:  # runner terminated earlier, the others were truncated: the episode is truncated
                seen_end += 1
                assert bool(step.truncated[b]) and not bool(step.terminated[b])
                assert int(step.info["episode_length"][b]) == 5
                assert not bool(step.info["final_active"][b].any()) and bool(step.info["active"][b].all())
                ref_out[b] = ref.reset()
            else:
                ref_out[b] = (obs, infos)
                assert step.info["active"][b].tolist() == [a in ref.agents for a in env.agents]
    assert seen_dead > 0 and seen_end == 4


def test_all_agents_terminating_is_terminated() -> None:
    env = make_pettingzoo(functools.partial(Relay, max_cycles=9, die_at=1, all_end=3), num_envs=1, seed=0)
    step = env.reset()
    rng = np.random.default_rng(1)
    flags = []
    for _ in range(3):
        step = env.step(_valid_actions(step, rng))
        flags.append((bool(step.terminated[0]), bool(step.truncated[0])))
    assert flags == [(False, False), (False, False), (True, False)]
    assert env.elapsed.tolist() == [0]


def test_one_termination_among_truncations_in_the_last_step_is_terminated() -> None:
    env = make_pettingzoo(functools.partial(Relay, max_cycles=3, die_at=3), num_envs=1, seed=0)
    step = env.reset()
    rng = np.random.default_rng(3)
    for _ in range(3):
        step = env.step(_valid_actions(step, rng))
    assert step.terminated.tolist() == [True] and step.truncated.tolist() == [False]


def test_adapter_episode_limit_shorter_than_the_env() -> None:
    env = make_pettingzoo(Relay, num_envs=1, seed=0, episode_limit=3, reward_reduction="mean")
    step = env.reset()
    rng = np.random.default_rng(2)
    for t in range(3):
        step = env.step(_valid_actions(step, rng))
        assert torch.allclose(step.reward, step.info["agent_rewards"].sum(1) / 3)
    assert step.truncated.tolist() == [True] and env.elapsed.tolist() == [0]
    assert bool(env.active.all())  # the instance itself was reset


def test_dict_observations_masks_discrete_start_and_state() -> None:
    env = make_pettingzoo(DictObs, num_envs=3, seed=9, episode_limit=4)
    assert env.agent_obs_dims == (4, 4) and env.state_mode == "env" and env.spec.state_dim == 3
    ref = DictObs()
    ref_obs, _ = ref.reset(seed=9 + 2)
    step = env.reset()
    for t in range(6):
        pos = ref.pos.copy()
        assert torch.equal(step.obs[2], torch.from_numpy(np.eye(4, dtype=np.float32)[pos]))  # one-hot Discrete
        assert torch.equal(step.state[2], torch.from_numpy(ref.state()))
        assert step.avail_actions[2].tolist() == [[True, bool(p % 2), True] for p in pos]
        actions = _valid_actions(step, np.random.default_rng(t))
        step = env.step(actions)
        ref.step({a: int(actions[2, i]) + 1 for i, a in enumerate(ref.possible_agents)})
        if t == 3:
            assert bool(step.truncated.all())
            ref.reset()


def test_continuous_boxes_flatten_pad_and_terminate() -> None:
    env = make_pettingzoo(Boxes, num_envs=2, seed=0)
    assert not env.spec.is_discrete and env.spec.act_dim == 3 and env.agent_obs_dims == (2, 2)
    assert env.spec.episode_limit == 4
    env.reset()
    actions = torch.tensor([[[-1.0, 0.5, 0.0], [0.0, 1.0, 0.5]],   # sum 1.0: goes on
                            [[1.0, 1.0, 0.0], [2.0, 1.0, 0.0]]])   # sum 5.0 > 3: terminates
    step = env.step(actions)
    assert step.terminated.tolist() == [False, True] and step.truncated.tolist() == [False, False]
    sent = env.instances[0].received[0]
    assert sent["x"].shape == (2,) and sent["x"].dtype == np.float32 and sent["x"].tolist() == [-1.0, 0.5]
    assert sent["y"].tolist() == [0.0, 1.0, 0.5]  # padding column of x was not sent
    assert step.reward.tolist() == [2.0, 10.0]  # sum of two agents' identical rewards
    strict = make_pettingzoo(Boxes, num_envs=2, seed=0, clip_actions=False)
    strict.reset()
    with pytest.raises(ValueError, match="outside agent 1's box"):
        strict.step(torch.tensor([[[0.0, 0.0, 0.0], [-0.5, 0.0, 0.0]]] * 2))
    for _ in range(3):
        step = env.step(torch.zeros(2, 2, 3))
    assert step.truncated.tolist() == [True, False]


def test_seeding_reset_seed_and_determinism() -> None:
    a = make_pettingzoo(Relay, num_envs=3, seed=100)
    b = make_pettingzoo(Relay, num_envs=3, seed=100)
    sa, sb = a.reset(), b.reset()
    assert torch.equal(sa.obs, sb.obs)
    ref = Relay()
    obs, _ = ref.reset(seed=102)
    assert torch.equal(sa.obs[2], _padded(obs, a.agents, 4))
    again = a.reset(seed=7)
    obs, _ = ref.reset(seed=8)
    assert torch.equal(again.obs[1], _padded(obs, a.agents, 4))
    unseeded = make_pettingzoo(Relay, num_envs=2)
    unseeded.reset()  # a base seed is drawn from the generator
    cont = a.reset()  # reset(None) continues each instance's stream: not the seed-7 start
    assert not torch.equal(cont.obs, again.obs)


def test_errors_name_the_argument() -> None:
    from pettingzoo.utils.conversions import parallel_to_aec

    with pytest.raises(TypeError, match="env_fn must be a callable"):
        PettingZooEnv(Relay())  # an instance, not a factory
    with pytest.raises(TypeError, match="AEC environment"):
        make_pettingzoo(lambda: parallel_to_aec(Relay()))
    with pytest.raises(ValueError, match="episode_limit"):
        make_pettingzoo(DictObs)  # declares no limit
    with pytest.raises(ValueError, match="reward_reduction"):
        make_pettingzoo(Relay, reward_reduction="max")
    with pytest.raises(ValueError, match="state='env'"):
        make_pettingzoo(Relay, state="env")
    with pytest.raises(TypeError, match="step_fn must be a callable"):
        make_pettingzoo(Relay, step_fn="fast")
    with pytest.raises(ValueError, match="workers must be an integer >= 0"):
        make_pettingzoo(Relay, workers=1.5)

    class Mixed(Relay):
        def action_space(self, agent: str) -> spaces.Space:
            return spaces.Box(0, 1, (2,)) if agent == "lead" else super().action_space(agent)

    with pytest.raises(TypeError, match="mixes discrete and continuous"):
        make_pettingzoo(Mixed)

    class Multi(Relay):
        def action_space(self, agent: str) -> spaces.Space:
            return spaces.MultiDiscrete([2, 2])

    with pytest.raises(TypeError, match="agent 'lead'.*Discrete and Box"):
        make_pettingzoo(Multi)


def test_real_mpe2_env_through_make_pettingzoo() -> None:
    pytest.importorskip("mpe2", reason="mpe2 is not installed (pip install seqmarl[mpe])")
    from mpe2 import simple_spread_v3

    env = make_pettingzoo(functools.partial(simple_spread_v3.parallel_env, N=2, max_cycles=3), num_envs=2, seed=0)
    assert env.spec.n_agents == 2 and env.spec.episode_limit == 3 and env.state_mode == "env"
    step = env.reset()
    for _ in range(3):
        step = env.step(torch.zeros(2, 2, dtype=torch.int64))
    assert step.truncated.tolist() == [True, True]
