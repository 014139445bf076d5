"""Validation table: algorithm x tabular game, exact J after every update (``seqmarl.validate.oracle_run``).

For each (algorithm, game) and seed: final exact J, J*, J*_share, number and size of monotonicity violations
(J_{k+1} < J_k - 1e-6), final Nash gap, and which pure joint action the final policy concentrates on.
Writes ``benchmarks/results/validation_table.json`` and prints a markdown table.

    python benchmarks/validation_table.py [--settings harl|large-steps] [--seeds 10] [--updates-scale 1.0]
        [--games ...] [--out PATH]
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter
from pathlib import Path

import numpy as np
import torch

from seqmarl.validate import oracle_run

# label -> (env name, env kwargs, updates per --settings preset)
GAMES = {
    "matrix/xor(2)": ("matrix/xor", {"n_agents": 2}, {"harl": 150, "large-steps": 100}),
    "matrix/xor(4)": ("matrix/xor", {"n_agents": 4}, {"harl": 150, "large-steps": 100}),
    "matrix/climbing": ("matrix/climbing", {}, {"harl": 300, "large-steps": 300}),
    "matrix/penalty(-100)": ("matrix/penalty", {"k": -100.0}, {"harl": 300, "large-steps": 300}),
}
# label -> (algorithm, config overrides on top of the preset)
ALGOS = {
    "mappo (shared)": ("mappo", {}),
    "mappo (separate)": ("mappo", {"share_param": False}),
    "ippo (separate)": ("ippo", {"share_param": False}),
    "happo": ("happo", {}),
    "hatrpo": ("hatrpo", {}),
    "haa2c": ("haa2c", {}),
}
# --settings harl: HARL defaults (lr 5e-4, advantages normalised over the batch, entropy 0.01, ...), 32x32 MLPs
# --settings large-steps: lr 5e-3 and unnormalised advantages (fast on XOR, plateaus on climbing)
PRESETS = {"harl": dict(hidden=(32, 32)), "large-steps": dict(lr=5e-3, hidden=(32, 32), adv_norm="none")}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--updates-scale", type=float, default=1.0, help="multiply every game's update count")
    parser.add_argument("--num-envs", type=int, default=256)
    parser.add_argument("--settings", choices=sorted(PRESETS), default="harl")
    parser.add_argument("--games", nargs="*", default=list(GAMES), help=f"subset of {list(GAMES)}")
    parser.add_argument("--out", default="benchmarks/results/validation_table.json")
    args = parser.parse_args()
    torch.set_num_threads(1)
    rows = []
    unknown = sorted(set(args.games) - set(GAMES))
    if unknown:
        parser.error(f"unknown games {unknown}; known: {list(GAMES)}")
    for game_label in args.games:
        env, env_kwargs, game_updates = GAMES[game_label]
        updates = max(1, int(game_updates[args.settings] * args.updates_scale))
        for algo_label, (algo, overrides) in ALGOS.items():
            start = time.perf_counter()
            finals, gaps, viol, viol_max, modes = [], [], [], [], Counter()  # modes: final J values (rounded)
            j_star = j_share = None
            for seed in range(args.seeds):

                report = oracle_run(algo, env, env_kwargs=env_kwargs, n_updates=updates, num_envs=args.num_envs,
                                    seed=seed, algo_kwargs={**PRESETS[args.settings], **overrides})
                j_star, j_share = report.j_star, report.j_star_share
                finals.append(report.final_return)
                gaps.append(report.nash_gaps[-1])
                viol.append(len(report.violations))
                viol_max.append(max(report.violations, default=0.0))
                modes[f"J={report.final_return:.2f}"] += 1
            row = {
                "game": game_label, "algo": algo_label, "seeds": args.seeds, "updates": updates,
                "J_star": j_star, "J_star_share": j_share,
                "final_J_mean": float(np.mean(finals)), "final_J_min": float(np.min(finals)),
                "final_J_max": float(np.max(finals)), "final_J_all": finals,
                "eps_NE_0.05": int(sum(g <= 0.05 for g in gaps)), "nash_gap_all": gaps,
                "violations_mean": float(np.mean(viol)), "max_violation": float(np.max(viol_max)),
                "outcomes": {k: v for k, v in modes.items() if v},
                "seconds": time.perf_counter() - start,
            }
            rows.append(row)
            print(f"| {game_label} | {algo_label} | {row['final_J_mean']:.3f} [{row['final_J_min']:.3f}, {row['final_J_max']:.3f}] "
                  f"| {j_star:g} | {'' if j_share is None else f'{j_share:.4g}'} | {row['eps_NE_0.05']}/{args.seeds} "
                  f"| {row['violations_mean']:.1f} (max {row['max_violation']:.3g}) | {row['outcomes']} |", flush=True)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"settings": {"preset": args.settings, **PRESETS[args.settings], "num_envs": args.num_envs},
                                "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
