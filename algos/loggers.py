"""Metric loggers behind one small protocol: TensorBoard (a dependency) and the optional Weights & Biases and
MLflow trackers (extras ``seqmarl[wandb]``, ``seqmarl[mlflow]``).

Every logger takes the trainer's metric rows: ``log(row, step)`` with ``step`` the row's ``env_steps`` (the x
axis of every curve), and ``close()``. The CSV/JSONL files (:class:`seqmarl.algos.trainer.MetricsLogger`) are the
run's record; a resumed run cuts them back to its checkpoint and hands the kept rows to every other logger's
``replay(rows)``, which starts that logger's record afresh from them (TensorBoard: its event files are rewritten,
so no step appears twice; W&B/MLflow: a new tracker run that holds the whole kept history, then the new rows).

Each logger opens its files or tracker run on the first row, so a run that fails before training writes
nothing for it. Scalars logged: the row's finite numbers except ``iteration`` and ``env_steps``.
"""

from __future__ import annotations

import importlib.util
import math
import os
import time
from pathlib import Path
from typing import Any, Iterable, Mapping, Protocol, Sequence, runtime_checkable

LOGGER_NAMES = ("tensorboard", "wandb", "mlflow")
# the optional ones: logger name -> (module imported, pip extra)
EXTRAS = {"wandb": ("wandb", "wandb"), "mlflow": ("mlflow", "mlflow")}


@runtime_checkable
class Logger(Protocol):
    """Receives metric rows."""

    def log(self, row: Mapping[str, Any], step: int) -> None: ...

    def close(self) -> None: ...


class MissingExtraError(ImportError):
    """An optional logger's package is not installed; the message holds the pip command that installs it."""


def scalars(row: Mapping[str, Any]) -> dict[str, float]:
    """The row's finite numbers (bools excluded) except ``iteration`` and ``env_steps``."""
    return {k: float(v) for k, v in row.items()
            if k not in ("iteration", "env_steps") and isinstance(v, (int, float)) and not isinstance(v, bool)
            and math.isfinite(v)}


def parse_logger_names(value: str | Iterable[str] | None) -> tuple[str, ...]:
    """``logger=`` as a tuple of names from :data:`LOGGER_NAMES`: a comma-separated string (``tensorboard,wandb``)
    or a sequence; ``none``/empty gives ``()``; repeats are dropped, the order kept."""
    if value is None:
        return ()
    items = value.split(",") if isinstance(value, str) else list(value)
    names: list[str] = []
    for item in items:
        if not isinstance(item, str):
            raise ValueError(f"logger names must be strings, got {item!r}")
        name = item.strip().lower()
        if name in ("", "none"):
            continue
        if name not in LOGGER_NAMES:
            raise ValueError(f"unknown logger {item.strip()!r}; allowed: {', '.join(LOGGER_NAMES)} "
                             "(a comma-separated list, e.g. logger=tensorboard,wandb)")
        if name not in names:
            names.append(name)
    return tuple(names)


def require_extra(name: str) -> None:
    """Raise :class:`MissingExtraError` with the pip command if logger ``name``'s package cannot be imported."""
    if name not in EXTRAS:
        return
    module, extra = EXTRAS[name]
    if importlib.util.find_spec(module) is None:
        raise MissingExtraError(f"logger={name} needs the {module} package, which is not installed; "
                                f"install it with: pip install 'seqmarl[{extra}]'")


