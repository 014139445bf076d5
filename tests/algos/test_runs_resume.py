"""Runs and resumes never lose data (issue 13): a failed or wrong resume changes nothing, resume uses the
run's saved config, an occupied run dir is refused, append-only metrics, TensorBoard without duplicate steps,
a full disk keeps the previous checkpoint, and an already complete run says so."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch

from seqmarl.algos.trainer import CheckpointError, MetricsLogger
from seqmarl.config import ConfigError, RunConfig, parse_overrides
from seqmarl.train import build, run

SMALL = ["algo.hidden=8", "num_envs=8", "progress=false", "tensorboard=false"]
ENV = ["env=matrix/random", "env.n_states=2", "env.gamma=0.9", "rollout_length=2"]  # 16 env steps per update


def _cfg(run_dir: Path, *extra: str) -> RunConfig:
    return parse_overrides([f"run_dir={run_dir}", *SMALL, *extra])


def _snapshot(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` with its bytes (and the directories, as empty entries)."""
    out = {}
    for p in sorted(root.rglob("*")):
        out[str(p.relative_to(root))] = p.read_bytes() if p.is_file() else b"<dir>"
    return out


@pytest.fixture()
def finished_run(tmp_path: Path) -> Path:
    run_dir = tmp_path / "run"
    run(_cfg(run_dir, "algo=happo", *ENV, "total_steps=64", "checkpoint_interval=2", "tensorboard=true"))
    return run_dir


