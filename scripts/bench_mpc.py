#!/usr/bin/env python
"""MPC benchmarks (issue 5): replanning latency, Adam vs Gauss-Newton convergence, optimality gap
vs a converged SciPy solve, closed-loop quality of the oracle MPC per pathway, and the
parameter-mismatch study on perturbed MAPK problems (nominal vs adaptive vs ensemble agents).

Results are checkpointed to --out (JSON, atomic) after every row; rerunning resumes.

    python scripts/bench_mpc.py --threads 1                                  # everything, CPU
    python scripts/bench_mpc.py --sections latency --device cuda --compile   # GPU latency
    python scripts/bench_mpc.py --sections mismatch --episodes 32
"""

import argparse
import datetime
import json
import time
from pathlib import Path

import torch

from pbhno_gym.benchmarks.mpc import convergence, env_problems, latency, reference_gap
from pbhno_gym.benchmarks.sim import machine_description
from pbhno_gym.control import SimulatorModel, load_config
from pbhno_gym.control.compiled import CompiledModel
from pbhno_gym.envs.spec import load_spec
from pbhno_gym.evaluation import evaluate_agent, mpc_policy
from pbhno_gym.utils.io import atomic_write_json

SECTIONS = ["latency", "convergence", "reference", "closed_loop", "mismatch"]
p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
p.add_argument("--sections", nargs="+", default=SECTIONS, choices=SECTIONS)
p.add_argument("--device", default="cpu")
p.add_argument("--threads", type=int, default=None)
p.add_argument("--batches", nargs="+", type=int, default=[1, 256, 1024])
p.add_argument("--compile", action="store_true", help="also time a torch.compile'd model step")
p.add_argument(
    "--compile-mode", default=None, help='torch.compile mode, e.g. "reduce-overhead" (CUDA graphs)'
)
p.add_argument("--episodes", type=int, default=32, help="MAPK closed-loop / mismatch episodes")
p.add_argument("--field-episodes", type=int, default=3, help="closed-loop episodes per field pathway")
p.add_argument("--field-envs", nargs="*", default=["pbhno/Wnt-v1", "pbhno/Notch-v1", "pbhno/NotchLattice-v0"])
p.add_argument("--out", default="outputs/bench_mpc.json")
args = p.parse_args()
if args.threads:
    torch.set_num_threads(args.threads)
dev = torch.device(args.device)
out_path = Path(args.out)
res = json.loads(out_path.read_text()) if out_path.exists() else {}
res.setdefault("machine", machine_description(args.device))


def save(section, key, value):
    res.setdefault(section, {})[key] = value
    atomic_write_json(out_path, res)
    print(section, key, json.dumps(value, default=float)[:400], flush=True)


def done(section, key):
    return key in res.get(section, {})


MAPK = "pbhno/MAPK-v0"

if "latency" in args.sections:
    FLOOR = load_config(None).state_floor  # the agents' planning model
    models = {"eager": SimulatorModel(MAPK, device=dev, state_floor=FLOOR)}
    if args.compile:
        models["compiled"] = CompiledModel(models["eager"], mode=args.compile_mode)
    for mode, model in models.items():
        for B in args.batches:
            prob, _ = env_problems(MAPK, B, model=model)
            for solver, iters in (("gn", 10), ("adam", 50)):
                key = f"{MAPK} {args.device} {mode} B={B} {solver}"
                if not done("latency", key):
                    save("latency", key, latency(model, prob, solver, iters, repeats=2 if B > 1 else 3))
    for env_id in args.field_envs:  # field pathways: Adam (the configured solver), per iteration
        for B in (1, 8):
            key = f"{env_id} {args.device} eager B={B} adam"
            if not done("latency", key):
                model = SimulatorModel(env_id, device=dev, state_floor=FLOOR)
                prob, _ = env_problems(env_id, B, model=model)
                save("latency", key, latency(model, prob, "adam", 3, repeats=1, warm_iterations=3))

if "convergence" in args.sections and not done("convergence", MAPK):
    prob, model = env_problems(MAPK, 32, seed=1000)
    save("convergence", MAPK, convergence(model, prob))

if "reference" in args.sections and not done("reference", MAPK):
    model = SimulatorModel(MAPK, dtype=torch.float64, state_floor=load_config(None).state_floor)
    prob, _ = env_problems(MAPK, 16, seed=2000, model=model)
    save("reference", MAPK, reference_gap(model, prob))


def closed_loop(make, env_id, n, seed, **overrides):
    """``make(spec)``'s agent on episodes ``seed .. seed + n - 1`` through the one evaluator; the
    row keeps this script's keys (final error: the evaluator's, mean over the success window)."""
    spec = load_spec(env_id, overrides)
    res = evaluate_agent(make(spec), spec, range(seed, seed + n), progress=True)
    s = res.summary()
    return {
        "success_rate": s["success_rate"],
        "mean_cost": -s["return"],
        "mean_final_error": s["final_error"],
        "mean_energy": s["energy"],
        "latency_s": s["call_ms"] / 1e3,
        "num_envs": res.batch,
        "episodes": res.n,
        "cost": (-res.returns).tolist(),
    }


