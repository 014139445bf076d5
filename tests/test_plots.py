"""``return.png`` and ``validation.png`` (issue 13), checked on the matplotlib figure objects: titles, labels,
the data of each curve and the J* / J*_share lines against the oracle."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from seqmarl import plots
from seqmarl.config import parse_overrides
from seqmarl.theory import games, optima
from seqmarl.train import run
from seqmarl.validate import ValidationReport


def _lines(ax) -> dict[str, object]:
    return {line.get_label(): line for line in ax.get_lines()}


def _label(lines: dict[str, object], prefix: str):
    found = [line for label, line in lines.items() if label.startswith(prefix)]
    assert len(found) == 1, (prefix, list(lines))
    return found[0]


def test_return_figure_title_eval_curves_and_optimum_lines() -> None:
    game = games.xor(4)
    j_star, j_share = plots.tabular_optima(game)
    assert j_star == optima.joint_optimum(game).value == 1.0
    assert j_share == pytest.approx(optima.shared_optimum(game).value) and j_share == pytest.approx(2 / 2**4)
    rows = [{"env_steps": 64 * k, "episode_return": 0.1 + 0.01 * k} for k in range(1, 21)]
    for k in (4, 9, 14, 19):
        rows[k].update(eval_return_stochastic=0.2 + k / 100, eval_return_greedy=0.3 + k / 100)
    fig = plots.return_figure(rows, algo="happo", env="matrix/xor", seed=7, j_star=j_star, j_star_share=j_share)
    (ax,) = fig.axes
    assert ax.get_title() == "happo on matrix/xor (seed 7)"
    lines = _lines(ax)
    train = _label(lines, "training return")
    assert list(train.get_ydata()) == [r["episode_return"] for r in rows]
    stochastic, greedy = _label(lines, "eval return (stochastic)"), _label(lines, "eval return (greedy)")
    assert list(stochastic.get_xdata()) == [64 * (k + 1) for k in (4, 9, 14, 19)]
    assert list(greedy.get_ydata()) == [0.3 + k / 100 for k in (4, 9, 14, 19)]
    assert set(_label(lines, "J* (").get_ydata()) == {1.0}
    assert set(_label(lines, "J*_share (").get_ydata()) == {j_share}
    assert {label for label in ax.get_legend_handles_labels()[1]} == set(lines)


def test_coinciding_optima_are_one_line_and_multi_step_games_get_none() -> None:
    j_star, j_share = plots.tabular_optima(games.climbing())
    assert j_star == j_share == 11.0
    fig = plots.return_figure([{"env_steps": 1, "episode_return": 0.0}], algo="mappo", env="matrix/climbing",
                              seed=0, j_star=j_star, j_star_share=j_share)
    lines = _lines(fig.axes[0])
    assert set(_label(lines, "J* = J*_share").get_ydata()) == {11.0}
    assert not [label for label in lines if label.startswith(("J* (", "J*_share ("))]
    multi = games.random_game(np.random.default_rng(0), 2, [2, 2], 3, gamma=0.9)
    assert plots.tabular_optima(multi) == (None, None)  # undiscounted episode return is not on J's scale


def test_run_draws_return_png_with_title_eval_curve_and_oracle_lines(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    figures = []
    build = plots.return_figure
    monkeypatch.setattr(plots, "return_figure", lambda *a, **k: figures.append(build(*a, **k)) or figures[-1])
    run(parse_overrides(["algo=happo", "env=matrix/xor", "seed=3", "num_envs=8", "total_steps=48", "eval_interval=2",
                         "eval_episodes=4", "algo.hidden=8", "progress=false", "tensorboard=false",
                         f"run_dir={tmp_path / 'r'}"]))
    assert (tmp_path / "r" / "return.png").stat().st_size > 0
    (fig,) = figures
    ax = fig.axes[0]
    assert ax.get_title() == "happo on matrix/xor (seed 3)"
    lines = _lines(ax)
    assert len(_label(lines, "eval return (greedy)").get_xdata()) == 3  # updates 2, 4, 6
    assert len(_label(lines, "training return").get_xdata()) == 6
    game = games.xor(2)
    assert set(_label(lines, "J* (").get_ydata()) == {optima.joint_optimum(game).value}
    assert list(_label(lines, "J*_share (").get_ydata()) == pytest.approx([optima.shared_optimum(game).value] * 2)


def _report(j_share: float | None) -> ValidationReport:
    rng = np.random.default_rng(0)
    returns = list(np.cumsum(np.abs(rng.normal(0.002, 0.001, 60))))
    for k, drop in ((10, 1e-4), (20, 3e-4), (30, 2e-5), (40, 0.02), (50, 0.1)):
        returns[k] = returns[k - 1] - drop
        returns[k + 1 :] = [j - drop for j in returns[k + 1 :]]
    return ValidationReport(algo="hatrpo", env="matrix/xor", seed=2, j_star=1.0, j_star_share=j_share,
                            returns=returns, entropies=list(np.linspace(1.3, 0.1, 60)),
                            nash_gaps=list(np.linspace(0.5, 0.0, 60)))


def _axis(fig, start: str):
    found = [ax for ax in fig.axes if ax.get_title().startswith(start)]
    assert len(found) == 1, [ax.get_title() for ax in fig.axes]
    return found[0]


def test_validation_figure_panels_and_the_size_of_violations() -> None:
    report = _report(0.5)
    fig = plots.validation_figure(report)
    assert fig._suptitle.get_text().startswith("hatrpo on matrix/xor (seed 2)")
    ax_j = _axis(fig, "exact return")
    lines = _lines(ax_j)
    assert list(_label(lines, "exact J").get_ydata()) == report.returns
    assert set(_label(lines, "J* (").get_ydata()) == {1.0}
    assert set(_label(lines, "J*_share (").get_ydata()) == {0.5}
    # only the two falls above the tolerance are marked on the J curve
    (marked,) = ax_j.collections
    assert sorted(marked.get_offsets()[:, 0].tolist()) == [40, 50]

    ax_drop = _axis(fig, "monotonicity violations")
    assert ax_drop.get_yscale() == "log"
    assert set(_label(_lines(ax_drop), "tolerance 0.0005").get_ydata()) == {5e-4}
    by_label = {c.get_label(): c for c in ax_drop.collections}
    tolerable = by_label["≤ 0.0005: tolerable (3)"]
    alarming = by_label["> 0.0005 (2)"]
    assert sorted(tolerable.get_offsets()[:, 1].tolist()) == pytest.approx([2e-5, 1e-4, 3e-4])
    assert sorted(alarming.get_offsets()[:, 1].tolist()) == pytest.approx([0.02, 0.1])
    grey, red = tolerable.get_facecolor()[0], alarming.get_facecolor()[0]
    assert grey[0] == grey[1] == grey[2] and red[0] > 0.7 > red[2]

    nash = _axis(fig, "Nash gap")
    assert list(_label(_lines(nash), "exact Nash gap").get_ydata()) == report.nash_gaps
    assert set(_label(_lines(nash), "ε = 0.05").get_ydata()) == {0.05}
    entropy = _axis(fig, "policy entropy")
    assert list(_label(_lines(entropy), "policy entropy").get_ydata()) == report.entropies


def test_validation_figure_tells_coinciding_optima_apart() -> None:
    fig = plots.validation_figure(_report(1.0))
    lines = _lines(_axis(fig, "exact return"))
    assert set(_label(lines, "J* = J*_share").get_ydata()) == {1.0}
    assert not [label for label in lines if label.startswith(("J* (", "J*_share ("))]
    monotone = ValidationReport(algo="happo", env="matrix/xor", seed=0, j_star=1.0, j_star_share=0.5,
                                returns=[0.1, 0.2, 0.3], entropies=[1.0, 0.9, 0.8], nash_gaps=[0.3, 0.2, 0.1])
    ax_drop = _axis(plots.validation_figure(monotone), "monotonicity violations")
    assert not ax_drop.collections and [t.get_text() for t in ax_drop.texts] == ["J never fell"]
