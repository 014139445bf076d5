"""Exact per-agent trust-region programs over tabular policies (theory.md §1.9, §1.10, §1.11, §2.3).

Every exact update of :mod:`seqmarl.theory.iteration` reduces, for one agent with old table ``q[S, A]``, to one of

* ``max_P sum_s <lin_s, P_s> - c max_s KL(q_s || P_s)``                 (HATRPO Algorithm 1)   :func:`solve_max_kl_penalty`
* ``max_P sum_s w_s <g_s, P_s>  s.t.  sum_s w_s KL(q_s || P_s) <= delta``  (HATRPO eq. 7)         :func:`solve_mean_kl_ball`
* ``max_P <g_s, P_s> - lam KL(q_s || P_s)  s.t.  KL(q_s || P_s) <= delta`` per row (HAML drift) :func:`solve_state_kl_penalty_ball`
* the clipped HAPPO objective, a linear program (solved exactly by its greedy structure)        :func:`solve_happo_lp`

The KL programs are solved through their KKT conditions (one-dimensional monotone roots, safeguarded Newton),
exact to about 1e-13 relative. Generic reference solvers (cvxpy's exponential cone for the KL programs, HiGHS for
the HAPPO LP) live with the theorem checks (:mod:`seqmarl.proofs_checks._reference`) as cross-checks: their
tolerances (about 1e-8 absolute) are too coarse when the optimal KL is tiny, as with Algorithm 1's large penalty
constant ``C = 4 gamma max|A| / (1 - gamma)^2``.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
from scipy.optimize import brentq

_X_FLOOR = 1e-100  # smallest nu - max l, in units of the row's gain spread (P is then a vertex to ~1e-100)


def _check_rows(old: np.ndarray, other: np.ndarray, name: str) -> tuple[np.ndarray, np.ndarray]:
    old = np.asarray(old, dtype=np.float64)
    other = np.asarray(other, dtype=np.float64)
    if old.ndim != 2 or other.shape != old.shape:
        raise ValueError(f"old must be [S, A] and {name} the same shape, got {old.shape} and {other.shape}")
    if np.any(old < 0) or not np.allclose(old.sum(axis=1), 1.0, atol=1e-9):
        raise ValueError("old must hold one probability distribution per row")
    if not np.all(np.isfinite(other)):
        raise ValueError(f"{name} must be finite")
    return old, other


class KLTilt:
    """Row-wise solutions of ``max_P <l_s, P> - mu_s KL(q_s || P)`` over the simplex.

    KKT: on the support of ``q``, ``P_a = mu q_a / (nu - l_a)`` with ``nu > m = max_{supp} l``; an action off the
    support gets mass only if ``l_a = nu``. With ``x = nu - m`` and ``d_a = m - l_a >= 0`` (both in units of the
    row's spread ``sigma = max(max d, x_c)``, which leaves ``P`` and ``KL`` unchanged and scales ``mu``):

        Z(x) = sum_a q_a / (x + d_a),   P_a = q_a / ((x + d_a) Z),   mu = 1 / Z,   KL(q || P) = sum_a q_a log((x + d_a) Z)

    (evaluated in a cancellation-free form, see ``_kl_parts``). ``KL`` decreases and ``mu`` increases with ``x``;
    ``dKL/dx = -sum_a q_a (1/(x + d_a) - Z)^2`` and ``d log mu / d log x = x Z_2 / Z``, ``Z_2 = sum q/(x+d)^2``.

    If an off-support action beats the support (``l* = max_off l > m``) then ``x >= x_c = l* - m``; at ``x = x_c``
    the multiplier can still drop below ``mu_c = 1 / Z(x_c)`` (the "corner"): ``P_supp = mu q / (x_c + d)``, the
    remaining mass spread evenly over the best off-support actions, ``KL = sum q log(x_c + d) - log mu``.
    A row with ``d = 0`` and no better off-support action is "flat": ``P = q`` is optimal for every ``mu``.
    """

    def __init__(self, q: np.ndarray, l: np.ndarray):
        q, l = _check_rows(q, l, "l")
        self.q = q
        self.supp = q > 0
        m = np.where(self.supp, l, -np.inf).max(axis=1)
        d = np.where(self.supp, m[:, None] - l, 0.0)
        lstar = np.where(self.supp, -np.inf, l).max(axis=1)
        self.corner = lstar > m
        xc = np.where(self.corner, lstar - m, 0.0)
        self.flat = (d.max(axis=1) == 0) & ~self.corner
        self.sigma = np.where(self.flat, 1.0, np.maximum(d.max(axis=1), xc))
        self.d = d / self.sigma[:, None]
        self.xc = xc / self.sigma
        self.dmax = self.d.max(axis=1)
        best_off = ~self.supp & (l == lstar[:, None]) & self.corner[:, None]
        self.off_share = np.where(best_off, 1.0 / np.maximum(best_off.sum(axis=1, keepdims=True), 1), 0.0)
        self.q0 = np.where(self.supp & (self.d == 0), q, 0.0).sum(axis=1)
        self.x_min = np.maximum(self.xc, _X_FLOOR)
        safe_xc = np.where(self.corner, self.xc, 1.0)
        self.log_xc_d = np.where(self.supp, q * np.log(np.where(self.supp, safe_xc[:, None] + self.d, 1.0)), 0.0).sum(axis=1)
        self.mu_c = np.where(self.corner, self.sigma / self._z(safe_xc), 0.0)
        self.kl_c = np.where(self.corner, self.x_regime(safe_xc)[1], np.inf)

    # --- closed forms along the two branches (x in normalised units, mu in original units) ------------
    def _z(self, x: np.ndarray) -> np.ndarray:
        return np.where(self.supp, self.q / (x[:, None] + self.d), 0.0).sum(axis=1)

    def _kl_parts(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``(inv, Z, u, KL)`` at normalised ``x``: ``inv = 1/(x+d)``, ``u_a = (x + d_a) Z = q_a / P_a = 1 + e_a``
        with ``e_a = d_a Z - W``, ``W = sum_a q_a d_a / (x + d_a)`` (as ``x Z + W = 1``), and

            KL = sum_a q_a log u_a                                                       (direct)
               = sum_a q_a [log1p(e_a) - e_a] + sum_a q_a (dbar - d_a)^2 / ((x + d_a)(x + dbar))   (near q)

        (``sum_a q_a e_a`` equals the last sum exactly). Near ``q`` (every ``|e_a| < 1/2``) the second form keeps
        the relative accuracy of a tiny KL, where the direct sum would cancel; far from ``q`` its two sums are
        both huge and cancel catastrophically (an action with ``P_a -> 0`` has ``e_a -> inf``), so there the direct
        form is used: its absolute error is about ``eps (1 + max_a |log u_a|)``, small next to a KL that is not
        itself tiny (some ``|e_a| >= 1/2``)."""
        inv = np.where(self.supp, 1.0 / (x[:, None] + self.d), 0.0)
        z = (self.q * inv).sum(axis=1)
        w = (self.q * self.d * inv).sum(axis=1)
        e = np.where(self.supp, self.d * z[:, None] - w[:, None], 0.0)
        u = np.where(self.supp, (x[:, None] + self.d) * z[:, None], 1.0)
        near = np.all(np.abs(e) < 0.5, axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            curvature = np.where(near[:, None], np.log1p(np.where(near[:, None], e, 0.0)) - e, 0.0)
            direct = np.where(self.supp, self.q * np.log(u), 0.0).sum(axis=1)
        dbar = (self.q * self.d).sum(axis=1, keepdims=True)
        spread = np.where(self.supp, self.q * (dbar - self.d) ** 2 * inv / (x[:, None] + dbar), 0.0).sum(axis=1)
        close = np.where(self.supp, self.q * curvature, 0.0).sum(axis=1) + spread
        kl = np.where(near, close, direct)
        return inv, z, u, np.maximum(kl, 0.0)

    def x_regime(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(P, KL, mu)`` at ``nu = m + sigma x`` (``x > 0`` normalised, one per row)."""
        _, z, u, kl = self._kl_parts(x)
        p = np.where(self.supp, self.q / u, 0.0)
        return p / p.sum(axis=1, keepdims=True), kl, self.sigma / z

    def corner_regime(self, mu: np.ndarray, log_ratio: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """``(P, KL)`` on the corner branch ``nu = l*`` with multiplier ``mu <= mu_c`` (original units).

        ``P_supp = (mu / mu_c) q / ((x_c + d) Z(x_c))`` sums to ``mu / mu_c``; the off-support mass
        ``1 - mu/mu_c = -expm1(log(mu/mu_c))`` is computed from ``log_ratio = log(mu / mu_c)`` (default from ``mu``;
        :meth:`given_kl` passes ``kl_c - t`` exactly), not as ``1 - sum P_supp``, which cancels when little mass
        leaves the support."""
        xc = np.where(self.corner, self.xc, 1.0)
        mu_n = mu / self.sigma
        if log_ratio is None:
            with np.errstate(divide="ignore"):
                log_ratio = np.log(mu) - np.log(np.where(self.corner, self.mu_c, 1.0))
        log_ratio = np.minimum(log_ratio, 0.0)
        z_c = self._z(xc)
        p_supp = np.where(self.supp, np.exp(log_ratio)[:, None] * self.q / ((xc[:, None] + self.d) * z_c[:, None]), 0.0)
        rest = -np.expm1(log_ratio)
        with np.errstate(divide="ignore"):
            kl = self.log_xc_d - np.log(mu_n)
        return p_supp + rest[:, None] * self.off_share, kl

    def _log_kl_and_slope(self, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x = np.exp(y)
        inv, z, _, kl = self._kl_parts(x)
        var = np.where(self.supp, self.q * (inv - z[:, None]) ** 2, 0.0).sum(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.log(kl), -x * var / (z * kl)

    def _log_mu_and_slope(self, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x = np.exp(y)
        inv = np.where(self.supp, 1.0 / (x[:, None] + self.d), 0.0)
        z = (self.q * inv).sum(axis=1)
        z2 = (self.q * inv * inv).sum(axis=1)
        return np.log(self.sigma) - np.log(z), x * z2 / z

    @staticmethod
    def _newton(lo: np.ndarray, hi: np.ndarray, y: np.ndarray, fun: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]],
                target: np.ndarray, decreasing: bool) -> np.ndarray:
        """Row-wise root of ``fun(y)[0] = target`` on ``[lo, hi]``: Newton steps safeguarded by bisection.
        A root outside the bracket ends at the nearer end."""
        sign = -1.0 if decreasing else 1.0
        y = np.clip(y, lo, hi)
        for _ in range(200):
            f, df = fun(y)
            f = sign * (f - target)  # increasing in y
            df = sign * df
            lo = np.where(f < 0, y, lo)
            hi = np.where(f > 0, y, hi)
            with np.errstate(divide="ignore", invalid="ignore"):
                new = y - np.where(df > 0, f / df, np.nan)
            bad = ~np.isfinite(new) | (new < lo) | (new > hi)
            new = np.where(bad, 0.5 * (lo + hi), new)
            new = np.where(f == 0, y, new)
            moved = np.abs(new - y) > 1e-13 * np.maximum(1.0, np.abs(y))
            y = new
            if not np.any(moved):
                break
        return y

    # --- the two parametrisations -----------------------------------------------------------------
    def given_kl(self, t: np.ndarray | float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(P, KL, mu)`` of ``max <l, P>  s.t.  KL(q || P) <= t`` per row (``t > 0``); ``mu`` is the multiplier
        of the constraint (0 on flat rows, where ``P = q``)."""
        t = np.broadcast_to(np.asarray(t, dtype=np.float64), self.sigma.shape)
        p, kl, mu = self.q.copy(), np.zeros_like(self.sigma), np.zeros_like(self.sigma)
        on_corner = self.corner & (t >= self.kl_c)
        if np.any(on_corner):
            mu_corner = self.sigma * np.exp(self.log_xc_d - np.where(on_corner, t, 0.0))
            ratio = np.where(on_corner, self.kl_c - np.where(on_corner, t, 0.0), 0.0)  # log(mu / mu_c)
            pc, klc = self.corner_regime(np.where(on_corner, mu_corner, self.sigma), ratio)
            p = np.where(on_corner[:, None], pc, p)
            kl = np.where(on_corner, klc, kl)
            mu = np.where(on_corner, mu_corner, mu)
        rows = ~self.flat & ~on_corner
        if np.any(rows):
            tt = np.where(rows, t, 1.0)
            mean_d = (self.q * self.d).sum(axis=1, keepdims=True)
            var = np.where(self.supp, self.q * (self.d - mean_d) ** 2, 0.0).sum(axis=1)
            far = np.sqrt(var / (2.0 * tt))  # KL ~ Var_q(d) / (2 x^2) for large x
            lo = self.x_min
            hi = np.maximum.reduce([np.full_like(lo, 2.0), 4.0 * far, lo])
            for _ in range(200):
                short = rows & (self.x_regime(hi)[1] > tt)
                if not np.any(short):
                    break
                hi = np.where(short, 4.0 * hi, hi)
            y = self._newton(np.log(lo), np.log(hi), np.log(np.maximum(far, lo)), self._log_kl_and_slope, np.log(tt), decreasing=True)
            px, klx, mux = self.x_regime(np.exp(y))
            p = np.where(rows[:, None], px, p)
            kl = np.where(rows, klx, kl)
            mu = np.where(rows, mux, mu)
        return p, kl, mu

    def given_mu(self, mu: np.ndarray | float) -> tuple[np.ndarray, np.ndarray]:
        """``(P, KL)`` maximising ``<l, P> - mu KL(q || P)`` per row (``mu > 0``)."""
        mu = np.broadcast_to(np.asarray(mu, dtype=np.float64), self.sigma.shape)
        p, kl = self.q.copy(), np.zeros_like(self.sigma)
        on_corner = self.corner & (mu <= self.mu_c)
        if np.any(on_corner):
            pc, klc = self.corner_regime(np.where(on_corner, mu, self.sigma))
            p = np.where(on_corner[:, None], pc, p)
            kl = np.where(on_corner, klc, kl)
        rows = ~self.flat & ~on_corner
        if np.any(rows):
            mu_n = np.where(rows, mu / self.sigma, 1.0)
            # mu(x) lies in [x, x + max d] and below x / q0: bracket x accordingly
            lo = np.maximum.reduce([self.x_min, mu_n - self.dmax, mu_n * self.q0])
            hi = np.maximum(mu_n, lo)
            guess = np.clip(mu_n - (self.q * self.d).sum(axis=1), lo, hi)
            y = self._newton(np.log(lo), np.log(hi), np.log(guess), self._log_mu_and_slope,
                             np.log(np.where(rows, mu, self.sigma)), decreasing=False)
            px, klx, _ = self.x_regime(np.exp(y))
            p = np.where(rows[:, None], px, p)
            kl = np.where(rows, klx, kl)
        return p, kl


def _decreasing_root(f: Callable[[float], float], start: float, lo_bound: float = -690.0, hi_bound: float = 690.0) -> float:
    """Root in ``y`` of a decreasing ``f`` (``y`` a log-parameter): bracket expansion, then ``brentq``; a root
    beyond ``[lo_bound, hi_bound]`` is clamped to the bound."""
    lo = hi = float(np.clip(start, lo_bound, hi_bound))
    while f(lo) < 0:
        if lo <= lo_bound:
            return lo_bound
        lo = max(lo - 4.0, lo_bound)
    while f(hi) > 0:
        if hi >= hi_bound:
            return hi_bound
        hi = min(hi + 4.0, hi_bound)
    if lo == hi:
        return lo
    return brentq(f, lo, hi, xtol=1e-14, rtol=4 * np.finfo(float).eps, maxiter=500)


def solve_max_kl_penalty(old: np.ndarray, lin: np.ndarray, c: float) -> np.ndarray:
    """Exact ``argmax_P sum_s <lin_s, P_s> - c max_s KL(old_s || P_s)`` (HATRPO Algorithm 1, theory.md §1.9).

    Epigraph form ``max sum_s <lin_s, P_s> - c t  s.t.  KL_s <= t``: the multipliers satisfy ``sum_s mu_s = c``
    and each row solves its own ball ``KL_s <= t`` with multiplier ``mu_s(t)`` (decreasing in ``t``), so ``t``
    is the root of ``sum_s mu_s(t) = c``. With a single row that can gain (one state, or every other row flat:
    ``P_s = old_s`` is optimal there for any multiplier, so ``mu_s = 0``) that row's multiplier is ``c`` itself and
    the program is the row's penalised tilt ``max <lin_s, P> - c KL_s``, solved directly."""
    if not np.isfinite(c) or c <= 0:
        raise ValueError(f"c must be a positive finite penalty, got {c}")
    tilt = KLTilt(old, lin)
    if np.all(tilt.flat):
        return tilt.q.copy()
    if int(np.sum(~tilt.flat)) == 1:
        return tilt.given_mu(np.where(tilt.flat, 1.0, c))[0]
    # As t -> 0 a row's multiplier tends to mu_c if it is a pure corner row (its support cannot move: kl_c = 0, the
    # only way to gain is mass off the support) and to infinity otherwise. If those limits fit in c, t = 0: P = old.
    pure_corner = tilt.corner & (tilt.kl_c <= 0.0)
    if np.all(tilt.flat | pure_corner) and float(np.sum(np.where(pure_corner, tilt.mu_c, 0.0))) <= c:
        return tilt.q.copy()
    spread = float(np.max(tilt.sigma[~tilt.flat]))
    y = _decreasing_root(lambda y: float(tilt.given_kl(np.exp(y))[2].sum() - c), start=2.0 * np.log(spread / c))
    return tilt.given_kl(np.exp(y))[0]


def solve_mean_kl_ball(old: np.ndarray, g: np.ndarray, w: np.ndarray, delta: float) -> np.ndarray:
    """Exact ``argmax_P sum_s w_s <g_s, P_s>  s.t.  sum_s w_s KL(old_s || P_s) <= delta`` (theory.md §1.10 eq. 7).

    One multiplier ``mu``: ``P_s = argmax <g_s, P> - mu KL_s`` and ``sum_s w_s KL_s(mu) = delta``. Rows with
    ``w_s = 0`` keep ``old``."""
    old, g = _check_rows(old, g, "g")
    w = np.asarray(w, dtype=np.float64)
    if w.shape != (old.shape[0],) or np.any(w < 0):
        raise ValueError(f"w must be non-negative weights of shape ({old.shape[0]},)")
    if not np.isfinite(delta) or delta <= 0:
        raise ValueError(f"delta must be a positive finite radius, got {delta}")
    rows = w > 0
    out = old.copy()
    if not np.any(rows):
        return out
    tilt = KLTilt(old[rows], g[rows])
    if np.all(tilt.flat):
        return out
    ws = w[rows]
    spread = float(np.max(tilt.sigma[~tilt.flat]))
    y = _decreasing_root(lambda y: float(ws @ tilt.given_mu(np.exp(y))[1] - delta), start=float(np.log(spread)))
    out[rows] = tilt.given_mu(np.exp(y))[0]
    return out


def solve_state_kl_penalty_ball(old: np.ndarray, g: np.ndarray, lam: float, delta: float) -> np.ndarray:
    """Exact row-wise ``argmax_P <g_s, P> - lam KL(old_s || P)  s.t.  KL(old_s || P) <= delta`` (theory.md §2.3):
    the penalised maximiser if it lies in the ball, else the ball's boundary maximiser."""
    if not np.isfinite(lam) or lam < 0:
        raise ValueError(f"lam must be a finite number >= 0, got {lam}")
    if not np.isfinite(delta) or delta <= 0:
        raise ValueError(f"delta must be a positive finite radius, got {delta}")
    tilt = KLTilt(old, g)
    n = tilt.q.shape[0]
    if lam > 0:
        p, kl = tilt.given_mu(np.full(n, lam))
        inside = kl <= delta
    else:
        p, inside = tilt.q.copy(), np.zeros(n, dtype=bool)
    if not np.all(inside):
        p = np.where(inside[:, None], p, tilt.given_kl(np.full(n, delta))[0])
    return p


def happo_objective(old: np.ndarray, new: np.ndarray, w_plus: np.ndarray, w_minus: np.ndarray, clip: float) -> np.ndarray:
    """Per-row clipped objective ``sum_a [W+ min(r, 1+eps) + W- max(r, 1-eps)]``, ``r = new/old`` (0 off-support),
    theory.md §1.11."""
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.where(old > 0, new / np.where(old > 0, old, 1.0), 0.0)
    return np.sum(w_plus * np.minimum(r, 1.0 + clip) + w_minus * np.maximum(r, 1.0 - clip), axis=1)


def solve_happo_lp(old: np.ndarray, w_plus: np.ndarray, w_minus: np.ndarray, rho: np.ndarray, clip: float) -> np.ndarray:
    """Exact maximiser of ``sum_s rho(s) sum_a [W+ min(r, 1+eps) + W- max(r, 1-eps)]`` with ``r = P/old`` on the
    support of ``old`` and ``P = 0`` off it (theory.md §1.11): a linear program, solved exactly by its structure.

    The objective separates over states (``rho(s) > 0`` only scales a state; a state with ``rho(s) = 0`` keeps
    ``old``) and, within a state, over actions: with ``q = old_a`` and ``W+ >= 0 >= W-``,
    ``f_a(P) = W+ min(P/q, 1+eps) + W- max(P/q, 1-eps)`` is concave piecewise linear with slopes ``W+/q`` on
    ``[0, (1-eps) q]``, ``(W+ + W-)/q`` on ``[(1-eps) q, (1+eps) q]`` and ``W-/q`` beyond. A separable concave
    function on ``{P >= 0, sum_a P_a = 1}`` is maximised by spending the unit budget on the steepest pieces first;
    with ``lambda*`` the slope at which the budget runs out, the maximisers are exactly the tables with
    ``P_a`` in ``[lo_a, hi_a]`` (``lo_a`` = length of ``a``'s pieces steeper than ``lambda*``, ``hi_a`` = ``lo_a``
    plus its pieces of slope ``lambda*``) summing to 1 (KKT with multiplier ``lambda*``). Among them the one
    nearest ``old`` in L1 is returned: ``old`` clipped to the box, the remaining surplus or deficit spread over the
    actions with room in proportion to it (every such move costs the same L1). Slopes within
    ``1e-12 max(1, max |slope|)`` of ``lambda*`` count as equal (rounding in ``W``), so an indifferent agent keeps
    its table. No tolerance-based solver is involved: an LP solver's absolute tolerances cannot resolve the tiny
    gains of a nearly converged policy (``W ~ 1e-11``) next to the steep slopes of a nearly abandoned action."""
    old = np.asarray(old, dtype=np.float64)
    if old.ndim != 2:
        raise ValueError(f"old must be a [S, A] table, got shape {old.shape}")
    if not 0 < clip < 1:
        raise ValueError(f"clip must lie in (0, 1), got {clip}")
    w_plus = np.asarray(w_plus, dtype=np.float64)
    w_minus = np.asarray(w_minus, dtype=np.float64)
    rho = np.asarray(rho, dtype=np.float64)
    if w_plus.shape != old.shape or w_minus.shape != old.shape or rho.shape != (old.shape[0],):
        raise ValueError(f"w_plus, w_minus must be {old.shape} and rho ({old.shape[0]},), got "
                         f"{w_plus.shape}, {w_minus.shape}, {rho.shape}")
    if np.any(w_plus < 0) or np.any(w_minus > 0):
        raise ValueError("w_plus must be >= 0 and w_minus <= 0")
    out = old.copy()
    for s in range(old.shape[0]):
        support = np.flatnonzero(old[s] > 0)
        if rho[s] <= 0 or support.size == 0:
            continue
        out[s] = 0.0
        out[s, support] = _happo_row(old[s, support], w_plus[s, support], w_minus[s, support], clip)
    return out


def _happo_row(q: np.ndarray, wp: np.ndarray, wm: np.ndarray, clip: float) -> np.ndarray:
    """L1-nearest maximiser of ``sum_a f_a(P_a)`` on the simplex for one state (see :func:`solve_happo_lp`)."""
    k = q.size
    slopes = np.stack([wp / q, (wp + wm) / q, wm / q], axis=1)  # [k, 3], non-increasing along the pieces
    lengths = np.stack([(1.0 - clip) * q, 2.0 * clip * q, np.full(k, np.inf)], axis=1)
    tol = 1e-12 * max(1.0, float(np.max(np.abs(slopes))))
    order = np.argsort(-slopes.ravel(), kind="stable")
    cumulative = np.cumsum(lengths.ravel()[order])
    lam = float(slopes.ravel()[order[int(np.searchsorted(cumulative, 1.0))]])
    steeper = slopes > lam + tol
    level = np.abs(slopes - lam) <= tol
    lo = np.where(steeper, lengths, 0.0).sum(axis=1)
    hi = lo + np.where(level, lengths, 0.0).sum(axis=1)
    p = np.clip(q, lo, hi)
    gap = 1.0 - float(p.sum())
    if gap > 0:
        room = hi - p
        finite = np.isfinite(room)
        total = float(room[finite].sum())
        if total >= gap:
            p = p + np.where(finite, room, 0.0) * (gap / total) if total > 0 else p
        else:
            p = np.where(finite, hi, p)
            p = p + np.where(finite, 0.0, (1.0 - float(p.sum())) / max(int(np.sum(~finite)), 1))
    elif gap < 0:
        room = p - lo
        p = p - room * (-gap / float(room.sum()))
    return p
