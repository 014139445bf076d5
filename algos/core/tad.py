r"""The parts of TAD-PPO (Ye et al., arXiv 2207.11143, "Transformation And Distillation"; theory.md §6.1) that do
not depend on the agent object: the sub-step critic, GAE over the sub-step sequence, the distillation loss.

**The transformed MDP** ``M~`` (:mod:`seqmarl.theory.transform`, convention ``"one_then_gamma"``). Every env step
``t`` with joint action ``a_t = (a_t^1, ..., a_t^n)`` (execution order ``0, 1, ..., n-1``) becomes ``n`` sub-steps;
at sub-step ``k`` the single agent of ``M~`` is in state ``x_{t,k} = (s_t, a_t^{<k})`` and chooses ``a_t^k``. The
sub-step reward and discount are

.. math:: \tilde r_{t,k} = \begin{cases} 0 & k < n-1 \\ r_t & k = n-1 \end{cases}, \qquad
          \tilde d_{t,k} = \begin{cases} 1 & k < n-1 \\ \gamma & k = n-1 \end{cases},

so ``V~(s, ()) = V(s)`` and ``V~(s, a^{<k}) = E[Q(s, a) | a^{<k}]`` under the policy (theory.md §6.1).

**Sub-step TD errors and GAE** (:func:`substep_gae`), with ``V_{t,k} = V~(x_{t,k})``:

.. math:: \delta_{t,k} = V_{t,k+1} - V_{t,k}\ (k < n-1), \qquad
          \delta_{t,n-1} = r_t + \gamma (1 - \mathrm{term}_t) V'_t - V_{t,n-1},

.. math:: A_{t,k} = \delta_{t,k} + \lambda_{in} A_{t,k+1}\ (k < n-1), \qquad
          A_{t,n-1} = \delta_{t,n-1} + \gamma \lambda (1 - \mathrm{done}_t) A_{t+1,0},

where ``V'_t = V~(s_{t+1}, ())`` (the final pre-reset state for a truncated step) and ``lambda_in`` is the GAE
lambda of the ``n - 1`` intra-step transitions (discount 1 there). With ``lambda_in = lambda`` this is exactly GAE
of single-agent PPO run on ``M~`` (every transition of ``M~`` alike). Identities (tested):

* telescoping: ``sum_k delta_{t,k} = r_t + gamma (1 - term_t) V'_t - V_{t,0}``, the joint TD error of step ``t``;
* with ``lambda_in = 1``: ``A_{t,0}`` equals the joint GAE advantage ``A_t`` of the critic ``V(s) = V~(s, ())``,
  and ``A_{t,k} = A_t - sum_{j<k} delta_{t,j}``;
* with ``n = 1`` it is :func:`seqmarl.algos.core.gae.compute_gae`;
* with the exact ``V~`` of a policy, ``E[delta_{t,k} | x_{t,k}, a_t^k] = A^{k}(s, a^{<k}, a^k)``, the ``k``-th term
  of the multi-agent advantage decomposition (ICLR22 Lemma 1, theory.md §1.6).

**Distillation** (:func:`distillation_loss`): decentralised students ``pi^i_phi(a^i | o^i)`` imitate the teacher
``pi~(a^i | o, a^{<i})`` on the teacher's own rollouts (theory.md §6.1; "KL-based behavior cloning" in Ye et al.).
Continuous (Gaussian) students use closed-form per-sample Gaussian KLs (the marginal's KL has no closed form):
see :func:`distillation_loss`.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ._checks import check_flag_tensor, check_int, check_prob, check_tensor
from .networks import Critic

Tensor = torch.Tensor

__all__ = ["SubstepCritic", "substep_gae", "substep_td_errors", "greedy_targets", "greedy_mean_targets",
           "gaussian_kl", "distillation_loss", "DISTILL_LOSSES"]

DISTILL_LOSSES = ("greedy", "soft", "hard")


class SubstepCritic(nn.Module):
    r"""The sub-step value ``V~(s, a^{<k})`` of the transformed MDP, one MLP for every position ``k``.

    Input of position ``k`` (execution order ``0..n-1``): the centralised state ``s``, the actions of the agents
    before ``k`` (``phi(a^j) * 1[j < k]`` for every agent ``j``, ``n * W`` entries, zero for the agents at or after
    ``k``) and the one-hot position ``e_k`` (``n`` entries); so the input dimension is ``state_dim + n * W + n``.
    Discrete actions: ``phi(a) = onehot(a)``, ``W = A_max`` (``n_actions_max``); continuous actions
    (``continuous=True``): ``phi(a) = a``, the action vector padded to ``W = d_max`` (``n_actions_max`` is then
    ``d_max``; the sampler leaves the padded dimensions at 0). ``forward(state)`` is position 0 (no earlier
    actions): ``V~(s, ()) = V(s)``, what the trainer stores during collection; :meth:`substep_values` gives every
    position at once.
    """

    def __init__(self, state_dim: int, n_agents: int, n_actions_max: int, hidden: Sequence[int] = (64, 64), *,
                 activation: str = "relu", layer_norm: bool = False, feature_norm: bool = False,
                 continuous: bool = False, device: torch.device | str | None = None,
                 dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        self.state_dim = check_int(state_dim, "state_dim")
        self.n_agents = check_int(n_agents, "n_agents")
        self.n_actions_max = check_int(n_actions_max, "n_actions_max")
        if not isinstance(continuous, bool):
            raise TypeError(f"continuous must be a bool, got {type(continuous).__name__}")
        self.continuous = continuous
        n, A = self.n_agents, self.n_actions_max
        self.net = Critic(state_dim + n * A + n, tuple(hidden), activation=activation, layer_norm=layer_norm,
                          feature_norm=feature_norm, device=device, dtype=dtype)
        # before[k, j] = 1 if agent j acts before position k (fixed order 0..n-1)
        before = torch.arange(n).unsqueeze(0) < torch.arange(n).unsqueeze(1)
        self.register_buffer("before", before.to(device=device, dtype=dtype), persistent=False)
        self.register_buffer("positions", torch.eye(n, device=device, dtype=dtype), persistent=False)

    def _check_state(self, state: Tensor) -> tuple[int, ...]:
        check_tensor(state, "state", floating=True, ndim_min=1)
        if state.shape[-1] != self.state_dim:
            raise ValueError(f"state must end with state_dim = {self.state_dim}, got shape {tuple(state.shape)}")
        return tuple(state.shape[:-1])

    def _features(self, actions: Tensor, lead: tuple[int, ...], dtype: torch.dtype) -> Tensor:
        """``phi(a^j)`` ``[..., n, W]`` of checked ``actions``."""
        check_tensor(actions, "actions")
        n, A = self.n_agents, self.n_actions_max
        if self.continuous:
            if not actions.is_floating_point():
                raise TypeError(f"continuous actions must be a floating tensor, got dtype {actions.dtype}")
            if tuple(actions.shape) != lead + (n, A):
                raise ValueError(f"actions must have shape {lead + (n, A)} (..., n_agents, d_max), "
                                 f"got {tuple(actions.shape)}")
            return actions.to(dtype)
        if actions.is_floating_point() or actions.dtype == torch.bool:
            raise TypeError(f"actions must be an integer tensor, got dtype {actions.dtype}")
        if tuple(actions.shape) != lead + (n,):
            raise ValueError(f"actions must have shape {lead + (n,)}, got {tuple(actions.shape)}")
        if actions.numel() and (bool((actions < 0).any()) or bool((actions >= A).any())):
            raise ValueError(f"actions must lie in [0, {A})")
        return nn.functional.one_hot(actions.long(), A).to(dtype)

    def substep_inputs(self, state: Tensor, actions: Tensor) -> Tensor:
        """The critic inputs of every position: ``state [..., d]``, ``actions [..., n]`` (discrete) or
        ``[..., n, d_max]`` (continuous) -> ``[..., n, d_in]``."""
        lead = self._check_state(state)
        n, A = self.n_agents, self.n_actions_max
        phi = self._features(actions, lead, state.dtype)  # [..., n(j), A]
        prefix = phi.unsqueeze(-3) * self.before.unsqueeze(-1)  # [..., n(k), n(j), A]
        prefix = prefix.reshape(lead + (n, n * A))
        pos = self.positions.expand(lead + (n, n))
        return torch.cat([state.unsqueeze(-2).expand(lead + (n, self.state_dim)), prefix, pos], -1)

    def substep_values(self, state: Tensor, actions: Tensor) -> Tensor:
        """``V~(s, a^{<k})`` for every position ``k``: ``[..., n]`` (position k = agent k)."""
        return self.net(self.substep_inputs(state, actions))

    def forward(self, state: Tensor) -> Tensor:
        """``V~(s, ())`` (position 0): ``[...]``."""
        lead = self._check_state(state)
        n, A = self.n_agents, self.n_actions_max
        extra = torch.zeros(lead + (n * A + n,), device=state.device, dtype=state.dtype)
        extra[..., n * A] = 1.0  # e_0
        return self.net(torch.cat([state, extra], -1))


def _check_substep_inputs(rewards: Tensor, values: Tensor, next_values: Tensor, terminated: Tensor,
                          truncated: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    check_tensor(values, "values", floating=True, ndim_min=3)
    if values.dim() != 3:
        raise ValueError(f"values must have shape [T, B, n] (one value per sub-step), got {tuple(values.shape)}")
    T, B, _ = values.shape
    for name, x in (("rewards", rewards), ("next_values", next_values)):
        check_tensor(x, name, floating=True)
        if tuple(x.shape) != (T, B):
            raise ValueError(f"{name} must have shape [T, B] = {(T, B)}, got {tuple(x.shape)}")
    term = check_flag_tensor(terminated, "terminated")
    trunc = check_flag_tensor(truncated, "truncated")
    for name, x in (("terminated", term), ("truncated", trunc)):
        if tuple(x.shape) != (T, B):
            raise ValueError(f"{name} must have shape [T, B] = {(T, B)}, got {tuple(x.shape)}")
    return rewards.to(values.dtype), next_values.to(values.dtype), term, trunc


def substep_td_errors(rewards: Tensor, values: Tensor, next_values: Tensor, terminated: Tensor,
                      gamma: float) -> Tensor:
    r"""The sub-step TD errors ``delta_{t,k}`` ``[T, B, n]`` of the module docstring: ``V_{t,k+1} - V_{t,k}``
    inside the step, ``r_t + gamma (1 - term_t) V'_t - V_{t,n-1}`` on the last sub-step."""
    rewards, next_values, term, _ = _check_substep_inputs(rewards, values, next_values, terminated,
                                                          torch.zeros_like(terminated, dtype=torch.bool))
    gamma = check_prob(gamma, "gamma")
    deltas = torch.empty_like(values)
    deltas[..., :-1] = values[..., 1:] - values[..., :-1]
    deltas[..., -1] = rewards + gamma * (~term).to(values.dtype) * next_values - values[..., -1]
    return deltas


