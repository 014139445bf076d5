"""The ``seqmarl`` command line: ``seqmarl verify``, ``seqmarl train``, ``seqmarl validate``, ``seqmarl sweep``,
``seqmarl report``."""

from __future__ import annotations

import argparse
import sys
from typing import Callable, Sequence

from seqmarl import __version__

# sub-command name -> (help, function adding its arguments, function running it)
_COMMANDS: dict[str, tuple[str, Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int]]] = {}


def command(name: str, help: str, add_arguments: Callable[[argparse.ArgumentParser], None]):
    """Register a sub-command (used by the modules that implement them)."""

    def wrap(run: Callable[[argparse.Namespace], int]):
        _COMMANDS[name] = (help, add_arguments, run)
        return run

    return wrap


def _seed(text: str) -> int:
    """``--seed``: a non-negative integer (the seed of ``numpy.random.default_rng``)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--seed must be a non-negative integer, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"--seed must be a non-negative integer, got {text!r}")
    return value


def _verify_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--only", action="append", metavar="NAME", help="run only this check (repeatable)")
    p.add_argument("--thorough", action="store_true", help="run 12x the cases of every scalable check (>= 10x in total)")
    p.add_argument("--json", metavar="PATH", help="also write the table as JSON to PATH")
    p.add_argument("--seed", type=_seed, default=0,
                   help="seed of the random cases (default 0: every default run is the same run); printed in the "
                   "summary line and the JSON, with the command that reproduces a failure")
    p.add_argument("--list", action="store_true", help="list the check names and exit")
    p.add_argument("--full", action="store_true", help="print every claim and source in full")


@command("verify", "check every theorem of sequential-update MARL exactly and print a table", _verify_args)
def _verify(ns: argparse.Namespace) -> int:
    if ns.list:
        from seqmarl.proofs_checks import all_checks

        for c in all_checks():
            print(f"{c.name:32s} {c.method:14s} {c.source}")
        return 0
    from seqmarl.verify import main as verify_main

    return verify_main(ns.only, ns.thorough, ns.json, seed=ns.seed, full=ns.full)


def _load_optional_commands() -> None:
    """Import the modules that register further sub-commands (train, validate, sweep) if present."""
    import importlib

    for module in ("seqmarl.train", "seqmarl.validate", "seqmarl.envs_cli", "seqmarl.tuned", "seqmarl.sweep",
                   "seqmarl.report"):
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise


def build_parser() -> argparse.ArgumentParser:
    _load_optional_commands()
    parser = argparse.ArgumentParser(
        prog="seqmarl",
        description="Sequential (auto-regressive) policy updates for cooperative MARL: exact oracles, theorem checks, algorithms.",
    )
    parser.add_argument("--version", action="version", version=f"seqmarl {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (help_text, add_args, _) in _COMMANDS.items():
        add_args(sub.add_parser(name, help=help_text, description=help_text))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] in ("train", "validate") and ("--help" in args or "-h" in args):
        algos = [a.split("=", 1)[1] for a in args if a.startswith("algo=")]
        if algos:  # `seqmarl train algo=happo --help`: the algorithm's fields
            from seqmarl.train import _config_main

            return _config_main(argparse.Namespace(algo=algos[-1]))
    ns, extra = parser.parse_known_args(argv)
    if ns.command is None:
        parser.print_help()
        return 0
    ns.overrides = extra
    if extra and ns.command == "verify":
        parser.error(f"unrecognised arguments: {' '.join(extra)}")
    if ns.command in ("train", "validate") and not extra:
        # a bare `seqmarl train` prints its usage instead of starting a default run
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        sub.choices[ns.command].print_help()
        return 2
    try:
        return _COMMANDS[ns.command][2](ns)
    except ValueError as exc:
        if ns.command == "verify" and str(exc).startswith("unknown check"):  # --only with a wrong name
            print(f"error: {exc}", file=sys.stderr)
            return 2
        raise


if __name__ == "__main__":
    sys.exit(main())
