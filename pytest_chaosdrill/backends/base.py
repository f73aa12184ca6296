"""The backend protocol: where a target runs, what the drill can do to it, and what it talks to.

A backend is chosen by name (``--chaosdrill-backend``). The plugin asks the
``pytest_chaosdrill_backend_class`` hook for it (first non-None answer wins; the built-ins are the
``trylast`` default), once per session. For every drill the backend then

1. assembles a :class:`Harness` (the venue simulator and the fault proxy in front of it) with
   :meth:`Backend.harness`, and
2. creates a :class:`Target` with :meth:`Backend.create_target`: the service, not yet started,
   with its target file rendered the way the service sees it.

What a backend can do is declared in :attr:`Backend.capabilities`; a drill whose trigger needs a
capability the backend lacks is skipped at collection, with the reason, never run half-way.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Iterator, Protocol, runtime_checkable

from ..errors import BackendUnavailable, CannotOnThisBackend

if TYPE_CHECKING:  # pragma: no cover
    from ..target import RenderedTarget, TargetConfig
    from ..tls import SessionCA
    from ..wiring import VenueEndpoints

#: The plugin starts the service and stops it (else: the service is already running).
START = "start"
#: SIGKILL the service with proof of the kill, then start it again on the same data.
KILL = "kill"
#: Freeze and thaw the whole service with proof (SIGSTOP/SIGCONT, ``docker pause``).
PAUSE = "pause"
#: Cut the service off the venue's network with proof from the engine, then reconnect it.
NETWORK_CUT = "network_cut"
#: Observe the service's exit and its exit status.
EXIT = "exit"
#: Delete the serving pod and prove from the cluster's API that a new one serves (kubernetes).
POD_DELETE = "pod_delete"
#: Stop the kubelet of the serving pod's node and prove from the API that a replacement serves on another
#: node while the old replica still runs (kubernetes with node access).
NODE_LOSS = "node_loss"
#: Change the pod template (memory limit, image) so that the replacement pods cannot run, with the API's
#: reason (OOMKilled, ErrImagePull); put it back (kubernetes).
POD_TEMPLATE = "pod_template"
#: Push the running service's container over a memory limit until the kernel's OOM killer ends it, with the
#: API's ``OOMKilled`` and restart as proof (kubernetes with node access).
OOM_KILL = "oom_kill"
#: Scale the service's Deployment to N replicas and prove it from the Deployment's status (kubernetes).
SCALE = "scale"
#: Cut the serving pod off the network inside its network namespace, proven by a probe from inside it
#: (kubernetes with node access).
POD_NETWORK_CUT = "pod_network_cut"

#: The venue's hostname resolves through a DNS stub the drill controls (``dns_fail``, ``dns_restore``,
#: ``dns_state``: the stub's own per-name lookup counts); see pytest_chaosdrill.dnsstub.
DNS = "dns"

ALL_CAPABILITIES = frozenset({START, KILL, PAUSE, NETWORK_CUT, EXIT, POD_DELETE, NODE_LOSS, POD_TEMPLATE, OOM_KILL, SCALE, POD_NETWORK_CUT, DNS})


@runtime_checkable
class Target(Protocol):
    """One drill's service. Proof-returning methods return what the kernel or engine says happened."""

    backend: str
    #: The target file rendered for the host side: ``status_url`` and ``files`` as the plugin reads them.
    target: "RenderedTarget"
    # Optional (read with ``getattr``, default False, so targets of older plugins still satisfy the
    # protocol): ``shares_host_clock``, True when the service reads the harness's CLOCK_MONOTONIC, so
    # times it reports (``latch_events``) can be ordered against the venue's and the sampler's.

    def start(self) -> None: ...
    def stop(self, timeout: float = 10.0) -> int | None: ...
    def kill(self) -> dict[str, Any]: ...
    def pause(self) -> dict[str, Any]: ...
    def resume(self) -> dict[str, Any]: ...
    def network_disconnect(self) -> dict[str, Any]: ...
    def network_connect(self) -> dict[str, Any]: ...
    def running(self) -> bool: ...
    def returncode(self) -> int | None: ...
    def wait_exit(self, timeout: float) -> int | None: ...
    def logs(self) -> list[Path]: ...
    def describe(self) -> dict[str, Any]: ...
    def close(self) -> None: ...


