"""``seqmarl verify``: run every registered theorem check and report a table."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Sequence

from rich.console import Console
from rich.table import Table

from seqmarl.proofs_checks import Profile, select
from seqmarl.proofs_checks.base import Check, CheckResult

# --thorough multiplies every case budget by this; exhaustive checks (finite case sets) cannot grow, so the
# scalable ones get 12x, which keeps the total at >= 10x the default profile.
THOROUGH_SCALE = 12


DEFAULT_SEED = 0
"""The seed of the random cases when ``--seed`` is not given: a default run is the same run every time."""


def run_checks(names: Sequence[str] | None = None, thorough: bool = False, seed: int = DEFAULT_SEED,
               console: Console | None = None) -> list[tuple[Check, CheckResult]]:
    """Execute the selected checks under the default (or ``--thorough``, 10x cases) profile.

    Every check draws its random cases from ``numpy.random.default_rng(seed)`` (``Profile.seed``), so a run is
    reproduced exactly by its seed; the seed is printed in the summary line and stored in the JSON."""
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    profile = Profile(scale=THOROUGH_SCALE if thorough else 1, seed=seed)
    checks = select(list(names) if names else None)
    results = []
    console = console or Console(stderr=True)
    with console.status("running checks") as status:
        for check in checks:
            status.update(f"running {check.name}")
            results.append((check, check.execute(profile)))
    return results


def _fmt_error(x: float) -> str:
    if math.isnan(x):
        return "n/a"
    return "0" if x == 0 else f"{x:.1e}"


def _short(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def render(results: list[tuple[Check, CheckResult]], full: bool = False) -> Table:
    """The report table; claims are shortened to one line unless ``full`` (JSON always has them whole)."""
    table = Table(title="seqmarl verify — theorem checks", show_lines=full)
    table.add_column("check", no_wrap=True)
    table.add_column("claim", overflow="fold", ratio=3)
    table.add_column("source", overflow="fold", ratio=1)
    for col in ("method", "cases", "worst error", "time (s)", "verdict"):
        table.add_column(col, no_wrap=True)
    for check, res in results:
        verdict = "[green]PASS[/green]" if res.passed else "[red]FAIL[/red]"
        claim = check.claim if full else _short(check.claim, 90)
        if not res.passed and res.detail:
            claim = f"{claim}\n[red]{res.detail}[/red]"
        table.add_row(check.name, claim, _short(check.source, 60) if not full else check.source, check.method,
                      str(res.cases), _fmt_error(res.worst_error), f"{res.seconds:.2f}", verdict)
    return table


def to_json(results: list[tuple[Check, CheckResult]], seed: int = 0, thorough: bool = False) -> list[dict]:
    """One record per check; ``seed`` and ``profile`` say how to reproduce it (``--seed``, ``--thorough``)."""
    return [
        {
            "name": c.name,
            "claim": c.claim,
            "source": c.source,
            "method": c.method,
            "cases": r.cases,
            "worst_error": None if math.isnan(r.worst_error) else r.worst_error,
            "seconds": r.seconds,
            "passed": r.passed,
            "detail": r.detail,
            "seed": seed,
            "profile": "thorough" if thorough else "default",
        }
        for c, r in results
    ]


def summary(results: list[tuple[Check, CheckResult]], seed: int = 0, thorough: bool = False) -> str:
    """The closing line: counts, time and the seed; on failure also the command that reruns the failed rows."""
    failed = [c.name for c, r in results if not r.passed]
    total = sum(r.seconds for _, r in results)
    profile = ", --thorough" if thorough else ""
    line = f"{len(results) - len(failed)}/{len(results)} checks passed in {total:.1f} s (seed {seed}{profile})"
    if failed:
        rerun = f"seqmarl verify --seed {seed}" + (" --thorough" if thorough else "") + "".join(f" --only {n}" for n in failed)
        line += f"; failed: {', '.join(failed)}; reproduce with: {rerun}"
    return line


def main(names: Sequence[str] | None, thorough: bool, json_path: str | None, seed: int = DEFAULT_SEED, full: bool = False) -> int:
    """Run, print the table, optionally write JSON; return 1 if any check failed (or none ran)."""
    console = Console()
    if not console.is_terminal:
        console = Console(width=200)
    results = run_checks(names, thorough=thorough, seed=seed)
    console.print(render(results, full=full))
    failed = [c.name for c, r in results if not r.passed]
    console.print(summary(results, seed=seed, thorough=thorough), soft_wrap=True)
    if json_path:
        Path(json_path).parent.mkdir(parents=True, exist_ok=True)
        Path(json_path).write_text(json.dumps(to_json(results, seed=seed, thorough=thorough), indent=2))
    return 1 if failed or not results else 0
