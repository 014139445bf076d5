"""Speed benchmark of the exact theory core.

    python benchmarks/theory_bench.py [--out PATH] [--repeats N]

Measures
  import      seconds to ``import seqmarl.theory`` in a fresh interpreter (median of 5);
  (a) xor20   ``evaluate.expected_return`` on ``games.xor(20)`` (2^20 = 1,048,576 joint actions) with a random
              Factorized policy, including ``policy.probs()`` (target < 1 s);
  (b) adv720  ``multiagent.advantage_subset(game, pi, (i_m,), given=i_{1:m-1}, q=Q)`` -- the Lemma 1 summands
              a sequential update needs -- for a random game with 6 agents x 3 actions x 8 states, for all
              720 orderings and all 6 prefixes (4,320 calls) reusing one precomputed Q (target < 1 s);
  (c) hypo    hypothesis examples per second of the Lemma 1 property (all orderings, all prefixes) on
              ``seqmarl.testing.strategies.games_and_policies()``.
Writes JSON (default ``benchmarks/results/theory_bench.json``) and prints a markdown table (header + row).
Timings are medians over ``--repeats`` runs; the machine is described in the JSON.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import numpy as np

from seqmarl.proofs_checks.identities import lemma1_error
from seqmarl.theory import evaluate as ev
from seqmarl.theory import games
from seqmarl.theory import multiagent as ma
from seqmarl.theory.policies import Factorized

DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "theory_bench.json"


def _median_time(fn: Callable[[], object], repeats: int) -> tuple[float, object]:
    """Median wall seconds of ``fn()`` over ``repeats`` runs, and its last result."""
    seconds, _, out = _median_times(fn, repeats)
    return seconds, out


def _median_times(fn: Callable[[], object], repeats: int) -> tuple[float, float, object]:
    """Median wall and median process-CPU seconds of ``fn()`` (CPU time is the steadier figure on a shared box)."""
    wall, cpu, out = [], [], None
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        out = fn()
        cpu.append(time.process_time() - start_cpu)
        wall.append(time.perf_counter() - start)
    return statistics.median(wall), statistics.median(cpu), out


def bench_import(repeats: int = 5) -> float:
    """Median wall time of ``import seqmarl.theory`` in a fresh interpreter (interpreter start excluded)."""
    code = "import time; t = time.perf_counter(); import seqmarl.theory; print(time.perf_counter() - t)"
    times = [float(subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout) for _ in range(repeats)]
    return statistics.median(times)


def bench_xor20(repeats: int) -> dict:
    rng = np.random.default_rng(0)
    start = time.perf_counter()
    game = games.xor(20)
    build = time.perf_counter() - start
    pi = Factorized([rng.dirichlet(np.ones(2), size=1) for _ in range(20)])
    seconds, cpu_seconds, value = _median_times(lambda: ev.expected_return(game, pi), repeats)
    probs_seconds, _ = _median_time(pi.probs, repeats)
    # closed form: P(first half 0, second half 1) + P(first half 1, second half 0)
    p1 = np.array([t[0, 1] for t in pi.tables])
    exact = float(np.prod(1 - p1[:10]) * np.prod(p1[10:]) + np.prod(p1[:10]) * np.prod(1 - p1[10:]))
    return {
        "joint_actions": game.n_joint_actions,
        "seconds": seconds,
        "cpu_seconds": cpu_seconds,
        "probs_seconds": probs_seconds,
        "game_build_seconds": build,
        "abs_error_vs_closed_form": abs(float(value) - exact),
    }


def bench_adv720(repeats: int, n_agents: int = 6, n_actions: int = 3, n_states: int = 8) -> dict:
    rng = np.random.default_rng(0)
    game = games.random_game(rng, n_agents, n_actions, n_states, 0.9)
    pi = Factorized([rng.dirichlet(np.ones(n_actions), size=n_states) for _ in range(n_agents)])
    q_seconds, q = _median_time(lambda: ev.q_value(game, pi), repeats)
    orders = list(itertools.permutations(range(n_agents)))

    def sweep() -> int:
        calls = 0
        for order in orders:
            for m in range(n_agents):
                ma.advantage_subset(game, pi, order[m : m + 1], given=order[:m], q=q)
                calls += 1
        return calls

    seconds, cpu_seconds, calls = _median_times(sweep, repeats)
    return {
        "n_agents": n_agents,
        "n_actions": n_actions,
        "n_states": n_states,
        "orderings": len(orders),
        "calls": calls,
        "seconds": seconds,
        "cpu_seconds": cpu_seconds,
        "per_ordering_seconds": seconds / len(orders),
        "per_call_seconds": seconds / calls,
        "q_value_seconds": q_seconds,
    }


def bench_hypothesis(max_examples: int = 60) -> dict:
    from hypothesis import HealthCheck, given, settings

    from seqmarl.testing import strategies as sst

    calls = {"n": 0, "worst": 0.0}

    @settings(max_examples=max_examples, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(sst.games_and_policies())
    def lemma1_property(case):  # type: ignore[no-untyped-def]
        game, pi = case
        err = lemma1_error(game, pi)
        calls["n"] += 1
        calls["worst"] = max(calls["worst"], err)
        assert err <= 1e-12

    start = time.perf_counter()
    lemma1_property()
    seconds = time.perf_counter() - start
    return {"examples": calls["n"], "seconds": seconds, "examples_per_second": calls["n"] / seconds, "worst_error": calls["worst"]}


def machine() -> dict:
    return {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"JSON output path (default {DEFAULT_OUT})")
    parser.add_argument("--repeats", type=int, default=5, help="timing repeats; the median is reported (default 5)")
    parser.add_argument("--examples", type=int, default=60, help="hypothesis examples for (c) (default 60)")
    args = parser.parse_args(argv)
    if args.repeats < 1 or args.examples < 1:
        parser.error("--repeats and --examples must be positive")

    result = {
        "import_seqmarl_theory_seconds": bench_import(),
        "xor20_expected_return": bench_xor20(args.repeats),
        "advantage_subset_720_orderings": bench_adv720(args.repeats),
        "hypothesis_lemma1": bench_hypothesis(args.examples),
        "machine": machine(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")

    a, b, c = result["xor20_expected_return"], result["advantage_subset_720_orderings"], result["hypothesis_lemma1"]
    print(
        "| import seqmarl.theory (s) | (a) xor(20) J incl. probs (s) | (b) 720 orderings x 6 prefixes (s) "
        "| (b) CPU (s) | (b) per ordering (ms) | (c) Lemma 1 examples/s |"
    )
    print("|---|---|---|---|---|---|")
    print(
        f"| {result['import_seqmarl_theory_seconds']:.3f} | {a['seconds']:.4f} | {b['seconds']:.3f} | {b['cpu_seconds']:.3f} | "
        f"{1e3 * b['per_ordering_seconds']:.3f} | {c['examples_per_second']:.1f} |"
    )
    print(f"wrote {args.out}", file=sys.stderr)
    return result


if __name__ == "__main__":
    main()
