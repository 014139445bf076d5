"""MAT and MAT-Dec (Wen et al. NeurIPS22) against the exact oracles.

Every test names the ingredient it checks and carries an ABLATION that must fail the same assertion: for the
learning tests the same network with the previous actions hidden (``mat_condition=False``: every decoder input
token zeroed), for the exactness tests the specific misuse the test guards against (a wrong teacher-forcing
order, a decoder without its causal mask, a per-agent readout, HAPPO's factor). Asserted figures come from the
exact oracle (``theory.optima``, the exact joint table) or closed forms (J* = 1, J*_share = 2/2^n, log n!), never
from a previous run. Seeded, CPU, small networks.
"""

from __future__ import annotations

import io
import json
import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from seqmarl.algos import MATConfig, MATDecConfig, actor_updates, make_agent
from seqmarl.algos.core import JointPolicy, exact_joint_table
from seqmarl.algos.core.joint_policy import random_orders
from seqmarl.algos.core.mat_policy import MATDecPolicy, MultiAgentTransformer
from seqmarl.algos.core.networks import BoxSpace
from seqmarl.algos.trainer import Trainer, TrainerConfig
from seqmarl.cli import main
from seqmarl.envs import make
from seqmarl.theory import Joint, games, optima
from seqmarl.validate import joint_policy, oracle_run, policy_tables

FAST = dict(lr=5e-3, n_embd=32, ppo_epoch=5)
# learning tests: clip 0.05 as in MAT's own train scripts (mat/scripts/train_smac.sh, train_mujoco.sh
# ``--clip_param 0.05``); with config.py's 0.2, runs that had reached the optimum fell back (docs/mat.md)
LEARN = dict(FAST, clip=0.05)
ABLATION = dict(mat_condition=False)
DISCRETE = [3, 2, 3, 4]
CONTINUOUS = [BoxSpace(2), BoxSpace(3), BoxSpace(1), BoxSpace(3)]


def _mat(discrete: bool = True, seed: int = 0, cls: type = MultiAgentTransformer, **kw) -> MultiAgentTransformer:
    torch.manual_seed(seed)
    return cls(4, 3, DISCRETE if discrete else CONTINUOUS, n_embd=16, n_head=2, n_block=2, out_gain=1.0,
               agent_id=True, **kw)


def _inputs(batch: int = 128, seed: int = 0, discrete: bool = True) -> tuple[torch.Tensor, torch.Tensor | None]:
    g = torch.Generator().manual_seed(seed)
    obs = torch.randn(batch, 4, 3, generator=g)
    if not discrete:
        return obs, None
    avail = torch.rand(batch, 4, 4, generator=g) < 0.7
    avail[..., 0] = True  # every agent keeps at least one action
    return obs, avail


def _outputs(policy: MultiAgentTransformer, obs, actions, avail, order) -> torch.Tensor:
    """The conditionals' parameters, agent-indexed: probabilities (discrete) or means (continuous) ``[B, n, *]``."""
    dist = policy.distribution(obs, actions, avail, order)
    return dist.probs if policy.discrete else dist.mean


# ------------------------------------------------------------------------------------------------ exactness
def test_mat_and_mat_dec_satisfy_the_joint_policy_interface() -> None:
    mat, dec = _mat(), _mat(cls=MATDecPolicy)
    assert isinstance(mat, JointPolicy) and isinstance(dec, JointPolicy)
    assert mat.autoregressive and not dec.autoregressive


