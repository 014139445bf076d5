"""``seqmarl validate`` output (issue 13): progress while it runs (plain lines when piped, a rich bar on a
terminal) and a final summary that a narrow terminal does not break mid-value."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pytest
from rich.console import Console

from seqmarl.cli import main
from seqmarl.validate import ValidateProgress, ValidationReport

PROGRESS = re.compile(r"^validate: update (\d+)/(\d+) \((\d+)%\)  exact J -?[\d.e+-]+ \(J\* [\d.]+\)  Nash gap ")


def test_piped_validate_prints_progress_lines_and_an_unbroken_summary(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "40")  # narrower than the summary's longest line
    run_dir = tmp_path / "a-rather-long-run-directory-name-for-a-narrow-terminal"
    rc = main(["validate", "algo=happo", "env=matrix/climbing", "num_envs=16", "total_steps=320", "algo.hidden=8",
               "tensorboard=false", f"run_dir={run_dir}"])
    out = capsys.readouterr().out
    assert rc == 0, out
    lines = out.splitlines()
    # captured stdout is not a terminal: plain progress lines, about every 10% of the 20 updates, ending at 20/20
    progress = [m for m in map(PROGRESS.match, lines) if m]
    assert 5 <= len(progress) <= 12, out
    assert [m.group(1, 2) for m in progress][-1] == ("20", "20")
    assert all(int(a.group(1)) < int(b.group(1)) for a, b in zip(progress, progress[1:]))
    assert "\x1b[" not in out  # no terminal control codes in a pipe
    # the summary: one "key  value" line per quantity, each value whole on its key's line
    summary = json.loads((run_dir / "validation.json").read_text())["summary"]
    start = lines.index("validate happo on matrix/climbing (seed 0): exact oracle after every update")
    body = lines[start + 1:]
    for key, value in summary.items():
        shown = f"{value:.6g}" if isinstance(value, float) else str(value)
        assert re.fullmatch(rf"  {key} +{re.escape(shown)}", body[list(summary).index(key)]), (key, body)
    assert body[len(summary)] == "written:"
    written = [Path(line.strip()) for line in body[len(summary) + 1:]]
    assert [p.name for p in written] == ["validation.json", "validation.png", "return.png"]
    assert all(p.is_file() for p in written)
    assert max(len(line) for line in body) > 40  # longer than the terminal, yet not broken


def _report() -> ValidationReport:
    return ValidationReport(algo="happo", env="matrix/xor", seed=0, j_star=1.0, j_star_share=0.5,
                            returns=[0.2], entropies=[1.0], nash_gaps=[0.4])


def test_progress_is_a_rich_bar_on_a_terminal_and_sparse_lines_in_a_pipe() -> None:
    terminal = io.StringIO()
    shown = ValidateProgress(_report(), 50, Console(file=terminal, force_terminal=True, width=120))
    shown.start()
    assert shown._progress is not None  # a live rich progress bar
    for k in range(1, 51):
        shown(k, None, {})
    shown.stop()
    assert "validate" in terminal.getvalue() and "updates" in terminal.getvalue()
    assert "validate: update" not in terminal.getvalue()  # no plain lines on a terminal

    pipe = io.StringIO()
    plain = ValidateProgress(_report(), 50, Console(file=pipe, force_terminal=False, width=40))
    plain.start()
    assert plain._progress is None
    for k in range(1, 51):
        plain(k, None, {})
    plain.stop()
    updates = [int(m.group(1)) for m in map(PROGRESS.match, pipe.getvalue().splitlines())
               if m]
    assert updates == [1, 5, 10, 15, 20, 25, 30, 35, 40, 45, 50]


def test_progress_false_prints_no_progress(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["validate", "algo=happo", "env=matrix/xor", "num_envs=8", "total_steps=24", "algo.hidden=8",
               "tensorboard=false", "progress=false", f"run_dir={tmp_path / 'q'}"])
    out = capsys.readouterr().out
    assert rc == 0 and "validate: update" not in out and "  final_J " in out


def test_train_final_line_is_not_wrapped(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "40")
    run_dir = tmp_path / "another-long-run-directory-name"
    assert main(["train", "algo=happo", "env=matrix/xor", "num_envs=8", "total_steps=16", "algo.hidden=8",
                 "tensorboard=false", "progress=false", f"run_dir={run_dir}"]) == 0
    out = capsys.readouterr().out
    assert re.search(rf"^run dir: {re.escape(str(run_dir))}  updates: 2  env steps: 16  final episode return: "
                     r"-?\d+\.\d{4}$", out, re.M), out
