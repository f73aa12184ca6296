"""Subcommands of the ``chaosdrill`` console script: each module has ``configure(parser)`` and ``run(args) -> int``."""