@pytest.mark.parametrize("discrete", [True, False], ids=["discrete", "continuous"])
@pytest.mark.parametrize("random", [False, True], ids=["fixed", "random"])
def test_teacher_forced_log_probs_equal_the_sequential_samples(discrete: bool, random: bool) -> None:
    """Sequential decoding (agent after agent in the order, each position decoded from the prefix of tokens) and
    ONE teacher-forced parallel pass over the drawn joint actions in the same order give the same per-agent
    conditional log-probs (to 1e-5), with masks, heterogeneous action counts/dimensions, 2 blocks and 2 heads.
    Ablation: teacher forcing in another order (the fixed one for random-order samples, the reversed one for
    fixed-order samples) differs."""
    policy = _mat(discrete)
    obs, avail = _inputs(discrete=discrete)
    g = torch.Generator().manual_seed(1)
    order = random_orders(obs.shape[0], 4, g) if random else None
    with torch.no_grad():
        actions, lp_sample = policy.sample(obs, avail, generator=g, order=order)
        lp_forced = policy.log_prob(obs, actions, avail, order=order)
        wrong = torch.arange(4) if random else torch.arange(3, -1, -1)
        lp_wrong = policy.log_prob(obs, actions, avail, order=wrong.expand(obs.shape[0], 4))
    if discrete:
        assert bool(avail.gather(-1, actions.unsqueeze(-1)).all())  # masked actions are never drawn
    else:  # padded action dimensions stay 0
        assert float(actions[:, 2, 1:].abs().max()) == 0.0 and float(actions[:, 0, 2].abs().max()) == 0.0
    assert float((lp_sample - lp_forced).abs().max()) <= 1e-5
    assert float((lp_sample - lp_wrong).abs().max()) > 1e-3  # the ablation fails the same check


class _NoCausalMask(MultiAgentTransformer):
    """Ablation: the decoder's causal mask removed (every position attends to every position)."""

    def __init__(self, *args, **kwargs) -> None:  # noqa: ANN002, ANN003
        super().__init__(*args, **kwargs)
        self.causal = torch.ones_like(self.causal)


@pytest.mark.parametrize("discrete", [True, False], ids=["discrete", "continuous"])
def test_changing_an_agents_action_changes_only_the_later_positions(discrete: bool) -> None:
    """Causal mask: for every position k (random orders), changing the action of the agent acting k-th never
    changes the conditional distributions at positions <= k (exactly: their attention weight on the changed
    token is 0), and does change one at a later position. Ablations: the same decoder without its causal mask
    breaks the first claim; ``condition=False`` (tokens zeroed) breaks the second."""
    obs, avail = _inputs(64, discrete=discrete)
    g = torch.Generator().manual_seed(2)
    order = random_orders(64, 4, g)
    pos = torch.empty_like(order).scatter_(1, order, torch.arange(4).expand(64, 4))
    rows = torch.arange(64)
    results = {}
    for name, policy in (("model", _mat(discrete)), ("no_mask", _mat(discrete, cls=_NoCausalMask)),
                         ("no_condition", _mat(discrete, condition=False))):
        with torch.no_grad():
            actions, _ = policy.sample(obs, avail, generator=g, order=order)
            before = _outputs(policy, obs, actions, avail, order)
            earlier, later = 0.0, 0.0
            for k in range(4):
                agent = order[:, k]
                changed = actions.clone()
                if discrete:
                    sizes = torch.tensor(policy.sizes)[agent]
                    changed[rows, agent] = (actions[rows, agent] + 1) % sizes
                else:
                    changed[rows, agent] = actions[rows, agent] + policy.valid[agent].float()
                diff = (_outputs(policy, obs, changed, avail, order) - before).abs().amax(-1)  # [64, n]
                earlier = max(earlier, float(diff[pos <= k].max()))
                if k < 3:
                    later = max(later, float(diff[pos > k].max()))
        results[name] = (earlier, later)
    assert results["model"][0] == 0.0 and results["model"][1] > 1e-3, results
    assert results["no_mask"][0] > 1e-3, results  # without the mask an earlier position reacts
    assert results["no_condition"][1] == 0.0, results  # with the tokens zeroed nothing reacts


def _trained_perm3(ar_order: str, updates: int = 8):
    env = make("matrix/permutation", n_agents=3, num_envs=128, seed=0)
    agent = make_agent("mat", env.spec, seed=0, ar_order=ar_order, agent_id=True, **FAST)
    Trainer(env, agent, TrainerConfig(total_steps=128 * updates, rollout_length=1, progress=False,
                                      tensorboard=False), seed=0).train()
    return env, agent


