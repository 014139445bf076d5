"""``seqmarl sweep``: grid expansion (pure), names, run states, the manifest, CLI errors, a real local sweep with a
crash retried from its checkpoint, resume/skip of a finished sweep, failure reporting, and a real Ray sweep."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from seqmarl.cli import main
from seqmarl.sweep import (
    CRASH_ENV,
    SweepError,
    execute_run,
    expand,
    load_or_write_manifest,
    parse_grid,
    read_attempts,
    run_state,
    run_sweep,
    split_values,
)

TINY = ["env=matrix/xor", "total_steps=320", "num_envs=32", "tensorboard=false", "checkpoint_interval=2"]


# ------------------------------------------------------------------------------------------------ grammar
def test_values_ranges_brackets_and_literal_colons() -> None:
    assert split_values("seed", "0:3") == ["0", "1", "2"]  # half-open, as range(0, 3)
    assert split_values("seed", "5,0:2,9") == ["5", "0", "1", "9"]
    assert split_values("algo.hidden", "(64,64),(128,)") == ["(64,64)", "(128,)"]
    assert split_values("device", "cpu,cuda:1") == ["cpu", "cuda:1"]  # not an integer range
    assert split_values("algo.lr", " 5e-4 , 1e-3") == ["5e-4", "1e-3"]


@pytest.mark.parametrize("key, raw, message", [
    ("algo.hidden", '"64,64"', "quote characters are not part of the grid syntax"),
    ("seed", "3:3", "the range 3:3 is empty"),
    ("seed", "0,,1", "empty value"),
    ("seed", "0,0", "the value '0' is listed twice"),
    ("algo.hidden", "64,64", "algo.hidden=(64,64)"),
    ("algo.hidden", "(64,64", "unbalanced brackets"),
])
def test_bad_values_name_the_argument(key: str, raw: str, message: str) -> None:
    with pytest.raises(SweepError, match=None) as info:
        split_values(key, raw)
    assert message in str(info.value) and key in str(info.value)


def test_grid_errors() -> None:
    with pytest.raises(SweepError, match="the key seed is given twice"):
        parse_grid(["seed=0", "seed=1"])
    with pytest.raises(SweepError, match="run_dir cannot be swept"):
        parse_grid(["run_dir=x"])
    with pytest.raises(SweepError, match="expected key=v1,v2"):
        parse_grid(["--oops"])


def test_expansion_order_and_names() -> None:
    points = expand(parse_grid(["algo=happo,mappo", "env=matrix/xor", "seed=0:2", "algo.lr=5e-4", "total_steps=64"]))
    assert [p.name for p in points] == [
        "algo=happo,env=matrix-xor,seed=0", "algo=happo,env=matrix-xor,seed=1",
        "algo=mappo,env=matrix-xor,seed=0", "algo=mappo,env=matrix-xor,seed=1"]  # last key fastest
    assert points[1].overrides() == ["algo=happo", "env=matrix/xor", "seed=1", "algo.lr=5e-4", "total_steps=64"]
    # two values that sanitise alike still get different directories
    a, b = expand(parse_grid(["env.x=a/b,a-b"]))
    assert a.name != b.name and a.name.startswith("env.x=a-b-") and b.name.startswith("env.x=a-b-")
    assert expand(parse_grid(["total_steps=64"]))[0].name == "run"


_value = st.text(alphabet="ab/-_.:(),x0123456789 é", min_size=1, max_size=6).filter(
    lambda v: v.strip() and "," not in v and "(" not in v and ")" not in v and v == v.strip())


@given(st.dictionaries(st.sampled_from(["algo", "env", "seed", "algo.lr", "env.n_agents", "num_envs"]),
                       st.lists(_value, min_size=1, max_size=3, unique=True), min_size=1, max_size=4))
def test_grid_size_is_the_product_and_names_are_unique(grid_spec: dict[str, list[str]]) -> None:
    args = [f"{k}={','.join(v)}" for k, v in grid_spec.items()]
    try:
        grid = parse_grid(args)
    except SweepError:  # an item such as 1:3 expands to a range and may then repeat another value
        return
    points = expand(grid)
    assert len(points) == math.prod(len(v) for _, v in grid)
    assert len({p.name for p in points}) == len(points)
    assert len({p.values for p in points}) == len(points)
    for p in points:
        assert "/" not in p.name and p.name not in (".", "..") and len(p.name) < 250


# ------------------------------------------------------------------------------------------------ states
def test_run_states(tmp_path: Path) -> None:
    assert run_state(tmp_path / "missing") == "new"
    (tmp_path / "r").mkdir()
    assert run_state(tmp_path / "r") == "new"
    (tmp_path / "r" / "config.yaml").write_text("algo: happo\n")
    assert run_state(tmp_path / "r") == "interrupted"
    (tmp_path / "r" / "done.json").write_text("{}")
    assert run_state(tmp_path / "r") == "done"


def test_execute_run_skips_a_finished_run_without_touching_it(tmp_path: Path) -> None:
    run_dir = tmp_path / "r"
    run_dir.mkdir()
    (run_dir / "config.yaml").write_text("algo: happo\n")
    (run_dir / "done.json").write_text(json.dumps({"final": {"episode_return": 0.25}}))
    res = execute_run({"name": "r", "run_dir": str(run_dir), "overrides": ["algo=happo"], "crash": None})
    assert res == {"name": "r", "status": "skipped", "final": {"episode_return": 0.25}}
    assert sorted(p.name for p in run_dir.iterdir()) == ["config.yaml", "done.json"]


def test_manifest_must_match_on_resume(tmp_path: Path) -> None:
    grid = parse_grid(["seed=0:2"])
    load_or_write_manifest(tmp_path, grid, expand(grid))
    load_or_write_manifest(tmp_path, grid, expand(grid))  # the same sweep: fine
    other = parse_grid(["seed=0:3"])
    with pytest.raises(SweepError, match="holds another sweep"):
        load_or_write_manifest(tmp_path, other, expand(other))


# ------------------------------------------------------------------------------------------------ CLI
def test_dry_run_prints_the_grid_and_writes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["sweep", "--dry-run", "algo=happo,mappo,mat", "env=smax/3m", "seed=0:5", "algo.lr=5e-4,1e-3"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("30 run(s) into sweeps/sweep-")
    assert "algo=mat,env=smax-3m,seed=4,algo.lr=1e-3: seqmarl train algo=mat env=smax/3m seed=4 algo.lr=1e-3" in out
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("argv, message", [
    (["sweep", "seed=0,0"], "the value '0' is listed twice"),
    (["sweep", "algo.hidden=\"64,64\""], "quote characters"),
    (["sweep", "resume=x"], "resume cannot be swept"),
    (["sweep", "algo=happo,nope"], "run algo=nope: unknown algo 'nope'"),
    (["sweep", "algo.lr=1e-3,inf"], "algo.lr must be a finite number"),
    (["sweep"], "give the grid as key=v1,v2"),
    (["sweep", "--num-cpus", "2", "seed=0"], "--address and --num-cpus belong to --backend ray"),
])
def test_cli_errors_exit_2(argv: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "sweeps").exists()  # nothing written before the grid is valid


def test_cli_bad_option_value_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["sweep", "--workers", "0", "seed=0"])
    assert info.value.code == 2 and "--workers must be >= 1" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------------ real runs
def _metrics(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def _deterministic(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k not in ("sps", "collect_fraction")} for r in rows]


@pytest.mark.slow  # ~15 s idle, ~40 s on a loaded 2-core machine (process start-up dominates)
def test_local_sweep_retries_from_the_checkpoint_then_skips(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    """2 algorithms x 2 seeds on a 2-process pool; every run's first attempt raises at update 5 (after the
    checkpoint of update 4): the retry resumes at update 5 (not 1), the metrics have each update once and equal
    an uninterrupted run's; running the command again skips every finished run."""
    monkeypatch.setenv(CRASH_ENV, "5")
    out = tmp_path / "sw"
    argv = ["sweep", "--out", str(out), "--workers", "2", "algo=happo,mappo", "seed=0:2", *TINY]
    assert main(argv) == 0
    runs = sorted((out / "runs").iterdir())
    assert [r.name for r in runs] == ["algo=happo,seed=0,env=matrix-xor", "algo=happo,seed=1,env=matrix-xor",
                                      "algo=mappo,seed=0,env=matrix-xor", "algo=mappo,seed=1,env=matrix-xor"]
    for r in runs:
        att = read_attempts(r)
        assert [a["event"] for a in att] == ["start", "first_update", "end", "start", "first_update", "end"]
        assert att[2]["status"] == "crashed" and att[3]["resume"] is True
        assert att[1]["iteration"] == 1 and att[4]["iteration"] == 5  # resumed from the checkpoint at update 4
        assert [m["iteration"] for m in _metrics(r)] == list(range(1, 11))
        assert (r / "done.json").is_file()
    summary = json.loads((out / "summary.json").read_text())
    assert [x["status"] for x in summary["results"]] == ["done"] * 4 and all(x["attempts"] == 2 for x in summary["results"])
    # the resumed run reproduces the uninterrupted run exactly (the trainer restores RNG and env state)
    monkeypatch.delenv(CRASH_ENV)
    ref = tmp_path / "ref"
    assert main(["train", f"run_dir={ref}", "algo=happo", "seed=1", "progress=false", *TINY]) == 0
    assert _deterministic(_metrics(runs[1])) == _deterministic(_metrics(ref))
    # the same command again: nothing runs, every run is skipped
    capsys.readouterr()
    before = [(r / "attempts.jsonl").read_text() for r in runs]
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert "4 skipped" in captured.out and "4 already finished, 0 to run" in captured.err  # no worker started
    assert [(r / "attempts.jsonl").read_text() for r in runs] == before
    assert main(["sweep", "--out", str(out)]) == 0  # no grid: the manifest's grid
    assert "4 skipped" in capsys.readouterr().out
    # an interrupted run (no done.json) is continued with resume=, the finished ones are skipped
    (runs[0] / "done.json").unlink()
    results = run_sweep(parse_grid(argv[5:]), out, workers=1, say=lambda t: None)
    assert [r["status"] for r in results] == ["done", "skipped", "skipped", "skipped"]
    last_start = [a for a in read_attempts(runs[0]) if a["event"] == "start"][-1]
    assert last_start["resume"] is True and last_start["attempt"] == 3


