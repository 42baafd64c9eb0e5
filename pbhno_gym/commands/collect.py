"""``pbhno collect``: roll out a policy and write an episode dataset."""

from .argtypes import int_at_least, json_object, positive_params


def run(args) -> int:
    from ..data import collect_episodes
    from ..envs import build, load_spec

    spec = load_spec(args.env, args.overrides or {})
    if args.theta:
        try:
            build(spec).sim.params.log_theta(args.theta)
        except ValueError as e:
            raise ValueError(f"--theta: {e}") from None
    ds = collect_episodes(
        spec,
        args.episodes,
        policy=args.policy,
        num_envs=args.num_envs,
        seed=args.seed,
        device=args.device,
        store_field=not args.no_field,
        out=args.out,
        true_parameters=args.theta,
    )
    print(
        f"wrote {args.out}: {ds.n_episodes} episodes x {ds.horizon} steps, "
        f"success rate {ds['success'].mean():.2f}, mean return {ds['rewards'].sum(1).mean():.3f}"
    )
    return 0


def add_parser(sub) -> None:
    c = sub.add_parser("collect", help="collect an episode dataset (NPZ, see pbhno_gym.data.format)")
    c.add_argument("--env", required=True, help="environment id, e.g. pbhno/Wnt-v1")
    c.add_argument("--episodes", type=int_at_least(1), default=64)
    c.add_argument("--policy", default="random", choices=["random", "zero"])
    c.add_argument("--num-envs", type=int_at_least(1), default=16, help="episodes simulated together")
    c.add_argument("--seed", type=int_at_least(0), default=0, help="episode e uses seed + e")
    c.add_argument("--device", default=None)
    c.add_argument("--no-field", action="store_true", help="do not store the ligand field")
    c.add_argument(
        "--overrides", type=json_object, default=None, help="spec overrides as JSON, e.g. '{\"horizon\": 24}'"
    )
    c.add_argument(
        "--theta",
        type=positive_params,
        default=None,
        help="true parameters (natural units) as JSON, e.g. '{\"k5\": 1.6}': "
        "the tissue's values, kept out of the spec (its nominal values stay the prior)",
    )
    c.add_argument("--out", required=True, help="output .npz path")
    c.set_defaults(func=run)