def test_exact_joint_readout_sums_to_one_and_matches_sampling_frequencies() -> None:
    """The exact joint table of a random-order MAT agent (``validate.joint_policy``: all 3! orders, every joint
    action teacher forced) sums to 1 and matches the frequencies of 40,000 joint actions drawn by ``agent.act``
    within 5 standard errors + 1e-3 per cell. Ablations: the product of the table's marginals (a per-agent
    readout) and the fixed-order table both fail the bound."""
    env, agent = _trained_perm3("random")
    pi = joint_policy(agent, env)
    assert isinstance(pi, Joint)
    table = pi.probs()[0]
    assert abs(table.sum() - 1.0) <= 1e-9
    N = 40_000
    step = SimpleNamespace(obs=env.observation_table().expand(N, -1, -1),
                           avail_actions=torch.stack([env.avail_actions_of_state(0)] * N))
    actions, _ = agent.act(step)
    counts = np.zeros((3, 3, 3))
    np.add.at(counts, tuple(actions.T.numpy()), 1)
    freq = counts / N

    def within(p: np.ndarray) -> bool:
        return bool(np.all(np.abs(freq - p) <= 5 * np.sqrt(p * (1 - p) / N) + 1e-3))

    assert within(table), np.abs(freq - table).max()
    marg = [table.sum(axis=tuple(j for j in range(3) if j != i)) for i in range(3)]
    product = marg[0][:, None, None] * marg[1][None, :, None] * marg[2][None, None, :]
    fixed = exact_joint_table(agent.actors, env.observation_table(), env.avail_actions_of_state(0)[None],
                              (3, 3, 3), [(0, 1, 2)])[0]
    assert not within(product)
    assert not within(fixed)


@pytest.mark.parametrize("cls", [MultiAgentTransformer, MATDecPolicy])
def test_action_masks_are_respected(cls: type) -> None:
    """Unavailable actions get probability exactly 0 and are never sampled (MAT: at every position of every
    order). Ablation: without the mask the same network puts positive mass on them."""
    policy = _mat(cls=cls)
    obs, avail = _inputs(256)
    g = torch.Generator().manual_seed(3)
    order = random_orders(256, 4, g)
    with torch.no_grad():
        actions, _ = policy.sample(obs, avail, generator=g, order=order)
        assert bool(avail.gather(-1, actions.unsqueeze(-1)).all())
        if cls is MultiAgentTransformer:
            probs = policy.distribution(obs, actions, avail, order).probs
            unmasked = policy.distribution(obs, actions, None, order).probs
        else:
            probs = torch.stack([policy.distribution_agent(i, obs[:, i], avail[:, i]).probs for i in range(4)], 1)
            unmasked = torch.stack([policy.distribution_agent(i, obs[:, i]).probs for i in range(4)], 1)
    padding = ~policy.valid.expand(256, 4, 4)
    assert float(probs[~avail].max()) == 0.0
    assert float(unmasked[padding].max()) == 0.0  # each agent's padded actions are always masked
    assert float(unmasked[~avail & ~padding].max()) > 1e-3  # the ablation (no avail mask) fails


@pytest.mark.parametrize("algo", ["mat", "mat_dec"])
def test_per_agent_values_and_state_dict_round_trip(algo: str) -> None:
    """The encoder's value head gives one value per agent (``[B, n]``, the per-agent buffer path); the critic IS
    the policy network (one optimiser, no separate critic optimiser); a state_dict round trip through
    ``torch.save`` restores parameters, optimiser and generator, so the restored agent acts and updates exactly
    as the original. Ablation: a fresh agent with another seed acts differently."""
    env = make("matrix/permutation", n_agents=3, num_envs=32, seed=0)
    agent = make_agent(algo, env.spec, seed=0, **FAST)
    trainer = Trainer(env, agent, TrainerConfig(total_steps=32 * 2, rollout_length=1, progress=False,
                                                tensorboard=False), seed=0)
    trainer.train()
    step = env.reset(seed=1)
    assert tuple(agent.values(step.state, step.obs).shape) == (32, 3)
    assert agent.critic is agent.actors and agent.critic_optimizer is None and len(agent.actor_optimizers) == 1
    buf = io.BytesIO()
    torch.save(agent.state_dict(), buf)
    buf.seek(0)
    clone = make_agent(algo, env.spec, seed=5, **FAST)
    other = make_agent(algo, env.spec, seed=5, **FAST)
    clone.load_state_dict(torch.load(buf, weights_only=False))
    for p, q in zip(agent.actors.parameters(), clone.actors.parameters()):
        assert torch.equal(p, q)
    a1, lp1 = agent.act(step)
    a2, lp2 = clone.act(step)
    a3, _ = other.act(step)
    assert torch.equal(a1, a2) and torch.allclose(lp1, lp2)
    assert not torch.equal(a1, a3) or not torch.allclose(lp1, other.act(step)[1])


