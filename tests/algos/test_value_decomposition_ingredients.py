"""Each ingredient of the value-decomposition update, checked on hand-made episode batches against a direct
computation from the networks (so deleting or flipping the ingredient turns a test red): double-Q selection,
available-action masks in the target max, no bootstrap after termination, padding out of the loss, the multi-step
target the config asks for, IQL's per-agent targets, the target-network cadence, the epsilon schedule, the mixer
actually used, and the CLI/resume/bridge plumbing."""

from __future__ import annotations

import torch
import pytest

from seqmarl.algos import Trainer, TrainerConfig, make_agent
from seqmarl.algos.core.replay import EpisodeBatch
from seqmarl.algos.core.td_targets import n_step_targets, td_lambda_targets
from seqmarl.envs import AgentSpace, EnvSpec, make

N, A, D, S, T = 2, 3, 4, 5, 3
SPEC = EnvSpec(n_agents=N, obs_dim=D, state_dim=S, agent_spaces=(AgentSpace.discrete(A),) * N, episode_limit=T)


def _batch(seed: int = 0, lengths=(3, 2), terminated_last=(True, False)) -> EpisodeBatch:
    g = torch.Generator().manual_seed(seed)
    B = len(lengths)
    mask = torch.zeros(B, T, dtype=torch.bool)
    term = torch.zeros(B, T, dtype=torch.bool)
    for b, (L, ends) in enumerate(zip(lengths, terminated_last)):
        mask[b, :L] = True
        term[b, L - 1] = ends
    return EpisodeBatch(obs=torch.randn(B, T + 1, N, D, generator=g), state=torch.randn(B, T + 1, S, generator=g),
                        avail=torch.ones(B, T + 1, N, A, dtype=torch.bool),
                        actions=torch.randint(0, A, (B, T, N), generator=g),
                        reward=torch.randn(B, T, generator=g), terminated=term, mask=mask)


def _agent(algo: str = "vdn", **kw):
    agent = make_agent(algo, SPEC, seed=0, use_rnn=kw.pop("use_rnn", True), **kw)
    with torch.no_grad():  # make the target network clearly different from the online one
        for p in agent.target.parameters():
            p.add_(torch.randn(p.shape, generator=torch.Generator().manual_seed(7)) * 0.5)
    return agent


def _vdn_next_values(agent, batch, chooser: str) -> torch.Tensor:
    q = agent.q_net.unroll(batch.obs, batch.actions).detach()
    tq = agent.target["q_net"].unroll(batch.obs, batch.actions)
    pick = (q if chooser == "online" else tq)[:, 1:].masked_fill(~batch.avail[:, 1:], float("-inf")).argmax(-1)
    return tq[:, 1:].gather(-1, pick.unsqueeze(-1)).squeeze(-1).sum(-1)


@pytest.mark.parametrize("double_q, chooser", [(True, "online"), (False, "target")])
def test_double_q_chooses_with_the_online_net_and_evaluates_with_the_target(double_q, chooser):
    agent, batch = _agent(double_q=double_q), _batch()
    got = agent.terms(batch)["next_values"]
    torch.testing.assert_close(got, _vdn_next_values(agent, batch, chooser))
    other = _vdn_next_values(agent, batch, "target" if chooser == "online" else "online")
    assert (got - other).abs().max() > 1e-3  # the two rules differ on this batch


def test_target_max_skips_unavailable_actions():
    agent, batch = _agent(), _batch()
    q = agent.q_net.unroll(batch.obs, batch.actions).detach()
    best = q.argmax(-1)  # unrestricted greedy actions
    batch.avail.scatter_(-1, best.unsqueeze(-1), False)  # make every one of them unavailable
    got = agent.terms(batch)["next_values"]
    torch.testing.assert_close(got, _vdn_next_values(agent, batch, "online"))
    assert (got - _vdn_next_values(agent, _batch(), "online")).abs().max() > 1e-3


def test_one_step_target_and_no_bootstrap_after_termination():
    agent, batch = _agent(gamma=0.9), _batch()
    t = agent.terms(batch)
    live = (~batch.terminated).float()
    torch.testing.assert_close(t["targets"], (batch.reward + 0.9 * live * t["next_values"]) * batch.mask)
    assert t["targets"][0, 2] == batch.reward[0, 2]  # episode 0 terminated at its last step


