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


def run_checks(names: Sequence[str] | None = None, thorough: bool = False, seed: int = 0, console: Console | None = None) -> list[tuple[Check, CheckResult]]:
    """Execute the selected checks under the default (or ``--thorough``, 10x cases) profile."""
    profile = Profile(scale=10 if thorough else 1, seed=seed)
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


def render(results: list[tuple[Check, CheckResult]]) -> Table:
    table = Table(title="seqmarl verify — theorem checks", show_lines=False)
    for col in ("claim", "source", "method", "cases", "worst error", "time (s)", "verdict"):
        table.add_column(col, overflow="fold")
    for check, res in results:
        verdict = "[green]PASS[/green]" if res.passed else "[red]FAIL[/red]"
        claim = check.claim if res.passed or not res.detail else f"{check.claim}\n[red]{res.detail}[/red]"
        table.add_row(claim, check.source, check.method, str(res.cases), _fmt_error(res.worst_error), f"{res.seconds:.2f}", verdict)
    return table


def to_json(results: list[tuple[Check, CheckResult]]) -> list[dict]:
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
        }
        for c, r in results
    ]


def main(names: Sequence[str] | None, thorough: bool, json_path: str | None, seed: int = 0) -> int:
    """Run, print the table, optionally write JSON; return 1 if any check failed."""
    console = Console()
    results = run_checks(names, thorough=thorough, seed=seed)
    console.print(render(results))
    failed = [c.name for c, r in results if not r.passed]
    total = sum(r.seconds for _, r in results)
    console.print(f"{len(results) - len(failed)}/{len(results)} checks passed in {total:.1f} s" + (f"; failed: {', '.join(failed)}" if failed else ""))
    if json_path:
        Path(json_path).parent.mkdir(parents=True, exist_ok=True)
        Path(json_path).write_text(json.dumps(to_json(results), indent=2))
    return 1 if failed else 0
