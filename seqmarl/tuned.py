"""Tuned configurations with provenance: ``seqmarl train config=<name> [key=value ...]``.

A tuned config is a YAML file shipped in ``seqmarl/configs/`` (package data, so an installed wheel finds it) or
any file a user passes as ``config=path/to/file.yaml``. Its layout::

    description: "HAPPO on MaMuJoCo HalfCheetah 2x3, HARL's tuned HAPPO values"
    sources:                        # alias -> repository@commit and file
      tuned: "PKU-MARL/HARL@d539bad2 tuned_configs/mamujoco/HalfCheetah-v2-2x3/happo/config.json"
    algo: {value: happo, source: "tuned: main_args.algo"}
    env: {value: mamujoco/HalfCheetah-2x3, source: "tuned: env_args.scenario ..."}
    run:         {num_envs: {value: 20, source: "tuned: train.n_rollout_threads"}, ...}   # RunConfig fields
    env_kwargs:  {obs: {value: state+id, source: "..."}, ...}                            # env factory arguments
    algo_kwargs: {lr: {value: 0.0005, source: "tuned: model.lr"}, ...}                    # algorithm config fields
    notes: ["free text"]                                                                   # optional

Every value is a mapping ``{value: ..., source: "..."}`` and its ``source`` must be either
``"<alias>: <where in that file>"`` with ``<alias>`` declared under ``sources``, or ``"chosen here: <why>"``
(a value no source sets for this engine). A key without a source, an unknown alias, a key that is not a field
of :class:`~seqmarl.config.RunConfig`, of the env factory or of the algorithm's config dataclass, an unknown
env or algorithm, or a value of the wrong type raises :class:`TunedConfigError` naming the file and the key.

On the command line the tuned values come first and every ``key=value`` given next to ``config=`` wins
(``seqmarl train config=happo-halfcheetah-2x3 total_steps=1000000 algo.lr=3e-4``).
"""

from __future__ import annotations

import argparse
import inspect
import re
import sys
import typing
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Sequence

import yaml

from seqmarl.cli import command
from seqmarl.config import ConfigError, RunConfig, coerce, parse_overrides

__all__ = ["CONFIG_DIR", "TunedConfig", "TunedConfigError", "known_configs", "load", "run_config", "split_config_arg"]

CONFIG_DIR = Path(__file__).resolve().parent / "configs"

# RunConfig fields a tuned config may set under ``run:`` (algo/env are top-level; the rest are per-run choices)
RUN_KEYS = tuple(f.name for f in fields(RunConfig)
                 if f.name not in ("algo", "env", "env_kwargs", "algo_kwargs", "run_dir", "resume", "preset"))
_TOP_KEYS = {"description", "sources", "algo", "env", "run", "env_kwargs", "algo_kwargs", "notes"}
_REQUIRED = ("description", "sources", "algo", "env")
_ALIAS = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
_CHOSEN = "chosen here:"


class TunedConfigError(ConfigError):
    """A tuned config file is missing, malformed, lacks provenance or names an unknown key."""


@dataclass(frozen=True)
class TunedConfig:
    """A validated tuned config. ``run``/``env_kwargs``/``algo_kwargs`` hold typed values; ``provenance`` maps
    every key (``algo``, ``env``, ``run.num_envs``, ``env.obs``, ``algo.lr``, ...) to its source with the alias
    expanded (``"PKU-MARL/HARL@d539bad2 tuned_configs/... : model.lr"``)."""

    name: str
    path: Path
    description: str
    algo: str
    env: str
    run: dict[str, Any] = field(default_factory=dict)
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    algo_kwargs: dict[str, Any] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)
    provenance: dict[str, str] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    def overrides(self) -> list[str]:
        """The config as ``key=value`` strings of :func:`seqmarl.config.parse_overrides` (for display)."""
        out = [f"algo={self.algo}", f"env={self.env}"]
        out += [f"{k}={_text(v)}" for k, v in self.run.items()]
        out += [f"env.{k}={_text(v)}" for k, v in self.env_kwargs.items()]
        out += [f"algo.{k}={_text(v)}" for k, v in self.algo_kwargs.items()]
        return out


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (tuple, list)):
        return ",".join(map(str, value))
    return "none" if value is None else str(value)


def known_configs() -> list[str]:
    """Names of the shipped tuned configs (``seqmarl/configs/<name>.yaml``), sorted."""
    return sorted(p.stem for p in CONFIG_DIR.glob("*.yaml"))


