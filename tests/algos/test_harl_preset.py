"""``preset=harl`` reproduces PKU-MARL/HARL's defaults, and each HARL-fidelity option changes behaviour.

The HARL values below are written out by hand from HARL's source (commit d539bad, files named per value), NOT
imported from ``seqmarl.algos.configs``: a preset that drifts from HARL fails here. Every option test compares
the option on against off, so it fails if the option is ignored. See docs/harl_differences.md.
"""

from __future__ import annotations

import math
from typing import Any

import pytest
import torch
from torch import nn

from seqmarl.algos import OnPolicyAgent, Trainer, TrainerConfig, config_for, make_agent
from seqmarl.algos.configs import HAPPOConfig, MAPPOConfig, preset_values
from seqmarl.config import ConfigError, parse_overrides, resolve
from seqmarl.envs import make

# ------------------------------------------------------------------------------------------ HARL's values
# Y = harl/configs/algos_cfgs/<algo>.yaml
HARL_COMMON: dict[str, Any] = {
    "hidden": (128, 128),  # Y model.hidden_sizes: [128, 128]
    "activation": "relu",  # Y model.activation_func: relu
    "feature_norm": True,  # Y model.use_feature_normalization: True
    "layer_norm": True,  # harl/models/base/mlp.py MLPLayer: nn.LayerNorm after every hidden layer
    "gain": 0.01,  # Y model.gain: 0.01
    "use_rnn": False,  # Y model.use_recurrent_policy / use_naive_recurrent_policy: False
    "rnn_hidden": 128,  # harl/models/policy_models/stochastic_policy.py RNNLayer(hidden_sizes[-1], ...)
    "lr": 0.0005,  # Y model.lr: 0.0005
    "critic_lr": 0.0005,  # Y model.critic_lr: 0.0005
    "opti_eps": 0.00001,  # Y model.opti_eps: 0.00001
    "weight_decay": 0.0,  # Y model.weight_decay: 0
    "std_param": "harl",  # harl/models/base/distributions.py DiagGaussian: sigmoid(log_std / x) * y
    "std_x_coef": 1.0,  # Y model.std_x_coef: 1
    "std_y_coef": 0.5,  # Y model.std_y_coef: 0.5
    "critic_epoch": 5,  # Y algo.critic_epoch: 5
    "use_clipped_value_loss": True,  # Y algo.use_clipped_value_loss: True
    "value_clip": 0.2,  # Y algo.clip_param: 0.2 (harl/algorithms/critics/v_critic.py clamps with clip_param)
    "critic_num_mini_batch": 1,  # Y algo.critic_num_mini_batch: 1
    "value_loss_coef": 1.0,  # Y algo.value_loss_coef: 1
    "max_grad_norm": 10.0,  # Y algo.max_grad_norm: 10.0
    "gamma": 0.99,  # Y algo.gamma: 0.99
    "gae_lambda": 0.95,  # Y algo.gae_lambda: 0.95
    "use_huber": True,  # Y algo.use_huber_loss: True
    "huber_delta": 10.0,  # Y algo.huber_delta: 10.0
    "ratio_aggregation": "prod",  # Y algo.action_aggregation: prod
    "use_value_norm": True,  # Y train.use_valuenorm: True
    "value_norm_update": "per_minibatch",  # harl/algorithms/critics/v_critic.py cal_value_loss: update per minibatch
    "linear_lr_decay": False,  # Y train.use_linear_lr_decay: False
    "adv_norm": "batch",  # harl/algorithms/actors/happo.py train: mean/std over the whole batch (EP)
}
HARL_PPO: dict[str, Any] = {
    "ppo_epoch": 5,  # Y algo.ppo_epoch: 5 (haa2c.yaml algo.a2c_epoch: 5)
    "clip": 0.2,  # Y algo.clip_param: 0.2
    "actor_num_mini_batch": 1,  # Y algo.actor_num_mini_batch: 1
    "entropy_coef": 0.01,  # Y algo.entropy_coef: 0.01
}
HARL_HA: dict[str, Any] = {
    "share_param": False,  # Y algo.share_param: False (happo/hatrpo/haa2c.yaml)
    "fixed_order": False,  # Y algo.fixed_order: False (happo/hatrpo/haa2c.yaml)
    "granularity": "agent_outer",  # harl/runners/on_policy_ha_runner.py: each agent trains all its epochs in turn
    "simultaneous": False,  # harl/runners/on_policy_ha_runner.py: the factor is always applied
}
HARL_TABLE: dict[str, dict[str, Any]] = {
    "mappo": {**HARL_COMMON, **HARL_PPO,
              "share_param": True,  # mappo.yaml algo.share_param: True
              "fixed_order": True},  # mappo.yaml algo.fixed_order: True
    "ippo": {**HARL_COMMON, **HARL_PPO, "share_param": True, "fixed_order": True},  # no IPPO in HARL: mappo.yaml
    "happo": {**HARL_COMMON, **HARL_PPO, **HARL_HA},
    "haa2c": {**HARL_COMMON, **HARL_PPO, **HARL_HA},
    "hatrpo": {
        **HARL_COMMON, **HARL_HA,
        "clip": 0.2,  # hatrpo.yaml algo.clip_param: 0.2
        "kl_threshold": 0.01,  # hatrpo.yaml algo.kl_threshold: 0.01
        "ls_steps": 10,  # hatrpo.yaml algo.ls_step: 10
        "accept_ratio": 0.5,  # hatrpo.yaml algo.accept_ratio: 0.5
        "backtrack_coeff": 0.8,  # hatrpo.yaml algo.backtrack_coeff: 0.8
        "cg_iters": 10,  # harl/algorithms/actors/hatrpo.py conjugate_gradient(..., nsteps=10)
        "fvp_damping": 0.1,  # harl/utils/trpo_util.py fisher_vector_product returns kl_hessian_p + 0.1 * p
        "entropy_coef": 0.0,  # hatrpo.yaml: no entropy term in the trust-region objective
    },
}
HARL_RUN = {"num_envs": 20,  # Y train.n_rollout_threads: 20
            "rollout_length": 200}  # Y train.episode_length: 200
