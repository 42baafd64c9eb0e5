"""``pbhno fit``: train PB-HNO on an episode dataset (or a PEtab table) and report theta.

pbhno fit --data data/wnt.npz --out runs/wnt [--free D_L,lambda_L] [--epochs 200] [--ensemble 5]
pbhno fit --measurements m.tsv [--conditions c.tsv] --env pbhno/Notch-v1 --out runs/mine
pbhno fit ... --resume          # continue an interrupted run from its checkpoint
pbhno fit --measurements m.tsv --env pbhno/MAPK-v0 --method map --out runs/map   # the mechanistic
                                # model's MAP (or MLE) on the same table, Laplace 95% intervals
"""

from .argtypes import int_at_least, json_object, number


def run(args) -> int:
    from pathlib import Path

    from ..data import load_dataset
    from ..surrogate.fit import fit
    from ..surrogate.losses import LossWeights
    from ..surrogate.petab import read_measurements
    from ..surrogate.train import TrainConfig, stage

    progress = not args.quiet
    if args.data:
        ds = load_dataset(args.data)
        stage(f"loaded {args.data}: {ds.n_episodes} episodes", progress)
    else:
        if not (args.measurements and args.env):
            raise SystemExit("pbhno fit: give --data, or --measurements with --env")
        ds = read_measurements(args.measurements, args.env, args.conditions)
    free = [s.strip() for s in args.free.split(",") if s.strip()] if args.free else None
    if args.method != "pbhno":
        return _mechanistic(ds, free, args, progress)
    mcfg = dict(args.model_config or {})
    if free:
        mcfg["free_params"] = free
    tcfg = TrainConfig(
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        seed=args.seed,
        weights=_weights(LossWeights, args.weights),
        sens_every=args.sens_every,
        patience=args.patience,
        lr_theta=args.lr_theta,
        calibrate_nfev=args.calibrate_nfev,
        polish_nfev=args.polish_nfev,
        optimizer=args.optimizer,
        alternate_nfev=args.alternate_nfev,
    )
    res = fit(
        ds,
        args.out,
        mcfg,
        tcfg,
        ensemble=args.ensemble,
        quick=args.quick,
        resume=args.resume,
        device=args.device,
        progress=progress,
    )
    j, m = res.report_paths
    print(Path(m).read_text())
    print(f"model: {res.model_path}  report: {j}")
    return 0


def _mechanistic(ds, free, args, progress: bool) -> int:
    """``--method map|mle``: the mechanistic model alone (the spec's simulator, no networks) fitted
    to the same data; writes ``theta.json`` (the FitResult) and ``theta.md`` into ``--out``."""
    import json
    from pathlib import Path

    import numpy as np

    from ..discovery.methods.mle import fit_map, fit_mle
    from ..surrogate.train import stage
    from ..utils.io import atomic_write_json, atomic_write_text

    if "conditions" not in ds.meta and "design" not in ds.meta:
        raise SystemExit(
            f"pbhno fit --method {args.method}: needs --measurements (a table) or a design's dataset; "
            "an env-rollout dataset has unknown starting states (use --method pbhno)"
        )
    fn = fit_map if args.method == "map" else fit_mle
    stage(f"fitting the mechanistic model ({args.method.upper()}, multi-start least squares)", progress)
    res = fn(ds, free, seed=args.seed)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / "theta.json", res.to_dict())
    iv = res.intervals()
    rows = [f"| parameter | estimate | 95% interval ({args.method.upper()}, Laplace) |", "|---|---:|---|"]
    for i, n in enumerate(res.names):
        ci = "-" if iv is None else f"[{np.exp(iv[0][i]):.4g}, {np.exp(iv[1][i]):.4g}]"
        rows.append(f"| {n} | {np.exp(res.log_theta[i]):.4g} | {ci} |")
    text = "\n".join(rows) + "\n"
    atomic_write_text(out / "theta.md", text)
    print(text)
    print(f"report: {out / 'theta.json'}  ({json.dumps({'success': bool(res.success)})})")
    return 0


def _weights(cls, raw: dict | None):
    """LossWeights from ``--weights``, unknown names refused naming the option."""
    import dataclasses

    known = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(raw or {}) - set(known))
    if unknown:
        raise ValueError(f"--weights: unknown loss weight(s) {unknown}; known: {', '.join(known)}")
    return cls(**(raw or {}))


def add_parser(sub) -> None:
    f = sub.add_parser("fit", help="train the PB-HNO surrogate and estimate theta with uncertainty")
    src = f.add_argument_group("data")
    src.add_argument("--data", help="episode dataset (.npz from pbhno collect)")
    src.add_argument("--measurements", help="PEtab-style measurement table (TSV)")
    src.add_argument("--conditions", help="PEtab-style condition table with control schedules (TSV)")
    src.add_argument("--env", help="environment spec the measurements follow (with --measurements)")
    f.add_argument("--out", required=True, help="run directory (checkpoint, logs, model, theta report)")
    f.add_argument("--free", help="comma-separated parameters to fit (default: all)")
    f.add_argument(
        "--method",
        choices=["pbhno", "map", "mle"],
        default="pbhno",
        help="pbhno: the hybrid surrogate (default); map / mle: the mechanistic model alone on the same data",
    )
    f.add_argument("--epochs", type=int_at_least(1), default=200)
    f.add_argument("--batch-size", type=int_at_least(1), default=8)
    f.add_argument("--lr", type=number(0, lo_open=True), default=1e-3)
    f.add_argument("--patience", type=int_at_least(1), default=30)
    f.add_argument(
        "--lr-theta", type=number(0), default=2e-2, help="Adam step size of log theta (0: hold it)"
    )
    f.add_argument(
        "--calibrate-nfev",
        type=int_at_least(0),
        default=20,
        help="Gauss-Newton evaluations fitting theta through the mechanistic skeleton first (0: off)",
    )
    f.add_argument(
        "--polish-nfev",
        type=int_at_least(0),
        default=0,
        help="Gauss-Newton evaluations for theta at the end (0: off)",
    )
    f.add_argument(
        "--optimizer",
        choices=["adam", "lbfgs"],
        default="adam",
        help="adam: minibatch steps; lbfgs: one full-batch L-BFGS step (5 iterations) per epoch",
    )
    f.add_argument(
        "--alternate-nfev",
        type=int_at_least(0),
        default=0,
        help="Gauss-Newton evaluations for theta given the networks after every epoch (alternating "
        "Algorithm 1, the setting that removed most of a skeleton's bias under model error; 0: off)",
    )
    f.add_argument(
        "--sens-every", type=int_at_least(0), default=10, help="epochs between sensitivity refreshes (0: off)"
    )
    f.add_argument(
        "--weights", type=json_object, help='loss weights as JSON, e.g. \'{"pde": 0, "sens": 0}\' (ablations)'
    )
    f.add_argument("--model-config", type=json_object, help="PBHNOConfig fields as JSON")
    f.add_argument("--ensemble", type=int_at_least(1), default=1, help="deep-ensemble members")
    f.add_argument("--quick", action="store_true", help="small CPU-sized model and fixed-step solver")
    f.add_argument("--resume", action="store_true", help="continue from the run directory's checkpoint")
    f.add_argument("--seed", type=int_at_least(0), default=0)
    f.add_argument("--device", default=None)
    f.add_argument("--quiet", action="store_true", help="no stage lines or progress bars on stderr")
    f.set_defaults(func=run)
