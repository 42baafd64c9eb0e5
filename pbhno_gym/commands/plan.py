"""``pbhno plan``: run the MPC agent (or the oracle MPC) in closed loop and report its quality."""

import json


def run(args) -> int:
    import numpy as np
    import torch

    from ..control.evaluate import evaluate_mpc
    from ..utils.io import atomic_write_json

    if args.threads:
        torch.set_num_threads(args.threads)
    overrides = json.loads(args.overrides) if args.overrides else {}
    res = evaluate_mpc(
        args.env,
        args.episodes,
        oracle=args.oracle,
        config=args.config,
        num_envs=args.num_envs,
        seed=args.seed,
        device=args.device,
        progress=print if args.verbose else None,
        **overrides,
    )
    label = "ORACLE MPC (true state and parameters)" if args.oracle else "MPC agent (observations only)"
    n = res["num_envs"]
    print(
        f"{args.env}  {label}\n"
        f"  episodes          {res['episodes']} ({n} in parallel)\n"
        f"  success rate      {res['success_rate']:.3f}\n"
        f"  tracking error    {res['mean_final_error']:.4f} (final RMS, normalised phenotype)\n"
        f"  energy            {res['mean_energy']:.3f} (sum over steps of mean (u/u_max)^2)\n"
        f"  episode cost      {res['mean_cost']:.4f} (-return)\n"
        f"  latency           {1e3 * res['latency_s']:.1f} ms per replan for {n} envs "
        f"({1e3 * res['latency_s'] / n:.2f} ms per env)"
    )
    if args.json:
        keep = {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in res.items()}
        atomic_write_json(args.json, {"env": args.env, "oracle": args.oracle, **keep})
    return 0


def add_parser(sub) -> None:
    c = sub.add_parser("plan", help="run the differentiable MPC agent in closed loop")
    c.add_argument("--env", required=True, help="environment id, e.g. pbhno/MAPK-v0")
    c.add_argument("--episodes", type=int, default=8)
    c.add_argument("--oracle", action="store_true", help="ORACLE: plan from the true state and parameters")
    c.add_argument("--config", default=None, help="agent config TOML (default: packaged agents/mpc.toml)")
    c.add_argument("--num-envs", type=int, default=None, help="episodes run together (default: all)")
    c.add_argument("--seed", type=int, default=0, help="episode e uses seed + e")
    c.add_argument("--device", default=None, help="env device (the agent's is in the config)")
    c.add_argument("--overrides", default=None, help="env spec overrides as JSON, e.g. '{\"horizon\": 30}'")
    c.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    c.add_argument("--json", default=None, help="also write per-episode results to this JSON file")
    c.add_argument("-v", "--verbose", action="store_true")
    c.set_defaults(func=run)
