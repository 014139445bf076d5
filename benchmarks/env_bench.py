"""Raw speed of the batched environments with uniformly random (available) actions.

    python benchmarks/env_bench.py [--out PATH] [--device cpu] [--steps N] [--repeats R]

Cases
  xor4     ``make("matrix/xor", n_agents=4, num_envs=512)`` (one-shot: every step auto-resets all envs)
  bridge   ``make("bridge", num_envs=128)`` (auto-resets at goal or after 30 steps)
each with action validation on (the default) and off (``check_actions=False``).
Reported: ``env_steps_per_s`` = num_envs * steps / seconds (transitions per second) and ``calls_per_s``
= ``step()`` calls per second; median over ``--repeats`` timed runs of ``--steps`` calls each, after a warm-up.
Random actions are drawn inside the timed loop (uniform over each agent's available actions; action 0 is
always available in these envs). Writes JSON (default ``benchmarks/results/env_bench.json``) and prints a
markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

import torch

from seqmarl import envs

DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "env_bench.json"
CASES = {"xor4": ("matrix/xor", {"n_agents": 4}, 512), "bridge": ("bridge", {}, 128)}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def run_case(name: str, kwargs: dict, num_envs: int, device: str, steps: int, repeats: int, check: bool) -> dict:
    env = envs.make(name, num_envs=num_envs, device=device, seed=0, **kwargs)
    env.check_actions = check
    gen = torch.Generator(device=env.device).manual_seed(0)
    a_max = env.spec.max_actions
    step = env.reset(seed=0)

    def play(n: int) -> None:
        nonlocal step
        for _ in range(n):
            a = torch.randint(0, a_max, (num_envs, env.spec.n_agents), generator=gen, device=env.device)
            ok = step.avail_actions.gather(2, a.unsqueeze(-1)).squeeze(-1)
            step = env.step(torch.where(ok, a, torch.zeros_like(a)))

    play(max(10, steps // 10))  # warm-up
    times = []
    for _ in range(repeats):
        _sync(env.device)
        start = time.perf_counter()
        play(steps)
        _sync(env.device)
        times.append(time.perf_counter() - start)
    seconds = statistics.median(times)
    return {
        "env": name,
        "kwargs": kwargs,
        "num_envs": num_envs,
        "check_actions": check,
        "steps": steps,
        "seconds_median": seconds,
        "calls_per_s": steps / seconds,
        "env_steps_per_s": num_envs * steps / seconds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    if args.steps < 1 or args.repeats < 1:
        parser.error("--steps and --repeats must be >= 1")
    results = []
    for label, (name, kwargs, num_envs) in CASES.items():
        for check in (True, False):
            row = run_case(name, kwargs, num_envs, args.device, args.steps, args.repeats, check)
            row["case"] = label
            results.append(row)
    payload = {
        "benchmark": "env_bench",
        "device": args.device,
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor(),
            "cpu_count": os.cpu_count(),
            "torch": torch.__version__,
            "torch_threads": torch.get_num_threads(),
            "python": platform.python_version(),
        },
        "results": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(payload, indent=2) + "\n")
    print("| case | env | num_envs | check_actions | env steps/s | step() calls/s |")
    print("|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r['case']} | {r['env']} | {r['num_envs']} | {r['check_actions']} | "
              f"{r['env_steps_per_s']:,.0f} | {r['calls_per_s']:,.0f} |")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