def test_the_update_clips_each_agents_own_conditional_ratio(monkeypatch: pytest.MonkeyPatch) -> None:
    """``mat_clip`` hands PPO's clip a ``[m, n]`` ratio, agent i's OWN conditional ratio
    ``exp(log pi^i - log pi^i_old)`` (checked against a recomputation at every epoch), the per-agent advantage,
    and NO weight (no HAPPO factor); the value head is trained inside the same loss (the separate critic step
    is never called) and moves. Ablations: AR-MAPPO's update hands the clip ONE joint ratio per sample; HAPPO's
    hands it a factor weight."""
    seen: dict[str, list] = {}

    def run(algo: str, **kw) -> None:
        env = make("matrix/climbing", num_envs=64, seed=0)
        agent = make_agent(algo, env.spec, seed=0, ppo_epoch=3, **kw)
        buffer = Trainer(env, agent, TrainerConfig(total_steps=64, rollout_length=1, progress=False,
                                                   tensorboard=False), seed=0).collect()
        buffer.compute_returns(agent.config.gamma, agent.config.gae_lambda, agent.value_norm)
        batch = actor_updates.from_buffer(buffer, 2)
        original = actor_updates.ppo_clip_objective
        records = seen.setdefault(algo, [])

        def spy(ratio, adv, clip, weight=None, **k):  # noqa: ANN001, ANN202
            err = 0.0
            if algo == "mat":
                with torch.no_grad():
                    lp = agent.actors.log_prob(batch.obs, batch.actions, batch.avail, order=batch.order)
                    expected = torch.exp(lp - batch.old_log_probs)
                err = float((ratio.detach().sort(0).values - expected.sort(0).values).abs().max())
            records.append((tuple(ratio.shape), weight is not None, err, float((ratio.detach() - 1).abs().max())))
            return original(ratio, adv, clip, weight=weight, **k)

        monkeypatch.setattr(actor_updates, "ppo_clip_objective", spy)
        if algo == "mat":
            monkeypatch.setattr(agent, "_update_critic", lambda batch: pytest.fail("separate critic step for MAT"))
            head = [p.detach().clone() for p in agent.actors.encoder.value_head.parameters()]
            agent.update(buffer)
            moved = max(float((p.detach() - q).abs().max())
                        for p, q in zip(agent.actors.encoder.value_head.parameters(), head))
            assert moved > 1e-4
        else:
            actor_updates.run(agent, batch)
        monkeypatch.setattr(actor_updates, "ppo_clip_objective", original)

    run("mat", n_embd=16, lr=5e-3)
    records = seen["mat"]
    assert len(records) == 3 and all(shape == (64, 2) and not weighted for shape, weighted, _, _ in records)
    assert max(err for *_, err, _ in records) <= 1e-5
    assert records[0][3] <= 1e-6 and records[-1][3] > 1e-4  # exactly 1 at the first step, then it moves
    run("ar_mappo", hidden=(16, 16))
    assert all(shape == (64,) for shape, *_ in seen["ar_mappo"])  # joint ratio: fails the [m, n] check
    run("happo", hidden=(16, 16))
    assert all(weighted for _, weighted, *_ in seen["happo"])  # the factor: fails the no-weight check