@dataclass
class Harness:
    """The venue and the fault proxy one drill's target talks to.

    ``venue`` is a :class:`~pytest_chaosdrill.venue.VenueControl`-like handle (fault injection, witness
    ledger); ``proxy`` a :class:`~pytest_chaosdrill.wiring.ProxyLink`; ``proxy_listen`` the proxy's
    address *as the target reaches it*; ``local_hosts`` host names the drill created (allowed by the
    live-environment interlock besides loopback); ``api_key`` the demo key the venue accepts this drill
    (:func:`key_placeholders`); ``tls_listen`` the TLS listener in front of the proxy (target file
    ``venue: {tls: true}``) as the target reaches it, and ``ca_file`` the session CA's certificate as
    the target sees it (docs/targets.md, "TLS")."""

    venue: Any
    proxy: Any
    proxy_listen: str
    local_hosts: tuple[str, ...] = ()
    info: dict[str, Any] = field(default_factory=dict)
    api_key: Any = None  # the drill's demo ApiKey (venue.auth), handed to the target as placeholders
    tls_listen: str | None = None
    ca_file: str | None = None

    def endpoints(self) -> "VenueEndpoints":
        """The venue's URLs as the target reaches them: through the TLS listener when there is one."""
        from ..wiring import VenueEndpoints

        if self.tls_listen:
            return VenueEndpoints.through(self.tls_listen, tls=True)
        return VenueEndpoints.through(self.proxy_listen)

    def placeholders(self) -> dict[str, str]:
        """The venue placeholders of a target file (``venue_ca_file`` only with TLS on)."""
        ep = self.endpoints()
        out = {"venue_rest_url": ep.rest_url, "venue_ws_public_url": ep.ws_public_url,
               "venue_ws_private_url": ep.ws_private_url}
        if self.ca_file:
            out["venue_ca_file"] = self.ca_file
        return out


@dataclass(frozen=True)
class DrillSite:
    """Where one drill's files live on the host: ``control/``, ``data/`` and ``logs/`` under ``workdir``."""

    drill_id: str
    workdir: Path
    run_id: str
    #: the backend capabilities the drill needs (``dns``: its venue behind the DNS stub's hostname)
    needs: frozenset[str] = frozenset()

    @property
    def control_dir(self) -> Path:
        return self.workdir / "control"

    @property
    def data_dir(self) -> Path:
        return self.workdir / "data"

    @property
    def log_dir(self) -> Path:
        return self.workdir / "logs"

    def create(self) -> "DrillSite":
        for d in (self.control_dir, self.data_dir, self.log_dir):
            d.mkdir(parents=True, exist_ok=True)
        return self


@dataclass(frozen=True)
class BackendSettings:
    """Session-wide settings a backend may use."""

    run_id: str
    venue_seed: int = 7
    scratch: Path | None = None        # a session temp folder the backend may use
    worker_index: int = 0              # xdist worker number (0 without xdist): for per-worker ports


class Backend:
    """Base class of backends. Subclasses set ``name`` and ``capabilities`` and implement
    :meth:`harness` and :meth:`create_target`; :meth:`check_available` and :meth:`close` are optional."""

    name: ClassVar[str] = ""
    capabilities: ClassVar[frozenset[str]] = frozenset()
    #: pip extra that brings this backend's optional dependencies (named in errors), if any.
    extra: ClassVar[str | None] = None

    def __init__(self, settings: BackendSettings) -> None:
        self.settings = settings
        #: What :meth:`check_available` removed that killed earlier runs had left (one line each).
        self.reaped: list[str] = []
        self._ca: "SessionCA | None" = None

    def session_ca(self) -> "SessionCA":
        """The session's CA (pytest_chaosdrill/tls.py), made on first use; its files live in
        ``settings.scratch`` or a temp folder removed when the session ends."""
        if self._ca is None:
            from ..tls import SessionCA

            self._ca = SessionCA(self.settings.scratch / "tls" if self.settings.scratch else None)
        return self._ca

    def check_available(self) -> None:
        """Raise :class:`BackendUnavailable` when this backend cannot run here."""

    @contextlib.contextmanager
    def harness(self, site: DrillSite, config: "TargetConfig") -> Iterator[Harness]:
        raise NotImplementedError
        yield  # pragma: no cover

    def create_target(self, config: "TargetConfig", site: DrillSite, harness: Harness) -> Target:
        raise NotImplementedError

    def close(self) -> None:
        """Release session resources (containers, networks); the session CA's temp folder."""
        self.close_ca()

    def close_ca(self) -> None:
        """Remove the session CA's temp folder, if one was made (subclasses' ``close`` call it)."""
        if self._ca is not None:
            self._ca.cleanup()

    def missing(self, needed: frozenset[str] | set[str]) -> list[str]:
        """The capabilities in ``needed`` this backend lacks, sorted."""
        return sorted(set(needed) - set(self.capabilities))


def key_placeholders(harness: Harness) -> dict[str, str]:
    """The ``{venue_api_key}``, ``{venue_secret_key}``, ``{venue_passphrase}`` values (docs/targets.md)."""
    k = harness.api_key
    if k is None:
        return {}
    return {"venue_api_key": k.api_key, "venue_secret_key": k.secret_key, "venue_passphrase": k.passphrase}
