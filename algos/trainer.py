"""The trainer loop shared by every on-policy algorithm: collect with the batched env, update, log,
evaluate, checkpoint, resume.

A run directory holds ``config.yaml``, ``metrics.csv``, ``metrics.jsonl``, TensorBoard events (``tb/``),
``checkpoints/last.pt`` and plots. Resuming loads the last checkpoint — agent, optimisers, RNG states and
the environment's internal state, and for recurrent agents the hidden states and episode-start flags carried
across rollouts — so a resumed run reproduces the uninterrupted run's curve exactly.
"""

from __future__ import annotations

import copy
import csv
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch

from seqmarl.envs.base import MultiAgentEnv, Step

from .core.buffer import RolloutBuffer
from .onpolicy import OnPolicyAgent

Callback = Callable[[int, OnPolicyAgent, dict[str, float]], dict[str, float] | None]


@dataclass
class TrainerConfig:
    """Loop settings.

    total_steps: environment steps (summed over the batch) to train for.
    rollout_length: steps per environment per update (HARL episode_length; 200 there, short here for matrix games).
    eval_interval: evaluate every this many updates (0 disables); eval_episodes episodes, stochastic and greedy.
    checkpoint_interval: save ``checkpoints/last.pt`` every this many updates (and at the end).
    log_interval: write a metrics row every this many updates.
    progress: show a rich progress bar.
    """

    total_steps: int = 100_000
    rollout_length: int = 16
    eval_interval: int = 0
    eval_episodes: int = 32
    checkpoint_interval: int = 10
    log_interval: int = 1
    progress: bool = True
    tensorboard: bool = True

    def __post_init__(self) -> None:
        for name in ("total_steps", "rollout_length", "eval_episodes", "checkpoint_interval", "log_interval"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be a positive integer, got {getattr(self, name)}")
        if self.eval_interval < 0:
            raise ValueError(f"eval_interval must be >= 0, got {self.eval_interval}")


def env_state(env: MultiAgentEnv) -> dict[str, Any]:
    """Snapshot of an environment's mutable state (tensors, flags, generator) for exact resume."""
    if hasattr(env, "state_dict"):
        return env.state_dict()  # type: ignore[no-any-return]
    out: dict[str, Any] = {}
    for key, value in vars(env).items():
        if isinstance(value, torch.Generator):
            out[key] = ("generator", value.get_state())
        elif isinstance(value, torch.Tensor):
            out[key] = ("tensor", value.clone())
        elif isinstance(value, (bool, int, float)) or value is None:
            out[key] = ("value", value)
    return out


def load_env_state(env: MultiAgentEnv, state: dict[str, Any]) -> None:
    if hasattr(env, "load_state_dict"):
        env.load_state_dict(state)  # type: ignore[attr-defined]
        return
    for key, (kind, value) in state.items():
        if kind == "generator":
            getattr(env, key).set_state(value)
        elif kind == "tensor":
            setattr(env, key, value.to(getattr(env, key).device) if isinstance(getattr(env, key, None), torch.Tensor) else value)
        else:
            setattr(env, key, value)


class MetricsLogger:
    """CSV + JSONL + TensorBoard writer for one run directory."""

    def __init__(self, run_dir: Path, tensorboard: bool = True):
        self.run_dir = run_dir
        self.jsonl = run_dir / "metrics.jsonl"
        self.csv = run_dir / "metrics.csv"
        self._writer = None
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self._writer = SummaryWriter(str(run_dir / "tb"))
            except ImportError:  # tensorboard is a dependency; stay usable without it
                self._writer = None

    def truncate_after(self, iteration: int) -> None:
        """Drop rows logged after ``iteration`` (used on resume: the crashed tail is recomputed)."""
        if not self.jsonl.exists():
            return
        rows = [json.loads(line) for line in self.jsonl.read_text().splitlines() if line.strip()]
        rows = [r for r in rows if r["iteration"] <= iteration]
        self.jsonl.write_text("".join(json.dumps(r) + "\n" for r in rows))
        self._rewrite_csv(rows)

    def _rewrite_csv(self, rows: list[dict[str, float]]) -> None:
        keys: list[str] = []
        for r in rows:
            keys.extend(k for k in r if k not in keys)
        with self.csv.open("w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=keys)
            writer.writeheader()
            writer.writerows(rows)

    def log(self, row: dict[str, float]) -> None:
        with self.jsonl.open("a") as fh:
            fh.write(json.dumps(row) + "\n")
        rows = [json.loads(line) for line in self.jsonl.read_text().splitlines() if line.strip()]
        self._rewrite_csv(rows)
        if self._writer is not None:
            for key, value in row.items():
                if key not in ("iteration", "env_steps") and isinstance(value, (int, float)) and math.isfinite(value):
                    self._writer.add_scalar(key, value, int(row["env_steps"]))
            self._writer.flush()

    def rows(self) -> list[dict[str, float]]:
        if not self.jsonl.exists():
            return []
        return [json.loads(line) for line in self.jsonl.read_text().splitlines() if line.strip()]

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()


class Trainer:
    """Collect -> update -> log/evaluate/checkpoint, for ``total_steps`` environment steps."""

    def __init__(
        self,
        env: MultiAgentEnv,
        agent: OnPolicyAgent,
        config: TrainerConfig,
        run_dir: str | Path | None = None,
        seed: int = 0,
        eval_env_fn: Callable[[int], MultiAgentEnv] | None = None,
        callbacks: list[Callback] | None = None,
    ):
        self.env = env
        self.agent = agent
        self.config = config
        self.seed = int(seed)
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.eval_env_fn = eval_env_fn
        self.callbacks = list(callbacks or [])
        self.iteration = 0
        self.env_steps = 0
        self._step: Step | None = None
        self._buffer: RolloutBuffer | None = None
        # recurrent agents: (actor [B, n, H], critic) states after the last collected step, and the flags
        # "the next step starts an episode" ([B] bool; True after a reset)
        self._rnn_state: tuple[torch.Tensor, torch.Tensor] | None = None
        self._episode_start: torch.Tensor | None = None
        self._episode_returns: list[float] = []
        self.logger = MetricsLogger(self.run_dir, config.tensorboard) if self.run_dir is not None else None
        self.history: list[dict[str, float]] = []

    # ------------------------------------------------------------------ collection
    @property
    def steps_per_update(self) -> int:
        return self.config.rollout_length * self.env.num_envs

    @property
    def n_updates(self) -> int:
        return max(1, self.config.total_steps // self.steps_per_update)

    def _fresh_rnn_state(self) -> None:
        if self.agent.recurrent:
            self._rnn_state = self.agent.initial_rnn_state(self.env.num_envs)
            self._episode_start = torch.ones(self.env.num_envs, dtype=torch.bool, device=self.agent.device)

    @staticmethod
    def _masked(h: torch.Tensor, episode_start: torch.Tensor) -> torch.Tensor:
        """``h`` with the entries of environments starting an episode zeroed (the state entering the step)."""
        keep = (~episode_start).to(h.dtype)
        return h * keep.view((-1,) + (1,) * (h.dim() - 1))

    def collect(self) -> "RolloutBuffer":
        """Roll the batched env for ``rollout_length`` steps with the current policy into the buffer.

        Recurrent agents: the states entering every step (already zeroed at episode starts) and the
        ``episode_start`` flags go into the buffer; the states carry over to the next rollout."""
        agent, env = self.agent, self.env
        if self._step is None:
            self._step = env.reset(seed=self.seed)
            self._fresh_rnn_state()
        if agent.recurrent and self._rnn_state is None:  # e.g. a checkpoint without rnn states
            self._fresh_rnn_state()
        if self._buffer is None:
            self._buffer = agent.make_buffer(self.config.rollout_length, env.num_envs)
        buffer = self._buffer
        buffer.reset()
        step = self._step
        for _ in range(self.config.rollout_length):
            if agent.recurrent:
                assert self._rnn_state is not None and self._episode_start is not None
                start = self._episode_start
                actor_in, critic_in = (self._masked(h, start) for h in self._rnn_state)
                actions, log_probs, actor_next = agent.act(step, rnn_state=actor_in, episode_start=start)
                values, critic_next = agent.values(step.state, step.obs, rnn_state=critic_in, episode_start=start)
                nxt = env.step(actions)
                # V(s_{t+1}) continues the SAME episode's history (no reset) at the pre-reset final state
                next_values, _ = agent.values(nxt.info.get("final_state", nxt.state), nxt.info.get("final_obs", nxt.obs),
                                              rnn_state=critic_next, episode_start=torch.zeros_like(start))
                rnn_kw = dict(actor_rnn=actor_in, critic_rnn=critic_in, episode_start=start)
                self._rnn_state = (actor_next, critic_next)
                self._episode_start = (nxt.terminated | nxt.truncated).to(start.device)
            else:
                actions, log_probs = agent.act(step)
                values = agent.values(step.state, step.obs)
                nxt = env.step(actions)
                # V(s_{t+1}) of the transition taken: the pre-reset final state where an episode ended
                next_values = agent.values(nxt.info.get("final_state", nxt.state), nxt.info.get("final_obs", nxt.obs))
                rnn_kw = {}
            buffer.insert(step.obs, step.state, actions, log_probs, nxt.reward, values, next_values,
                          nxt.terminated, nxt.truncated, avail_actions=step.avail_actions if env.spec.is_discrete else None,
                          **rnn_kw)
            done = nxt.terminated | nxt.truncated
            if bool(done.any()):
                self._episode_returns.extend(nxt.info["episode_return"][done].tolist())
            step = nxt
        self._step = step
        self.env_steps += self.steps_per_update
        return buffer

    # ------------------------------------------------------------------ evaluation
    @torch.no_grad()
    def evaluate(self) -> dict[str, float]:
        """Mean undiscounted episode return of ``eval_episodes`` episodes, stochastic and greedy."""
        if self.eval_env_fn is None:
            return {}
        out = {}
        for name, deterministic in (("eval_return_stochastic", False), ("eval_return_greedy", True)):
            env = self.eval_env_fn(self.config.eval_episodes)
            step = env.reset(seed=self.seed + 10_000 + self.iteration)
            finished = torch.zeros(env.num_envs, dtype=torch.bool, device=env.device)
            returns = torch.zeros(env.num_envs, device=env.device)
            limit = env.spec.episode_limit or 10_000
            if self.agent.recurrent:
                h = self.agent.initial_rnn_state(env.num_envs)[0]
                start = torch.ones(env.num_envs, dtype=torch.bool, device=self.agent.device)
            for _ in range(limit):
                if self.agent.recurrent:
                    actions, _, h = self.agent.act(step, deterministic=deterministic, rnn_state=h, episode_start=start)
                else:
                    actions, _ = self.agent.act(step, deterministic=deterministic)
                step = env.step(actions)
                if self.agent.recurrent:
                    start = (step.terminated | step.truncated).to(self.agent.device)
                done = (step.terminated | step.truncated) & ~finished
                returns = torch.where(done, step.info["episode_return"].to(returns.dtype), returns)
                finished |= done
                if bool(finished.all()):
                    break
            out[name] = float(returns.mean())
        return out

    # ------------------------------------------------------------------ checkpoints
    def checkpoint_path(self) -> Path | None:
        return None if self.run_dir is None else self.run_dir / "checkpoints" / "last.pt"

    def save_checkpoint(self) -> None:
        path = self.checkpoint_path()
        if path is None:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        state = {
            "iteration": self.iteration,
            "env_steps": self.env_steps,
            "agent": self.agent.state_dict(),
            "env": env_state(self.env),
            "step": None if self._step is None else copy.deepcopy(self._step),
            "episode_returns": list(self._episode_returns),
            "rnn_state": None if self._rnn_state is None else tuple(h.clone() for h in self._rnn_state),
            "episode_start": None if self._episode_start is None else self._episode_start.clone(),
            "torch_rng": torch.get_rng_state(),
        }
        tmp = path.with_suffix(".tmp")
        torch.save(state, tmp)
        tmp.replace(path)  # atomic: a crash mid-save never leaves a broken checkpoint

    def load_checkpoint(self, path: str | Path) -> None:
        path = Path(path)
        if path.is_dir():
            path = path / "checkpoints" / "last.pt"
        if not path.exists():
            raise FileNotFoundError(f"no checkpoint at {path}")
        state = torch.load(path, weights_only=False, map_location=self.agent.device)
        self.agent.load_state_dict(state["agent"])
        load_env_state(self.env, state["env"])
        self._step = state["step"]
        self.iteration = int(state["iteration"])
        self.env_steps = int(state["env_steps"])
        self._episode_returns = list(state["episode_returns"])
        rnn_state = state.get("rnn_state")
        self._rnn_state = None if rnn_state is None else tuple(h.to(self.agent.device) for h in rnn_state)
        start = state.get("episode_start")
        self._episode_start = None if start is None else start.to(self.agent.device)
        torch.set_rng_state(state["torch_rng"])
        if self.logger is not None:
            self.logger.truncate_after(self.iteration)
            self.history = self.logger.rows()

    # ------------------------------------------------------------------ the loop
    def _apply_lr_schedule(self) -> dict[str, float]:
        """``config.linear_lr_decay``: set this iteration's step sizes from the iteration count (so a resumed run
        uses the same schedule) over ``n_updates`` iterations; returns them for the metrics row."""
        if not getattr(self.agent.config, "linear_lr_decay", False):
            return {}
        self.agent.lr_decay(self.iteration, self.n_updates)
        actor_lr, critic_lr = self.agent.current_lr()
        return {"actor_lr": actor_lr, "critic_lr": critic_lr}

    def train_iteration(self) -> dict[str, float]:
        start = time.perf_counter()
        lrs = self._apply_lr_schedule()  # HARL: before the rollout (on_policy_base_runner.py run)
        rollout = self.collect()
        collect_s = time.perf_counter() - start
        metrics = self.agent.update(rollout)
        metrics.update(lrs)
        self.iteration += 1
        elapsed = time.perf_counter() - start
        recent = self._episode_returns[-100:]
        row: dict[str, float] = {
            "iteration": self.iteration,
            "env_steps": self.env_steps,
            "episode_return": float(sum(recent) / len(recent)) if recent else float("nan"),
            "sps": self.steps_per_update / max(elapsed, 1e-9),
            "collect_fraction": collect_s / max(elapsed, 1e-9),
            **metrics,
        }
        self._episode_returns = self._episode_returns[-100:]
        for callback in self.callbacks:
            extra = callback(self.iteration, self.agent, row)
            if extra:
                row.update(extra)
        if self.config.eval_interval and self.iteration % self.config.eval_interval == 0:
            row.update(self.evaluate())
        return row

    def train(self) -> list[dict[str, float]]:
        """Run until ``total_steps``; returns the metric rows (also written to the run directory)."""
        progress = None
        task = None
        if self.config.progress:
            from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

            progress = Progress(TextColumn("[bold]train"), BarColumn(), TextColumn("{task.completed}/{task.total} updates"),
                                TextColumn("{task.fields[info]}"), TimeRemainingColumn(), transient=True)
            progress.start()
            task = progress.add_task("train", total=self.n_updates, completed=self.iteration, info="")
        try:
            while self.iteration < self.n_updates:
                row = self.train_iteration()
                self.history.append(row)
                if self.logger is not None and (self.iteration % self.config.log_interval == 0 or self.iteration == self.n_updates):
                    self.logger.log(row)
                if self.iteration % self.config.checkpoint_interval == 0 or self.iteration == self.n_updates:
                    self.save_checkpoint()
                if progress is not None:
                    progress.update(task, completed=self.iteration,
                                    info=f"SPS {row['sps']:.0f}  return {row['episode_return']:.3f}")
        finally:
            if progress is not None:
                progress.stop()
            if self.logger is not None:
                self.logger.close()
        return self.history
