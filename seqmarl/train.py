"""``seqmarl train algo=happo env=matrix/xor env.n_agents=4 seed=0`` — train one algorithm on one env."""

from __future__ import annotations

import argparse
import contextlib
import copy
import errno
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from seqmarl.cli import command
from seqmarl.config import (
    _FALSE,
    _TRUE,
    SAFE_ON_RESUME,
    ConfigError,
    RunConfig,
    load_run_config,
    parse_overrides,
    resolve,
)
from seqmarl.run_lock import run_dir_lock


def _say(text: str) -> None:
    print(text, file=sys.stderr)


@dataclass
class OutputOptions:
    """How a run shows and logs its progress; changes nothing it computes, so it is not saved in config.yaml and
    may differ on resume. ``progress``: ``auto``/``bar``/``lines``/``off`` (``None``: from the run config's boolean
    ``progress``, true = auto); ``log_every_s``: seconds between progress lines (``None``: the trainer's default,
    :data:`seqmarl.algos.progress.DEFAULT_LOG_EVERY_S`); ``loggers``: names besides the CSV/JSONL files
    (``tensorboard``, ``wandb``, ``mlflow``). (Imports of ``seqmarl.algos`` stay lazy: ``seqmarl --help`` does not
    load torch.)"""

    progress: str | None = None
    log_every_s: float | None = None
    loggers: tuple[str, ...] = ()


OUTPUT_KEYS = ("progress", "log_every_s", "logger")


def split_output_overrides(args: Sequence[str]) -> tuple[list[str], OutputOptions]:
    """Take ``progress=auto|bar|lines|off``, ``log_every_s=SECONDS`` and ``logger=NAME[,NAME]`` out of the
    ``key=value`` list. ``progress`` stays in it as ``progress=true``/``false`` (the run config's boolean: false
    exactly for ``off``); the other two are removed. A bad value raises :class:`ConfigError` naming the key."""
    from seqmarl.algos.loggers import parse_logger_names
    from seqmarl.algos.progress import MODES, check_log_every_s, progress_mode

    rest: list[str] = []
    out = OutputOptions()
    for arg in args:
        key, eq, raw = arg.partition("=") if isinstance(arg, str) else ("", "", "")
        key, raw = key.strip(), raw.strip()
        if not eq or key not in OUTPUT_KEYS:
            rest.append(arg)
            continue
        if key == "progress":
            low = raw.lower()
            value: bool | str = True if low in _TRUE else False if low in _FALSE else low
            try:
                out.progress = progress_mode(value)
            except ValueError:
                raise ConfigError(f"progress must be one of {', '.join(MODES)} (true/false: aliases of auto/off), "
                                  f"got {raw!r}") from None
            rest.append(f"progress={'false' if out.progress == 'off' else 'true'}")
        elif key == "log_every_s":
            try:
                out.log_every_s = check_log_every_s(float(raw))
            except ValueError:
                raise ConfigError(f"log_every_s must be a positive number of seconds, got {raw!r}") from None
        else:
            try:
                out.loggers = parse_logger_names(raw)
            except ValueError as exc:
                raise ConfigError(str(exc)) from None
    return rest, out


