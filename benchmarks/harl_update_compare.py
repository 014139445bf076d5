"""One update of seqmarl's HAPPO / HAA2C / HATRPO / MAPPO (``preset=harl``) against HARL's own classes, on the
same weights and the same batch. Prints the largest parameter difference per network after the update.

HARL (PKU-MARL/HARL) is not a dependency and none of its code is in this project: this script imports it from a
checkout that you give it. It is not run in CI.

How to run::

    git clone https://github.com/PKU-MARL/HARL /tmp/HARL      # or any checkout; only harl/ is imported
    .venv/bin/python benchmarks/harl_update_compare.py --harl /tmp/HARL [--algos happo,hatrpo] [--envs bridge]

Only torch, numpy and pyyaml are needed (they are in the project venv). HARL's environment packages are not
needed: ``harl.envs`` is replaced by an empty stub before the import, and the gym spaces by two tiny stand-ins
named ``Box`` and ``Discrete``, which is all HARL inspects.

What is compared, for each algorithm and env (``bridge``: discrete; ``gaussian/a1a2``: continuous):

1. A seqmarl agent is built with ``Config.from_preset("harl", fixed_order=True, hidden=...)``. One rollout is
   collected with the seqmarl trainer.
2. HARL's actors (``harl.algorithms.actors.<algo>``), its ``VCritic`` and its ``ValueNorm`` are built from
   HARL's own yaml (``harl/configs/algos_cfgs/<algo>.yaml``, with the same hidden sizes and ``fixed_order``). They
   get seqmarl's initial weights, parameter by parameter (the layouts match: feature LayerNorm, then
   Linear/ReLU/LayerNorm blocks, then the head).
3. Both value normalisers fold in the same warm-up vector, so that they start from the same statistics (HARL's
   empty normaliser de-normalises ×0.1, seqmarl's is the identity: docs/harl_differences.md row 10). GAE is
   computed once by seqmarl and given to HARL as its returns, so HARL's truncation rule (row 6) is not part of
   the comparison.
4. seqmarl's ``agent.update`` runs, and HARL's update runs through its actors' own ``train`` /
   ``share_param_train`` and ``VCritic.train``, called in the order of HARL's runners (agents in a fixed order,
   each agent's factor from the full-batch ratios, then the critic).
5. For each network (actor of each agent, critic) the script prints ``max |θ_seqmarl − θ_HARL|`` after the
   update, next to the size of the update itself (``max |Δθ|``).

Expected: MAPPO, HAPPO and HAA2C agree to float32 rounding (≈1e-6 relative to the step). So does HATRPO with
continuous actions. HATRPO with discrete actions differs by design: seqmarl uses the exact KL where HARL uses
its unweighted ``kl_approx`` on log-probabilities (row 7), and its CG stopping rule (row 8) can also matter.
"""

from __future__ import annotations

import argparse
import sys
import types
from pathlib import Path

import numpy as np
import torch

ALGOS = ("mappo", "happo", "haa2c", "hatrpo")
ENVS = {"bridge": {}, "gaussian/a1a2": {}}


class Box:
    """Stand-in for ``gym.spaces.Box`` (HARL reads ``__class__.__name__`` and ``shape``)."""

    def __init__(self, dim: int) -> None:
        self.shape = (dim,)


class Discrete:
    """Stand-in for ``gym.spaces.Discrete`` (HARL reads ``__class__.__name__`` and ``n``)."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.shape = ()


def import_harl(path: Path) -> dict[str, object]:
    """HARL's actor classes, VCritic, ValueNorm and buffers from the checkout at ``path`` (``harl.envs`` stubbed)."""
    if not (path / "harl" / "algorithms").is_dir():
        raise SystemExit(f"--harl {path}: no harl/algorithms folder there (give the root of a HARL checkout)")
    sys.path.insert(0, str(path))
    envs = types.ModuleType("harl.envs")
    envs.__path__ = []  # a package, so that harl.envs.env_wrappers can be stubbed below it
    wrappers = types.ModuleType("harl.envs.env_wrappers")
    wrappers.ShareSubprocVecEnv = wrappers.ShareDummyVecEnv = None
    sys.modules["harl.envs"] = envs
    sys.modules["harl.envs.env_wrappers"] = wrappers
    from harl.algorithms.actors.haa2c import HAA2C
    from harl.algorithms.actors.happo import HAPPO
    from harl.algorithms.actors.hatrpo import HATRPO
    from harl.algorithms.actors.mappo import MAPPO
    from harl.algorithms.critics.v_critic import VCritic
    from harl.common.buffers.on_policy_actor_buffer import OnPolicyActorBuffer
    from harl.common.buffers.on_policy_critic_buffer_ep import OnPolicyCriticBufferEP
    from harl.common.valuenorm import ValueNorm

    return {"happo": HAPPO, "haa2c": HAA2C, "hatrpo": HATRPO, "mappo": MAPPO, "VCritic": VCritic,
            "ActorBuffer": OnPolicyActorBuffer, "CriticBuffer": OnPolicyCriticBufferEP, "ValueNorm": ValueNorm}


