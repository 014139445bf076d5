"""Progress display (rate/ETA maths, line format, bar, lines when piped) and the metric loggers (protocol, TensorBoard,
optional W&B / MLflow, the CLI keys progress=, log_every_s=, logger=)."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from seqmarl.algos import Trainer, TrainerConfig, make_agent
from seqmarl.algos import progress as P
from seqmarl.algos.loggers import (
    Logger,
    MissingExtraError,
    TensorBoardLogger,
    make_loggers,
    parse_logger_names,
    require_extra,
    scalars,
)
from seqmarl.envs import make

LINE = re.compile(r"^\[seqmarl\] step (?P<done>[\d,]+)/(?P<total>[\d,]+) \((?P<pct>[\d.]+)%\) \| (?P<rate>[-\d.,]+) steps/s"
                  r" \| return (?P<ret>\S+)( \| eval (?P<eval>\S+))? \| elapsed (?P<elapsed>\S+) \| ETA (?P<eta>\S+)$")


class FakeClock:
    """Returns the times given, in order (seconds)."""

    def __init__(self, times: list[float]):
        self.times = list(times)

    def __call__(self) -> float:
        return self.times.pop(0)


# ----------------------------------------------------------------------------------------------- pure maths
def test_eta_is_remaining_steps_over_rate() -> None:
    assert P.eta_seconds(12_800, 1_000_000, 4_210.0) == (1_000_000 - 12_800) / 4_210.0
    assert P.eta_seconds(0, 1000, 10.0) == 100.0
    assert P.eta_seconds(1000, 1000, None) == 0.0  # done: 0 whatever the rate
    assert P.eta_seconds(1200, 1000, 3.0) == 0.0  # past the end: nothing remains
    assert P.eta_seconds(10, 1000, None) is None
    assert P.eta_seconds(10, 1000, 0.0) is None
    assert P.eta_seconds(10, 1000, -5.0) is None
    assert P.eta_seconds(10, 1000, float("nan")) is None


def test_rate_window_uses_the_newest_sample_at_least_window_old() -> None:
    w = P.RateWindow(60.0)
    assert w.rate() is None
    w.add(0.0, 0)
    assert w.rate() is None  # one sample: no rate
    w.add(5.0, 50)
    assert w.rate() == 50 / 5  # younger than the window: since the first sample
    w.add(10.0, 100)
    w.add(70.0, 1000)
    assert w.rate() == (1000 - 100) / (70 - 10)  # base: newest sample with t <= 70 - 60, i.e. t = 10
    w.add(75.0, 1100)
    assert w.rate() == (1100 - 100) / (75 - 10)  # t = 10 is still the newest at or before 15
    w.add(200.0, 2000)
    assert w.rate() == (2000 - 1100) / (200 - 75)  # base t = 75 (<= 140); the run-average 2000/200 would be 10
    assert w.rate() != 2000 / 200


def test_rate_window_checks_its_input() -> None:
    with pytest.raises(ValueError, match="window_s must be a positive number"):
        P.RateWindow(0)
    w = P.RateWindow(10)
    w.add(5.0, 10)
    with pytest.raises(ValueError, match="must not decrease"):
        w.add(4.0, 20)


def test_a_resumed_run_does_not_count_the_steps_before_the_resume() -> None:
    display = P.ProgressDisplay(total=10_000, show_eval=False, clock=FakeClock([100.0, 110.0]))
    display.start(5_000)  # resumed at 5,000 steps
    display.update(5_100)
    assert display.window.rate() == 100 / 10  # not 5,100 / 10
    assert display.text(110.0).startswith("step 5,100/10,000 (51.0%) | 10 steps/s")


def test_number_and_duration_formats() -> None:
    assert P.format_count(1_000_000) == "1,000,000" and P.format_count(999) == "999" and P.format_count(0) == "0"
    assert P.format_rate(4_210.4) == "4,210" and P.format_rate(12_345_678.9) == "12,345,679"
    assert P.format_rate(3.46) == "3.5" and P.format_rate(10.0) == "10" and P.format_rate(None) == "-"
    assert P.format_value(-97.3) == "-97.3" and P.format_value(0.831249) == "0.8312"
    assert P.format_value(-12_345.6) == "-12,346" and P.format_value(999.94) == "999.9"
    assert P.format_value(float("nan")) == "-" and P.format_value(None) == "-"
    assert P.format_value(float("inf")) == "inf" and P.format_value(float("-inf")) == "-inf"
    assert P.format_duration(0) == "0s" and P.format_duration(59.4) == "59s"
    assert P.format_duration(59.6) == "1m00s" and P.format_duration(235) == "3m55s"
    assert P.format_duration(3_599) == "59m59s" and P.format_duration(3_600) == "1h00m"
    assert P.format_duration(3_725) == "1h02m"
    assert P.format_duration(86_399) == "23h59m" and P.format_duration(86_400 + 3 * 3_600 + 5) == "1d03h"
    assert P.format_duration(None) == "-" and P.format_duration(float("inf")) == "-"
    assert P.format_percent(12_800, 1_000_000) == "1.3%" and P.format_percent(5, 5) == "100.0%"
    assert P.format_percent(0, 0) == "100.0%"


def test_progress_line_format() -> None:
    line = P.format_progress_line(12_800, 1_000_000, 4_210.0, -97.3, -99.1, 3.2, show_eval=True)
    eta = round((1_000_000 - 12_800) / 4_210.0)  # 234 s
    assert eta == 234
    assert line == ("[seqmarl] step 12,800/1,000,000 (1.3%) | 4,210 steps/s | return -97.3 | eval -99.1 | "
                    "elapsed 3s | ETA 3m54s")
    assert LINE.match(line)
    no_eval = P.format_progress_line(0, 50, None, None, None, 0.0, show_eval=False)
    assert no_eval == "[seqmarl] step 0/50 (0.0%) | - steps/s | return - | elapsed 0s | ETA -"
    assert LINE.match(no_eval)


def test_progress_modes_and_aliases() -> None:
    assert P.progress_mode(True) == "auto" and P.progress_mode(False) == "off"
    for mode in P.MODES:
        assert P.progress_mode(mode) == mode
    assert P.progress_mode(" Lines ") == "lines"
    with pytest.raises(ValueError, match="progress must be one of auto, bar, lines, off"):
        P.progress_mode("banana")
    assert P.resolve_mode("auto", interactive=True) == "bar"
    assert P.resolve_mode("auto", interactive=False) == "lines"
    assert P.resolve_mode("lines", interactive=True) == "lines" and P.resolve_mode("off", interactive=True) == "off"


def test_make_display_picks_bar_on_a_terminal_and_lines_otherwise() -> None:
    from rich.console import Console

    terminal = Console(file=io.StringIO(), force_terminal=True)
    piped = Console(file=io.StringIO(), force_terminal=False, force_jupyter=False)
    assert isinstance(P.make_display("auto", 10, False, console=terminal), P.BarProgress)
    assert isinstance(P.make_display(True, 10, False, console=piped), P.LineProgress)
    assert isinstance(P.make_display("bar", 10, False, console=piped), P.BarProgress)
    assert isinstance(P.make_display("lines", 10, False, console=terminal), P.LineProgress)
    assert P.make_display("off", 10, False) is None and P.make_display(False, 10, False) is None


def test_lines_come_every_log_every_s_and_at_start_and_end() -> None:
    out = io.StringIO()
    # clock: start 0; updates at 10, 20, 30 (a line: 30 s since the last), 45, 59.9 (29.9 s: none), 60 (line);
    # finish at 61 (a new step count since the last line: a final line)
    clock = FakeClock([0.0, 10.0, 20.0, 30.0, 45.0, 59.9, 60.0, 70.0, 71.0])
    lines = P.LineProgress(total=800, show_eval=True, log_every_s=30.0, stream=out, clock=clock)
    lines.start(0)
    for k in range(1, 8):
        lines.update(100 * k, {"episode_return": -float(k), **({"eval_return_greedy": 0.5} if k == 2 else {})})
    lines.finish()
    text = out.getvalue().splitlines()
    assert [m.group("done") for m in map(LINE.match, text)] == ["0", "300", "600", "700"]
    first, third, last = LINE.match(text[0]), LINE.match(text[2]), LINE.match(text[-1])
    assert first.group("rate") == "-" and first.group("ret") == "-" and first.group("eval") == "-"
    assert third.group("rate") == f"{600 / 60:.0f}" and third.group("ret") == "-6" and third.group("eval") == "0.5"
    assert third.group("eta") == P.format_duration((800 - 600) / (600 / 60))  # 20s
    assert last.group("ret") == "-7" and last.group("elapsed") == "1m11s"


def test_the_final_line_is_not_repeated() -> None:
    out = io.StringIO()
    lines = P.LineProgress(total=100, show_eval=False, log_every_s=1.0, stream=out, clock=FakeClock([0.0, 5.0, 6.0]))
    lines.start(0)
    lines.update(100, {"episode_return": 1.0})  # 5 s after the start: a line at 100%
    lines.finish()  # same step count: no second line
    assert len(out.getvalue().splitlines()) == 2
    assert "step 100/100 (100.0%)" in out.getvalue().splitlines()[-1]


def test_log_every_s_must_be_positive() -> None:
    for bad in (0, -1.0, float("inf"), float("nan"), True, "30"):
        with pytest.raises(ValueError, match="log_every_s must be a positive number"):
            P.check_log_every_s(bad)


# ----------------------------------------------------------------------------------------------- the trainer
def _trainer(tmp_path: Path | None, total: int = 32, **cfg) -> Trainer:
    env = make("matrix/xor", n_agents=2, num_envs=8, seed=0)
    agent = make_agent("happo", env.spec, hidden=(8, 8), seed=0)
    kwargs = {k: cfg.pop(k) for k in ("progress_console", "progress_stream", "eval_env_fn") if k in cfg}
    config = TrainerConfig(total_steps=total, rollout_length=1, **{"progress": "off", "tensorboard": False, **cfg})
    return Trainer(env, agent, config, run_dir=tmp_path, seed=0, **kwargs)


def test_trainer_config_checks_the_new_keys() -> None:
    assert TrainerConfig().progress == "auto" and TrainerConfig(progress=False).progress == "off"
    assert TrainerConfig(progress=True).progress_mode == "auto"
    assert TrainerConfig(progress="lines", log_every_s=5).log_every_s == 5.0
    with pytest.raises(ValueError, match="progress must be one of auto, bar, lines, off"):
        TrainerConfig(progress="banana")
    with pytest.raises(TypeError, match="progress must be one of"):
        TrainerConfig(progress=1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="log_every_s must be a positive number"):
        TrainerConfig(log_every_s=0)
    with pytest.raises(ValueError, match="unknown logger 'tb'; allowed: tensorboard, wandb, mlflow"):
        TrainerConfig(loggers=("tb",))
    with pytest.raises(ValueError, match="loggers include tensorboard but tensorboard=False"):
        TrainerConfig(tensorboard=False, loggers="tensorboard")
    assert TrainerConfig(tensorboard=True, loggers="tensorboard").logger_names == ("tensorboard",)
    assert TrainerConfig(tensorboard=False).logger_names == ()


def test_trainer_lines_show_the_run_and_a_resume_starts_its_rate_afresh(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    first = _trainer(tmp_path, total=16, checkpoint_interval=1)
    first.train()  # 2 updates of 8 steps
    clock = iter(float(10 * k) for k in range(1, 100))
    monkeypatch.setattr(P, "_now", lambda: next(clock))
    out = io.StringIO()
    resumed = _trainer(tmp_path, total=32, progress="lines", log_every_s=1.0, progress_stream=out)
    resumed.load_checkpoint(tmp_path)
    resumed.adopt_logs()
    rows = resumed.train()
    text = out.getvalue().splitlines()
    assert len(text) == 1 + 2  # start, then one per update (10 s apart >= 1 s); the final one is not repeated
    start, mid, end = (LINE.match(t) for t in text)
    assert start.group("done") == "16" and start.group("total") == "32" and start.group("rate") == "-"
    assert mid.group("done") == "24" and mid.group("rate") == "0.8"  # (24 - 16) / (20 - 10): not 24 / 20
    assert end.group("done") == "32" and end.group("pct") == "100.0" and end.group("eta") == "0s"
    assert end.group("rate") == "0.8" and end.group("elapsed") == "20s"
    assert end.group("ret") == P.format_value(rows[-1]["episode_return"])
    assert end.group("eval") is None  # no evaluation in this run: no eval field


def test_a_run_between_lines_prints_its_start_and_its_end_at_100_percent(tmp_path: Path) -> None:
    out = io.StringIO()
    trainer = _trainer(tmp_path, total=36, progress="lines", log_every_s=1e9, progress_stream=out)
    trainer.train()  # 36 // 8 = 4 updates: the run reaches 32 steps, which the lines count to
    text = out.getvalue().splitlines()
    assert [(m.group("done"), m.group("total"), m.group("pct")) for m in map(LINE.match, text)] == \
        [("0", "32", "0.0"), ("32", "32", "100.0")]


def test_the_bar_runs_on_a_forced_terminal(tmp_path: Path) -> None:
    from rich.console import Console

    buf = io.StringIO()
    console = Console(file=buf, force_terminal=True, width=220)
    trainer = _trainer(tmp_path, progress="bar", progress_console=console, eval_interval=2,
                       eval_env_fn=lambda n: make("matrix/xor", n_agents=2, num_envs=n, seed=1))
    rows = trainer.train()
    shown = buf.getvalue()
    assert "step 32/32 (100.0%)" in shown and "steps/s" in shown and "ETA 0s" in shown
    assert f"eval {P.format_value(rows[-1]['eval_return_greedy'])}" in shown


class SpyLogger:
    def __init__(self) -> None:
        self.calls: list[tuple[dict, int]] = []
        self.closed = 0

    def log(self, row, step: int) -> None:
        self.calls.append((dict(row), step))

    def close(self) -> None:
        self.closed += 1


def test_every_logger_gets_each_logged_row_with_env_steps(tmp_path: Path) -> None:
    trainer = _trainer(tmp_path, total=40, log_interval=2)  # 5 updates: rows 2, 4 and the last (5)
    spy = SpyLogger()
    assert isinstance(spy, Logger) and isinstance(trainer.logger, Logger)
    trainer.loggers.append(spy)
    trainer.train()
    file_rows = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["iteration"] for r in file_rows] == [2, 4, 5]
    assert [c[0] for c in spy.calls] == file_rows
    assert [c[1] for c in spy.calls] == [16, 32, 40]
    assert spy.closed == 1


def test_rows_with_an_evaluation_are_logged_whatever_the_log_interval(tmp_path: Path) -> None:
    """log_interval 5, eval_interval 3, 7 updates: rows 3 and 6 carry evaluations and are written with 5 and the
    last (7); before the fix an evaluation off the log interval was computed and dropped."""
    eval_env = lambda k: make("matrix/xor", n_agents=2, num_envs=k, seed=1)  # noqa: E731
    trainer = _trainer(tmp_path, total=56, log_interval=5, eval_interval=3, eval_episodes=4, eval_env_fn=eval_env)
    trainer.train()
    file_rows = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["iteration"] for r in file_rows] == [3, 5, 6, 7]
    assert [("eval_return_greedy" in r) for r in file_rows] == [True, False, True, False]


@pytest.mark.parametrize("threads", [1, 2])
def test_the_update_runs_on_update_threads_and_the_count_is_restored(tmp_path: Path, threads: int) -> None:
    import torch

    trainer = _trainer(tmp_path, total=16, update_threads=threads)
    seen, update = [], trainer.agent.update

    def spy(rollout):
        seen.append(torch.get_num_threads())
        return update(rollout)

    trainer.agent.update = spy
    before = torch.get_num_threads()
    other = 3 if threads != 3 else 4
    torch.set_num_threads(other)
    try:
        trainer.train()
        assert seen == [threads, threads] and torch.get_num_threads() == other
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize("bad", [0, -1, True, 1.5, "2"])
def test_update_threads_must_be_a_positive_integer(bad) -> None:
    from seqmarl.algos.trainer import torch_threads

    with pytest.raises(ValueError, match="update_threads"):
        TrainerConfig(update_threads=bad)
    with pytest.raises(ValueError, match="n must be"), torch_threads(bad):
        pass


def test_scalars_keep_finite_numbers_but_the_axes() -> None:
    row = {"iteration": 3, "env_steps": 24, "episode_return": 0.5, "loss": float("nan"), "flag": True, "name": "x",
           "sps": 7}
    assert scalars(row) == {"episode_return": 0.5, "sps": 7.0}


def test_tensorboard_replay_rewrites_the_events(tmp_path: Path) -> None:
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader

    tb = TensorBoardLogger(tmp_path)
    assert isinstance(tb, Logger)
    for k in range(1, 4):
        tb.log({"iteration": k, "env_steps": 8 * k, "episode_return": float(k)}, 8 * k)
    tb.replay([{"iteration": 1, "env_steps": 8, "episode_return": 1.0}])
    tb.log({"iteration": 2, "env_steps": 16, "episode_return": 20.0}, 16)
    tb.close()
    seen = []
    for events in (tmp_path / "tb").glob("events.out.tfevents.*"):
        for event in EventFileLoader(str(events)).Load():
            seen += [(event.step, v.tag, v.tensor.float_val[0] if v.tensor.float_val else v.simple_value)
                     for v in event.summary.value]
    assert sorted(seen) == [(8, "episode_return", 1.0), (16, "episode_return", 20.0)]


# ----------------------------------------------------------------------------------------------- loggers
def test_logger_names() -> None:
    assert parse_logger_names("tensorboard,wandb") == ("tensorboard", "wandb")
    assert parse_logger_names(" MLflow , mlflow,") == ("mlflow",)
    assert parse_logger_names("none") == () and parse_logger_names(None) == () and parse_logger_names("") == ()
    assert parse_logger_names(["wandb", "tensorboard"]) == ("wandb", "tensorboard")
    with pytest.raises(ValueError, match="unknown logger 'csv'; allowed: tensorboard, wandb, mlflow"):
        parse_logger_names("tensorboard,csv")


@pytest.mark.parametrize("name", ["wandb", "mlflow"])
def test_a_missing_extra_names_the_pip_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    monkeypatch.setitem(sys.modules, name, None)  # as if not installed: find_spec gives None, import fails
    with pytest.raises(MissingExtraError, match=re.escape(f"pip install 'seqmarl[{name}]'")):
        require_extra(name)
    with pytest.raises(MissingExtraError, match=f"logger={name} needs the {name} package"):
        make_loggers([name], tmp_path)
    with pytest.raises(MissingExtraError):
        _trainer(tmp_path / "run", loggers=(name,))
    assert not (tmp_path / "run").exists()
    require_extra("tensorboard")  # not an extra: nothing to check


def test_cli_logger_without_the_package_exits_2_with_the_pip_command(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from seqmarl.cli import main

    monkeypatch.setitem(sys.modules, "wandb", None)
    run_dir = tmp_path / "run"
    rc = main(["train", "total_steps=16", "num_envs=8", f"run_dir={run_dir}", "logger=tensorboard,wandb"])
    out = capsys.readouterr()
    text = out.out + out.err
    assert rc == 2
    assert "pip install 'seqmarl[wandb]'" in text and "Traceback" not in text
    assert not run_dir.exists()


@pytest.mark.parametrize("arg,message", [
    ("progress=banana", "progress must be one of auto, bar, lines, off"),
    ("log_every_s=-1", "log_every_s must be a positive number of seconds"),
    ("log_every_s=soon", "log_every_s must be a positive number of seconds"),
    ("logger=csv", "unknown logger 'csv'"),
])
def test_cli_bad_output_keys_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str], arg: str, message: str) -> None:
    from seqmarl.cli import main

    rc = main(["train", "total_steps=16", "num_envs=8", f"run_dir={tmp_path / 'run'}", arg])
    out = capsys.readouterr()
    assert rc == 2 and message in out.out + out.err and "Traceback" not in out.out + out.err
    assert not (tmp_path / "run").exists()


def test_cli_tensorboard_false_and_logger_tensorboard_disagree(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from seqmarl.cli import main

    rc = main(["train", "total_steps=16", f"run_dir={tmp_path / 'run'}", "tensorboard=false", "logger=tensorboard"])
    assert rc == 2 and "disagree" in capsys.readouterr().out


def test_split_output_overrides_keeps_progress_a_boolean_in_the_run_config() -> None:
    from seqmarl.train import OutputOptions, split_output_overrides

    rest, out = split_output_overrides(["algo=happo", "progress=lines", "log_every_s=2.5", "logger=wandb,mlflow"])
    assert rest == ["algo=happo", "progress=true"]
    assert out == OutputOptions(progress="lines", log_every_s=2.5, loggers=("wandb", "mlflow"))
    for raw, mode, kept in (("off", "off", "false"), ("false", "off", "false"), ("true", "auto", "true"),
                            ("bar", "bar", "true"), ("AUTO", "auto", "true")):
        rest, out = split_output_overrides([f"progress={raw}"])
        assert out.progress == mode and rest == [f"progress={kept}"]
    assert split_output_overrides(["seed=1"]) == (["seed=1"], OutputOptions())


def test_train_help_lists_the_new_keys() -> None:
    from seqmarl.train import top_level_help

    assert "log_every_s" not in top_level_help()  # seqmarl validate: no such keys
    text = top_level_help(output_keys=True)
    assert "progress=true  (auto|bar|lines|off; true = auto, false = off" in text
    assert f"log_every_s={P.DEFAULT_LOG_EVERY_S:g}" in text
    assert "logger=none" in text and "pip install 'seqmarl[wandb]'" in text and "pip install 'seqmarl[mlflow]'" in text


def test_piped_cli_prints_progress_lines(tmp_path: Path) -> None:
    """``seqmarl train ... progress=lines`` with stdout/stderr piped: lines on stderr, the last one at 100%."""
    run_dir = tmp_path / "run"
    cmd = [sys.executable, "-m", "seqmarl", "train", "algo=happo", "env=matrix/xor", "num_envs=8", "total_steps=32",
           "algo.hidden=8,8", "tensorboard=false", "progress=lines", "log_every_s=0.001", f"run_dir={run_dir}"]
    env = {k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR", "TTY_COMPATIBLE")}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.startswith("[seqmarl]")]
    matches = [LINE.match(line) for line in lines]
    assert all(matches), lines
    assert [m.group("done") for m in matches] == ["0", "8", "16", "24", "32"]  # start, then every update
    assert all(m.group("total") == "32" for m in matches)
    assert matches[-1].group("pct") == "100.0" and matches[-1].group("eta") == "0s"
    assert matches[-1].group("rate") != "-" and matches[-1].group("ret") != "-"
    assert "[seqmarl]" not in proc.stdout and "run dir:" in proc.stdout


# ----------------------------------------------------------------------------------------------- real trackers
def _importable(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


@pytest.mark.skipif(not _importable("mlflow"), reason="mlflow is not installed (pip install 'seqmarl[mlflow]')")
def test_mlflow_logger_records_the_rows_and_a_resume_replays_them(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from mlflow.tracking import MlflowClient

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_EXPERIMENT_NAME", raising=False)
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "unset")  # recorded, so the logger's setdefault is undone after
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE")
    first = _trainer(tmp_path, total=24, checkpoint_interval=2, loggers="mlflow")
    first.train()  # 3 updates, checkpoint at 2: the resume drops row 3
    resumed = _trainer(tmp_path, total=32, loggers="mlflow")
    resumed.load_checkpoint(tmp_path)
    resumed.adopt_logs()
    resumed.train()
    rows = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["iteration"] for r in rows] == [1, 2, 3, 4]
    client = MlflowClient(tracking_uri=(tmp_path / "mlruns").resolve().as_uri())
    experiment = client.get_experiment_by_name("seqmarl")
    runs = client.search_runs([experiment.experiment_id], order_by=["attributes.start_time ASC"])
    assert len(runs) == 2 and all(r.info.status == "FINISHED" and r.info.run_name == tmp_path.name for r in runs)
    history = client.get_metric_history(runs[-1].info.run_id, "episode_return")
    assert [(m.step, m.value) for m in sorted(history, key=lambda m: m.step)] == \
        [(r["env_steps"], r["episode_return"]) for r in rows]
    first_history = client.get_metric_history(runs[0].info.run_id, "episode_return")
    assert sorted(m.step for m in first_history) == [8, 16, 24]
    assert runs[-1].data.params["algo"] == "happo" and runs[-1].data.params["algo.hidden"] == "(8, 8)"
    assert os.environ["MLFLOW_ALLOW_FILE_STORE"] == "true"  # set for the default file store (MLflow 3)


@pytest.mark.skipif(not _importable("wandb"), reason="wandb is not installed (pip install 'seqmarl[wandb]')")
def test_wandb_logger_runs_offline_in_the_run_dir_and_a_resume_replays(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    import time

    import wandb

    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.delenv("WANDB_PROJECT", raising=False)
    inits, logged = [], []
    real_init = wandb.init

    def spy_init(**kwargs):
        inits.append(kwargs)
        logged.append([])
        run = real_init(**kwargs)
        real_log, mine = run.log, logged[-1]
        monkeypatch.setattr(run, "log", lambda data, step=None: (mine.append((dict(data), step)),
                                                                 real_log(data, step=step))[1])
        return run

    monkeypatch.setattr(wandb, "init", spy_init)
    _trainer(tmp_path, total=24, checkpoint_interval=2, loggers="wandb").train()  # 3 rows; checkpoint at 2
    first_rows = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    resumed = _trainer(tmp_path, total=32, loggers="wandb")
    resumed.load_checkpoint(tmp_path)
    resumed.adopt_logs()
    resumed.train()
    rows = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert len(inits) == 2
    for init in inits:
        assert init["mode"] == "offline" and init["name"] == tmp_path.name and init["project"] == "seqmarl"
        assert init["dir"] == str(tmp_path) and init["config"]["algo"] == "happo"
    assert [(d["episode_return"], step) for d, step in logged[0]] == \
        [(r["episode_return"], r["env_steps"]) for r in first_rows]
    # the resumed run's W&B run: the kept rows (1, 2) replayed, then the recomputed 3 and the new 4
    assert [(d["episode_return"], step) for d, step in logged[1]] == [(r["episode_return"], r["env_steps"]) for r in rows]
    assert [step for _, step in logged[1]] == [8, 16, 24, 32]
    files = list((tmp_path / "wandb").glob("offline-run-*/run-*.wandb"))
    assert len(files) == 2
    deadline = time.monotonic() + 30  # wandb's service may still be writing the files after finish()
    while not all(b"episode_return" in f.read_bytes() for f in files) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert all(b"episode_return" in f.read_bytes() for f in files)
