"""Optional third-party simulators: one error type for "the package of this environment is not installed".

Every adapter of a real benchmark (``mpe/*``, ``vmas/*``, :func:`seqmarl.envs.make_pettingzoo`, ...) is registered
whether or not its package is installed; building one without the package raises :class:`MissingExtraError`, an
``ImportError`` whose message names the pip extra that installs it (``pip install seqmarl[mpe]``). Tests and the
``seqmarl envs`` command catch this type to skip or report such environments instead of failing.
"""

from __future__ import annotations

import importlib
from types import ModuleType

__all__ = ["MissingExtraError", "import_extra"]


class MissingExtraError(ImportError):
    """The Python package an environment needs is not installed.

    Attributes:
        package: the importable module that is missing (e.g. ``"mpe2"``).
        extra: the seqmarl extra that installs it (e.g. ``"mpe"``).
        env: the environment (registry name or adapter) that needed it, for the message.
    """

    def __init__(self, package: str, extra: str, env: str | None = None, detail: str | None = None) -> None:
        self.package = package
        self.extra = extra
        self.env = env
        what = f"environment {env!r} needs" if env else "this environment needs"
        message = f"{what} the package {package!r}, which is not installed: pip install seqmarl[{extra}]"
        if detail:
            message += f" ({detail})"
        super().__init__(message, name=package)

    @property
    def install_hint(self) -> str:
        """The pip command that installs the missing extra."""
        return f"pip install seqmarl[{self.extra}]"


def import_extra(module: str, extra: str, env: str | None = None) -> ModuleType:
    """``importlib.import_module(module)``, raising :class:`MissingExtraError` naming ``extra`` when the module (or
    one of its own dependencies) is not installed. Other import-time errors of the package propagate unchanged."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        missing = exc.name or module
        detail = None if missing.split(".")[0] == module.split(".")[0] else f"its dependency {missing!r} is missing"
        raise MissingExtraError(module.split(".")[0], extra, env, detail) from exc
