"""The value-decomposition family (IQL, VDN, QMIX, QPLEX, OW-/CW-QMIX) as one off-policy agent.

Shared parts: the episode replay and collector (:mod:`.core.replay`), epsilon-greedy acting with PyMARL's linear
schedule (:mod:`.core.exploration`), the utility network ``Q_i(tau_i, .)`` (:mod:`.core.q_networks`), the mixers
(:mod:`.core.mixers`) and the multi-step targets (:mod:`.core.td_targets`). ``config.mixer`` picks the class of
``Q_tot`` and ``config.weighting`` turns QMIX into Weighted QMIX.

One update on a sampled batch of episodes (PyMARL ``QLearner.train``; Weighted QMIX ``MAXQLearner.train``)::

    Q_tot(s_t, u_t)         = mixer([Q_i(tau_i,t, u_i,t)]_i, s_t)                    (IQL: each Q_i on its own)
    u*_{t+1}                = argmax_u Q_i(tau_i,t+1, u) over available u, ONLINE net if double_q else target
    V(s_{t+1})              = target_mixer([Q^-_i(tau_i,t+1, u*_i,t+1)]_i, s_{t+1})
    y_t                     = n-step or TD(lambda) target from r and V (terminated steps do not bootstrap)
    L                       = sum_t mask_t w_t (Q_tot(s_t, u_t) - y_t)^2 / sum_t mask_t

with ``w = 1`` except for Weighted QMIX, where the target comes from the central ``Q^*`` (its own agent network
and the unrestricted :class:`~.core.mixers.CentralQMixer`, evaluated at QMIX's greedy actions) and ``w`` is
:func:`~.core.mixers.wqmix_weights`; the central ``Q^*`` is regressed on the same target (unweighted).
Gradients are clipped to ``grad_norm_clip``; target networks are copied every ``target_update_interval``
episodes (hard) or Polyak-averaged with ``tau`` after every update (soft).
"""

from __future__ import annotations

import copy
import numbers
from dataclasses import asdict
from typing import Any

import torch
from torch import nn

from seqmarl.envs.base import EnvSpec, Step

from .core.exploration import LinearSchedule, epsilon_greedy, greedy_actions, masked_q
from .core.mixers import make_mixer, wqmix_weights
from .core.q_networks import QAgentNetwork
from .core.replay import EpisodeBatch, EpisodeCollector, EpisodeReplayBuffer
from .core.td_targets import n_step_targets, td_lambda_targets
from .value_configs import ValueDecompositionConfig

Tensor = torch.Tensor


