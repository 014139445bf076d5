"""Training progress: the rate/ETA maths, the text of a progress line, and the two displays (a rich bar on a
terminal, periodic plain lines when the output is piped).

The maths (pure functions, no clock of their own):

* rate over a recent window (:class:`RateWindow`): with samples ``(t_i, s_i)`` (monotonic seconds, env steps) taken
  after every update of *this process*, the rate at the newest sample ``(t_n, s_n)`` is
  ``(s_n - s_b) / (t_n - t_b)`` where ``b`` is the newest sample with ``t_b <= t_n - window_s``, or the first sample
  when none is that old. So the rate covers at least ``window_s`` seconds once the run is that old (at most
  ``window_s`` plus one update), and before that everything since the process started. The first sample is taken
  at the start of :meth:`ProgressDisplay.start` with the steps already done, so a resumed run's rate never counts
  the steps done before the resume.
* ETA (:func:`eta_seconds`): ``(total - done) / rate`` seconds; 0 when done; unknown (``None``) without a positive
  rate.

Line format (:func:`format_progress_line`; stable and grep-able, one line per report)::

    [seqmarl] step 12,800/1,000,000 (1.3%) | 4,210 steps/s | return -97.3 | eval -99.1 | elapsed 3s | ETA 3m55s

``return`` is the trainer's ``episode_return`` (mean of the last 100 finished training episodes), ``eval`` the
latest greedy evaluation return (``eval_return_greedy``; the field is present only in runs that evaluate), an
unknown value is ``-``. Lines go to stderr (stdout keeps the run's result line).
"""

from __future__ import annotations

import math
import sys
import time
from collections import deque
from typing import Any, Callable, Mapping, TextIO

PREFIX = "[seqmarl]"
MODES = ("auto", "bar", "lines", "off")
# 30 s between lines: 120 lines for an hour's run, a line per CI log screen; not a source's number, a choice
DEFAULT_LOG_EVERY_S = 30.0
# the steps/s window: two line intervals, so a line's rate reflects the last minute, not the run's start-up
DEFAULT_RATE_WINDOW_S = 60.0


def progress_mode(value: bool | str) -> str:
    """``progress=`` as one of :data:`MODES`: ``True`` means ``auto`` and ``False`` means ``off`` (the old boolean
    key); ``auto`` is ``bar`` on a terminal and ``lines`` otherwise (decided by :func:`resolve_mode`)."""
    if isinstance(value, bool):
        return "auto" if value else "off"
    if isinstance(value, str) and value.strip().lower() in MODES:
        return value.strip().lower()
    raise ValueError(f"progress must be one of {', '.join(MODES)} (or true/false, aliases of auto/off), "
                     f"got {value!r}")


def resolve_mode(mode: str, interactive: bool) -> str:
    """The display ``mode`` gives: ``auto`` -> ``bar`` if ``interactive`` (a terminal or a notebook) else
    ``lines``; the others as they are."""
    mode = progress_mode(mode)
    if mode == "auto":
        return "bar" if interactive else "lines"
    return mode


def eta_seconds(done: int, total: int, rate: float | None) -> float | None:
    """Seconds left at ``rate`` steps/s: ``max(total - done, 0) / rate``; 0 when done; ``None`` when steps remain
    and the rate is unknown or not positive."""
    remaining = max(int(total) - int(done), 0)
    if remaining == 0:
        return 0.0
    if rate is None or not math.isfinite(rate) or rate <= 0:
        return None
    return remaining / rate


def _now() -> float:
    """The displays' clock (monotonic seconds); replaced by a fake one in tests."""
    return time.monotonic()


class RateWindow:
    """Steps per second over the last ``window_s`` seconds (module docstring). ``add(t, steps)`` with
    non-decreasing ``t``; :meth:`rate` is ``None`` until two samples ``t`` apart exist."""

    def __init__(self, window_s: float = DEFAULT_RATE_WINDOW_S):
        if isinstance(window_s, bool) or not isinstance(window_s, (int, float)) or not window_s > 0 \
                or not math.isfinite(window_s):
            raise ValueError(f"window_s must be a positive number of seconds, got {window_s!r}")
        self.window_s = float(window_s)
        self._samples: deque[tuple[float, int]] = deque()

    def add(self, t: float, steps: int) -> None:
        if self._samples and t < self._samples[-1][0]:
            raise ValueError(f"sample times must not decrease: got t={t} after t={self._samples[-1][0]}")
        self._samples.append((float(t), int(steps)))
        # keep one sample at or before the window's start (the base) and everything after it
        while len(self._samples) >= 2 and self._samples[1][0] <= t - self.window_s:
            self._samples.popleft()

    def rate(self) -> float | None:
        if len(self._samples) < 2:
            return None
        (t0, s0), (t1, s1) = self._samples[0], self._samples[-1]
        if t1 <= t0:
            return None
        return (s1 - s0) / (t1 - t0)