class TensorBoardLogger:
    """Scalars to ``run_dir/tb`` (``torch.utils.tensorboard``), flushed after every row."""

    def __init__(self, run_dir: str | Path):
        self.dir = Path(run_dir) / "tb"
        self._writer: Any = None
        self.available = True

    def _open(self) -> Any:
        if self._writer is None and self.available:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:  # tensorboard is a dependency; stay usable without it
                self.available = False
                return None
            self._writer = SummaryWriter(str(self.dir))
        return self._writer

    def log(self, row: Mapping[str, Any], step: int) -> None:
        self._write(row, step)
        if self._writer is not None:
            self._writer.flush()

    def _write(self, row: Mapping[str, Any], step: int) -> None:
        values = scalars(row)
        writer = self._open() if values else self._writer
        if writer is None:
            return
        for key, value in values.items():
            writer.add_scalar(key, value, int(step))

    def replay(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """Delete the event files and write ``rows`` again (a resume: no step appears twice)."""
        self.close()
        if self.dir.is_dir():
            for events in self.dir.glob("events.out.tfevents.*"):
                events.unlink()
        for r in rows:
            self._write(r, int(r["env_steps"]))
        if self._writer is not None:
            self._writer.flush()

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


class WandbLogger:
    """A Weights & Biases run: offline unless ``WANDB_MODE`` says otherwise (``WANDB_MODE=online`` uploads);
    project ``WANDB_PROJECT`` or ``seqmarl``; the run is named after the run directory and its files go to
    ``run_dir/wandb``; ``config`` (the run's settings) is stored as the W&B config."""

    def __init__(self, run_dir: str | Path, config: Mapping[str, Any] | None = None):
        require_extra("wandb")
        self.run_dir = Path(run_dir)
        self.config = dict(config or {})
        self.run: Any = None

    def _open(self) -> Any:
        if self.run is None:
            import wandb

            self.run_dir.mkdir(parents=True, exist_ok=True)
            self.run = wandb.init(project=os.environ.get("WANDB_PROJECT", "seqmarl"), name=self.run_dir.name,
                                  dir=str(self.run_dir), mode=os.environ.get("WANDB_MODE", "offline"),  # type: ignore[arg-type]
                                  config=self.config, reinit="create_new",
                                  settings=wandb.Settings(console="off", silent=True))
        return self.run

    def log(self, row: Mapping[str, Any], step: int) -> None:
        self._open().log(scalars(row), step=int(step))

    def replay(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """A new W&B run holding ``rows`` (W&B steps only increase, so the cut-off tail cannot be overwritten)."""
        self.close()
        for r in rows:
            self.log(r, int(r["env_steps"]))

    def close(self) -> None:
        if self.run is not None:
            self.run.finish()
            self.run = None


class MLflowLogger:
    """An MLflow run, by default in a local file store ``run_dir/mlruns`` (``MLFLOW_TRACKING_URI`` overrides it),
    experiment ``MLFLOW_EXPERIMENT_NAME`` or ``seqmarl``, the run named after the run directory, ``config`` logged
    as parameters; ended FINISHED by :meth:`close`.

    MLflow 3 keeps its file store in maintenance mode and refuses it unless ``MLFLOW_ALLOW_FILE_STORE=true``; with
    the default URI this logger sets that variable when it is unset (a user's ``false`` is kept, and then MLflow's
    own error says to use a database URI such as ``MLFLOW_TRACKING_URI=sqlite:///mlflow.db``)."""

    BATCH = 1000  # MLflow's limit on metrics per log_batch call

    def __init__(self, run_dir: str | Path, config: Mapping[str, Any] | None = None):
        require_extra("mlflow")
        self.run_dir = Path(run_dir)
        self.config = dict(config or {})
        self.default_store = not os.environ.get("MLFLOW_TRACKING_URI")
        self.tracking_uri = os.environ.get("MLFLOW_TRACKING_URI") or (self.run_dir / "mlruns").resolve().as_uri()
        self.client: Any = None
        self.run_id: str | None = None

    def _open(self) -> str:
        if self.run_id is None:
            from mlflow.entities import Param
            from mlflow.tracking import MlflowClient

            if self.default_store:
                os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
            self.client = MlflowClient(tracking_uri=self.tracking_uri)
            name = os.environ.get("MLFLOW_EXPERIMENT_NAME", "seqmarl")
            experiment = self.client.get_experiment_by_name(name)
            experiment_id = experiment.experiment_id if experiment is not None else self.client.create_experiment(name)
            self.run_id = self.client.create_run(experiment_id, run_name=self.run_dir.name).info.run_id
            params = [Param(k, str(v)[:6000]) for k, v in self.config.items()]
            for i in range(0, len(params), 100):  # MLflow's limit on params per call
                self.client.log_batch(self.run_id, params=params[i:i + 100])
        return self.run_id

    def log(self, row: Mapping[str, Any], step: int) -> None:
        from mlflow.entities import Metric

        run_id = self._open()
        now = int(time.time() * 1000)
        metrics = [Metric(k, v, now, int(step)) for k, v in scalars(row).items()]
        for i in range(0, len(metrics), self.BATCH):
            self.client.log_batch(run_id, metrics=metrics[i:i + self.BATCH])

    def replay(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """A new MLflow run holding ``rows``."""
        self.close()
        for r in rows:
            self.log(r, int(r["env_steps"]))

    def close(self) -> None:
        if self.run_id is not None:
            self.client.set_terminated(self.run_id, status="FINISHED")
            self.run_id = None


def make_loggers(names: Sequence[str], run_dir: str | Path, config: Mapping[str, Any] | None = None) -> list[Logger]:
    """The loggers ``names`` (:func:`parse_logger_names`) for ``run_dir``; an optional one whose package is missing
    raises :class:`MissingExtraError` with the pip command, before anything is written."""
    names = parse_logger_names(names)
    for name in names:
        require_extra(name)
    out: list[Logger] = []
    for name in names:
        if name == "tensorboard":
            out.append(TensorBoardLogger(run_dir))
        elif name == "wandb":
            out.append(WandbLogger(run_dir, config))
        else:
            out.append(MLflowLogger(run_dir, config))
    return out
