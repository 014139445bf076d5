"""``seqmarl train algo=happo env=matrix/xor env.n_agents=4 seed=0`` — train one algorithm on one env."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Callable

from seqmarl.cli import command
from seqmarl.config import ConfigError, RunConfig, parse_overrides, resolve


def build(cfg: RunConfig, callbacks: list[Callable] | None = None):
    """Environment, agent and trainer of a resolved :class:`RunConfig`."""
    from seqmarl.algos import Trainer, TrainerConfig, make_agent
    from seqmarl.envs import make

    env = make(cfg.env, num_envs=cfg.num_envs, device=cfg.device, seed=cfg.seed, **cfg.env_kwargs)
    agent = make_agent(cfg.algo, env.spec, device=cfg.device, seed=cfg.seed, **cfg.algo_kwargs)
    rollout = cfg.rollout_length or min(env.spec.episode_limit or 200, 200)
    trainer_cfg = TrainerConfig(
        total_steps=cfg.total_steps, rollout_length=rollout, eval_interval=cfg.eval_interval,
        eval_episodes=cfg.eval_episodes, checkpoint_interval=cfg.checkpoint_interval, log_interval=cfg.log_interval,
        progress=cfg.progress, tensorboard=cfg.tensorboard,
    )

    def eval_env(n: int):
        return make(cfg.env, num_envs=n, device=cfg.device, seed=cfg.seed + 1, **cfg.env_kwargs)

    run_dir = Path(cfg.run_dir) if cfg.run_dir else cfg.default_run_dir()
    trainer = Trainer(env, agent, trainer_cfg, run_dir=run_dir, seed=cfg.seed, eval_env_fn=eval_env, callbacks=callbacks)
    return env, agent, trainer


def run(cfg: RunConfig, callbacks: list[Callable] | None = None):
    """Train (resuming if ``cfg.resume``); writes config.yaml, metrics, checkpoints and a return plot."""
    cfg = resolve(cfg)
    if cfg.resume:
        saved = Path(cfg.resume)
        run_dir = saved if saved.is_dir() else saved.parent.parent
        cfg.run_dir = str(run_dir)
    env, agent, trainer = build(cfg, callbacks)
    assert trainer.run_dir is not None
    trainer.run_dir.mkdir(parents=True, exist_ok=True)
    (trainer.run_dir / "config.yaml").write_text(cfg.to_yaml())
    if cfg.resume:
        trainer.load_checkpoint(cfg.resume)
    history = trainer.train()
    plot_curve(trainer.history, trainer.run_dir / "return.png", key="episode_return")
    return trainer, history


def plot_curve(rows: list[dict], path: Path, key: str) -> None:
    """Save ``key`` against env steps as a PNG next to the metrics."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    xs = [r["env_steps"] for r in rows if key in r]
    ys = [r[key] for r in rows if key in r]
    fig, ax = plt.subplots(figsize=(5, 3.2))
    ax.plot(xs, ys)
    ax.set_xlabel("environment steps")
    ax.set_ylabel(key)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _args(p: argparse.ArgumentParser) -> None:
    p.usage = "seqmarl train key=value ... (e.g. algo=happo env=matrix/xor env.n_agents=4 seed=0)"
    p.epilog = ("keys: algo, env, seed, device, num_envs, total_steps, rollout_length, eval_interval, eval_episodes, "
                "checkpoint_interval, log_interval, run_dir, resume, progress, tensorboard, preset (harl: HARL's "
                "defaults, docs/harl_differences.md); env.<arg>; algo.<field>")


@command("train", "train an algorithm: seqmarl train algo=happo env=matrix/xor env.n_agents=4 seed=0", _args)
def _main(ns: argparse.Namespace) -> int:
    from rich.console import Console

    console = Console()
    try:
        cfg = parse_overrides(ns.overrides)
        trainer, history = run(cfg)
    except ConfigError as exc:
        console.print(f"[red]config error:[/red] {exc}")
        return 2
    last = history[-1] if history else {}
    console.print(f"run dir: {trainer.run_dir}  updates: {trainer.iteration}  env steps: {trainer.env_steps}  "
                  f"final episode return: {last.get('episode_return', float('nan')):.4f}")
    return 0