def build(cfg: RunConfig, callbacks: list[Callable] | None = None, output: OutputOptions | None = None):
    """Environment, agent and trainer of a resolved :class:`RunConfig` (nothing is written to disk here).
    ``output``: progress display and extra loggers (default: ``cfg.progress``, TensorBoard per ``cfg.tensorboard``);
    a logger whose package is missing is a :class:`ConfigError` with the pip command."""
    from seqmarl.algos import Trainer, TrainerConfig, make_agent
    from seqmarl.algos.loggers import MissingExtraError, require_extra
    from seqmarl.envs import make

    output = output or OutputOptions()
    if "tensorboard" in output.loggers and not cfg.tensorboard:
        raise ConfigError("logger=tensorboard and tensorboard=false disagree; drop one of them")
    for name in output.loggers:  # before the env and agent are built
        try:
            require_extra(name)
        except MissingExtraError as exc:
            raise ConfigError(str(exc)) from None

    try:
        env = make(cfg.env, num_envs=cfg.num_envs, device=cfg.device, seed=cfg.seed, **cfg.env_kwargs)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"env={cfg.env} with {cfg.env_kwargs or 'its defaults'}: {exc}") from None
    try:
        agent = make_agent(cfg.algo, env.spec, device=cfg.device, seed=cfg.seed, **cfg.algo_kwargs)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"algo={cfg.algo}: {exc}") from None
    rollout = cfg.rollout_length if cfg.rollout_length is not None else min(env.spec.episode_limit or 200, 200)
    try:
        trainer_cfg = TrainerConfig(
            total_steps=cfg.total_steps, rollout_length=rollout, eval_interval=cfg.eval_interval,
            eval_episodes=cfg.eval_episodes, checkpoint_interval=cfg.checkpoint_interval,
            log_interval=cfg.log_interval, progress=output.progress or cfg.progress, tensorboard=cfg.tensorboard,
            loggers=output.loggers, update_threads=cfg.update_threads,
            **({} if output.log_every_s is None else {"log_every_s": output.log_every_s}),
        )
    except (TypeError, ValueError) as exc:
        raise ConfigError(str(exc)) from None

    def eval_env(n: int):
        return make(cfg.env, num_envs=n, device=cfg.device, seed=cfg.seed + 1, **cfg.env_kwargs)

    run_dir = Path(cfg.run_dir) if cfg.run_dir else cfg.default_run_dir()
    trainer = Trainer(env, agent, trainer_cfg, run_dir=run_dir, seed=cfg.seed, eval_env_fn=eval_env,
                      callbacks=callbacks, meta={"algo": cfg.algo, "env": cfg.env})
    return env, agent, trainer


_RUN_FILES = ("config.yaml", "metrics.jsonl", "metrics.csv", "checkpoints", "tb")


def holds_a_run(path: Path) -> bool:
    """Whether ``path`` already holds a run's files."""
    return path.is_dir() and any((path / name).exists() for name in _RUN_FILES)


def check_writable_dir(path: Path, key: str = "run_dir") -> None:
    """Raise :class:`ConfigError` if ``path`` cannot become a run directory (a file, or not writable)."""
    if path.exists() and not path.is_dir():
        raise ConfigError(f"{key}={path} is a file, not a directory; choose another {key}")
    probe = path
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir():
        raise ConfigError(f"{key}={path}: {probe} is a file, so the directory cannot be created")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise ConfigError(f"{key}={path}: {probe} is not writable")


def fresh_run_dir(cfg: RunConfig, say: Callable[[str], None] = _say) -> Path:
    """The run directory of a new run: an explicit ``run_dir`` that already holds a run is refused; the default
    one moves on to ``<default>-2``, ``-3``, ... and says so."""
    if cfg.run_dir:
        path = Path(cfg.run_dir)
        check_writable_dir(path)
        if holds_a_run(path):
            raise ConfigError(f"run_dir={path} already holds a run; continue it with resume={path}, or choose "
                              "another run_dir (nothing was changed)")
        return path
    base = cfg.default_run_dir()
    path, k = base, 1
    while holds_a_run(path) or (path.exists() and not path.is_dir()):
        k += 1
        path = base.with_name(f"{base.name}-{k}")
    if path != base:
        say(f"{base} already holds a run (continue it with resume={base}); writing this run to {path}")
    check_writable_dir(path)
    return path