def harl_args(path: Path, algo: str, hidden: tuple[int, ...], T: int, B: int) -> dict:
    """HARL's ``{**model, **algo}`` and ``{**train, **model}`` dicts from its own yaml, with our sizes."""
    import yaml

    raw = yaml.safe_load((path / "harl" / "configs" / "algos_cfgs" / f"{algo}.yaml").read_text())
    model = {**raw["model"], "hidden_sizes": list(hidden)}
    algo_args = {**raw["algo"], "fixed_order": True}
    train = {**raw["train"], "episode_length": T, "n_rollout_threads": B}
    return {"net": {**model, **algo_args}, "buffer": {**train, **model, **algo_args}}


def copy_params(src: torch.nn.Module, dst: torch.nn.Module, what: str) -> None:
    """Copy ``src``'s parameters into ``dst`` in registration order (shapes must match one by one)."""
    ps, pd = list(src.parameters()), list(dst.parameters())
    if len(ps) != len(pd):
        raise SystemExit(f"{what}: {len(ps)} parameters here vs {len(pd)} in HARL; layouts differ")
    with torch.no_grad():
        for a, b in zip(ps, pd):
            if a.shape != b.shape:
                raise SystemExit(f"{what}: shape {tuple(a.shape)} here vs {tuple(b.shape)} in HARL")
            b.copy_(a.detach().to(b.dtype))


def max_diff(a: torch.nn.Module, b: torch.nn.Module) -> float:
    return max(float((p.detach().double() - q.detach().double()).abs().max()) for p, q in zip(a.parameters(), b.parameters()))