def test_a_run_that_keeps_failing_is_reported_and_the_exit_code_is_1(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv(CRASH_ENV, "2:exit")  # the worker process dies: the pool breaks
    out = tmp_path / "sw"
    assert main(["sweep", "--out", str(out), "--workers", "1", "--retries", "0", "algo=happo", "seed=0",
                 "env=matrix/xor", "total_steps=64", "num_envs=32", "tensorboard=false"]) == 1
    text = capsys.readouterr().out
    assert "failed" in text and "BrokenProcessPool" in text
    assert json.loads((out / "summary.json").read_text())["results"][0]["status"] == "failed"


@pytest.mark.slow
def test_ray_sweep_retries_a_dead_worker_from_the_checkpoint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A real Ray runtime (ray.init(num_cpus=2), dashboard off): every run's worker process dies at update 5;
    Ray re-runs the task (max_retries) and the re-run resumes from the checkpoint of update 4."""
    pytest.importorskip("ray")
    monkeypatch.setenv(CRASH_ENV, "5:exit")
    out = tmp_path / "sw"
    results = run_sweep(parse_grid(["algo=happo", "seed=0:2", *TINY]), out, backend="ray", num_cpus=2,
                        say=lambda t: None)
    assert [r["status"] for r in results] == ["done", "done"]
    for r in sorted((out / "runs").iterdir()):
        att = read_attempts(r)
        starts = [a for a in att if a["event"] == "start"]
        firsts = [a["iteration"] for a in att if a["event"] == "first_update"]
        assert [s["resume"] for s in starts] == [False, True] and firsts == [1, 5]
        assert [m["iteration"] for m in _metrics(r)] == list(range(1, 11))
    import ray

    assert not ray.is_initialized()  # the sweep started its own runtime and shut it down
