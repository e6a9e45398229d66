#!/usr/bin/env python3
"""The reference DCGAN-MNIST step of `gantry bench`, written in PyTorch, for side-by-side timing.

Same models, losses, optimizer and timing rule as packages/engine/src/bench.ts (referenceGenerator,
referenceDiscriminator): one discriminator step + one generator step at batch B, Adam(2e-4, beta1 0.5), WGAN-GP with
lambda 10 on per-sample interpolates (create_graph=True), real images a fixed random batch. Prints one JSON line per
loss with the fields gantry bench reads (backend, batch, loss, ms_per_step, ms_best, cpu_ms_per_step, steps, detail).

    python3 scripts/bench/dcgan_torch.py --threads 2 --batch 64 --steps 5 --warmup 2
"""
import argparse
import json
import statistics
import time

import torch
from torch import nn
import torch.nn.functional as F

LATENT = 100


def generator() -> nn.Module:
    return nn.Sequential(
        nn.Linear(LATENT, 7 * 7 * 128),
        nn.Unflatten(1, (128, 7, 7)),
        nn.ConvTranspose2d(128, 64, 4, 2, 1),  # 'same' for k4 s2: 7 -> 14
        nn.BatchNorm2d(64, eps=1e-3, momentum=0.01),  # tfjs-layers defaults (momentum 0.99 there)
        nn.ReLU(),
        nn.ConvTranspose2d(64, 1, 4, 2, 1),  # 14 -> 28
        nn.Tanh(),
    )


def discriminator() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(1, 64, 4, 2, 1),  # 28 -> 14
        nn.LeakyReLU(0.2),
        nn.Conv2d(64, 128, 4, 2, 1),  # 14 -> 7
        nn.LeakyReLU(0.2),
        nn.Flatten(),
        nn.Linear(7 * 7 * 128, 1),
    )


def build_step(loss: str, batch: int, channels_last: bool):
    torch.manual_seed(0)
    G, D = generator(), discriminator()
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    G, D = G.to(memory_format=fmt), D.to(memory_format=fmt)
    opt_d = torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_g = torch.optim.Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999))
    real = (torch.rand(batch, 1, 28, 28) * 2 - 1).contiguous(memory_format=fmt)

    def gradient_penalty(fake):
        eps = torch.rand(batch, 1, 1, 1)
        mixed = (eps * real + (1 - eps) * fake).requires_grad_(True)
        (grads,) = torch.autograd.grad(D(mixed).sum(), mixed, create_graph=True)
        norms = torch.sqrt(grads.square().sum(dim=(1, 2, 3)) + 1e-12)
        return 10 * (norms - 1).square().mean()

    def step():
        with torch.no_grad():
            fake = G(torch.randn(batch, LATENT))
        opt_d.zero_grad(set_to_none=True)
        real_out, fake_out = D(real), D(fake)
        if loss == 'wgan-gp':
            ld = fake_out.mean() - real_out.mean() + gradient_penalty(fake)
        else:
            ld = F.softplus(-real_out).mean() + F.softplus(fake_out).mean()
        ld.backward()
        opt_d.step()
        opt_g.zero_grad(set_to_none=True)
        out = D(G(torch.randn(batch, LATENT)))
        lg = -out.mean() if loss == 'wgan-gp' else F.softplus(-out).mean()
        lg.backward()
        opt_g.step()
        return ld.item(), lg.item()

    return step


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--batch', type=int, default=64)
    p.add_argument('--steps', type=int, default=5)
    p.add_argument('--warmup', type=int, default=2)
    p.add_argument('--threads', type=int, default=2)
    p.add_argument('--loss', choices=['non-saturating', 'wgan-gp'], action='append')
    p.add_argument('--channels-last', action='store_true', help='NHWC memory format (as TensorFlow)')
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.set_num_interop_threads(1)
    detail = f'PyTorch {torch.__version__}, {a.threads} threads, {torch.backends.cpu.get_cpu_capability()}'
    for loss in a.loss or ['non-saturating', 'wgan-gp']:
        step = build_step(loss, a.batch, a.channels_last)
        for _ in range(a.warmup):
            step()
        times, cpu = [], []
        for _ in range(a.steps):
            c0, t0 = time.process_time(), time.perf_counter()
            step()
            times.append((time.perf_counter() - t0) * 1000)
            cpu.append((time.process_time() - c0) * 1000)
        print(json.dumps({
            'backend': 'pytorch', 'batch': a.batch, 'loss': loss,
            'ms_per_step': round(statistics.median(times), 1), 'ms_best': round(min(times), 1),
            'cpu_ms_per_step': round(statistics.median(cpu), 1), 'steps': a.steps, 'detail': detail,
        }), flush=True)


if __name__ == '__main__':
    main()
