"""``pbhno identify``: structural + practical identifiability of a design or a pathway."""


def run(args) -> int:
    from ..experiments.identify import run_identify

    out = args.out or f"docs/results/identify/{args.design or args.pathway}"
    res = run_identify(
        design=args.design,
        pathway=args.pathway,
        observed=args.observed,
        seed=args.seed,
        profile=args.profile,
        structural=not args.practical_only,
        practical=not args.structural_only,
        out=out,
        method=args.method,
    )
    print(f"wrote {res['out']}/identify.md")
    return 0


def add_parser(sub) -> None:
    from ..discovery.designs import available_designs
    from .argtypes import int_at_least

    p = sub.add_parser("identify", help="structural and practical identifiability of a design or pathway")
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument(
        "--design", choices=sorted(available_designs()), help="a registered design (discovery.designs)"
    )
    g.add_argument("--pathway", help="a pathway (structural test only), with --observed")
    p.add_argument("--observed", nargs="+", default=None, help="measured species (default: the design's)")
    p.add_argument(
        "--seed",
        type=int_at_least(0),
        default=0,
        help="dataset seed (practical) and random point (structural)",
    )
    p.add_argument("--profile", action="store_true", help="also compute pyPESTO profile likelihoods (slow)")
    p.add_argument("--structural-only", action="store_true")
    p.add_argument("--practical-only", action="store_true")
    p.add_argument("--method", default="taylor", choices=["taylor", "lie"], help="structural engine")
    p.add_argument("--out", default=None, help="output folder (default docs/results/identify/<name>)")
    p.set_defaults(func=run)