def _locate(name: str) -> Path:
    if not isinstance(name, str) or not name.strip():
        raise TunedConfigError(f"config= needs a tuned config name; known: {known_configs()}")
    name = name.strip()
    if name in known_configs():
        return CONFIG_DIR / f"{name}.yaml"
    path = Path(name)
    if name.endswith((".yaml", ".yml")):
        if path.is_file():
            return path
        raise TunedConfigError(f"config={name}: no such file")
    raise TunedConfigError(f"unknown tuned config {name!r}; known configs: {', '.join(known_configs())} "
                           "(list them with `seqmarl configs`; a path to your own .yaml file also works)")


def _entry(path: Path, key: str, raw: Any, aliases: dict[str, str]) -> tuple[Any, str]:
    """``(value, expanded source)`` of one ``{value: ..., source: ...}`` entry; raises naming file and key."""
    where = f"{path}: {key}"
    if not isinstance(raw, dict):
        raise TunedConfigError(f"{where} must be a mapping {{value: ..., source: ...}} (every value needs its "
                               f"provenance), got {raw!r}")
    extra = sorted(set(raw) - {"value", "source"})
    if extra:
        raise TunedConfigError(f"{where} has unknown fields {extra}; allowed: value, source")
    if "value" not in raw:
        raise TunedConfigError(f"{where} has no value")
    source = raw.get("source")
    if not isinstance(source, str) or not source.strip():
        raise TunedConfigError(f"{where} has no provenance: add source: '<alias>: <file key>' (aliases: "
                               f"{sorted(aliases)}) or source: 'chosen here: <why>'")
    source = source.strip()
    if source.lower().startswith(_CHOSEN):
        if not source[len(_CHOSEN):].strip():
            raise TunedConfigError(f"{where}: 'chosen here:' needs the reason after it")
        return raw["value"], source
    alias, sep, rest = source.partition(":")
    if not sep or alias.strip() not in aliases or not rest.strip():
        raise TunedConfigError(f"{where}: source {source!r} must start with a declared alias and name the key in "
                               f"that file ('<alias>: <file key>', aliases: {sorted(aliases)}) or be "
                               "'chosen here: <why>'")
    return raw["value"], f"{aliases[alias.strip()]} : {rest.strip()}"


def _typed(path: Path, key: str, value: Any, annotation: Any, default: Any = inspect.Parameter.empty) -> Any:
    """``value`` (from YAML) checked and converted to ``annotation`` through :func:`seqmarl.config.coerce`."""
    if isinstance(value, dict):
        if typing.get_origin(annotation) is dict or annotation is dict or "dict" in str(annotation):
            return dict(value)
        raise TunedConfigError(f"{path}: {key} expects a value, got a mapping {value!r}")
    if value is None:
        text = "none"
    elif isinstance(value, (list, tuple)):
        if not value:
            raise TunedConfigError(f"{path}: {key} expects a non-empty list")
        text = ",".join(_text(v) for v in value)
    else:
        text = _text(value)
    try:
        return coerce(text, annotation, key, default)
    except ConfigError as exc:
        raise TunedConfigError(f"{path}: {exc}") from None


