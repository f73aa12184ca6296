"""The safety rules that keep drills off real money, in one place: which hosts the plugin may talk to
(loopback, or hosts the drill created) and what makes an environment live (a declared or reported
``LIVE``/``PROD``/``PRODUCTION``). The runner refuses a live target before it starts and again on its
first status, the sampler refuses a remote status URL and stops on a live status, and
``chaosdrill validate-status --url`` refuses a remote host: all through these functions."""
from __future__ import annotations

import ipaddress
import os
import re
from typing import Any, Iterable, Mapping, Protocol
from urllib.parse import urlsplit

from .errors import LiveEnvironmentRefused

#: Environment names that mean real money (declared in the target file, reported as
#: ``deployment_environment``, or set in ``CHAOSDRILL_ENVIRONMENT``); case and blanks ignored.
LIVE_ENVIRONMENTS = frozenset({"LIVE", "PROD", "PRODUCTION"})


class TargetLike(Protocol):
    """What :func:`refuse_live` reads of a :class:`~pytest_chaosdrill.target.RenderedTarget` (named
    structurally so this module stays below the target module)."""

    config: Any
    env: Mapping[str, str]
    status_url: str
    health_url: str


def is_live_name(value: Any) -> bool:
    """True when ``value`` names a live environment (``" prod "`` included)."""
    return isinstance(value, str) and value.strip().upper() in LIVE_ENVIRONMENTS


def is_loopback_host(host: str, extra_hosts: Iterable[str] = ()) -> bool:
    """True for ``localhost``, a loopback address, or one of ``extra_hosts`` (hosts the drill created)."""
    if host == "localhost" or host in set(extra_hosts):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def is_local_url(url: str, extra_hosts: Iterable[str] = ()) -> bool:
    """True when ``url`` points at loopback (or at a host we created, listed in ``extra_hosts``)."""
    return is_loopback_host(urlsplit(url).hostname or "", extra_hosts)


def url_refusal(url: str, allowed_hosts: Iterable[str] = ()) -> str | None:
    """Why the plugin may not send a request to ``url`` (not http(s), no host, not loopback nor an
    allowed drill host), or None when it may."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        return f"status URL {url!r} is not http(s)"
    host = parts.hostname or ""
    if not host:
        return f"status URL {url!r} has no host"
    if is_loopback_host(host, allowed_hosts):
        return None
    return (f"status URL host {host!r} is neither loopback nor a drill-created host "
            f"(allowed: {sorted(set(allowed_hosts)) or 'none'})")


def is_live_status(payload: Any) -> str | None:
    """Why ``payload`` (a status answer) says it is a live (real-money) deployment, or ``None``.

    Looks at ``deployment_environment`` (case and surrounding blanks ignored): LIVE, PROD or
    PRODUCTION. The sampler's per-sample interlock aborts the drill on a non-``None`` answer.
    """
    if not isinstance(payload, dict):
        return None
    env = payload.get("deployment_environment")
    if is_live_name(env):
        return f"the target reports deployment_environment={env!r} (a live, real-money environment)"
    return None


def refuse_live(target: TargetLike, *, allow_live: bool, extra_hosts: tuple[str, ...] = (),
                status: Mapping[str, Any] | None = None) -> None:
    """Refuse a drill that could touch a live environment unless explicitly overridden.

    Checks the declared environment, every URL the target is given, and (when known) the
    ``deployment_environment`` the target reports; raises :class:`LiveEnvironmentRefused`.
    """
    if allow_live:
        return
    problems = []
    if is_live_name(target.config.environment):
        problems.append(f"target declares environment {target.config.environment!r}")
    for k, v in target.env.items():
        if re.match(r"^(https?|wss?)://", v) and not is_local_url(v, extra_hosts):
            problems.append(f"env {k} points at {urlsplit(v).hostname!r}, not loopback or a drill-created host")
    for label, url in (("status_url", target.status_url), ("health_url", target.health_url)):
        if not is_local_url(url, extra_hosts):
            problems.append(f"{label} points at {urlsplit(url).hostname!r}")
    if status is not None and is_live_status(status):
        problems.append(f"the target reports deployment_environment={status.get('deployment_environment')!r}")
    if is_live_name(os.environ.get("CHAOSDRILL_ENVIRONMENT", "")):
        problems.append("CHAOSDRILL_ENVIRONMENT says this is a live environment")
    if problems:
        raise LiveEnvironmentRefused(
            "refusing to drill a possibly live (real-money) environment: " + "; ".join(problems)
            + ". Drills only run against loopback or drill-created hosts; pass --chaosdrill-allow-live "
            "only if you are certain no real money is at stake."
        )
