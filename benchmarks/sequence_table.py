"""MAT and MAT-Dec against the exact oracles, over seeds (the closing table of issue 9 for these two algorithms).

For every row (game, variant) and seed: the final exact J (``seqmarl.validate.oracle_run``; MAT is read out as
its exact joint table — every action prefix teacher forced, all n! orders for a random order — MAT-Dec as its
per-agent tables), the exact joint entropy of the final policy, and whether it ends at the optimum (within
``0.05 |J*|``, the criterion of ``benchmarks/ar_mappo_table.py``). Settings are those of
``tests/algos/test_mat.py``; ``mat_condition=False`` (the same network with the previous actions hidden) is the
ablation. Writes ``benchmarks/results/sequence_table.json`` (rows not rerun are kept) and prints a markdown table.

    python benchmarks/sequence_table.py [--seeds 10] [--rows xor2 xor4 perm4 climbing penalty] \
        [--variants mat mat_dec ablation mat_clip02 mat_clip02_adv_none]
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import torch

from seqmarl.validate import oracle_run

FAST = dict(lr=5e-3, n_embd=32, ppo_epoch=5, clip=0.05)  # tests/algos/test_mat.py FAST (clip: MAT train scripts)
CLIP02 = dict(FAST, clip=0.2)  # the same with mat/config.py's default clip 0.2
PERM = dict(FAST, ar_order="random", agent_id=True)
NO_COND = dict(mat_condition=False)


def _variants(mat_label: str, mat: dict, dec: dict) -> dict:
    return {
        "mat": (mat_label, "mat", mat),
        "mat_dec": ("MAT-Dec" + (" (id)" if dec.get("agent_id") else ""), "mat_dec",
                    {k: v for k, v in dec.items() if k not in ("ar_order",)}),
        "ablation": ("ablation: MAT, previous actions hidden", "mat", {**mat, **NO_COND}),
        "mat_clip02": (mat_label + ", clip 0.2", "mat", {**mat, "clip": 0.2}),
    }


# row -> (env, env kwargs, updates, num_envs, optimum J, {variant key: (label, algo, overrides)})
ROWS = {
    "xor2": ("matrix/xor", {"n_agents": 2}, 40, 128, 1.0, _variants("MAT (fixed order, no id)", FAST, FAST)),
    "xor4": ("matrix/xor", {"n_agents": 4}, 40, 128, 1.0, _variants("MAT (fixed order, no id)", FAST, FAST)),
    "perm4": ("matrix/permutation", {"n_agents": 4}, 60, 128, 1.0,
              _variants("MAT (random order + id)", PERM, dict(FAST, agent_id=True))),
    "climbing": ("matrix/climbing", {}, 30, 128, 11.0, _variants("MAT", FAST, FAST)),
    "penalty": ("matrix/penalty", {"k": -100.0}, 30, 128, 10.0, _variants("MAT", FAST, FAST)),
}
ROWS["climbing"][5]["mat_clip02_adv_none"] = ("MAT, clip 0.2, adv not normalised", "mat",
                                               {**CLIP02, "adv_norm": "none"})


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--rows", nargs="*", default=list(ROWS), help=f"subset of {list(ROWS)}")
    parser.add_argument("--variants", nargs="*", default=["mat", "mat_dec"],
                        help="variant keys: mat, mat_dec, ablation, mat_clip02, mat_clip02_adv_none (climbing only)")
    parser.add_argument("--out", default="benchmarks/results/sequence_table.json")
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
        for key in args.variants:
            if key not in variants:
                continue
            label, algo, kw = variants[key]
            js, hs, times = [], [], []
            for seed in range(args.seeds):
                t0 = time.perf_counter()
                report = oracle_run(algo, env, env_kwargs=env_kwargs, n_updates=updates, num_envs=num_envs,
                                    seed=seed, algo_kwargs=kw)
                times.append(time.perf_counter() - t0)
                js.append(report.final_return)
                hs.append(report.entropies[-1])
            hits = sum(abs(j - optimum) <= 0.05 * abs(optimum) for j in js)
            out.append({"row": row, "variant_key": key, "env": env, "env_kwargs": env_kwargs, "variant": label,
                        "algo": algo, "overrides": {k: list(v) if isinstance(v, tuple) else v for k, v in kw.items()},
                        "updates": updates, "num_envs": num_envs, "optimum": optimum, "final_J": js,
                        "joint_entropy": hs, "seeds_at_optimum": hits, "seconds_per_run": sum(times) / len(times)})
            n = env_kwargs.get("n_agents", 2)
            print(f"| {row} | {label} | {updates} | {hits}/{args.seeds} | {' '.join(f'{j:.3f}' for j in js)} | "
                  f"{sum(hs) / len(hs):.3f} (log n! = {math.log(math.factorial(n)):.3f}) "
                  f"| {sum(times) / len(times):.1f} |", flush=True)
    path = Path(args.out)
    path.parent.mkdir(parents=True, exist_ok=True)
    done = {(e["row"], e["variant_key"]) for e in out}
    kept = [e for e in json.loads(path.read_text()) if (e["row"], e.get("variant_key")) not in done] \
        if path.exists() else []
    path.write_text(json.dumps(kept + out, indent=1))  # rows not rerun are kept


if __name__ == "__main__":
    main()
