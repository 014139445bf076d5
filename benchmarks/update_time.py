"""Wall time of ONE training update: MAT vs HAPPO vs AR-MAPPO (and MAT-Dec) for n = 2, 4, 8, 16 agents.

The seed (issue 9) claims that MAT trains faster than HAPPO because its update is one parallel pass (all agents'
conditionals teacher-forced at once, one optimiser for policy and values) while HAPPO updates the agents one
after another. This script measures it on synthetic rollouts of the same size for every algorithm:

* ``matrix``: matrix-game-sized inputs (``obs_dim`` 1, state 1, 2 actions per agent);
* ``obs64``: a 64-dimensional observation per agent (state ``64 n``), 5 actions per agent.

For every (inputs, n, algorithm) a fresh agent (seed 0) gets a buffer of ``T x B`` steps of random observations,
rewards and actions drawn by the agent itself (so log-probs and values are its own), then ``agent.update`` is
timed ``--repeats`` times (each on a fresh copy of the same buffer; the median is reported). Equal work
settings: ``ppo_epoch`` = ``critic_epoch`` = ``--epochs``, one minibatch, width 64 for every network (MAT
``n_embd`` 64, one block, one head; HAPPO/AR-MAPPO ``hidden`` (64, 64)). ``torch.set_num_threads(1)``, CPU.
Writes ``benchmarks/results/update_time.json`` and prints a markdown table.

    python benchmarks/update_time.py [--agents 2 4 8 16] [--repeats 5] [--epochs 5] [--steps 1000]
"""

from __future__ import annotations

import argparse
import copy
import json
import platform
import statistics
import time
from pathlib import Path

import torch

from seqmarl.algos import make_agent
from seqmarl.envs.base import AgentSpace, EnvSpec

ALGOS = {
    "mat": dict(n_embd=64, n_block=1, n_head=1),
    "mat_dec": dict(n_embd=64, n_block=1, n_head=1),
    "happo": dict(hidden=(64, 64)),
    "ar_mappo": dict(hidden=(64, 64)),
}
INPUTS = {"matrix": (1, 2), "obs64": (64, 5)}  # obs_dim, actions per agent


def _spec(n: int, obs_dim: int, n_actions: int) -> EnvSpec:
    state_dim = 1 if obs_dim == 1 else obs_dim * n
    return EnvSpec(n_agents=n, obs_dim=obs_dim, state_dim=state_dim,
                   agent_spaces=tuple(AgentSpace.discrete(n_actions) for _ in range(n)), episode_limit=1000)


def _buffer(agent, spec: EnvSpec, T: int, B: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    buf = agent.make_buffer(T, B)
    n = spec.n_agents
    for _ in range(T):
        obs = torch.randn(B, n, spec.obs_dim, generator=g)
        state = torch.randn(B, spec.state_dim, generator=g)
        avail = torch.ones(B, n, spec.max_actions, dtype=torch.bool)
        from types import SimpleNamespace

        actions, log_probs = agent.act(SimpleNamespace(obs=obs, state=state, avail_actions=avail))
        values = agent.values(state, obs)
        buf.insert(obs, state, actions, log_probs, torch.randn(B, generator=g), values, values,
                   torch.zeros(B, dtype=torch.bool), torch.zeros(B, dtype=torch.bool), avail_actions=avail)
    return buf


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--agents", type=int, nargs="*", default=[2, 4, 8, 16])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--steps", type=int, default=1000, help="samples per update (T x B with T = 10)")
    parser.add_argument("--algos", nargs="*", default=list(ALGOS))
    parser.add_argument("--inputs", nargs="*", default=list(INPUTS))
    parser.add_argument("--out", default="benchmarks/results/update_time.json")
    args = parser.parse_args()
    torch.set_num_threads(1)
    T = 10
    B = max(1, args.steps // T)
    rows = []
    print(f"| inputs | n | {' | '.join(args.algos)} | MAT / HAPPO |")
    print("|---|---|" + "---|" * len(args.algos) + "---|")
    for inputs in args.inputs:
        obs_dim, n_actions = INPUTS[inputs]
        for n in args.agents:
            spec = _spec(n, obs_dim, n_actions)
            med = {}
            for algo in args.algos:
                kw = dict(ALGOS[algo], ppo_epoch=args.epochs, actor_num_mini_batch=1)
                if not algo.startswith("mat"):
                    kw.update(critic_epoch=args.epochs, critic_num_mini_batch=1)
                agent = make_agent(algo, spec, seed=0, **kw)
                template = _buffer(agent, spec, T, B, seed=1)
                times = []
                for _ in range(args.repeats):
                    buf = copy.deepcopy(template)
                    t0 = time.perf_counter()
                    agent.update(buf)
                    times.append(time.perf_counter() - t0)
                med[algo] = statistics.median(times)
                rows.append({"inputs": inputs, "n_agents": n, "algo": algo, "obs_dim": obs_dim,
                             "n_actions": n_actions, "samples": T * B, "epochs": args.epochs,
                             "median_s": med[algo], "times_s": times})
            ratio = med["mat"] / med["happo"] if "mat" in med and "happo" in med else float("nan")
            print(f"| {inputs} | {n} | " + " | ".join(f"{med[a]:.3f}" for a in args.algos) + f" | {ratio:.2f} |",
                  flush=True)
    path = Path(args.out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"machine": platform.platform(), "torch": torch.__version__, "threads": 1,
                                "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
