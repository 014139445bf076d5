"""Typed run configuration and ``key=value`` overrides (no ``eval``; every value parsed by its declared type).

Grammar: ``algo=NAME env=NAME seed=0 total_steps=... [preset=harl] env.KEY=VALUE algo.KEY=VALUE``. Top-level keys are the
fields of :class:`RunConfig`; ``env.*`` keys are the keyword arguments of the environment factory;
``algo.*`` keys are the fields of the algorithm's config dataclass. A bad key or value raises ``ConfigError``
naming it and the allowed keys / expected type.

``preset=harl`` starts the algorithm's config from PKU-MARL/HARL's defaults
(:data:`seqmarl.algos.configs.HARL_PRESETS`, every value with its HARL source) and sets ``num_envs=20`` and
``rollout_length=200`` (HARL ``n_rollout_threads`` / ``episode_length``) unless those are given; explicit
``algo.*`` and top-level keys always win. docs/harl_differences.md lists what still differs.
"""

from __future__ import annotations

import inspect
import math
import types
import typing
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Sequence

import yaml


class ConfigError(ValueError):
    """A configuration key or value is not valid."""


@dataclass
class RunConfig:
    """What ``seqmarl train`` / ``seqmarl validate`` run.

    algo: algorithm name (``seqmarl.algos.known_algorithms()``).
    env: environment name (``seqmarl.envs.known_envs()``).
    seed: seed of networks, sampling and the environment.
    device: torch device (``cpu``, ``cuda``, ``cuda:1``).
    num_envs: parallel environments.
    total_steps, rollout_length, eval_interval, eval_episodes, checkpoint_interval, log_interval: the trainer loop;
        ``rollout_length=None`` (default) uses the env's episode limit capped at 200 (HARL's episode_length),
        i.e. 1 for one-shot matrix games and 30 for the bridge.
    run_dir: output folder (default ``runs/<algo>-<env>-seed<seed>``).
    resume: a run folder (or checkpoint file) to continue from.
    progress: show a progress bar.
    preset: ``None`` (the algorithm's own defaults) or ``harl`` (HARL's defaults; module docstring).
    update_threads: torch threads during the update (``None``: the process's count; see ``TrainerConfig``).
    """

    algo: str = "happo"
    env: str = "matrix/xor"
    seed: int = 0
    device: str = "cpu"
    num_envs: int = 64
    total_steps: int = 20_000
    rollout_length: int | None = None
    eval_interval: int = 0
    eval_episodes: int = 32
    checkpoint_interval: int = 10
    log_interval: int = 1
    run_dir: str | None = None
    resume: str | None = None
    progress: bool = True
    tensorboard: bool = True
    preset: str | None = None
    update_threads: int | None = None
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    algo_kwargs: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.explicit: set[str] = set()  # keys given on the command line (not a field: not saved)

    def validate(self) -> None:
        """Check the top-level values; raise :class:`ConfigError` naming the key and what was expected."""
        for name in ("seed", "num_envs", "total_steps", "eval_interval", "eval_episodes", "checkpoint_interval",
                     "log_interval", "rollout_length", "update_threads"):
            value = getattr(self, name)
            if name in ("rollout_length", "update_threads") and value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int):
                raise ConfigError(f"{name} must be an integer, got {value!r}")
            minimum = 0 if name in ("seed", "eval_interval") else 1
            if value < minimum:
                extra = " (none/null: the env's episode limit capped at 200)" if name == "rollout_length" else ""
                extra = " (0 disables evaluation)" if name == "eval_interval" else extra
                extra = " (none/null: the process's thread count)" if name == "update_threads" else extra
                raise ConfigError(f"{name} must be an integer >= {minimum}{extra}, got {value}")
        if self.num_envs > MAX_NUM_ENVS:
            raise ConfigError(f"num_envs={self.num_envs} is over the limit of {MAX_NUM_ENVS:,} parallel environments "
                              f"(the env buffers alone would need about {self.num_envs * 64 / 2**30:.0f} GiB)")
        for name in ("algo", "env", "device"):
            if not isinstance(getattr(self, name), str) or not getattr(self, name).strip():
                raise ConfigError(f"{name} must be a non-empty string, got {getattr(self, name)!r}")
        for name in ("run_dir", "resume", "preset"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, str) or not value.strip()):
                raise ConfigError(f"{name} must be a non-empty path/name or omitted, got {value!r}")

    def default_run_dir(self) -> Path:
        return Path("runs") / f"{self.algo}-{self.env.replace('/', '_')}-seed{self.seed}"

    def to_yaml(self) -> str:
        data = asdict(self)
        return yaml.safe_dump(data, sort_keys=False)


