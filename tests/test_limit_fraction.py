"""The arithmetic of ``benchmarks/limit_fraction.py`` (floors, limit, fraction, FLOP counting) and the statistics and
log parsing of ``benchmarks/vs_harl.py``, against exact values (fractions, closed forms)."""

from __future__ import annotations

import importlib.util
import math
import sys
from fractions import Fraction
from pathlib import Path

import pytest
import torch

BENCH = Path(__file__).resolve().parent.parent / "benchmarks"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"_bench_{name}", BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    sys.modules[spec.name] = module  # dataclasses look their module up while the class body runs
    spec.loader.exec_module(module)
    return module


lf = _load("limit_fraction")
vs = _load("vs_harl")


# ----------------------------------------------------------------------------------------------- limit_fraction
def test_update_seconds_per_step_is_flops_over_throughput_times_steps():
    assert lf.update_seconds_per_step(2**33, 2**5, 2**30) == 0.25  # 2^33 / (2^30 * 2^5), exact in binary
    f, s, g = 23_830_000_000, 4000, 22_300_000_000
    exact = Fraction(f) / (Fraction(g) * s)
    assert lf.update_seconds_per_step(f, s, g) == pytest.approx(float(exact), rel=1e-15)


def test_limit_is_one_over_the_larger_floor():
    assert lf.limit_steps_per_second(1 / 1024, 1 / 256) == 256.0
    assert lf.limit_steps_per_second(1 / 256, 1 / 1024) == 256.0  # symmetric: whichever floor is larger binds
    assert lf.limit_steps_per_second(0.5, 0.5) == 2.0


def test_serial_limit_is_one_over_the_sum():
    assert lf.serial_limit_steps_per_second(0.25, 0.5) == pytest.approx(float(1 / (Fraction(1, 4) + Fraction(1, 2))),
                                                                         rel=1e-15)


def test_fraction_is_measured_over_limit():
    assert lf.fraction_of_limit(128.0, 256.0) == 0.5
    assert lf.fraction_of_limit(300.0, 200.0) == 1.5


@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan"), float("inf")])
def test_arithmetic_refuses_non_positive_inputs_by_name(bad):
    with pytest.raises(ValueError, match="flops_per_second"):
        lf.update_seconds_per_step(1.0, 1, bad)
    with pytest.raises(ValueError, match="steps_per_update"):
        lf.update_seconds_per_step(1.0, bad, 1.0)
    with pytest.raises(ValueError, match="env_seconds_per_step"):
        lf.limit_steps_per_second(bad, 1.0)
    with pytest.raises(ValueError, match="update_seconds_per_step"):
        lf.limit_steps_per_second(1.0, bad)
    with pytest.raises(ValueError, match="measured_steps_per_second"):
        lf.fraction_of_limit(bad, 1.0)


def test_mlp_forward_closed_form_by_hand():
    # 2 * 11 * (7*13 + 13*5 + 5*3) = 22 * 171
    assert lf.mlp_forward_flops(11, [7, 13, 5, 3]) == 3762
    with pytest.raises(ValueError, match="batch"):
        lf.mlp_forward_flops(0, [3, 4])


def _mlp(sizes):
    torch.manual_seed(0)
    layers = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        layers += [torch.nn.Linear(a, b), torch.nn.ReLU()]
    return torch.nn.Sequential(*layers[:-1])


def test_flop_counter_on_a_known_mlp_forward_equals_the_closed_form():
    sizes, batch = [7, 13, 5, 3], 11
    net = _mlp(sizes)
    flops, out = lf.count_flops(lambda: net(torch.randn(batch, sizes[0])))
    assert out.shape == (batch, 3)
    assert flops == lf.mlp_forward_flops(batch, sizes) == 3762


def test_flop_counter_counts_the_backward_of_an_update():
    """forward + backward of a loss: each layer's weight gradient costs its forward again, each layer's input gradient
    too except the first (the input needs no gradient): ``3 F - 2 B in_0 out_0``."""
    sizes, batch = [7, 13, 5, 3], 11
    net = _mlp(sizes)
    x = torch.randn(batch, sizes[0])
    flops, _ = lf.count_flops(lambda: net(x).square().sum().backward())
    assert flops == 3 * lf.mlp_forward_flops(batch, sizes) - 2 * batch * sizes[0] * sizes[1]


def test_linear_shapes_lists_every_layer_at_the_given_rows():
    net = _mlp([7, 13, 5, 3])
    gru = torch.nn.GRU(4, 6)
    assert lf.linear_shapes([net, gru], 100) == sorted([(100, 7, 13), (100, 13, 5), (100, 5, 3), (100, 4, 18),
                                                        (100, 6, 18)])


