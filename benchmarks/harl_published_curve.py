"""HARL's PUBLISHED HalfCheetah 2x3 learning curve, read off its figure, beside seqmarl's runs at the same steps.

    python benchmarks/harl_published_curve.py --harl PATH_TO_HARL_CHECKOUT
        [--runs SWEEP_OR_RUN_DIR ...] [--steps 2e5,4e5,6e5,8e5,1e6] [--out benchmarks/results/harl_published_halfcheetah.json]

HARL publishes its MaMuJoCo curves only as a picture: ``assets/mamujoco_on_policy_learning_curve.jpg`` of the HARL
repository (PKU-MARL/HARL@d539bad2; the same figure as the HARL paper, Zhong et al. 2024, JMLR). Its panel
"HalfCheetah-v2 2x3" shows MAPPO (green), HAA2C (violet), HATRPO (orange) and HAPPO (blue), episode return against
env steps to 10^7 (mean line and a shaded band over seeds). This script DIGITISES that panel:

* the axes are calibrated on the panel's own grid lines (detected as columns / rows of grey pixels): the grid
  column of x = 0 and of x = 10^7, and the horizontal grid lines 1,000 apart from 0 at the lowest one;
* at each requested step, the pixels of each algorithm's line colour in a 3-pixel-wide column give the value:
  the median row (the line's centre) and the extreme rows (the line's drawn width, reported as ``lo``/``hi``:
  the reading's resolution, not a confidence interval).

The figure is 1180 x 579 pixels; the panel's 10^7 steps span ~300 pixels and 1,000 return ~28 pixels, so a
reading is good to about ±40 return and ±3·10^4 steps. The shaded bands are pale colours that the line
thresholds exclude. Differences that a comparison must state: HARL's curves are HalfCheetah-v2 (mujoco-py,
MuJoCo 2.x, the original MaMuJoCo); seqmarl's are gymnasium-robotics' MaMuJoCo v5 (MuJoCo 3); HARL's y-axis is
its evaluation return.

``--runs`` adds seqmarl's runs (sweep directories or folders of run directories, read with
``seqmarl.report.load_runs``, metric ``eval_return_greedy`` where every run has it, else the training return):
per algorithm, rliable's IQM over seeds with a 95% stratified-bootstrap interval, at each step (linear between
the logged steps). Writes JSON and prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ASSET = "assets/mamujoco_on_policy_learning_curve.jpg"
IMAGE_SIZE = (1180, 579)  # (width, height) of the figure at HARL d539bad2
HALFCHEETAH_PANEL = (390, 0, 790, 290)  # (left, top, right, bottom) pixels of the "HalfCheetah-v2 2x3" panel
X_MAX = 1e7  # the panel's x-axis: 0 .. 1.0 x 10^7 env steps
Y_GRID_STEP = 1000.0  # the panel's horizontal grid lines: 0, 1000, ..., 7000
DEFAULT_STEPS = (2e5, 4e5, 6e5, 8e5, 1e6)
DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "harl_published_halfcheetah.json"


def _is_blue(p: np.ndarray) -> np.ndarray:
    return (p[..., 2] > 150) & (p[..., 0] < 80) & (p[..., 1] < 80)


def _is_green(p: np.ndarray) -> np.ndarray:
    return (p[..., 1] > 150) & (p[..., 0] < 120) & (p[..., 2] < 120)


def _is_orange(p: np.ndarray) -> np.ndarray:
    return (p[..., 0] > 200) & (p[..., 1] > 120) & (p[..., 1] < 190) & (p[..., 2] < 80)


LINE_COLOURS = {"happo": _is_blue, "mappo": _is_green, "hatrpo": _is_orange}


@dataclass(frozen=True)
class Axes:
    """Pixel <-> data map of one panel: ``x = (col - x0_col) / (x1_col - x0_col) * x_max`` and
    ``y = (y0_row - row) / row_per_unit`` (rows grow downwards)."""

    x0_col: float
    x1_col: float
    x_max: float
    y0_row: float
    row_per_unit: float

    def col(self, x: float) -> float:
        return self.x0_col + x / self.x_max * (self.x1_col - self.x0_col)

    def value(self, row: float) -> float:
        return (self.y0_row - row) / self.row_per_unit


def _grey(rgb: np.ndarray) -> np.ndarray:
    """Grid-line pixels: neutral grey (channels within 15 of each other) and darker than 170."""
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    return (np.abs(r - g) < 15) & (np.abs(g - b) < 15) & (r < 170)


def _runs_of_true(mask: np.ndarray) -> list[float]:
    """Centres of the runs of consecutive True entries of a 1-d mask (a grid line may be 2 pixels wide)."""
    idx = np.nonzero(mask)[0]
    if idx.size == 0:
        return []
    groups = np.split(idx, np.nonzero(np.diff(idx) > 1)[0] + 1)
    return [float(g.mean()) for g in groups]


def calibrate(rgb: np.ndarray, x_max: float = X_MAX, y_step: float = Y_GRID_STEP, min_count: int = 60) -> Axes:
    """Axes of a panel from its grid. Columns / rows holding >= 90% of the maximum count of grey pixels are the
    panel's solid frame; those holding >= ``min_count`` strictly inside the frame are the dashed grid lines. The
    first grid column is x = 0 and the last ``x_max``; the grid rows are ``y_step`` apart, the lowest at 0 (a
    line hidden behind the curves is tolerated: the spacing is the smallest gap between found lines, and every
    found line is fitted by least squares)."""
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] != 3 or min(rgb.shape[:2]) < 4:
        raise ValueError(f"rgb must be an H x W x 3 image array (H, W >= 4), got shape {rgb.shape}")
    if not (x_max > 0 and y_step > 0 and min_count >= 1):
        raise ValueError(f"x_max and y_step must be > 0 and min_count >= 1, got {x_max}, {y_step}, {min_count}")
    grey = _grey(rgb)

    def grid_lines(counts: np.ndarray) -> list[float]:
        frame = _runs_of_true(counts >= 0.9 * counts.max())  # solid box lines: (almost) fully grey
        lines = _runs_of_true(counts >= min_count)
        if len(frame) < 2:
            raise ValueError(f"calibrate: expected the panel's frame, found solid lines at {frame}")
        return [c for c in lines if frame[0] < c < frame[-1] and all(abs(c - f) > 2 for f in frame)]

    inner_cols, inner_rows = grid_lines(grey.sum(0)), grid_lines(grey.sum(1))
    if len(inner_cols) < 2 or len(inner_rows) < 2:
        raise ValueError(f"calibrate: expected grid lines inside the frame, found columns {inner_cols} and rows "
                         f"{inner_rows}")
    x0, x1 = inner_cols[0], inner_cols[-1]
    spacing = float(np.min(np.diff(inner_rows)))
    bottom = inner_rows[-1]
    k = np.round((bottom - np.asarray(inner_rows)) / spacing)  # grid index of each found line (0 = the lowest)
    # rows = bottom - k * spacing, fitted: row = a - b k
    A = np.stack([np.ones_like(k), -k], axis=1)
    (a, b), *_ = np.linalg.lstsq(A, np.asarray(inner_rows), rcond=None)
    return Axes(x0_col=x0, x1_col=x1, x_max=x_max, y0_row=float(a), row_per_unit=float(b) / y_step)


def read_line(rgb: np.ndarray, axes: Axes, is_colour, step: float, half_width: int = 1) -> dict[str, float] | None:
    """The line of one colour at ``step``: ``{"value", "lo", "hi"}`` from the median / lowest / highest matching
    row in the columns ``round(col(step)) ± half_width``; None where no pixel of that colour is there."""
    c = int(round(axes.col(step)))
    band = rgb[:, max(c - half_width, 0):c + half_width + 1]
    rows = np.nonzero(is_colour(band).any(axis=1))[0]
    if rows.size == 0:
        return None
    return {"value": axes.value(float(np.median(rows))), "lo": axes.value(float(rows.max())),
            "hi": axes.value(float(rows.min()))}


def load_panel(harl: Path) -> np.ndarray:
    """The HalfCheetah panel of HARL's figure as an ``H x W x 3`` int array."""
    from PIL import Image

    path = harl / ASSET
    with Image.open(path) as im:
        if im.size != IMAGE_SIZE:
            raise ValueError(f"{path}: expected the {IMAGE_SIZE[0]}x{IMAGE_SIZE[1]} figure of HARL d539bad2, got "
                             f"{im.size[0]}x{im.size[1]} (another HARL version: the panel box must be re-measured)")
        return np.asarray(im.convert("RGB").crop(HALFCHEETAH_PANEL)).astype(int)