MAX_NUM_ENVS = 1 << 24  # 16.7 M parallel environments; more is a typo, not a plan
SAFE_ON_RESUME = ("total_steps", "progress", "tensorboard", "eval_interval", "eval_episodes", "checkpoint_interval",
                  "log_interval", "device", "resume", "run_dir", "update_threads")

_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}


def _strip_optional(annotation: Any) -> tuple[Any, bool]:
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        optional = len(args) != len(typing.get_args(annotation))
        if len(args) == 1:
            return args[0], optional
        return annotation, optional
    return annotation, False


def coerce(raw: str, annotation: Any, name: str, default: Any = MISSING) -> Any:
    """Parse the string ``raw`` as ``annotation`` (int, float, bool, str, tuple[int, ...], Optional, unions of those).

    Without an annotation the default value's type is used; ``none``/``null`` gives None for optional fields."""
    if isinstance(annotation, str):
        annotation = {"int": int, "float": float, "bool": bool, "str": str}.get(annotation, Any)
    if annotation in (inspect.Parameter.empty, Any, None):
        if default is MISSING or default is None or default is inspect.Parameter.empty:
            annotation = str
        else:
            annotation = type(default)
    annotation, optional = _strip_optional(annotation)
    text = raw.strip()
    if optional and text.lower() in ("none", "null"):
        return None
    origin = typing.get_origin(annotation)
    try:
        if annotation is bool:
            low = text.lower()
            if low in _TRUE:
                return True
            if low in _FALSE:
                return False
            raise ValueError
        if annotation is int:
            return int(text)
        if annotation is float:
            value = float(text)
            if not math.isfinite(value):
                raise ConfigError(f"{name} must be a finite number, got {raw!r}")
            return value
        if annotation is str:
            if not text:
                raise ConfigError(f"{name} must not be empty")
            return text
        if origin is tuple or annotation is tuple:
            args = typing.get_args(annotation)
            inner = args[0] if args else str
            body = text.strip("()[]").strip()
            if not body:
                raise ConfigError(f"{name} expects a comma-separated list such as 64,64, got an empty value {raw!r}")
            parts = body.split(",")
            if parts[-1].strip() == "" and len(parts) > 1:
                parts = parts[:-1]  # a trailing comma, as in (64,)
            if any(not p.strip() for p in parts):
                raise ConfigError(f"{name} expects a comma-separated list such as 64,64 without empty entries, got {raw!r}")
            return tuple(coerce(p, inner, name) for p in parts)
        if origin in (typing.Union, types.UnionType):
            for option in typing.get_args(annotation):
                try:
                    return coerce(text, option, name)
                except ConfigError:
                    continue
            raise ValueError
        if origin is typing.Literal:
            choices = typing.get_args(annotation)
            if text not in choices:
                raise ConfigError(f"{name} must be one of {choices}, got {text!r}")
            return text
        if origin in (list, Sequence) or annotation in (list,):
            args = typing.get_args(annotation)
            inner = args[0] if args else str
            return [coerce(p, inner, name) for p in text.strip("()[]").split(",") if p.strip()]
    except ConfigError:
        raise
    except (TypeError, ValueError):
        pass
    else:
        return text
    tname = getattr(annotation, "__name__", str(annotation))
    raise ConfigError(f"{name} expects a value of type {tname}, got {raw!r}")


def parse_overrides(args: Sequence[str]) -> RunConfig:
    """Build a :class:`RunConfig` from ``key=value`` strings; ``env.*``/``algo.*`` are checked by
    :func:`resolve` once the algorithm and environment are known."""
    top = {f.name: f for f in fields(RunConfig) if f.name not in ("env_kwargs", "algo_kwargs")}
    values: dict[str, Any] = {}
    env_raw: dict[str, str] = {}
    algo_raw: dict[str, str] = {}
    explicit: set[str] = set()
    for arg in args:
        if not isinstance(arg, str):
            raise ConfigError(f"overrides must be key=value strings, got {arg!r}")
        if "=" not in arg:
            raise ConfigError(f"expected key=value, got {arg!r}")
        key, raw = arg.split("=", 1)
        key = key.strip()
        if key.startswith("env."):
            env_raw[key[4:]] = raw
        elif key.startswith("algo."):
            algo_raw[key[5:]] = raw
        elif key in top:
            hints = typing.get_type_hints(RunConfig)
            values[key] = coerce(raw, hints[key], key)
        if key in top or key.startswith(("env.", "algo.")):
            explicit.add(key)
        else:
            raise ConfigError(f"unknown key {key!r}; allowed: {sorted(top)} and env.<arg>, algo.<field>")
    if values.get("preset") is not None:
        from seqmarl.algos.configs import HARL_RUN, PRESETS

        if values["preset"] not in PRESETS:
            raise ConfigError(f"unknown preset {values['preset']!r}; allowed: {list(PRESETS)}")
        for key, value in HARL_RUN.items():  # HARL's train-section values, unless given explicitly
            values.setdefault(key, value)
    cfg = RunConfig(**values)
    cfg.validate()
    cfg.env_kwargs = dict(env_raw)
    cfg.algo_kwargs = dict(algo_raw)
    cfg.explicit = explicit
    return cfg


