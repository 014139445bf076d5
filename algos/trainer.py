"""The trainer loop shared by every on-policy algorithm: collect with the batched env, update, log,
evaluate, checkpoint, resume.

A run directory holds ``config.yaml``, ``metrics.csv``, ``metrics.jsonl``, TensorBoard events (``tb/``),
``checkpoints/last.pt`` and plots (and ``wandb/`` / ``mlruns/`` with ``loggers=("wandb",)`` / ``("mlflow",)``,
:mod:`seqmarl.algos.loggers`). Progress shows as a bar on a terminal and as periodic lines otherwise
(:mod:`seqmarl.algos.progress`). Resuming loads the last checkpoint — agent, optimisers, RNG states and
the environment's internal state, and for recurrent agents the hidden states and episode-start flags carried
across rollouts — so a resumed run reproduces the uninterrupted run's curve exactly.
"""

from __future__ import annotations

import contextlib
import csv
import errno
import io
import json
import math
import numbers
import os
import pickle
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import torch

from seqmarl.envs.base import MultiAgentEnv, Step

from . import progress as _progress
from .core.buffer import RolloutBuffer
from .loggers import Logger, make_loggers, parse_logger_names
from .onpolicy import OnPolicyAgent

Callback = Callable[[int, OnPolicyAgent, dict[str, float]], dict[str, float] | None]


def _check_threads(value: object, name: str) -> None:
    """ValueError naming ``name`` unless ``value`` is None or a positive integer (a thread count)."""
    if value is not None and (isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1):
        raise ValueError(f"{name} must be a positive integer or None, got {value!r}")


@contextlib.contextmanager
def torch_threads(n: int | None):
    """Run the block with ``torch.set_num_threads(n)`` and restore the previous count after it (``None``: as is)."""
    _check_threads(n, "n")
    if n is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(int(n))
    try:
        yield
    finally:
        torch.set_num_threads(before)


@dataclass
class TrainerConfig:
    """Loop settings.

    total_steps: environment steps (summed over the batch) to train for.
    rollout_length: steps per environment per update (HARL episode_length; 200 there, short here for matrix games).
    eval_interval: evaluate every this many updates (0 disables); eval_episodes episodes, stochastic and greedy.
    checkpoint_interval: save ``checkpoints/last.pt`` every this many updates (and at the end).
    log_interval: write a metrics row every this many updates.
    progress: ``auto`` (default; ``True`` is an alias): a rich bar on a terminal (or notebook), else plain lines;
        ``bar``; ``lines``; ``off`` (``False`` is an alias). Stored as the mode's name. Bar and lines show env steps, steps/s over the last
        60 s of this process, the training and greedy evaluation returns, elapsed time and ETA, on stderr
        (:mod:`seqmarl.algos.progress`).
    log_every_s: seconds between progress lines (``lines``), besides one at the start and one at the end.
    tensorboard: write TensorBoard events to ``tb/``.
    loggers: further loggers, names from ``tensorboard``, ``wandb``, ``mlflow`` (a tuple or a comma-separated
        string; ``tensorboard`` here is the same as ``tensorboard=True``); CSV/JSONL are always written.
    update_threads: torch intra-op threads while the agent updates (``None``, the default: whatever the process
        has). The update's matrix products use a second core well, collection's small per-step forwards do not:
        ``update_threads=2`` with one thread elsewhere (``OMP_NUM_THREADS=1``) speeds a CPU run on 2 cores
        (``docs/vs_harl.md``). Floating-point sums then run in another order, so numbers differ in the last bits
        from a run with another thread count.
    """

    total_steps: int = 100_000
    rollout_length: int = 16
    eval_interval: int = 0
    eval_episodes: int = 32
    checkpoint_interval: int = 10
    log_interval: int = 1
    progress: bool | str = "auto"
    tensorboard: bool = True
    log_every_s: float = _progress.DEFAULT_LOG_EVERY_S
    loggers: Sequence[str] | str = ()
    update_threads: int | None = None

    def __post_init__(self) -> None:
        for name in ("total_steps", "rollout_length", "eval_interval", "eval_episodes", "checkpoint_interval",
                     "log_interval"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Integral):
                raise TypeError(f"{name} must be an integer, got {value!r} ({type(value).__name__})")
            minimum = 0 if name == "eval_interval" else 1
            if value < minimum:
                kind = "a non-negative integer (0 disables)" if minimum == 0 else "a positive integer"
                raise ValueError(f"{name} must be {kind}, got {value}")
        _check_threads(self.update_threads, "update_threads")
        if not isinstance(self.tensorboard, bool):
            raise TypeError(f"tensorboard must be a bool, got {self.tensorboard!r}")
        if not isinstance(self.progress, (bool, str)):
            raise TypeError(f"progress must be one of {', '.join(_progress.MODES)} or a bool, got {self.progress!r}")
        self.progress = _progress.progress_mode(self.progress)  # ValueError naming progress and the choices
        self.log_every_s = _progress.check_log_every_s(self.log_every_s)
        if not isinstance(self.loggers, (str, list, tuple)):
            raise TypeError(f"loggers must be a tuple of names or a comma-separated string, got {self.loggers!r}")
        self.loggers = parse_logger_names(self.loggers)
        if "tensorboard" in self.loggers and not self.tensorboard:
            raise ValueError("loggers include tensorboard but tensorboard=False; drop one of them")

    @property
    def progress_mode(self) -> str:
        """``progress`` as one of ``auto``, ``bar``, ``lines``, ``off``."""
        return _progress.progress_mode(self.progress)

    @property
    def logger_names(self) -> tuple[str, ...]:
        """Every logger besides CSV/JSONL: ``tensorboard`` first when on, then the others in ``loggers``."""
        rest = tuple(n for n in self.loggers if n != "tensorboard")
        return (("tensorboard",) if self.tensorboard else ()) + rest