def substep_gae(rewards: Tensor, values: Tensor, next_values: Tensor, terminated: Tensor, truncated: Tensor,
                gamma: float, lam: float, inner_lam: float) -> tuple[Tensor, Tensor]:
    r"""GAE over the sub-step sequence of the transformed MDP (module docstring): ``(advantages, returns)``, both
    ``[T, B, n]`` with ``returns = advantages + values``.

    Args:
        rewards: ``[T, B]`` env rewards ``r_t`` (carried by the last sub-step only).
        values: ``[T, B, n]`` de-normalised ``V~(s_t, a_t^{<k})``.
        next_values: ``[T, B]`` de-normalised ``V~(s_{t+1}, ())`` (for a truncated step, of the final pre-reset
            state; ignored where terminated).
        terminated, truncated: ``[T, B]`` flags; both cut the recursion between env steps (never inside one).
        gamma: the env discount, applied on the last sub-step only. lam: GAE lambda across env steps.
        inner_lam: GAE lambda of the intra-step transitions (discount 1).
    """
    rewards, next_values, term, trunc = _check_substep_inputs(rewards, values, next_values, terminated, truncated)
    gamma = check_prob(gamma, "gamma")
    lam = check_prob(lam, "lam")
    inner_lam = check_prob(inner_lam, "inner_lam")
    deltas = substep_td_errors(rewards, values, next_values, term, gamma)
    not_done = (~(term | trunc)).to(values.dtype)
    T, _, n = values.shape
    advantages = torch.empty_like(values)
    running = torch.zeros_like(values[0, :, 0])  # A_{t+1, 0}
    for t in range(T - 1, -1, -1):
        a = deltas[t, :, n - 1] + gamma * lam * not_done[t] * running
        advantages[t, :, n - 1] = a
        for k in range(n - 2, -1, -1):
            a = deltas[t, :, k] + inner_lam * a
            advantages[t, :, k] = a
        running = a
    return advantages, advantages + values


