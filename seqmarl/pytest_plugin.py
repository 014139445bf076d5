"""pytest plugin (entry point ``pytest11: seqmarl``): the ``seqmarl verify`` theorem checks as test items.

``pytest --seqmarl`` adds one item per registered check (``seqmarl.proofs_checks``) to whatever else the run
collects, so a lab's CI runs the theorem checks next to its own tests:

* node id = the check's name (``lemma1_decomposition``); select with ``-k lemma1`` or by marker:
  ``seqmarl`` (every check) and ``seqmarl_<method>`` with method ``exact``, ``symbolic``, ``convex``,
  ``property`` or ``counterexample`` (``-m seqmarl_exact``, ``-m "not seqmarl"``);
* ``--seqmarl-seed N`` and ``--seqmarl-thorough`` are ``seqmarl verify --seed N`` and ``--thorough``: each check
  runs under ``Profile(scale=12 if thorough else 1, seed=N)`` exactly as ``seqmarl verify`` runs it;
* a failing check reports its own detail (the worst or shrunk case it found) and the command that reproduces
  it, not a traceback of the harness;
* the items are built in registry order on every process, so ``pytest-xdist`` (``-n 2``) distributes them.

Without ``--seqmarl`` the plugin only registers its options and markers: it imports nothing heavy (no torch,
cvxpy, hypothesis nor the checks), so unrelated test suites pay nothing for it.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:  # imported for annotations only; at run time they load only with --seqmarl
    from seqmarl.proofs_checks.base import Check, CheckResult, Profile

__all__ = ["SeqmarlChecks", "SeqmarlCheckItem", "CheckFailed", "METHOD_MARKERS"]

METHOD_MARKERS = {m: f"seqmarl_{m}" for m in ("exact", "symbolic", "convex", "property", "counterexample")}
"""The marker of each check method (kept in step with ``seqmarl.proofs_checks.base.METHODS`` by a test)."""

_PROFILE_KEY = pytest.StashKey["tuple[Any, int, bool]"]()


def _seed(text: str) -> int:
    """argparse type of ``--seqmarl-seed``: a non-negative integer, like ``seqmarl verify --seed``."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a non-negative integer, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be a non-negative integer, got {value}")
    return value


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("seqmarl", "seqmarl theorem checks")
    group.addoption("--seqmarl", action="store_true", default=False,
                    help="also run every `seqmarl verify` theorem check as a test item")
    group.addoption("--seqmarl-seed", type=_seed, default=None, metavar="N",
                    help="seed of the checks' random cases, as `seqmarl verify --seed N` (default 0)")
    group.addoption("--seqmarl-thorough", action="store_true", default=False,
                    help="12x the case budget of every scalable check, as `seqmarl verify --thorough`")


def _active(config: pytest.Config) -> bool:
    return bool(config.getoption("seqmarl", default=False))


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "seqmarl: a seqmarl theorem check (collected with --seqmarl)")
    for method, marker in METHOD_MARKERS.items():
        config.addinivalue_line("markers", f"{marker}: a seqmarl theorem check of method '{method}'")
    # `pytest --hypothesis-profile seqmarl-...`: register the profiles before hypothesis' plugin loads the profile
    profile = config.getoption("hypothesis_profile", default=None)
    if isinstance(profile, str) and profile.startswith("seqmarl-"):
        from seqmarl.hypothesis_profiles import register_profiles

        register_profiles()
    seed, thorough = config.getoption("seqmarl_seed", default=None), config.getoption("seqmarl_thorough", default=False)
    if not _active(config):
        if seed is not None or thorough:
            raise pytest.UsageError("--seqmarl-seed/--seqmarl-thorough choose how the theorem checks run; "
                                    "add --seqmarl to run them")
        return
    from seqmarl.proofs_checks.base import Profile
    from seqmarl.verify import DEFAULT_SEED, THOROUGH_SCALE

    seed = DEFAULT_SEED if seed is None else seed
    config.stash[_PROFILE_KEY] = (Profile(scale=THOROUGH_SCALE if thorough else 1, seed=seed), seed, thorough)


