"""The ``Check`` record every theorem check is, and the profile that sets its case budget."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

METHODS = ("exact", "symbolic", "convex", "property", "counterexample")


@dataclass(frozen=True)
class Profile:
    """How hard a check should try: ``scale`` multiplies every case budget (1 = default, 10 = ``--thorough``)."""

    scale: int = 1
    seed: int = 0

    def cases(self, default: int) -> int:
        """The number of cases to try for a check whose default budget is ``default``."""
        return max(1, int(default) * int(self.scale))


@dataclass
class CheckResult:
    """Outcome of one check: cases tried, the worst error seen (0 for exact/symbolic successes), verdict."""

    cases: int
    worst_error: float
    passed: bool
    detail: str = ""
    seconds: float = 0.0


@dataclass(frozen=True)
class Check:
    """One claim of the literature turned into a runnable, failing-if-wrong check.

    ``name``: short unique id (``seqmarl verify --only NAME``); ``claim``: the statement;
    ``source``: provenance tag from theory.md (e.g. ``"ICLR22 Lemma 1 (theory.md §1.6)"``);
    ``method``: one of ``exact``, ``symbolic``, ``convex``, ``property``, ``counterexample``;
    ``run``: ``Profile -> CheckResult``.
    """

    name: str
    claim: str
    source: str
    method: str
    run: Callable[[Profile], CheckResult] = field(compare=False)

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {self.method!r}")

    def execute(self, profile: Profile | None = None) -> CheckResult:
        """Run the check, timing it; an exception is a failed check with the error as detail."""
        profile = profile or Profile()
        start = time.perf_counter()
        try:
            result = self.run(profile)
        except Exception as exc:  # a crash is a failure to report, not to hide
            result = CheckResult(cases=0, worst_error=float("nan"), passed=False, detail=f"{type(exc).__name__}: {exc}")
        result.seconds = time.perf_counter() - start
        return result