def resume_config(cfg: RunConfig) -> tuple[RunConfig, Path, Path]:
    """The run to resume: its saved ``config.yaml`` with the command line's safe overrides
    (:data:`seqmarl.config.SAFE_ON_RESUME`, e.g. ``total_steps``) on top; any other key that differs from the
    saved run is refused. Returns (config, run dir, checkpoint path). Reads only."""
    assert cfg.resume is not None
    target = Path(cfg.resume)
    if target.is_dir():
        run_dir, ckpt = target, target / "checkpoints" / "last.pt"
    elif target.is_file():
        ckpt = target
        run_dir = target.parent.parent if target.parent.name == "checkpoints" else target.parent
    else:
        raise FileNotFoundError(f"no checkpoint at {target}: resume= takes a run directory or its "
                                "checkpoints/last.pt (nothing was changed)")
    if not (run_dir / "config.yaml").is_file():
        raise ConfigError(f"resume={target}: {run_dir} has no config.yaml, so it is not a seqmarl run directory")
    saved = resolve(load_run_config(run_dir / "config.yaml"))
    if cfg.run_dir and Path(cfg.run_dir).resolve() != run_dir.resolve():
        raise ConfigError(f"resume={target} continues the run in {run_dir}; run_dir={cfg.run_dir} differs "
                          "(omit run_dir, or start a new run without resume)")
    from dataclasses import asdict

    from seqmarl.algos import config_for
    from seqmarl.envs import registry

    given = copy.copy(cfg)  # keys not given on the command line come from the saved run
    for key in ("algo", "env", "preset"):
        if key not in cfg.explicit:
            setattr(given, key, getattr(saved, key))
    given = resolve(given)
    params = registry._parameters(registry._lookup(saved.env)) or {}
    saved_algo = asdict(config_for(saved.algo)(**saved.algo_kwargs))
    given_algo = asdict(config_for(given.algo)(**given.algo_kwargs))
    differ = []
    for key in sorted(cfg.explicit):
        if key in SAFE_ON_RESUME:
            continue
        if key.startswith("env."):
            name = key[4:]
            default = params[name].default if name in params else None
            mine, theirs = given.env_kwargs.get(name), saved.env_kwargs.get(name, default)
        elif key.startswith("algo."):
            name = key[5:]
            mine, theirs = given_algo.get(name), saved_algo.get(name)
        else:
            mine, theirs = getattr(given, key), getattr(saved, key)
        if mine != theirs:
            differ.append(f"{key}={mine} (the run has {theirs})")
    if differ:
        raise ConfigError(f"resume={target}: {', '.join(differ)}; a resumed run keeps its config.yaml, only "
                          f"{', '.join(k for k in SAFE_ON_RESUME if k not in ('resume', 'run_dir'))} may change "
                          "(nothing was changed)")
    merged = copy.copy(saved)
    for key in cfg.explicit & set(SAFE_ON_RESUME):
        setattr(merged, key, getattr(cfg, key))
    merged.resume, merged.run_dir = str(cfg.resume), str(run_dir)
    merged.explicit = set(cfg.explicit)
    return merged, run_dir, ckpt


def run(cfg: RunConfig, callbacks: list[Callable] | None = None, say: Callable[[str], None] = _say,
        output: OutputOptions | None = None):
    """Train (resuming if ``cfg.resume``); writes config.yaml, metrics, checkpoints and a return plot.
    ``output``: the progress display and extra loggers (:class:`OutputOptions`).

    Nothing on disk changes until the configuration, the run directory and (on resume) the checkpoint have
    all been checked: a failed or wrong ``resume=`` leaves the run as it was. ``trainer.already_complete`` is
    True (and nothing is written) when the checkpoint has already reached ``total_steps``."""
    ckpt: Path | None = None
    if cfg.resume:
        cfg.validate()
        cfg, run_dir, ckpt = resume_config(cfg)
        if not ckpt.exists():
            say(f"{run_dir} has no checkpoint yet (the run stopped before its first one, "
                f"checkpoint_interval={cfg.checkpoint_interval}): starting it again from the beginning")
            ckpt = None
    else:
        cfg = resolve(cfg)
        run_dir = fresh_run_dir(cfg, say)
        cfg.run_dir = str(run_dir)
    with contextlib.ExitStack() as held:
        # one process per run directory (seqmarl.run_lock), from before anything in it is read or written; a fresh
        # directory is locked as soon as it is created (below)
        locked = run_dir.is_dir()
        if locked:
            held.enter_context(run_dir_lock(run_dir))
        env, agent, trainer = build(cfg, callbacks, output)
        trainer.already_complete = False
        if ckpt is not None:
            trainer.load_checkpoint(ckpt)  # reads only; raises CheckpointError before anything is written
            if trainer.iteration >= trainer.n_updates:
                trainer.already_complete = True
                trainer.history = trainer.logger.rows() if trainer.logger is not None else []
                say(f"run {run_dir} is already complete: its checkpoint is at update {trainer.iteration} "
                    f"({trainer.env_steps} env steps) and total_steps={cfg.total_steps} asks for "
                    f"{trainer.n_updates} update(s); raise total_steps to train further (nothing was changed)")
                return trainer, trainer.history
        try:
            run_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"run_dir={run_dir} cannot be created: {exc.strerror or exc}") from None
        if not locked:
            held.enter_context(run_dir_lock(run_dir))
        from seqmarl.algos.trainer import _atomic_write_text

        _atomic_write_text(run_dir / "config.yaml", cfg.to_yaml())
        if cfg.resume:
            if ckpt is None:
                trainer.iteration = 0
            trainer.adopt_logs()
        history = trainer.train()
        from seqmarl import plots

        plots.write_return_plot(trainer.history, run_dir / "return.png", algo=cfg.algo, env=cfg.env, seed=cfg.seed,
                                game=getattr(env, "game", None))
        return trainer, history


