"""permutation(4) over seeds: in how many seeds does a sequence model keep a high-entropy optimum?

Issue 9's criterion, per seed: the final policy's exact J >= 0.98 AND its exact joint entropy >= 0.8 log 4!
(``seqmarl.validate.oracle_run``: the auto-regressive agents are read out as their exact joint table, all 4! orders
enumerated for a random order). J* = 1 is reached by every one of the 4! = 24 permutations, so a policy spreading
over all of them has joint entropy log 24; a product (independent) policy at J >= 0.98 is nearly deterministic.
Variants: AR-MAPPO and MAT with a fixed or a random order per sample (with agent id), different step sizes and
entropy coefficients, and the ablations (previous actions hidden). Prints a markdown table and writes
``benchmarks/results/permutation_reliability.json`` (variants not rerun are kept).

    python benchmarks/permutation_reliability.py [--seeds 10] [--first-seed 0] [--variants ar_random mat_random ...]

The tests' settings: ``ar_random`` (tests/algos/test_ar_mappo.py) and ``mat_random_lr3e-3_100``
(tests/algos/test_mat.py, slow).
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import torch

from seqmarl.validate import oracle_run

N_AGENTS = 4
J_MIN = 0.98
ENTROPY_MIN = 0.8 * math.log(math.factorial(N_AGENTS))  # 0.8 log 4! = 2.5425

AR = dict(lr=5e-3, hidden=(32, 32))  # tests/algos/test_ar_mappo.py FAST
MAT = dict(lr=5e-3, n_embd=32, ppo_epoch=5, clip=0.05)  # tests/algos/test_mat.py LEARN
RANDOM = dict(ar_order="random", agent_id=True)

# key -> (label, algo, overrides, updates)
VARIANTS: dict[str, tuple[str, str, dict, int]] = {
    "ar_fixed": ("AR-MAPPO, fixed order", "ar_mappo", AR, 80),
    "ar_random": ("AR-MAPPO, random order + id", "ar_mappo", {**AR, **RANDOM}, 60),
    "ar_random_40": ("AR-MAPPO, random order + id, 40 updates", "ar_mappo", {**AR, **RANDOM}, 40),
    "ar_random_ablation": ("ablation: AR-MAPPO random order + id, previous actions hidden", "ar_mappo",
                           {**AR, **RANDOM, "ar_condition": False}, 60),
    "mat_random": ("MAT, random order + id (lr 5e-3)", "mat", {**MAT, **RANDOM}, 60),
    "mat_random_lr2e-3": ("MAT, random order + id, lr 2e-3", "mat", {**MAT, **RANDOM, "lr": 2e-3}, 60),
    "mat_random_lr3e-3_80": ("MAT, random order + id, lr 3e-3, 80 updates", "mat", {**MAT, **RANDOM, "lr": 3e-3}, 80),
    "mat_random_lr3e-3_100": ("MAT, random order + id, lr 3e-3, 100 updates", "mat", {**MAT, **RANDOM, "lr": 3e-3},
                              100),
    "mat_random_ent0.03": ("MAT, random order + id, entropy 0.03", "mat", {**MAT, **RANDOM, "entropy_coef": 0.03}, 60),
    "mat_fixed": ("MAT, fixed order", "mat", MAT, 60),
    "mat_random_ablation": ("ablation: MAT random order + id, previous actions hidden", "mat",
                            {**MAT, **RANDOM, "mat_condition": False}, 60),
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--first-seed", type=int, default=0, help="seeds first-seed .. first-seed + seeds - 1")
    parser.add_argument("--variants", nargs="*",
                        default=["ar_random", "ar_fixed", "ar_random_ablation", "mat_random_lr3e-3_100", "mat_random"],
                        help=f"subset of {list(VARIANTS)}")
    parser.add_argument("--out", default="benchmarks/results/permutation_reliability.json")
    args = parser.parse_args()
    unknown = sorted(set(args.variants) - set(VARIANTS))
    if unknown:
        parser.error(f"unknown variants {unknown}; known: {list(VARIANTS)}")
    if args.seeds < 1:
        parser.error(f"--seeds must be >= 1, got {args.seeds}")
    torch.set_num_threads(1)
    out_path = Path(args.out)
    kept = json.loads(out_path.read_text()) if out_path.exists() else []
    rows = []
    print(f"| variant | updates | seeds passing (J >= {J_MIN}, H >= 0.8 log 4! = {ENTROPY_MIN:.3f}) | final J per seed "
          "| joint entropy per seed | s/run |")
    print("|---|---|---|---|---|---|")
    for key in args.variants:
        label, algo, kw, updates = VARIANTS[key]
        js, hs, times = [], [], []
        for seed in range(args.first_seed, args.first_seed + args.seeds):
            t0 = time.perf_counter()
            report = oracle_run(algo, "matrix/permutation", env_kwargs={"n_agents": N_AGENTS}, n_updates=updates,
                                num_envs=128, seed=seed, algo_kwargs=kw)
            times.append(time.perf_counter() - t0)
            js.append(float(report.final_return))
            hs.append(float(report.entropies[-1]))
            print(f"  {key} seed {seed}: J {js[-1]:.4f}, joint entropy {hs[-1]:.3f}, {times[-1]:.0f} s", flush=True)
        passed = [j >= J_MIN and h >= ENTROPY_MIN for j, h in zip(js, hs)]
        row = {"variant_key": key, "variant": label, "algo": algo,
               "overrides": {k: list(v) if isinstance(v, tuple) else v for k, v in kw.items()},
               "updates": updates, "num_envs": 128, "seeds": list(range(args.first_seed, args.first_seed + args.seeds)),
               "final_J": js, "joint_entropy": hs,
               "passed": passed, "seeds_passing": sum(passed), "seconds_per_run": sum(times) / len(times)}
        rows.append(row)
        print(f"| {label} | {updates} | {sum(passed)}/{args.seeds} | {', '.join(f'{j:.3f}' for j in js)} | "
              f"{', '.join(f'{h:.2f}' for h in hs)} | {row['seconds_per_run']:.1f} |", flush=True)
        merged = [r for r in kept if r["variant_key"] not in {x["variant_key"] for x in rows}] + rows
        out_path.parent.mkdir(parents=True, exist_ok=True)
        out_path.write_text(json.dumps(merged, indent=2) + "\n")


if __name__ == "__main__":
    main()
