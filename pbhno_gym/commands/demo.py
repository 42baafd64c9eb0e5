"""``pbhno demo``: simulate every pathway and save a figure."""

import json


def run(args) -> int:
    from ..experiments.demo import run_demo

    print(json.dumps(run_demo(args.out, seed=args.seed), indent=2))
    return 0


def add_parser(sub) -> None:
    d = sub.add_parser("demo", help="simulate every pathway and save a figure")
    d.add_argument("--out", default="outputs/demo", help="output folder")
    d.add_argument("--seed", type=int, default=0)
    d.set_defaults(func=run)
