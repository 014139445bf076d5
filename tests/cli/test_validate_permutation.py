"""`seqmarl validate` on the permutation game draws the joint heat map and the per-agent conditional entropies
against log(n - k + 1) (issue 9 §5), from the exact joint table."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from matplotlib.image import AxesImage

from seqmarl import plots
from seqmarl.cli import main
from seqmarl.theory.conditional_entropy import conditional_entropies, permutation_ceiling

SMALL = ["num_envs=32", "algo.hidden=16,16", "algo.lr=5e-3", "tensorboard=false", "progress=false"]


def _joint_from_heatmap(numbers: dict) -> np.ndarray:
    n = numbers["n_agents"]
    return np.asarray(numbers["heatmap"]).reshape((n,) * n)


@pytest.mark.parametrize("algo, extra", [("ar_mappo", ["algo.ar_order=fixed", "algo.agent_id=true"]),
                                         ("mappo", ["algo.share_param=false"])])
def test_validate_writes_the_permutation_pictures(algo: str, extra: list[str], tmp_path: Path, capsys) -> None:
    run_dir = tmp_path / algo
    rc = main(["validate", f"algo={algo}", "env=matrix/permutation", "env.n_agents=4", "total_steps=320",
               f"run_dir={run_dir}", *SMALL, *extra])
    out = capsys.readouterr().out
    assert rc == 0, out
    for name in plots.PERMUTATION_FILES:
        assert (run_dir / name).is_file() and (run_dir / name).stat().st_size > 0, name
        assert str(run_dir / name) in out  # listed under "written:"
    numbers = json.loads((run_dir / "permutation.json").read_text())
    report = json.loads((run_dir / "validation.json").read_text())
    p = _joint_from_heatmap(numbers)
    assert np.asarray(numbers["heatmap"]).shape == (16, 16) and numbers["heatmap_rows_agents"] == [0, 1]
    assert p.sum() == pytest.approx(1.0, abs=1e-9)
    assert numbers["order"] == [0, 1, 2, 3]
    np.testing.assert_allclose(numbers["ceiling"], np.log([4, 3, 2, 1]), atol=0)
    np.testing.assert_allclose(numbers["conditional_entropy"], conditional_entropies(p), atol=1e-12)
    # the same exact policy as the oracle's: J = P(all actions distinct), joint entropy = sum of the h_k
    assert numbers["mass_on_permutations"] == pytest.approx(report["returns"][-1], abs=1e-9)
    assert numbers["joint_entropy"] == pytest.approx(report["entropies"][-1], abs=1e-9)
    assert numbers["joint_entropy"] == pytest.approx(sum(numbers["conditional_entropy"]), abs=1e-12)
    if algo == "mappo":  # a product policy: h_k are the marginal entropies
        marginals = [p.sum(axis=tuple(j for j in range(4) if j != i)) for i in range(4)]
        np.testing.assert_allclose(numbers["conditional_entropy"],
                                   [-(m * np.log(m)).sum() for m in marginals], atol=1e-9)


def test_no_permutation_pictures_on_other_games(tmp_path: Path, capsys) -> None:
    run_dir = tmp_path / "climbing"
    assert main(["validate", "algo=happo", "env=matrix/climbing", "total_steps=64", f"run_dir={run_dir}",
                 *SMALL]) == 0
    assert not any((run_dir / name).exists() for name in plots.PERMUTATION_FILES)
    out = capsys.readouterr().out
    assert not any(name in out for name in plots.PERMUTATION_FILES)


def test_the_figures_show_the_numbers() -> None:
    n = 4
    rng = np.random.default_rng(0)
    p = rng.dirichlet(np.ones(n ** n)).reshape((n,) * n)
    fig = plots.permutation_heatmap_figure(p)
    (ax, _colorbar) = fig.axes
    (image,) = [a for a in ax.get_children() if isinstance(a, AxesImage)]
    np.testing.assert_allclose(image.get_array(), p.reshape(16, 16))
    assert ax.get_ylabel() == "actions of agents 1–2" and ax.get_xlabel() == "actions of agents 3–4"
    assert [t.get_text() for t in ax.get_yticklabels()][:5] == ["00", "01", "02", "03", "10"]

    order = (2, 0, 3, 1)
    h, ceiling = conditional_entropies(p, order), permutation_ceiling(n)
    fig = plots.conditional_entropy_figure(h, ceiling, order, n_actions=n)
    ax = fig.axes[0]
    np.testing.assert_allclose([bar.get_height() for bar in ax.patches], h)
    (step,) = [line for line in ax.get_lines() if line.get_label() == "ceiling log(n − k + 1)"]
    np.testing.assert_allclose(step.get_ydata()[:n], ceiling)
    assert [t.get_text() for t in ax.get_xticklabels()][0] == "k=1\nagent 3"
    (flat,) = [line for line in ax.get_lines() if line.get_label() == "log A = log 4"]
    assert flat.get_ydata()[0] == pytest.approx(math.log(4))


def test_uniform_over_permutations_sits_on_the_ceiling(tmp_path: Path) -> None:
    import itertools

    p = np.zeros((3, 3, 3))
    for perm in itertools.permutations(range(3)):
        p[perm] = 1 / 6
    numbers = plots.write_permutation_pictures(p, tmp_path, order=(1, 2, 0))
    np.testing.assert_allclose(numbers["conditional_entropy"], np.log([3, 2, 1]), atol=1e-12)
    assert numbers["mass_on_permutations"] == pytest.approx(1.0)
    assert numbers["joint_entropy"] == pytest.approx(math.log(6))
    assert np.asarray(numbers["heatmap"]).shape == (9, 3)
    assert all((tmp_path / name).is_file() for name in plots.PERMUTATION_FILES)
