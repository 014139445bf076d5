"""seqmarl.proofs_checks — one module per claim; each defines ``CHECKS: list[Check]``.

``seqmarl verify`` walks :func:`registry.all_checks`.
"""

from .base import Check, CheckResult, Profile
from .registry import all_checks, select

__all__ = ["Check", "CheckResult", "Profile", "all_checks", "select"]
