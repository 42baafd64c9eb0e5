"""``pbhno reproduce <name>``: the paper's experiments (table1, fig1, fig3, counterfactual)."""


def run(args) -> int:
    import json

    from ..experiments.reproduce import reproduce

    res = reproduce(
        args.name,
        quick=args.quick,
        methods=args.methods,
        seeds=args.seeds,
        results_dir=args.results_dir,
        runs_dir=args.runs_dir,
        executor="ray" if (args.ray or args.ray_address) else "local",
        ray_address=args.ray_address,
        progress=not args.no_progress,
        design=args.design,
        method_settings=args.settings,
        report_only=args.report_only,
    )
    print(json.dumps(res, indent=2))
    return 0 if res["n_failed"] == 0 and (args.report_only or res["n_missing"] == 0) else 1


def add_parser(sub) -> None:
    from ..experiments.reproduce import EXPERIMENTS
    from .argtypes import int_at_least, json_object

    p = sub.add_parser("reproduce", help="run one of the paper's experiments and write docs/results/<name>")
    p.add_argument("name", choices=sorted(EXPERIMENTS))
    p.add_argument("--quick", action="store_true", help="minutes-scale CPU settings (default: full settings)")
    p.add_argument("--methods", nargs="+", default=None, help="discovery methods (default: all registered)")
    p.add_argument(
        "--seeds",
        type=int_at_least(1),
        default=None,
        help="number of seeds (default: 3 quick / 30 full for table1)",
    )
    p.add_argument("--results-dir", default="docs/results")
    p.add_argument("--runs-dir", default="runs/reproduce", help="per-task records (resume from here)")
    p.add_argument("--ray", action="store_true", help="run tasks on a local Ray instance")
    p.add_argument("--ray-address", default=None, help="run tasks on an existing Ray cluster (implies --ray)")
    p.add_argument("--design", default=None, help="run on another design (default: the experiment's own)")
    p.add_argument(
        "--settings",
        type=json_object,
        default=None,
        help='per-method setting overrides as JSON, e.g. \'{"mle": {"jac_mode": "fd"}}\'',
    )
    p.add_argument(
        "--report-only", action="store_true", help="report from the task records so far, run nothing"
    )
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=run)