def greedy_targets(students, teacher, obs: Tensor, avail: Tensor | None = None, keep: float = 0.5) -> Tensor:
    r"""The joint action ``g [..., n]`` the students are distilled to with ``kind="greedy"`` (no gradient):
    agent by agent in the order ``0..n-1``, with ``p_k = pi~(. | o, g^{<k})`` the teacher's conditional given the
    targets already chosen and ``c_k = argmax pi^k_phi(. | o^k)`` the student's current choice,

    .. math:: g^k = \begin{cases} c_k & p_k(c_k) \ge \rho \max_a p_k(a) \\ \arg\max_a p_k(a) & \text{otherwise,}
              \end{cases}

    ``rho = keep``. With a deterministic teacher this is its greedy joint action, i.e. theory.md §6.1's
    ``pi^k(s) = pi~(s, pi^1(s), ..., pi^{k-1}(s))`` (:func:`seqmarl.theory.transform.distill`), for any
    ``rho in (0, 1]``. The hysteresis (``rho < 1``) matters for a teacher that mixes several optimal joint actions
    (penalty: (a,a) and (c,c) about 50/50): its modes flip from update to update, and a plain argmax target would
    drag the students back and forth; here a student keeps its choice while the teacher still plays it with at
    least ``rho`` times the probability of its mode, and the later agents' targets follow the teacher's
    conditionals GIVEN those choices, so the students commit to ONE of the teacher's joint actions.

    A continuous teacher gets :func:`greedy_mean_targets` (``students`` and ``keep`` unused: a Gaussian conditional
    has one mode, its mean, so there is no tie to break)."""
    rho = check_prob(keep, "keep")
    if not getattr(teacher, "discrete", True):
        return greedy_mean_targets(teacher, obs)
    with torch.no_grad():
        lead = tuple(obs.shape[:-2])
        n = students.n_agents
        g = torch.zeros(lead + (n,), dtype=torch.long, device=obs.device)
        for k in range(n):
            p = teacher.distribution(obs, g, avail).probs[..., k, :]  # causal: entries >= k do not matter
            c = students.distribution_agent(k, obs[..., k, :], None if avail is None else avail[..., k, :]).probs
            choice = c.argmax(-1)
            best = p.max(-1).values
            p_choice = p.gather(-1, choice.unsqueeze(-1)).squeeze(-1)
            g[..., k] = torch.where(p_choice >= rho * best, choice, p.argmax(-1))
    return g


