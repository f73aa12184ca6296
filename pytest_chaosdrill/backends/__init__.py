"""Where a drilled target runs: ``process`` (a child process), ``docker`` (containers), ``external``."""
from __future__ import annotations

from typing import Any


def builtin_backend_class(name: str) -> Any:
    """The built-in backend class called ``name`` (imported on use), or None."""
    if name == "process":
        from .process import ProcessBackend
        return ProcessBackend
    if name == "external":
        from .external import ExternalBackend
        return ExternalBackend
    if name == "docker":
        from .docker import DockerBackend
        return DockerBackend
    if name == "kubernetes":
        from .k8s import KubernetesBackend
        return KubernetesBackend
    return None
