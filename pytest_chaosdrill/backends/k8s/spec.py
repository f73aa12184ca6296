"""A target file's ``kubernetes:`` section, validated, and the backend's environment settings."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Mapping

from ...target import TargetConfigError

if TYPE_CHECKING:  # pragma: no cover
    from ...target import TargetConfig

#: The label a namespace must carry before any drill runs in it.
ALLOW_LABEL = "chaosdrill.io/drills"
ALLOW_VALUE = "allowed"
DEFAULT_NAMESPACE = "chaosdrill"
#: Labels on everything the backend creates (the reaper and the teardown select by them).
MANAGED_LABEL = "app.kubernetes.io/managed-by"
MANAGED_VALUE = "pytest-chaosdrill"
RUN_LABEL = "chaosdrill.io/run-id"
TARGET_LABEL = "chaosdrill.io/target-id"
DEFAULT_STATUS_PORT = 8080
PULL_POLICIES = ("Always", "IfNotPresent", "Never")
KNOWN = ("image", "namespace", "command", "status_port", "replicas", "env", "image_pull_policy",
         "resources", "harness_host", "node_access")


@dataclass(frozen=True)
class KubeSpec:
    """What the service runs as: one Deployment of ``replicas`` pods of ``image``."""

    image: str
    namespace: str = DEFAULT_NAMESPACE
    command: tuple[str, ...] | None = None
    status_port: int = DEFAULT_STATUS_PORT
    replicas: int = 1
    env: Mapping[str, str] = field(default_factory=dict)
    image_pull_policy: str = "IfNotPresent"
    resources: Mapping[str, Any] = field(default_factory=dict)
    harness_host: str = ""
    node_access: str = "local"
    source: str = ""

    @classmethod
    def from_config(cls, config: "TargetConfig") -> "KubeSpec":
        """Validate ``config.kubernetes`` (falling back to ``docker.image``/``command``/``status_port``);
        :class:`TargetConfigError` names the file and the field. Environment overrides:
        ``CHAOSDRILL_K8S_NAMESPACE``, ``CHAOSDRILL_K8S_HARNESS_HOST``, ``CHAOSDRILL_K8S_IMAGE``."""
        from ..docker import _expand_env  # compose's ${VAR:-default} syntax, one home

        src = str(config.source or config.name)
        raw: Mapping[str, Any] = getattr(config, "kubernetes", None) or {}
        docker: Mapping[str, Any] = config.docker or {}

        def bad(fld: str, msg: str) -> TargetConfigError:
            return TargetConfigError(f"{src}: field 'kubernetes.{fld}': {msg}")

        if not isinstance(raw, Mapping):
            raise TargetConfigError(f"{src}: field 'kubernetes' must be a mapping")
        unknown = sorted(set(raw) - set(KNOWN))
        if unknown:
            raise bad(unknown[0], f"unknown key; known: {', '.join(KNOWN)}")
        image = os.environ.get("CHAOSDRILL_K8S_IMAGE") or raw.get("image") or docker.get("image")
        if not isinstance(image, str) or not image.strip():
            raise bad("image", "required (or docker.image): the image the service's pods run")
        image = _expand_env(image.strip(), f"{src}: field 'kubernetes.image'")
        namespace = os.environ.get("CHAOSDRILL_K8S_NAMESPACE") or raw.get("namespace", DEFAULT_NAMESPACE)
        if not isinstance(namespace, str) or not namespace.strip():
            raise bad("namespace", "must be a non-empty string")
        command = raw.get("command", docker.get("command"))
        if command is not None:
            if isinstance(command, str) or not isinstance(command, list) or not command \
                    or not all(isinstance(c, str) for c in command):
                raise bad("command", "must be a non-empty list of strings")
            command = tuple(command)
        port = raw.get("status_port", docker.get("status_port", DEFAULT_STATUS_PORT))
        if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
            raise bad("status_port", f"must be a port number 1-65535, got {port!r}")
        replicas = raw.get("replicas", 1)
        if isinstance(replicas, bool) or not isinstance(replicas, int) or not 1 <= replicas <= 10:
            raise bad("replicas", f"must be an integer 1-10, got {replicas!r}")
        policy = raw.get("image_pull_policy", "IfNotPresent")
        if policy not in PULL_POLICIES:
            raise bad("image_pull_policy", f"must be one of {', '.join(PULL_POLICIES)}, got {policy!r}")
        env = raw.get("env") or docker.get("env") or {}   # the image runs as in docker: the same env
        if not isinstance(env, Mapping) or not all(isinstance(v, (str, int, float, bool)) for v in env.values()):
            raise bad("env", "must be a mapping of strings, numbers or booleans")
        resources = raw.get("resources") or {}
        if not isinstance(resources, Mapping) or set(resources) - {"limits", "requests"}:
            raise bad("resources", "must be a mapping with 'limits' and/or 'requests' (as in a pod spec)")
        host = os.environ.get("CHAOSDRILL_K8S_HARNESS_HOST") or raw.get("harness_host") or ""
        if not isinstance(host, str):
            raise bad("harness_host", "must be a host address string")
        access = raw.get("node_access", "local")
        if access not in ("local", "none"):
            raise bad("node_access", f"must be 'local' (the nodes are this machine) or 'none', got {access!r}")
        return cls(image=image, namespace=namespace.strip(), command=command, status_port=port, replicas=replicas,
                   env={str(k): (str(v).lower() if isinstance(v, bool) else str(v)) for k, v in env.items()},
                   image_pull_policy=policy, resources=dict(resources), harness_host=host.strip(),
                   node_access=access, source=src)
