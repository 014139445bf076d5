"""``benchmarks/harl_published_curve.py``: the digitiser against a synthetic figure drawn with known values (its
frame, dashed grid and curves placed by exact pixel arithmetic), and its argument errors."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "harl_published_curve.py"


def _load():
    spec = importlib.util.spec_from_file_location("_bench_harl_published_curve", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


hp = _load()

# synthetic panel: frame at columns 20 / 380 and rows 10 / 250; x grid at columns 40 (x=0) .. 340 (x=1e7) every 60;
# y grid rows 230 (0) .. 20 (7000) every 30 pixels; so value = (230 - row) / 30 * 1000 and col = 40 + 300 x / 1e7.
X0, X1, Y0, DY = 40, 340, 230, 30


def _panel(curves: dict[str, tuple[tuple[int, int, int], callable]]) -> np.ndarray:
    img = np.full((260, 400, 3), 255, dtype=int)
    img[10, 20:381] = img[250, 20:381] = 60  # solid frame
    img[10:251, 20] = img[10:251, 380] = 60
    for col in range(X0, X1 + 1, 60):  # dashed vertical grid: 2 of every 3 pixels
        img[12:249, col][np.arange(237) % 3 != 0] = 120
    for row in range(Y0, 19, -DY):
        img[row, 22:379][np.arange(357) % 3 != 0] = 120
    for colour, f in curves.values():  # 7-pixel-thick line centred on the exact row of each column
        for col in range(X0, X1 + 1):
            x = (col - X0) / (X1 - X0) * 1e7
            row = int(round(Y0 - f(x) / 1000 * DY))
            img[row - 3:row + 4, col] = colour
    return img


def test_calibrate_recovers_the_drawn_axes():
    axes = hp.calibrate(_panel({}))
    assert (axes.x0_col, axes.x1_col) == (X0, X1)
    assert axes.y0_row == pytest.approx(Y0, abs=1e-9)
    assert axes.row_per_unit == pytest.approx(DY / 1000, rel=1e-12)
    assert axes.value(Y0 - 4 * DY) == pytest.approx(4000)
    assert axes.col(5e6) == pytest.approx((X0 + X1) / 2)


def test_calibrate_tolerates_a_grid_row_hidden_by_curves():
    img = _panel({})
    img[Y0 - 2 * DY, 22:379] = 255  # the 2000 line erased
    axes = hp.calibrate(img)
    assert axes.value(Y0 - 5 * DY) == pytest.approx(5000, abs=1e-6)


def test_digitise_reads_known_curves_within_a_pixel():
    curves = {"happo": ((0, 0, 220), lambda x: 2000 + 4e-4 * x), "mappo": ((40, 200, 40), lambda x: 1000 + 2e-4 * x)}
    img = _panel(curves)
    steps = [1e6, 2.5e6, 5e6, 9e6]
    got = hp.digitise(img, steps, {k: hp.LINE_COLOURS[k] for k in curves})
    pixel = 1000 / DY
    for name, (_, f) in curves.items():
        for s, v in zip(steps, got[name]):
            assert v is not None
            assert v["value"] == pytest.approx(f(s), abs=1.5 * pixel)  # column rounding + row rounding
            assert v["lo"] <= v["value"] <= v["hi"]
            assert 5.5 * pixel <= v["hi"] - v["lo"] <= 8 * pixel  # the line's drawn thickness (+ slope over 3 columns)
    # the two curves are told apart by colour, not by position
    assert got["happo"][2]["value"] == pytest.approx(4000, abs=2 * pixel)
    assert got["mappo"][2]["value"] == pytest.approx(2000, abs=2 * pixel)


def test_a_colour_absent_at_a_step_reads_none():
    img = _panel({"happo": ((0, 0, 220), lambda x: 3000.0)})
    assert hp.digitise(img, [5e6], {"mappo": hp.LINE_COLOURS["mappo"]})["mappo"] == [None]


def test_pale_band_pixels_are_not_taken_for_the_line():
    img = _panel({"happo": ((0, 0, 220), lambda x: 3000.0)})
    img[Y0 - 6 * DY:Y0 - 4 * DY, X0 + 100:X0 + 200] = (190, 190, 250)  # a light-blue confidence band above it
    v = hp.digitise(img, [5e6], {"happo": hp.LINE_COLOURS["happo"]})["happo"][0]
    assert v["value"] == pytest.approx(3000, abs=1000 / DY)


def test_calibrate_without_a_grid_is_an_error():
    img = np.full((100, 100, 3), 255, dtype=int)
    img[5, :] = img[95, :] = img[:, 5] = img[:, 95] = 60
    with pytest.raises(ValueError, match="grid lines"):
        hp.calibrate(img)


@pytest.mark.parametrize("bad", [np.zeros((10, 10)), np.zeros((10, 10, 4)), np.zeros((2, 10, 3))])
def test_calibrate_rejects_what_is_not_an_rgb_image(bad):
    with pytest.raises(ValueError, match="rgb"):
        hp.calibrate(bad)


@pytest.mark.parametrize("argv, needle", [
    (["--harl", "/nonexistent-harl"], "--harl"),
    (["--harl", ".", "--steps", "a,b"], "--steps"),
    (["--harl", ".", "--steps", "2e7"], "--steps"),
])
def test_bad_arguments_exit_2_naming_the_argument(argv, needle, capsys):
    with pytest.raises(SystemExit) as exc:
        hp.parse_args(argv)
    assert exc.value.code == 2
    assert needle in capsys.readouterr().err
