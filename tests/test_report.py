"""``seqmarl report``: the parts that are our code (grouping, metric choice, final window, the common step grid and
its interpolation, per-env normalisation, the marl-eval layout, the wiring into rliable) against hand computations.
rliable itself is not re-tested; only that what we report is what its estimators give on our inputs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import scipy.stats
import yaml

pytest.importorskip("rliable")

from seqmarl.cli import main  # noqa: E402
from seqmarl.report import (  # noqa: E402
    ReportError,
    Run,
    build_report,
    interpolate,
    load_runs,
    marl_eval_data,
    normalisation_bounds,
    group_runs,
    parse_normalise,
    split_env,
    step_grid,
    write_report,
)


def write_run(root: Path, name: str, algo: str, env: str, seed: int, steps: list[int], values: list[float],
              key: str = "episode_return", done: bool = True, extra: dict | None = None) -> Path:
    d = root / "runs" / name
    d.mkdir(parents=True)
    (d / "config.yaml").write_text(yaml.safe_dump({"algo": algo, "env": env, "seed": seed}))
    rows = [{"iteration": i + 1, "env_steps": s, key: v, **(extra or {})} for i, (s, v) in enumerate(zip(steps, values))]
    (d / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    if done:
        (d / "done.json").write_text("{}")
    return d


def run(steps, values, env="e", label="a", seed=0) -> Run:
    return Run(f"{label}{seed}", label, env, seed, np.asarray(steps, float), np.asarray(values, float))


def test_step_grid_and_interpolation_by_hand() -> None:
    a = run([0, 10, 20], [0.0, 1.0, 4.0])
    b = run([5, 15, 25], [2.0, 2.0, 0.0], seed=1)
    grid = step_grid([a, b], points=50)
    # lo = max first step = 5, hi = min last step = 20, G = min(50, 3 logged points) = 3
    np.testing.assert_array_equal(grid, [5.0, 12.5, 20.0])
    np.testing.assert_allclose(interpolate(a, grid), [0.5, 1.75, 4.0])  # linear between logged steps
    np.testing.assert_allclose(interpolate(b, grid), [2.0, 2.0, 1.0])
    assert step_grid([a, b], points=2).tolist() == [5.0, 20.0]
    assert step_grid([run([0, 1], [0, 0]), run([5, 6], [0, 0], seed=1)], 10) is None  # no shared step range


def test_grouping_and_labels_from_the_manifest(tmp_path: Path) -> None:
    manifest = {"grid": [["algo", ["happo", "mappo"]], ["algo.lr", ["5e-4", "1e-3"]], ["seed", ["0", "1"]]],
                "runs": []}
    for algo in ("happo", "mappo"):
        for lr in ("5e-4", "1e-3"):
            for seed in (1, 0):
                name = f"algo={algo},algo.lr={lr},seed={seed}"
                manifest["runs"].append({"name": name, "overrides": [f"algo={algo}", f"algo.lr={lr}", f"seed={seed}"]})
                write_run(tmp_path, name, algo, "matrix/xor", seed, [1, 2], [seed, seed + 1.0])
    (tmp_path / "sweep.json").write_text(json.dumps(manifest))
    runs, metric, notes = load_runs(tmp_path)
    assert metric == "episode_return" and notes == []
    groups = group_runs(runs)
    assert list(groups) == ["matrix/xor"]
    assert sorted(groups["matrix/xor"]) == ["happo[algo.lr=1e-3]", "happo[algo.lr=5e-4]", "mappo[algo.lr=1e-3]",
                                            "mappo[algo.lr=5e-4]"]
    assert [r.seed for r in groups["matrix/xor"]["happo[algo.lr=5e-4]"]] == [0, 1]  # seeds are the runs, sorted


def test_labels_with_two_swept_keys_have_no_comma(tmp_path: Path) -> None:
    """marl-eval's DiagnoseData refuses algorithm names that contain a comma."""
    manifest = {"grid": [["algo", ["happo"]], ["algo.lr", ["1", "2"]], ["algo.clip_param", ["0.1", "0.2"]]],
                "runs": [{"name": "r", "overrides": ["algo=happo", "algo.lr=1", "algo.clip_param=0.2"]}]}
    write_run(tmp_path, "r", "happo", "e", 0, [1], [1.0])
    (tmp_path / "sweep.json").write_text(json.dumps(manifest))
    assert load_runs(tmp_path)[0][0].label == "happo[algo.lr=1;algo.clip_param=0.2]"


