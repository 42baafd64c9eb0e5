"""Benchmark the structural engines by model size and the sensitivity (Jacobian) modes.

python scripts/bench_identifiability.py [--timeout 300] [--skip-structural] [--skip-jacobians] [--mle]
"""

import argparse

import torch

from pbhno_gym.benchmarks.identifiability import time_jacobians, time_mle, time_structural

if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--timeout", type=float, default=300.0, help="limit per symbolic (Lie) case, seconds")
    ap.add_argument("--skip-jacobians", action="store_true")
    ap.add_argument("--skip-structural", action="store_true")
    ap.add_argument("--mle", action="store_true", help="also time one Notch MLE per Jacobian mode (minutes)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    if not args.skip_structural:
        print("| case | unknowns | engine | seconds | rank |\n|---|---:|---|---:|---:|")
        for r in time_structural(args.timeout):
            s = f"> {args.timeout:.0f}" if r["seconds"] is None else f"{r['seconds']:.2f}"
            print(f"| {r['case']} | {r['unknowns']} | {r['method']} | {s} | {r['rank']} |", flush=True)
    if not args.skip_jacobians:
        print("\n| design | mode | points | value s | value + Jacobian s |\n|---|---|---:|---:|---:|")
        for r in time_jacobians():
            cells = [r["design"], r["mode"], r["points"], f"{r['value_s']:.2f}", f"{r['jacobian_s']:.2f}"]
            print("| " + " | ".join(str(c) for c in cells) + " |", flush=True)
    if args.mle:
        print("\n| design | Jacobian | seconds | best cost | nfev per start |\n|---|---|---:|---:|---|")
        rows = time_mle()
        for r in rows:
            print(
                f"| {r['design']} | {r['mode']} | {r['seconds']:.1f} | {r['best_cost']:.6f} | {r['nfev']} |"
            )
        diff = max(abs(a - b) for a, b in zip(rows[0]["log_theta"], rows[1]["log_theta"], strict=True))
        print(f"\nmax |log theta(fd) - log theta(autograd)| = {diff:.2e}")
