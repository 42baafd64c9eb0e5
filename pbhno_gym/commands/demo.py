"""``pbhno demo``: simulate every pathway and save a figure."""

import json


def run(args) -> int:
    from ..experiments.demo import run_demo

    print(json.dumps(run_demo(args.out, seed=args.seed), indent=2))
    return 0


def add_parser(sub) -> None:
    from .argtypes import int_at_least

    d = sub.add_parser("demo", help="simulate every pathway and save a figure")
    d.add_argument("--out", default="outputs/demo", help="output folder")
    d.add_argument("--seed", type=int_at_least(0), default=0)
    d.set_defaults(func=run)
