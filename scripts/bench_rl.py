"""RL training throughput: SB3 PPO (the reference) against rsl_ppo on the batched env, one run.

Both train through the comparison's own agents (``make_agent("ppo")`` with agents/ppo.toml,
``make_agent("rsl_ppo")`` with agents/rsl_ppo.toml, ``n_envs`` varied), and the rate is env
samples over ``TrainReport.wall_time_s`` (rollouts + updates, checkpoints included, no
evaluations). Runs alternate (SB3, rsl_ppo at each N, repeated ``--repeats`` times) so load from
other jobs hits both; the ratio is of the medians of the same run.

    OMP_NUM_THREADS=1 python scripts/bench_rl.py --out bench_rl.json
    python scripts/bench_rl.py --device cuda --n-envs 4096 16384 --out bench_rl_gpu.json
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time

import torch

from pbhno_gym.agents import make_agent


def rate(name: str, env_id: str, budget: int, device: str, **opts) -> float:
    """Env samples per second of one training run of ``name`` (a fresh run directory)."""
    agent = make_agent(name, **opts)
    with tempfile.TemporaryDirectory() as d:
        rep = agent.train(env_id, budget, 0, d, device, progress=False)
    return rep.env_samples / rep.wall_time_s


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--env", default="pbhno/MAPK-v0")
    p.add_argument("--device", default="cpu", help="device of rsl_ppo (SB3 runs on the CPU: its MLP policy)")
    p.add_argument("--n-envs", type=int, nargs="+", default=[256, 1024, 4096], help="rsl_ppo sub-envs")
    p.add_argument("--iterations", type=int, default=4, help="rsl_ppo updates per run")
    p.add_argument("--sb3-budget", type=int, default=16_384, help="SB3 PPO env samples per run")
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    p.add_argument(
        "--rsl-options",
        type=json.loads,
        default={},
        help="rsl_ppo overrides as JSON, e.g. '{\"num_learning_epochs\": 2}'",
    )
    p.add_argument("--out", default=None, help="write the results as JSON here")
    a = p.parse_args(argv)
    for k in ("iterations", "sb3_budget", "repeats", "threads"):
        if getattr(a, k) < 1:
            raise SystemExit(f"--{k.replace('_', '-')} must be >= 1, got {getattr(a, k)}")
    if any(n < 1 for n in a.n_envs):
        raise SystemExit(f"--n-envs must be positive, got {a.n_envs}")
    torch.set_num_threads(a.threads)
    from pbhno_gym.agents.config import load_agent_config

    if not isinstance(a.rsl_options, dict):
        raise SystemExit(f"--rsl-options must be a JSON object, got {a.rsl_options!r}")
    opts = dict(a.rsl_options)
    T = int(load_agent_config("rsl_ppo", a.env, opts)["num_steps_per_env"])
    runs: dict[str, list[float]] = {"sb3_ppo": [], **{f"rsl_ppo_N{n}": [] for n in a.n_envs}}
    t0 = time.perf_counter()
    rate(
        "rsl_ppo", a.env, a.n_envs[0] * T, a.device, **{**opts, "n_envs": a.n_envs[0]}
    )  # warm-up (imports, allocator)
    for r in range(a.repeats):
        runs["sb3_ppo"].append(rate("ppo", a.env, a.sb3_budget, "cpu"))
        print(f"[{r}] sb3_ppo: {runs['sb3_ppo'][-1]:,.0f} samples/s", flush=True)
        for n in a.n_envs:
            v = rate("rsl_ppo", a.env, n * T * a.iterations, a.device, **{**opts, "n_envs": n})
            runs[f"rsl_ppo_N{n}"].append(v)
            print(f"[{r}] rsl_ppo N={n}: {v:,.0f} samples/s", flush=True)
    med = {k: statistics.median(v) for k, v in runs.items()}
    out = {
        "env": a.env,
        "device": a.device,
        "threads": a.threads,
        "rsl_options": opts,
        "machine": f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} torch thread(s)",
        "torch": torch.__version__,
        "date": time.strftime("%Y-%m-%d"),
        "wall_s": round(time.perf_counter() - t0, 1),
        "samples_per_s": {k: round(v) for k, v in med.items()},
        "runs": {k: [round(x) for x in v] for k, v in runs.items()},
        "ratio_vs_sb3": {k: round(v / med["sb3_ppo"], 1) for k, v in med.items() if k != "sb3_ppo"},
    }
    print(json.dumps(out, indent=1))
    if a.out:
        with open(a.out, "w") as f:
            json.dump(out, f, indent=1)
    return out


if __name__ == "__main__":
    main()
