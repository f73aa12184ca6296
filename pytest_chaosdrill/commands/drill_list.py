"""``chaosdrill list``: the drills (see :mod:`pytest_chaosdrill.commands.drills`)."""
from .drills import configure_list as configure, run_list as run

__all__ = ["configure", "run"]
