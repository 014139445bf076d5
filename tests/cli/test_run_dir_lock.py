"""One training process per run directory (``seqmarl.run_lock``), and a sweep stopped with ``kill`` stops its workers:
the two halves of "a killed sweep run again never has two trainers writing one run"."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from seqmarl.cli import main
from seqmarl.config import ConfigError
from seqmarl.run_lock import RunDirBusyError, run_dir_lock

TINY = ["algo=mappo", "env=matrix/xor", "num_envs=32", "tensorboard=false", "progress=false", "checkpoint_interval=2"]


def test_a_second_holder_is_refused_until_the_first_lets_go(tmp_path: Path) -> None:
    before = sorted(os.listdir(tmp_path))
    with run_dir_lock(tmp_path) as held:
        assert held == tmp_path
        with pytest.raises(RunDirBusyError, match=f"run directory {tmp_path} is in use"):
            with run_dir_lock(tmp_path):
                pass
        assert sorted(os.listdir(tmp_path)) == before  # nothing is added to the run
    with run_dir_lock(tmp_path):  # released
        pass
    assert issubclass(RunDirBusyError, ConfigError)  # the CLI reports it with exit code 2
    for bad in (tmp_path / "missing", tmp_path / "a-file"):
        if bad.name == "a-file":
            bad.write_text("x")
        with pytest.raises(ConfigError, match="must be an existing directory"):
            with run_dir_lock(bad):
                pass


def test_train_into_a_busy_run_dir_exits_2_and_changes_nothing(tmp_path: Path, capsys) -> None:
    run = tmp_path / "run"
    assert main(["train", *TINY, "total_steps=128", f"run_dir={run}"]) == 0
    files = {p.name: p.read_bytes() for p in sorted(run.rglob("*")) if p.is_file()}
    capsys.readouterr()
    with run_dir_lock(run):  # "another process" (another open of the directory)
        assert main(["train", f"resume={run}", "total_steps=256"]) == 2
        out = capsys.readouterr()
        assert "is in use" in out.out + out.err and "Traceback" not in out.out + out.err
    assert {p.name: p.read_bytes() for p in sorted(run.rglob("*")) if p.is_file()} == files
    assert main(["train", f"resume={run}", "total_steps=256"]) == 0  # free again: the resume runs


def test_the_lock_is_held_while_the_run_trains(tmp_path: Path) -> None:
    from seqmarl import train as train_mod

    run = tmp_path / "run"
    seen: list[str] = []

    def probe(iteration, agent, row) -> None:  # a trainer callback, called after every update
        try:
            with run_dir_lock(run):
                seen.append("free")
        except RunDirBusyError:
            seen.append("held")

    train_mod.run_args([*TINY, "total_steps=128", f"run_dir={run}"], callbacks=[probe], say=lambda t: None)
    assert seen and set(seen) == {"held"}
    with run_dir_lock(run):  # and released at the end
        pass


def test_a_sweep_stopped_with_sigterm_stops_its_workers(tmp_path: Path) -> None:
    """`kill SWEEP_PID` (SIGTERM): exit code 130, every worker process gone, nothing marked done; the runs keep their
    checkpoints for the resume. (Before, the workers trained on, orphaned, and a re-run put two trainers on a run.)"""
    out = tmp_path / "sw"
    proc = subprocess.Popen([sys.executable, "-m", "seqmarl", "sweep", "--out", str(out), "--workers", "2",
                             "seed=0:2", *TINY, "total_steps=100000000"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    pids: list[int] = []
    err = ""
    try:
        deadline = time.time() + 120
        while time.time() < deadline and len(_events(out, "first_update")) < 2:
            time.sleep(0.5)
        pids = [e["pid"] for e in _events(out, "start")]
        assert len(pids) == 2 and len(_events(out, "first_update")) == 2, "the workers did not start training"
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
        deadline = time.time() + 10
        while time.time() < deadline and any(_alive(p) for p in pids):
            time.sleep(0.2)
        survivors = [p for p in pids if _alive(p)]
    finally:  # never leave a failed test's processes training on
        if proc.poll() is None:
            proc.kill()
        for pid in pids or [e["pid"] for e in _events(out, "start")]:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
    assert proc.returncode == 130 and "interrupted" in err
    assert not survivors
    assert not list(out.glob("runs/*/done.json"))
    for run in out.glob("runs/*"):
        with run_dir_lock(run):  # nobody holds the runs any more
            pass


def _events(out: Path, event: str) -> list[dict]:
    return [r for f in out.glob("runs/*/attempts.jsonl") for r in map(json.loads, f.read_text().splitlines())
            if r.get("event") == event]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie (exited, not yet reaped) counts as gone
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[-1][0] != "Z"
    except OSError:
        return False