def greedy_mean_targets(teacher, obs: Tensor) -> Tensor:
    r"""The greedy joint action of a continuous (Gaussian) teacher, ``g [..., n, d_max]`` (no gradient): agent by
    agent in the order ``0..n-1``, ``g^k`` is the MEAN of the teacher's conditional given the targets already
    chosen,

    .. math:: g^k = \tilde\mu^k(o, g^{<k}),

    the deterministic decentralised policies ``pi^k(s) = pi~(s, pi^1(s), ..., pi^{k-1}(s))`` of theory.md §6.1
    with every conditional replaced by its mode (padded dimensions 0)."""
    with torch.no_grad():
        lead = tuple(obs.shape[:-2])
        n, d = teacher.n_agents, teacher.size_max
        valid = teacher.valid.to(obs.dtype)
        g = torch.zeros(lead + (n, d), dtype=obs.dtype, device=obs.device)
        for k in range(n):
            mean = teacher.distribution(obs, g).mean[..., k, :]  # causal: entries >= k do not matter
            g[..., k, :] = mean * valid[k]
    return g


def gaussian_kl(mean_p: Tensor, log_std_p: Tensor, mean_q: Tensor, log_std_q: Tensor) -> Tensor:
    r"""Per-dimension ``KL(N(m_p, s_p^2) || N(m_q, s_q^2))`` (broadcast shapes, no sum):

    .. math:: \log\frac{s_q}{s_p} + \frac{s_p^2 + (m_p - m_q)^2}{2 s_q^2} - \frac12 ."""
    var_ratio = torch.exp(2.0 * (log_std_p - log_std_q))
    return log_std_q - log_std_p + 0.5 * (var_ratio + ((mean_p - mean_q) * torch.exp(-log_std_q)) ** 2) - 0.5