def digitise(rgb: np.ndarray, steps, colours=None) -> dict[str, list[dict[str, float] | None]]:
    axes = calibrate(rgb)
    colours = colours or LINE_COLOURS
    return {name: [read_line(rgb, axes, f, s) for s in steps] for name, f in colours.items()}


def ours_at(run_dirs: list[str], steps, reps: int = 2000, seed: int = 0) -> tuple[str, dict[str, list[list[float] | None]]]:
    """seqmarl's runs: ``(metric, {label: [[iqm, lo, hi] or None per step]})`` (None beyond a run's last step)."""
    from seqmarl.report import _iqm_per_step, group_runs, interpolate, interval_estimates, load_runs

    runs, metric, _ = load_runs(run_dirs)
    out: dict[str, list[list[float] | None]] = {}
    groups = group_runs(runs)
    for env, by_label in groups.items():
        for label, group in by_label.items():
            key = label if len(groups) == 1 else f"{label} ({env})"
            inside = [s for s in steps if all(r.steps[0] <= s <= r.steps[-1] for r in group)]
            if not inside:
                out[key] = [None] * len(steps)
                continue
            grid = np.asarray(inside, dtype=float)
            arr = np.stack([interpolate(r, grid) for r in group])[:, None, :]  # runs x 1 task x steps
            pts, lo, hi = interval_estimates({key: arr}, _iqm_per_step, reps, seed)[key]
            by_step = {s: [p, a, b] for s, p, a, b in zip(inside, pts, lo, hi)}
            out[key] = [by_step.get(s) for s in steps]
    return metric, out