class CheckpointError(ValueError):
    """A checkpoint cannot be used: unreadable, not a seqmarl checkpoint, or from another algorithm/env."""


class DivergenceError(RuntimeError):
    """Training produced non-finite losses or parameters; the last good checkpoint is kept."""


CHECKPOINT_FORMAT = 2  # tensors and plain types only, loadable with torch.load(weights_only=True)


def _plain_step(step: Step | None) -> dict[str, Any] | None:
    """A :class:`Step` as a dict of tensors (checkpoints hold tensors and plain types only)."""
    if step is None:
        return None
    return {"obs": step.obs.clone(), "state": step.state.clone(),
            "avail_actions": None if step.avail_actions is None else step.avail_actions.clone(),
            "reward": step.reward.clone(), "terminated": step.terminated.clone(),
            "truncated": step.truncated.clone(),
            "info": {k: (v.clone() if isinstance(v, torch.Tensor) else v) for k, v in step.info.items()}}


def _step_from_plain(data: dict[str, Any] | None, device: torch.device | str) -> Step | None:
    if data is None:
        return None
    move = lambda v: v.to(device) if isinstance(v, torch.Tensor) else v  # noqa: E731
    return Step(obs=move(data["obs"]), state=move(data["state"]), avail_actions=move(data["avail_actions"]),
                reward=move(data["reward"]), terminated=move(data["terminated"]), truncated=move(data["truncated"]),
                info={k: move(v) for k, v in data["info"].items()})