def load(name: str) -> TunedConfig:
    """Load and validate the tuned config ``name`` (a shipped name or a path to a ``.yaml`` file)."""
    from seqmarl.algos import config_for, known_algorithms
    from seqmarl.algos.configs import field_names
    from seqmarl.envs import registry

    path = _locate(name)
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise TunedConfigError(f"{path} is not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise TunedConfigError(f"{path} must hold a mapping of keys, got {type(data).__name__}")
    unknown = sorted(set(data) - _TOP_KEYS)
    if unknown:
        raise TunedConfigError(f"{path}: unknown top-level keys {unknown}; allowed: {sorted(_TOP_KEYS)}")
    for key in _REQUIRED:
        if key not in data:
            raise TunedConfigError(f"{path}: missing top-level key {key!r}")
    if not isinstance(data["description"], str) or not data["description"].strip():
        raise TunedConfigError(f"{path}: description must be a non-empty string")
    aliases = data["sources"]
    if not isinstance(aliases, dict) or not aliases:
        raise TunedConfigError(f"{path}: sources must map aliases to 'owner/repo@commit path' references")
    for alias, ref in aliases.items():
        if not isinstance(alias, str) or not _ALIAS.match(alias) or alias.lower() == "chosen here":
            raise TunedConfigError(f"{path}: sources: alias {alias!r} must be a plain word (letters, digits, _)")
        if not isinstance(ref, str) or not ref.strip():
            raise TunedConfigError(f"{path}: sources.{alias} must name a repository/paper and file")
    notes = data.get("notes") or []
    if not isinstance(notes, list) or not all(isinstance(n, str) for n in notes):
        raise TunedConfigError(f"{path}: notes must be a list of strings")

    provenance: dict[str, str] = {}
    algo, provenance["algo"] = _entry(path, "algo", data["algo"], aliases)
    env, provenance["env"] = _entry(path, "env", data["env"], aliases)
    if algo not in known_algorithms():
        raise TunedConfigError(f"{path}: algo: unknown algorithm {algo!r}; known algorithms: {known_algorithms()}")
    if env not in registry.known_envs():
        raise TunedConfigError(f"{path}: env: unknown environment {env!r}; see `seqmarl envs`")

    sections: dict[str, dict[str, Any]] = {}
    for section in ("run", "env_kwargs", "algo_kwargs"):
        block = data.get(section) or {}
        if not isinstance(block, dict):
            raise TunedConfigError(f"{path}: {section} must be a mapping of keys, got {type(block).__name__}")
        sections[section] = block

    run_hints = typing.get_type_hints(RunConfig)
    run: dict[str, Any] = {}
    for key, raw in sections["run"].items():
        if key not in RUN_KEYS:
            raise TunedConfigError(f"{path}: run.{key} is not a run setting; allowed: {list(RUN_KEYS)} "
                                   "(algo and env are top-level keys)")
        value, provenance[f"run.{key}"] = _entry(path, f"run.{key}", raw, aliases)
        run[key] = _typed(path, f"run.{key}", value, run_hints[key])
    try:
        RunConfig(algo=algo, env=env, **run).validate()
    except (ConfigError, TypeError) as exc:
        raise TunedConfigError(f"{path}: run: {exc}") from None

    factory = registry._lookup(env)
    params = registry._parameters(factory) or {}
    try:
        env_hints = typing.get_type_hints(factory)
    except Exception:  # unresolvable annotations: the defaults' types are used
        env_hints = {}
    allowed_env = sorted(set(params) - {"num_envs", "device", "seed"})
    env_kwargs: dict[str, Any] = {}
    for key, raw in sections["env_kwargs"].items():
        if key not in allowed_env:
            raise TunedConfigError(f"{path}: env_kwargs.{key} is not an argument of {env}; allowed: {allowed_env}")
        value, provenance[f"env.{key}"] = _entry(path, f"env_kwargs.{key}", raw, aliases)
        env_kwargs[key] = _typed(path, f"env_kwargs.{key}", value, env_hints.get(key, inspect.Parameter.empty),
                                 params[key].default)

    algo_cls = config_for(algo)
    algo_hints = typing.get_type_hints(algo_cls)
    allowed_algo = field_names(algo_cls)
    algo_kwargs: dict[str, Any] = {}
    for key, raw in sections["algo_kwargs"].items():
        if key not in allowed_algo:
            raise TunedConfigError(f"{path}: algo_kwargs.{key} is not a field of {algo_cls.__name__} ({algo}); "
                                   f"allowed: {allowed_algo}")
        value, provenance[f"algo.{key}"] = _entry(path, f"algo_kwargs.{key}", raw, aliases)
        algo_kwargs[key] = _typed(path, f"algo_kwargs.{key}", value, algo_hints[key])
    cited = {v.partition(":")[0].strip() for v in _raw_sources(data).values()}
    unused = sorted(set(aliases) - cited)
    if unused:
        raise TunedConfigError(f"{path}: sources {unused} are declared but no value cites them")
    try:
        algo_cls(**algo_kwargs)
    except (TypeError, ValueError) as exc:
        raise TunedConfigError(f"{path}: algo_kwargs: {exc}") from None

    return TunedConfig(name=path.stem, path=path, description=data["description"].strip(), algo=algo, env=env, run=run,
                       env_kwargs=env_kwargs, algo_kwargs=algo_kwargs, sources=dict(aliases),
                       provenance=provenance, notes=tuple(notes))


def _raw_sources(data: dict) -> dict[str, str]:
    """``key -> source text`` of every value entry of a parsed file (entries already checked by :func:`_entry`)."""
    out = {"algo": data["algo"].get("source", ""), "env": data["env"].get("source", "")}
    for section in ("run", "env_kwargs", "algo_kwargs"):
        for key, entry in (data.get(section) or {}).items():
            if isinstance(entry, dict) and isinstance(entry.get("source"), str):
                out[f"{section}.{key}"] = entry["source"]
    return out


def split_config_arg(args: Sequence[str]) -> tuple[str | None, list[str]]:
    """``(name, the other arguments)`` of a ``seqmarl train`` argument list with at most one ``config=NAME``."""
    names = [a.split("=", 1)[1] for a in args if isinstance(a, str) and a.strip().startswith("config=")]
    rest = [a for a in args if not (isinstance(a, str) and a.strip().startswith("config="))]
    if len(names) > 1:
        raise TunedConfigError(f"config= given {len(names)} times ({', '.join(names)}); give one tuned config")
    return (names[0].strip() if names else None), rest


def run_config(name: str, overrides: Sequence[str] = ()) -> RunConfig:
    """The :class:`RunConfig` of tuned config ``name`` with the ``key=value`` ``overrides`` on top (they win).

    ``algo=``/``env=`` overrides replace the config's algorithm/environment (its ``algo.*``/``env.*`` values are
    kept and checked against the new ones by :func:`seqmarl.config.resolve`)."""
    tuned = load(name)
    cfg = parse_overrides([f"algo={tuned.algo}", f"env={tuned.env}", *overrides])
    given = set(cfg.explicit)
    for key, value in tuned.run.items():
        if key not in given:
            setattr(cfg, key, value)
    cfg.validate()
    cfg.env_kwargs = {**tuned.env_kwargs, **cfg.env_kwargs}  # typed tuned values; command-line strings win
    cfg.algo_kwargs = {**tuned.algo_kwargs, **cfg.algo_kwargs}
    cfg.explicit = given | set(tuned.run) | {f"env.{k}" for k in tuned.env_kwargs} | {f"algo.{k}" for k in tuned.algo_kwargs}
    cfg.tuned = tuned  # type: ignore[attr-defined]  # not a RunConfig field: not saved in config.yaml
    return cfg


def parse_train_args(args: Sequence[str]) -> RunConfig:
    """``seqmarl train`` arguments to a :class:`RunConfig`: with ``config=NAME`` through :func:`run_config`,
    otherwise :func:`seqmarl.config.parse_overrides` alone."""
    name, rest = split_config_arg(args)
    return parse_overrides(rest) if name is None else run_config(name, rest)


def run_with_config(args: Sequence[str], run: Any) -> Any:
    """``run(parse_train_args(args))`` (``seqmarl.train.run``); with ``config=NAME`` the tuned file is copied
    into the run directory as ``tuned_config.yaml`` next to the resolved ``config.yaml``."""
    cfg = parse_train_args(args)
    trainer, history = run(cfg)
    source = getattr(cfg, "tuned", None)
    if source is not None and getattr(trainer, "run_dir", None) is not None:
        import shutil

        shutil.copyfile(source.path, Path(trainer.run_dir) / "tuned_config.yaml")
    return trainer, history


# ------------------------------------------------------------------------------------------------- listing
def table_rows() -> list[tuple[str, str, str, str]]:
    """``(name, algo, env, description)`` of every shipped config."""
    rows = []
    for name in known_configs():
        t = load(name)
        rows.append((name, t.algo, t.env, t.description))
    return rows


def print_list(file: Any = None) -> None:
    file = file or sys.stdout
    rows = table_rows()
    width = max(len(r[0]) for r in rows)
    print("tuned configs (seqmarl train config=NAME [key=value ...]; seqmarl configs NAME shows every value and "
          "its source):", file=file)
    for name, algo, env, desc in rows:
        print(f"  {name:{width}s}  {algo:6s}  {env:26s}  {desc}", file=file)


def print_config(tuned: TunedConfig, file: Any = None) -> None:
    file = file or sys.stdout
    print(f"{tuned.name}: {tuned.description}\n  file: {tuned.path}", file=file)
    values = {"algo": tuned.algo, "env": tuned.env, **{f"run.{k}": v for k, v in tuned.run.items()},
              **{f"env.{k}": v for k, v in tuned.env_kwargs.items()},
              **{f"algo.{k}": v for k, v in tuned.algo_kwargs.items()}}
    width = max(len(k) for k in values)
    for key, value in values.items():
        print(f"  {key:{width}s} = {_text(value):14s}  {tuned.provenance[key]}", file=file)
    for note in tuned.notes:
        print(f"  note: {note}", file=file)


def _configs_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", nargs="?", help="a tuned config: print every value with its source")


@command("configs", "list the tuned configs (values with provenance): seqmarl configs [NAME]", _configs_args)
def _configs_main(ns: argparse.Namespace) -> int:
    try:
        if ns.name:
            print_config(load(ns.name))
        else:
            print_list()
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0