def load_run_config(path: str | Path) -> RunConfig:
    """The :class:`RunConfig` saved in a run's ``config.yaml`` (read with ``yaml.safe_load`` only)."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path} does not hold a run configuration (a mapping of keys), got {type(data).__name__}")
    known = {f.name for f in fields(RunConfig)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(f"{path}: unknown keys {unknown}; allowed: {sorted(known)}")
    for key in ("env_kwargs", "algo_kwargs"):
        value = data.get(key) or {}
        if not isinstance(value, dict):
            raise ConfigError(f"{path}: {key} must be a mapping, got {type(value).__name__}")
        data[key] = {k: tuple(v) if isinstance(v, list) else v for k, v in value.items()}
    try:
        cfg = RunConfig(**data)
    except TypeError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    cfg.validate()
    return cfg


def check_device(device: str) -> None:
    """Raise :class:`ConfigError` unless ``device`` names a torch device this build can use."""
    import torch

    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError):
        raise ConfigError(f"device must name a torch device such as cpu, cuda or cuda:1, got {device!r}") from None
    if dev.type == "cuda":
        if torch.version.cuda is None:
            raise ConfigError(f"device={device}: this torch build ({torch.__version__}) has no CUDA support; "
                              "install a CUDA build of torch or use device=cpu")
        if not torch.cuda.is_available():
            raise ConfigError(f"device={device}: torch has CUDA support but no CUDA device is visible "
                              "(check the driver and CUDA_VISIBLE_DEVICES) — or use device=cpu")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ConfigError(f"device={device}: only {torch.cuda.device_count()} CUDA device(s) are visible")
    elif dev.type == "mps" and not torch.backends.mps.is_available():
        raise ConfigError(f"device={device}: MPS is not available in this torch build / machine")
    elif dev.type not in ("cpu", "cuda", "mps"):
        raise ConfigError(f"device={device}: seqmarl runs on cpu, cuda or mps devices, got {dev.type!r}")


def resolve(cfg: RunConfig) -> RunConfig:
    """Type and validate ``env.*`` against the env factory's signature and ``algo.*`` against the algorithm's
    config dataclass (unknown names raise with the allowed ones)."""
    from seqmarl.algos import config_for, known_algorithms
    from seqmarl.envs import registry

    cfg.validate()
    check_device(cfg.device)
    if cfg.algo not in known_algorithms():
        raise ConfigError(f"unknown algo {cfg.algo!r}; known algorithms: {known_algorithms()}")
    if cfg.env not in registry.known_envs():
        raise ConfigError(f"unknown env {cfg.env!r}; known environments: {registry.known_envs()}")
    factory = registry._lookup(cfg.env)
    params = registry._parameters(factory) or {}
    try:
        env_hints = typing.get_type_hints(factory)
    except Exception:  # unresolvable annotations: fall back to the defaults' types
        env_hints = {}
    reserved = {"num_envs", "device", "seed"}
    env_kwargs = {}
    for key, raw in cfg.env_kwargs.items():
        allowed = sorted(set(params) - reserved)
        if key not in params or key in reserved:
            raise ConfigError(f"unknown env.{key} for {cfg.env}; allowed: {allowed} (num_envs/device/seed are top-level)")
        param = params[key]
        annotation = env_hints.get(key, inspect.Parameter.empty)
        default = param.default
        env_kwargs[key] = raw if not isinstance(raw, str) else coerce(raw, annotation, f"env.{key}", default)
    algo_cls = config_for(cfg.algo)
    hints = typing.get_type_hints(algo_cls)
    algo_fields = {f.name: f for f in fields(algo_cls) if not f.name.startswith("_")}
    algo_kwargs: dict[str, Any] = {}
    if cfg.preset is not None:
        from seqmarl.algos.configs import PRESETS, preset_values

        if cfg.preset not in PRESETS:
            raise ConfigError(f"unknown preset {cfg.preset!r}; allowed: {list(PRESETS)}")
        algo_kwargs.update(preset_values(cfg.algo, cfg.preset))  # explicit algo.* keys override below
    for key, raw in cfg.algo_kwargs.items():
        if key not in algo_fields:
            raise ConfigError(f"unknown algo.{key} for {cfg.algo}; allowed: {sorted(algo_fields)}")
        algo_kwargs[key] = raw if not isinstance(raw, str) else coerce(raw, hints[key], f"algo.{key}")
    try:
        algo_cls(**algo_kwargs)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"algo config: {exc}") from exc
    cfg.env_kwargs, cfg.algo_kwargs = env_kwargs, algo_kwargs
    return cfg