def _bad_checkpoints(run_dir: Path) -> dict[str, bytes]:
    good = (run_dir / "checkpoints" / "last.pt").read_bytes()
    return {"empty": b"", "truncated": good[: len(good) // 2], "text": b"just some text\n",
            "corrupt": good[:100] + bytes(200) + good[300:]}


@pytest.mark.parametrize("kind", ["empty", "truncated", "text", "corrupt"])
def test_a_bad_checkpoint_changes_nothing(finished_run: Path, kind: str) -> None:
    ckpt = finished_run / "checkpoints" / "last.pt"
    ckpt.write_bytes(_bad_checkpoints(finished_run)[kind])
    before = _snapshot(finished_run)
    with pytest.raises(CheckpointError, match=str(ckpt)):
        run(_cfg(finished_run, f"resume={finished_run}", "total_steps=128"))
    assert _snapshot(finished_run) == before


@pytest.mark.parametrize("override, match", [
    ("algo=hatrpo", "algo=hatrpo \\(the run has happo\\)"),
    ("env=matrix/climbing", "env=matrix/climbing \\(the run has matrix/random\\)"),
    ("env.n_states=3", "env.n_states=3 \\(the run has 2\\)"),
    ("algo.hidden=16", "algo.hidden=\\(16,\\) \\(the run has \\(8,\\)\\)"),
])
def test_a_resume_with_another_config_changes_nothing(finished_run: Path, override: str, match: str) -> None:
    before = _snapshot(finished_run)
    with pytest.raises(ConfigError, match=match):
        run(_cfg(finished_run, f"resume={finished_run}", "total_steps=128", override))
    assert _snapshot(finished_run) == before


def test_a_missing_resume_path_creates_nothing(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b" / "run"
    with pytest.raises(FileNotFoundError, match="no checkpoint at"):
        run(_cfg(target, f"resume={target}"))
    assert list(tmp_path.rglob("*")) == []


def test_a_checkpoint_of_another_algorithm_is_refused_by_name(finished_run: Path, tmp_path: Path) -> None:
    cfg = _cfg(tmp_path / "other", "algo=hatrpo", *ENV, "total_steps=64")
    from seqmarl.config import resolve

    _, _, trainer = build(resolve(cfg))
    with pytest.raises(CheckpointError, match="algo='happo'.*algo='hatrpo'"):
        trainer.load_checkpoint(finished_run)
    cfg = _cfg(tmp_path / "other2", "algo=happo", "env=matrix/xor", "rollout_length=2", "total_steps=64")
    _, _, trainer = build(resolve(cfg))
    with pytest.raises(CheckpointError, match="env='matrix/random'"):
        trainer.load_checkpoint(finished_run)
    assert not (tmp_path / "other").exists() and not (tmp_path / "other2").exists()


def test_resume_alone_uses_the_saved_config(finished_run: Path) -> None:
    """Only resume= and total_steps: the run's env (random, 2 states) and hidden=(8,) come from config.yaml."""
    trainer, history = run(parse_overrides([f"resume={finished_run}", "total_steps=128", "progress=false"]))
    assert trainer.iteration == 8 and len(history) == 8
    assert [r["iteration"] for r in history] == list(range(1, 9))
    assert trainer.agent.config.hidden == (8,)
    assert trainer.env.game.n_states == 2
    assert "total_steps: 128" in (finished_run / "config.yaml").read_text()


def test_rerunning_into_an_occupied_run_dir_is_refused(finished_run: Path) -> None:
    before = _snapshot(finished_run)
    with pytest.raises(ConfigError, match="already holds a run; continue it with resume="):
        run(_cfg(finished_run, "algo=happo", *ENV, "total_steps=64"))
    assert _snapshot(finished_run) == before


def test_the_default_run_dir_moves_on_and_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    said: list[str] = []
    args = ["algo=happo", *ENV, *SMALL, "total_steps=16"]
    first, _ = run(parse_overrides(args), say=said.append)
    second, _ = run(parse_overrides(args), say=said.append)
    assert first.run_dir == Path("runs/happo-matrix_random-seed0")
    assert second.run_dir == Path("runs/happo-matrix_random-seed0-2")
    assert any("already holds a run" in s and "seed0-2" in s for s in said)
    assert len((first.run_dir / "metrics.jsonl").read_text().splitlines()) == 1


def test_killed_before_the_first_checkpoint_restarts_cleanly(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    run(_cfg(run_dir, "algo=happo", *ENV, "total_steps=48"))
    (run_dir / "checkpoints" / "last.pt").unlink()  # as if killed before the first checkpoint
    said: list[str] = []
    trainer, history = run(_cfg(run_dir, f"resume={run_dir}", "total_steps=48"), say=said.append)
    rows = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["iteration"] for r in rows] == [1, 2, 3]
    assert any("no checkpoint yet" in s for s in said)


class _Kill(Exception):
    pass


def _kill_at(iteration: int):
    def callback(it: int, agent, row):  # noqa: ANN001, ANN202
        if it == iteration:
            raise _Kill
    return callback


def test_half_written_jsonl_line_and_tensorboard_without_duplicates(tmp_path: Path) -> None:
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader

    run_dir = tmp_path / "run"
    cfg = _cfg(run_dir, "algo=happo", *ENV, "total_steps=96", "checkpoint_interval=3", "tensorboard=true")
    with pytest.raises(_Kill):
        run(cfg, callbacks=[_kill_at(6)])  # rows 1-5 logged, checkpoint at 3
    with (run_dir / "metrics.jsonl").open("a") as fh:
        fh.write('{"iteration": 6, "env_st')  # a kill in the middle of a write
    trainer, history = run(_cfg(run_dir, f"resume={run_dir}", "total_steps=96", "tensorboard=true"))
    rows = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["iteration"] for r in rows] == [1, 2, 3, 4, 5, 6]
    csv_lines = (run_dir / "metrics.csv").read_text().splitlines()
    assert len(csv_lines) == 7 and csv_lines[0].startswith("iteration,env_steps")
    seen: dict[tuple[str, int], int] = {}
    for events in (run_dir / "tb").glob("events.out.tfevents.*"):
        for event in EventFileLoader(str(events)).Load():
            for value in event.summary.value:
                seen[(value.tag, event.step)] = seen.get((value.tag, event.step), 0) + 1
    assert seen and max(seen.values()) == 1, "TensorBoard holds a step twice"
    assert sorted({step for tag, step in seen}) == [16 * k for k in range(1, 7)]


def test_metrics_csv_is_appended_not_rewritten(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rewrites = []
    original = MetricsLogger._rewrite_csv
    monkeypatch.setattr(MetricsLogger, "_rewrite_csv", lambda self, rows: (rewrites.append(len(rows)), original(self, rows)))
    run(_cfg(tmp_path / "run", "algo=happo", *ENV, "total_steps=96"))
    assert rewrites == [1]  # the header, once; then rows are appended
    assert len((tmp_path / "run" / "metrics.csv").read_text().splitlines()) == 7


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full to simulate a full disk")
def test_a_full_disk_keeps_the_previous_checkpoint(finished_run: Path) -> None:
    from seqmarl.config import resolve

    ckpt = finished_run / "checkpoints" / "last.pt"
    before = ckpt.read_bytes()
    tmp = ckpt.with_name("last.pt.tmp")
    tmp.symlink_to("/dev/full")  # every write to the temp file fails with ENOSPC
    _, _, trainer = build(resolve(_cfg(finished_run, "algo=happo", *ENV, "total_steps=64")))
    with pytest.raises(OSError, match="no space left on device"):
        trainer.save_checkpoint()
    assert ckpt.read_bytes() == before
    assert not tmp.exists() and not tmp.is_symlink()


def test_total_steps_below_the_progress_says_the_run_is_complete(finished_run: Path) -> None:
    before = _snapshot(finished_run)
    said: list[str] = []
    trainer, history = run(_cfg(finished_run, f"resume={finished_run}", "total_steps=32"), say=said.append)
    assert trainer.already_complete and len(history) == 4
    assert any("already complete" in s and "update 4" in s for s in said)
    assert _snapshot(finished_run) == before


def test_cli_resume_errors_exit_2_without_traceback(finished_run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from seqmarl.cli import main

    assert main(["train", f"resume={finished_run}", "algo=hatrpo", "progress=false"]) == 2
    out = capsys.readouterr()
    assert "algo=hatrpo (the run has happo)" in out.out and "Traceback" not in out.out + out.err
    assert main(["train", f"resume={finished_run}", "total_steps=32", "progress=false"]) == 0
    assert "already complete" in capsys.readouterr().err
    weights = torch.load(finished_run / "checkpoints" / "last.pt", weights_only=True)
    assert weights["meta"] == {"algo": "happo", "env": "matrix/random"}
