"""The on-policy family (MAPPO, IPPO, HAPPO, HATRPO, HAA2C) as one agent built from shared parts.

Everything but the actor update is common: actors (:class:`MultiAgentActors`), a centralised ``V(state)``
or decentralised ``V_i(o_i)`` critic, value normalisation (de-normalised before GAE), GAE with truncation
bootstrapping, the clipped Huber value loss. The actor update is chosen by ``config.actor_update``
(see :mod:`seqmarl.algos.actor_updates`):

* ``joint_clip`` — every agent maximises its own clipped ratio against the same advantages at once
  (MAPPO/IPPO, theory.md §1.3 eq. 5);
* ``sequential_clip`` — HAPPO (ICLR22 eq. 11): agents in a (random) order, each weighted by the product of
  the already-updated agents' ratios ("factor", the M of eq. 10);
* ``sequential_a2c`` — HAA2C: the same factor, no clipping;
* ``sequential_trust_region`` — HATRPO (ICLR22 eq. 7-8): per-agent natural step with CG, KL threshold and
  backtracking line search.

* ``joint_ratio_clip`` — AR-MAPPO (Fu et al. ICML22): PPO clip on the joint ratio ``prod_i r^i``; with
  ``config.policy="autoregressive"`` the actors are ONE shared :class:`AutoRegressiveActor` (agent k conditioned
  on the actions of the agents before it in the execution order, ``config.ar_order``).

With ``config.use_rnn`` (the MAPPO/HARL recurrent policy option) actors and critic are ``MLP -> GRU -> head``;
acting carries hidden states explicitly (:meth:`OnPolicyAgent.initial_rnn_state`, ``act(..., rnn_state=,
episode_start=)``, ``values(..., rnn_state=, episode_start=)``) and the update replays the GRUs over each
environment's whole rollout (see :mod:`seqmarl.algos.actor_updates`).
"""

from __future__ import annotations

import numbers
from dataclasses import asdict
from typing import Any

import torch
from torch import nn

from seqmarl.envs.base import EnvSpec, Step

from . import actor_updates
from .configs import OnPolicyConfig
from .core.ar_policy import AutoRegressiveActor
from .core.mat_policy import MATDecPolicy, MultiAgentTransformer
from .core.tad import SubstepCritic
from .core.buffer import RolloutBuffer
from .core.joint_policy import all_orders, random_orders
from .core.losses import value_loss
from .core.networks import BoxSpace, Critic, DiscreteSpace, MultiAgentActors
from .core.value_norm import ValueNorm

Tensor = torch.Tensor