class ValueDecompositionAgent:
    """Off-policy agent; ``config`` selects IQL/VDN/QMIX/QPLEX/Weighted QMIX (module docstring).

    Acting memory (the GRU state and the previous action of every agent) is opaque to the trainer: it is the
    ``rnn_state`` of :meth:`act`, created by :meth:`initial_rnn_state`."""

    family = "off_policy"

    def __init__(self, spec: EnvSpec, config: ValueDecompositionConfig, device: str | torch.device = "cpu",
                 seed: int = 0) -> None:
        if not isinstance(config, ValueDecompositionConfig):
            raise TypeError(f"config must be a ValueDecompositionConfig, got {type(config).__name__}")
        if not isinstance(spec, EnvSpec):
            raise TypeError(f"spec must be an environment's EnvSpec (env.spec), got {type(spec).__name__}")
        if not spec.is_discrete:
            raise ValueError(f"{type(config).algo_name or 'value decomposition'} needs discrete actions; this env's "
                             "actions are continuous")
        if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
            raise ValueError(f"seed must be an integer >= 0, got {seed!r}")
        config.validate()
        self.spec, self.config = spec, config
        self.device = torch.device(device)
        self.generator = torch.Generator(device=self.device)
        self.generator.manual_seed(int(seed))
        torch.manual_seed(int(seed))
        n, A, S = spec.n_agents, spec.max_actions, spec.state_dim
        self.n_agents, self.n_actions = n, A
        net_kw = dict(hidden=config.rnn_hidden, use_rnn=config.use_rnn, last_action=config.obs_last_action,
                      agent_id=config.obs_agent_id, device=self.device)
        self.q_net = QAgentNetwork(spec.obs_dim, n, A, **net_kw)
        mixer_kw: dict[str, Any] = {"device": self.device}
        if config.mixer == "qmix":
            mixer_kw.update(embed_dim=config.mixing_embed_dim, hypernet_layers=config.hypernet_layers,
                            hypernet_embed=config.hypernet_embed, weight_activation=config.qmix_weights)
        elif config.mixer == "qplex":
            mixer_kw.update(hypernet_embed=config.hypernet_embed, n_kernels=config.qplex_kernels)
        elif config.mixer in (None, "vdn"):
            mixer_kw = {}  # no parameters
        self.mixer = make_mixer(config.mixer, n, A, S, **mixer_kw)
        self.central_net: QAgentNetwork | None = None
        self.central_mixer: nn.Module | None = None
        if config.weighting is not None:
            self.central_net = QAgentNetwork(spec.obs_dim, n, A, **net_kw)
            self.central_mixer = make_mixer("central", n, A, S, embed_dim=config.central_mixing_embed_dim,
                                            device=self.device)
        self.modules = nn.ModuleDict({k: m for k, m in (("q_net", self.q_net), ("mixer", self.mixer),
                                                        ("central_net", self.central_net),
                                                        ("central_mixer", self.central_mixer)) if m is not None})
        self.target = copy.deepcopy(self.modules)
        for p in self.target.parameters():
            p.requires_grad_(False)
        params = list(self.modules.parameters())
        if config.optimizer == "rmsprop":
            self.optimizer: torch.optim.Optimizer = torch.optim.RMSprop(params, lr=config.lr, alpha=config.optim_alpha,
                                                                        eps=config.optim_eps)
        else:
            self.optimizer = torch.optim.Adam(params, lr=config.lr, eps=config.optim_eps)
        self.schedule = LinearSchedule(config.epsilon_start, config.epsilon_finish, config.epsilon_anneal_steps)
        self.replay = EpisodeReplayBuffer(config.buffer_size, spec.episode_limit, n, spec.obs_dim, S, A, self.device)
        self.t_env = 0  # environment steps collected (drives epsilon)
        self.updates = 0
        self.last_target_update_episode = 0
        self._collector: EpisodeCollector | None = None
        self._memory: tuple[Tensor, Tensor] | None = None

    # ------------------------------------------------------------------ acting
    @property
    def recurrent(self) -> bool:
        """True: acting carries memory (the GRU state and/or the previous action) through ``rnn_state``."""
        return True

    def initial_rnn_state(self, batch: int) -> tuple[tuple[Tensor, Tensor], None]:
        """``((h [B, n, H], last_action [B, n] = -1), None)`` — the second entry mirrors the on-policy critic state."""
        h = self.q_net.initial_state(batch, self.device)
        return (h, torch.full((batch, self.n_agents), -1, dtype=torch.int64, device=self.device)), None

    @torch.no_grad()
    def act(self, step: Step, deterministic: bool = False, rnn_state: tuple[Tensor, Tensor] | None = None,
            episode_start: Tensor | None = None, epsilon: float | None = None) -> tuple[Tensor, None, tuple[Tensor, Tensor]]:
        """Epsilon-greedy (greedy if ``deterministic``) actions ``[B, n]``; returns ``(actions, None, memory)``.
        ``epsilon`` defaults to the schedule's value at the current ``t_env``."""
        B = step.obs.shape[0]
        if rnn_state is None:
            rnn_state = self.initial_rnn_state(B)[0]
        h, last = rnn_state
        if episode_start is None:
            episode_start = torch.zeros(B, dtype=torch.bool, device=self.device)
        start = episode_start.to(self.device).bool()
        last = torch.where(start.unsqueeze(1), torch.full_like(last, -1), last)
        q, h_next = self.q_net(step.obs.to(self.device), last, h, start)
        avail = step.avail_actions.to(self.device)
        if deterministic:
            actions = greedy_actions(q, avail)
        else:
            eps = self.schedule.value(self.t_env) if epsilon is None else epsilon
            actions = epsilon_greedy(q, avail, eps, self.generator)
        return actions, None, (h_next, actions)

    def epsilon(self) -> float:
        return self.schedule.value(self.t_env)

    # ------------------------------------------------------------------ collection
    def collect(self, env: Any, step: Step | None, n_steps: int, seed: int) -> tuple[Step, list[float]]:
        """Run ``env`` ``n_steps`` steps per environment from ``step`` (``None``: reset with ``seed``) with the
        epsilon-greedy policy; finished episodes go to the replay. Returns the last step and finished returns."""
        if self._collector is None or self._collector.env is not env:
            self._collector = EpisodeCollector(env, self.replay)
        col = self._collector
        if step is None or col.step is None:  # a fresh start (a resume calls attach() first)
            col.reset(seed)
            self._memory = self.initial_rnn_state(env.num_envs)[0]

        def policy(s: Step) -> Tensor:
            actions, _, self._memory = self.act(s, rnn_state=self._memory, episode_start=col.episode_start)
            self.t_env += env.num_envs
            return actions

        col.returns = []
        col.collect(n_steps, policy)
        return col.step, list(col.returns)

    # ------------------------------------------------------------------ learning
    def _mix(self, mixer: nn.Module | None, chosen: Tensor, state: Tensor, q_all: Tensor | None = None,
             avail: Tensor | None = None, actions: Tensor | None = None) -> Tensor:
        """``Q_tot`` ``[B, T]`` (IQL: the per-agent ``[B, T, n]`` unchanged)."""
        if mixer is None:
            return chosen
        if getattr(mixer, "needs_max_and_actions", False):
            max_qs = masked_q(q_all, avail).max(dim=-1).values
            onehot = torch.nn.functional.one_hot(actions, self.n_actions).to(chosen.dtype)
            return mixer(chosen, state, max_qs=max_qs, actions_onehot=onehot)
        return mixer(chosen, state)

    def _targets(self, reward: Tensor, terminated: Tensor, mask: Tensor, next_values: Tensor) -> Tensor:
        cfg = self.config
        if next_values.dim() == 3:  # IQL: one target per agent, [B, T, n] -> [B * n, T]
            B, T, n = next_values.shape
            flat = lambda x: x.unsqueeze(-1).expand(B, T, n).permute(0, 2, 1).reshape(B * n, T)  # noqa: E731
            out = self._targets(flat(reward), flat(terminated), flat(mask), next_values.permute(0, 2, 1).reshape(B * n, T))
            return out.reshape(B, n, T).permute(0, 2, 1)
        if cfg.td_lambda > 0:
            return td_lambda_targets(reward, terminated, mask, next_values, cfg.gamma, cfg.td_lambda)
        return n_step_targets(reward, terminated, mask, next_values, cfg.gamma, cfg.n_step)

    def terms(self, batch: EpisodeBatch) -> dict[str, Tensor]:
        """The pieces of the loss on one episode batch (module docstring): ``q_taken`` (``Q_tot(s_t, u_t)``, IQL:
        per agent), ``targets`` ``y_t`` (no gradient), ``weights`` (1, or the Weighted-QMIX weights), ``mask``, and
        for Weighted QMIX ``central_q``. Shapes ``[B, T]`` (IQL ``[B, T, n]``)."""
        cfg = self.config
        obs, state, actions = batch.obs, batch.state, batch.actions
        # padded steps have no available action; let them "choose" action 0 (they are masked out of the loss)
        avail = batch.avail.clone()
        avail[..., 0] |= ~avail.any(-1)
        q_all = self.q_net.unroll(obs, actions)  # [B, T+1, n, A]
        with torch.no_grad():
            tq_all = self.target["q_net"].unroll(obs, actions)
            chooser = q_all.detach() if cfg.double_q else tq_all
            best_next = greedy_actions(chooser[:, 1:], avail[:, 1:])  # [B, T, n]
        chosen = q_all[:, :-1].gather(-1, actions.unsqueeze(-1)).squeeze(-1)  # [B, T, n]
        out: dict[str, Tensor] = {}
        out["q_taken"] = self._mix(self.mixer, chosen, state[:, :-1], q_all[:, :-1], avail[:, :-1], actions)
        with torch.no_grad():
            if self.central_net is None:
                t_chosen = tq_all[:, 1:].gather(-1, best_next.unsqueeze(-1)).squeeze(-1)
                next_values = self._mix(self.target["mixer"] if self.mixer is not None else None, t_chosen,
                                        state[:, 1:], tq_all[:, 1:], avail[:, 1:], best_next)
            else:  # Weighted QMIX: bootstrap from the target central Q* at QMIX's greedy actions
                tc_all = self.target["central_net"].unroll(obs, actions)
                greedy_all = greedy_actions(q_all.detach(), avail)  # [B, T+1, n]
                tc_greedy = tc_all.gather(-1, greedy_all.unsqueeze(-1)).squeeze(-1)
                central_greedy = self.target["central_mixer"](tc_greedy, state)  # [B, T+1]
                next_values = central_greedy[:, 1:]
            out["next_values"] = next_values
            out["targets"] = self._targets(batch.reward, batch.terminated, batch.mask, next_values)
        m = batch.mask.to(out["q_taken"].dtype)
        out["mask"] = m.unsqueeze(-1).expand_as(out["q_taken"]) if out["q_taken"].dim() == 3 else m
        out["weights"] = torch.ones_like(out["q_taken"]).detach()
        if self.central_net is not None:
            c_all = self.central_net.unroll(obs, actions)
            c_chosen = c_all[:, :-1].gather(-1, actions.unsqueeze(-1)).squeeze(-1)
            out["central_q"] = self.central_mixer(c_chosen, state[:, :-1])
            if cfg.weighting == "ow":
                out["weights"] = wqmix_weights("ow", out["targets"], out["q_taken"], alpha=cfg.w_alpha)
            else:
                is_greedy = (actions == greedy_all[:, :-1]).all(-1)
                out["weights"] = wqmix_weights("cw", out["targets"], out["q_taken"],
                                               central_q_of_greedy=central_greedy[:, :-1], is_greedy=is_greedy,
                                               alpha=cfg.w_alpha)
        return out

    def loss(self, batch: EpisodeBatch) -> tuple[Tensor, dict[str, float]]:
        """``sum mask w (Q_tot - y)^2 / sum mask`` (+ the central ``Q^*`` regression for Weighted QMIX) and its
        diagnostics."""
        t = self.terms(batch)
        m, td = t["mask"], t["q_taken"] - t["targets"]
        total = m.sum()
        td_loss = (t["weights"] * td ** 2 * m).sum() / total
        metrics = {"td_loss": float(td_loss.detach()), "td_error_abs": float((td.detach().abs() * m).sum() / total),
                   "q_taken_mean": float((t["q_taken"].detach() * m).sum() / total),
                   "target_mean": float((t["targets"] * m).sum() / total)}
        loss = td_loss
        if "central_q" in t:
            central_loss = ((t["central_q"] - t["targets"]) ** 2 * m).sum() / total
            loss = loss + central_loss
            metrics["central_loss"] = float(central_loss.detach())
            metrics["w_mean"] = float((t["weights"] * m).sum() / total)
        return loss, metrics

    def update(self, buffer: Any = None) -> dict[str, float]:
        """``updates_per_iteration`` gradient steps on batches sampled from the replay (none until it holds
        ``batch_size`` episodes); target networks updated as configured. ``buffer`` is ignored (the agent owns
        its replay)."""
        cfg = self.config
        out: dict[str, float] = {"epsilon": self.epsilon(), "replay_episodes": float(len(self.replay))}
        if not self.replay.can_sample(cfg.batch_size):
            return out
        for _ in range(cfg.updates_per_iteration):
            batch = self.replay.sample(cfg.batch_size, self.generator)
            loss, metrics = self.loss(batch)
            self.optimizer.zero_grad()
            loss.backward()
            grad_norm = torch.nn.utils.clip_grad_norm_(list(self.modules.parameters()), cfg.grad_norm_clip)
            self.optimizer.step()
            self.updates += 1
            metrics["grad_norm"] = float(grad_norm)
            metrics["loss"] = float(loss.detach())
            out.update(metrics)
            self._update_targets()
        return out

    def _update_targets(self) -> None:
        cfg = self.config
        if cfg.target_update == "soft":
            with torch.no_grad():
                for t, p in zip(self.target.parameters(), self.modules.parameters()):
                    t.lerp_(p, cfg.tau)
            return
        episodes = self.replay.episodes_added
        if (episodes - self.last_target_update_episode) >= cfg.target_update_interval:
            self.sync_targets()
            self.last_target_update_episode = episodes

    def sync_targets(self) -> None:
        """Copy the online networks into the target networks."""
        self.target.load_state_dict(self.modules.state_dict())

    # ------------------------------------------------------------------ read-out
    @torch.no_grad()
    def utilities(self, obs: Tensor) -> Tensor:
        """``Q_i(o_i, .)`` ``[B, n, A]`` at an episode's FIRST step (no history): what a one-shot game's agents
        use. ``obs [B, n, d]``."""
        h, last = self.initial_rnn_state(obs.shape[0])[0]
        obs = obs.to(self.device, self.q_net.head.weight.dtype)
        q, _ = self.q_net(obs, last, h, torch.ones(obs.shape[0], dtype=torch.bool, device=self.device))
        return q

    @torch.no_grad()
    def joint_q(self, obs: Tensor, state: Tensor, avail: Tensor | None = None) -> Tensor:
        """``Q_tot(s, u)`` for EVERY joint action ``u`` at an episode's first step: ``[B, A_1, ..., A_n]``
        (IQL: the sum of the utilities, for reference). ``obs [B, n, d]``, ``state [B, S]``."""
        q = self.utilities(obs)  # [B, n, A]
        B, n, A = q.shape
        grids = torch.cartesian_prod(*[torch.arange(A, device=q.device)] * n).reshape(-1, n)  # [A^n, n]
        J = grids.shape[0]
        chosen = q.unsqueeze(1).expand(B, J, n, A).gather(-1, grids.expand(B, J, n).unsqueeze(-1)).squeeze(-1)
        st = state.to(self.device, q.dtype).unsqueeze(1).expand(B, J, state.shape[-1])
        if self.mixer is None:
            out = chosen.sum(-1)
        elif getattr(self.mixer, "needs_max_and_actions", False):
            av = None if avail is None else avail.to(self.device)
            max_qs = masked_q(q, av).max(-1).values.unsqueeze(1).expand(B, J, n)
            onehot = torch.nn.functional.one_hot(grids, A).to(q.dtype).expand(B, J, n, A)
            out = self.mixer(chosen, st, max_qs=max_qs, actions_onehot=onehot)
        else:
            out = self.mixer(chosen, st)
        return out.reshape((B,) + (A,) * n)

    # ------------------------------------------------------------------ persistence
    def networks(self) -> dict[str, nn.Module]:
        return dict(self.modules.items())

    def state_dict(self) -> dict[str, Any]:
        col = self._collector
        return {
            "config": asdict(self.config),
            "modules": self.modules.state_dict(),
            "target": self.target.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "generator": self.generator.get_state(),
            "replay": self.replay.state_dict(),
            "t_env": self.t_env, "updates": self.updates,
            "last_target_update_episode": self.last_target_update_episode,
            "collector": None if col is None else col.state_dict(),
            "memory": None if self._memory is None else tuple(x.clone() for x in self._memory),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.modules.load_state_dict(state["modules"])
        self.target.load_state_dict(state["target"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.generator.set_state(state["generator"].cpu() if self.device.type == "cpu" else state["generator"])
        self.replay.load_state_dict(state["replay"])
        self.t_env, self.updates = int(state["t_env"]), int(state["updates"])
        self.last_target_update_episode = int(state["last_target_update_episode"])
        self._pending_collector = state.get("collector")
        memory = state.get("memory")
        self._memory = None if memory is None else tuple(x.to(self.device) for x in memory)

    def attach(self, env: Any, step: Step, restarted: bool = False) -> None:
        """After a resume: rebuild the collector on ``env`` at ``step`` with the saved partial episodes (dropped,
        with the acting memory, when ``restarted``: the env began new episodes instead of restoring its own)."""
        self._collector = EpisodeCollector(env, self.replay)
        self._collector.step = step
        pending = getattr(self, "_pending_collector", None)
        if pending is not None and not restarted:
            self._collector.load_state_dict(pending)
        if restarted:
            self._memory = None
        if self._memory is None:
            self._memory = self.initial_rnn_state(env.num_envs)[0]
