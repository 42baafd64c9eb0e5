"""``pbhno`` subcommands: one module each, exposing ``add_parser(subparsers)``.

To add a command, write ``commands/<name>.py`` with ``add_parser`` (which sets ``func``) and add
the module name to ``COMMANDS``.
"""

COMMANDS = ["demo", "collect", "envs", "fit", "plan", "compare", "zoo", "identify", "reproduce"]