ALGOS = sorted(HARL_TABLE)


@pytest.mark.parametrize("algo", ALGOS)
def test_preset_config_equals_harl_table(algo: str) -> None:
    cfg = config_for(algo).from_preset("harl")
    for key, value in HARL_TABLE[algo].items():
        assert getattr(cfg, key) == value, f"{algo}.{key}: preset {getattr(cfg, key)!r} != HARL {value!r}"
    assert preset_values(algo, "harl") == HARL_TABLE[algo]  # and nothing beyond the table
    # the preset is not the plain defaults (otherwise the table test above could pass with the preset ignored)
    plain = config_for(algo)()
    assert {k for k, v in HARL_TABLE[algo].items() if getattr(plain, k) != v} >= {
        "layer_norm", "feature_norm", "std_param", "value_norm_update", "rnn_hidden"}


@pytest.mark.parametrize("algo", ALGOS)
def test_cli_preset_reproduces_the_table_and_explicit_keys_win(algo: str) -> None:
    cfg = resolve(parse_overrides([f"algo={algo}", "preset=harl"]))
    built = config_for(algo)(**cfg.algo_kwargs)
    assert {k: getattr(built, k) for k in HARL_TABLE[algo]} == HARL_TABLE[algo]
    assert (cfg.num_envs, cfg.rollout_length) == (HARL_RUN["num_envs"], HARL_RUN["rollout_length"])
    assert "preset: harl" in cfg.to_yaml()
    own = resolve(parse_overrides([f"algo={algo}", "preset=harl", "algo.lr=0.003", "algo.layer_norm=false",
                                   "num_envs=8", "rollout_length=4"]))
    assert own.algo_kwargs["lr"] == 0.003 and own.algo_kwargs["layer_norm"] is False
    assert own.algo_kwargs["std_param"] == "harl"  # the rest of the preset stays
    assert (own.num_envs, own.rollout_length) == (8, 4)
    plain = resolve(parse_overrides([f"algo={algo}"]))
    assert plain.algo_kwargs == {} and plain.num_envs == 64 and plain.rollout_length is None


