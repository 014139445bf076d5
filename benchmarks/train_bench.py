"""Speed of the whole training loop (collection + update) next to the raw env step rate.

    python benchmarks/train_bench.py [--updates 8] [--device cpu] [--out PATH]

Cases (DESIGN/issue: matrix/xor n=4 with 512 envs, bridge with 128 envs), algorithms MAPPO and HAPPO with
their documented defaults (hidden 128x128, 5 actor + 5 critic epochs, 1 minibatch). ``train_sps`` = env
steps / wall seconds of whole iterations (timed after one warm-up iteration); ``raw_sps`` = the env alone
with uniformly random actions (benchmarks/env_bench.py, same number of steps); ``ratio`` = train / raw.
Writes JSON (default benchmarks/results/train_bench.json) and prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import torch

from seqmarl.algos import Trainer, TrainerConfig, make_agent
from seqmarl.envs import make

sys.path.insert(0, str(Path(__file__).resolve().parent))
from env_bench import run_case  # noqa: E402  (benchmarks/ is a folder of scripts, not a package)

CASES = {"matrix/xor n=4": ("matrix/xor", {"n_agents": 4}, 512, 8), "bridge": ("bridge", {}, 128, 30)}


def raw_rate(name: str, kwargs: dict, num_envs: int, steps: int, device: str) -> float:
    """The env alone with uniformly random available actions (``env_bench.run_case``, action checks on)."""
    return run_case(name, kwargs, num_envs, device, steps, repeats=3, check=True)["env_steps_per_s"]


def train_rate(algo: str, name: str, kwargs: dict, num_envs: int, rollout: int, updates: int, device: str) -> dict:
    env = make(name, num_envs=num_envs, device=device, seed=0, **kwargs)
    agent = make_agent(algo, env.spec, device=device, seed=0)
    trainer = Trainer(env, agent, TrainerConfig(total_steps=num_envs * rollout * (updates + 1), rollout_length=rollout,
                                                progress=False, tensorboard=False), seed=0)
    trainer.train_iteration()  # warm-up
    start = time.perf_counter()
    collect = 0.0
    for _ in range(updates):
        row = trainer.train_iteration()
        collect += row["collect_fraction"] * num_envs * rollout / row["sps"]
    seconds = time.perf_counter() - start
    return {"train_sps": num_envs * rollout * updates / seconds, "collect_share": collect / seconds}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--updates", type=int, default=8)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent / "results" / "train_bench.json"))
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    rows = []
    print("| case | algo | train SPS | raw env SPS | train/raw | collection share |")
    print("|---|---|---|---|---|---|")
    for label, (name, kwargs, num_envs, rollout) in CASES.items():
        raw = raw_rate(name, kwargs, num_envs, rollout * args.updates, args.device)
        for algo in ("mappo", "happo"):
            r = train_rate(algo, name, kwargs, num_envs, rollout, args.updates, args.device)
            row = {"case": label, "algo": algo, "num_envs": num_envs, "rollout_length": rollout, "raw_sps": raw,
                   "ratio": r["train_sps"] / raw, **r}
            rows.append(row)
            print(f"| {label} ({num_envs} envs, T={rollout}) | {algo} | {r['train_sps']:,.0f} | {raw:,.0f} | "
                  f"{row['ratio']:.1%} | {r['collect_share']:.0%} |", flush=True)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"device": args.device, "torch": torch.__version__, "threads": torch.get_num_threads(),
                               "machine": platform.machine(), "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
