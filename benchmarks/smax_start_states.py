"""Where a trained SMAX policy loses: weak start states or bad luck? (issue 11 §3, the SMAX 3m win-rate target.)

A SMAX battle's outcome depends on its start state (the units' positions, drawn by ``reset``) and on the package's
randomness during the battle (weapon-cooldown jitter, the heuristic enemy's choices). This script fixes ``S`` start
states (one ``reset(seed)`` of ``S`` parallel battles) and replays each of them ``R`` times with the trained policy
acting greedily, every replay under another key for the in-battle randomness
(:meth:`seqmarl.envs.jaxbatch.JaxBatchedEnv.reseed_steps`). Per start state ``s`` the win frequency is

    p_s = (1/R) * sum_r won(s, r),

and the overall win rate is the mean of ``p_s``. If the losses were luck alone, every start would have the same
``p_s``; losses concentrated on starts with low ``p_s`` are start states the policy plays badly — the part a better
policy could win back. Reported per run: the overall rate, the fraction of starts won in every replay
(``p_s = 1``), the histogram of ``p_s``, and the share of all losses that fall on starts won at least 80% of the
time (``luck_share``). Across several runs of the same map (same ``--seed``, so the same start states): the mean
pairwise correlation of their ``p_s`` (do they fail on the same starts?) and ``best_of_runs = mean_s max_run p_s``,
the win rate if every start were played by the run that plays it best (an optimistic figure: the maximum of noisy
frequencies is biased upwards) — where it is close to 1 while every run is not, the runs' weak starts differ, so
the losses are not intrinsic to the starts.

    python benchmarks/smax_start_states.py RUN_DIR [RUN_DIR ...] [--starts 200] [--replays 20] [--seed 123]
        [--out benchmarks/results/smax_start_states.json]

``RUN_DIR``: finished ``seqmarl train`` / ``seqmarl sweep`` runs on SMAX (their ``config.yaml`` and last
checkpoint; feed-forward agents). Prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from generalisation import load_run  # noqa: E402

from seqmarl.envs import make  # noqa: E402

BINS = (0.0, 0.2, 0.4, 0.6, 0.8, 0.95, 1.0)


@torch.no_grad()
def replay_wins(agent: Any, env: Any, seed: int, replays: int) -> np.ndarray:
    """``won[r, s]`` (0/1): start state ``s`` of ``env.reset(seed)`` played greedily by ``agent`` to its end under
    the ``r``-th key for the in-battle randomness (replay 0 keeps the reset's own key)."""
    if isinstance(replays, bool) or not isinstance(replays, int) or replays < 1:
        raise ValueError(f"replays must be a positive integer, got {replays!r}")
    if getattr(agent, "recurrent", False):
        raise ValueError("replay_wins takes feed-forward agents (a recurrent run's hidden state is not carried here)")
    won = np.zeros((replays, env.num_envs))
    for r in range(replays):
        step = env.reset(seed=seed)
        if r > 0:
            env.reseed_steps(seed * 1000 + r)
        finished = torch.zeros(env.num_envs, dtype=torch.bool)
        wins = torch.zeros(env.num_envs)
        for _ in range(env.spec.episode_limit):
            actions, _ = agent.act(step, deterministic=True)
            step = env.step(actions)
            done = (step.terminated | step.truncated).cpu() & ~finished
            wins = torch.where(done, step.info["battle_won"].cpu().float(), wins)
            finished |= done
            if bool(finished.all()):
                break
        won[r] = wins.numpy()
    return won


def summarise(won: np.ndarray) -> dict[str, Any]:
    """Statistics of ``won[r, s]`` (module docstring): ``p_s``'s mean and histogram over :data:`BINS` (the last
    bin holds ``p_s = 1`` exactly), the fraction of starts always / never won, and ``luck_share``, the share of all
    losses on starts with ``p_s >= 0.8`` (NaN when nothing was lost)."""
    won = np.asarray(won, dtype=float)
    if won.ndim != 2 or won.size == 0:
        raise ValueError(f"won must be a non-empty [replays, starts] array, got shape {won.shape}")
    p = won.mean(axis=0)
    losses = 1.0 - won
    total = losses.sum()
    edges = np.array([*BINS[:-1], 1.0 - 1e-12, 1.0 + 1e-12])  # [0,.2) ... [.8,.95) [.95,1) {1}
    hist = np.histogram(p, bins=edges)[0]
    return {
        "win_rate": float(p.mean()),
        "starts": int(won.shape[1]), "replays": int(won.shape[0]),
        "always_won": float((p == 1.0).mean()), "never_won": float((p == 0.0).mean()),
        "histogram_edges": list(BINS), "histogram": [int(x) for x in hist],
        "luck_share": float(losses[:, p >= 0.8].sum() / total) if total > 0 else float("nan"),
    }


def across_runs(won_per_run: Sequence[np.ndarray]) -> dict[str, float]:
    """For ``m >= 2`` tables ``won[r, s]`` over the same starts: ``mean_pairwise_correlation`` of the runs' ``p_s``
    (NaN for a run whose ``p_s`` is constant) and ``best_of_runs = mean_s max_run p_s``."""
    ps = np.array([np.asarray(w, dtype=float).mean(axis=0) for w in won_per_run])
    if ps.ndim != 2 or ps.shape[0] < 2:
        raise ValueError(f"across_runs needs at least 2 tables over the same starts, got {len(won_per_run)}")
    with np.errstate(invalid="ignore", divide="ignore"):
        c = np.corrcoef(ps)
    upper = c[np.triu_indices(ps.shape[0], k=1)]
    return {"mean_pairwise_correlation": float(np.mean(upper)), "best_of_runs": float(ps.max(axis=0).mean()),
            "mean_of_runs": float(ps.mean())}


def table(rows: Sequence[dict[str, Any]]) -> str:
    lines = ["| run | win rate | starts always won | starts never won | p_s histogram [0,.2) [.2,.4) [.4,.6) [.6,.8) "
             "[.8,.95) [.95,1) {1} | losses on starts with p_s ≥ 0.8 |", "|---|---:|---:|---:|---|---:|"]
    for r in rows:
        lines.append(f"| {r['run']} | {r['win_rate']:.3f} | {r['always_won']:.2f} | {r['never_won']:.2f} | "
                     f"{' '.join(str(x) for x in r['histogram'])} | {r['luck_share']:.2f} |")
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("runs", nargs="+", help="finished SMAX run directories")
    ap.add_argument("--starts", type=int, default=200, help="start states (parallel battles)")
    ap.add_argument("--replays", type=int, default=20, help="replays of every start state")
    ap.add_argument("--seed", type=int, default=123, help="reset seed of the start states")
    ap.add_argument("--out", default=None, help="JSON file for the results")
    args = ap.parse_args(argv)
    for name in ("starts", "replays"):
        if getattr(args, name) < 1:
            ap.error(f"--{name} must be >= 1, got {getattr(args, name)}")
    if args.seed < 0:
        ap.error(f"--seed must be >= 0, got {args.seed}")
    for run in args.runs:
        if not (Path(run) / "config.yaml").is_file() or not (Path(run) / "checkpoints" / "last.pt").is_file():
            ap.error(f"run directory {run!r} has no config.yaml and checkpoints/last.pt")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    rows = []
    for run in args.runs:
        cfg, agent = load_run(run)
        if not cfg.env.startswith("smax/"):
            print(f"error: {run} is not a SMAX run (env {cfg.env})", file=sys.stderr)
            return 2
        env = make(cfg.env, num_envs=args.starts, seed=args.seed, **cfg.env_kwargs)
        won = replay_wins(agent, env, args.seed, args.replays)
        rows.append({"run": str(run), "env": cfg.env, "algo": cfg.algo, **summarise(won),
                     "won": won.astype(int).tolist()})
    print(table(rows))
    out: dict[str, Any] = {"seed": args.seed, "rows": rows}
    for env_name in sorted({r["env"] for r in rows}):
        same = [np.array(r["won"]) for r in rows if r["env"] == env_name]
        if len(same) >= 2:
            out.setdefault("across_runs", {})[env_name] = stats = across_runs(same)
            print(f"{env_name}, {len(same)} runs: mean win rate {stats['mean_of_runs']:.3f}, best run per start "
                  f"{stats['best_of_runs']:.3f}, mean pairwise correlation of p_s {stats['mean_pairwise_correlation']:.2f}")
    if args.out:
        Path(args.out).write_text(json.dumps(out, indent=1))
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
