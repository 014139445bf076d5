"""JaxMARL's OWN recurrent MAPPO baseline on an SMAX map, as the reference curve for seqmarl's SMAX runs.

    python benchmarks/jaxmarl_reference.py --jaxmarl PATH_TO_JAXMARL_CHECKOUT [--map 3m] [--steps 2e6]
        [--seeds 0,1,2] [--out benchmarks/results/jaxmarl_mappo_smax3m.json]

Runs ``baselines/MAPPO/mappo_rnn_smax.py``'s ``make_train`` UNMODIFIED with the values of
``baselines/MAPPO/config/mappo_homogenous_rnn_smax.yaml`` except ``MAP_NAME`` and ``TOTAL_TIMESTEPS``; its
per-update ``wandb.log`` call is captured (``wandb`` is replaced by a stub module) and written to ``--out`` as a list
of ``{"seed", "env_steps", "win_rate", "returns", ...}``. The seeds run one after another (PRNG keys
``SEED + s``) through one compiled function.

Units, as seqmarl's: ``env_steps`` counts transitions of single environment instances summed over the parallel
instances (the baseline logs ``update_steps * NUM_ENVS * NUM_STEPS``, the count BEFORE the update's rollout; here
the count after it, the baseline's value kept as ``env_step_baseline_logged``). The win rate is the baseline's:
the fraction of the battles that ended during the update's rollout whose last reward was >= 1 (the win bonus;
``jaxmarl/wrappers/baselines.py`` ``SMAXLogWrapper``), where seqmarl's ``win_rate`` averages the last 100 ended
battles — the same definition of a win, another window.

Environment: the baseline needs jax, jaxmarl, flax, optax, distrax, hydra-core and omegaconf, but not torch — use a
separate virtualenv (7 Dec: jax/jaxlib 0.10.2, jaxmarl 0.2.0, flax 0.12.8, optax 0.2.8, distrax 0.1.9, the
JaxMARL repository at c793d095). CPU: ``XLA_FLAGS="--xla_cpu_multi_thread_eigen=false
intra_op_parallelism_threads=1"`` for one core.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import types
from pathlib import Path

DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "jaxmarl_mappo_smax3m.json"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--jaxmarl", required=True, type=Path, help="a JaxMARL checkout (holding baselines/MAPPO)")
    p.add_argument("--map", default="3m", help="SMAX map name (MAP_NAME)")
    p.add_argument("--steps", type=float, default=2e6, help="TOTAL_TIMESTEPS (env steps over all instances)")
    p.add_argument("--seeds", default="0", help="comma-separated seed offsets, e.g. 0,1,2")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = p.parse_args(argv)
    baseline = args.jaxmarl / "baselines" / "MAPPO" / "mappo_rnn_smax.py"
    if not baseline.is_file():
        p.error(f"--jaxmarl: {baseline} does not exist (expected a JaxMARL checkout)")
    if not args.steps > 0:
        p.error(f"--steps must be > 0, got {args.steps}")
    try:
        args.seed_list = [int(s) for s in args.seeds.split(",") if s != ""]
    except ValueError:
        p.error(f"--seeds must be comma-separated integers, got {args.seeds!r}")
    if not args.seed_list:
        p.error("--seeds is empty")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    records: list[dict] = []
    current: dict = {}

    def log(metrics: dict) -> None:  # the baseline's wandb.log, once per update
        import numpy as np

        rec = {k: float(np.asarray(v)) for k, v in metrics.items() if np.ndim(v) == 0}
        rec["env_step_baseline_logged"] = rec.pop("env_step")
        rec["env_steps"] = rec["env_step_baseline_logged"] + config["NUM_ENVS"] * config["NUM_STEPS"]
        rec["seed"] = current["seed"]
        rec["wall_s"] = time.time() - current["t0"]
        records.append(rec)
        print(f"seed={rec['seed']} env_steps={rec['env_steps']:.0f} win_rate={rec['win_rate']:.3f}", flush=True)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        tmp = args.out.with_suffix(".tmp")
        tmp.write_text(json.dumps(records))
        os.replace(tmp, args.out)  # every update: a kill leaves the curve so far

    stub = types.ModuleType("wandb")
    stub.log = log  # type: ignore[attr-defined]
    stub.init = lambda *a, **k: None  # type: ignore[attr-defined]
    sys.modules["wandb"] = stub
    sys.path.insert(0, str(args.jaxmarl / "baselines" / "MAPPO"))
    import jax
    import mappo_rnn_smax as baseline  # noqa: E402 - the checkout's module, found through the path above
    from omegaconf import OmegaConf

    config = OmegaConf.to_container(OmegaConf.load(
        str(args.jaxmarl / "baselines" / "MAPPO" / "config" / "mappo_homogenous_rnn_smax.yaml")))
    config.update(MAP_NAME=args.map, TOTAL_TIMESTEPS=float(args.steps), WANDB_MODE="disabled")
    print("config:", json.dumps(config), flush=True)
    train = jax.jit(baseline.make_train(config))
    for s in args.seed_list:
        current.update(seed=s, t0=time.time())
        jax.block_until_ready(train(jax.random.PRNGKey(int(config["SEED"]) + s)))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
