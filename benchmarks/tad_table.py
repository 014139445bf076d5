"""TAD-PPO against the exact oracles, over seeds: the measured figures of docs/tad_ppo.md.

For every row (game, variant) and seed, ONE training run, then the exact readouts of the final policies: the
teacher's exact joint table (``seqmarl.validate.joint_policy`` with ``tad_execute="teacher"``) — its J and joint
entropy — and the students' product policy (``tad_execute="student"``): its J as trained online (distilled after
every update), then its J and exact Nash gap after 300 more greedy distillation steps (``final_distill``). Writes
``benchmarks/results/tad_table.json`` (rows not rerun are kept) and prints a markdown table.

    python benchmarks/tad_table.py [--seeds 10] [--rows climbing penalty xor2 perm3 climbing-ablation]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from seqmarl.algos import make_agent
from seqmarl.algos.tad_ppo import final_distill
from seqmarl.algos.trainer import Trainer, TrainerConfig
from seqmarl.envs import make
from seqmarl.theory import evaluate, optima
from seqmarl.validate import joint_policy

FAST = dict(lr=5e-3, hidden=(32, 32), adv_norm="none")  # tests/algos/test_tad_ppo.py

# row -> (env, env kwargs, updates, overrides)
ROWS = {
    "climbing": ("matrix/climbing", {}, 30, FAST),
    "penalty": ("matrix/penalty", {}, 30, FAST),
    "xor2": ("matrix/xor", {"n_agents": 2}, 30, FAST),
    "perm3": ("matrix/permutation", {"n_agents": 3}, 40, FAST),
    "climbing-ablation": ("matrix/climbing", {}, 30, {**FAST, "ar_condition": False}),
    "climbing-5-epochs": ("matrix/climbing", {}, 30, {**FAST, "ppo_epoch": 5}),
}


def readout(agent, env, who: str):
    saved = agent.config.tad_execute
    agent.config.tad_execute = who
    try:
        return joint_policy(agent, env)
    finally:
        agent.config.tad_execute = saved


def one_run(env_name: str, env_kwargs: dict, updates: int, overrides: dict, seed: int) -> dict:
    env = make(env_name, num_envs=128, seed=seed, **env_kwargs)
    agent = make_agent("tad_ppo", env.spec, seed=seed, **overrides)
    Trainer(env, agent, TrainerConfig(total_steps=128 * updates, rollout_length=1, progress=False,
                                      tensorboard=False), seed=seed).train()
    game = env.game
    teacher, students = readout(agent, env, "teacher"), readout(agent, env, "student")
    out = {"teacher_J": evaluate.expected_return(game, teacher),
           "teacher_entropy": float(evaluate.state_distribution(game, teacher) @ teacher.entropy()),
           "teacher_max_joint_prob": float(teacher.probs().max()),
           "online_student_J": evaluate.expected_return(game, students)}
    step = env.reset(seed=seed)
    final_distill(agent, step.obs, step.avail_actions, epochs=300)
    students = readout(agent, env, "student")
    out.update(student_J=evaluate.expected_return(game, students), student_nash_gap=optima.nash_gap(game, students))
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--rows", nargs="*", default=list(ROWS), help=f"subset of {list(ROWS)}")
    parser.add_argument("--out", default="benchmarks/results/tad_table.json")
    args = parser.parse_args()
    unknown = sorted(set(args.rows) - set(ROWS))
    if unknown:
        parser.error(f"unknown rows {unknown}; known: {list(ROWS)}")
    torch.set_num_threads(1)
    out = []
    print("| row | updates | J* | teacher at J* | teacher J (mean, min) | online students J (mean, min) | "
          "students at J* (final phase) | students J (mean, min) | teacher joint entropy (mean) | "
          "students eps-NE (gap <= 0.05) | s/run |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for row in args.rows:
        env_name, env_kwargs, updates, overrides = ROWS[row]
        j_star = optima.joint_optimum(make(env_name, num_envs=1, **env_kwargs).game).value
        runs, times = [], []
        for seed in range(args.seeds):
            t0 = time.perf_counter()
            runs.append(one_run(env_name, env_kwargs, updates, overrides, seed))
            times.append(time.perf_counter() - t0)
        tj = [r["teacher_J"] for r in runs]
        sj = [r["student_J"] for r in runs]
        at = lambda js: sum(abs(j - j_star) <= 0.05 * abs(j_star) for j in js)  # noqa: E731
        entry = {"row": row, "env": env_name, "env_kwargs": env_kwargs, "updates": updates,
                 "overrides": {k: list(v) if isinstance(v, tuple) else v for k, v in overrides.items()},
                 "J_star": j_star, "runs": runs, "teacher_at_optimum": at(tj), "students_at_optimum": at(sj),
                 "seconds_per_run": sum(times) / len(times)}
        out.append(entry)
        n_ne = sum(r["student_nash_gap"] <= 0.05 for r in runs)
        oj = [r["online_student_J"] for r in runs]
        print(f"| {row} | {updates} | {j_star:g} | {at(tj)}/{args.seeds} | {sum(tj) / len(tj):.3f}, {min(tj):.3f} | "
              f"{sum(oj) / len(oj):.3f}, {min(oj):.3f} | {at(sj)}/{args.seeds} | {sum(sj) / len(sj):.3f}, {min(sj):.3f} | "
              f"{sum(r['teacher_entropy'] for r in runs) / len(runs):.3f} | {n_ne}/{args.seeds} | "
              f"{sum(times) / len(times):.1f} |", flush=True)
    path = Path(args.out)
    path.parent.mkdir(parents=True, exist_ok=True)
    kept = [e for e in json.loads(path.read_text()) if e["row"] not in args.rows] if path.exists() else []
    path.write_text(json.dumps(kept + out, indent=1))  # rows not rerun are kept


if __name__ == "__main__":
    main()
