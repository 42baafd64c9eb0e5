"""The ``pbhno`` command line: one subcommand per job.

pbhno demo       simulate every pathway and save a figure
"""

from __future__ import annotations

import argparse
import json
import sys


def _demo(args: argparse.Namespace) -> int:
    from .experiments.demo import run_demo

    summary = run_demo(args.out, seed=args.seed)
    print(json.dumps(summary, indent=2))
    return 0


def _collect(args: argparse.Namespace) -> int:
    from .data import collect_episodes

    overrides = json.loads(args.overrides) if args.overrides else {}
    ds = collect_episodes(
        args.env,
        args.episodes,
        policy=args.policy,
        num_envs=args.num_envs,
        seed=args.seed,
        device=args.device,
        store_field=not args.no_field,
        out=args.out,
        **overrides,
    )
    print(
        f"wrote {args.out}: {ds.n_episodes} episodes x {ds.horizon} steps, "
        f"success rate {ds['success'].mean():.2f}, mean return {ds['rewards'].sum(1).mean():.3f}"
    )
    return 0


def _envs(args: argparse.Namespace) -> int:
    from .envs import list_specs, load_spec

    for env_id, path in list_specs().items():
        spec = load_spec(env_id)
        print(
            f"{env_id}  ({path.name}): pathway={spec.pathway} dt={spec.control_interval:g} min "
            f"horizon={spec.horizon} target={spec.target.kind}"
        )
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="pbhno", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = p.add_subparsers(dest="command", required=True)
    d = sub.add_parser("demo", help="simulate every pathway and save a figure")
    d.add_argument("--out", default="outputs/demo", help="output folder")
    d.add_argument("--seed", type=int, default=0)
    d.set_defaults(func=_demo)
    c = sub.add_parser("collect", help="collect an episode dataset (NPZ, see pbhno_gym.data.format)")
    c.add_argument("--env", required=True, help="environment id, e.g. pbhno/Wnt-v0")
    c.add_argument("--episodes", type=int, default=64)
    c.add_argument("--policy", default="random", choices=["random", "zero"])
    c.add_argument("--num-envs", type=int, default=16, help="episodes simulated together")
    c.add_argument("--seed", type=int, default=0, help="episode e uses seed + e")
    c.add_argument("--device", default=None)
    c.add_argument("--no-field", action="store_true", help="do not store the ligand field")
    c.add_argument("--overrides", default=None, help="spec overrides as JSON, e.g. '{\"horizon\": 24}'")
    c.add_argument("--out", required=True, help="output .npz path")
    c.set_defaults(func=_collect)
    e = sub.add_parser("envs", help="list the registered environments")
    e.set_defaults(func=_envs)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
