"""``pbhno envs``: list the registered environments."""


def run(args) -> int:
    from ..envs import list_specs, load_spec

    for env_id, path in list_specs().items():
        spec = load_spec(env_id)
        print(
            f"{env_id}  ({path.name}): pathway={spec.pathway} dt={spec.control_interval:g} min "
            f"horizon={spec.horizon} target={spec.target.kind}"
        )
    return 0


def add_parser(sub) -> None:
    sub.add_parser("envs", help="list the registered environments").set_defaults(func=run)
