"""The run directory's plots: ``return.png`` (every run) and ``validation.png`` (``seqmarl validate``).

Each plot is built by a function that returns a :class:`matplotlib.figure.Figure` (no pyplot state, so tests
inspect the artists: titles, labels, data) and written by :func:`save_figure`. Reference lines:

* ``J*`` — :func:`seqmarl.theory.optima.joint_optimum` (best joint policy);
* ``J*_share`` — :func:`seqmarl.theory.optima.shared_optimum` (best policy shared by all agents without agent
  id, ICLR22 Prop. 1), where it is defined and certified;
* one line labelled ``"J* = J*_share"`` when the two coincide (climbing, penalty), so neither hides the other.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from matplotlib.figure import Figure

if TYPE_CHECKING:
    from seqmarl.theory import MarkovGame
    from seqmarl.validate import ValidationReport

#: drops of the exact J at most this large are drawn grey ("tolerable": the size of the sampling noise of a
#: stochastic update from a finite batch), larger ones red
VIOLATION_PLOT_TOL = 5e-4
#: a game with more joint actions than this gets no reference lines on ``return.png`` (kept cheap)
MAX_JOINT_ACTIONS_FOR_OPTIMA = 4096
_SAME = 1e-9


def optimum_lines(ax: Any, j_star: float | None, j_star_share: float | None) -> None:
    """Horizontal ``J*`` / ``J*_share`` lines on ``ax``; one ``"J* = J*_share"`` line when they coincide."""
    if j_star is not None and j_star_share is not None and abs(j_star - j_star_share) <= _SAME * max(1.0, abs(j_star)):
        ax.axhline(j_star, color="tab:purple", ls="--", lw=1.2, label=f"J* = J*_share ({j_star:.4g})")
        return
    if j_star is not None:
        ax.axhline(j_star, color="tab:green", ls="--", lw=1.2, label=f"J* ({j_star:.4g})")
    if j_star_share is not None:
        ax.axhline(j_star_share, color="tab:red", ls=":", lw=1.2, label=f"J*_share ({j_star_share:.4g})")


def tabular_optima(game: MarkovGame | None) -> tuple[float | None, float | None]:
    """``(J*, J*_share)`` of a game whose episode return is a sample of ``J`` (single-step games: ``gamma = 0``
    or ``horizon = 1``), with at most :data:`MAX_JOINT_ACTIONS_FOR_OPTIMA` joint actions; ``None`` otherwise
    (a multi-step game's undiscounted episode return is not on the scale of the discounted ``J``)."""
    if game is None or not (game.gamma == 0 or game.horizon == 1):
        return None, None
    if math.prod(game.n_actions) * game.n_states > MAX_JOINT_ACTIONS_FOR_OPTIMA:
        return None, None
    from seqmarl.theory import optima

    j_star = float(optima.joint_optimum(game).value)
    j_share = None
    if len(set(game.n_actions)) == 1 and game.is_one_shot:
        result = optima.shared_optimum(game)
        j_share = float(result.value) if math.isfinite(result.certified_gap) else None
    return j_star, j_share


def return_figure(
    rows: Sequence[dict[str, Any]],
    *,
    algo: str,
    env: str,
    seed: int,
    j_star: float | None = None,
    j_star_share: float | None = None,
) -> Figure:
    """Training episode return (mean of the last 100 episodes), the evaluation returns (rows with
    ``eval_return_stochastic`` / ``eval_return_greedy``) and the ``J*`` / ``J*_share`` lines, against env steps."""
    fig = Figure(figsize=(6, 3.8))
    ax = fig.add_subplot()
    for key, label, style, color in (("episode_return", "training return (last 100 episodes)", "-", "tab:blue"),
                                     ("eval_return_stochastic", "eval return (stochastic)", "o-", "tab:orange"),
                                     ("eval_return_greedy", "eval return (greedy)", "s--", "tab:brown")):
        points = [(r["env_steps"], r[key]) for r in rows if key in r and r[key] is not None]
        if points:
            xs, ys = zip(*points)
            ax.plot(xs, ys, style, color=color, ms=3, lw=1.2, label=label)
    optimum_lines(ax, j_star, j_star_share)
    ax.set_xlabel("environment steps")
    ax.set_ylabel("episode return")
    ax.set_title(f"{algo} on {env} (seed {seed})")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def save_figure(fig: Figure, path: Path) -> None:
    """Write ``fig`` as a PNG (Agg canvas; no display needed)."""
    fig.savefig(path, dpi=100)


def write_return_plot(rows: Sequence[dict[str, Any]], path: Path, *, algo: str, env: str, seed: int,
                      game: MarkovGame | None = None) -> Figure:
    """``return.png`` of a run: :func:`return_figure` with the optima of ``game`` (:func:`tabular_optima`)."""
    j_star, j_share = tabular_optima(game)
    fig = return_figure(rows, algo=algo, env=env, seed=seed, j_star=j_star, j_star_share=j_share)
    save_figure(fig, path)
    return fig


def decreases(returns: Sequence[float]) -> tuple[list[int], list[float]]:
    """Updates ``k+1`` at which the exact J fell, and the sizes ``J_k - J_{k+1} > 0`` of the falls."""
    steps, sizes = [], []
    for k in range(len(returns) - 1):
        drop = returns[k] - returns[k + 1]
        if drop > 0:
            steps.append(k + 1)
            sizes.append(drop)
    return steps, sizes


def validation_figure(report: ValidationReport, plot_tol: float = VIOLATION_PLOT_TOL) -> Figure:
    """Four panels of a :class:`seqmarl.validate.ValidationReport` against the update index: the exact J with
    ``J*`` / ``J*_share`` (and the falls larger than ``plot_tol`` marked), the size of every fall of J on a log
    scale (grey: at most ``plot_tol``, tolerable; red: larger), the exact Nash gap with the report's epsilon, and
    the policy entropy."""
    fig = Figure(figsize=(10, 7))
    (ax_j, ax_drop), (ax_nash, ax_ent) = fig.subplots(2, 2, sharex=True)
    updates = list(range(len(report.returns)))
    steps, sizes = decreases(report.returns)
    big = [(k, s) for k, s in zip(steps, sizes) if s > plot_tol]
    small = [(k, s) for k, s in zip(steps, sizes) if s <= plot_tol]

    ax_j.plot(updates, report.returns, color="tab:blue", lw=1.3, label="exact J(π_k)")
    optimum_lines(ax_j, report.j_star, report.j_star_share)
    if big:
        ax_j.scatter([k for k, _ in big], [report.returns[k] for k, _ in big], color="tab:red", s=14, zorder=3,
                     label=f"fall > {plot_tol:g} ({len(big)})")
    ax_j.set_title("exact return")
    ax_j.set_ylabel("J")
    ax_j.legend(fontsize=8)

    if small:
        ax_drop.scatter([k for k, _ in small], [s for _, s in small], color="0.6", s=10,
                        label=f"≤ {plot_tol:g}: tolerable ({len(small)})")
    if big:
        ax_drop.scatter([k for k, _ in big], [s for _, s in big], color="tab:red", s=14,
                        label=f"> {plot_tol:g} ({len(big)})")
    ax_drop.axhline(plot_tol, color="0.3", ls="--", lw=1, label=f"tolerance {plot_tol:g}")
    ax_drop.set_yscale("log")
    ax_drop.set_title("monotonicity violations: size of each fall of J")
    ax_drop.set_ylabel("J_k − J_{k+1} (log scale)")
    if not sizes:
        ax_drop.text(0.5, 0.5, "J never fell", transform=ax_drop.transAxes, ha="center", va="center")
    ax_drop.legend(fontsize=8)

    ax_nash.plot(updates[: len(report.nash_gaps)], report.nash_gaps, color="tab:orange", lw=1.3,
                 label="exact Nash gap")
    ax_nash.axhline(report.nash_eps, color="0.3", ls="--", lw=1, label=f"ε = {report.nash_eps:g}")
    ax_nash.set_title("Nash gap (max gain of a unilateral deviation)")
    ax_nash.set_xlabel("update")
    ax_nash.set_ylabel("Nash gap")
    ax_nash.legend(fontsize=8)

    ax_ent.plot(updates[: len(report.entropies)], report.entropies, color="tab:green", lw=1.3,
                label="policy entropy")
    ax_ent.set_title("policy entropy (nats, state-averaged)")
    ax_ent.set_xlabel("update")
    ax_ent.set_ylabel("entropy")
    ax_ent.legend(fontsize=8)

    fig.suptitle(f"{report.algo} on {report.env} (seed {report.seed}): exact oracle after every update")
    fig.tight_layout()
    return fig