@pytest.mark.parametrize("kw, fn", [({"td_lambda": 0.6}, "lambda"), ({"n_step": 3}, "nstep")])
def test_the_configured_multi_step_target_is_used(kw, fn):
    agent, batch = _agent(gamma=0.9, **kw), _batch()
    t = agent.terms(batch)
    args = (batch.reward, batch.terminated, batch.mask, t["next_values"], 0.9)
    want = td_lambda_targets(*args, 0.6) if fn == "lambda" else n_step_targets(*args, 3)
    torch.testing.assert_close(t["targets"], want)
    assert (want - n_step_targets(*args, 1)).abs().max() > 1e-3


def test_padded_steps_are_outside_the_loss():
    agent = _agent()
    batch = _batch()
    loss, _ = agent.loss(batch)
    batch.reward[1, 2] = 1e6  # episode 1 has 2 valid steps: step 2 is padding
    batch.actions[1, 2] = (batch.actions[1, 2] + 1) % A
    again, _ = agent.loss(batch)
    assert torch.equal(loss, again)


def test_iql_learns_one_target_per_agent():
    agent, batch = _agent("iql"), _batch()
    t = agent.terms(batch)
    q = agent.q_net.unroll(batch.obs, batch.actions)
    assert t["q_taken"].shape == (2, T, N)
    torch.testing.assert_close(t["q_taken"], q[:, :-1].gather(-1, batch.actions.unsqueeze(-1)).squeeze(-1))
    per_agent = _vdn_next_values(agent, batch, "online")  # the sum; IQL keeps the agents apart
    assert t["next_values"].shape == (2, T, N)
    torch.testing.assert_close(t["next_values"].sum(-1), per_agent)


def test_qmix_target_goes_through_the_target_mixer_with_the_next_state():
    agent, batch = _agent("qmix"), _batch()
    t = agent.terms(batch)
    q = agent.q_net.unroll(batch.obs, batch.actions).detach()
    tq = agent.target["q_net"].unroll(batch.obs, batch.actions)
    pick = q[:, 1:].argmax(-1)
    chosen = tq[:, 1:].gather(-1, pick.unsqueeze(-1)).squeeze(-1)
    torch.testing.assert_close(t["next_values"], agent.target["mixer"](chosen, batch.state[:, 1:]))
    wrong_state = agent.target["mixer"](chosen, batch.state[:, :-1])
    assert (t["next_values"] - wrong_state).abs().max() > 1e-4


def test_hard_targets_follow_the_episode_count_and_soft_targets_average():
    env = make("matrix/climbing", num_envs=8)
    agent = make_agent("vdn", env.spec, batch_size=8, buffer_size=64, target_update_interval=16, use_rnn=False)
    trainer = Trainer(env, agent, TrainerConfig(total_steps=8, rollout_length=1, progress=False, tensorboard=False))
    differs = lambda: any(not torch.equal(a, b) for a, b in zip(agent.modules.parameters(), agent.target.parameters()))  # noqa: E731
    trainer.train_iteration()  # 8 episodes, one update: no sync yet (8 < 16)
    assert differs()
    trainer.train_iteration()  # 16 episodes: synced after this update
    assert not differs()
    soft = make_agent("vdn", env.spec, batch_size=8, buffer_size=64, target_update="soft", tau=0.25, use_rnn=False)
    before = [p.detach().clone() for p in soft.target.parameters()]
    Trainer(env, soft, TrainerConfig(total_steps=8, rollout_length=1, progress=False, tensorboard=False)).train()
    for b, t, p in zip(before, soft.target.parameters(), soft.modules.parameters()):
        torch.testing.assert_close(t, b + 0.25 * (p - b))


def test_epsilon_follows_the_schedule_over_collected_steps():
    env = make("matrix/climbing", num_envs=10)
    agent = make_agent("qmix", env.spec, epsilon_start=1.0, epsilon_finish=0.0, epsilon_anneal_steps=100,
                       batch_size=10, buffer_size=100, use_rnn=False)
    trainer = Trainer(env, agent, TrainerConfig(total_steps=50, rollout_length=1, progress=False, tensorboard=False))
    rows = trainer.train()
    assert [r["epsilon"] for r in rows] == pytest.approx([1.0 - 0.1 * k for k in range(1, 6)])