class DecentralisedCritic(nn.Module):
    """``V_i(o_i)`` for every agent: one shared network or one per agent; ``obs [..., n, d] -> [..., n]``.

    Recurrent (``rnn_hidden``): ``forward(obs, rnn=(h [B, n, H], episode_start))`` with ``obs`` ``[B, n, d]``
    (``episode_start [B]``) or ``[T, B, n, d]`` (``[T, B]``) returns ``(values, h_next [B, n, H])``; each
    agent has its own state (a shared network shares weights, not states)."""

    def __init__(self, n_agents: int, obs_dim: int, hidden: tuple[int, ...], activation: str, share: bool,
                 device: torch.device, rnn_hidden: int | None = None, layer_norm: bool = False,
                 feature_norm: bool = False) -> None:
        super().__init__()
        self.share = share
        self.n_agents = n_agents
        self.rnn_hidden = rnn_hidden
        count = 1 if share else n_agents
        kw: dict[str, Any] = {} if rnn_hidden is None else {"rnn_hidden": rnn_hidden}
        self.nets = nn.ModuleList([Critic(obs_dim, hidden, activation=activation, layer_norm=layer_norm,
                                          feature_norm=feature_norm, device=device, **kw)
                                   for _ in range(count)])

    def initial_state(self, batch: int) -> Tensor:
        if self.rnn_hidden is None:
            raise ValueError("initial_state is only defined for a recurrent critic (rnn_hidden set)")
        return self.nets[0].initial_state(batch).unsqueeze(1).expand(-1, self.n_agents, -1).clone()

    def forward(self, obs: Tensor, rnn: tuple[Tensor, Tensor] | None = None) -> Tensor | tuple[Tensor, Tensor]:
        if self.rnn_hidden is None:
            if rnn is not None:
                raise ValueError("rnn state given to a feed-forward critic (config.use_rnn=False)")
            if self.share:
                return self.nets[0](obs)
            return torch.stack([net(obs[..., i, :]) for i, net in enumerate(self.nets)], dim=-1)
        if not isinstance(rnn, tuple) or len(rnn) != 2:
            raise ValueError(f"a recurrent critic needs rnn=(h [B, n, {self.rnn_hidden}], episode_start), got {rnn!r}")
        h, starts = rnn
        n, H = self.n_agents, self.rnn_hidden
        if h.dim() != 3 or tuple(h.shape[1:]) != (n, H):
            raise ValueError(f"h must have shape (B, {n}, {H}), got {tuple(h.shape)}")
        if self.share:  # agents become extra batch entries: [.., B, n, d] -> [.., B * n, d]
            B = h.shape[0]
            x = obs.reshape(obs.shape[:-3] + (B * n, obs.shape[-1]))
            st = starts.unsqueeze(-1).expand(starts.shape + (n,)).reshape(starts.shape[:-1] + (B * n,))
            v, h_next = self.nets[0](x, (h.reshape(B * n, H), st))
            return v.reshape(v.shape[:-1] + (B, n)), h_next.reshape(B, n, H)
        outs = [net(obs[..., i, :], (h[:, i], starts)) for i, net in enumerate(self.nets)]
        return torch.stack([o[0] for o in outs], dim=-1), torch.stack([o[1] for o in outs], dim=1)


class _OrderRecordingBuffer(RolloutBuffer):
    """A :class:`RolloutBuffer` with ``store_order=True`` that takes each step's execution order from the agent
    that sampled it (``agent.take_order()``, the order of its last :meth:`OnPolicyAgent.act`), so the trainer's
    collection loop stays unchanged; an explicit ``order=`` wins."""

    def __init__(self, *args: Any, agent: "OnPolicyAgent", **kwargs: Any) -> None:
        super().__init__(*args, store_order=True, **kwargs)
        self._agent = agent

    def insert(self, *args: Any, order: Tensor | None = None, **kwargs: Any) -> None:
        super().insert(*args, order=self._agent.take_order() if order is None else order, **kwargs)


def _action_spaces(spec: EnvSpec) -> list[DiscreteSpace | BoxSpace]:
    out: list[DiscreteSpace | BoxSpace] = []
    for space in spec.agent_spaces:
        out.append(DiscreteSpace(space.n) if space.is_discrete else BoxSpace(space.dim))
    return out