def test_configuration_errors_name_the_setting() -> None:
    env = make("matrix/xor", n_agents=2, num_envs=4)
    with pytest.raises(ValueError, match="share_param=True"):
        make_agent("mat", env.spec, share_param=False)
    with pytest.raises(ValueError, match="actor_update='mat_clip'"):
        make_agent("mat", env.spec, actor_update="joint_clip")
    with pytest.raises(ValueError, match="agent_id=True"):
        make_agent("mat", env.spec, ar_order="random")
    with pytest.raises(ValueError, match="n_embd must be divisible by n_head"):
        MATConfig(n_embd=10, n_head=3)
    with pytest.raises(ValueError, match="n_block must be a positive integer"):
        MATConfig(n_block=0)
    with pytest.raises(TypeError, match="mat_condition must be a bool"):
        MATConfig(mat_condition=1)
    with pytest.raises(ValueError, match="use_rnn=False"):
        MATConfig(use_rnn=True)
    with pytest.raises(ValueError, match="ratio_aggregation='prod'"):
        MATConfig(ratio_aggregation="mean")
    with pytest.raises(ValueError, match="product policy"):
        MATDecConfig(mat_condition=False)
    agent = make_agent("mat", env.spec)
    with pytest.raises(TypeError, match="joint_policy"):
        policy_tables(agent, env)
    with pytest.raises(ValueError, match="actions="):
        agent.actors.entropy(env.observation_table())
    with pytest.raises(ValueError, match="permutation"):
        agent.actors.log_prob(env.observation_table(), torch.zeros(1, 2, dtype=torch.long),
                              order=torch.tensor([[0, 0]]))
    with pytest.raises(ValueError, match="obs must end with"):
        agent.actors.values(torch.zeros(1, 3, 1))


@pytest.mark.parametrize("algo", ["mat", "mat_dec"])
def test_cli_trains_on_matrix_bridge_and_continuous_envs_and_validates(algo: str, tmp_path: Path) -> None:
    """``seqmarl train`` runs MAT/MAT-Dec on a matrix game, ``bridge`` and the continuous a1·a2 game and writes a
    checkpoint; a run resumes from it; ``seqmarl validate`` reads the policy exactly (MAT: the exact joint table;
    MAT-Dec: per-agent tables with a Nash gap)."""
    small = ["algo.n_embd=16", "algo.lr=0.005", "algo.ppo_epoch=2", "num_envs=16", "progress=false",
             "tensorboard=false"]
    for env, steps in (("matrix/climbing", 64), ("bridge", 2 * 16 * 8), ("gaussian/a1a2", 64)):
        run_dir = tmp_path / env.replace("/", "_")
        extra = ["rollout_length=8"] if env == "bridge" else []
        assert main(["train", f"algo={algo}", f"env={env}", f"total_steps={steps}", f"run_dir={run_dir}",
                     *small, *extra]) == 0
        assert (run_dir / "checkpoints" / "last.pt").exists(), env
    run_dir = tmp_path / "matrix_climbing"
    assert main(["train", f"algo={algo}", "env=matrix/climbing", "total_steps=128", f"run_dir={run_dir}",
                 f"resume={run_dir}", *small]) == 0
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert rows[-1]["env_steps"] == 128
    assert main(["validate", f"algo={algo}", "env=matrix/xor", "total_steps=64", f"run_dir={tmp_path / 'v'}",
                 *small]) == 0
    report = json.loads((tmp_path / "v" / "validation.json").read_text())
    assert report["summary"]["J_star"] == 1.0 and len(report["returns"]) == 5
    assert math.isnan(report["nash_gaps"][-1]) == (algo == "mat")