def test_recorded_products_are_the_counted_ones_with_their_real_rows():
    """Forward + backward of an MLP: the recorded shapes are the forward ``[B, in] @ [in, out]`` products and
    their backward products (input and weight gradients), and their FLOPs sum to FlopCounterMode's count."""
    sizes, batch = [7, 13, 5, 3], 11
    net = _mlp(sizes)
    x = torch.randn(batch, sizes[0])
    shapes, _ = lf.record_gemm_shapes(lambda: net(x).square().sum().backward())
    total = sum(c * 2 * b * m * k * n for (b, m, k, n), c in shapes.items())
    flops, _ = lf.count_flops(lambda: net(x).square().sum().backward())
    assert total == flops
    for a, b in zip(sizes[:-1], sizes[1:]):  # every forward product with the batch's rows
        assert shapes.get((1, batch, a, b), 0) >= 1
    q = torch.randn(4, 3, 8)
    shapes, out = lf.record_gemm_shapes(lambda: torch.bmm(q, q.transpose(1, 2)))
    assert shapes == {(4, 3, 8, 3): 1} and out.shape == (4, 3, 3)


def test_executed_gemm_seconds_weights_each_shape_by_its_count():
    shapes = {(1, 64, 32, 16): 3, (2, 8, 4, 8): 5}
    seconds, flops = lf.executed_gemm_seconds(shapes, min_seconds=0.02)
    assert flops == 3 * 2 * 64 * 32 * 16 + 5 * 2 * 2 * 8 * 4 * 8
    assert math.isfinite(seconds) and seconds > 0
    assert lf.executed_gemm_seconds({}, min_seconds=0.01) == (0.0, 0.0)


@pytest.mark.parametrize("shapes, needle", [({(1, 0, 2, 2): 1}, "shapes"), ({(1, 2, 2): 1}, "shapes"),
                                            ({(1, 2, 2, 2): 0}, "shapes"), ({(1, 2.0, 2, 2): 1}, "shapes")])
def test_executed_gemm_seconds_rejects_malformed_shapes(shapes, needle):
    with pytest.raises(ValueError, match=needle):
        lf.executed_gemm_seconds(shapes, min_seconds=0.01)
    with pytest.raises(ValueError, match="min_seconds"):
        lf.executed_gemm_seconds({(1, 2, 2, 2): 1}, min_seconds=0)
    with pytest.raises(TypeError, match="fn"):
        lf.record_gemm_shapes(42)


def test_gemm_throughput_is_positive_and_finite():
    g = lf.gemm_flops_per_second([(64, 32, 16)], min_seconds=0.01)
    assert math.isfinite(g) and g > 0


def test_limit_fraction_cli_refuses_bad_arguments():
    for argv in (["--cases", "nope:env"], ["--threads", "0"], ["--workers", "-1"]):
        with pytest.raises(SystemExit) as info:
            lf.parse_args(argv)
        assert info.value.code == 2


# ----------------------------------------------------------------------------------------------- vs_harl
def test_mean_ci_is_the_student_t_interval():
    xs = [1.0, 2.0, 6.0]  # mean 3, sample variance ((4 + 1 + 9) / 2) = 7
    out = vs.mean_ci(xs)
    assert out["mean"] == 3.0 and out["n"] == 3
    assert out["ci95"] == pytest.approx(4.303 * math.sqrt(7 / 3), rel=1e-15)
    assert vs.mean_ci([5.0]) == {"mean": 5.0, "ci95": None, "n": 1}
    assert vs.mean_ci([]) == {"mean": None, "ci95": None, "n": 0}


def test_t_quantiles_are_the_tabulated_ones():
    assert vs.t_quantile_975(1) == 12.706 and vs.t_quantile_975(2) == 4.303 and vs.t_quantile_975(4) == 2.776
    assert vs.t_quantile_975(12) == 2.228  # conservative: the next smaller tabulated df
    assert vs.t_quantile_975(100) == 1.96
    with pytest.raises(ValueError, match="df"):
        vs.t_quantile_975(0)


_HEAD = "Env mamujoco Task HalfCheetah-v2-6x1 Algo happo Exp vs_harl updates"
HARL_LOG = f"""start running
{_HEAD} 1/2 episodes, total num timesteps 4000/8000, FPS 575.
Average step reward is -0.25.
{_HEAD} 2/2 episodes, total num timesteps 8000/8000, FPS 485.
Average step reward is -0.5.
Some episodes done, average episode reward is -112.09975600671324.

Evaluation average episode reward is -104.85.
"""


def test_parse_harl_log_reads_fps_train_and_eval_returns():
    out = vs.parse_harl_log(HARL_LOG)
    assert out == {"fps": [(4000, 575), (8000, 485)], "train_returns": [-112.09975600671324], "eval_returns": [-104.85]}