def compare(harl: dict, path: Path, algo: str, env_name: str, T: int, B: int, hidden: tuple[int, ...],
            seed: int) -> list[tuple[str, float, float]]:
    """Run one update each way; rows ``(network, max |θ_ours − θ_HARL|, max |Δθ_ours|)``."""
    from seqmarl.algos import OnPolicyAgent, Trainer, TrainerConfig, config_for
    from seqmarl.envs import make

    torch.manual_seed(seed)
    env = make(env_name, num_envs=B, seed=seed, **ENVS[env_name])
    spec = env.spec
    n = spec.n_agents
    cfg = config_for(algo).from_preset("harl", fixed_order=True, hidden=hidden)
    agent = OnPolicyAgent(spec, cfg, seed=seed)
    buffer = Trainer(env, agent, TrainerConfig(total_steps=10**9, rollout_length=T, progress=False,
                                               tensorboard=False), seed=seed).collect()
    args = harl_args(path, algo, hidden, T, B)
    obs_space = Box(spec.obs_dim)
    spaces = [Discrete(s.n) if s.is_discrete else Box(s.dim) for s in spec.agent_spaces]
    # --- HARL networks with our initial weights
    if cfg.share_param:
        shared = harl[algo](args["net"], obs_space, spaces[0])
        actors = [shared] * n
        copy_params(agent.actors.actors[0], shared.actor, "shared actor")
    else:
        actors = [harl[algo](args["net"], obs_space, spaces[i]) for i in range(n)]
        for i in range(n):
            copy_params(agent.actors.actors[i], actors[i].actor, f"actor {i}")
    critic = harl["VCritic"](args["net"], Box(spec.state_dim))
    copy_params(agent.critic, critic.critic, "critic")
    before = {f"actor {i}": [p.detach().clone() for p in agent.actors.actors[0 if cfg.share_param else i].parameters()]
              for i in range(1 if cfg.share_param else n)}
    before["critic"] = [p.detach().clone() for p in agent.critic.parameters()]
    # --- same value-norm statistics on both sides
    vnorm = harl["ValueNorm"](1)
    warm = torch.linspace(-2.0, 5.0, 64)
    agent.value_norm.update(warm)
    vnorm.update(warm.unsqueeze(-1))
    adv, ret = buffer.compute_returns(cfg.gamma, cfg.gae_lambda, agent.value_norm)
    # --- HARL buffers hold our rollout ([T, B, ...] numpy float32)
    np32 = lambda x: x.detach().cpu().numpy().astype(np.float32)  # noqa: E731
    actor_bufs = []
    for i in range(n):
        ab = harl["ActorBuffer"](args["buffer"], obs_space, spaces[i])
        ab.obs[:-1] = np32(buffer.obs[:, :, i])
        if spec.is_discrete:
            ab.actions[:] = np32(buffer.actions[:, :, i]).reshape(T, B, 1)
            ab.action_log_probs[:] = np32(buffer.log_probs[:, :, i]).reshape(T, B, 1)
            if ab.available_actions is not None and buffer.avail_actions is not None:
                ab.available_actions[:-1] = np32(buffer.avail_actions[:, :, i, : spaces[i].n])
        else:
            d = spaces[i].shape[0]
            ab.actions[:] = np32(buffer.actions[:, :, i, :d])
            with torch.no_grad():  # HARL stores per-dimension log-probs for Box actions
                lp = agent.actors.log_prob_agent(i, buffer.obs[:, :, i], buffer.actions[:, :, i], per_dim=True)
            ab.action_log_probs[:] = np32(lp[..., :d])
        actor_bufs.append(ab)
    cb = harl["CriticBuffer"](args["buffer"], Box(spec.state_dim))
    cb.share_obs[:-1] = np32(buffer.state)
    cb.value_preds[:-1] = np32(buffer.values).reshape(T, B, 1)
    cb.returns[:-1] = np32(ret).reshape(T, B, 1)
    # --- our update
    agent.update(buffer)
    # --- HARL's update, in the order of its runners
    advantages = cb.returns[:-1] - vnorm.denormalize(cb.value_preds[:-1])
    if algo == "mappo":
        actors[0].share_param_train(actor_bufs, advantages.copy(), n, "EP")
    else:
        factor = np.ones((T, B, 1), dtype=np.float32)
        for i in range(n):  # fixed order 0..n-1 on both sides
            ab = actor_bufs[i]
            avail = None if ab.available_actions is None else ab.available_actions[:-1].reshape(T * B, -1)
            flat = dict(obs=ab.obs[:-1].reshape(T * B, -1), rnn_states_actor=ab.rnn_states[0],
                        action=ab.actions.reshape(T * B, -1), masks=ab.masks[:-1].reshape(T * B, 1),
                        available_actions=avail, active_masks=ab.active_masks[:-1].reshape(T * B, 1))
            ab.update_factor(factor)
            with torch.no_grad():
                old_lp, _, _ = actors[i].evaluate_actions(**flat)
            actors[i].train(ab, advantages.copy(), "EP")
            with torch.no_grad():
                new_lp, _, _ = actors[i].evaluate_actions(**flat)
            ratio = torch.prod(torch.exp(new_lp - old_lp), dim=-1)  # action_aggregation: prod
            factor = factor * ratio.numpy().reshape(T, B, 1)
    critic.train(cb, vnorm)
    # --- compare
    rows = []
    for i in range(1 if cfg.share_param else n):
        ours = agent.actors.actors[i]
        step = max(float((p.detach() - q).abs().max()) for p, q in zip(ours.parameters(), before[f"actor {i}"]))
        rows.append((f"actor {i}", max_diff(ours, actors[i].actor), step))
    step = max(float((p.detach() - q).abs().max()) for p, q in zip(agent.critic.parameters(), before["critic"]))
    rows.append(("critic", max_diff(agent.critic, critic.critic), step))
    mean_ours, var_ours = agent.value_norm.mean_var()
    mean_h, var_h = vnorm.running_mean_var()
    rows.append(("value norm (mean, var)", max(abs(float(mean_ours) - float(mean_h)), abs(float(var_ours) - float(var_h))),
                 float("nan")))
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--harl", type=Path, required=True, help="root of a PKU-MARL/HARL checkout")
    p.add_argument("--algos", default=",".join(ALGOS))
    p.add_argument("--envs", default=",".join(ENVS))
    p.add_argument("--T", type=int, default=10, help="rollout length")
    p.add_argument("--B", type=int, default=16, help="parallel environments")
    p.add_argument("--hidden", default="64,64")
    p.add_argument("--seed", type=int, default=0)
    ns = p.parse_args()
    torch.set_num_threads(1)
    harl = import_harl(ns.harl.resolve())
    hidden = tuple(int(h) for h in ns.hidden.split(","))
    print(f"{'algo':8s} {'env':15s} {'network':24s} {'max|θ_ours-θ_HARL|':>20s} {'max|Δθ| (step)':>16s}")
    for algo in ns.algos.split(","):
        for env_name in ns.envs.split(","):
            for name, diff, step in compare(harl, ns.harl.resolve(), algo, env_name, ns.T, ns.B, hidden, ns.seed):
                print(f"{algo:8s} {env_name:15s} {name:24s} {diff:20.3e} {step:16.3e}")


if __name__ == "__main__":
    main()
