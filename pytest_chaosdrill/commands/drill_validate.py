"""``chaosdrill validate FILE...``: drill and target files checked without a run (see
:mod:`pytest_chaosdrill.commands.drills`)."""
from .drills import configure_validate as configure, run_validate as run

__all__ = ["configure", "run"]
