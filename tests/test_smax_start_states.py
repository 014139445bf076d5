"""``benchmarks/smax_start_states.py``: weak start states vs bad luck of a trained SMAX policy. The statistics on
hand-made outcome tables (exact), ``JaxBatchedEnv.reseed_steps`` on the real SMAX package (same start states,
other in-battle randomness), the replay loop and the command line."""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "smax_start_states.py"

try:
    import jax  # noqa: F401
    import jaxmarl  # noqa: F401

    HAVE, WHY = True, ""
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    HAVE, WHY = False, f"jaxmarl/jax not installed ({exc}); pip install seqmarl[smax]"
    print(f"SKIP smax start-state tests: {WHY}", file=sys.stderr)
needs_package = pytest.mark.skipif(not HAVE, reason=WHY)


def _module():
    spec = importlib.util.spec_from_file_location("smax_start_states_script", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


# --- statistics ---------------------------------------------------------------------------------------------
def test_summary_of_a_hand_made_table() -> None:
    # starts: always won, never won, won half the time
    s = _module().summarise(np.array([[1, 0, 1], [1, 0, 0]]))
    assert s["win_rate"] == pytest.approx(0.5)
    assert s["always_won"] == pytest.approx(1 / 3) and s["never_won"] == pytest.approx(1 / 3)
    assert s["histogram"] == [1, 0, 1, 0, 0, 0, 1]
    assert s["luck_share"] == 0.0  # every loss is on a start won at most half the time
    assert (s["starts"], s["replays"]) == (2 + 1, 2)


def test_luck_share_counts_losses_on_starts_won_at_least_80_percent() -> None:
    won = np.ones((5, 3))
    won[0, 0] = 0  # start 0: p = 0.8 exactly -> luck
    won[:3, 1] = 0  # start 1: p = 0.4 -> weak start (3 losses)
    s = _module().summarise(won)
    assert s["luck_share"] == pytest.approx(1 / 4)
    assert s["histogram"] == [0, 0, 1, 0, 1, 0, 1]  # 0.4 -> [.4,.6), 0.8 -> [.8,.95), 1 -> {1}
    assert s["always_won"] == pytest.approx(1 / 3) and s["never_won"] == 0.0


def test_the_histogram_separates_nearly_always_from_always() -> None:
    won = np.ones((20, 2))
    won[0, 0] = 0  # p = 0.95 -> [.95, 1)
    assert _module().summarise(won)["histogram"] == [0, 0, 0, 0, 0, 1, 1]


def test_no_losses_and_bad_tables() -> None:
    mod = _module()
    assert math.isnan(mod.summarise(np.ones((2, 2)))["luck_share"])
    for bad in (np.ones(3), np.ones((0, 2))):
        with pytest.raises(ValueError, match="won must be"):
            mod.summarise(bad)


def test_across_runs_on_hand_made_tables() -> None:
    mod = _module()
    a = np.array([[1, 0, 1, 1], [1, 0, 1, 1]])  # p = 1, 0, 1, 1
    b = np.array([[0, 1, 1, 1], [1, 1, 1, 1]])  # p = .5, 1, 1, 1
    s = mod.across_runs([a, b])
    assert s["best_of_runs"] == pytest.approx(1.0)
    assert s["mean_of_runs"] == pytest.approx((0.75 + 0.875) / 2)
    assert s["mean_pairwise_correlation"] == pytest.approx(np.corrcoef([1, 0, 1, 1], [.5, 1, 1, 1])[0, 1])
    assert mod.across_runs([a, a])["mean_pairwise_correlation"] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="at least 2"):
        mod.across_runs([a])


