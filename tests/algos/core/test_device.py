"""The core pieces on CUDA give the CPU results (skipped where no CUDA device exists)."""

from __future__ import annotations

import pytest
import torch

from seqmarl.algos.core import (
    MultiAgentActors,
    PopArt,
    RolloutBuffer,
    ValueNorm,
    backtracking_line_search,
    compute_gae,
    conjugate_gradient,
    fisher_vector_product,
    flat_grad,
    huber_loss,
    normalise_advantages,
    ppo_clip_objective,
    value_loss,
)

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]

CUDA = torch.device("cuda")
D = torch.float64


def test_gae_and_value_norm_on_cuda():
    g = torch.Generator().manual_seed(0)
    r, v, nv = (torch.randn(6, 4, generator=g, dtype=D) for _ in range(3))
    term = torch.rand(6, 4, generator=g) < 0.3
    trunc = torch.rand(6, 4, generator=g) < 0.3
    cpu = compute_gae(r, v, nv, term, trunc, 0.9, 0.8)
    gpu = compute_gae(r.to(CUDA), v.to(CUDA), nv.to(CUDA), term.to(CUDA), trunc.to(CUDA), 0.9, 0.8)
    assert gpu[0].device.type == "cuda"
    assert torch.allclose(gpu[0].cpu(), cpu[0], atol=1e-12) and torch.allclose(gpu[1].cpu(), cpu[1], atol=1e-12)
    for mode in ("ema", "exact"):
        a, b = ValueNorm(mode=mode), ValueNorm(mode=mode).to(CUDA)
        a.update(r)
        b.update(r.to(CUDA))
        assert torch.allclose(b.normalize(v.to(CUDA)).cpu(), a.normalize(v), atol=1e-12)
    pa = PopArt(3, 1, device=CUDA, dtype=D)
    h = torch.randn(5, 3, device=CUDA, dtype=D)
    with torch.no_grad():
        before = pa.value(h)
        pa.update(torch.randn(20, 1, device=CUDA, dtype=D) * 10)
        assert torch.allclose(pa.value(h), before, atol=1e-9)


def test_actors_sample_on_cuda_with_cuda_generator():
    for share in (False, True):
        ma = MultiAgentActors(3, 4, [2, 3, 4], share=share, agent_id=share, hidden=(8,), device=CUDA)
        obs = torch.randn(500, 3, 4, device=CUDA)
        avail = torch.ones(500, 3, 4, dtype=torch.bool, device=CUDA)
        avail[:, 2, 0] = False
        gen = torch.Generator(device=CUDA).manual_seed(0)
        a, lp = ma.sample(obs, avail, generator=gen)
        assert a.device.type == "cuda" and lp.device.type == "cuda"
        assert int(a[:, 0].max()) <= 1 and int(a[:, 1].max()) <= 2 and int(a[:, 2].min()) >= 1
        assert torch.allclose(ma.log_prob(obs, a, avail), lp, atol=1e-5)
        cpu = ma.to("cpu")
        assert torch.allclose(cpu.log_prob(obs.cpu(), a.cpu(), avail.cpu()), lp.cpu(), atol=1e-5)


def test_losses_and_trust_region_on_cuda():
    e = torch.tensor([-12.0, 0.5, 3.0], device=CUDA)
    assert torch.allclose(huber_loss(e).cpu(), torch.tensor([70.0, 0.125, 4.5]))
    v = torch.tensor([1.0, 2.0, 1.0], device=CUDA)
    assert abs(float(value_loss(v, v * 0 + torch.tensor([0, 2.5, 0.5], device=CUDA),
                                torch.tensor([3.0, 1.0, 0.0], device=CUDA), 0.2)) - 1.755) < 1e-6
    r = torch.tensor([0.5, 1.5, 1.1, 0.7, 1.5], device=CUDA)
    adv = torch.tensor([1.0, 1, -2, -1, -1], device=CUDA)
    assert abs(float(ppo_clip_objective(r, adv, 0.2)) + 0.56) < 1e-6
    A = torch.tensor([[4.0, 1.0], [1.0, 3.0]], device=CUDA, dtype=D)
    x = conjugate_gradient(lambda p: A @ p, torch.tensor([1.0, 2.0], device=CUDA, dtype=D), n_iters=2)
    assert torch.allclose(x.cpu(), torch.tensor([1 / 11, 7 / 11], dtype=D), atol=1e-12)
    theta0 = torch.randn(3, 4, device=CUDA, dtype=D)
    theta = theta0.clone().requires_grad_(True)
    logp_old = torch.log_softmax(theta0, -1)
    fvp = fisher_vector_product(
        lambda: (logp_old.exp() * (logp_old - torch.log_softmax(theta, -1))).sum(-1).mean(), [theta])
    vec = torch.randn(12, device=CUDA, dtype=D)
    pi = logp_old.exp()
    H = torch.block_diag(*[(torch.diag(pi[s]) - torch.outer(pi[s], pi[s])) / 3 for s in range(3)])
    assert torch.allclose(fvp(vec), H @ vec, atol=1e-12)
    g = flat_grad((torch.softmax(theta, -1) * theta0).sum(), [theta])
    assert g.device.type == "cuda"
    res = backtracking_line_search(lambda z: -((z - 2) ** 2).sum(), torch.zeros(1, device=CUDA, dtype=D),
                                   torch.ones(1, device=CUDA, dtype=D), 4.0)
    assert res.accepted and res.x.device.type == "cuda"


def test_buffer_on_cuda():
    buf = RolloutBuffer(3, 2, 2, 3, 4, (), 3, CUDA)
    for _ in range(3):
        buf.insert(torch.randn(2, 2, 3, device=CUDA), torch.randn(2, 4, device=CUDA),
                   torch.zeros(2, 2, dtype=torch.long, device=CUDA), torch.zeros(2, 2, device=CUDA),
                   torch.ones(2, device=CUDA), torch.zeros(2, device=CUDA), torch.zeros(2, device=CUDA),
                   torch.zeros(2, dtype=torch.bool, device=CUDA), torch.zeros(2, dtype=torch.bool, device=CUDA))
    adv, _ = buf.compute_returns(0.5, 1.0)
    # rewards 1, values 0, no ends, bootstrap 0: A_t = sum_k 0.5^k over the rest of the rollout = [1.75, 1.5, 1]
    assert torch.allclose(adv[:, 0].cpu(), torch.tensor([1.75, 1.5, 1.0]))
    batches = list(buf.minibatches(2, torch.Generator(device=CUDA).manual_seed(0)))
    assert sorted(torch.cat([b["indices"] for b in batches]).tolist()) == list(range(6))
    assert batches[0]["obs"].device.type == "cuda"
    assert normalise_advantages(adv).device.type == "cuda"
