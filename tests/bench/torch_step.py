#!/usr/bin/python3
"""The betavae training step of tests/bench/bench_train.c in PyTorch, side by side.

Builds the mlp (Chen et al. 2018) and conv (Burgess et al. 2018) networks of
docs/architecture.md section 4 at 64x64 with D = 10 latents, times one
betavae step (encode, reparameterise, decode, Bernoulli-with-logits
reconstruction summed over pixels and averaged over the batch, beta KL,
backward, Adam) at batch 64 on one thread, and prints its images/s beside
untangle's, with the ratio. Untangle's figure comes from bench_train run on
the same configuration (its 1-thread row) just before, in turns with
PyTorch's, ROUNDS times, best of each: on a shared machine the two are then
measured under about the same load. The parameter counts of both sides are
printed and must be equal, which checks that the nets are the same.

    torch_step.py BENCH_TRAIN [ROUNDS]

PyTorch's dense layers call the system BLAS (OpenBLAS here) and its
convolutions oneDNN: run it under the OPENBLAS_CORETYPE to compare (make
bench runs it once per kernel).
"""
import subprocess
import sys
import time

import torch
from torch import nn

S, D, B, BETA = 64, 10, 64, 4.0


def mlp():
    enc = nn.Sequential(nn.Flatten(), nn.Linear(S * S, 1200), nn.ReLU(),
                        nn.Linear(1200, 1200), nn.ReLU(), nn.Linear(1200, 2 * D))
    dec = nn.Sequential(nn.Linear(D, 1200), nn.Tanh(), nn.Linear(1200, 1200), nn.Tanh(),
                        nn.Linear(1200, 1200), nn.Tanh(), nn.Linear(1200, S * S),
                        nn.Unflatten(1, (1, S, S)))
    return enc, dec


def conv():
    def c(i, o):
        return nn.Conv2d(i, o, 4, 2, 1)

    def t(i, o):
        return nn.ConvTranspose2d(i, o, 4, 2, 1)

    enc = nn.Sequential(c(1, 32), nn.ReLU(), c(32, 32), nn.ReLU(), c(32, 64), nn.ReLU(),
                        c(64, 64), nn.ReLU(), nn.Flatten(), nn.Linear(1024, 256), nn.ReLU(),
                        nn.Linear(256, 2 * D))
    dec = nn.Sequential(nn.Linear(D, 256), nn.ReLU(), nn.Linear(256, 1024), nn.ReLU(),
                        nn.Unflatten(1, (64, 4, 4)), t(64, 64), nn.ReLU(), t(64, 32), nn.ReLU(),
                        t(32, 32), nn.ReLU(), t(32, 1))
    return enc, dec


def images_per_s(build, rounds):
    torch.manual_seed(0)
    enc, dec = build()
    params = list(enc.parameters()) + list(dec.parameters())
    opt = torch.optim.Adam(params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8)
    x = (torch.rand(B, 1, S, S) < 0.1).float()  # binary images, as dSprites

    def step():
        h = enc(x)
        mu, lv = h[:, :D], h[:, D:]
        z = mu + torch.exp(0.5 * lv) * torch.randn_like(mu)
        logits = dec(z)
        recon = nn.functional.binary_cross_entropy_with_logits(logits, x, reduction="sum") / B
        kl = 0.5 * (mu * mu + lv.exp() - lv - 1).sum() / B
        loss = recon + BETA * kl
        opt.zero_grad(set_to_none=False)
        loss.backward()
        opt.step()

    steps, best = 8, float("inf")
    for r in range(rounds + 1):
        t0 = time.perf_counter()
        for _ in range(steps):
            step()
        dt = (time.perf_counter() - t0) / steps
        if r:  # round 0 warms up
            best = min(best, dt)
    return B / best, sum(p.numel() for p in params)


def untangle_step(bench, arch):
    """untangle's images/s (64x64, batch 64, 1 thread), its parameter count
    and the OpenBLAS kernel, from `bench_train ARCH 64 64 1`."""
    out = subprocess.run([bench, arch, str(S), str(B), "1"], check=True, capture_output=True,
                         text=True).stdout
    speed, params, kernel = float("nan"), -1, "?"
    for line in out.splitlines():
        f = line.split()
        if len(f) >= 6 and f[1] == arch and f[2:5] == [str(S), str(B), "1"]:
            kernel, speed = f[0], float(f[5])
        elif len(f) == 7 and f[1] == arch and f[2] == str(S):
            params = int(f[6])
    return speed, params, kernel


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 2
    torch.set_num_threads(1)
    rows, kernel = [], "?"
    for name, build in (("mlp", mlp), ("conv", conv)):
        mine = theirs = 0.0
        for _ in range(rounds):
            ips, ours, kernel = untangle_step(sys.argv[1], name)
            mine = max(mine, ips)
            ips, n = images_per_s(build, 1)
            theirs = max(theirs, ips)
        rows.append((name, ours, n, mine, theirs))
    print(f"untangle vs PyTorch {torch.__version__}: betavae step, {S}x{S}, batch {B}, "
          f"1 thread, OpenBLAS kernel {kernel} (best of {rounds} turns each)")
    print(f"{'arch':5} {'params':>9} {'torch':>9} {'untangle/s':>11} {'torch/s':>9} "
          f"{'ratio':>6}")
    rc = 0
    for name, ours, n, mine, theirs in rows:
        print(f"{name:5} {ours:9d} {n:9d} {mine:11.0f} {theirs:9.0f} {mine / theirs:6.2f}")
        if ours != n:
            print(f"torch_step: {name}: parameter counts differ ({ours} vs {n})",
                  file=sys.stderr)
            rc = 1
    sys.exit(rc)


if __name__ == "__main__":
    main()
