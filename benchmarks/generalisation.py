"""Zero-shot generalisation across unit counts (MAT §5, issue 11 §3): train on ``smax/3m``, evaluate without
further training on maps with other numbers of units.

Every env uses ``pad_units=(8, 8)`` (:mod:`seqmarl.envs.smax`, "Unit padding"), so ``smax/3m``, ``smax/5m_vs_6m``
and ``smax/8m`` share the observation size, state size and action count. MAT (``mat_token_id=False``,
``agent_id=False``: no weight depends on the number of agents) and MAT-Dec (one shared MLP actor, no agent id)
are trained on 3m, rebuilt for 5 or 8 agents with :func:`seqmarl.algos.mat_transfer.load_for_agents` and run
greedily for ``--episodes`` episodes per map. HAPPO has one actor per agent: on 3m it is evaluated as trained;
on the other maps it is "n/a" (its 3 trained actors cannot act for 5 or 8 agents, and reusing some of them
for the extra agents would be a different policy, not the trained one).

Optional MaMuJoCo part (``--mujoco``): the same algorithms on ``mamujoco/HalfCheetah-2x3`` (``agent_obsk``
observations) evaluated with ``broken_agents`` (one agent's actuators off) — here HAPPO applies (same agents).

    taskset -c 1 python benchmarks/generalisation.py --steps 200000 --seeds 0 1 --episodes 32
    python benchmarks/generalisation.py --from-runs SWEEP_DIR/runs/* --episodes 32 --out PATH

``--from-runs`` evaluates finished ``seqmarl train`` runs (their ``config.yaml`` and last checkpoint) instead
of training: SMAX runs trained with ``pad_units`` on the maps above, MaMuJoCo runs (any observation mode: the
agents stay the same) intact and with each agent broken.

Prints a markdown table (win rate and mean episode return per evaluation map, mean over seeds) and writes JSON
to ``benchmarks/results/generalisation.json`` (``--out``).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from seqmarl.algos import Trainer, TrainerConfig, make_agent
from seqmarl.algos.mat_transfer import load_for_agents
from seqmarl.envs import make

PAD = (8, 8)
TRAIN_MAP = "smax/3m"
EVAL_MAPS = ("smax/3m", "smax/5m_vs_6m", "smax/8m")
ALGOS: dict[str, dict[str, Any]] = {"mat": {"mat_token_id": False}, "mat_dec": {}, "happo": {}}
MUJOCO = "mamujoco/HalfCheetah-2x3"
MUJOCO_EVALS: dict[str, tuple[int, ...]] = {"intact": (), "broken 0": (0,), "broken 1": (1,)}
HAPPO_NA = "n/a: one actor per agent, the 3 trained actors cannot act for {n} agents"


def train(algo: str, env_name: str, env_kwargs: dict[str, Any], steps: int, seed: int, num_envs: int = 8,
          rollout_length: int = 100, **overrides: Any) -> Any:
    """An ``algo`` agent trained for ``steps`` env steps (summed over the ``num_envs`` batch) on ``env_name``."""
    env = make(env_name, num_envs=num_envs, seed=seed, **env_kwargs)
    kw = {**ALGOS.get(algo, {}), **overrides}
    agent = make_agent(algo, env.spec, seed=seed, **kw)
    rollout = min(rollout_length, env.spec.episode_limit or rollout_length)
    cfg = TrainerConfig(total_steps=max(int(steps), rollout * num_envs), rollout_length=rollout, eval_interval=0,
                        checkpoint_interval=10**9, log_interval=10**9, progress=False, tensorboard=False)
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(env, agent, cfg, run_dir=tmp, seed=seed)
        trainer.train()
    return agent


@torch.no_grad()
def evaluate(agent: Any, env_name: str, env_kwargs: dict[str, Any], episodes: int, seed: int) -> dict[str, float]:
    """Greedy policy of ``agent`` on ``episodes`` parallel episodes (one each): mean return and, for SMAX, the
    fraction won. No training."""
    env = make(env_name, num_envs=episodes, seed=seed, **env_kwargs)
    step = env.reset(seed=seed)
    finished = torch.zeros(episodes, dtype=torch.bool)
    returns = torch.zeros(episodes)
    wins = torch.zeros(episodes)
    for _ in range(env.spec.episode_limit or 10_000):
        actions, _ = agent.act(step, deterministic=True)
        step = env.step(actions)
        done = (step.terminated | step.truncated) & ~finished
        returns = torch.where(done, step.info["episode_return"].float(), returns)
        if "battle_won" in step.info:
            wins = torch.where(done, step.info["battle_won"].float(), wins)
        finished |= done
        if bool(finished.all()):
            break
    out = {"return": float(returns.mean())}
    if "battle_won" in step.info:
        out["win_rate"] = float(wins.mean())
    return out


def agent_for(agent: Any, algo: str, spec: Any) -> tuple[Any | None, str | None]:
    """``(agent to run on spec, None)``, or ``(None, reason)`` where the trained agent cannot act there."""
    if spec.n_agents == agent.spec.n_agents:
        return agent, None
    if algo == "happo":
        return None, HAPPO_NA.format(n=spec.n_agents)
    return load_for_agents(agent, spec), None


def run_smax(algos: list[str], steps: int, seeds: list[int], episodes: int, eval_maps: tuple[str, ...] = EVAL_MAPS,
             train_map: str = TRAIN_MAP, pad: tuple[int, int] = PAD, num_envs: int = 8, rollout_length: int = 100,
             **overrides: Any) -> dict[str, Any]:
    """Train each algorithm on ``train_map`` per seed, evaluate on every ``eval_maps`` entry; per (algo, map) the
    per-seed results and their means (or the reason it is not applicable)."""
    kwargs = {"pad_units": pad}
    results: dict[str, Any] = {}
    for algo in algos:
        per_map: dict[str, Any] = {m: {"seeds": []} for m in eval_maps}
        for seed in seeds:
            t0 = time.perf_counter()
            agent = train(algo, train_map, kwargs, steps, seed, num_envs=num_envs, rollout_length=rollout_length,
                          **overrides)
            train_s = time.perf_counter() - t0
            for m in eval_maps:
                spec = make(m, num_envs=1, **kwargs).spec
                runner, reason = agent_for(agent, algo, spec)
                if runner is None:
                    per_map[m]["na"] = reason
                    continue
                per_map[m]["seeds"].append({"seed": seed, "train_s": round(train_s, 1),
                                            **evaluate(runner, m, kwargs, episodes, seed=10_000 + seed)})
        for m, rec in per_map.items():
            for key in ("win_rate", "return"):
                vals = [r[key] for r in rec["seeds"] if key in r]
                if vals:
                    rec[key] = sum(vals) / len(vals)
        results[algo] = per_map
    return results


def run_mujoco(algos: list[str], steps: int, seeds: list[int], episodes: int, num_envs: int = 4) -> dict[str, Any]:
    """Train on intact HalfCheetah-2x3, evaluate intact and with each agent broken (same agents: all apply)."""
    results: dict[str, Any] = {}
    for algo in algos:
        per: dict[str, Any] = {k: {"seeds": []} for k in MUJOCO_EVALS}
        for seed in seeds:
            agent = train(algo, MUJOCO, {}, steps, seed, num_envs=num_envs)
            for name, broken in MUJOCO_EVALS.items():
                per[name]["seeds"].append({"seed": seed, **evaluate(agent, MUJOCO, {"broken_agents": broken},
                                                                    episodes, seed=10_000 + seed)})
        for rec in per.values():
            rec["return"] = sum(r["return"] for r in rec["seeds"]) / len(rec["seeds"])
        results[algo] = per
    return results


def table(results: dict[str, Any], columns: tuple[str, ...], win: bool = True) -> str:
    """Markdown table: one row per algorithm, one cell per evaluation (``win rate / return`` or the n/a reason)."""
    lines = ["| algo | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for algo, per in results.items():
        cells = []
        for c in columns:
            rec = per[c]
            if "na" in rec:
                cells.append(rec["na"])
            elif win and "win_rate" in rec:
                cells.append(f"{rec['win_rate']:.2f} / {rec['return']:.2f}")
            else:
                cells.append(f"{rec['return']:.1f}")
        lines.append(f"| {algo} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def load_run(run_dir: str | Path) -> tuple[Any, Any]:
    """``(resolved RunConfig, agent)`` of a finished ``seqmarl train`` run: the agent rebuilt from its
    ``config.yaml`` and its weights from ``checkpoints/last.pt`` (the env, optimiser and RNG states are not needed
    for evaluation)."""
    from seqmarl.algos.trainer import read_checkpoint
    from seqmarl.config import load_run_config, resolve

    run_dir = Path(run_dir)
    cfg = resolve(load_run_config(run_dir / "config.yaml"))
    spec = make(cfg.env, num_envs=1, **cfg.env_kwargs).spec
    agent = make_agent(cfg.algo, spec, seed=cfg.seed, **cfg.algo_kwargs)
    agent.load_state_dict(read_checkpoint(run_dir / "checkpoints" / "last.pt")["agent"])
    return cfg, agent


def evaluate_runs(run_dirs: list[str | Path], episodes: int) -> dict[str, Any]:
    """Evaluate trained runs without training: SMAX runs on every map of :data:`EVAL_MAPS` (MAT/MAT-Dec rebuilt
    for the map's agent count, HAPPO/MAPPO only where the count is theirs; a run trained without ``pad_units``
    only on its own map),
    MaMuJoCo runs intact and with each agent broken (:data:`MUJOCO_EVALS`, the run's own env arguments).
    Results per ``"<algo> on <env>"``: per-seed values and their means."""
    results: dict[str, Any] = {}
    for run_dir in run_dirs:
        cfg, agent = load_run(run_dir)
        kwargs = dict(cfg.env_kwargs)
        unpadded: set[str] = set()
        if cfg.env.startswith("smax/"):
            evals = {m: (m, kwargs) for m in EVAL_MAPS}
            if kwargs.get("pad_units") is None:  # its observation size fits its own map only
                unpadded = {m for m in EVAL_MAPS if m != cfg.env}
        elif cfg.env.startswith("mamujoco/"):
            evals = {name: (cfg.env, {**kwargs, "broken_agents": broken}) for name, broken in MUJOCO_EVALS.items()}
        else:
            raise ValueError(f"{run_dir}: env {cfg.env} has no generalisation evaluation here (smax/ or mamujoco/)")
        per = results.setdefault(f"{cfg.algo} on {cfg.env}", {k: {"seeds": []} for k in evals})
        for name, (env_name, env_kwargs) in evals.items():
            if name in unpadded:
                per[name]["na"] = f"n/a: trained without pad_units, its input sizes fit {cfg.env} only"
                continue
            spec = make(env_name, num_envs=1, **env_kwargs).spec
            if cfg.algo in ("mat", "mat_dec") or spec.n_agents == agent.spec.n_agents:
                runner, reason = agent_for(agent, cfg.algo, spec)
            else:  # per-agent actors (HAPPO, separate MAPPO) or a critic sized for the trained agent count
                runner, reason = None, (f"n/a: {cfg.algo}'s networks are sized for {agent.spec.n_agents} agents, "
                                        f"not {spec.n_agents}")
            if runner is None:
                per[name]["na"] = reason
                continue
            per[name]["seeds"].append({"seed": cfg.seed, "run": str(run_dir),
                                       **evaluate(runner, env_name, env_kwargs, episodes, seed=10_000 + cfg.seed)})
    for per in results.values():
        for rec in per.values():
            for key in ("win_rate", "return"):
                vals = [r[key] for r in rec["seeds"] if key in r]
                if vals:
                    rec[key] = sum(vals) / len(vals)
    return results


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=200_000, help="training env steps per run (default 200000)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--episodes", type=int, default=32, help="evaluation episodes per map")
    p.add_argument("--algos", nargs="+", default=list(ALGOS), choices=list(ALGOS))
    p.add_argument("--num-envs", type=int, default=8)
    p.add_argument("--mujoco", action="store_true", help="also run the MaMuJoCo broken-agent part")
    p.add_argument("--mujoco-steps", type=int, default=20_000)
    p.add_argument("--out", default=str(Path(__file__).parent / "results" / "generalisation.json"))
    p.add_argument("--from-runs", nargs="+", default=None, metavar="RUN_DIR",
                   help="evaluate these finished seqmarl train runs (e.g. a sweep's runs/*) instead of training")
    ns = p.parse_args(argv)
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    if ns.from_runs:
        found = evaluate_runs(ns.from_runs, ns.episodes)
        for name, per in found.items():
            win = name.split(" on ")[1].startswith("smax/")
            print(f"\n{name}: greedy, {ns.episodes} episodes per evaluation; cells: "
                  f"{'win rate / mean return' if win else 'mean return'}")
            print(table({name.split(" on ")[0]: per}, tuple(per), win=win))
        out_runs = {"from_runs": found, "settings": {"episodes": ns.episodes, "runs": ns.from_runs},
                    "wall_s": round(time.perf_counter() - t0, 1)}
        Path(ns.out).parent.mkdir(parents=True, exist_ok=True)
        Path(ns.out).write_text(json.dumps(out_runs, indent=1))
        print(f"\nwrote {ns.out} ({out_runs['wall_s']} s)")
        return 0
    smax = run_smax(ns.algos, ns.steps, ns.seeds, ns.episodes, num_envs=ns.num_envs)
    print(f"SMAX: trained on {TRAIN_MAP} ({ns.steps} steps, seeds {ns.seeds}), pad_units={PAD}, greedy, "
          f"{ns.episodes} episodes per map; cells: win rate / mean return")
    print(table(smax, EVAL_MAPS))
    out: dict[str, Any] = {"smax": smax, "settings": {"steps": ns.steps, "seeds": ns.seeds, "episodes": ns.episodes,
                                                      "pad_units": PAD, "train_map": TRAIN_MAP,
                                                      "num_envs": ns.num_envs}}
    if ns.mujoco:
        mj = run_mujoco(ns.algos, ns.mujoco_steps, ns.seeds, ns.episodes)
        print(f"\nMaMuJoCo {MUJOCO}: trained intact ({ns.mujoco_steps} steps), greedy mean return")
        print(table(mj, tuple(MUJOCO_EVALS), win=False))
        out["mujoco"] = mj
        out["settings"]["mujoco_steps"] = ns.mujoco_steps
    out["wall_s"] = round(time.perf_counter() - t0, 1)
    Path(ns.out).parent.mkdir(parents=True, exist_ok=True)
    Path(ns.out).write_text(json.dumps(out, indent=1))
    print(f"\nwrote {ns.out} ({out['wall_s']} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
