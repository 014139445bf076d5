"""seqmarl next to HARL (PKU-MARL/HARL), the same algorithm, hyper-parameters, env steps and seeds (issue 11 §1).

    python benchmarks/vs_harl.py --harl /tmp/harl-src \\
        --harl-python-mpe /tmp/harl-mpe/bin/python --harl-python-mujoco /tmp/harl-mujoco/bin/python \\
        [--steps 40000] [--seeds 1] [--algos happo,mappo,hatrpo] [--envs halfcheetah6x1,simple_spread[,simple_spread_jax]] \\
        [--harl-threads 1[,4]] [--seqmarl-threads 1] [--eval end|default] [--seqmarl-arg KEY=VALUE ...] \\
        [--work DIR] [--out PATH]

HARL is run beside this project, never imported into it: ``python train.py --algo A --env E ...`` in
``$HARL/examples`` with HARL's own virtual environment (one per simulator; how to build them: the shared HARL
notes, ``docs/vs_harl.md``). seqmarl is run as ``python -m seqmarl train algo=A env=... preset=harl``.

What is held equal
------------------
* Algorithm and hyper-parameters: HARL's ``<algo>.yaml`` defaults on its side; ``preset=harl`` on ours, which sets
  every field with a HARL counterpart to HARL's value (``algos/configs.py`` ``HARL_PRESETS``,
  ``docs/harl_differences.md``), including ``num_envs = n_rollout_threads = 20`` and
  ``rollout_length = episode_length = 200``: one update per ``20 * 200 = 4000`` env steps.
* Env steps ``N`` (``--steps``, rounded down to whole updates of 4000) and seeds ``1..K`` (``--seed`` on both sides).
* Observations: MaMuJoCo ``env.obs=state+id`` (agent ``i`` sees the full state and a one-hot id, standardised per
  vector, as HARL's ``MujocoMulti``); MPE continuous actions (``env.continuous_actions=true``, HARL
  ``--continuous_actions True``).
* Threads: HARL ``--torch_threads T`` (``--harl-threads``; 1 is HARL's best CPU setting, 4 its default); seqmarl
  ``OMP_NUM_THREADS = MKL_NUM_THREADS = T'`` (``--seqmarl-threads``), which sets torch's intra-op threads at start.
* Evaluation (``--eval``): ``end`` (default) evaluates once, after the last update, ``--eval-episodes`` (default
  20, HARL's) episodes on both sides;
  ``default`` uses HARL's default schedule on both sides (every 25 updates, 20 episodes). HARL evaluates with the
  mean action; the seqmarl column is ``eval_return_greedy`` (seqmarl also runs a stochastic evaluation, so its
  evaluation costs twice HARL's per episode).

What is measured (per run)
--------------------------
* ``train_sps``: env steps per second of the training loop only (collection + update), evaluation, checkpoints and
  process start-up excluded. HARL: its own logged ``FPS`` of the last update (``--log_interval 1``; HARL's FPS is
  ``total_num_steps / (t_log - t_start)``, ``t_start`` after the envs are built and reset; the last update's log
  comes before that update's evaluation). seqmarl: ``N / sum_k (4000 / sps_k)`` over the rows of
  ``metrics.jsonl`` (``sps_k`` = steps of update ``k`` / seconds of that collect + update).
* ``wall_sps``: ``N`` / the process's wall-clock seconds (start-up, env construction, evaluation and checkpoints
  included: with ``--eval default`` this is the rate under HARL's default evaluation schedule).
* ``steps_per_cpu_s``: ``N`` / the CPU seconds (user + system) of the process and its children (HARL's 20 + 10
  env subprocesses), everything included as for ``wall_sps``. On a shared machine this is the fairer rate: HARL's
  30 processes take a larger share of a contended CPU than seqmarl's one, which flatters HARL's wall-clock rates.
  ``cpu_ratio`` is seqmarl's over HARL's.
* ``train_return``: HARL: the mean episode return it prints at the last update (episodes that ended during the last
  ``log_interval`` = 1 update; each agent's reward averaged over agents, which is the team reward on both tasks);
  seqmarl: ``episode_return`` of the last ``metrics.jsonl`` row (mean of the last <= 100 finished episodes: on
  HalfCheetah every env ends at the same step, so that is the last 5 rounds of 20). The windows differ; the
  evaluation return is the like-for-like figure.
* ``eval_return``: mean return of the 20 evaluation episodes after the last update (HARL ``progress.txt``).

Per (algorithm, env) over the seeds: mean and 95% Student-t interval of each column, and ``ratio`` = mean seqmarl
``train_sps`` / mean HARL ``train_sps`` (HARL at ``--harl-threads``' first value). Targets (issue 11): ratio >= 5 on
HalfCheetah 6x1, >= 3 on MPE simple_spread, at a return not worse (``return_not_worse``: seqmarl's mean eval
return >= HARL's mean minus HARL's interval half-width; ``null`` with fewer than 3 seeds).
The runs are taken one after another, HARL then seqmarl for each seed, so that a load change on a shared machine
hits both sides alike; the ratio is the figure to read, not the absolute rates.

What differs anyway
-------------------
* Simulator: HARL's MaMuJoCo is the old ``multiagent_mujoco`` on ``mujoco-py`` 2.1 / ``gym`` 0.21
  ``HalfCheetah-v2``; seqmarl steps ``gymnasium_robotics.mamujoco_v1`` on MuJoCo 3 (``HalfCheetah-v5``): the same
  robot, different integrator versions, reset noise and observation conventions, so returns agree only in scale.
* MPE: HARL uses PettingZoo 1.22 ``simple_spread_v2`` (in 20 subprocesses); seqmarl ``mpe2`` ``simple_spread_v3``
  in-process. Both give each agent ``(1 - 0.5) * global + 0.5 * local`` and sum it over the agents as the team
  reward; HARL then gives every agent that sum and logs its mean over agents (the same number).
* ``simple_spread_jax`` (not in the default ``--envs``): HARL's MPE run as above; seqmarl on jaxmarl's JAX
  implementation of the same task (``jaxmarl_mpe/simple_spread``: all copies in one jitted step; its dynamics,
  observations and rewards equal mpe2's from the same positions and actions, ``tests/envs/test_jaxmarl_mpe.py``).
  This compares the two toolkits each on its fastest simulator of the task, not the same simulator.
* Truncation: HARL zeroes the GAE at the time limit; seqmarl bootstraps from the final observation
  (``docs/harl_differences.md`` row 6), and the other rows of that table.
Writes JSON (default ``benchmarks/results/vs_harl.json``) and prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import re
import resource
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "benchmarks" / "results" / "vs_harl.json"
STEPS_PER_UPDATE = 20 * 200  # HARL n_rollout_threads x episode_length = preset=harl num_envs x rollout_length
HARL_DEFAULT_EVAL_INTERVAL = 25  # happo.yaml / mappo.yaml / hatrpo.yaml train.eval_interval
HARL_EVAL_EPISODES = 20  # eval.eval_episodes of the same files


@dataclass(frozen=True)
class EnvCase:
    """One benchmark task written once per framework."""

    key: str
    harl_env: str
    harl_args: tuple[str, ...]
    harl_python_arg: str  # which --harl-python-* runs it
    seqmarl_env: str
    seqmarl_args: tuple[str, ...]
    target_ratio: float  # issue 11: seqmarl steps/s >= this many times HARL's


ENVS: dict[str, EnvCase] = {
    "halfcheetah6x1": EnvCase("halfcheetah6x1", "mamujoco", ("--scenario", "HalfCheetah-v2", "--agent_conf", "6x1"),
                              "harl_python_mujoco", "mamujoco/HalfCheetah-6x1", ("env.obs=state+id",), 5.0),
    "simple_spread": EnvCase("simple_spread", "pettingzoo_mpe", ("--scenario", "simple_spread_v2",
                                                                  "--continuous_actions", "True"),
                             "harl_python_mpe", "mpe/simple_spread", ("env.continuous_actions=true",), 3.0),
    # HARL's run unchanged; seqmarl on jaxmarl's JAX MPE, the same task as mpe2's (tests/envs/test_jaxmarl_mpe.py)
    "simple_spread_jax": EnvCase("simple_spread_jax", "pettingzoo_mpe", ("--scenario", "simple_spread_v2",
                                                                          "--continuous_actions", "True"),
                                 "harl_python_mpe", "jaxmarl_mpe/simple_spread", ("env.continuous_actions=true",), 3.0),
}
ALGOS = ("happo", "mappo", "hatrpo")

_FPS = re.compile(r"total num timesteps (\d+)/\d+, FPS (\d+)")
_TRAIN_RET = re.compile(r"Some episodes done, average episode reward is (\S+?)\.?\s*$", re.M)
_EVAL_RET = re.compile(r"Evaluation average episode reward is (\S+?)\.?\s*$", re.M)


# ----------------------------------------------------------------------------------------------- statistics
_T975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262, 10: 2.228,
         15: 2.131, 20: 2.086, 30: 2.042}


def t_quantile_975(df: int) -> float:
    """The 0.975 quantile of Student's t with ``df`` degrees of freedom (tabulated; the next smaller tabulated df
    above 10, 1.96 beyond 30 — conservative)."""
    if df < 1:
        raise ValueError(f"df must be >= 1, got {df}")
    if df > 30:
        return 1.96
    return _T975[max(k for k in _T975 if k <= df)]


def mean_ci(values: Sequence[float]) -> dict[str, Any]:
    """Mean and the half-width of the 95% t interval ``t_{0.975, k-1} * s / sqrt(k)`` (``None`` for one value)."""
    xs = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    if not xs:
        return {"mean": None, "ci95": None, "n": 0}
    m = sum(xs) / len(xs)
    if len(xs) < 2:
        return {"mean": m, "ci95": None, "n": 1}
    s = math.sqrt(sum((x - m) ** 2 for x in xs) / (len(xs) - 1))
    return {"mean": m, "ci95": t_quantile_975(len(xs) - 1) * s / math.sqrt(len(xs)), "n": len(xs)}


# ----------------------------------------------------------------------------------------------- parsing
def parse_harl_log(text: str) -> dict[str, Any]:
    """HARL's stdout: the (steps, FPS) of every logged update, the train returns it printed, the evaluations."""
    fps = [(int(s), int(f)) for s, f in _FPS.findall(text)]
    train = [float(x) for x in _TRAIN_RET.findall(text)]
    evals = [float(x) for x in _EVAL_RET.findall(text)]
    return {"fps": fps, "train_returns": train, "eval_returns": evals}


