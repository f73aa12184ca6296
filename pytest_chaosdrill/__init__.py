"""pytest-chaosdrill: chaos drills for trading services as pytest test cases.

The public API: what drill, check, trigger and backend authors import (``docs/drills.md``, "The public
API"). Everything else is internal and may move. The names load on first use (PEP 562): importing
every one of them eagerly costs about 650 ms (``python -X importtime``), which every import of a
submodule (``chaosdrill validate-status``, the venue, the proxy) would otherwise pay.
"""
from __future__ import annotations

import importlib

# Not typing.TYPE_CHECKING: importing typing would cost `chaosdrill validate-status` its start-up
# (tests/test_validate_status_fastpaths.py: no typing, dataclasses, pathlib or argparse on that path).
TYPE_CHECKING = False

__version__ = "0.1.0"

#: public name -> the module that defines it
_EXPORTS: dict[str, str] = {
    # drills and their results
    "Drill": "drill", "load_drill": "drill", "load_drills": "drill",
    "DrillRun": "runner", "DrillContext": "context",
    "DrillRecord": "record", "StepRecord": "record",
    "Verdict": "verdict", "Evaluation": "verdict", "evaluate": "verdict",
    # targets
    "TargetConfig": "target", "RenderedTarget": "target", "load_target": "target",
    # triggers and checks (registered through the pytest_chaosdrill_add_triggers / _add_checks hooks)
    "Trigger": "faults", "TriggerFactory": "faults", "CheckResult": "checks", "Check": "checks", "needs": "checks",
    "Registry": "registry", "builtin_triggers": "registry", "builtin_checks": "registry",
    # backends (returned by the pytest_chaosdrill_backend_class hook)
    "Backend": "backends.base", "BackendSettings": "backends.base", "DrillSite": "backends.base",
    "Target": "backends.base", "ALL_CAPABILITIES": "backends.base", "START": "backends.base", "KILL": "backends.base",
    "PAUSE": "backends.base", "NETWORK_CUT": "backends.base", "EXIT": "backends.base",
    # errors
    "BackendUnavailable": "errors", "CannotOnThisBackend": "errors", "DockerError": "errors",
    "DrillDefinitionError": "errors", "DrillFailed": "errors", "DrillInterrupted": "errors",
    "DrillNotProven": "errors", "DrillTimeout": "errors", "ExpectationError": "errors", "FaultNotLanded": "errors",
    "LiveEnvironmentRefused": "errors", "SamplerRefused": "errors", "StartupFailed": "errors",
    "TargetConfigError": "errors",
}

__all__ = sorted(_EXPORTS) + ["__version__"]


def __getattr__(name: str) -> object:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'pytest_chaosdrill' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


if TYPE_CHECKING:  # pragma: no cover  (for type checkers and IDEs; at run time the names load lazily)
    from .backends.base import (ALL_CAPABILITIES, EXIT, KILL, NETWORK_CUT, PAUSE, START, Backend, BackendSettings,
                                DrillSite, Target)
    from .checks import Check, CheckResult, needs
    from .context import DrillContext
    from .drill import Drill, load_drill, load_drills
    from .errors import (BackendUnavailable, CannotOnThisBackend, DockerError, DrillDefinitionError, DrillFailed,
                         DrillInterrupted, DrillNotProven, DrillTimeout, ExpectationError, FaultNotLanded,
                         LiveEnvironmentRefused, SamplerRefused, StartupFailed, TargetConfigError)
    from .faults import Trigger, TriggerFactory
    from .record import DrillRecord, StepRecord
    from .registry import Registry, builtin_checks, builtin_triggers
    from .runner import DrillRun
    from .target import RenderedTarget, TargetConfig, load_target
    from .verdict import Evaluation, Verdict, evaluate