def format_count(n: int) -> str:
    """An integer with thousands separators: 1000000 -> ``1,000,000``."""
    return f"{int(n):,}"


def format_rate(rate: float | None) -> str:
    """Steps/s: ``-`` when unknown; one decimal below 10 (``3.5``), else a whole number with separators
    (``4,210``)."""
    if rate is None or not math.isfinite(rate):
        return "-"
    return f"{rate:.1f}" if abs(rate) < 10 else f"{rate:,.0f}"


def format_value(x: float | None) -> str:
    """A return: ``-`` when unknown or NaN; 4 significant digits below 1000 in magnitude (``-97.3``, ``0.8312``),
    else a whole number with separators (``-12,346``)."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    x = float(x)
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return f"{x:,.0f}" if abs(x) >= 1000 else f"{x:.4g}"


def format_duration(seconds: float | None) -> str:
    """Seconds rounded to whole seconds: ``45s``, ``3m55s``, ``1h02m`` (minutes from here on, seconds dropped),
    ``2d03h``; ``-`` when unknown."""
    if seconds is None or not math.isfinite(seconds):
        return "-"
    s = int(round(max(seconds, 0.0)))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d{s % 86400 // 3600:02d}h"


def format_percent(done: int, total: int) -> str:
    """``100 * done / total`` with one decimal (``1.3%``); 100.0% when ``total`` is 0."""
    return f"{100.0 * done / total:.1f}%" if total > 0 else "100.0%"


def format_progress(done: int, total: int, rate: float | None, ret: float | None, eval_ret: float | None,
                    elapsed: float | None, show_eval: bool) -> str:
    """The fields of a progress report, without the prefix (the bar shows this text)."""
    parts = [f"step {format_count(done)}/{format_count(total)} ({format_percent(done, total)})",
             f"{format_rate(rate)} steps/s", f"return {format_value(ret)}"]
    if show_eval:
        parts.append(f"eval {format_value(eval_ret)}")
    parts += [f"elapsed {format_duration(elapsed)}", f"ETA {format_duration(eta_seconds(done, total, rate))}"]
    return " | ".join(parts)


def format_progress_line(done: int, total: int, rate: float | None, ret: float | None, eval_ret: float | None,
                         elapsed: float | None, show_eval: bool) -> str:
    """One log line: ``[seqmarl] step ... | ... steps/s | return ... [| eval ...] | elapsed ... | ETA ...``."""
    return f"{PREFIX} {format_progress(done, total, rate, ret, eval_ret, elapsed, show_eval)}"


class ProgressDisplay:
    """What the trainer calls: :meth:`start` before the first update, :meth:`update` after each, :meth:`finish`
    after the last (not after a failure), :meth:`close` always. Keeps the rate window and the latest returns;
    subclasses show them."""

    def __init__(self, total: int, show_eval: bool, clock: Callable[[], float] | None = None,
                 rate_window_s: float = DEFAULT_RATE_WINDOW_S):
        self.total = int(total)
        self.show_eval = bool(show_eval)
        self.clock = clock if clock is not None else _now
        self.window = RateWindow(rate_window_s)
        self.steps = 0
        self.ret: float | None = None
        self.eval_ret: float | None = None
        self.t0: float | None = None

    def _record(self, steps: int, row: Mapping[str, Any] | None) -> float:
        now = self.clock()
        if self.t0 is None:
            self.t0 = now
        self.steps = int(steps)
        self.window.add(now, self.steps)
        if row is not None:
            if row.get("episode_return") is not None:
                self.ret = float(row["episode_return"])
            if row.get("eval_return_greedy") is not None:
                self.eval_ret = float(row["eval_return_greedy"])
        return now

    def text(self, now: float) -> str:
        elapsed = None if self.t0 is None else now - self.t0
        return format_progress(self.steps, self.total, self.window.rate(), self.ret, self.eval_ret, elapsed,
                               self.show_eval)

    def start(self, steps: int) -> None:
        self._record(steps, None)

    def update(self, steps: int, row: Mapping[str, Any] | None = None) -> None:
        self._record(steps, row)

    def finish(self) -> None:
        pass

    def close(self) -> None:
        pass


class LineProgress(ProgressDisplay):
    """Plain lines (:func:`format_progress_line`) to ``stream`` (default stderr): one at :meth:`start`, then after
    an update once at least ``log_every_s`` seconds passed since the last line, and one at :meth:`finish` unless
    the last line already showed the final step count."""

    def __init__(self, total: int, show_eval: bool, log_every_s: float = DEFAULT_LOG_EVERY_S,
                 stream: TextIO | None = None, clock: Callable[[], float] | None = None,
                 rate_window_s: float = DEFAULT_RATE_WINDOW_S):
        super().__init__(total, show_eval, clock, rate_window_s)
        self.log_every_s = check_log_every_s(log_every_s)
        self.stream = stream
        self._last_line: float | None = None
        self._last_steps: int | None = None

    def _emit(self, now: float) -> None:
        stream = self.stream if self.stream is not None else sys.stderr
        print(f"{PREFIX} {self.text(now)}", file=stream, flush=True)
        self._last_line, self._last_steps = now, self.steps

    def start(self, steps: int) -> None:
        self._emit(self._record(steps, None))

    def update(self, steps: int, row: Mapping[str, Any] | None = None) -> None:
        now = self._record(steps, row)
        if self._last_line is None or now - self._last_line >= self.log_every_s:
            self._emit(now)

    def finish(self) -> None:
        if self._last_steps != self.steps:
            self._emit(self.clock())


class BarProgress(ProgressDisplay):
    """A rich progress bar over env steps with the same fields as a line (``console``: a rich ``Console``;
    default: one on stderr). Transient: it is cleared when closed."""

    def __init__(self, total: int, show_eval: bool, console: Any = None, clock: Callable[[], float] | None = None,
                 rate_window_s: float = DEFAULT_RATE_WINDOW_S):
        super().__init__(total, show_eval, clock, rate_window_s)
        from rich.progress import BarColumn, Progress, TextColumn

        self._progress = Progress(TextColumn("[bold]train"), BarColumn(), TextColumn("{task.fields[info]}", markup=False),
                                  console=console if console is not None else default_console(), transient=True)
        self._task: Any = None

    def _show(self, now: float) -> None:
        self._progress.update(self._task, completed=self.steps, info=self.text(now))

    def start(self, steps: int) -> None:
        now = self._record(steps, None)
        self._progress.start()
        self._task = self._progress.add_task("train", total=max(self.total, 1), completed=self.steps, info="")
        self._show(now)

    def update(self, steps: int, row: Mapping[str, Any] | None = None) -> None:
        self._show(self._record(steps, row))

    def close(self) -> None:
        self._progress.stop()


def check_log_every_s(value: Any) -> float:
    """``log_every_s``: a positive finite number of seconds."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"log_every_s must be a positive number of seconds, got {value!r}")
    return float(value)


def default_console() -> Any:
    """The console progress goes to: rich's on stderr."""
    from rich.console import Console

    return Console(stderr=True)


def make_display(mode: bool | str, total: int, show_eval: bool, log_every_s: float = DEFAULT_LOG_EVERY_S,
                 console: Any = None, stream: TextIO | None = None) -> ProgressDisplay | None:
    """The display for ``progress=mode`` (``None`` for ``off``). ``auto`` asks ``console`` (default: rich's on
    stderr) whether it is a terminal or a notebook."""
    mode = progress_mode(mode)
    if mode == "off":
        return None
    if mode == "auto":
        con = console if console is not None else default_console()
        mode = resolve_mode(mode, bool(con.is_terminal or getattr(con, "is_jupyter", False)))
        console = con
    if mode == "bar":
        return BarProgress(total, show_eval, console=console)
    return LineProgress(total, show_eval, log_every_s=log_every_s, stream=stream)