def test_bridge_recurrent_qmix_trains_and_resumes_exactly(tmp_path):
    """The GRU learner on the bridge (episodes of different lengths, truncation); a resumed run's rows and weights
    equal the uninterrupted run's (replay, partial episodes, acting memory, RNG all restored)."""
    kw = dict(batch_size=4, buffer_size=64, epsilon_anneal_steps=200)
    cfg = dict(total_steps=8 * 30 * 4, rollout_length=30, progress=False, tensorboard=False, checkpoint_interval=2)

    def run(run_dir, total):
        env = make("bridge", num_envs=8, seed=3)
        agent = make_agent("qmix", env.spec, seed=3, **kw)
        run_dir.mkdir(exist_ok=True)
        tr = Trainer(env, agent, TrainerConfig(**{**cfg, "total_steps": total}), run_dir=run_dir, seed=3)
        return env, agent, tr

    _, full_agent, full = run(tmp_path / "a", cfg["total_steps"])
    rows = full.train()
    assert all(r.get("loss") is not None and torch.isfinite(torch.tensor(r["loss"])) for r in rows[1:])
    _, _, first = run(tmp_path / "b", cfg["total_steps"] // 2)
    first.train()
    _, resumed_agent, resumed = run(tmp_path / "b", cfg["total_steps"])
    resumed.load_checkpoint(tmp_path / "b")
    resumed.adopt_logs()
    tail = resumed.train()
    assert [r["loss"] for r in tail[-2:]] == [r["loss"] for r in rows[-2:]]
    for a, b in zip(full_agent.modules.parameters(), resumed_agent.modules.parameters()):
        assert torch.equal(a, b)


def test_cli_trains_a_value_decomposition_learner(tmp_path, capsys):
    from seqmarl.cli import main

    rc = main(["train", "algo=qmix", "env=matrix/climbing", "total_steps=256", "num_envs=32", "progress=false",
               f"run_dir={tmp_path / 'q'}", "algo.batch_size=32", "algo.use_rnn=false", "algo.mixer=qmix"])
    assert rc == 0
    assert (tmp_path / "q" / "checkpoints" / "last.pt").is_file()
    rc = main(["train", "algo=qmix", "env=matrix/climbing", f"run_dir={tmp_path / 'r'}", "algo.mixer=nope"])
    assert rc == 2
    captured = capsys.readouterr()
    assert "mixer must be None (IQL), 'vdn', 'qmix' or 'qplex', got 'nope'" in captured.out + captured.err


def test_cli_validate_reports_the_value_oracle(tmp_path, capsys):
    """``seqmarl validate`` on a one-shot game: the exact J of the greedy policy after every update, and the learned
    Q_tot next to the oracle fit of the class (VDN here: the weighted least-squares fit)."""
    import json

    from seqmarl.cli import main

    rc = main(["validate", "algo=vdn", "env=matrix/climbing", "total_steps=640", "num_envs=64", "progress=false",
               f"run_dir={tmp_path / 'v'}", "algo.batch_size=64", "algo.use_rnn=false", "algo.optimizer=adam",
               "algo.lr=0.01"])
    assert rc == 0
    data = json.loads((tmp_path / "v" / "validation.json").read_text())
    fit = data["value_fit"]
    assert fit["mixer"] == "vdn" and fit["oracle_residual"] <= fit["learned_residual"] + 1e-6
    assert data["summary"]["igm_consistent"] is True  # VDN is IGM by construction
    assert "Q_tot_residual" in capsys.readouterr().out
    rc = main(["validate", "algo=qmix", "env=matrix/climbing", f"run_dir={tmp_path / 'w'}"])
    assert rc == 2  # the default GRU agent acts on its history: no stationary table
    assert "algo.use_rnn=false" in capsys.readouterr().out


def test_a_nan_loss_stops_the_run_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    """The trainer's divergence guard covers the off-policy agent too (its networks(), its metrics): a NaN
    raises DivergenceError and checkpoints/last.pt still holds the last good update."""
    from seqmarl.algos.trainer import DivergenceError, read_checkpoint

    env = make("matrix/climbing", num_envs=8)
    agent = make_agent("qmix", env.spec, batch_size=8, buffer_size=64, use_rnn=False)
    trainer = Trainer(env, agent, TrainerConfig(total_steps=8 * 6, rollout_length=1, progress=False,
                                                tensorboard=False, checkpoint_interval=2), run_dir=tmp_path)
    real_update = agent.update
    calls = {"n": 0}

    def update(buffer=None):
        calls["n"] += 1
        out = real_update(buffer)
        if calls["n"] == 3:
            with torch.no_grad():
                next(agent.q_net.parameters()).fill_(float("nan"))
        return out

    monkeypatch.setattr(agent, "update", update)
    with pytest.raises(DivergenceError, match="non-finite q_net parameters"):
        trainer.train()
    saved = read_checkpoint(tmp_path)
    assert saved["iteration"] == 2
    assert all(torch.isfinite(v).all() for v in saved["agent"]["modules"].values() if v.is_floating_point())
