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


# ------------------------------------------------------------------------------ the permutation game (issue 9 §5)
PERMUTATION_FILES = ("permutation_heatmap.png", "conditional_entropy.png", "permutation.json")


def _combo_labels(shape: Sequence[int]) -> list[str]:
    """``"a1a2..."`` labels of the joint actions of some agents in C order (one digit per agent when < 10)."""
    import itertools

    sep = "" if max(shape) <= 10 else ","
    return [sep.join(str(a) for a in combo) for combo in itertools.product(*[range(s) for s in shape])]


def permutation_heatmap_figure(joint: Any, *, title: str = "", n_rows: int | None = None) -> Figure:
    """The one-state joint table ``pi(a)`` as a heat map (:func:`seqmarl.theory.conditional_entropy.heatmap_matrix`):
    rows = joint actions of agents ``1..ceil(n/2)``, columns = those of the rest (16 x 16 for n = 4). Cells of the
    permutations (all actions distinct, reward 1) are outlined, so mass off them (reward 0) is visible."""
    import itertools

    import numpy as np
    from matplotlib.patches import Rectangle

    from seqmarl.theory.conditional_entropy import heatmap_matrix

    p = np.asarray(joint, dtype=np.float64)
    n = p.ndim
    k = math.ceil(n / 2) if n_rows is None else n_rows
    m = heatmap_matrix(p, k)
    fig = Figure(figsize=(7.2, 6.2))
    ax = fig.add_subplot()
    image = ax.imshow(m, cmap="viridis", vmin=0.0, vmax=max(float(m.max()), 1e-12), aspect="equal",
                      interpolation="nearest")
    fig.colorbar(image, ax=ax, label="π(a) (exact)")
    rows, cols = _combo_labels(p.shape[:k]), _combo_labels(p.shape[k:])
    if len(rows) <= 64:
        ax.set_yticks(range(len(rows)), rows, fontsize=6 if len(rows) > 16 else 7)
    if len(cols) <= 64:
        ax.set_xticks(range(len(cols)), cols, fontsize=6 if len(cols) > 16 else 7, rotation=90)
    if len(set(p.shape)) == 1 and p.shape[0] == n and m.size <= 4096:  # outline the permutations
        for r, row in enumerate(itertools.product(*[range(s) for s in p.shape[:k]])):
            for c, col in enumerate(itertools.product(*[range(s) for s in p.shape[k:]])):
                if len(set(row + col)) == n:
                    ax.add_patch(Rectangle((c - 0.5, r - 0.5), 1, 1, fill=False, ec="0.75", lw=0.7))
    agents = list(range(1, n + 1))
    ax.set_ylabel(f"actions of agents {agents[0]}–{agents[k - 1]}" if k > 1 else "action of agent 1")
    ax.set_xlabel(f"actions of agents {agents[k]}–{agents[-1]}" if n - k > 1 else f"action of agent {n}")
    ax.set_title(title or f"exact joint policy on the permutation game (n = {n}); outlined: permutations",
                 fontsize=9)
    fig.tight_layout()
    return fig


def conditional_entropy_figure(entropies: Sequence[float], ceiling: Sequence[float], order: Sequence[int], *,
                               n_actions: int | None = None, title: str = "") -> Figure:
    """Bars: ``H(a^{i_k} | a^{i_{<k}})`` at every position ``k`` of the execution order (exact, nats); steps: the
    ceiling ``log(n - k + 1)`` of a policy on the permutations; dashed: ``log A`` (any policy)."""
    import numpy as np

    h = np.asarray(entropies, dtype=np.float64)
    c = np.asarray(ceiling, dtype=np.float64)
    n = len(h)
    ks = np.arange(1, n + 1)
    fig = Figure(figsize=(6.4, 4.0))
    ax = fig.add_subplot()
    ax.bar(ks, h, width=0.6, color="tab:blue", label=r"$H(a^{i_k} \mid a^{i_{<k}})$ (exact)")
    ax.step(np.r_[ks - 0.5, ks[-1] + 0.5], np.r_[c, c[-1]], where="post", color="tab:red", lw=1.5,
            label="ceiling log(n − k + 1)")  # policies on the permutations (J = 1)
    if n_actions is not None:
        ax.axhline(math.log(n_actions), color="0.4", ls="--", lw=1, label=f"log A = log {n_actions}")
    ax.set_xticks(ks, [f"k={k}\nagent {i + 1}" for k, i in zip(ks, order)], fontsize=8)
    ax.set_xlabel("position k in the execution order")
    ax.set_ylabel("conditional entropy (nats)")
    ax.set_ylim(0, max(float(c.max()), float(h.max()), math.log(n_actions) if n_actions else 0.0) * 1.15 + 1e-9)
    joint_h, top = float(h.sum()), float(c.sum())
    ax.set_title(title or f"per-agent conditional entropy: joint H = {joint_h:.4g} of log {n}! = {top:.4g}",
                 fontsize=9)
    ax.legend(fontsize=8, loc="upper right")
    fig.tight_layout()
    return fig


def write_permutation_pictures(joint: Any, run_dir: Path, *, order: Sequence[int] | None = None,
                               label: str = "") -> dict[str, Any]:
    """Write :data:`PERMUTATION_FILES` into ``run_dir`` for the one-state joint table ``joint [A_1..A_n]`` of a
    policy on the permutation game: the heat map, the conditional entropies in ``order`` (default ``0..n-1``)
    against ``log(n - k + 1)``, and the numbers (``permutation.json``). Returns the numbers."""
    import json

    import numpy as np

    from seqmarl.theory.conditional_entropy import conditional_entropies, heatmap_matrix, permutation_ceiling

    p = np.asarray(joint, dtype=np.float64)
    n = p.ndim
    order = tuple(range(n)) if order is None else tuple(int(i) for i in order)
    h = conditional_entropies(p, order)
    ceiling = permutation_ceiling(n)
    on_perm = float(sum(p[a] for a in np.ndindex(*p.shape) if len(set(a)) == n))
    numbers = {"n_agents": n, "order": list(order), "conditional_entropy": h.tolist(), "ceiling": ceiling.tolist(),
               "joint_entropy": float(h.sum()), "log_n_factorial": float(math.lgamma(n + 1)),
               "mass_on_permutations": on_perm,
               "heatmap_rows_agents": list(range(math.ceil(n / 2))),
               "heatmap": heatmap_matrix(p).tolist()}
    prefix = f"{label}: " if label else ""
    save_figure(permutation_heatmap_figure(p, title=f"{prefix}exact π(a), mass on permutations {on_perm:.4g} "
                                                   "(outlined)"), run_dir / PERMUTATION_FILES[0])
    save_figure(conditional_entropy_figure(h, ceiling, order, n_actions=p.shape[0],
                                           title=f"{prefix}joint H = {h.sum():.4g} of log {n}! = "
                                                 f"{math.lgamma(n + 1):.4g}"), run_dir / PERMUTATION_FILES[1])
    (run_dir / PERMUTATION_FILES[2]).write_text(json.dumps(numbers, indent=2))
    return numbers