def _continuous_distillation(students, teacher, obs: Tensor, actions: Tensor, kind: str) -> Tensor:
    """The continuous branch of :func:`distillation_loss` (its docstring)."""
    n = students.n_agents
    if kind == "hard":
        return -students.log_prob(obs, actions).sum(-1).mean()
    with torch.no_grad():
        if kind == "greedy":
            centres = greedy_mean_targets(teacher, obs)  # [m, n, d_max]
            log_std = teacher.distribution(obs, centres).log_std
        else:
            dist = teacher.distribution(obs, actions)
            centres, log_std = dist.mean, dist.log_std
    valid = students.valid.to(obs.dtype)
    total = obs.new_zeros(())
    for i in range(n):
        q = students.distribution_agent(i, obs[..., i, :])  # DiagGaussian over d_i (separate) or d_max (shared)
        w = q.mean.shape[-1]
        kl = gaussian_kl(centres[..., i, :w], log_std[..., i, :w], q.mean, q.log_std) * valid[i, :w]
        total = total + kl.sum(-1).mean()
    return total


def distillation_loss(students, teacher, obs: Tensor, actions: Tensor, avail: Tensor | None = None,
                      kind: str = "greedy", keep: float = 0.5) -> Tensor:
    r"""Behaviour-cloning loss of decentralised students on the teacher's samples (to MINIMISE).

    ``students``: :class:`~seqmarl.algos.core.networks.MultiAgentActors` (``pi^i_phi(a^i | o^i)``); ``teacher``:
    an auto-regressive :class:`~seqmarl.algos.core.joint_policy.JointPolicy` with ``distribution(obs, actions,
    avail)`` (the conditionals ``pi~(. | o, a^{<i})`` teacher-forced on the sampled ``actions``). ``obs [m, n, d]``,
    ``actions [m, n]`` drawn from the teacher, ``avail [m, n, A_max]``.

    * ``kind="greedy"`` (theory.md §6.1 MMDP distillation, :func:`seqmarl.theory.transform.distill`): the target
      is the teacher's greedy joint action ``g_b`` (:func:`greedy_targets`, with the students' own choices kept
      while the teacher still plays them with at least ``keep`` times its mode's probability), and
      :math:`L(\phi) = -\sum_i \frac1m \sum_b \log \pi^i_\phi(g^i_b | o^i_b)`;
    * ``kind="soft"`` (KL-based behaviour cloning): with ``p_b^i = pi~(. | o_b, a_b^{<i})`` (no gradient),

      .. math:: L(\phi) = \sum_i \frac1m \sum_b \mathrm{KL}\big(p_b^i \,\|\, \pi^i_\phi(\cdot|o^i_b)\big)
                = \sum_i \frac1m \sum_b \Big[-\sum_a p_b^i(a) \log \pi^i_\phi(a|o^i_b)\Big] + \text{const};

    * ``kind="hard"`` (cross-entropy on the sampled actions):
      :math:`L(\phi) = -\sum_i \frac1m \sum_b \log \pi^i_\phi(a^i_b | o^i_b)`.

    What each converges to. ``greedy``: for one observation value the loss is the cross-entropy to a one-hot
    target, minimised (infimum) by ``q -> onehot(g^i)``: the students converge to the deterministic
    decentralised policies ``pi^i(s) = pi~(s, pi^1(s), ..., pi^{i-1}(s))`` of theory.md §6.1, whose product IS the
    teacher's greedy joint action — exact even when the teacher is a stochastic mixture of several optimal joint
    actions (penalty's (a,a)/(c,c), xor's (a,b)/(b,a)), where matching marginals loses the correlation.
    ``soft``/``hard``: the minimiser is the teacher's marginal: for one observation value ``o^i`` the loss is
    ``-sum_a pbar(a) log q(a)`` with ``pbar`` the average target over the samples with that observation (the
    cross-entropy is linear in its target), and by Gibbs' inequality it is minimised by ``q = pbar``. For the
    soft loss ``E[p_b^i] = E_{a^{<i} ~ pi~}[pi~(. | o, a^{<i})] = pi~^i(. | o)``, the teacher's marginal (law of
    total probability; lower variance than the hard target ``onehot(a^i_b)``, whose expectation is the same). On
    an MMDP (``o^i = s``) a deterministic teacher's marginals multiply back to its joint policy, so the students
    reproduce it exactly (theory.md §6.1, ``theory.transform.distill``); a stochastic teacher whose agents are
    correlated (e.g. xor) loses the correlation — the students keep the marginals only.

    The soft targets come from the teacher as it is when the loss is computed (after the PPO update) on prefixes
    drawn by the teacher before it: a one-update lag in the prefix distribution.

    **Continuous actions** (Gaussian teacher ``pi~(. | o, a^{<i}) = N(mu~^i(o, a^{<i}), diag s^2)`` with a
    state-independent std ``s``, Gaussian students ``pi^i_phi = N(mu^i_phi(o^i), diag sigma_i^2)``; ``actions
    [m, n, d_max]``, ``avail`` must be None; every sum over dimensions runs over agent i's own ``d_i`` only). The
    KL to the teacher's MARGINAL ``pi~^i(. | o)`` (a Gaussian mixture over the prefixes) has no closed form, so
    each kind uses a closed-form per-sample Gaussian KL (:func:`gaussian_kl`) instead:

    * ``greedy``: :math:`L = \sum_i \frac1m \sum_b \mathrm{KL}\big(N(g^i_b, s^2) \,\|\, \pi^i_\phi(\cdot|o^i_b)\big)`
      with ``g_b`` the teacher's greedy (mean) joint action (:func:`greedy_mean_targets`): the teacher's
      conditional at the greedy prefix. For one observation value the minimiser is ``mu^i = mean_b g^i_b``,
      ``sigma_i^2 = s^2 + Var_b g^i_b`` (moment matching); on an MMDP (``o^i = s``) that is ``mu^i(s) = g^i(s)``,
      ``sigma_i = s``: the students' means ARE the teacher's greedy joint action (the deterministic policies of
      theory.md §6.1 with every conditional replaced by its mean). ``keep`` is not used.
    * ``soft`` (the per-sample KL-based behaviour cloning of Ye et al.): with the teacher's conditional at the
      SAMPLED prefix, :math:`L = \sum_i \frac1m \sum_b \mathrm{KL}\big(N(\tilde\mu^i(o_b, a_b^{<i}), s^2) \,\|\,
      \pi^i_\phi(\cdot|o^i_b)\big)`. Minimiser for one observation value: ``mu^i = E[mu~^i] = E[a^i | o]`` (law of
      total expectation) and ``sigma_i^2 = s^2 + Var[mu~^i] = Var[a^i | o]`` (law of total variance): the first two
      moments of the teacher's marginal.
    * ``hard``: the Gaussian negative log-likelihood of the sampled actions,
      :math:`L = -\sum_i \frac1m \sum_b \log \pi^i_\phi(a^i_b | o^i_b)`; its minimiser is the samples' mean and
      variance, whose expectations are the same marginal moments.
    """
    if kind not in DISTILL_LOSSES:
        raise ValueError(f"kind must be one of {DISTILL_LOSSES}, got {kind!r}")
    check_tensor(obs, "obs", floating=True, ndim_min=3)
    if not students.discrete:
        if getattr(teacher, "discrete", True):
            raise ValueError("continuous students need a continuous (Gaussian) teacher; got a discrete one")
        if avail is not None:
            raise ValueError("avail (action masks) is only defined for discrete actions; pass avail=None for "
                             "continuous students")
        return _continuous_distillation(students, teacher, obs, actions, kind)
    n = students.n_agents
    if kind == "hard":
        return -students.log_prob(obs, actions, avail).sum(-1).mean()
    if kind == "greedy":
        return -students.log_prob(obs, greedy_targets(students, teacher, obs, avail, keep), avail).sum(-1).mean()
    with torch.no_grad():
        target = teacher.distribution(obs, actions, avail).probs  # [m, n, A_max]
    total = obs.new_zeros(())
    for i in range(n):
        dist = students.distribution_agent(i, obs[..., i, :], None if avail is None else avail[..., i, :])
        logq = dist.log_probs_all  # [m, A_i] (A_max for a shared student)
        p = target[..., i, : logq.shape[-1]]
        terms = torch.where(p > 0, p * (torch.log(p.clamp_min(1e-30)) - logq), torch.zeros_like(p))
        total = total + terms.sum(-1).mean()
    return total