def test_cli_parses_the_new_fields_and_names_bad_values() -> None:
    cfg = resolve(parse_overrides(["algo=happo", "algo.layer_norm=true", "algo.feature_norm=yes",
                                   "algo.std_param=harl", "algo.value_norm_update=per_minibatch",
                                   "algo.linear_lr_decay=on", "algo.std_y_coef=0.25", "algo.opti_eps=1e-8"]))
    assert cfg.algo_kwargs == {"layer_norm": True, "feature_norm": True, "std_param": "harl",
                               "value_norm_update": "per_minibatch", "linear_lr_decay": True, "std_y_coef": 0.25,
                               "opti_eps": 1e-8}
    bad = {
        "algo.std_param=softplus": r"algo\.std_param must be one of \('exp', 'harl'\)",
        "algo.value_norm_update=per_epoch": r"algo\.value_norm_update must be one of \('per_iteration', 'per_minibatch'\)",
        "algo.layer_norm=maybe": r"algo\.layer_norm expects a value of type bool",
        "algo.linear_lr_decay=2": r"algo\.linear_lr_decay expects a value of type bool",
        "algo.std_x_coef=0": r"std_x_coef must be > 0",
        "algo.weight_decay=-1": r"weight_decay must be >= 0",
        "preset=cleanrl": r"unknown preset 'cleanrl'; allowed: \['harl'\]",
    }
    for arg, pattern in bad.items():
        with pytest.raises(ConfigError, match=pattern):
            resolve(parse_overrides(["algo=happo", arg]))
    with pytest.raises(ValueError, match="log_std_init"):
        HAPPOConfig(std_param="harl", log_std_init=-0.5)  # would be silently unused
    with pytest.raises(ValueError, match="std_x_coef/std_y_coef belong to std_param='harl'"):
        HAPPOConfig(std_y_coef=0.25)
    with pytest.raises(TypeError, match="layer_norm must be a bool"):
        HAPPOConfig(layer_norm=1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown preset"):
        HAPPOConfig.from_preset("cleanrl")


# ------------------------------------------------------------------------------------------ layer norm
def _layer_norms(module: nn.Module) -> list[nn.LayerNorm]:
    return [m for m in module.modules() if isinstance(m, nn.LayerNorm)]


@pytest.mark.parametrize("critic", ["centralised", "decentralised"])
def test_layer_norm_and_feature_norm_modules(critic: str) -> None:
    spec = make("bridge", num_envs=2).spec  # 2 agents, obs 6, state 8
    hidden = (16, 8)
    none = OnPolicyAgent(spec, HAPPOConfig(hidden=hidden, critic=critic))
    assert _layer_norms(none.actors) == [] and _layer_norms(none.critic) == []
    # HARL MLPBase: LayerNorm(obs) -> [Linear -> ReLU -> LayerNorm] per hidden layer
    both = OnPolicyAgent(spec, HAPPOConfig(hidden=hidden, critic=critic, layer_norm=True, feature_norm=True))
    body = both.actors.actors[0].body.net
    assert [type(m).__name__ for m in body] == ["LayerNorm", "Linear", "ReLU", "LayerNorm", "Linear", "ReLU",
                                                "LayerNorm"]
    assert [m.normalized_shape for m in _layer_norms(body)] == [(6,), (16,), (8,)]
    per_net = 3
    assert len(_layer_norms(both.actors)) == spec.n_agents * per_net
    n_critics = 1 if critic == "centralised" else spec.n_agents
    crit_ln = _layer_norms(both.critic)
    assert len(crit_ln) == n_critics * per_net
    assert crit_ln[0].normalized_shape == ((8,) if critic == "centralised" else (6,))
    only_hidden = OnPolicyAgent(spec, HAPPOConfig(hidden=hidden, critic=critic, layer_norm=True))
    assert len(_layer_norms(only_hidden.actors)) == spec.n_agents * 2
    only_input = OnPolicyAgent(spec, HAPPOConfig(hidden=hidden, critic=critic, feature_norm=True))
    assert len(_layer_norms(only_input.actors)) == spec.n_agents * 1
    # recurrent: HARL's RNNLayer normalises the GRU output too
    rnn = OnPolicyAgent(spec, HAPPOConfig(hidden=hidden, critic=critic, layer_norm=True, use_rnn=True, rnn_hidden=4))
    assert rnn.actors.actors[0].rnn_norm is not None and rnn.actors.actors[0].rnn_norm.normalized_shape == (4,)
    assert OnPolicyAgent(spec, HAPPOConfig(hidden=hidden, use_rnn=True, rnn_hidden=4)).actors.actors[0].rnn_norm is None


def test_layer_norm_effect_on_features_and_inputs() -> None:
    spec = make("bridge", num_envs=2).spec
    obs = torch.randn(64, 6, generator=torch.Generator().manual_seed(1)) * 3 + 2
    ln = OnPolicyAgent(spec, HAPPOConfig(hidden=(32, 32), layer_norm=True)).actors.actors[0].body(obs).detach()
    plain = OnPolicyAgent(spec, HAPPOConfig(hidden=(32, 32))).actors.actors[0].body(obs).detach()
    # after LayerNorm (identity affine at init) every sample's features have mean 0 and variance 1
    assert torch.allclose(ln.mean(-1), torch.zeros(64), atol=1e-5)
    assert torch.allclose(ln.var(-1, unbiased=False), torch.ones(64), atol=1e-3)
    assert float(plain.mean(-1).abs().max()) > 0.1 and float((plain >= 0).float().mean()) == 1.0  # ReLU features
    # input LayerNorm: the policy cannot tell obs from 3 * obs + 1 (per-sample affine maps); without it, it can
    fn = OnPolicyAgent(spec, HAPPOConfig(hidden=(32, 32), feature_norm=True, gain=1.0))
    no = OnPolicyAgent(spec, HAPPOConfig(hidden=(32, 32), gain=1.0))
    for agent, same in ((fn, True), (no, False)):
        p1 = agent.actors.distribution_agent(0, obs).probs
        p2 = agent.actors.distribution_agent(0, 3 * obs + 1).probs
        assert torch.allclose(p1, p2, atol=1e-5) is same


# ------------------------------------------------------------------------------------------ std parametrisation
HARL_STD0 = 1.0 / (1.0 + math.exp(-1.0)) * 0.5  # sigmoid(std_x_coef / std_x_coef) * std_y_coef = 0.36552928...


def test_harl_std_initial_value_and_bounds() -> None:
    spec = make("gaussian/a1a2", num_envs=2).spec
    harl = OnPolicyAgent(spec, HAPPOConfig(hidden=(8,), std_param="harl"))
    exp = OnPolicyAgent(spec, HAPPOConfig(hidden=(8,)))
    obs = torch.zeros(5, 1)
    for i in range(spec.n_agents):
        head = harl.actors.actors[i].head
        assert float(head.log_std) == 1.0  # HARL: log_std = ones * std_x_coef
        assert abs(float(head.std()) - HARL_STD0) < 1e-7
        d = harl.actors.distribution_agent(i, obs)
        assert torch.allclose(d.std, torch.full((5, 1), HARL_STD0), atol=1e-7)
        a = torch.linspace(-1, 1, 5).unsqueeze(-1)
        ref = torch.distributions.Normal(d.mean, torch.full_like(d.mean, HARL_STD0))
        assert torch.allclose(d.log_prob(a), ref.log_prob(a).sum(-1), atol=1e-5)
        assert float(exp.actors.actors[i].head.std()) == 1.0  # the exp parametrisation starts at 1
    head, exp_head = harl.actors.actors[0].head, exp.actors.actors[0].head
    with torch.no_grad():
        for p in (-20.0, -3.0, 0.0, 3.0, 20.0):
            head.log_std.fill_(p)
            exp_head.log_std.fill_(p)
            s = float(harl.actors.distribution_agent(0, obs).std[0, 0])
            assert 0.0 < s <= 0.5 and abs(s - 0.5 / (1.0 + math.exp(-p))) < 1e-6
        assert float(exp.actors.distribution_agent(0, obs).std[0, 0]) > 1e8  # exp(20): unbounded
    # other coefficients: p starts at x, std = sigmoid(p / x) * y
    other = OnPolicyAgent(spec, HAPPOConfig(hidden=(8,), std_param="harl", std_x_coef=2.0, std_y_coef=0.3))
    assert float(other.actors.actors[0].head.log_std) == 2.0
    assert abs(float(other.actors.actors[0].head.std()) - 0.3 / (1.0 + math.exp(-1.0))) < 1e-7


def test_harl_std_stays_below_its_cap_under_training() -> None:
    """Entropy maximisation pushes the std up: the exp parametrisation passes 0.5, the HARL one cannot."""
    env = make("gaussian/a1a2", num_envs=32)
    stds = {}
    for param in ("exp", "harl"):
        agent = make_agent("happo", env.spec, hidden=(8,), std_param=param, entropy_coef=50.0, lr=0.05)
        Trainer(env, agent, TrainerConfig(total_steps=32 * 15, rollout_length=1, progress=False,
                                          tensorboard=False)).train()
        stds[param] = float(agent.actors.actors[0].head.std())
    assert stds["exp"] > 0.6
    assert HARL_STD0 < stds["harl"] < 0.5


# ------------------------------------------------------------------------------------------ value-norm cadence
def _count_value_norm_updates(agent: OnPolicyAgent, env, rollout: int) -> list[int]:
    """Sizes of the batches folded into the value normaliser during ONE update."""
    sizes: list[int] = []
    original = agent.value_norm.update

    def counting(x: torch.Tensor) -> None:
        sizes.append(int(x.numel()))
        original(x)

    agent.value_norm.update = counting  # type: ignore[method-assign]
    trainer = Trainer(env, agent, TrainerConfig(total_steps=10**6, rollout_length=rollout, progress=False,
                                                tensorboard=False))
    agent.update(trainer.collect())
    return sizes


@pytest.mark.parametrize("critic_epoch,minibatches", [(5, 1), (3, 4)])
def test_value_norm_update_count_per_iteration(critic_epoch: int, minibatches: int) -> None:
    env = make("bridge", num_envs=8)
    kw = dict(hidden=(8,), critic_epoch=critic_epoch, critic_num_mini_batch=minibatches, ppo_epoch=1)
    n = 8 * 6  # num_envs x rollout_length samples
    per_mb = _count_value_norm_updates(make_agent("happo", env.spec, value_norm_update="per_minibatch", **kw), env, 6)
    assert len(per_mb) == critic_epoch * minibatches  # HARL: once per critic minibatch x epoch
    assert sum(per_mb) == critic_epoch * n  # on the minibatch's returns: every sample once per epoch
    per_it = _count_value_norm_updates(make_agent("happo", env.spec, **kw), env, 6)
    assert per_it == [n]  # default: once per iteration on the whole rollout


def test_value_norm_cadence_changes_the_statistics() -> None:
    env = make("bridge", num_envs=8)
    means = []
    for cadence in ("per_iteration", "per_minibatch"):
        agent = make_agent("happo", env.spec, hidden=(8,), critic_num_mini_batch=4, ppo_epoch=1,
                           value_norm_update=cadence, seed=3)
        Trainer(env, agent, TrainerConfig(total_steps=8 * 6 * 2, rollout_length=6, progress=False,
                                          tensorboard=False), seed=3).train()
        means.append(agent.value_norm.debiasing_term.item())
    # beta-EMA debiasing term 1 - beta^k counts the folds: 2 iterations vs 2 x 5 epochs x 4 minibatches
    beta = 0.99999
    assert abs(means[0] - (1 - beta**2)) < 1e-12 and abs(means[1] - (1 - beta**40)) < 1e-12


# ------------------------------------------------------------------------------------------ linear lr decay
@pytest.mark.parametrize("algo", ["happo", "mappo", "hatrpo"])
def test_linear_lr_decay_schedule(algo: str) -> None:
    env = make("matrix/xor", num_envs=4, n_agents=2)
    K, lr, critic_lr = 4, 0.002, 0.001
    seen: list[tuple[int, list[float], float]] = []

    def record(iteration: int, agent: OnPolicyAgent, row: dict[str, float]) -> None:
        seen.append((iteration, [g["lr"] for o in agent.actor_optimizers for g in o.param_groups],
                     agent.critic_optimizer.param_groups[0]["lr"]))

    agent = make_agent(algo, env.spec, hidden=(8,), lr=lr, critic_lr=critic_lr, linear_lr_decay=True)
    rows = Trainer(env, agent, TrainerConfig(total_steps=4 * K, rollout_length=1, progress=False, tensorboard=False),
                   callbacks=[record]).train()
    assert len(seen) == K
    for it, actor_lrs, c_lr in seen:
        k = it - 1  # the update that just ran is iteration k (0-based): lr * (1 - k / K)
        assert all(abs(x - lr * (1 - k / K)) < 1e-15 for x in actor_lrs)
        assert abs(c_lr - critic_lr * (1 - k / K)) < 1e-15
    # HARL update_linear_schedule(episode = k + 1): lr - lr * ((episode - 1) / episodes)
    assert [r["actor_lr"] for r in rows] == pytest.approx([lr - lr * (e - 1) / K for e in range(1, K + 1)], abs=1e-15)
    constant = make_agent(algo, env.spec, hidden=(8,), lr=lr, critic_lr=critic_lr)
    seen.clear()
    Trainer(env, constant, TrainerConfig(total_steps=4 * K, rollout_length=1, progress=False, tensorboard=False),
            callbacks=[record]).train()
    assert all(a == [lr] * len(a) and c == critic_lr for _, a, c in seen)


def test_linear_lr_decay_survives_resume(tmp_path) -> None:
    """The schedule follows the iteration count, so a resumed run uses the uninterrupted run's step sizes."""
    from seqmarl.train import run

    common = ["algo=happo", "env=matrix/xor", "env.n_agents=2", "algo.hidden=8", "num_envs=8", "rollout_length=1",
              "progress=false", "tensorboard=false", "algo.linear_lr_decay=true", "algo.lr=0.01"]
    run(parse_overrides([*common, f"run_dir={tmp_path / 'a'}", "total_steps=48"]))

    def crash(iteration: int, agent: OnPolicyAgent, row: dict[str, float]) -> None:
        if iteration == 4:  # after the checkpoint at 3 (the schedule needs the same total_steps)
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run(parse_overrides([*common, f"run_dir={tmp_path / 'b'}", "total_steps=48", "checkpoint_interval=3"]),
            callbacks=[crash])
    resumed, _ = run(parse_overrides([*common, f"run_dir={tmp_path / 'b'}", "total_steps=48",
                                      f"resume={tmp_path / 'b'}"]))
    import json

    rows = {d: [json.loads(x) for x in (tmp_path / d / "metrics.jsonl").read_text().splitlines()] for d in "ab"}
    assert [r["actor_lr"] for r in rows["a"]] == [r["actor_lr"] for r in rows["b"]]
    assert [r["actor_lr"] for r in rows["a"]] == pytest.approx([0.01 * (1 - k / 6) for k in range(6)], abs=1e-15)
    assert [r["policy_objective"] for r in rows["a"]] == [r["policy_objective"] for r in rows["b"]]


def test_lr_decay_validates_its_arguments() -> None:
    agent = make_agent("happo", make("matrix/xor", num_envs=2).spec, hidden=(4,))
    agent.lr_decay(3, 4)
    assert agent.current_lr() == pytest.approx((5e-4 / 4, 5e-4 / 4))
    for bad in ((4, 4), (-1, 4), (0, 0)):
        with pytest.raises(ValueError):
            agent.lr_decay(*bad)


# ------------------------------------------------------------------------------------------ other HARL knobs
def test_gain_opti_eps_weight_decay_and_value_loss_coef_are_wired() -> None:
    spec = make("bridge", num_envs=2).spec
    agent = OnPolicyAgent(spec, HAPPOConfig(hidden=(8,), gain=0.5, opti_eps=1e-3, weight_decay=0.1))
    w = agent.actors.actors[0].head.linear.weight  # [A, 8] orthogonal rows scaled by gain
    assert torch.allclose(w @ w.T, 0.25 * torch.eye(w.shape[0]), atol=1e-5)
    for opt in [*agent.actor_optimizers, agent.critic_optimizer]:
        assert opt.param_groups[0]["eps"] == 1e-3 and opt.param_groups[0]["weight_decay"] == 0.1
    default = OnPolicyAgent(spec, HAPPOConfig(hidden=(8,)))
    w = default.actors.actors[0].head.linear.weight
    assert torch.allclose(w @ w.T, 1e-4 * torch.eye(w.shape[0]), atol=1e-8)
    # value_loss_coef scales the critic gradient (no clipping: max_grad_norm huge)
    env = make("bridge", num_envs=4)
    grads = []
    for coef in (1.0, 3.0):
        agent = make_agent("happo", env.spec, hidden=(8,), value_loss_coef=coef, max_grad_norm=1e9, seed=5,
                           critic_epoch=1, ppo_epoch=1)
        captured: list[torch.Tensor] = []
        agent.critic_optimizer.register_step_pre_hook(
            lambda opt, args, kwargs: captured.append(torch.cat([p.grad.flatten() for p in agent.critic.parameters()])))
        agent.update(Trainer(env, agent, TrainerConfig(total_steps=10**6, rollout_length=3, progress=False,
                                                       tensorboard=False), seed=5).collect())
        grads.append(captured[0])
    assert torch.allclose(grads[1], 3.0 * grads[0], rtol=1e-4, atol=1e-7)


def test_preset_agent_trains_on_discrete_and_continuous_envs() -> None:
    for env_name, kw in (("matrix/xor", {"n_agents": 2}), ("gaussian/a1a2", {})):
        env = make(env_name, num_envs=4, **kw)
        for cls in (HAPPOConfig, MAPPOConfig):
            agent = OnPolicyAgent(env.spec, cls.from_preset("harl", hidden=(8,)))
            rows = Trainer(env, agent, TrainerConfig(total_steps=4 * 3, rollout_length=1, progress=False,
                                                     tensorboard=False)).train()
            assert len(rows) == 3 and all(math.isfinite(r["critic_loss"]) for r in rows)
