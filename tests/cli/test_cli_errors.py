"""CLI errors are one message with exit 2 and no traceback; bare `train` prints usage; `validate` on a
non-tabular env fails before creating a directory (issue 13)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from seqmarl.cli import main

CASES = [
    (["train", "num_envs=0"], "num_envs must be an integer >= 1"),
    (["train", "total_steps=0"], "total_steps must be an integer >= 1"),
    (["train", "seed=-1"], "seed must be an integer >= 0"),
    (["train", "checkpoint_interval=0"], "checkpoint_interval must be an integer >= 1"),
    (["train", "env.n_agents=3"], "n must be even"),
    (["train", "device=tpu"], "device must name a torch device"),
    (["train", "rollout_length=0"], "rollout_length must be an integer >= 1"),
    (["train", "update_threads=0"], "update_threads must be an integer >= 1"),
    (["train", "run_dir="], "run_dir must not be empty"),
    (["train", "algo.hidden=64,,64"], "algo.hidden expects a comma-separated list"),
    (["train", "algo.hidden="], "algo.hidden expects a comma-separated list"),
    (["train", "algo.lr=inf"], "algo.lr must be a finite number"),
    (["train", "algo.entropy_coef=nan"], "algo.entropy_coef must be a finite number"),
    (["train", "algo.ppo_epoch=2.5"], "algo.ppo_epoch expects a value of type int"),
    (["train", "num_envs=10000000000"], "num_envs=10000000000 is over the limit"),
    (["train", "env.n_agents=40"], "would need 16,384.0 GiB"),
    (["verify", "--only", "no_such_check"], "unknown check"),
]


@pytest.mark.parametrize("argv, message", CASES, ids=[" ".join(a) for a, _ in CASES])
def test_errors_print_a_message_and_exit_2(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    out = capsys.readouterr()
    assert message in out.out + out.err
    assert "Traceback" not in out.out + out.err


def test_run_dir_that_is_a_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "f"
    target.write_text("x")
    assert main(["train", f"run_dir={target}"]) == 2
    assert "is a file, not a directory" in capsys.readouterr().out
    assert target.read_text() == "x"


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_without_cuda_is_explained(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", "device=cuda"]) == 2
    out = capsys.readouterr().out
    assert ("has no CUDA support" in out) or ("no CUDA device is visible" in out)


def test_bare_train_prints_usage(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    for command in ("train", "validate"):
        assert main([command]) == 2
        assert f"usage: seqmarl {command} key=value" in capsys.readouterr().out
    assert not (tmp_path / "runs").exists()


def test_validate_non_tabular_fails_before_creating_a_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "deep" / "v"
    assert main(["validate", "env=bridge", f"run_dir={target}", "progress=false"]) == 2
    assert "validate needs a tabular env" in capsys.readouterr().out
    assert list(tmp_path.iterdir()) == []


def test_read_only_run_dir_parent(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """A run_dir whose nearest existing parent is not writable: message, exit 2, nothing created. Permissions are
    simulated through ``os.access`` (the test may run as root, for whom chmod does not deny writes)."""
    import os

    locked = tmp_path / "locked"
    locked.mkdir()
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: False if Path(p) == locked else real_access(p, mode))
    assert main(["train", f"run_dir={locked / 'run'}"]) == 2
    out = capsys.readouterr().out
    assert "is not writable" in out and "Traceback" not in out
    assert list(locked.iterdir()) == []
