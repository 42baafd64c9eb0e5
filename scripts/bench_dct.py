#!/usr/bin/env python
"""The field transform (issue 17): dense-matmul DCT (what the simulator runs) vs an FFT-based DCT.

The Wnt simulator moves its ligand field between pixel and cosine space four times per coupled
sub-step (``physics.transport.SpectralNeumann``: ``V_y^T L V_x``, two dense matmuls). This times
one batched 2D DCT-II both ways, same process, alternating: the matmul with a random (n, n)
basis, and Makhoul's algorithm (even/odd reordering, one complex FFT per axis, a twiddle), checked
against the explicit cosine basis. It also prints the vector env's transform-bound ceiling: 4
transforms x ``--substeps`` per env step at the matmul's measured rate.

    OMP_NUM_THREADS=1 python scripts/bench_dct.py --threads 1
    OMP_NUM_THREADS=1 python scripts/bench_dct.py --batch 256 --n 64 32 128
"""

import argparse
import datetime
import math
import statistics
import time

import torch

from pbhno_gym.benchmarks.sim import machine_description

p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
p.add_argument("--batch", type=int, default=256)
p.add_argument("--n", type=int, nargs="+", default=[64])
p.add_argument("--substeps", type=int, default=10, help="coupled sub-steps per env step (Wnt-v1: 10)")
p.add_argument("--repeats", type=int, default=5)
p.add_argument("--threads", type=int, default=1)
args = p.parse_args()
torch.set_num_threads(args.threads)


def makhoul_dct(v: torch.Tensor, dim: int) -> torch.Tensor:
    """Unnormalised DCT-II along ``dim`` by one complex FFT of the even/odd reordered signal."""
    n = v.shape[dim]
    perm = torch.cat([torch.arange(0, n, 2), torch.arange(n - 1 - n % 2, 0, -2)])
    f = torch.fft.fft(v.index_select(dim, perm), dim=dim)
    shape = [1] * v.ndim
    shape[dim] = n
    w = 2 * torch.exp(-1j * math.pi * torch.arange(n) / (2 * n))
    return (f * w.reshape(shape)).real


def per_call_ms(fn, k: int = 20) -> float:
    fn()
    t0 = time.perf_counter()
    for _ in range(k):
        fn()
    return (time.perf_counter() - t0) / k * 1e3


print(f"### Field transform, batch {args.batch} - {machine_description('cpu')}, {datetime.date.today()}\n")
print("| n x n | matmul DCT ms | FFT DCT ms | FFT / matmul | FFT DCT max rel. error | env-steps/s ceiling |")
print("|---:|---:|---:|---:|---:|---:|")
for n in args.n:
    x = torch.randn(args.batch, n, n)
    V = torch.randn(n, n)
    Vt = V.t().contiguous()
    runs = {"matmul": [], "fft": []}
    for _ in range(args.repeats):
        runs["matmul"].append(per_call_ms(lambda x=x, V=V, Vt=Vt: Vt @ x @ V))
        runs["fft"].append(per_call_ms(lambda x=x: makhoul_dct(makhoul_dct(x, -1), -2)))
    mm, ff = statistics.median(runs["matmul"]), statistics.median(runs["fft"])
    j = torch.arange(n, dtype=torch.float64)
    C = 2 * torch.cos(math.pi * (j[:, None] + 0.5) * j[None, :] / n)
    ref = torch.einsum("bij,ik,jl->bkl", x.double(), C, C)
    err = float((makhoul_dct(makhoul_dct(x, -1), -2).double() - ref).abs().max() / ref.abs().max())
    ceiling = args.batch / (4 * args.substeps * mm * 1e-3)
    print(f"| {n} | {mm:.2f} | {ff:.2f} | {ff / mm:.2f}x | {err:.1e} | {ceiling:,.0f} |")