def parse_seqmarl_metrics(path: Path) -> dict[str, Any]:
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    if not rows:
        raise RuntimeError(f"{path} has no rows")
    seconds = 0.0
    collect = 0.0
    prev = 0
    for row in rows:
        steps = row["env_steps"] - prev
        prev = row["env_steps"]
        dt = steps / row["sps"]
        seconds += dt
        collect += dt * row["collect_fraction"]
    evals = [r["eval_return_greedy"] for r in rows if "eval_return_greedy" in r]
    return {"env_steps": prev, "train_seconds": seconds, "train_sps": prev / seconds,
            "collect_share": collect / seconds,
            "train_return": rows[-1]["episode_return"], "eval_return": evals[-1] if evals else None,
            "eval_return_stochastic": [r["eval_return_stochastic"] for r in rows if "eval_return_stochastic" in r][-1:]}


# ----------------------------------------------------------------------------------------------- runners
def run_timed(cmd: Sequence[str], **kwargs: Any) -> tuple[subprocess.CompletedProcess, float, float]:
    """Run ``cmd``; returns the process, its wall seconds and the CPU seconds (user + system) of it and every
    process it waited for (HARL's env subprocesses included: ``RUSAGE_CHILDREN`` before and after)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(list(cmd), capture_output=True, text=True, **kwargs)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return proc, wall, cpu


def _eval_interval(n_updates: int, mode: str) -> int:
    return n_updates if mode == "end" else HARL_DEFAULT_EVAL_INTERVAL


def run_harl(python: str, harl: Path, algo: str, case: EnvCase, steps: int, seed: int, threads: int, eval_mode: str,
             eval_episodes: int, work: Path) -> dict[str, Any]:
    log_dir = work / "harl" / case.key / algo / f"t{threads}" / f"seed{seed}"
    shutil.rmtree(log_dir, ignore_errors=True)
    log_dir.mkdir(parents=True)
    cmd = [python, "train.py", "--algo", algo, "--env", case.harl_env, *case.harl_args, "--exp_name", "vs_harl",
           "--seed_specify", "True", "--seed", str(seed), "--num_env_steps", str(steps),
           "--n_rollout_threads", "20", "--episode_length", "200", "--torch_threads", str(threads),
           "--cuda", "False", "--log_interval", "1", "--use_eval", "True",
           "--eval_interval", str(_eval_interval(steps // STEPS_PER_UPDATE, eval_mode)),
           "--eval_episodes", str(eval_episodes), "--log_dir", str(log_dir)]
    proc, wall, cpu = run_timed(cmd, cwd=harl / "examples")
    (log_dir / "stdout.txt").write_text(proc.stdout + "\n--- stderr ---\n" + proc.stderr)
    if proc.returncode != 0:
        raise RuntimeError(f"HARL failed ({' '.join(cmd)}):\n{proc.stderr[-3000:]}")
    log = parse_harl_log(proc.stdout)
    if not log["fps"]:
        raise RuntimeError(f"no FPS line in HARL's output; see {log_dir / 'stdout.txt'}")
    last_steps, last_fps = log["fps"][-1]
    return {"cmd": " ".join(cmd), "env_steps": last_steps, "train_sps": float(last_fps), "wall_s": wall,
            "wall_sps": last_steps / wall, "cpu_s": cpu, "steps_per_cpu_s": last_steps / cpu,
            "train_return": log["train_returns"][-1] if log["train_returns"] else None,
            "eval_return": log["eval_returns"][-1] if log["eval_returns"] else None, "threads": threads,
            "fps_per_update": log["fps"]}


def run_seqmarl(python: str, algo: str, case: EnvCase, steps: int, seed: int, threads: int, eval_mode: str,
                eval_episodes: int, work: Path, extra: Sequence[str]) -> dict[str, Any]:
    run_dir = work / "seqmarl" / case.key / algo / f"seed{seed}"
    shutil.rmtree(run_dir, ignore_errors=True)
    run_dir.parent.mkdir(parents=True, exist_ok=True)
    cmd = [python, "-m", "seqmarl", "train", f"algo={algo}", f"env={case.seqmarl_env}", *case.seqmarl_args,
           "preset=harl", f"total_steps={steps}", f"seed={seed}", f"run_dir={run_dir}", "progress=false",
           "tensorboard=false", f"eval_interval={_eval_interval(steps // STEPS_PER_UPDATE, eval_mode)}",
           f"eval_episodes={eval_episodes}", "log_interval=1", *extra]
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    proc, wall, cpu = run_timed(cmd, cwd=ROOT, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f"seqmarl failed ({' '.join(cmd)}):\n{proc.stderr[-3000:]}")
    out = parse_seqmarl_metrics(run_dir / "metrics.jsonl")
    out.update(cmd=" ".join(cmd), wall_s=wall, wall_sps=out["env_steps"] / wall, cpu_s=cpu,
               steps_per_cpu_s=out["env_steps"] / cpu, threads=threads)
    return out


# ----------------------------------------------------------------------------------------------- summary
def summarise(harl_runs: list[dict], ours: list[dict]) -> dict[str, Any]:
    cols = ("train_sps", "wall_sps", "steps_per_cpu_s", "train_return", "eval_return")
    summary: dict[str, Any] = {"harl": {c: mean_ci([r[c] for r in harl_runs]) for c in cols},
                               "seqmarl": {c: mean_ci([r[c] for r in ours]) for c in cols}}
    h, s = summary["harl"]["train_sps"]["mean"], summary["seqmarl"]["train_sps"]["mean"]
    summary["ratio"] = s / h if h and s else None
    hw, sw = summary["harl"]["wall_sps"]["mean"], summary["seqmarl"]["wall_sps"]["mean"]
    summary["wall_ratio"] = sw / hw if hw and sw else None
    hc, sc = summary["harl"]["steps_per_cpu_s"]["mean"], summary["seqmarl"]["steps_per_cpu_s"]["mean"]
    summary["cpu_ratio"] = sc / hc if hc and sc else None
    he, se = summary["harl"]["eval_return"], summary["seqmarl"]["eval_return"]
    if he["n"] >= 3 and se["n"] >= 3:
        summary["return_not_worse"] = bool(se["mean"] >= he["mean"] - he["ci95"])
    else:
        summary["return_not_worse"] = None
    return summary


def _fmt(stat: dict[str, Any], digits: int = 0) -> str:
    if stat["mean"] is None:
        return "–"
    text = f"{stat['mean']:,.{digits}f}"
    return text + (f" ± {stat['ci95']:,.{digits}f}" if stat["ci95"] is not None else "")


def table(results: list[dict[str, Any]]) -> str:
    lines = ["| algo | env | seeds | steps | HARL steps/s | seqmarl steps/s | ratio | wall ratio | CPU ratio "
             "| HARL eval return | seqmarl eval return | HARL train return | seqmarl train return |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        s = r["summary"]
        lines.append(f"| {r['algo']} | {r['env']} | {len(r['seeds'])} | {r['steps']:,} "
                     f"| {_fmt(s['harl']['train_sps'])} | {_fmt(s['seqmarl']['train_sps'])} "
                     f"| {s['ratio']:.2f} (≥ {s['target_ratio']:g}) | {s['wall_ratio']:.2f} | {s['cpu_ratio']:.2f} "
                     f"| {_fmt(s['harl']['eval_return'], 1)} | {_fmt(s['seqmarl']['eval_return'], 1)} "
                     f"| {_fmt(s['harl']['train_return'], 1)} | {_fmt(s['seqmarl']['train_return'], 1)} |")
    return "\n".join(lines)


def _csv(text: str, allowed: Sequence[str], name: str) -> list[str]:
    items = [x.strip() for x in text.split(",") if x.strip()]
    bad = [x for x in items if x not in allowed]
    if not items or bad:
        raise ValueError(f"{name} must be a comma-separated subset of {','.join(allowed)}, got {text!r}")
    return items


def _int_list(text: str, name: str) -> list[int]:
    try:
        values = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        values = []
    if not values or min(values) < 1:
        raise ValueError(f"{name} must be comma-separated positive integers, got {text!r}")
    return values


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--harl", required=True, type=Path, help="a HARL checkout (the folder holding examples/train.py)")
    p.add_argument("--harl-python-mpe", default="/tmp/harl-mpe/bin/python", help="HARL's python for MPE")
    p.add_argument("--harl-python-mujoco", default="/tmp/harl-mujoco/bin/python", help="HARL's python for MaMuJoCo")
    p.add_argument("--seqmarl-python", default=sys.executable, help="the python with seqmarl installed")
    p.add_argument("--steps", type=int, default=40_000, help="env steps per run (whole updates of 4000)")
    p.add_argument("--seeds", type=int, default=1, help="seeds 1..K on both sides")
    p.add_argument("--algos", default="happo")
    p.add_argument("--envs", default="halfcheetah6x1,simple_spread")
    p.add_argument("--harl-threads", default="1", help="HARL --torch_threads values (1: its best on CPU; 4: default)")
    p.add_argument("--seqmarl-threads", type=int, default=1, help="OMP/MKL threads of the seqmarl process")
    p.add_argument("--eval", choices=("end", "default"), default="end")
    p.add_argument("--eval-episodes", type=int, default=HARL_EVAL_EPISODES,
                   help="evaluation episodes on both sides (HARL's default 20; HARL runs them 10 envs at a time)")
    p.add_argument("--seqmarl-arg", action="append", default=[], metavar="KEY=VALUE",
                   help="extra seqmarl train arguments, e.g. env.workers=2 (recorded in the JSON)")
    p.add_argument("--work", type=Path, default=Path("/tmp/vs_harl_runs"), help="run directories of both sides")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = p.parse_args(argv)
    try:
        args.algo_list = _csv(args.algos, ALGOS, "--algos")
        args.env_list = _csv(args.envs, tuple(ENVS), "--envs")
        args.harl_thread_list = _int_list(args.harl_threads, "--harl-threads")
    except ValueError as exc:
        p.error(str(exc))
    if args.steps < STEPS_PER_UPDATE:
        p.error(f"--steps must be at least one update ({STEPS_PER_UPDATE} env steps), got {args.steps}")
    if args.seeds < 1:
        p.error(f"--seeds must be >= 1, got {args.seeds}")
    if args.eval_episodes < 1:
        p.error(f"--eval-episodes must be >= 1, got {args.eval_episodes}")
    if args.seqmarl_threads < 1:
        p.error(f"--seqmarl-threads must be >= 1, got {args.seqmarl_threads}")
    if not (args.harl / "examples" / "train.py").is_file():
        p.error(f"--harl must be a HARL checkout with examples/train.py, got {args.harl}")
    for case in args.env_list:
        py = getattr(args, ENVS[case].harl_python_arg)
        if not Path(py).exists():
            p.error(f"--{ENVS[case].harl_python_arg.replace('_', '-')} {py} does not exist (needed for {case})")
    bad = [a for a in args.seqmarl_arg if "=" not in a]
    if bad:
        p.error(f"--seqmarl-arg must be KEY=VALUE, got {bad}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    steps = args.steps // STEPS_PER_UPDATE * STEPS_PER_UPDATE
    results = []
    for env_key in args.env_list:
        case = ENVS[env_key]
        for algo in args.algo_list:
            harl_runs: dict[int, list[dict]] = {t: [] for t in args.harl_thread_list}
            ours: list[dict] = []
            for seed in range(1, args.seeds + 1):
                for t in args.harl_thread_list:
                    r = run_harl(getattr(args, case.harl_python_arg), args.harl, algo, case, steps, seed, t, args.eval,
                                 args.eval_episodes, args.work)
                    print(f"HARL    {algo} {env_key} seed {seed} threads {t}: {r['train_sps']:.0f} steps/s, "
                          f"eval {r['eval_return']}", flush=True)
                    harl_runs[t].append(r)
                r = run_seqmarl(args.seqmarl_python, algo, case, steps, seed, args.seqmarl_threads, args.eval,
                                args.eval_episodes, args.work, args.seqmarl_arg)
                print(f"seqmarl {algo} {env_key} seed {seed}: {r['train_sps']:.0f} steps/s "
                      f"(collect {r['collect_share']:.0%}), eval {r['eval_return']}", flush=True)
                ours.append(r)
            first = args.harl_thread_list[0]
            summary = summarise(harl_runs[first], ours)
            summary["target_ratio"] = case.target_ratio
            summary["ratio_target_met"] = summary["ratio"] is not None and summary["ratio"] >= case.target_ratio
            entry = {"algo": algo, "env": env_key, "steps": steps, "seeds": list(range(1, args.seeds + 1)),
                     "harl_threads": first, "summary": summary,
                     "harl_runs": harl_runs[first], "seqmarl_runs": ours,
                     "harl_other_threads": {str(t): {"summary": summarise(harl_runs[t], ours), "runs": harl_runs[t]}
                                            for t in args.harl_thread_list[1:]}}
            results.append(entry)
    out = {"script": "benchmarks/vs_harl.py", "argv": sys.argv[1:], "eval": args.eval,
           "eval_episodes": args.eval_episodes,
           "seqmarl_threads": args.seqmarl_threads, "seqmarl_extra_args": args.seqmarl_arg,
           "machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                       "loadavg_at_end": os.getloadavg()},
           "date_utc": time.strftime("%Y-%m-%d %H:%M", time.gmtime()), "results": results}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2) + "\n")
    print(table(results))
    for r in results:
        for t, other in r["harl_other_threads"].items():
            print(f"{r['algo']} {r['env']}: HARL with --torch_threads {t}: "
                  f"{_fmt(other['summary']['harl']['train_sps'])} "
                  f"steps/s (seqmarl / that = {other['summary']['ratio']:.2f})")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
