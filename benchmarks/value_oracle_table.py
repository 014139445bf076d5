"""Value-decomposition learners vs the IGM oracle on one-shot matrix games (the issue's table).

    python benchmarks/value_oracle_table.py [--out PATH]

Every cell trains with :func:`seqmarl.value_oracle.fit_on_uniform_data` (uniform exploration, 10 episodes per joint
action, full-batch Adam with cosine decay; QPLEX: constant step size, as its stop-gradient update needs; QMIX: best
of 4 initialisations by training loss) and
compares with the oracle fit of the class under the replay's joint-action counts (``theory.factorization``).
Columns: max |learned Q_tot - oracle| on the data's support, learned and oracle weighted residuals, learned greedy
joint action, the oracle fit's greedy set, IGM consistency of the learned table. Writes JSON and prints markdown.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from seqmarl.theory import games
from seqmarl.value_oracle import fit_on_uniform_data, value_fit_report

GAMES = {
    "climbing": games.climbing(),
    "penalty(-100)": games.penalty(-100.0),
    "qtran": games.qtran(),
    "xor(2)": games.xor(2),
    "random 3x3": games.random_game(np.random.default_rng(0), n_agents=2, n_actions=3, n_states=1, gamma=0.0),
}
SETTINGS = {"vdn": dict(steps=400, lr=0.02), "qmix": dict(steps=1500, lr=0.01, restarts=4),
            "qplex": dict(steps=2000, lr=0.01, cosine=False), "ow_qmix": dict(steps=800, lr=0.01),
            "cw_qmix": dict(steps=800, lr=0.01), "iql": dict(steps=400, lr=0.02)}
NAMES = "abcdefgh"


def _joint(a) -> str:
    return "(" + ",".join(NAMES[i] for i in a) + ")"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default=str(Path(__file__).parent / "results" / "value_oracle_table.json"))
    p.add_argument("--algos", nargs="+", choices=list(SETTINGS), default=list(SETTINGS),
                   help="rows to rerun (the others are kept from --out)")
    args = p.parse_args(argv)
    old = json.loads(Path(args.out).read_text()) if Path(args.out).exists() else []
    torch.set_num_threads(1)
    rows = []
    print("| algorithm | game | max abs(Q_tot - oracle) | residual learned / oracle | greedy learned | oracle greedy | IGM "
          "| QMIX: monotone fit / own cone's fit |")
    print("|---|---|---|---|---|---|---|---|")
    for algo, kw in SETTINGS.items():
        if algo not in args.algos:
            rows.extend(r for r in old if r["algo"] == algo)
            continue
        for name, game in GAMES.items():
            start = time.perf_counter()
            agent, env = fit_on_uniform_data(algo, game, **kw)
            rep = value_fit_report(agent, env)
            row = {"algo": algo, "game": name, "seconds": time.perf_counter() - start, **rep.to_dict()}
            rows.append(row)
            err = "-" if rep.max_abs_error is None else f"{rep.max_abs_error:.2g}"
            res = f"{rep.learned_residual:.4g}" + ("" if rep.oracle_residual is None else f" / {rep.oracle_residual:.4g}")
            oracle = "-" if rep.oracle_greedy is None else " ".join(_joint(a) for a in rep.oracle_greedy)
            extra = ("-" if rep.monotone_residual is None
                     else f"{rep.monotone_residual:.4g} / {rep.cone_residual:.4g}")
            print(f"| {algo} | {name} | {err} | {res} | {_joint(rep.learned_greedy)} | {oracle} | "
                  f"{'yes' if rep.igm_consistent else 'no'} | {extra} |", flush=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(rows, indent=1, default=list))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
