"""Speed of the value-decomposition training loop: QMIX on the bridge (GRU agents, PyMARL defaults).

    python benchmarks/offpolicy_bench.py [--num-envs 8] [--iterations 20] [--device cpu]

``train_sps``: env steps per wall second of whole iterations (collect ``rollout_length = 30`` steps in every env,
then one update on 32 sampled episodes), timed after the replay holds a batch. ``update_ms``: one gradient step on
32 episodes (``agent.update``) alone, median of 20. Writes JSON to benchmarks/results/offpolicy_bench.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import torch

from seqmarl.algos import Trainer, TrainerConfig, make_agent
from seqmarl.envs import make


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--num-envs", type=int, default=8)
    p.add_argument("--iterations", type=int, default=20)
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", default=str(Path(__file__).parent / "results" / "offpolicy_bench.json"))
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    env = make("bridge", num_envs=args.num_envs, device=args.device, seed=0)
    rollout = env.spec.episode_limit
    agent = make_agent("qmix", env.spec, device=args.device, seed=0)
    trainer = Trainer(env, agent, TrainerConfig(total_steps=10**9, rollout_length=rollout, progress=False,
                                                tensorboard=False))
    while not agent.replay.can_sample(agent.config.batch_size):  # warm-up: fill one batch
        trainer.train_iteration()
    start = time.perf_counter()
    for _ in range(args.iterations):
        trainer.train_iteration()
    elapsed = time.perf_counter() - start
    sps = args.iterations * rollout * args.num_envs / elapsed
    times = []
    for _ in range(20):
        t = time.perf_counter()
        agent.update()
        times.append(time.perf_counter() - t)
    result = {"env": "bridge", "algo": "qmix", "num_envs": args.num_envs, "rollout_length": rollout,
              "batch_episodes": agent.config.batch_size, "train_sps": sps,
              "update_ms": 1000 * statistics.median(times), "device": args.device,
              "torch": torch.__version__, "machine": platform.machine(), "threads": torch.get_num_threads()}
    print(json.dumps(result, indent=1))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