def pytest_report_header(config: pytest.Config) -> str | None:
    if not _active(config):
        return None
    _, seed, thorough = config.stash[_PROFILE_KEY]
    return f"seqmarl: theorem checks collected (seed {seed}, profile {'thorough' if thorough else 'default'})"


@pytest.hookimpl(tryfirst=True)  # before -k / -m deselection, which is itself a modifyitems hook
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    if not _active(config):
        return
    # Collected like any file's tests: the collect report goes through pytest_collectreport, so the checks are
    # counted ("N items"), listed by --collect-only, and an import error of the registry is a collection error.
    collector = SeqmarlChecks.from_parent(session, name="seqmarl", nodeid="seqmarl")
    report = collector.ihook.pytest_make_collect_report(collector=collector)
    session.ihook.pytest_collectreport(report=report)
    items.extend(x for x in report.result if isinstance(x, pytest.Item))


class SeqmarlChecks(pytest.Collector):
    """The collector of the theorem checks: one :class:`SeqmarlCheckItem` per registered check, in registry order
    (module name, then declaration), the same on every xdist worker."""

    def collect(self) -> list[pytest.Item]:
        from seqmarl.proofs_checks import all_checks

        return [SeqmarlCheckItem.from_check(self, check) for check in all_checks()]


class CheckFailed(Exception):
    """A theorem check returned ``passed=False``; its report is the failure pytest prints."""

    def __init__(self, check: "Check", result: "CheckResult", seed: int, thorough: bool) -> None:
        super().__init__(check.name)
        self.check, self.result, self.seed, self.thorough = check, result, seed, thorough

    def report(self) -> str:
        c, r = self.check, self.result
        flags = f"--seed {self.seed}" + (" --thorough" if self.thorough else "")
        pytest_flags = f"--seqmarl --seqmarl-seed {self.seed}" + (" --seqmarl-thorough" if self.thorough else "")
        worst = "n/a" if r.worst_error != r.worst_error else f"{r.worst_error:.3g}"  # NaN: a crash, no error
        return "\n".join([
            f"seqmarl theorem check {c.name!r} FAILED ({c.method}; {r.cases} cases, worst error {worst})",
            f"claim:  {c.claim}",
            f"source: {c.source}",
            "detail:",
            *(f"  {line}" for line in (r.detail or "(the check gave no detail)").splitlines()),
            f"reproduce: seqmarl verify {flags} --only {c.name}",
            f"       or: pytest {pytest_flags} -k {c.name}",
        ])


def _module_path(check: "Check", fallback: Path) -> Path:
    """The file that defines the check's runner (reported as the item's location)."""
    import sys

    module = sys.modules.get(getattr(check.run, "__module__", "") or "")
    file = getattr(module, "__file__", None)
    return Path(file) if file else fallback


class SeqmarlCheckItem(pytest.Item):
    """One theorem check; ``runtest`` executes it under the session's profile and fails with its detail."""

    check: "Check"

    @classmethod
    def from_check(cls, parent: pytest.Collector, check: "Check") -> "SeqmarlCheckItem":
        item = cls.from_parent(parent, name=check.name, nodeid=check.name, path=_module_path(check, parent.path))
        item.check = check
        item.add_marker("seqmarl")
        item.add_marker(METHOD_MARKERS[check.method])
        return item

    def runtest(self) -> None:
        profile, seed, thorough = self.config.stash[_PROFILE_KEY]
        result = self.check.execute(profile)
        worst = None if result.worst_error != result.worst_error else result.worst_error
        self.user_properties.extend([("method", self.check.method), ("cases", result.cases),
                                     ("worst_error", worst), ("seed", seed),
                                     ("profile", "thorough" if thorough else "default")])
        if not result.passed:
            raise CheckFailed(self.check, result, seed, thorough)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        if isinstance(excinfo.value, CheckFailed):
            return excinfo.value.report()
        return super().repr_failure(excinfo, style=style)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, None, f"seqmarl check {self.name} [{self.check.method}]"