def read_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint with ``torch.load(weights_only=True)``: a file that carries anything but tensors and
    plain types (e.g. a crafted pickle) is refused without executing it. Raises :class:`CheckpointError`
    (``FileNotFoundError`` if there is no file)."""
    path = Path(path)
    if path.is_dir():
        path = path / "checkpoints" / "last.pt"
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    if path.stat().st_size == 0:
        raise CheckpointError(f"checkpoint {path} is empty (0 bytes)")
    try:
        state = torch.load(path, weights_only=True, map_location=map_location)
    except pickle.UnpicklingError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"refusing checkpoint {path}: it holds objects other than tensors and plain types "
                              f"(loaded with weights_only=True, nothing was executed): {first}") from None
    except Exception as exc:  # truncated zip, text file, ...
        raise CheckpointError(f"checkpoint {path} is corrupt or not a seqmarl checkpoint "
                              f"({type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''})") from None
    if not isinstance(state, dict) or "agent" not in state or "iteration" not in state:
        raise CheckpointError(f"checkpoint {path} is not a seqmarl checkpoint (no agent/iteration entries)")
    return state


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through ``path.tmp`` + rename; on failure the temp file is removed and
    ``path`` is untouched. A full disk raises ``OSError`` saying "no space left on device"."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        try:
            tmp.unlink()
        except OSError:
            pass
        if exc.errno == errno.ENOSPC:
            raise OSError(errno.ENOSPC, f"no space left on device while writing {path} "
                          f"({len(data)} bytes); the previous file is kept and the partial temp file removed") from None
        raise


def _atomic_write_text(path: Path, text: str) -> None:
    _atomic_write_bytes(path, text.encode())


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


def load_env_state(env: MultiAgentEnv, state: dict[str, Any]) -> Step | None:
    """Restore :func:`env_state`. An env whose simulators cannot be checkpointed (MaMuJoCo, PettingZoo) restarts
    its episodes instead and returns the fresh first :class:`Step`; the trainer then acts from it (the episodes
    running at the checkpoint are lost, the run's data and weights are not). ``None``: restored exactly."""
    if hasattr(env, "load_state_dict"):
        restarted = env.load_state_dict(state)  # type: ignore[attr-defined]
        return restarted if isinstance(restarted, Step) else None
    for key, (kind, value) in state.items():
        if kind == "generator":
            getattr(env, key).set_state(value)
        elif kind == "tensor":
            setattr(env, key, value.to(getattr(env, key).device) if isinstance(getattr(env, key, None), torch.Tensor) else value)
        else:
            setattr(env, key, value)
    return None


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Rows of a JSONL file; a half-written LAST line (a kill mid-write) is ignored, any other bad line raises."""
    if not path.exists():
        return []
    lines = path.read_text().splitlines()
    rows = []
    for k, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            if k == len(lines) - 1:
                break  # the tail of an interrupted write; it is recomputed on resume
            raise ValueError(f"{path}: line {k + 1} is not valid JSON") from None
    return rows


class MetricsLogger:
    """CSV + JSONL writer for one run directory: the run's record (a :class:`~seqmarl.algos.loggers.Logger`).

    Rows are appended (never rewritten) to both files; the CSV is rewritten (atomically) only when a row brings
    a new column, so a kill never leaves an empty or partial file behind. TensorBoard and the optional trackers
    are separate loggers (:mod:`seqmarl.algos.loggers`) that the trainer composes with this one."""

    def __init__(self, run_dir: Path):
        self.run_dir = run_dir
        self.jsonl = run_dir / "metrics.jsonl"
        self.csv = run_dir / "metrics.csv"
        self._columns: list[str] | None = None

    def truncate_after(self, iteration: int) -> None:
        """Keep only rows logged up to ``iteration`` (used on resume: the crashed tail is recomputed), in the
        JSONL and the CSV; the trainer then replays the kept rows into its other loggers (TensorBoard's events are
        re-written from them, so no step appears twice)."""
        rows = [r for r in _read_jsonl(self.jsonl) if r["iteration"] <= iteration]
        if self.jsonl.exists():
            _atomic_write_text(self.jsonl, "".join(json.dumps(r) + "\n" for r in rows))
        self._rewrite_csv(rows)

    def _rewrite_csv(self, rows: list[dict[str, Any]]) -> None:
        keys: list[str] = []
        for r in rows:
            keys.extend(k for k in r if k not in keys)
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=keys)
        writer.writeheader()
        writer.writerows(rows)
        _atomic_write_text(self.csv, buf.getvalue())
        self._columns = keys

    def log(self, row: dict[str, Any], step: int | None = None) -> None:
        """Append ``row`` (``step``, the env steps, is already in the row)."""
        with self.jsonl.open("a") as fh:
            fh.write(json.dumps(row) + "\n")
        if self._columns is None and self.csv.exists():
            with self.csv.open(newline="") as fh:
                self._columns = next(csv.reader(fh), None)
        if self._columns is None or any(k not in self._columns for k in row):
            self._rewrite_csv(_read_jsonl(self.jsonl))  # a new column (e.g. the first evaluation)
        else:
            with self.csv.open("a", newline="") as fh:
                csv.DictWriter(fh, fieldnames=self._columns).writerow(row)

    def rows(self) -> list[dict[str, Any]]:
        return _read_jsonl(self.jsonl)

    def close(self) -> None:
        pass


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
        meta: dict[str, Any] | None = None,
        progress_console: Any = None,
        progress_stream: Any = None,
    ):
        """``meta``: plain values stored in every checkpoint (``seqmarl train`` stores ``algo`` and ``env``
        names; :meth:`load_checkpoint` refuses a checkpoint whose ``algo``/``env`` differ).
        ``progress_console`` (a rich ``Console``) / ``progress_stream`` (a text stream): where the bar / the
        progress lines go (default: stderr). An optional logger (``config.loggers``) whose package is missing
        raises :class:`~seqmarl.algos.loggers.MissingExtraError` (with the pip command) here, before any file is
        written."""
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
        # 1.0/0.0 per finished training episode of an env that reports ``info["battle_won"]`` (SMAX, SMAC)
        self._episode_wins: list[float] = []
        self.history: list[dict[str, float]] = []
        self._last_saved: int | None = None
        self.meta: dict[str, Any] = {"algo": type(agent.config).algo_name or None, **(meta or {})}
        self.progress_console = progress_console
        self.progress_stream = progress_stream
        # the CSV/JSONL record, then TensorBoard and the optional trackers; all get every logged row
        self.logger = MetricsLogger(self.run_dir) if self.run_dir is not None else None
        self.loggers: list[Logger] = [] if self.run_dir is None else [
            self.logger, *make_loggers(config.logger_names, self.run_dir, self._tracker_config())]

    def _tracker_config(self) -> dict[str, Any]:
        """The run's settings for W&B's config / MLflow's parameters: meta, seed, loop and algorithm fields."""
        from dataclasses import asdict, is_dataclass

        out: dict[str, Any] = {**{k: v for k, v in self.meta.items() if v is not None}, "seed": self.seed,
                               "num_envs": self.env.num_envs, "total_steps": self.config.total_steps,
                               "rollout_length": self.config.rollout_length}
        if is_dataclass(self.agent.config):
            out.update({f"algo.{k}": v for k, v in asdict(self.agent.config).items() if not k.startswith("_")})
        return out

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

    def _record_episodes(self, nxt: Step, done: torch.Tensor) -> None:
        """Keep the returns (and, where the env reports ``info["battle_won"]``, the outcomes) of the episodes that
        ``done`` [B] says ended at ``nxt``."""
        self._episode_returns.extend(nxt.info["episode_return"][done].tolist())
        won = nxt.info.get("battle_won")
        if won is not None:
            self._episode_wins.extend(won[done.to(won.device)].float().tolist())

    def collect(self) -> "RolloutBuffer":
        """Roll the batched env for ``rollout_length`` steps with the current policy into the buffer.

        Recurrent agents: the states entering every step (already zeroed at episode starts) and the
        ``episode_start`` flags go into the buffer; the states carry over to the next rollout."""
        agent, env = self.agent, self.env
        if getattr(agent, "family", "on_policy") == "off_policy":  # episodes go to the agent's own replay
            self._step, returns = agent.collect(env, self._step, self.config.rollout_length, self.seed)
            self._episode_returns.extend(returns)
            self.env_steps += self.steps_per_update
            return None
        if self._step is None:
            self._step = env.reset(seed=self.seed)
            self._fresh_rnn_state()
        if agent.recurrent and self._rnn_state is None:  # e.g. a checkpoint without rnn states
            self._fresh_rnn_state()
        if self._buffer is None:
            self._buffer = agent.make_buffer(self.config.rollout_length, env.num_envs)
        buffer = self._buffer
        buffer.reset()
        if not agent.recurrent:
            with self._acting_only():
                self._step = self._collect_feedforward(buffer, self._step)
            self.env_steps += self.steps_per_update
            return buffer
        step = self._step
        for _ in range(self.config.rollout_length):
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
            buffer.insert(step.obs, step.state, actions, log_probs, nxt.reward, values, next_values,
                          nxt.terminated, nxt.truncated, avail_actions=step.avail_actions if env.spec.is_discrete else None,
                          active=step.info.get("active"), **rnn_kw)
            done = nxt.terminated | nxt.truncated
            if bool(done.any()):
                self._record_episodes(nxt, done)
            step = nxt
        self._step = step
        self.env_steps += self.steps_per_update
        return buffer

    def _acting_only(self) -> contextlib.AbstractContextManager[None]:
        """A block that only acts (a rollout, an evaluation): the actors' parameters stay fixed, so separate
        actors' stacked weights are checked once on entry (``MultiAgentActors.parameters_unchanged``)."""
        actors = getattr(self.agent, "actors", None)
        return getattr(actors, "parameters_unchanged", contextlib.nullcontext)()

    def _collect_feedforward(self, buffer: RolloutBuffer, step: Step) -> Step:
        """The collection loop of a feed-forward agent (same transitions, values and buffer contents as stepping
        ``act -> values -> env.step -> values(final) -> insert``, in less time):

        * V(s_t) is the V(final state) just computed when the previous step ended no episode (the protocol's
          ``final_*`` equal ``obs``/``state`` there): the critic runs once per step instead of twice;
        * the env steps between ``step_async`` and ``step_wait`` (:meth:`MultiAgentEnv.step_async`): while worker
          processes or JAX compute step t, V(final state of step t-1) is computed and step t-1 goes into the buffer.
          Agents whose buffer takes something from ``act`` at insert time (a :class:`RolloutBuffer` subclass, e.g.
          the random-order auto-regressive agent's execution orders) insert before acting again, as before."""
        agent, env = self.agent, self.env
        discrete = env.spec.is_discrete
        start, wait = getattr(env, "step_async", None), getattr(env, "step_wait", None)
        if start is None or wait is None:  # a duck-typed env with step() only
            held: list[torch.Tensor] = []
            start, wait = held.append, (lambda: env.step(held.pop()))
        overlap = type(buffer) is RolloutBuffer
        known: torch.Tensor | None = None  # V(s_t) when already computed
        pending: tuple | None = None  # (step, actions, log_probs, values, next step) awaiting V(s_{t+1}) and insert

        def finish(record: tuple) -> None:
            nonlocal known
            prev, actions, log_probs, values, nxt = record
            # V(s_{t+1}) of the transition taken: the pre-reset final state where an episode ended
            next_values = agent.values(nxt.info.get("final_state", nxt.state), nxt.info.get("final_obs", nxt.obs))
            buffer.insert(prev.obs, prev.state, actions, log_probs, nxt.reward, values, next_values,
                          nxt.terminated, nxt.truncated, avail_actions=prev.avail_actions if discrete else None,
                          active=prev.info.get("active"))
            done = nxt.terminated | nxt.truncated
            ended = bool(done.any())
            if ended:
                self._record_episodes(nxt, done)
            known = None if ended else next_values

        for _ in range(self.config.rollout_length):
            if pending is not None and not overlap:
                finish(pending)
                pending = None
            actions, log_probs = agent.act(step)
            start(actions)
            try:
                if pending is not None:
                    finish(pending)
                values = agent.values(step.state, step.obs) if known is None else known
            except BaseException:
                wait()  # leave the env consistent
                raise
            nxt = wait()
            pending = (step, actions, log_probs, values, nxt)
            step = nxt
        if pending is not None:
            finish(pending)
        return step

    # ------------------------------------------------------------------ evaluation
    @torch.no_grad()
    def evaluate(self) -> dict[str, float]:
        """Mean undiscounted episode return of ``eval_episodes`` episodes, stochastic and greedy; for an env that
        reports ``info["battle_won"]`` also the fraction won (``eval_win_rate_stochastic``/``_greedy``)."""
        if self.eval_env_fn is None:
            return {}
        with self._acting_only():
            return self._evaluate()

    def _evaluate(self) -> dict[str, float]:
        out = {}
        for name, deterministic in (("eval_return_stochastic", False), ("eval_return_greedy", True)):
            env = self.eval_env_fn(self.config.eval_episodes)
            step = env.reset(seed=self.seed + 10_000 + self.iteration)
            finished = torch.zeros(env.num_envs, dtype=torch.bool, device=env.device)
            returns = torch.zeros(env.num_envs, device=env.device)
            wins: torch.Tensor | None = None
            limit = env.spec.episode_limit or 10_000
            if self.agent.recurrent:
                h = self.agent.initial_rnn_state(env.num_envs)[0]
                start = torch.ones(env.num_envs, dtype=torch.bool, device=self.agent.device)
            for _ in range(limit):
                if self.agent.recurrent:
                    actions, _, h = self.agent.act(step, deterministic=deterministic, rnn_state=h, episode_start=start)
                else:  # the executing policy (TAD-PPO: its students unless tad_execute="teacher")
                    actions, _ = getattr(self.agent, "act_for_evaluation", self.agent.act)(step, deterministic=deterministic)
                step = env.step(actions)
                if self.agent.recurrent:
                    start = (step.terminated | step.truncated).to(self.agent.device)
                done = (step.terminated | step.truncated) & ~finished
                returns = torch.where(done, step.info["episode_return"].to(returns.dtype), returns)
                won = step.info.get("battle_won")
                if won is not None:
                    wins = torch.zeros_like(returns) if wins is None else wins
                    wins = torch.where(done, won.to(device=returns.device, dtype=returns.dtype), wins)
                finished |= done
                if bool(finished.all()):
                    break
            out[name] = float(returns.mean())
            if wins is not None:  # eval_return_greedy -> eval_win_rate_greedy
                out[name.replace("return", "win_rate")] = float(wins.mean())
        return out

    # ------------------------------------------------------------------ checkpoints
    def checkpoint_path(self) -> Path | None:
        return None if self.run_dir is None else self.run_dir / "checkpoints" / "last.pt"

    def checkpoint_state(self) -> dict[str, Any]:
        """Everything a resume needs, as tensors and plain types only (``torch.load(weights_only=True)``)."""
        return {
            "format": CHECKPOINT_FORMAT,
            "meta": dict(self.meta),
            "iteration": self.iteration,
            "env_steps": self.env_steps,
            "agent": self.agent.state_dict(),
            "env": env_state(self.env),
            "step": _plain_step(self._step),
            "episode_returns": [float(x) for x in self._episode_returns],
            "episode_wins": [float(x) for x in self._episode_wins],
            "rnn_state": None if self._rnn_state is None else tuple(h.clone() for h in self._rnn_state),
            "episode_start": None if self._episode_start is None else self._episode_start.clone(),
            "torch_rng": torch.get_rng_state(),
        }

    def save_checkpoint(self) -> None:
        """Write ``checkpoints/last.pt`` atomically (temp file + rename); a failed write (e.g. a full disk:
        "no space left on device") keeps the previous checkpoint and removes the partial temp file."""
        path = self.checkpoint_path()
        if path is None:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        buf = io.BytesIO()
        torch.save(self.checkpoint_state(), buf)
        _atomic_write_bytes(path, buf.getvalue())

    def check_checkpoint(self, state: dict[str, Any], path: str | Path = "checkpoint") -> None:
        """Refuse a checkpoint of another algorithm or env (by name) before anything is loaded."""
        saved = state.get("meta") or {}
        for key in ("algo", "env"):
            mine, theirs = self.meta.get(key), saved.get(key)
            if mine is not None and theirs is not None and mine != theirs:
                raise CheckpointError(f"checkpoint {path} was written by {key}={theirs!r}, but this run has "
                                      f"{key}={mine!r}; resume it with {key}={theirs} or start a new run_dir")

    def load_checkpoint(self, path: str | Path) -> None:
        """Load agent, optimisers, env, RNG states and progress from ``path`` (a run dir or a ``.pt`` file),
        read with ``weights_only=True``. Nothing on disk is changed here (see :meth:`adopt_logs`)."""
        path = Path(path)
        if path.is_dir():
            path = path / "checkpoints" / "last.pt"
        state = read_checkpoint(path, map_location=self.agent.device)
        self.check_checkpoint(state, path)
        try:
            self.agent.load_state_dict(state["agent"])
            restarted = load_env_state(self.env, state["env"])
            step = state["step"]
            self._step = step if isinstance(step, Step) or step is None else _step_from_plain(step, self.env.device)
            rnn_state = state.get("rnn_state")
            self._rnn_state = None if rnn_state is None else tuple(h.to(self.agent.device) for h in rnn_state)
            start = state.get("episode_start")
            self._episode_start = None if start is None else start.to(self.agent.device)
            if restarted is not None:  # the env restarted its episodes: act from its fresh step, fresh memory
                self._step, self._rnn_state, self._episode_start = restarted, None, None
            torch.set_rng_state(state["torch_rng"].cpu())
            if getattr(self.agent, "family", "on_policy") == "off_policy" and self._step is not None:
                self.agent.attach(self.env, self._step, restarted=restarted is not None)  # partial episodes, memory
        except (KeyError, RuntimeError, ValueError, TypeError, AttributeError) as exc:
            raise CheckpointError(f"checkpoint {path} does not fit this run's agent/env (different algorithm "
                                  f"options, env arguments or shapes?): {type(exc).__name__}: "
                                  f"{str(exc).strip().splitlines()[0] if str(exc).strip() else ''}") from None
        self.iteration = int(state["iteration"])
        self.env_steps = int(state["env_steps"])
        self._episode_returns = [float(x) for x in state["episode_returns"]]
        self._episode_wins = [float(x) for x in state.get("episode_wins", [])]  # absent in older checkpoints
        self._last_saved = self.iteration

    def adopt_logs(self) -> None:
        """After a successful resume: drop metric rows after the checkpoint (they are recomputed)."""
        if self.logger is not None:
            self.logger.truncate_after(self.iteration)
            self.history = self.logger.rows()
            for other in self.loggers:  # TensorBoard rewrites its events; trackers start a run from the kept rows
                if other is not self.logger and hasattr(other, "replay"):
                    other.replay(self.history)

    def check_finite(self, metrics: dict[str, Any]) -> None:
        """Divergence guard: raise :class:`DivergenceError` if a loss or a parameter is not finite."""
        bad = [k for k, v in metrics.items() if isinstance(v, float) and not math.isfinite(v)]
        nets = self.agent.networks()
        bad_params = []
        for name, net in nets.items():
            params = list(net.parameters())
            if not params or math.isfinite(float(sum(p.detach().double().sum() for p in params))):
                continue  # one host sync per network; count only when something is off
            n_bad = sum(int((~torch.isfinite(p)).sum()) for p in params)
            if n_bad:
                bad_params.append(f"{n_bad} non-finite {name} parameters")
        if not bad and not bad_params:
            return
        what = ", ".join([f"{k}={metrics[k]}" for k in bad] + bad_params)
        kept = self.checkpoint_path()
        kept_text = (f"the last good checkpoint ({kept}, update {self._last_saved}) is kept"
                     if kept is not None and self._last_saved is not None else "no checkpoint was written")
        cfg = self.agent.config
        knobs = ", ".join(f"algo.{k}={getattr(cfg, k)}" for k in ("lr", "critic_lr", "entropy_coef", "max_grad_norm",
                                                                   "grad_norm_clip") if hasattr(cfg, k))
        raise DivergenceError(
            f"training diverged at update {self.iteration + 1} (env step {self.env_steps}): {what}. Likely cause: "
            f"a step size or coefficient too large or not finite ({knobs}) or rewards of a "
            f"scale float32 cannot hold; {kept_text}")

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
        with torch_threads(self.config.update_threads):
            metrics = self.agent.update(rollout)
        self.check_finite(metrics)
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
        if self._episode_wins:  # win rate of the last 100 finished battles (SMAX/SMAC)
            wins = self._episode_wins[-100:]
            row["win_rate"] = float(sum(wins) / len(wins))
            self._episode_wins = wins
        self._episode_returns = self._episode_returns[-100:]
        for callback in self.callbacks:
            extra = callback(self.iteration, self.agent, row)
            if extra:
                row.update(extra)
        if self._evaluates(self.iteration):
            row.update(self.evaluate())
        return row

    def _evaluates(self, iteration: int) -> bool:
        """Whether update ``iteration`` is followed by an evaluation (every ``eval_interval`` updates)."""
        return bool(self.config.eval_interval) and iteration % self.config.eval_interval == 0

    def make_progress(self) -> _progress.ProgressDisplay | None:
        """The display of ``config.progress`` over the env steps this run reaches (``n_updates`` updates)."""
        return _progress.make_display(
            self.config.progress, total=self.n_updates * self.steps_per_update,
            show_eval=bool(self.config.eval_interval and self.eval_env_fn is not None),
            log_every_s=self.config.log_every_s, console=self.progress_console, stream=self.progress_stream)

    def train(self) -> list[dict[str, float]]:
        """Run until ``total_steps``; returns the metric rows (also written to the run directory and every
        logger). Progress: a line or bar at the start, after updates, and a last one at the end (not after a
        failure)."""
        display = self.make_progress()
        try:
            if display is not None:
                display.start(self.env_steps)
            while self.iteration < self.n_updates:
                row = self.train_iteration()
                self.history.append(row)
                # a row with an evaluation is always logged, whatever log_interval says (none is lost)
                if (self.iteration % self.config.log_interval == 0 or self.iteration == self.n_updates
                        or self._evaluates(self.iteration)):
                    for logger in self.loggers:
                        logger.log(row, int(row["env_steps"]))
                if self.iteration % self.config.checkpoint_interval == 0 or self.iteration == self.n_updates:
                    self.save_checkpoint()
                    self._last_saved = self.iteration
                if display is not None:
                    display.update(self.env_steps, row)
            if display is not None:
                display.finish()
        finally:
            if display is not None:
                display.close()
            for logger in self.loggers:
                logger.close()
        return self.history