class OnPolicyAgent:
    """The shared on-policy agent; ``config`` selects MAPPO/IPPO/HAPPO/HATRPO/HAA2C/AR-MAPPO behaviour.

    Interface (``seqmarl.algos.Algorithm``): :meth:`act`, :meth:`values`, :meth:`update`,
    :meth:`state_dict`, :meth:`load_state_dict`.
    """

    def __init__(self, spec: EnvSpec, config: OnPolicyConfig, device: str | torch.device = "cpu", seed: int = 0):
        if not isinstance(config, OnPolicyConfig):
            raise TypeError(f"config must be an OnPolicyConfig, got {type(config).__name__}")
        if not isinstance(spec, EnvSpec):
            raise TypeError(f"spec must be an environment's EnvSpec (env.spec), got {spec!r} ({type(spec).__name__})")
        if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
            raise ValueError(f"seed must be an integer >= 0, got {seed!r}")
        config.validate()
        self.spec = spec
        self.config = config
        self.device = torch.device(device)
        self.generator = torch.Generator(device=self.device)
        self.generator.manual_seed(int(seed))
        torch.manual_seed(int(seed))  # network initialisation (torch.nn.init has no generator argument)
        n = spec.n_agents
        rnn = {"rnn_hidden": int(config.rnn_hidden)} if config.use_rnn else {}
        norms = {"layer_norm": config.layer_norm, "feature_norm": config.feature_norm}
        self._last_order: Tensor | None = None
        if config.policy in ("mat", "mat_dec"):  # MAT / MAT-Dec: one network, one optimiser
            self._init_mat(spec, config)
            return
        gauss = {"log_std_init": config.log_std_init, "std_param": config.std_param,  # continuous heads only
                 "std_x_coef": config.std_x_coef, "std_y_coef": config.std_y_coef}
        if config.policy == "tad" and not spec.is_discrete:
            keep_default = type(config).__dataclass_fields__["distill_keep"].default
            if config.distill_keep != keep_default:
                raise ValueError(f"distill_keep (the greedy targets' hysteresis between tied discrete modes) does not "
                                 f"apply to continuous actions (a Gaussian conditional has one mode, its mean); "
                                 f"leave it at {keep_default}, got {config.distill_keep}")
        if config.policy in ("autoregressive", "tad"):  # discrete or continuous (mixed spaces: refused by the actor)
            self.actors: MultiAgentActors | AutoRegressiveActor = AutoRegressiveActor(
                n, spec.obs_dim, _action_spaces(spec), hidden=tuple(config.hidden), activation=config.activation,
                agent_id=config.agent_id, condition=config.ar_condition, token_id=config.ar_token_id,
                out_gain=config.gain, device=self.device,
                **gauss, **norms,
            )
        else:
            self.actors = MultiAgentActors(
                n, spec.obs_dim, _action_spaces(spec), share=config.share_param, agent_id=config.agent_id,
                hidden=tuple(config.hidden), activation=config.activation, out_gain=config.gain,
                log_std_init=config.log_std_init, std_param=config.std_param, std_x_coef=config.std_x_coef,
                std_y_coef=config.std_y_coef, device=self.device, **norms, **rnn,
            )
        if config.policy == "tad":  # TAD-PPO: the sub-step critic V~(s, a^{<k}) of the transformed MDP
            self.critic: nn.Module = SubstepCritic(
                spec.state_dim, n, spec.max_actions if spec.is_discrete else spec.act_dim, tuple(config.hidden),
                activation=config.activation, continuous=not spec.is_discrete, device=self.device, **norms)
        elif config.critic == "centralised":
            self.critic = Critic(spec.state_dim, tuple(config.hidden), activation=config.activation,
                                            device=self.device, **norms, **rnn)
        else:
            self.critic = DecentralisedCritic(n, spec.obs_dim, tuple(config.hidden), config.activation,
                                              config.share_param, self.device, **norms, **rnn)
        self.value_norm = ValueNorm((), device=self.device) if config.use_value_norm else None
        adam = {"eps": config.opti_eps, "weight_decay": config.weight_decay}  # HARL model.opti_eps / weight_decay
        if config.share_param:
            self.actor_optimizers = [torch.optim.Adam(self.actors.parameters(), lr=config.lr, **adam)]
        else:
            self.actor_optimizers = [torch.optim.Adam(self.actors.parameters_of(i), lr=config.lr, **adam)
                                     for i in range(n)]
        self.critic_optimizer = torch.optim.Adam(self.critic.parameters(), lr=config.critic_lr, **adam)
        if self.tad:  # TAD-PPO's decentralised students pi^i(a^i | o^i), one network per agent
            self.students = MultiAgentActors(n, spec.obs_dim, _action_spaces(spec), share=False,
                                             hidden=tuple(config.hidden), activation=config.activation,
                                             out_gain=config.gain, device=self.device, **gauss, **norms)
            self.student_optimizer = torch.optim.Adam(self.students.parameters(), lr=config.distill_lr, **adam)
        self.n_updates = 0

    def _init_mat(self, spec: EnvSpec, config: OnPolicyConfig) -> None:
        """MAT / MAT-Dec (``config.policy`` ``"mat"`` / ``"mat_dec"``; :mod:`seqmarl.algos.core.mat_policy`): ONE
        network holds the policy and the encoder's per-agent value head, so ``self.critic`` IS ``self.actors``
        (``critic(obs) -> V [..., n]``, the per-agent buffer path) and ONE Adam optimiser trains both on MAT's
        combined loss (``actor_update="mat_clip"``); ``critic_optimizer`` is None."""
        kw: dict[str, Any] = dict(n_block=config.n_block, n_embd=config.n_embd, n_head=config.n_head,
                                  agent_id=config.agent_id, feature_norm=config.feature_norm, out_gain=config.gain,
                                  log_std_init=config.log_std_init, std_param=config.std_param,
                                  std_x_coef=config.std_x_coef, std_y_coef=config.std_y_coef, device=self.device)
        spaces = _action_spaces(spec)
        if config.policy == "mat":
            self.actors = MultiAgentTransformer(spec.n_agents, spec.obs_dim, spaces, condition=config.mat_condition,
                                                token_id=config.mat_token_id, **kw)
        else:
            self.actors = MATDecPolicy(spec.n_agents, spec.obs_dim, spaces, **kw)
        self.critic = self.actors
        self.value_norm = ValueNorm((), device=self.device) if config.use_value_norm else None
        self.actor_optimizers = [torch.optim.Adam(self.actors.parameters(), lr=config.lr, eps=config.opti_eps,
                                                  weight_decay=config.weight_decay)]
        self.critic_optimizer = None
        self.n_updates = 0

    # ------------------------------------------------------------------ acting
    @property
    def discrete(self) -> bool:
        return self.spec.is_discrete

    @property
    def recurrent(self) -> bool:
        """``config.use_rnn``: acting needs hidden states (:meth:`initial_rnn_state`)."""
        return bool(self.config.use_rnn)

    @property
    def autoregressive(self) -> bool:
        """The actors are one auto-regressive joint policy: :class:`AutoRegressiveActor` (``config.policy ==
        "autoregressive"``) or MAT's :class:`MultiAgentTransformer` (``"mat"``)."""
        return self.config.policy in ("autoregressive", "mat")

    @property
    def tad(self) -> bool:
        """``config.policy == "tad"`` (TAD-PPO): an auto-regressive teacher, a sub-step critic and students."""
        return self.config.policy == "tad"

    @property
    def execution_actors(self):
        """The policy that executes (evaluation, ``seqmarl validate``): the actors, or TAD-PPO's students with
        ``tad_execute="student"``."""
        if self.tad and self.config.tad_execute == "student":
            return self.students
        return self.actors

    @torch.no_grad()
    def act_for_evaluation(self, step: Step, deterministic: bool = False):
        """:meth:`act` with the executing policy (:attr:`execution_actors`); training rollouts use :meth:`act`."""
        if self.execution_actors is self.actors:
            return self.act(step, deterministic=deterministic)
        return self.execution_actors.sample(step.obs, step.avail_actions if self.discrete else None,
                                            generator=self.generator, deterministic=deterministic)

    @property
    def random_order(self) -> bool:
        """An auto-regressive agent drawing a fresh execution order per sample (``config.ar_order="random"``)."""
        return self.autoregressive and self.config.ar_order == "random"

    def take_order(self) -> Tensor:
        """The per-sample execution orders ``[B, n]`` of the last :meth:`act` (random-order agents), handed to
        the rollout buffer once; a second take without a new :meth:`act` raises."""
        if self._last_order is None:
            raise ValueError("no execution order to store: call act() before inserting its step (a random-order "
                             "auto-regressive agent records the order of every act() for the buffer)")
        order, self._last_order = self._last_order, None
        return order

    def order_support(self) -> list[tuple[int, ...]]:
        """The execution orders the agent samples in, each equally likely: ``[(0, ..., n-1)]`` unless it draws a
        random order per sample (then all ``n!`` permutations). Used by the exact joint readout."""
        n = self.spec.n_agents
        return all_orders(n) if self.random_order else [tuple(range(n))]

    def initial_rnn_state(self, num_envs: int) -> tuple[Tensor, Tensor]:
        """Zero ``(actor_state [B, n, H], critic_state [B, H] or [B, n, H])`` (recurrent agents only)."""
        if not self.recurrent:
            raise ValueError("initial_rnn_state needs a recurrent agent (config.use_rnn=True)")
        return self.actors.initial_state(num_envs), self.critic.initial_state(num_envs)

    def _rnn_args(self, what: str, rnn_state: Tensor | None, episode_start: Tensor | None,
                  batch: int) -> tuple[Tensor, Tensor] | None:
        if not self.recurrent:
            if rnn_state is not None or episode_start is not None:
                raise ValueError(f"{what}: rnn_state/episode_start are only for recurrent agents (config.use_rnn=True)")
            return None
        if rnn_state is None or episode_start is None:
            raise ValueError(f"{what}: config.use_rnn=True needs rnn_state (start from initial_rnn_state) and "
                             "episode_start [B] (True where the step is the first of an episode)")
        if not isinstance(episode_start, Tensor) or tuple(episode_start.shape) != (batch,):
            shape = tuple(episode_start.shape) if isinstance(episode_start, Tensor) else type(episode_start).__name__
            raise ValueError(f"episode_start must be a [B] = ({batch},) tensor, got {shape}")
        return rnn_state, episode_start

    @torch.no_grad()
    def act(self, step: Step, deterministic: bool = False, rnn_state: Tensor | None = None,
            episode_start: Tensor | None = None):
        """Sample joint actions ``[B, n]`` (``[B, n, d]`` continuous) and their per-agent log-probs ``[B, n]``.

        Recurrent agents also pass ``rnn_state`` (actor states ``[B, n, H]`` entering this step) and
        ``episode_start`` ``[B]`` (zero the state first where True) and get ``(actions, log_probs,
        next_rnn_state)``."""
        avail = step.avail_actions if self.discrete else None
        rnn = self._rnn_args("act", rnn_state, episode_start, step.obs.shape[0])
        if self.autoregressive:
            order = (random_orders(step.obs.shape[0], self.spec.n_agents, self.generator, self.device)
                     if self.random_order else None)
            self._last_order = order
            return self.actors.sample(step.obs, avail, generator=self.generator, order=order,
                                      deterministic=deterministic)
        if rnn is None:
            return self.actors.sample(step.obs, avail, generator=self.generator, deterministic=deterministic)
        return self.actors.sample(step.obs, avail, generator=self.generator, deterministic=deterministic, rnn=rnn)

    @torch.no_grad()
    def values(self, state: Tensor, obs: Tensor, rnn_state: Tensor | None = None,
               episode_start: Tensor | None = None):
        """Raw critic output (normalised when value normalisation is on): ``[B]`` centralised (from ``state``)
        or ``[B, n]`` decentralised (from ``obs``). The buffer de-normalises it before GAE.

        Recurrent agents pass the critic's ``rnn_state`` and ``episode_start`` and get ``(values, next_state)``."""
        rnn = self._rnn_args("values", rnn_state, episode_start, state.shape[0])
        inp = state if self.config.critic == "centralised" else obs
        return self.critic(inp) if rnn is None else self.critic(inp, rnn)

    def make_buffer(self, rollout_length: int, num_envs: int) -> RolloutBuffer:
        """A :class:`RolloutBuffer` shaped for this agent and env spec (with rnn-state storage if recurrent)."""
        spec = self.spec
        if self.random_order:
            return _OrderRecordingBuffer(
                rollout_length, num_envs, spec.n_agents, spec.obs_dim, spec.state_dim,
                action_shape=() if spec.is_discrete else (spec.act_dim,),
                n_actions_max=spec.max_actions if spec.is_discrete else None, device=self.device,
                critic="centralised" if self.config.critic == "centralised" else "per_agent", agent=self,
            )
        rnn: dict[str, Any] = {}
        if self.recurrent:
            H = int(self.config.rnn_hidden)
            rnn = {"actor_rnn_shape": (H,),
                   "critic_rnn_shape": (H,) if self.config.critic == "centralised" else (spec.n_agents, H)}
        return RolloutBuffer(
            rollout_length, num_envs, spec.n_agents, spec.obs_dim, spec.state_dim,
            action_shape=() if spec.is_discrete else (spec.act_dim,),
            n_actions_max=spec.max_actions if spec.is_discrete else None, device=self.device,
            critic="centralised" if self.config.critic == "centralised" else "per_agent", **rnn,
        )

    # ------------------------------------------------------------------ learning
    def update(self, buffer: RolloutBuffer) -> dict[str, float]:
        """One training iteration on a full ``buffer``: GAE on de-normalised values (truncated episodes
        bootstrap from ``V(final_state)``), actor update, critic update. Returns metrics."""
        if self.tad:  # sub-step values and GAE over the transformed MDP's sub-steps
            from . import tad_ppo

            batch = tad_ppo.substep_batch(self, buffer)
        else:
            buffer.compute_returns(self.config.gamma, self.config.gae_lambda, self.value_norm)
            batch = actor_updates.from_buffer(buffer, self.spec.n_agents, recurrent=self.recurrent)
        if self.random_order and batch.order is None:
            raise ValueError("a random-order auto-regressive agent needs the sampled execution orders: fill the "
                             "buffer from make_buffer() (or pass insert(..., order=) to a store_order=True buffer)")
        metrics = actor_updates.run(self, batch)
        if self.config.actor_update != "mat_clip":  # MAT trains its value head inside the combined loss
            metrics.update(self._update_critic(batch))
        if self.tad:
            metrics.update(tad_ppo.distill(self, batch))
        self.n_updates += 1
        return metrics

    def lr_decay(self, iteration: int, total: int) -> None:
        """Linear step-size decay (``config.linear_lr_decay``): iteration ``iteration`` (0-based) of ``total``
        uses ``lr * (1 - iteration / total)`` for every actor optimiser and ``critic_lr * (1 - iteration / total)``
        for the critic (HARL ``harl/utils/models_tools.py`` update_linear_schedule with ``episode = iteration + 1``,
        called before each rollout by ``harl/runners/on_policy_base_runner.py``)."""
        if isinstance(iteration, bool) or not isinstance(iteration, int) or iteration < 0:
            raise ValueError(f"iteration must be a non-negative int, got {iteration!r}")
        if isinstance(total, bool) or not isinstance(total, int) or total < 1:
            raise ValueError(f"total must be a positive int, got {total!r}")
        if iteration >= total:
            raise ValueError(f"iteration must be < total = {total}, got {iteration}")
        frac = 1.0 - iteration / total
        for opt in self.actor_optimizers:
            for group in opt.param_groups:
                group["lr"] = self.config.lr * frac
        if self.critic_optimizer is not None:  # None for MAT (one optimiser)
            for group in self.critic_optimizer.param_groups:
                group["lr"] = self.config.critic_lr * frac

    def current_lr(self) -> tuple[float, float]:
        """``(actor lr, critic lr)`` the next update will use."""
        actor_lr = float(self.actor_optimizers[0].param_groups[0]["lr"])
        if self.critic_optimizer is None:  # MAT: one optimiser for policy and values
            return actor_lr, actor_lr
        return actor_lr, float(self.critic_optimizer.param_groups[0]["lr"])

    def _update_critic(self, batch: "actor_updates.Batch") -> dict[str, float]:
        """Critic epochs x minibatches of the clipped (Huber) value loss. The value normaliser folds in the
        returns once per call (``value_norm_update="per_iteration"``) or before every minibatch of every
        epoch on that minibatch's returns (``"per_minibatch"``, HARL v_critic.py cal_value_loss)."""
        cfg = self.config
        returns = batch.returns
        per_minibatch = cfg.value_norm_update == "per_minibatch"
        if self.value_norm is not None and not per_minibatch:
            self.value_norm.update(returns)
        total = 0.0
        count = 0
        for _ in range(cfg.critic_epoch):
            for idx in actor_updates.minibatches(self, batch, cfg.critic_num_mini_batch):
                pred = self.replay_values(batch, idx)
                target = returns[idx]
                if self.value_norm is not None:
                    if per_minibatch:
                        self.value_norm.update(target)
                    target = self.value_norm.normalize(target).to(pred.dtype)
                loss = value_loss(pred, batch.raw_values[idx], target, cfg.value_clip,
                                  huber_delta=cfg.huber_delta if cfg.use_huber else None,
                                  clipped=cfg.use_clipped_value_loss, reduction="none")
                loss = actor_updates.active_mean(loss, self._value_active(batch, idx, pred))
                self.critic_optimizer.zero_grad()
                (cfg.value_loss_coef * loss).backward()
                nn.utils.clip_grad_norm_(self.critic.parameters(), cfg.max_grad_norm)
                self.critic_optimizer.step()
                total += float(loss.detach())
                count += 1
        return {"critic_loss": total / max(count, 1)}

    def _value_active(self, batch: "actor_updates.Batch", idx: Tensor | slice, pred: Tensor) -> Tensor | None:
        """HARL ``use_value_active_masks``: a per-agent value ``V_i`` ([m, n], decentralised critic) is fitted only
        where agent ``i`` was active (alive) — a dead agent's value has no return of its own to fit. None (every
        entry counts) for a centralised ``V(s)`` (the env's value, HARL's EP critic has no mask), for TAD-PPO's
        sub-step values (positions of the transformed MDP, not agents) and when every agent was active."""
        if batch.active is None or self.tad or pred.dim() != 2:
            return None
        return batch.active[idx]

    def replay_values(self, batch: "actor_updates.Batch", idx: Tensor | slice = slice(None)) -> Tensor:
        """Critic output on ``batch[idx]`` with the current parameters: ``[m]`` or ``[m, n]``. Recurrent: the
        critic GRU replayed over the selected environments' whole sequences from the stored t = 0 state."""
        centralised = self.config.critic == "centralised"
        if self.tad:  # [m, n]: V~(s, a^{<k}) at every sub-step
            return self.critic.substep_values(batch.state[idx], batch.actions[idx])
        if batch.seq is None:
            return self.critic(batch.state[idx] if centralised else batch.obs[idx])
        seq = batch.seq
        envs = actor_updates.envs_of(batch, idx)
        inp = seq.time_major(batch.state if centralised else batch.obs)[:, envs]
        v, _ = self.critic(inp, (seq.critic_h0[envs], seq.episode_start[:, envs]))
        return v.reshape((-1,) + tuple(v.shape[2:]))

    # ------------------------------------------------------------------ persistence
    def networks(self) -> dict[str, nn.Module]:
        """The trained networks by name (the trainer's divergence guard inspects their parameters)."""
        if self.tad:
            return {"actor": self.actors, "critic": self.critic, "students": self.students}
        return {"actor": self.actors, "critic": self.critic}

    def state_dict(self) -> dict[str, Any]:
        state = self._state_dict()
        if self.tad:
            state["students"] = self.students.state_dict()
            state["student_optimizer"] = self.student_optimizer.state_dict()
        return state

    def _state_dict(self) -> dict[str, Any]:
        return {
            "config": asdict(self.config),
            "actors": self.actors.state_dict(),
            "critic": self.critic.state_dict(),
            "value_norm": None if self.value_norm is None else self.value_norm.state_dict(),
            "actor_optimizers": [o.state_dict() for o in self.actor_optimizers],
            "critic_optimizer": None if self.critic_optimizer is None else self.critic_optimizer.state_dict(),
            "generator": self.generator.get_state(),
            "n_updates": self.n_updates,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.actors.load_state_dict(state["actors"])
        self.critic.load_state_dict(state["critic"])
        if self.value_norm is not None and state["value_norm"] is not None:
            self.value_norm.load_state_dict(state["value_norm"])
        for opt, s in zip(self.actor_optimizers, state["actor_optimizers"]):
            opt.load_state_dict(s)
        if self.critic_optimizer is not None:
            self.critic_optimizer.load_state_dict(state["critic_optimizer"])
        self.generator.set_state(state["generator"].cpu() if hasattr(state["generator"], "cpu") else state["generator"])
        self.n_updates = int(state["n_updates"])
        if self.tad:
            if "students" not in state:
                raise ValueError("a TAD-PPO checkpoint must hold the students ('students', 'student_optimizer')")
            self.students.load_state_dict(state["students"])
            self.student_optimizer.load_state_dict(state["student_optimizer"])
