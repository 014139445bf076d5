"""Bridge (Fu et al.'s temporal XOR) over seeds: which agent crosses the bridge first under the sampled policy.

For every variant and seed: train on ``bridge`` (64 environments, rollouts of 30 steps), then play 200 episodes
with the stochastic policy (sampling, no argmax; ``envs.bridge.record_episodes``) and classify each by
``envs.bridge.crossing_order`` (the evaluation draws from the agent's generator, so a run's later figures
follow its earlier evaluations). Reported per seed: the success rate (both agents home within 30 steps) and the
fractions of episodes in which agent 0 / agent 1 crosses first. Issue 9's target for an auto-regressive policy:
each order in >= 20% of the episodes with a high success rate; for independent policies one dominant order.
Variants ``ego_*`` train and play on ``EgocentricBridgeEnv`` (agent 1 sees and acts in the map turned by 180
degrees: a policy shared without agent id is then swap-symmetric, and both orders are equally likely).
Prints a markdown table and writes ``benchmarks/results/bridge_orders.json`` (variants not rerun are kept).

    python benchmarks/bridge_orders.py [--seeds 5] [--updates 40 60] [--variants ar_random ar_fixed ...]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from seqmarl.algos import make_agent
from seqmarl.algos.trainer import Trainer, TrainerConfig
from seqmarl.envs.bridge import BridgeEnv, EgocentricBridgeEnv, crossing_order, record_episodes

NUM_ENVS, ROLLOUT, EPISODES = 64, 30, 200
STEP = dict(lr=5e-3)
VARIANTS: dict[str, tuple[str, str, dict]] = {
    "ar_random": ("AR-MAPPO, random order per sample", "ar_mappo", {**STEP, "ar_order": "random"}),
    "ar_fixed": ("AR-MAPPO, fixed order", "ar_mappo", STEP),
    "ar_random_ablation": ("ablation: AR-MAPPO random order, previous actions hidden", "ar_mappo",
                           {**STEP, "ar_order": "random", "ar_condition": False}),
    "mappo": ("MAPPO, shared actor", "mappo", {**STEP, "share_param": True}),
    "ar_random_adv_none_ent003": ("AR-MAPPO random order, adv not normalised, entropy 0.003", "ar_mappo",
                                  {**STEP, "ar_order": "random", "adv_norm": "none", "entropy_coef": 0.003}),
    "ar_random_cf": ("AR-MAPPO, random order, counterfactual entropy (Fu-code)", "ar_mappo",
                     {**STEP, "ar_order": "random", "ar_entropy": "counterfactual"}),
    "ar_fixed_cf": ("AR-MAPPO, fixed order, counterfactual entropy", "ar_mappo",
                    {**STEP, "ar_entropy": "counterfactual"}),
    "ar_random_cf_ablation": ("ablation: counterfactual entropy, previous actions hidden", "ar_mappo",
                              {**STEP, "ar_order": "random", "ar_entropy": "counterfactual", "ar_condition": False}),
    "ar_random_cf_ent05": ("AR-MAPPO, random order, counterfactual entropy 0.05", "ar_mappo",
                           {**STEP, "ar_order": "random", "ar_entropy": "counterfactual", "entropy_coef": 0.05}),
    "ar_fixed_cf_ent05": ("AR-MAPPO, fixed order, counterfactual entropy 0.05", "ar_mappo",
                          {**STEP, "ar_entropy": "counterfactual", "entropy_coef": 0.05}),
    "ar_random_ent05": ("AR-MAPPO, random order, conditional entropy 0.05", "ar_mappo",
                        {**STEP, "ar_order": "random", "entropy_coef": 0.05}),
    # the egocentric Bridge (agent 1 sees and acts in the turned map): keys starting with "ego_"
    "ego_ar_random": ("egocentric: AR-MAPPO, random order", "ar_mappo", {**STEP, "ar_order": "random"}),
    "ego_ar_fu": ("egocentric (Fu-code): AR-MAPPO, random order, tokens without id", "ar_mappo",
                  {**STEP, "ar_order": "random", "ar_token_id": False}),
    "ego_ar_fu_cf": ("egocentric (Fu-code): AR-MAPPO, random order, tokens without id, counterfactual entropy",
                     "ar_mappo", {**STEP, "ar_order": "random", "ar_token_id": False, "ar_entropy": "counterfactual"}),
    "ego_ar_random_ablation": ("egocentric: AR-MAPPO random order, previous actions hidden", "ar_mappo",
                               {**STEP, "ar_order": "random", "ar_condition": False}),
    "ego_mappo": ("egocentric: MAPPO, shared actor", "mappo", {**STEP, "share_param": True}),
    "ego_mappo_separate": ("egocentric: MAPPO, separate actors", "mappo", {**STEP, "share_param": False}),
}


def _env_cls(key: str) -> type:
    return EgocentricBridgeEnv if key.startswith("ego_") else BridgeEnv


def order_frequencies(agent, seed: int, env_cls: type = BridgeEnv) -> dict[str, float]:
    """Success rate and first-crossing fractions over EPISODES sampled episodes."""
    env = env_cls(num_envs=EPISODES, seed=seed)
    positions, success = record_episodes(env, lambda step: agent.act(step)[0], seed=seed)
    order = crossing_order(positions)
    return {"success": float(success.float().mean()), "agent0_first": float((order == 0).float().mean()),
            "agent1_first": float((order == 1).float().mean()), "neither": float((order == -1).float().mean())}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--updates", type=int, nargs="+", default=[40, 60], help="evaluate after these updates")
    parser.add_argument("--variants", nargs="*", default=["ar_random", "ar_fixed", "ar_random_ablation", "mappo"])
    parser.add_argument("--out", default="benchmarks/results/bridge_orders.json")
    args = parser.parse_args()
    unknown = sorted(set(args.variants) - set(VARIANTS))
    if unknown:
        parser.error(f"unknown variants {unknown}; known: {list(VARIANTS)}")
    if args.seeds < 1 or min(args.updates) < 1:
        parser.error(f"--seeds and --updates must be >= 1, got {args.seeds} and {args.updates}")
    torch.set_num_threads(1)
    out_path = Path(args.out)
    kept = json.loads(out_path.read_text()) if out_path.exists() else []
    rows = []
    print("| variant | updates | seed | success | agent 0 first | agent 1 first | both orders >= 20% |")
    print("|---|---|---|---|---|---|---|")
    for key in args.variants:
        label, algo, kw = VARIANTS[key]
        for seed in range(args.seeds):
            env = _env_cls(key)(num_envs=NUM_ENVS, seed=seed)
            agent = make_agent(algo, env.spec, seed=seed, **kw)
            trainer = Trainer(env, agent, TrainerConfig(total_steps=NUM_ENVS * ROLLOUT * max(args.updates),
                                                        rollout_length=ROLLOUT, progress=False, tensorboard=False),
                              seed=seed)
            t0 = time.perf_counter()
            for updates in sorted(args.updates):
                while trainer.iteration < updates:
                    trainer.train_iteration()
                freq = order_frequencies(agent, seed=1000 + seed, env_cls=_env_cls(key))
                both = min(freq["agent0_first"], freq["agent1_first"]) >= 0.2
                rows.append({"variant_key": key, "variant": label, "algo": algo, "overrides": kw, "seed": seed,
                             "updates": updates, **freq, "both_orders": both,
                             "seconds": time.perf_counter() - t0})
                print(f"| {label} | {updates} | {seed} | {freq['success']:.3f} | {freq['agent0_first']:.3f} | "
                      f"{freq['agent1_first']:.3f} | {both} |", flush=True)
        merged = [r for r in kept if r["variant_key"] not in {x["variant_key"] for x in rows}] + rows
        out_path.parent.mkdir(parents=True, exist_ok=True)
        out_path.write_text(json.dumps(merged, indent=2) + "\n")


if __name__ == "__main__":
    main()