if "closed_loop" in args.sections:
    for env_id, n in [(MAPK, args.episodes)] + [(e, args.field_episodes) for e in args.field_envs]:
        key = f"{env_id} oracle"
        if not done("closed_loop", key):
            t0 = time.perf_counter()
            r = closed_loop(lambda s: mpc_policy(s, oracle=True), env_id, n, seed=10_000)
            save("closed_loop", key, r | {"wall_s": time.perf_counter() - t0})
    key = f"{MAPK} mpc (observations, nominal = true theta)"
    if not done("closed_loop", key):
        t0 = time.perf_counter()
        r = closed_loop(mpc_policy, MAPK, args.episodes, seed=10_000)
        save("closed_loop", key, r | {"wall_s": time.perf_counter() - t0})

if "mismatch" in args.sections:
    base = load_config(None, MAPK)
    agents = {
        "oracle (true state + theta)": lambda s: mpc_policy(s, base, oracle=True),
        "true theta (MHE state)": lambda s: mpc_policy(s, base, oracle=True, oracle_state=False),
        "nominal theta": lambda s: mpc_policy(s, base),
        "adaptive (MHE over theta, W=20)": lambda s: mpc_policy(
            s, load_config(base, estimation={"estimate_theta": True, "window": 20})
        ),
        "ensemble (8 prior samples, likelihood-weighted mean)": lambda s: mpc_policy(
            s, load_config(base, ensemble={"members": 8, "weighting": "likelihood"})
        ),
    }
    for name, make in agents.items():
        if not done("mismatch", name):
            t0 = time.perf_counter()
            r = closed_loop(make, MAPK, args.episodes, seed=20_000, randomize_parameters=True)
            save("mismatch", name, r | {"wall_s": time.perf_counter() - t0})

# ------------------------------------------------------------------ report
print(f"\n### MPC benchmarks — {res['machine']}, {datetime.date.today()}\n")
if "latency" in res:
    print(
        "| problem | device | model | batch | solver | cold solve ms (iters) | ms/iter | warm replan ms | "
        "ms/problem (warm) | warm iters | baseline: one T-step rollout ms |"
        "\n|---|---|---|---:|---|---:|---:|---:|---:|---:|---:|"
    )
    for k, v in res["latency"].items():
        env_id, d, mode, b, s = k.split(" ")
        print(
            f"| {env_id} | {d} | {mode} | {v['batch']} | {s} | {v['cold_ms']:.0f} ({v['iterations']}) | "
            f"{v['ms_per_iteration']:.1f} | {v['warm_ms']:.0f} | {v['warm_ms_per_problem']:.2f} | "
            f"{v['warm_iterations_mean']:.1f} | {v.get('rollout_ms', float('nan')):.1f} |"
        )
if "convergence" in res:
    print(
        "\n| solver (MAPK, T=20, 32 problems) | median iters to 1% | to 0.1% | reached 0.1% "
        "| s/iter (batch 32) |"
        "\n|---|---:|---:|---:|---:|"
    )
    for k, v in res["convergence"][MAPK].items():
        print(
            f"| {k} | {v['median_iters_0.01']:.0f} | {v['median_iters_0.001']:.0f} | "
            f"{v['frac_reached_0.001']:.2f} | {v['s_per_iteration']:.3f} |"
        )
if "reference" in res:
    v = res["reference"][MAPK]
    print(
        f"\nGN vs converged SLSQP ({v['problems']} MAPK problems, float64): mean relative cost gap "
        f"{v['mean_rel_gap']:.2e}, max {v['max_rel_gap']:.2e}; GN {v['gn_iterations_mean']:.1f} iterations"
    )
for sec in ("closed_loop", "mismatch"):
    if sec in res:
        print(
            f"\n| {sec} | episodes | success | final error | energy | cost | latency ms/step (batch) |"
            "\n|---|---:|---:|---:|---:|---:|---:|"
        )
        for k, v in res[sec].items():
            print(
                f"| {k} | {v['episodes']} | {v['success_rate']:.2f} | {v['mean_final_error']:.4f} | "
                f"{v['mean_energy']:.2f} | {v['mean_cost']:.4f} | "
                f"{1e3 * v['latency_s']:.0f} ({v['num_envs']}) |"
            )
if "mismatch" in res:
    m = res["mismatch"]
    true_c = m.get("true theta (MHE state)", {}).get("mean_cost")
    nom_c = m.get("nominal theta", {}).get("mean_cost")
    if true_c is not None and nom_c is not None:
        print(f"\nnominal vs true theta: cost +{100 * (nom_c / true_c - 1):.0f}%")
        for k, v in m.items():
            if k.startswith(("adaptive", "ensemble")):
                print(
                    f"{k}: recovers {100 * (nom_c - v['mean_cost']) / (nom_c - true_c):.0f}% "
                    "of the excess cost"
                )
