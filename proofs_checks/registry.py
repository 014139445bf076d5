"""Collects every ``Check`` from the modules of :mod:`seqmarl.proofs_checks`.

Each check module defines a module-level list ``CHECKS``; adding a module adds its rows to ``seqmarl verify``.
"""

from __future__ import annotations

import importlib
import pkgutil

from .base import Check

_SKIP = {"base", "registry"}


def all_checks() -> list[Check]:
    """Every registered check, in module-name order then declaration order; names must be unique."""
    package = importlib.import_module(__package__)
    checks: list[Check] = []
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
        if info.name in _SKIP or info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__package__}.{info.name}")
        checks.extend(getattr(module, "CHECKS", []))
    names = [c.name for c in checks]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise RuntimeError(f"duplicate check names: {duplicates}")
    return checks


def select(names: list[str] | None = None) -> list[Check]:
    """The checks named in ``names`` (all when ``None``); an unknown name raises with the known ones."""
    checks = all_checks()
    if not names:
        return checks
    known = {c.name: c for c in checks}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ValueError(f"unknown check(s) {unknown}; known checks: {sorted(known)}")
    return [known[n] for n in names]
