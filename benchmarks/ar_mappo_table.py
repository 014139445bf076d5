"""AR-MAPPO against the exact oracles, over seeds: the measured figures of the README's AR-MAPPO subsection.

For every row (game, variant) and seed: the final exact J (``seqmarl.validate.oracle_run``; an auto-regressive
agent is read out as its exact joint table) and the exact joint entropy of the final policy. Variants: AR-MAPPO as
in ``tests/algos/test_ar_mappo.py``, its ablation (``ar_condition=False``: the same network with the previous
actions hidden), independent MAPPO where the test compares with it, and AR-MAPPO with a random order per sample.
Writes ``benchmarks/results/ar_mappo_table.json`` (rows not rerun are kept) and prints a markdown table.

    python benchmarks/ar_mappo_table.py [--seeds 10] [--rows xor2 xor4 perm3 perm4 climbing climbing-harl]
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import torch

from seqmarl.validate import oracle_run

FAST = dict(lr=5e-3, hidden=(32, 32))
LARGE = dict(lr=5e-3, hidden=(32, 32), adv_norm="none")
HARL = dict(hidden=(32, 32))  # lr 5e-4, batch advantage normalisation, entropy 0.01
NO_COND = dict(ar_condition=False)

# row -> (env, env kwargs, updates, num_envs, optimum J, [(variant label, algo, overrides)])
ROWS = {
    "xor2": ("matrix/xor", {"n_agents": 2}, 40, 128, 1.0, [
        ("AR-MAPPO (no id)", "ar_mappo", FAST),
        ("ablation: no conditioning, no id", "ar_mappo", {**FAST, **NO_COND}),
        ("AR-MAPPO random order + id", "ar_mappo", {**FAST, "ar_order": "random", "agent_id": True}),
    ]),
    "xor4": ("matrix/xor", {"n_agents": 4}, 40, 128, 1.0, [
        ("AR-MAPPO (no id)", "ar_mappo", FAST),
        ("ablation: no conditioning, no id", "ar_mappo", {**FAST, **NO_COND}),
    ]),
    "perm3": ("matrix/permutation", {"n_agents": 3}, 60, 128, 1.0, [
        ("AR-MAPPO fixed order", "ar_mappo", FAST),
        ("AR-MAPPO random order + id (the test's model)", "ar_mappo", {**FAST, "ar_order": "random", "agent_id": True}),
        ("AR-MAPPO random order + id, 40 updates (the test)", "ar_mappo",
         {**FAST, "ar_order": "random", "agent_id": True, "_updates": 40}),
        ("ablation: no conditioning, with id", "ar_mappo", {**FAST, **NO_COND, "ar_order": "random", "agent_id": True}),
        ("MAPPO separate actors", "mappo", {**FAST, "share_param": False}),
        ("AR-MAPPO random order, no id", "ar_mappo", {**FAST, "ar_order": "random"}),
    ]),
    "perm4": ("matrix/permutation", {"n_agents": 4}, 80, 128, 1.0, [
        ("AR-MAPPO", "ar_mappo", FAST),
        ("ablation: no conditioning, with id", "ar_mappo", {**FAST, **NO_COND, "agent_id": True}),
        ("MAPPO separate actors", "mappo", {**FAST, "share_param": False}),
    ]),
    "climbing": ("matrix/climbing", {}, 30, 128, 11.0, [
        ("AR-MAPPO (lr 5e-3, adv not normalised)", "ar_mappo", LARGE),
        ("ablation: no conditioning", "ar_mappo", {**LARGE, **NO_COND}),
        ("AR-MAPPO random order", "ar_mappo", {**LARGE, "ar_order": "random"}),
    ]),
    "climbing-harl": ("matrix/climbing", {}, 300, 256, 11.0, [
        ("AR-MAPPO (HARL steps: lr 5e-4, adv normalised)", "ar_mappo", HARL),
        ("ablation: no conditioning", "ar_mappo", {**HARL, **NO_COND}),
    ]),
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--rows", nargs="*", default=list(ROWS), help=f"subset of {list(ROWS)}")
    parser.add_argument("--out", default="benchmarks/results/ar_mappo_table.json")
    args = parser.parse_args()
    unknown = sorted(set(args.rows) - set(ROWS))
    if unknown:
        parser.error(f"unknown rows {unknown}; known: {list(ROWS)}")
    torch.set_num_threads(1)
    out = []
    print("| game | variant | updates | seeds at J* (±0.05·J*) | final J per seed | joint entropy (mean) | s/run |")
    print("|---|---|---|---|---|---|---|")
    for row in args.rows:
        env, env_kwargs, updates, num_envs, optimum, variants = ROWS[row]
        for label, algo, kw in variants:
            kw = dict(kw)
            updates = kw.pop("_updates", ROWS[row][2])  # a variant may run another number of updates
            js, hs, times = [], [], []
            for seed in range(args.seeds):
                t0 = time.perf_counter()
                report = oracle_run(algo, env, env_kwargs=env_kwargs, n_updates=updates, num_envs=num_envs,
                                    seed=seed, algo_kwargs=kw)
                times.append(time.perf_counter() - t0)
                js.append(report.final_return)
                hs.append(report.entropies[-1])
            hits = sum(abs(j - optimum) <= 0.05 * abs(optimum) for j in js)
            entry = {"row": row, "env": env, "env_kwargs": env_kwargs, "variant": label, "algo": algo,
                     "overrides": {k: list(v) if isinstance(v, tuple) else v for k, v in kw.items()},
                     "updates": updates, "num_envs": num_envs, "optimum": optimum, "final_J": js,
                     "joint_entropy": hs, "seeds_at_optimum": hits, "seconds_per_run": sum(times) / len(times)}
            out.append(entry)
            print(f"| {row} | {label} | {updates} | {hits}/{args.seeds} | {' '.join(f'{j:.3f}' for j in js)} | "
                  f"{sum(hs) / len(hs):.3f} (log n! = {math.log(math.factorial(env_kwargs.get('n_agents', 2))):.3f}) "
                  f"| {sum(times) / len(times):.1f} |", flush=True)
    path = Path(args.out)
    path.parent.mkdir(parents=True, exist_ok=True)
    kept = [e for e in json.loads(path.read_text()) if e["row"] not in args.rows] if path.exists() else []
    path.write_text(json.dumps(kept + out, indent=1))  # rows not rerun are kept


if __name__ == "__main__":
    main()