def run_args(args: Sequence[str], callbacks: list[Callable] | None = None, say: Callable[[str], None] = _say):
    """:func:`run` from ``seqmarl train``'s ``key=value`` arguments, ``config=NAME`` and the output keys
    (``progress=``, ``log_every_s=``, ``logger=``; :func:`split_output_overrides`) included."""
    from seqmarl import tuned

    overrides, output = split_output_overrides(args)
    return tuned.run_with_config(overrides, lambda cfg: run(cfg, callbacks=callbacks, say=say, output=output))


def top_level_help(output_keys: bool = False) -> str:
    """The algorithms, the environments and every top-level key with its default (``train/validate --help``);
    ``output_keys``: also ``seqmarl train``'s progress modes, ``log_every_s`` and ``logger`` (:class:`OutputOptions`)."""
    from dataclasses import MISSING, fields

    from seqmarl.algos import known_algorithms
    from seqmarl.algos.progress import DEFAULT_LOG_EVERY_S
    from seqmarl.envs import registry

    lines = [f"algorithms: {', '.join(known_algorithms())}  (fields: seqmarl config ALGO, or algo=ALGO --help)",
             f"environments: {', '.join(registry.known_envs())}", "", "top-level keys (default):"]
    for f in fields(RunConfig):
        if f.name in ("env_kwargs", "algo_kwargs"):
            continue
        default = f.default if f.default is not MISSING else None
        lines.append(f"  {f.name}={'none' if default is None else str(default).lower() if isinstance(default, bool) else default}")
        if output_keys and f.name == "progress":
            lines[-1] += ("  (auto|bar|lines|off; true = auto, false = off. auto: a bar on a terminal, else a line "
                          "on stderr every log_every_s seconds and at the start and end:")
            lines.append("      [seqmarl] step N/TOTAL (P%) | R steps/s | return X [| eval Y] | elapsed T | ETA T")
            lines.append("      steps/s over the last 60 s of this process; return: mean of the last 100 training "
                         "episodes; eval: greedy evaluation return; ETA: steps left / steps/s)")
            lines.append(f"  log_every_s={DEFAULT_LOG_EVERY_S:g}  (seconds between progress lines)")
        if output_keys and f.name == "tensorboard":
            lines.append("  logger=none  (more loggers, comma-separated: tensorboard, wandb (offline unless "
                         "WANDB_MODE=online; pip install 'seqmarl[wandb]'), mlflow (file store run_dir/mlruns unless "
                         "MLFLOW_TRACKING_URI; pip install 'seqmarl[mlflow]'); metrics.csv/jsonl are always written)")
    lines += ["", "env.<arg>=VALUE: the env factory's arguments (e.g. env.n_agents=4); algo.<field>=VALUE: the "
              "algorithm's config fields; preset=harl: HARL's defaults (docs/harl_differences.md)",
              "config=NAME: start from a tuned config with provenance, the other key=value win (seqmarl configs; "
              "docs/configs.md)"]
    return "\n".join(lines)


