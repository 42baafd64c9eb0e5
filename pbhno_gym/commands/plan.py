"""``pbhno plan``: run the MPC agent (or the oracle MPC) in closed loop and report its quality."""

import json


def run(args) -> int:
    import torch

    from ..envs.spec import load_spec
    from ..evaluation.mpc import evaluate_mpc
    from ..utils.io import atomic_write_json

    if args.threads:
        torch.set_num_threads(args.threads)
    overrides = json.loads(args.overrides) if args.overrides else {}
    res = evaluate_mpc(
        load_spec(args.env, overrides),
        range(args.seed, args.seed + args.episodes),
        oracle=args.oracle,
        config=args.config,
        batch_size=args.num_envs,
        device=args.device,
        progress=args.verbose,
    )
    s = res.summary()
    label = "ORACLE MPC (true state and parameters)" if args.oracle else "MPC agent (observations only)"
    n = res.batch
    print(
        f"{args.env}  {label}\n"
        f"  episodes          {res.n} ({n} in parallel)\n"
        f"  success rate      {s['success_rate']:.3f} [{s['success_lo']:.3f}, {s['success_hi']:.3f}]\n"
        f"  final error       {s['final_error']:.4f} (RMS normalised phenotype error, mean over the "
        "success window)\n"
        f"  energy            {s['energy']:.3f} (sum over steps of sum_j (u_j/u_max_j)^2)\n"
        f"  episode cost      {-s['return']:.4f} (-return)\n"
        f"  latency           {s['call_ms']:.1f} ms per replan for {n} envs "
        f"({s['latency_ms']:.2f} ms per env; median)"
    )
    if args.json:
        atomic_write_json(args.json, {"env": args.env, "oracle": args.oracle, **res.to_json()})
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