def test_unfinished_runs_are_left_out_unless_asked(tmp_path: Path) -> None:
    write_run(tmp_path, "r0", "happo", "e", 0, [1], [1.0])
    write_run(tmp_path, "r1", "happo", "e", 1, [1], [2.0], done=False)
    runs, _, notes = load_runs(tmp_path)
    assert [r.name for r in runs] == ["r0"] and "r1: not finished" in notes[0]
    assert len(load_runs(tmp_path, include_unfinished=True)[0]) == 2


def test_metric_auto_prefers_the_greedy_evaluation_and_drops_non_finite_rows(tmp_path: Path) -> None:
    d = write_run(tmp_path, "r0", "happo", "e", 0, [1, 2, 3], [0.1, 0.2, 0.3])
    rows = [json.loads(line) for line in (d / "metrics.jsonl").read_text().splitlines()]
    rows[0]["episode_return"] = float("nan")
    rows[2]["eval_return_greedy"] = 0.9
    (d / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    runs, metric, _ = load_runs(tmp_path)
    assert metric == "eval_return_greedy" and runs[0].steps.tolist() == [3.0] and runs[0].values.tolist() == [0.9]
    runs, metric, _ = load_runs(tmp_path, metric="episode_return")
    assert runs[0].steps.tolist() == [2.0, 3.0]  # the NaN row is dropped
    with pytest.raises(ReportError, match="--metric nope: run r0 has no finite values"):
        load_runs(tmp_path, metric="nope")


def test_iqm_equals_the_25_percent_trimmed_mean_and_final_window(tmp_path: Path) -> None:
    finals = [3.0, -1.0, 7.0, 2.0, 10.0, 0.0, 5.0, 4.0]  # 8 runs: IQM = mean of the middle 4 sorted values
    runs = [run([1, 2, 3], [100.0, f - 1.0, f + 1.0], seed=i) for i, f in enumerate(finals)]
    rep = build_report(runs, "episode_return", reps=20)
    e = rep["final"]["e"]["a"]
    x = np.array([f + 1.0 for f in finals])
    assert e["iqm"][0] == pytest.approx(scipy.stats.trim_mean(x, 0.25))
    assert e["iqm"][0] == pytest.approx(np.mean(np.sort(x)[2:6]))
    assert e["mean"][0] == pytest.approx(x.mean()) and e["median"][0] == pytest.approx(np.median(x))
    assert e["iqm"][1] <= e["iqm"][0] <= e["iqm"][2]
    rep2 = build_report(runs, "episode_return", final_window=2, reps=20)
    assert rep2["final"]["e"]["a"]["scores"] == pytest.approx(list(np.array(finals)))  # mean of f-1 and f+1


def test_normalisation_minmax_and_given_bounds() -> None:
    runs = [run([1, 2], [2.0, 4.0], env="e1"), run([1, 2], [6.0, 3.0], env="e1", seed=1),
            run([1, 2], [10.0, 30.0], env="e2", label="a"), run([1, 2], [20.0, 50.0], env="e2", seed=1)]
    groups = group_runs(runs)
    b = normalisation_bounds(groups, *parse_normalise(None))
    assert b == {"e1": (2.0, 6.0, "minmax"), "e2": (10.0, 50.0, "minmax")}  # every logged value, not only finals
    b = normalisation_bounds(groups, *parse_normalise(["e2=0:100"]))
    assert b["e2"] == (0.0, 100.0, "given") and b["e1"][2] == "minmax"
    rep = build_report(runs, "episode_return", ["e2=0:100"], reps=20)
    assert rep["final"]["e1"]["a"]["normalised_scores"] == pytest.approx([(4 - 2) / 4, (3 - 2) / 4])
    assert rep["final"]["e2"]["a"]["normalised_scores"] == pytest.approx([0.3, 0.5])
    # across envs: the runs x envs matrix of normalised finals; mean over its 4 entries
    assert rep["aggregate"]["a"]["mean"][0] == pytest.approx(np.mean([0.5, 0.25, 0.3, 0.5]))
    with pytest.raises(ReportError, match="--normalise 'e1=3:1'"):
        parse_normalise(["e1=3:1"])
    with pytest.raises(ReportError, match="no run used"):
        normalisation_bounds(groups, *parse_normalise(["nope=0:1"]))


def test_probability_of_improvement_is_of_x_over_y() -> None:
    # x = [1, 4, 5], y = [2, 3]: pairs with x > y are 4>2, 4>3, 5>2, 5>3 -> 4/6
    runs = [run([1], [v], label="x", seed=i) for i, v in enumerate([1.0, 4.0, 5.0])]
    runs += [run([1], [v], label="y", seed=i) for i, v in enumerate([2.0, 3.0])]
    rep = build_report(runs, "episode_return", reps=20)
    assert rep["probability_of_improvement"]["x > y"][0] == pytest.approx(4 / 6)
    assert rep["probability_of_improvement"]["y > x"][0] == pytest.approx(2 / 6)
    prof = rep["performance_profile"]
    k = prof["taus"].index(0.5)  # normalised by minmax [1, 5]: x -> 0, .75, 1 ; y -> .25, .5
    assert prof["x"]["profile"][k] == pytest.approx(2 / 3) and prof["y"]["profile"][k] == pytest.approx(0.0)


def test_learning_curve_is_the_iqm_over_runs_at_each_grid_step() -> None:
    runs = [run([0, 10, 30], [0.0, 4.0 * c, 8.0 * c], seed=i) for i, c in enumerate([0, 1, 2, 10])]
    rep = build_report(runs, "episode_return", points=50, reps=20)
    c = rep["curves"]["e"]
    assert c["steps"] == [0.0, 15.0, 30.0]  # G = min(50, 3 logged points)
    # at step 15 run c is at 4c + (5/20) 4c = 5c: 0, 5, 10, 50 -> IQM = mean of the middle two = 7.5 (mean 16.25);
    # at 30: 0, 8, 16, 80 -> 12
    assert c["a"]["iqm"] == pytest.approx([0.0, 7.5, 12.0])
    assert all(lo <= m <= hi for lo, m, hi in zip(c["a"]["ci_low"], c["a"]["iqm"], c["a"]["ci_high"]))


def test_marl_eval_layout() -> None:
    runs = [run([0, 10, 20], [0.0, 1.0, 2.0], env="smax/3m", label=lab, seed=s) for lab in ("happo", "mat") for s in (0, 1)]
    runs += [run([0, 10, 20], [1.0, 1.0, 3.0], env="bridge", label="happo", seed=0)]
    data = marl_eval_data(build_report(runs, "episode_return", points=3, reps=10))
    assert split_env("smax/3m") == ("smax", "3m") and split_env("bridge") == ("bridge", "bridge")
    assert set(data) == {"smax", "bridge"} and set(data["smax"]) == {"3m"} and set(data["smax"]["3m"]) == {"happo", "mat"}
    n_steps = set()
    for env, tasks in data.items():
        for task, algos in tasks.items():
            for algo, runs_ in algos.items():
                assert list(runs_) == [f"run_{i}" for i in range(len(runs_))]
                for r in runs_.values():
                    keys = list(r)
                    assert keys[-1] == "absolute_metrics"  # marl-eval reads the last key as the absolute metrics
                    assert keys[:-1] == [f"step_{k}" for k in range(len(keys) - 1)]
                    n_steps.add(len(keys) - 1)
                    for k in keys[:-1]:
                        assert isinstance(r[k]["step_count"], int)
                        assert isinstance(r[k]["return"], list) and len(r[k]["return"]) == 1
                    assert isinstance(r["absolute_metrics"]["return"][0], float)
    assert n_steps == {3}  # every run on the same step grid
    assert data["smax"]["3m"]["mat"]["run_1"]["step_1"] == {"step_count": 10, "return": [1.0]}
    assert data["bridge"]["bridge"]["happo"]["run_0"]["absolute_metrics"] == {"return": [3.0]}
    json.dumps(data)


def test_cli_writes_every_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for algo in ("happo", "mappo"):
        for seed in range(3):
            write_run(tmp_path, f"{algo}{seed}", algo, "matrix/xor", seed, [32, 64, 96],
                      [0.5, 0.6 + 0.1 * seed, 0.7 + (0.2 if algo == "happo" else 0.0)])
    assert main(["report", str(tmp_path), "--reps", "20"]) == 0
    out = tmp_path / "report"
    for f in ("report.md", "report.json", "marl_eval.json", "curves.png", "aggregate.png", "performance_profile.png",
              "probability_of_improvement.png"):
        assert (out / f).is_file() and (out / f).stat().st_size > 0, f
    md = (out / "report.md").read_text()
    assert "| happo | 3 | 0.900 [0.900, 0.900]" in md and "happo > mappo | 1.000" in md
    assert json.loads((out / "report.json").read_text())["metric"] == "episode_return"


@pytest.mark.parametrize("argv, message", [
    (["--normalise", "x=1"], "--normalise 'x=1'"),
    (["--metric", "nope"], "--metric nope"),
    (["--bogus"], "unrecognised arguments: --bogus"),
])
def test_cli_errors_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str) -> None:
    write_run(tmp_path, "r0", "happo", "matrix/xor", 0, [1], [1.0])
    assert main(["report", str(tmp_path), "--reps", "5", *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_cli_missing_dir_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", str(tmp_path / "nope")]) == 2
    assert "is not a directory" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["report", str(tmp_path / "empty")]) == 2
    assert "no finished runs" in capsys.readouterr().err


def test_write_report_returns_what_it_wrote(tmp_path: Path) -> None:
    write_run(tmp_path, "r0", "happo", "matrix/xor", 0, [1, 2], [1.0, 2.0])
    rep = write_report(tmp_path, reps=5)
    saved = json.loads((Path(rep["out"]) / "report.json").read_text())
    assert saved["final"] == rep["final"]


def test_confidence_intervals_are_reproducible_whatever_the_global_rng_state() -> None:
    """rliable resamples with numpy's global RNG; the report seeds it (--seed) and restores it."""
    runs = [run([1, 2], [0.0, v], seed=i) for i, v in enumerate([1.0, 2.0, 5.0, 3.0, 9.0])]
    runs += [run([1, 2], [0.0, v], label="b", seed=i) for i, v in enumerate([2.0, 2.5, 4.0, 1.0, 6.0])]
    reports = []
    for outer in (1, 2):
        np.random.seed(outer)
        reports.append(build_report(runs, "episode_return", reps=50, seed=0))
        after = np.random.random()
        np.random.seed(outer)
        assert after == np.random.random()  # the caller's RNG state is restored
    for key in ("final", "curves", "aggregate", "probability_of_improvement", "performance_profile"):
        assert reports[0][key] == reports[1][key], key


def _config_sweep(root: Path, configs_algos: list[tuple[str, str]], env: str = "e") -> None:
    """A sweep that swept ``config=`` (no algo override): the algorithm comes from each run's config.yaml."""
    manifest = {"grid": [["config", [c for c, _ in configs_algos]], ["seed", ["0", "1"]]], "runs": []}
    for config, algo in configs_algos:
        for seed in (0, 1):
            name = f"config={config},seed={seed}"
            manifest["runs"].append({"name": name, "overrides": [f"config={config}", f"seed={seed}"]})
            write_run(root, name, algo, env, seed, [1, 2], [seed, seed + 1.0])
    (root / "sweep.json").write_text(json.dumps(manifest))


def test_a_swept_config_labels_runs_by_their_algorithm(tmp_path: Path) -> None:
    _config_sweep(tmp_path, [("mat-x", "mat"), ("happo-x", "happo")])
    groups = group_runs(load_runs(tmp_path)[0])
    assert sorted(groups["e"]) == ["happo", "mat"] and all(len(v) == 2 for v in groups["e"].values())


def test_two_configs_of_one_algorithm_stay_apart(tmp_path: Path) -> None:
    _config_sweep(tmp_path, [("happo-a", "happo"), ("happo-b", "happo")])
    groups = group_runs(load_runs(tmp_path)[0])
    assert sorted(groups["e"]) == ["happo[config=happo-a]", "happo[config=happo-b]"]


def test_several_sweeps_are_reported_together(tmp_path: Path, capsys) -> None:
    one, two = tmp_path / "one", tmp_path / "two"
    _config_sweep(one, [("mat-x", "mat"), ("happo-x", "happo")])
    manifest = {"grid": [["algo", ["mappo"]], ["seed", ["0", "1"]]], "runs": []}
    for seed in (0, 1):
        name = f"algo=mappo,seed={seed}"
        manifest["runs"].append({"name": name, "overrides": ["algo=mappo", f"seed={seed}"]})
        write_run(two, name, "mappo", "e", seed, [1, 2], [seed, 2.0])
    (two / "sweep.json").write_text(json.dumps(manifest))
    runs, _, _ = load_runs([one, two])
    assert sorted(group_runs(runs)["e"]) == ["happo", "mappo", "mat"]
    assert {r.name for r in runs} >= {"one/config=mat-x,seed=0", "two/algo=mappo,seed=1"}
    with pytest.raises(ReportError, match="--out"):
        write_report([one, two], reps=5)
    assert main(["report", str(one), str(two), "--reps", "5"]) == 2 and "--out" in capsys.readouterr().err
    assert main(["report", str(one), str(two), "--reps", "5", "--out", str(tmp_path / "rep")]) == 0
    assert (tmp_path / "rep" / "report.md").is_file()


def _settings_run(root: Path, name: str, seed: int, algo_kwargs: dict, **top) -> None:
    d = write_run(root, name, "mappo", "smax/3m", seed, [1, 2], [seed, seed + 1.0])
    cfg = {"algo": "mappo", "env": "smax/3m", "seed": seed, "run_dir": str(d), "progress": False,
           "algo_kwargs": algo_kwargs, "env_kwargs": {"episode_limit": 101}, **top}
    (d / "config.yaml").write_text(yaml.safe_dump(cfg))


def test_runs_of_one_algorithm_with_different_settings_are_reported_apart(tmp_path: Path) -> None:
    """Two sweeps of MAPPO on one env, one with ppo_epoch 15: not six seeds of one experiment."""
    a, b = tmp_path / "default", tmp_path / "ep15"
    for seed in (0, 1, 2):
        _settings_run(a, f"seed={seed}", seed, {"ppo_epoch": 5, "lr": 5e-4, "hidden": [128, 128]})
        _settings_run(b, f"seed={seed}", seed, {"ppo_epoch": 15, "lr": 5e-4, "hidden": [128, 128]})
    runs, _, notes = load_runs([a, b])
    groups = group_runs(runs)["smax/3m"]
    assert sorted(groups) == ["mappo[algo.ppo_epoch=15]", "mappo[algo.ppo_epoch=5]"]
    assert all([r.seed for r in g] == [0, 1, 2] for g in groups.values())
    assert not any("repeats seed" in n for n in notes)


def test_settings_tags_name_every_differing_key_and_ignore_bookkeeping(tmp_path: Path) -> None:
    _settings_run(tmp_path, "x", 0, {"hidden": [64, 64], "use_rnn": False}, total_steps=10**6, log_interval=5)
    _settings_run(tmp_path, "y", 1, {"hidden": [128, 128], "use_rnn": True}, total_steps=2 * 10**6, log_interval=9)
    labels = sorted(group_runs(load_runs(tmp_path)[0])["smax/3m"])
    assert labels == ["mappo[algo.hidden=128/128;algo.use_rnn=true;total_steps=2000000]",
                      "mappo[algo.hidden=64/64;algo.use_rnn=false;total_steps=1000000]"]


def test_a_repeated_seed_with_the_same_settings_is_noted(tmp_path: Path) -> None:
    a, b = tmp_path / "one", tmp_path / "two"
    _settings_run(a, "s0", 0, {"ppo_epoch": 5})
    _settings_run(b, "s0", 0, {"ppo_epoch": 5})
    runs, _, notes = load_runs([a, b])
    assert len(group_runs(runs)["smax/3m"]["mappo"]) == 2
    assert any("two/s0 repeats seed 0 of one/s0" in n for n in notes)