def algo_fields(algo: str) -> list[tuple[str, Any, str]]:
    """``(field, default, documentation with source)`` for every config field of ``algo``."""
    import inspect
    import re
    from dataclasses import fields

    from seqmarl.algos import config_for

    cls = config_for(algo)
    doc = inspect.getdoc(cls.__mro__[-2] if cls.__mro__[-2] is not object else cls) or ""
    base_doc = inspect.getdoc(cls.__mro__[1]) if len(cls.__mro__) > 2 else ""
    entries: dict[str, str] = {}
    for text in (base_doc or "", doc, inspect.getdoc(cls) or ""):  # the class's own fields last (e.g. TAD-PPO's)
        for block in re.split(r"\n(?=\s{4}[a-z_][a-z_0-9, /]*:)", text):
            head, _, body = block.strip().partition(":")
            for name in re.split(r"[ ,/]+", head):
                if name and name not in entries:
                    entries[name] = " ".join(body.split())
    src = inspect.getsource(cls.__mro__[1]) if len(cls.__mro__) > 2 else ""
    for m in re.finditer(r"^\s+(\w+): [^=\n]+= [^#\n]+# (.+)$", src, re.M):
        entries.setdefault(m.group(1), "")
        if m.group(2) not in entries[m.group(1)]:
            entries[m.group(1)] = (entries[m.group(1)] + " [" + m.group(2).strip() + "]").strip()
    out = []
    instance = cls()
    for f in fields(cls):
        if not f.name.startswith("_"):
            out.append((f.name, getattr(instance, f.name), entries.get(f.name, "")))
    return out


def print_algo_fields(algo: str) -> None:
    from seqmarl.algos import config_for

    cls = config_for(algo)
    print(f"algo={algo} ({cls.__name__}): algo.<field>=VALUE, default and source (docs: seqmarl/algos/configs.py)")
    for name, default, text in algo_fields(algo):
        shown = ",".join(map(str, default)) if isinstance(default, tuple) else str(default).lower() if isinstance(default, bool) else default
        print(f"  {name}={shown}" + (f"  — {text}" if text else ""))


def _args(p: argparse.ArgumentParser) -> None:
    p.usage = "seqmarl train key=value ... (e.g. algo=happo env=matrix/xor env.n_agents=4 seed=0)"
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.epilog = top_level_help(output_keys=True)


def _config_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("algo", help="algorithm name")


@command("config", "list an algorithm's config fields with defaults and sources: seqmarl config happo", _config_args)
def _config_main(ns: argparse.Namespace) -> int:
    from seqmarl.algos import known_algorithms

    if ns.algo not in known_algorithms():
        print(f"error: unknown algo {ns.algo!r}; known algorithms: {known_algorithms()}", file=sys.stderr)
        return 2
    print_algo_fields(ns.algo)
    return 0


@command("train", "train an algorithm: seqmarl train algo=happo env=matrix/xor env.n_agents=4 seed=0", _args)
def _main(ns: argparse.Namespace) -> int:
    from rich.console import Console

    console = Console(soft_wrap=True)
    from seqmarl import tuned

    if any(a.strip() == "config=list" for a in ns.overrides):  # the tuned configs (seqmarl configs)
        tuned.print_list()
        return 0
    code = run_guarded(lambda: run_args(ns.overrides), console)
    if isinstance(code, int):
        return code
    trainer, history = code
    if getattr(trainer, "already_complete", False):
        return 0
    last = history[-1] if history else {}
    console.print(f"run dir: {trainer.run_dir}  updates: {trainer.iteration}  env steps: {trainer.env_steps}  "
                  f"final episode return: {last.get('episode_return', float('nan')):.4f}", highlight=False,
                  markup=False, soft_wrap=True)  # one line: a narrow terminal must not split a value
    return 0


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)


def run_guarded(job: Callable[[], Any], console: Any) -> Any:
    """Run ``job``; print the expected failures as one message (no traceback) and return their exit code:
    2 for a bad configuration, argument, run directory or checkpoint; 1 for a diverged run or a full disk."""
    from seqmarl.algos.trainer import CheckpointError, DivergenceError

    try:
        return job()
    except (ConfigError, CheckpointError, FileNotFoundError) as exc:
        console.print(f"[red]error:[/red] {_escape(str(exc))}", highlight=False)
        return 2
    except DivergenceError as exc:
        console.print(f"[red]diverged:[/red] {_escape(str(exc))}", highlight=False)
        return 1
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            console.print(f"[red]error:[/red] {_escape(str(exc.strerror or exc))}", highlight=False)
            return 1
        raise
