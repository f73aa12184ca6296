"""Kept environments on the docker backend (``--chaosdrill-keep``): after a drill, its service container
is created again from the drill's image, command and environment, next to a venue and a fault proxy of
its own (containers from the project image, the drill's seed and demo key), on two networks of its own:
``<keep id>_core`` (internal: ``venue``, ``proxy`` and the service, as in a drill) and ``<keep id>_edge``
(the ports published on 127.0.0.1). Nothing of the drill's session stack is reused: that stack ends with
the session as always.

Everything carries ``io.chaosdrill.kept=<keep id>`` (and ``io.chaosdrill.kept-run-id``), never the
managed labels, so no session's sweep or teardown takes it; the keep id is unique per drill and run and
recorded in the user's keep dir (:mod:`.keeper`), which is what ``chaosdrill keep-reap`` and the next
drill session remove, by that label only.
"""
from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from ..errors import DockerError
from .docker_engine import KEPT_KEY, KEPT_RUN_ID_KEY, DockerEngine, reap

if TYPE_CHECKING:  # pragma: no cover
    from ..venue.auth import ApiKey
    from .docker import DockerTarget

#: How long the session waits for the kept venue, proxy and service to answer.
READY_TIMEOUT_S = 60.0


class KeptEngine(DockerEngine):
    """A :class:`DockerEngine` whose resources are labelled as kept (see the module's docstring) and
    which is never torn down at exit: removing them is :func:`remove`'s job."""

    def __init__(self, keep_id: str, run_id: str, *, docker: str | None = None) -> None:
        super().__init__(keep_id, docker=docker, handle_signals=False)
        self.kept_run_id = run_id

    @property
    def labels(self) -> dict[str, str]:
        return {KEPT_KEY: self.run_id, KEPT_RUN_ID_KEY: self.kept_run_id}

    @property
    def run_label(self) -> str:
        return f"{KEPT_KEY}={self.run_id}"

    def teardown(self) -> list[str]:
        self._closed = True  # kept on purpose: the atexit/signal teardown of engines leaves it alone
        return []


def remove(label: str, docker: str | None = None) -> list[str]:
    """Remove every container, network and volume carrying ``label`` (``io.chaosdrill.kept=<keep id>``
    only: any other label is refused, so a record can never make this remove other resources)."""
    if not label.startswith(f"{KEPT_KEY}=") or label == f"{KEPT_KEY}=":
        raise ValueError(f"not a kept environment's label: {label!r}")
    return reap(label, docker=docker)


def _wait(what: str, check: Any, deadline: float) -> None:
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise RuntimeError(f"the kept {what} did not answer within {READY_TIMEOUT_S:.0f} s")


def keep(target: "DockerTarget", keep_id: str, *, run_id: str, seed: int, api_key: "ApiKey | None") -> dict[str, Any]:
    """Start ``target``'s kept environment (see the module's docstring) and wait, with a deadline, until
    the venue, the proxy and the service answer. Returns its record for the keep dir; raises
    ``RuntimeError`` saying why (everything it created removed then)."""
    from ..proxy.client import ProxyClient
    from ..venue.client import VenueClient
    from .docker import PROXY_API_PORT, PROXY_LISTEN_PORT, VENUE_PORT, _answers, _free_port

    if target.sealed is not None or target.dns is not None:
        raise RuntimeError("a TLS or DNS drill's sealed container is not kept (its session CA and DNS stub end "
                           "with the session)")
    engine = KeptEngine(keep_id, run_id, docker=target.engine.docker)
    core, edge = f"{keep_id}_core", f"{keep_id}_edge"
    names = {s: f"{keep_id}-{s}" for s in ("venue", "proxy", "target")}
    deadline = time.monotonic() + READY_TIMEOUT_S
    try:
        engine.create_network(core, internal=True)
        engine.create_network(edge)
        ports = {"venue": _free_port(), "proxy": _free_port(), "target": _free_port()}
        harness = target.stack.image
        ids = {
            "venue": engine.run_container(
                harness, ["chaosdrill", "venue", "--host", "0.0.0.0", "--port", str(VENUE_PORT), "--seed", str(seed)],
                name=names["venue"], network=edge, ports={VENUE_PORT: ports["venue"]}, user=target.user,
                labels={"io.chaosdrill.service": "venue"}),
            "proxy": engine.run_container(
                harness, ["chaosdrill", "proxy", "--api-host", "0.0.0.0", "--api-port", str(PROXY_API_PORT)],
                name=names["proxy"], network=edge, ports={PROXY_API_PORT: ports["proxy"]}, user=target.user,
                labels={"io.chaosdrill.service": "proxy"}),
        }
        engine.network_connect(core, ids["venue"], aliases=["venue"])
        engine.network_connect(core, ids["proxy"], aliases=["proxy"])
        venue_url, proxy_url = (f"http://127.0.0.1:{ports['venue']}", f"http://127.0.0.1:{ports['proxy']}")
        _wait("venue", lambda: _answers(f"{venue_url}/api/v5/public/time"), deadline)
        _wait("proxy", lambda: _answers(f"{proxy_url}/version"), deadline)
        with VenueClient(venue_url) as venue, ProxyClient(proxy_url) as proxy:
            if api_key is not None:
                venue.add_key(api_key)
            proxy.create_proxy("venue", upstream=f"venue:{VENUE_PORT}", listen=f"0.0.0.0:{PROXY_LISTEN_PORT}")
        ids["target"] = engine.create_container(
            str(target.image_info["Id"]), target.command, name=names["target"], network=edge,
            ports={target.spec.status_port: ports["target"]}, env=target.target.env,
            labels={"io.chaosdrill.service": "target", "io.chaosdrill.drill-id": target.site.drill_id},
            user=target.user, volumes={target.site.control_dir: "/control", target.site.data_dir: "/data"})
        engine.network_connect(core, ids["target"])
        engine.start(ids["target"])
        parts = urlsplit(target.target.status_url)
        status_url = urlunsplit(parts._replace(netloc=f"127.0.0.1:{ports['target']}"))
        _wait(f"service ({status_url})", lambda: _answers(status_url), deadline)
    except (RuntimeError, DockerError, OSError) as exc:
        tail = ""
        if "ids" in locals() and "target" in ids:
            try:
                tail = " | ".join(engine.logs(ids["target"]).strip().splitlines()[-3:])
            except DockerError:
                pass
        remove(engine.run_label, engine.docker)
        raise RuntimeError(f"{exc}" + (f"; service log: {tail}" if tail else "")) from None
    except BaseException:
        remove(engine.run_label, engine.docker)
        raise
    return {"kind": "docker", "drill": target.site.drill_id, "run_id": run_id, "keep_id": keep_id,
            "label": engine.run_label, "docker": engine.docker, "containers": names,
            "status_url": status_url, "venue_url": venue_url, "proxy": proxy_url,
            "service_log": f"docker logs {names['target']}",
            "started_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