def test_parse_seqmarl_metrics_sums_iteration_seconds(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"env_steps": 4000, "sps": 1000.0, "collect_fraction": 0.5, "episode_return": 1.0}\n'
                    '{"env_steps": 8000, "sps": 4000.0, "collect_fraction": 0.25, "episode_return": 2.0, '
                    '"eval_return_greedy": 3.0, "eval_return_stochastic": 2.5}\n')
    out = vs.parse_seqmarl_metrics(path)
    # 4 s + 1 s of iterations; collection 2 s + 0.25 s
    assert out["train_seconds"] == 5.0 and out["train_sps"] == 1600.0 and out["collect_share"] == 0.45
    assert out["train_return"] == 2.0 and out["eval_return"] == 3.0


def test_summarise_ratio_and_return_verdict():
    harl = [{"train_sps": 100.0, "wall_sps": 50.0, "steps_per_cpu_s": 40.0, "train_return": 0.0, "eval_return": e}
            for e in (1.0, 2.0, 6.0)]
    ours = [{"train_sps": 500.0, "wall_sps": 100.0, "steps_per_cpu_s": 120.0, "train_return": 0.0, "eval_return": e}
            for e in (0.0, 1.0, 2.0)]
    s = vs.summarise(harl, ours)
    assert s["ratio"] == 5.0 and s["wall_ratio"] == 2.0 and s["cpu_ratio"] == 3.0
    assert s["return_not_worse"] is True  # 1.0 >= 3 - 4.303 * sqrt(7/3) = -3.57
    worse = [dict(r, eval_return=r["eval_return"] - 10) for r in ours]
    assert vs.summarise(harl, worse)["return_not_worse"] is False
    assert vs.summarise(harl[:1], ours[:1])["return_not_worse"] is None  # fewer than 3 seeds: no verdict
    assert vs.summarise(harl[:2], worse[:2])["return_not_worse"] is None


def test_vs_harl_cli_refuses_bad_arguments(tmp_path):
    for argv in (["--harl", str(tmp_path)], ["--harl", str(tmp_path), "--algos", "ppo"],
                 ["--harl", str(tmp_path), "--harl-threads", "0"], ["--harl", str(tmp_path), "--steps", "10"]):
        with pytest.raises(SystemExit) as info:
            vs.parse_args(argv)
        assert info.value.code == 2


def test_run_timed_counts_the_cpu_of_child_processes():
    """A child that burns ~0.3 s of CPU in a grandchild: the CPU seconds include the grandchild's."""
    code = ("import subprocess, sys; subprocess.run([sys.executable, '-c', "
            "'import time\\nt=time.process_time()\\nwhile time.process_time()-t<0.3: pass'])")
    proc, wall, cpu = vs.run_timed([sys.executable, "-c", code])
    assert proc.returncode == 0, proc.stderr
    assert cpu >= 0.3 and wall > 0


def test_table_names_the_single_agent_floor_and_the_package_step_rate():
    lf = _load("limit_fraction")
    row = dict(algo="happo", case="happo:halfcheetah6x1", num_envs=20, rollout_length=200, workers=0,
               measured_sps=4000.0, raw_env_sps=9000.0, update_seconds_per_step_at_gemm=1 / 12000, update_flops=18e9,
               gemm_mode="shapes", gemm_gflops_shapes=55.0, limit_sps=9000.0, fraction=4 / 9, serial_fraction=0.7,
               measured_collect_seconds_per_step=1e-4, measured_update_seconds_per_step=1.2e-4)
    assert "(single-agent step" not in lf.table([row])
    row.update(raw_env_floor="single-agent step", raw_env_sps_package_step=6160.0)
    line = lf.table([row]).splitlines()[-1]
    assert "| 9,000 (single-agent step; package step 6,160) |" in line and "| 44% |" in line
    row.update(raw_env_floor="unrolled cycle step")
    assert "| 9,000 (unrolled cycle step; package step 6,160) |" in lf.table([row]).splitlines()[-1]
    row.update(raw_env_floor="package step")
    assert "package step 6,160" not in lf.table([row])


def test_jaxmarl_reference_cli_refuses_bad_arguments(tmp_path):
    ref = _load("jaxmarl_reference")
    with pytest.raises(SystemExit) as exc:
        ref.parse_args(["--jaxmarl", str(tmp_path)])  # not a JaxMARL checkout
    assert exc.value.code == 2
    baseline = tmp_path / "baselines" / "MAPPO"
    baseline.mkdir(parents=True)
    (baseline / "mappo_rnn_smax.py").write_text("")
    for bad in (["--seeds", "a,b"], ["--steps", "0"], ["--seeds", ","]):
        with pytest.raises(SystemExit) as exc:
            ref.parse_args(["--jaxmarl", str(tmp_path), *bad])
        assert exc.value.code == 2
    args = ref.parse_args(["--jaxmarl", str(tmp_path), "--seeds", "0,2"])
    assert args.seed_list == [0, 2] and args.map == "3m"
