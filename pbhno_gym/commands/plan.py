"""``pbhno plan``: run the MPC agent (or the oracle MPC) in closed loop and report its quality.

pbhno plan --env pbhno/MAPK-v0 --episodes 16 [--oracle]   # plan through the nominal simulator
pbhno plan --model runs/mapk/model.pt --episodes 16       # plan through a saved PB-HNO surrogate
"""

from __future__ import annotations

from typing import Any

from ..envs.spec import EnvSpec
from .argtypes import int_at_least, json_object


def load_model_env(
    model_path: str, env: str | None, overrides: dict[str, Any], config=None
) -> tuple[Any, EnvSpec]:
    """The saved surrogate and the spec it was fit on (``overrides`` applied).

    The spec comes from the checkpoint (``overrides`` on top); an ``env`` naming another spec is
    an error naming ``--model``. The model lives on the agent config's device.
    """
    from ..control.config import load_config
    from ..envs.spec import load_spec
    from ..surrogate import load

    model = load(model_path)
    spec_id = model.spec.id
    if env is not None and env != spec_id:
        raise SystemExit(
            f"pbhno plan: --model {model_path} was fit on {spec_id!r}, not --env {env!r} "
            "(drop --env, or give a model of that environment)"
        )
    device = load_config(config, spec_id).device
    if str(device) != str(model.device):
        model = load(model_path, device=device)
    return model, load_spec(base=model.config.env_spec, overrides=overrides)


def run(args) -> int:
    import torch

    from ..envs.spec import load_spec
    from ..evaluation.mpc import evaluate_mpc
    from ..utils.io import atomic_write_json

    if args.threads:
        torch.set_num_threads(args.threads)
    overrides = args.overrides or {}
    model = None
    if args.model:
        if args.oracle:
            raise SystemExit("pbhno plan: --oracle plans through the true simulator; drop --model")
        model, spec = load_model_env(args.model, args.env, overrides, args.config)
    elif args.env is None:
        raise SystemExit("pbhno plan: give --env, or --model with a saved PB-HNO")
    else:
        spec = load_spec(args.env, overrides)
    res = evaluate_mpc(
        spec,
        range(args.seed, args.seed + args.episodes),
        oracle=args.oracle,
        config=args.config,
        model=model,
        batch_size=args.num_envs,
        device=args.device,
        progress=args.verbose,
    )
    s = res.summary()
    if args.oracle:
        label = "ORACLE MPC (true state and parameters)"
    elif model is not None:
        label = f"MPC agent through PB-HNO {args.model} (observations only)"
    else:
        label = "MPC agent (observations only)"
    n = res.batch
    print(
        f"{spec.id}  {label}\n"
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
        record = {"env": spec.id, "oracle": args.oracle, "model": args.model, **res.to_json()}
        atomic_write_json(args.json, record)
    return 0


def add_parser(sub) -> None:
    c = sub.add_parser("plan", help="run the differentiable MPC agent in closed loop")
    c.add_argument(
        "--env", default=None, help="environment id, e.g. pbhno/MAPK-v0 (with --model: must match it)"
    )
    c.add_argument(
        "--model",
        default=None,
        help="plan through this saved PB-HNO (model.pt from pbhno fit); its spec is the env's",
    )
    c.add_argument("--episodes", type=int_at_least(1), default=8)
    c.add_argument("--oracle", action="store_true", help="ORACLE: plan from the true state and parameters")
    c.add_argument("--config", default=None, help="agent config TOML (default: packaged agents/mpc.toml)")
    c.add_argument(
        "--num-envs", type=int_at_least(1), default=None, help="episodes run together (default: all)"
    )
    c.add_argument("--seed", type=int_at_least(0), default=0, help="episode e uses seed + e")
    c.add_argument("--device", default=None, help="env device (the agent's is in the config)")
    c.add_argument(
        "--overrides",
        type=json_object,
        default=None,
        help="env spec overrides as JSON, e.g. '{\"horizon\": 30}'",
    )
    c.add_argument("--threads", type=int_at_least(1), default=None, help="torch CPU threads")
    c.add_argument("--json", default=None, help="also write per-episode results to this JSON file")
    c.add_argument("-v", "--verbose", action="store_true")
    c.set_defaults(func=run)