# ------------------------------------------------------------------------------------------------ learning
@pytest.mark.slow
@pytest.mark.parametrize("n_agents", [2, 4])
def test_mat_with_shared_parameters_solves_xor(n_agents: int) -> None:
    """xor(n), ONE network, no agent id: MAT reaches exact J >= 0.99 J* (J* = 1, oracle). Ablations: the same
    network with the previous actions hidden (``mat_condition=False``) and MAT-Dec (a shared product policy) stay
    <= J*_share + 0.02 = 2/2^n + 0.02 after every update (ICLR22 Prop. 1) — both fail the J* assertion."""
    game = games.xor(n_agents)
    j_star, j_share = optima.joint_optimum(game).value, optima.shared_optimum(game).value
    assert j_star == 1.0 and math.isclose(j_share, 2 / 2**n_agents, rel_tol=1e-12)
    kw = dict(env_kwargs={"n_agents": n_agents}, n_updates=40, num_envs=128, seed=0)
    report = oracle_run("mat", "matrix/xor", algo_kwargs=LEARN, **kw)
    assert report.final_return >= 0.99 * j_star, report.summary()
    for algo, extra in (("mat", ABLATION), ("mat_dec", {})):
        ablation = oracle_run(algo, "matrix/xor", algo_kwargs=dict(LEARN, **extra), **kw)
        assert max(ablation.returns) <= j_share + 0.02, (algo, ablation.returns)
        assert ablation.final_return < 0.99 * j_star


@pytest.mark.slow
def test_permutation_game_keeps_a_high_entropy_optimum() -> None:
    """permutation(4): MAT with a random order per sample and agent id, lr 3e-3 (clip 0.05), 100 updates, reaches
    exact J >= 0.98 with exact joint entropy >= 0.8 log 4! (all 4! orders enumerated; it keeps most of the 24
    optimal joint actions). Ablation: the same network with the previous actions hidden is a product policy; J >=
    0.98 would force it to be nearly deterministic, and it fails the assertion (30 updates suffice to show it).
    Seed 0 only. Over seeds 0-9 (``python benchmarks/permutation_reliability.py --variants mat_random_lr3e-3_100``)
    this setting meets the target in 8 of 10 (misses: J 0.973 and 0.863, still learning at high entropy); the
    earlier lr 5e-3 / 60 updates 6 of 10 (benchmarks/results/sequence_table.json; misses were collapses after J
    had reached ~0.99), lr 3e-3 / 80 updates
    7 of 10, lr 2e-3 / 60 too slow (seed 0: J 0.967). Slow: about 30-60 s."""
    target = 0.8 * math.log(math.factorial(4))
    kw = dict(env_kwargs={"n_agents": 4}, num_envs=128, seed=0)
    model = dict(LEARN, ar_order="random", agent_id=True, lr=3e-3)
    report = oracle_run("mat", "matrix/permutation", algo_kwargs=model, n_updates=100, **kw)
    assert report.final_return >= 0.98 and report.entropies[-1] >= target, report.summary()
    ablation = oracle_run("mat", "matrix/permutation", algo_kwargs=dict(model, **ABLATION), n_updates=30, **kw)
    assert not (ablation.final_return >= 0.98 and ablation.entropies[-1] >= target), ablation.summary()


@pytest.mark.slow
@pytest.mark.parametrize("game", ["climbing", "penalty"])
def test_climbing_and_penalty_reach_the_optimum(game: str) -> None:
    """Climbing (J* = 11 at (a,a)) and penalty(-100) (J* = 10 at (a,a) or (c,c); (b,b) = 2 is the safe
    equilibrium): MAT ends within 0.05 |J*| of the exact optimum (``theory.optima``) in each of seeds 0-2 — the
    second agent's conditional best-responds to the first's action, so the first sees the values of the joint
    optimum. Ablation (previous actions hidden): a product policy, it misses the optimum in each of seeds 0-2 (it
    settles on a safe equilibrium). The 10-seed figures (and those with clip 0.2) are in
    benchmarks/sequence_table.py."""
    env = f"matrix/{game}"
    j_star = optima.joint_optimum(games.climbing() if game == "climbing" else games.penalty(-100.0)).value
    settings = LEARN
    kw = dict(n_updates=30, num_envs=128)
    for seed in range(3):
        report = oracle_run("mat", env, seed=seed, algo_kwargs=settings, **kw)
        assert abs(report.final_return - j_star) <= 0.05 * abs(j_star), (seed, report.summary())
        ablation = oracle_run("mat", env, seed=seed, algo_kwargs=dict(settings, **ABLATION), **kw)
        assert abs(ablation.final_return - j_star) > 0.05 * abs(j_star), (seed, ablation.summary())
