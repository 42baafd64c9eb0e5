"""``pbhno zoo``: our SB3 hyperparameters (agents/<algo>.toml) as an rl-baselines3-zoo YAML file."""


def run(args) -> int:
    from ..agents.sb3 import zoo_yaml
    from ..utils.io import atomic_write_text

    text = zoo_yaml(args.algo, args.envs)
    if args.out:
        atomic_write_text(args.out, text)
        print(f"wrote {args.out}")
    else:
        print(text, end="")
    return 0


def add_parser(sub) -> None:
    z = sub.add_parser(
        "zoo",
        help="export SB3 hyperparameters for rl-baselines3-zoo",
        description="Write agents/<algo>.toml as rl-baselines3-zoo hyperparameters; then train with "
        "python -m rl_zoo3.train --algo <zoo algo> --env pbhno/MAPK-v0 --gym-packages pbhno_gym "
        "-conf <file> --env-kwargs normalize_actions:True",
    )
    z.add_argument("--algo", required=True, choices=["ppo", "sac", "td3", "recurrent_ppo"])
    z.add_argument("--envs", nargs="+", default=None, help="env ids (default: all registered)")
    z.add_argument("--out", default=None, help="output .yml (default: stdout)")
    z.set_defaults(func=run)
