"""Episode replay for the off-policy (value-decomposition) learners, and the collector that fills it.

:class:`EpisodeReplayBuffer` stores whole episodes padded to the env's ``episode_limit`` ``T`` (PyMARL
``EpisodeBatch``/``ReplayBuffer``): ``obs [C, T+1, n, d]``, ``state [C, T+1, S]``, ``avail [C, T+1, n, A]`` — index
``L`` of an episode of length ``L`` holds what the last transition reached (the final observation of a truncated
episode, needed to bootstrap it) — and ``actions [C, T, n]``, ``reward [C, T]``, ``terminated [C, T]``,
``mask [C, T]`` (the valid steps, a prefix). It is a ring of ``C`` episodes; :meth:`sample` draws episodes uniformly
without replacement and trims the time axis to the longest sampled episode.

:class:`EpisodeCollector` steps an auto-resetting batched env (every env runs its own episodes; no env waits for
another), writes each step into per-env episode rows with vectorised indexing, and moves every finished episode
into the buffer. All tensors stay on the buffer's device.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Callable

import torch

from ._checks import check_int

Tensor = torch.Tensor

_STEP_FIELDS = ("obs", "state", "avail")  # [.., T+1, ...]
_TRANSITION_FIELDS = ("actions", "reward", "terminated", "mask")  # [.., T, ...]


@dataclass
class EpisodeBatch:
    """A batch of padded episodes (module docstring for shapes); ``T`` = longest episode in the batch."""

    obs: Tensor
    state: Tensor
    avail: Tensor
    actions: Tensor
    reward: Tensor
    terminated: Tensor
    mask: Tensor

    @property
    def batch_size(self) -> int:
        return int(self.reward.shape[0])

    @property
    def max_length(self) -> int:
        return int(self.reward.shape[1])

    def to(self, device: torch.device | str) -> "EpisodeBatch":
        return EpisodeBatch(**{f.name: getattr(self, f.name).to(device) for f in fields(self)})


def _empty(capacity: int, episode_limit: int, n_agents: int, obs_dim: int, state_dim: int, n_actions: int,
           device: torch.device) -> dict[str, Tensor]:
    C, T, n = capacity, episode_limit, n_agents
    return {
        "obs": torch.zeros(C, T + 1, n, obs_dim, device=device),
        "state": torch.zeros(C, T + 1, state_dim, device=device),
        "avail": torch.zeros(C, T + 1, n, n_actions, dtype=torch.bool, device=device),
        "actions": torch.zeros(C, T, n, dtype=torch.int64, device=device),
        "reward": torch.zeros(C, T, device=device),
        "terminated": torch.zeros(C, T, dtype=torch.bool, device=device),
        "mask": torch.zeros(C, T, dtype=torch.bool, device=device),
    }


class EpisodeReplayBuffer:
    """A ring of ``capacity`` padded episodes (module docstring). PyMARL ``buffer_size: 5000`` episodes."""

    def __init__(self, capacity: int, episode_limit: int, n_agents: int, obs_dim: int, state_dim: int, n_actions: int,
                 device: torch.device | str = "cpu") -> None:
        self.capacity = check_int(capacity, "buffer_size")
        self.episode_limit = check_int(episode_limit, "episode_limit")
        self.n_agents = check_int(n_agents, "n_agents")
        self.device = torch.device(device)
        self.data = _empty(self.capacity, self.episode_limit, self.n_agents, check_int(obs_dim, "obs_dim"),
                           check_int(state_dim, "state_dim"), check_int(n_actions, "n_actions"), self.device)
        self.size = 0  # episodes held
        self.next = 0  # ring position of the next insert
        self.episodes_added = 0

    def __len__(self) -> int:
        return self.size

    def insert(self, episodes: dict[str, Tensor]) -> None:
        """Append ``E`` episodes given as tensors shaped like :attr:`data` without the capacity axis (``[E, ...]``);
        the oldest are overwritten once the ring is full."""
        missing = set(self.data) - set(episodes)
        if missing:
            raise ValueError(f"episodes lack the fields {sorted(missing)}")
        count = int(episodes["reward"].shape[0])
        if count == 0:
            return
        for key, target in self.data.items():
            value = episodes[key]
            if tuple(value.shape[1:]) != tuple(target.shape[1:]):
                raise ValueError(f"episodes[{key!r}] must be [E, {', '.join(map(str, target.shape[1:]))}], "
                                 f"got {tuple(value.shape)}")
        if count > self.capacity:  # only the newest fit
            episodes = {k: v[-self.capacity:] for k, v in episodes.items()}
            count = self.capacity
        idx = (self.next + torch.arange(count, device=self.device)) % self.capacity
        for key, target in self.data.items():
            target[idx] = episodes[key].to(self.device, target.dtype)
        self.next = (self.next + count) % self.capacity
        self.size = min(self.capacity, self.size + count)
        self.episodes_added += count

    def can_sample(self, batch_size: int) -> bool:
        return self.size >= batch_size

    def sample(self, batch_size: int, generator: torch.Generator | None = None) -> EpisodeBatch:
        """``batch_size`` distinct episodes drawn uniformly; time trimmed to the longest of them."""
        batch_size = check_int(batch_size, "batch_size")
        if batch_size > self.size:
            raise ValueError(f"batch_size={batch_size} exceeds the {self.size} episodes in the buffer")
        gen_device = generator.device if generator is not None else self.device
        idx = torch.randperm(self.size, generator=generator, device=gen_device)[:batch_size].to(self.device)
        return self.batch(idx)

    def batch(self, idx: Tensor) -> EpisodeBatch:
        """The episodes at ring positions ``idx``, trimmed to their longest length."""
        mask = self.data["mask"][idx]
        length = max(1, int(mask.sum(1).max()))
        out = {k: (v[idx, : length + 1] if k in _STEP_FIELDS else v[idx, :length]) for k, v in self.data.items()}
        return EpisodeBatch(**out)

    def all(self) -> EpisodeBatch:
        """Every stored episode (e.g. full-batch fitting in tests)."""
        return self.batch(torch.arange(self.size, device=self.device))

    def state_dict(self) -> dict[str, Any]:
        n = self.size
        return {"data": {k: v[:n].clone() if n < self.capacity else v.clone() for k, v in self.data.items()},
                "size": self.size, "next": self.next, "episodes_added": self.episodes_added}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        size = int(state["size"])
        if size > self.capacity:
            raise ValueError(f"the saved buffer holds {size} episodes, more than buffer_size={self.capacity}")
        for key, target in self.data.items():
            saved = state["data"][key]
            if tuple(saved.shape[1:]) != tuple(target.shape[1:]):
                raise ValueError(f"saved buffer field {key!r} has shape {tuple(saved.shape)}, this run needs "
                                 f"[*, {', '.join(map(str, target.shape[1:]))}]")
            target.zero_()
            target[: saved.shape[0]] = saved.to(self.device)
        self.size, self.next, self.episodes_added = size, int(state["next"]), int(state["episodes_added"])


class EpisodeCollector:
    """Runs ``env`` with ``policy`` and moves finished episodes into ``buffer`` (module docstring).

    ``policy(step, t_env) -> actions [B, n]`` acts on the current :class:`~seqmarl.envs.Step`; it is told where
    episodes start by :attr:`episode_start` (``[B]`` bool, read before the call) so a recurrent policy can reset."""

    def __init__(self, env: Any, buffer: EpisodeReplayBuffer) -> None:
        spec = env.spec
        if not spec.is_discrete:
            raise ValueError("value-decomposition learners need discrete actions; this env's actions are continuous")
        if spec.episode_limit > buffer.episode_limit:
            raise ValueError(f"the env's episode_limit {spec.episode_limit} exceeds the buffer's {buffer.episode_limit}")
        self.env, self.buffer = env, buffer
        B = env.num_envs
        self.rows = _empty(B, buffer.episode_limit, spec.n_agents, spec.obs_dim, spec.state_dim, spec.max_actions,
                           buffer.device)
        self.t = torch.zeros(B, dtype=torch.int64, device=buffer.device)
        self.arange = torch.arange(B, device=buffer.device)
        self.step: Any = None
        self.episode_start = torch.ones(B, dtype=torch.bool, device=buffer.device)
        self.returns: list[float] = []

    def reset(self, seed: int | None) -> None:
        self.step = self.env.reset(seed=seed)
        for v in self.rows.values():
            v.zero_()
        self.t.zero_()
        self.episode_start.fill_(True)

    def collect(self, n_steps: int, policy: Callable[[Any], Tensor]) -> int:
        """``n_steps`` steps of every env; returns the number of episodes finished (and stored)."""
        if self.step is None:
            raise RuntimeError("call reset(seed) before collect()")
        dev = self.buffer.device
        finished = 0
        for _ in range(check_int(n_steps, "n_steps")):
            step, t, ar = self.step, self.t, self.arange
            self.rows["obs"][ar, t] = step.obs.to(dev)
            self.rows["state"][ar, t] = step.state.to(dev)
            self.rows["avail"][ar, t] = step.avail_actions.to(dev)
            actions = policy(step)
            nxt = self.env.step(actions)
            self.rows["actions"][ar, t] = actions.to(dev)
            self.rows["reward"][ar, t] = nxt.reward.to(dev)
            self.rows["terminated"][ar, t] = nxt.terminated.to(dev)
            self.rows["mask"][ar, t] = True
            done = (nxt.terminated | nxt.truncated).to(dev)
            self.t = t = t + 1
            if bool(done.any()):
                ids = torch.nonzero(done).flatten()
                end = t[ids]
                self.rows["obs"][ids, end] = nxt.info["final_obs"].to(dev)[ids]
                self.rows["state"][ids, end] = nxt.info["final_state"].to(dev)[ids]
                self.rows["avail"][ids, end] = nxt.info["final_avail_actions"].to(dev)[ids]
                self.buffer.insert({k: v[ids] for k, v in self.rows.items()})
                for v in self.rows.values():
                    v[ids] = 0
                self.t[ids] = 0
                finished += int(ids.numel())
                self.returns.extend(nxt.info["episode_return"][done.to(nxt.reward.device)].tolist())
            self.episode_start = done
            self.step = nxt
        return finished

    def state_dict(self) -> dict[str, Any]:
        return {"rows": {k: v.clone() for k, v in self.rows.items()}, "t": self.t.clone(),
                "episode_start": self.episode_start.clone()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for k, v in self.rows.items():
            v.copy_(state["rows"][k].to(v.device))
        self.t = state["t"].to(self.buffer.device)
        self.episode_start = state["episode_start"].to(self.buffer.device)
