"""Oracle harness: an algorithm x a tabular game, with the exact return after every update.

For an env built from a ``theory.MarkovGame`` (:class:`seqmarl.envs.MatrixGameEnv`) every observation can be
enumerated, so the actor networks are read out as exact policy tables ``pi^i(a^i|s)`` and the oracle computes
``J(pi)`` (theory.md §0) after every update. The report holds the J curve, the monotonicity violations
(``J_{k+1} < J_k - tol``), the final gap to ``J*`` and to ``J*_share``, the Nash gap, and the entropy.
An auto-regressive agent (AR-MAPPO) has no per-agent tables: it is read out as its exact JOINT table
``pi(a|s) = prod_k pi^{i_k}(a^{i_k}|s, a^{i_{<k}})`` (:func:`joint_policy`); its Nash gap is not defined (a
unilateral deviation of a non-product policy is not defined) and is recorded as NaN.

CLI: ``seqmarl validate algo=happo env=matrix/climbing total_steps=20000``.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from seqmarl.cli import command
from seqmarl.config import ConfigError, RunConfig, parse_overrides
from seqmarl.theory import Factorized, Joint, Policy, evaluate
from seqmarl.theory import optima


@torch.no_grad()
def policy_tables(agent: Any, env: Any) -> list[np.ndarray]:
    """Agent ``i``'s exact table ``pi^i(a^i | s)`` ``[S, A_i]`` (float64) by enumerating the env's states.
    Not defined for recurrent agents (their policy depends on the history, not only on ``s``)."""
    if getattr(getattr(agent, "config", None), "use_rnn", False):
        raise ValueError("policy_tables reads out a stationary table pi^i(a|s); a recurrent agent (use_rnn=True) "
                         "acts on its history, so no such table exists — use use_rnn=False for oracle validation")
    if not hasattr(env, "observation_table") or not hasattr(env, "game"):
        raise TypeError(f"env must be a tabular MatrixGameEnv (with .game and .observation_table()), got {type(env).__name__}")
    if _is_joint(agent):
        raise TypeError("policy_tables reads out per-agent tables pi^i(a|s); an auto-regressive agent's agents depend "
                        "on each other's actions, so it has only a joint table: use joint_policy(agent, env)")
    obs = env.observation_table().to(agent.device)  # [S, n, obs_dim]
    game = env.game
    avail = torch.stack([env.avail_actions_of_state(s) for s in range(game.n_states)]).to(agent.device)
    if getattr(agent, "family", None) == "off_policy":
        return _greedy_tables(agent, env, obs, avail)
    tables = []
    actors = _executing(agent)
    for i in range(game.n_agents):
        dist = actors.distribution_agent(i, obs[:, i], avail[:, i])
        probs = dist.probs.double().cpu().numpy()[:, : game.n_actions[i]]
        tables.append(probs / probs.sum(axis=1, keepdims=True))
    return tables


def _executing(agent: Any) -> Any:
    """The policy that executes: ``agent.execution_actors`` where defined (TAD-PPO: its students with
    ``tad_execute="student"``), else ``agent.actors``."""
    return getattr(agent, "execution_actors", getattr(agent, "actors", None))


def _is_joint(agent: Any) -> bool:
    """An agent whose executing actors are an auto-regressive joint policy (no per-agent tables)."""
    return bool(getattr(_executing(agent), "autoregressive", False))


@torch.no_grad()
def joint_policy(agent: Any, env: Any) -> Policy:
    """The agent's exact tabular policy on the env's game: ``Factorized(policy_tables(agent, env))`` for a product
    policy; for an auto-regressive agent the exact ``theory.policies.Joint`` table, by enumerating every joint
    action (every action prefix) of every state — ``pi(a|s) = prod_k pi^{i_k}(a^{i_k}|s, a^{i_{<k}})`` from the
    teacher-forced conditionals, averaged over the orders the agent samples in (``agent.order_support()``: one
    fixed order, or all n! for a random order per sample). No sampling."""
    if not _is_joint(agent):
        return Factorized(policy_tables(agent, env))
    if not hasattr(env, "observation_table") or not hasattr(env, "game"):
        raise TypeError(f"env must be a tabular MatrixGameEnv (with .game and .observation_table()), got {type(env).__name__}")
    from seqmarl.algos.core.joint_policy import exact_joint_table

    game = env.game
    obs = env.observation_table().to(agent.device)
    avail = torch.stack([env.avail_actions_of_state(s) for s in range(game.n_states)]).to(agent.device)
    return Joint(exact_joint_table(_executing(agent), obs, avail, game.n_actions, agent.order_support()))


def _greedy_tables(agent: Any, env: Any, obs: torch.Tensor, avail: torch.Tensor) -> list[np.ndarray]:
    """A value-based agent's greedy policy ``pi^i(a|s) = 1[a = argmax_a Q_i(o_i(s), a)]`` (first maximiser, as
    acting does). Stationary only without history inputs: the previous action is an input unless every episode
    is one step long."""
    if agent.config.obs_last_action and env.spec.episode_limit > 1:
        raise ValueError("policy_tables reads out a stationary table pi^i(a|s); this agent also sees its previous "
                         "action (obs_last_action=True) in episodes longer than one step — use "
                         "obs_last_action=False for oracle validation")
    from seqmarl.algos.core.exploration import greedy_actions

    q = agent.utilities(obs)  # [S, n, A_max]
    best = greedy_actions(q, avail).cpu().numpy()
    game = env.game
    return [np.eye(game.n_actions[i])[best[:, i]] for i in range(game.n_agents)]


@dataclass
class ValidationReport:
    """What ``seqmarl validate`` writes (JSON) — all returns exact (oracle), not sampled."""

    algo: str
    env: str
    seed: int
    j_star: float
    j_star_share: float | None
    returns: list[float] = field(default_factory=list)
    entropies: list[float] = field(default_factory=list)
    nash_gaps: list[float] = field(default_factory=list)
    tol: float = 1e-6
    nash_eps: float = 0.05
    value_fit: dict[str, Any] | None = None  # value-decomposition learners on one-shot games (seqmarl.value_oracle)

    @property
    def violations(self) -> list[float]:
        """Sizes of the decreases ``J_k - J_{k+1} > tol`` along the curve (index 0 is the initial policy)."""
        j = self.returns
        return [j[k] - j[k + 1] for k in range(len(j) - 1) if j[k + 1] < j[k] - self.tol]

    @property
    def final_return(self) -> float:
        return self.returns[-1]

    def summary(self) -> dict[str, Any]:
        v = self.violations
        return {
            "algo": self.algo, "env": self.env, "seed": self.seed, "updates": len(self.returns) - 1,
            "initial_J": self.returns[0], "final_J": self.final_return, "J_star": self.j_star,
            "J_star_share": self.j_star_share, "gap_to_J_star": self.j_star - self.final_return,
            "n_violations": len(v), "max_violation": max(v) if v else 0.0,
            "final_nash_gap": self.nash_gaps[-1], "epsilon": self.nash_eps,
            # None where the Nash gap is undefined (NaN: a non-product, auto-regressive policy)
            "is_epsilon_nash": None if math.isnan(self.nash_gaps[-1]) else bool(self.nash_gaps[-1] <= self.nash_eps),
            "final_entropy": self.entropies[-1],
            **({} if self.value_fit is None else {
                "Q_tot_residual": self.value_fit["learned_residual"],
                "oracle_residual": self.value_fit["oracle_residual"],
                "Q_tot_max_abs_error": self.value_fit["max_abs_error"],
                "greedy": self.value_fit["learned_greedy"], "oracle_greedy": self.value_fit["oracle_greedy"],
                "igm_consistent": self.value_fit["igm_consistent"]}),
        }

    def to_json(self) -> str:
        data = asdict(self)
        data["summary"] = self.summary()
        return json.dumps(data, indent=2)


class OracleTracker:
    """Trainer callback: exact J, Nash gap and (joint) entropy of the current policy after every update. An
    auto-regressive agent is evaluated by its exact joint table (:func:`joint_policy`); its Nash gap is NaN."""

    def __init__(self, env: Any, report: ValidationReport):
        self.env = env
        self.report = report

    def record(self, agent: Any) -> dict[str, float]:
        pi = joint_policy(agent, self.env)
        game = self.env.game
        j = evaluate.expected_return(game, pi)
        gap = optima.nash_gap(game, pi) if isinstance(pi, Factorized) else float("nan")
        ent = float(evaluate.state_distribution(game, pi) @ pi.entropy())
        self.report.returns.append(j)
        self.report.nash_gaps.append(gap)
        self.report.entropies.append(ent)
        return {"exact_J": j, "nash_gap": gap, "policy_entropy": ent}

    def __call__(self, iteration: int, agent: Any, row: dict[str, float]) -> dict[str, float]:
        return self.record(agent)


def shared_optimum_or_none(game: Any) -> float | None:
    """``J*_share`` where it is defined and certified (equal action counts, one-shot games)."""
    if len(set(game.n_actions)) != 1 or not game.is_one_shot:
        return None
    result = optima.shared_optimum(game)
    return float(result.value) if math.isfinite(result.certified_gap) else None


def oracle_run(
    algo: str,
    env: str,
    *,
    n_updates: int,
    num_envs: int = 64,
    rollout_length: int = 1,
    seed: int = 0,
    env_kwargs: dict[str, Any] | None = None,
    algo_kwargs: dict[str, Any] | None = None,
    device: str = "cpu",
    tol: float = 1e-6,
) -> ValidationReport:
    """In-memory oracle validation (no files): train ``n_updates`` and record the exact J after each one."""
    from seqmarl.algos import Trainer, TrainerConfig, make_agent
    from seqmarl.envs import make

    environment = make(env, num_envs=num_envs, device=device, seed=seed, **(env_kwargs or {}))
    if not hasattr(environment, "game"):
        raise ValueError(f"env must be a tabular env built from a theory game (matrix/...), got {env!r}")
    agent = make_agent(algo, environment.spec, device=device, seed=seed, **(algo_kwargs or {}))
    game = environment.game
    report = ValidationReport(algo=algo, env=env, seed=seed, j_star=optima.joint_optimum(game).value,
                              j_star_share=shared_optimum_or_none(game), tol=tol)
    tracker = OracleTracker(environment, report)
    tracker.record(agent)
    cfg = TrainerConfig(total_steps=n_updates * num_envs * rollout_length, rollout_length=rollout_length,
                        progress=False, tensorboard=False)
    Trainer(environment, agent, cfg, run_dir=None, seed=seed, callbacks=[tracker]).train()
    return report


class ValidateProgress:
    """Trainer callback showing the oracle's progress: a rich bar (update k/N, exact J, Nash gap) on a terminal;
    when the output is not a terminal (piped, a log file) one plain line every ~``every`` of the updates
    (and at the last one), so a long piped run still says where it is."""

    def __init__(self, report: ValidationReport, total: int, console: Any, every: float = 0.1) -> None:
        self.report = report
        self.total = max(int(total), 1)
        self.console = console
        self.every = every
        self.start_iteration = 0
        self._progress: Any = None
        self._task: Any = None
        self._last_bucket = -1
        self._t0 = time.perf_counter()

    def _info(self) -> str:
        r = self.report
        n_bad = len(r.violations)
        return (f"exact J {r.returns[-1]:.4g} (J* {r.j_star:.4g})  Nash gap {r.nash_gaps[-1]:.3g}  "
                f"entropy {r.entropies[-1]:.3g}  falls > tol {n_bad}")

    def start(self) -> None:
        self._t0 = time.perf_counter()
        if self.console.is_terminal:
            from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

            self._progress = Progress(TextColumn("[bold]validate"), BarColumn(),
                                      TextColumn("{task.completed}/{task.total} updates"),
                                      TextColumn("{task.fields[info]}"), TimeRemainingColumn(),
                                      console=self.console, transient=True)
            self._progress.start()
            self._task = self._progress.add_task("validate", total=self.total, info="")

    def stop(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None

    def __call__(self, iteration: int, agent: Any, row: dict[str, float]) -> None:
        if self._progress is not None:
            self._progress.update(self._task, completed=iteration, info=self._info())
            return
        bucket = int(iteration / self.total / self.every + 1e-9)
        if bucket > self._last_bucket or iteration == self.total:
            self._last_bucket = bucket
            self.console.print(f"validate: update {iteration}/{self.total} ({100 * iteration / self.total:.0f}%)  "
                               f"{self._info()}  {time.perf_counter() - self._t0:.1f} s", highlight=False,
                               markup=False, soft_wrap=True)
            self.console.file.flush()


def validate(cfg: RunConfig, tol: float = 1e-6, console: Any = None) -> tuple[ValidationReport, Path]:
    """Train ``cfg`` with an :class:`OracleTracker`; write ``validation.json``, ``validation.png`` and
    ``return.png``. With ``cfg.progress``, progress goes to ``console`` (a rich ``Console``; default stdout):
    a bar on a terminal, plain lines every ~10% of the updates otherwise (:class:`ValidateProgress`)."""
    import copy

    from seqmarl import plots
    from seqmarl.config import resolve
    from seqmarl.train import build, fresh_run_dir

    cfg = resolve(cfg)
    if cfg.resume:
        raise ConfigError("validate does not resume runs (the oracle curve starts at the initial policy); "
                          "omit resume=")
    from seqmarl.algos import config_for

    if cfg.algo_kwargs.get("use_rnn", getattr(config_for(cfg.algo), "use_rnn", False)):
        raise ConfigError("validate reads out stationary policy tables pi^i(a|s); algo.use_rnn=true acts on its "
                          "history, so use algo.use_rnn=false")
    run_dir = fresh_run_dir(cfg)  # checks only; nothing is created yet
    cfg.run_dir = str(run_dir)
    quiet = copy.copy(cfg)
    quiet.progress = False  # the trainer's own bar is replaced by ValidateProgress (with the exact J)
    env, agent, trainer = build(quiet)
    if not hasattr(env, "game"):
        raise ConfigError(f"validate needs a tabular env built from a theory game (matrix/...), got env={cfg.env}")
    game = env.game
    report = ValidationReport(algo=cfg.algo, env=cfg.env, seed=cfg.seed, j_star=optima.joint_optimum(game).value,
                              j_star_share=shared_optimum_or_none(game), tol=tol)
    tracker = OracleTracker(env, report)
    tracker.record(agent)  # the initial policy
    trainer.callbacks.append(tracker)
    progress = None
    if cfg.progress:
        if console is None:
            from rich.console import Console

            console = Console(soft_wrap=True)
        progress = ValidateProgress(report, trainer.n_updates, console)
        trainer.callbacks.append(progress)  # after the tracker: it shows the J just computed
    assert trainer.run_dir is not None
    trainer.run_dir.mkdir(parents=True, exist_ok=True)
    from seqmarl.algos.trainer import _atomic_write_text

    _atomic_write_text(trainer.run_dir / "config.yaml", cfg.to_yaml())
    if progress is not None:
        progress.start()
    try:
        trainer.train()
    finally:
        if progress is not None:
            progress.stop()
    if getattr(agent, "family", None) == "off_policy" and game.n_states == 1 and env.spec.episode_limit == 1:
        from seqmarl.value_oracle import value_fit_report

        report.value_fit = value_fit_report(agent, env).to_dict()
    (trainer.run_dir / "validation.json").write_text(report.to_json())
    plot_report(report, trainer.run_dir / "validation.png")
    from seqmarl.theory.conditional_entropy import is_permutation_game

    if is_permutation_game(game):  # joint heat map, H(a^{i_k} | a^{i_<k}) against log(n - k + 1): plots.py
        orders = agent.order_support() if hasattr(agent, "order_support") else []
        plots.write_permutation_pictures(joint_policy(agent, env).probs()[0], trainer.run_dir,
                                         order=orders[0] if len(orders) == 1 else None,
                                         label=f"{cfg.algo} seed {cfg.seed}")
    plots.write_return_plot(trainer.history, trainer.run_dir / "return.png", algo=cfg.algo, env=cfg.env,
                            seed=cfg.seed, game=game)
    return report, trainer.run_dir


def plot_report(report: ValidationReport, path: Path) -> None:
    """``validation.png``: :func:`seqmarl.plots.validation_figure` (J with J*/J*_share, sizes of the falls of J,
    Nash gap, entropy)."""
    from seqmarl import plots

    plots.save_figure(plots.validation_figure(report), path)


def summary_lines(report: ValidationReport, run_dir: Path | None = None) -> list[str]:
    """The final summary as plain ``key  value`` lines: one value per line, so no terminal width splits one."""
    items = report.summary()
    width = max(len(k) for k in items)
    lines = [f"validate {report.algo} on {report.env} (seed {report.seed}): exact oracle after every update"]
    for key, value in items.items():
        shown = "none" if value is None else f"{value:.6g}" if isinstance(value, float) else str(value)
        lines.append(f"  {key:<{width}}  {shown}")
    if run_dir is not None:
        lines.append("written:")
        lines += [f"  {run_dir / name}" for name in ("validation.json", "validation.png", "return.png")]
        from seqmarl.plots import PERMUTATION_FILES

        lines += [f"  {run_dir / name}" for name in PERMUTATION_FILES if (run_dir / name).exists()]
    return lines


def _args(p: argparse.ArgumentParser) -> None:
    from seqmarl.train import top_level_help

    p.usage = "seqmarl validate key=value ... (e.g. algo=happo env=matrix/climbing total_steps=20000)"
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.epilog = "tabular envs only (matrix/...): the exact oracle needs the game's tables\n\n" + top_level_help()


@command("validate", "train on a tabular game and check every update against the exact oracle", _args)
def _main(ns: argparse.Namespace) -> int:
    from rich.console import Console

    from seqmarl.train import run_guarded

    console = Console(soft_wrap=True)
    result = run_guarded(lambda: validate(parse_overrides(ns.overrides), console=console), console)
    if isinstance(result, int):
        return result
    report, run_dir = result
    for line in summary_lines(report, run_dir):
        console.print(line, highlight=False, markup=False, soft_wrap=True)
    return 0