def markdown(steps, harl: dict, ours: dict) -> str:
    head = "| env steps | " + " | ".join(f"{s:.0e}".replace("e+0", "e") for s in steps) + " |"
    lines = [head, "|---|" + "---:|" * len(steps)]
    for name, vals in harl.items():
        cells = [f"{v['value']:,.0f} ({v['lo']:,.0f}–{v['hi']:,.0f})" if v else "–" for v in vals]
        lines.append(f"| HARL published {name.upper()} (digitised) | " + " | ".join(cells) + " |")
    for label, vals in ours.items():
        cells = [f"{v[0]:,.0f} [{v[1]:,.0f}, {v[2]:,.0f}]" if v else "–" for v in vals]
        lines.append(f"| seqmarl {label} (IQM [95% CI]) | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _steps(text: str) -> list[float]:
    try:
        vals = [float(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers of env steps, got {text!r}") from None
    if not vals or any(not (0 < v <= X_MAX) for v in vals):
        raise argparse.ArgumentTypeError(f"every step must be in (0, {X_MAX:.0e}] (the panel's x-axis), got {text!r}")
    return vals


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--harl", required=True, type=Path, help=f"a HARL checkout (holding {ASSET})")
    p.add_argument("--runs", nargs="*", default=[], help="seqmarl sweep directories or folders of run directories")
    p.add_argument("--steps", type=_steps, default=list(DEFAULT_STEPS), help="comma-separated env steps")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ns = p.parse_args(argv)
    if not (ns.harl / ASSET).is_file():
        p.error(f"--harl: {ns.harl} has no {ASSET} (expected a checkout of PKU-MARL/HARL)")
    for d in ns.runs:
        if not Path(d).is_dir():
            p.error(f"--runs: {d} is not a directory")
    return ns


def main(argv: list[str] | None = None) -> int:
    ns = parse_args(argv)
    harl = digitise(load_panel(ns.harl), ns.steps)
    metric, ours = ours_at(ns.runs, ns.steps) if ns.runs else ("", {})
    table = markdown(ns.steps, harl, ours)
    print(table)
    result = {"script": "benchmarks/harl_published_curve.py", "argv": sys.argv[1:] if argv is None else argv,
              "figure": f"PKU-MARL/HARL@d539bad2 {ASSET}, panel HalfCheetah-v2 2x3", "steps": ns.steps,
              "harl_published": harl, "seqmarl_metric": metric, "seqmarl": ours, "markdown": table}
    ns.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = ns.out.with_suffix(ns.out.suffix + ".tmp")
    tmp.write_text(json.dumps(result, indent=1))
    tmp.replace(ns.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