# --- reseed_steps on the real package -----------------------------------------------------------------------
def _play(env, seed: int, reseed: int | None, steps: int = 40) -> list[torch.Tensor]:
    """States along a fixed action schedule: every agent attacks enemy 0 when it can, else moves east."""
    step = env.reset(seed=seed)
    if reseed is not None:
        env.reseed_steps(reseed)
    states = [step.state.clone()]
    for _ in range(steps):
        avail = step.avail_actions
        attack = avail[..., 5 if avail.shape[-1] > 5 else 0]  # SMAX: 5 move actions, then one attack per enemy
        actions = torch.where(attack, torch.full_like(attack, 5, dtype=torch.int64),
                              torch.full_like(attack, 1, dtype=torch.int64))
        actions = torch.where(avail.gather(-1, actions.unsqueeze(-1)).squeeze(-1), actions,
                              avail.float().argmax(-1))
        step = env.step(actions)
        states.append(step.state.clone())
    return states


@needs_package
def test_reseed_keeps_the_start_states_and_changes_only_the_battle_randomness() -> None:
    from seqmarl import envs

    env = envs.make("smax/3m", num_envs=3, seed=0, episode_limit=60)
    plain = _play(env, 5, None)
    same = _play(env, 5, 11)
    again = _play(env, 5, 11)
    other = _play(env, 5, 12)
    assert torch.equal(plain[0], same[0]) and torch.equal(plain[0], other[0])  # the same start states
    assert all(torch.equal(a, b) for a, b in zip(same, again))  # the same key, the same battle
    differs = lambda x, y: any(not torch.equal(a, b) for a, b in zip(x, y))  # noqa: E731
    assert differs(plain, same) and differs(same, other)  # another key: cooldown jitter, enemy choices


@needs_package
def test_reseed_refuses_bad_use() -> None:
    from seqmarl import envs

    env = envs.make("smax/3m", num_envs=3, seed=0, episode_limit=60)
    with pytest.raises(RuntimeError, match="reset"):
        env.reseed_steps(1)
    step = env.reset(seed=1)
    with pytest.raises(ValueError, match="seed must be >= 0"):
        env.reseed_steps(-1)
    with pytest.raises(TypeError, match="seed must be an integer"):
        env.reseed_steps(True)
    env.step_async(step.avail_actions.float().argmax(-1))
    with pytest.raises(RuntimeError, match="step_async"):
        env.reseed_steps(1)
    env.step_wait()


@needs_package
def test_replays_use_a_new_key_each_and_play_to_the_end(monkeypatch) -> None:
    from seqmarl import envs
    from seqmarl.algos import make_agent

    mod = _module()
    env = envs.make("smax/3m", num_envs=3, seed=0, episode_limit=60)
    agent = make_agent("mappo", env.spec, seed=0, hidden=(8,))
    calls: list[int] = []
    real = env.reseed_steps
    monkeypatch.setattr(env, "reseed_steps", lambda s: (calls.append(s), real(s)))
    won = mod.replay_wins(agent, env, seed=4, replays=3)
    assert calls == [4001, 4002]  # replay 0 keeps the reset's key
    assert won.shape == (3, 3) and set(np.unique(won)) <= {0.0, 1.0}
    monkeypatch.setattr(env, "reseed_steps", real)
    assert np.array_equal(mod.replay_wins(agent, env, seed=4, replays=3), won)  # deterministic given the keys
    for bad in (0, -1, True, 2.0):
        with pytest.raises(ValueError, match="replays must be a positive integer"):
            mod.replay_wins(agent, env, seed=4, replays=bad)


def test_the_command_line_refuses_bad_input(tmp_path: Path, capsys) -> None:
    mod = _module()
    for argv, msg in (([str(tmp_path)], "has no config.yaml"), ([str(tmp_path), "--starts", "0"], "--starts must be"),
                      ([str(tmp_path), "--replays", "0"], "--replays must be"),
                      ([str(tmp_path), "--seed", "-1"], "--seed must be")):
        with pytest.raises(SystemExit) as exc:
            mod.main(argv)
        assert exc.value.code == 2 and msg in capsys.readouterr().err
