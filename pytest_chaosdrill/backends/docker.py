"""The ``docker`` backend: any service image, drilled next to a containerised venue and fault proxy.

Session resources: the venue simulator and the fault proxy, two compose services from the project
image (``docker/docker-compose.yml``), started once by pytest-docker on the first drill and brought
down by :meth:`DockerBackend.close`. Per drill: the venue is reset, the proxy gets a fresh ``venue``
link (``proxy:8901`` -> ``venue:8900``), and the service runs from the image its target file's
``docker:`` section names (or builds), created with the engine directly: on the compose project's
internal ``core`` network (its only way to the proxy) and on an edge network of its own (where its
status port is published on 127.0.0.1), with the drill's control and data folders bind-mounted at
``/control`` and ``/data``. Faults act on that container through the engine and their proof is the
engine's own state (``docker inspect``). See ``docs/docker.md``.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import ipaddress
import os
import re
import socket
import string
import time
import uuid
from dataclasses import dataclass, field
from functools import lru_cache
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Mapping

from jsonschema import Draft202012Validator, ValidationError

from .docker_engine import DockerEngine, DockerError, compose_command, default_compose_file, engine_available, reap
from ..resources import specs_dir
from ..target import RenderedTarget, TargetConfigError
from ..tls import EXCHANGE_HOSTNAMES, ca_env
from ..wiring import ProxyLink
from .base import (DNS, EXIT, KILL, NETWORK_CUT, PAUSE, START, Backend, BackendSettings, BackendUnavailable,
                   CannotOnThisBackend, DrillSite,
                   Harness, key_placeholders)

if TYPE_CHECKING:  # pragma: no cover
    from ..target import TargetConfig

VENUE_PORT = 8900
PROXY_API_PORT = 8474
PROXY_LISTEN_PORT = 8901          # inside the proxy container: the target's only way to the venue
#: The project image the venue and the proxy run from (``CHAOSDRILL_IMAGE`` overrides it).
DEFAULT_IMAGE = "chaosdrill/target:latest"
CONTAINER_CONTROL_DIR = "/control"
CONTAINER_DATA_DIR = "/data"
INSTALL_HINT = "pip install 'pytest-chaosdrill[docker]'"
#: TLS (target file ``venue: {tls: true}``): the proxy container terminates TLS on these ports (OKX's
#: REST and WS use 443, its demo WS hosts 8443) and passes the plaintext to the ``venue`` link.
TLS_PORTS = (443, 8443)
PROXY_LEAF_PATH = "/tmp/chaosdrill-tls-leaf.pem"    # in the proxy container (docker cp'd, never mounted)
CONTAINER_TLS_DIR = "/chaosdrill-tls"                # in the target container: the session CA's ca/ folder
#: A ``dns`` drill's venue host: only the drill's DNS stub (pytest_chaosdrill.dnsstub) answers it.
VENUE_DNS_NAME = "venue.chaosdrill.internal"
DNS_CONTROL_PORT = 5380                              # in the DNS stub container: its HTTP control

#: JSON schema of a target file's ``docker:`` section. Its one home is ``specs/target.schema.json`` (which
#: ``load_target`` validates every target file against); :meth:`DockerSpec.from_config` checks a section
#: again with messages naming the file and the field, for configs built in code.
DOCKER_SECTION_SCHEMA: dict[str, Any] = json.loads(
    (specs_dir() / "target.schema.json").read_text(encoding="utf-8"))["properties"]["docker"]
DEFAULT_STATUS_PORT = int(DOCKER_SECTION_SCHEMA["properties"]["status_port"]["default"])

_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def _expand_env(text: str, where: str) -> str:
    """``${VAR}`` / ``${VAR:-default}`` from the process environment (compose's syntax)."""
    def sub(m: re.Match[str]) -> str:
        name, default = m.group(1), m.group(2)
        value = os.environ.get(name)
        if value:
            return value
        if default is None:
            raise TargetConfigError(f"{where}: environment variable {name} is not set (write ${{{name}:-default}})")
        return default
    return _ENV_REF.sub(sub, text)


@lru_cache(maxsize=1)
def _section_validator() -> Draft202012Validator:
    return Draft202012Validator(DOCKER_SECTION_SCHEMA)


def _error_order(error: ValidationError) -> tuple[int, int]:
    """Unknown keys first, then the fields in the schema's order, the missing image last."""
    fields = list(DOCKER_SECTION_SCHEMA["properties"])
    path = list(error.absolute_path)
    if error.validator == "additionalProperties" and not path:
        return (0, 0)
    if not path:
        return (2, 0)
    return (1, fields.index(path[0]) if path[0] in fields else len(fields))


def _explain(error: ValidationError) -> tuple[str, str]:
    """(field below ``docker.``, what is wrong) for a schema error, in the words of the target file's author."""
    path = [str(p) for p in error.absolute_path]
    if error.validator == "oneOf" and isinstance(error.instance, Mapping) and error.context:
        # build as a mapping: the mapping branch's own complaint (e.g. an unknown key) says more
        inner = [e for e in error.context if e.relative_schema_path and e.relative_schema_path[0] == 1]
        if inner:
            return _explain(min(inner, key=lambda e: len(e.absolute_path)))
    if error.validator == "additionalProperties":
        known = list(error.schema.get("properties", {}))
        unknown = sorted(set(error.instance) - set(known))
        return ".".join(path + unknown[:1]), f"unknown key; known: {', '.join(known)}"
    if not path:
        return "image", "required unless docker.build is given"
    field, top = ".".join(path), path[0]
    if top == "build" and len(path) == 1:
        return field, "must be a folder (string) or a mapping {context, dockerfile}"
    if top == "command":
        return "command", "must be a non-empty list of strings"
    if top == "status_port":
        return field, f"must be a port number 1-65535, got {error.instance!r}"
    if top == "env":
        return (field, "must be a mapping") if len(path) == 1 else (field, "must be a string, number or boolean")
    return field, "must be a non-empty string"


@dataclass(frozen=True)
class DockerSpec:
    """A target file's ``docker:`` section, validated."""

    image: str | None                  # the reference to run, or the tag a build gets
    build_context: Path | None = None
    dockerfile: Path | None = None     # absolute
    command: tuple[str, ...] | None = None
    status_port: int = DEFAULT_STATUS_PORT
    env: Mapping[str, str] = field(default_factory=dict)
    source: str = ""

    @classmethod
    def from_config(cls, config: "TargetConfig") -> "DockerSpec":
        """Validate ``config.docker``; :class:`TargetConfigError` names the target file and the field."""
        src = str(config.source or config.name)
        raw = config.docker

        def bad(fld: str, msg: str) -> TargetConfigError:
            return TargetConfigError(f"{src}: field 'docker.{fld}': {msg}" if fld else f"{src}: {msg}")

        if not raw:
            raise bad("", "the docker backend needs a 'docker:' section (docker.image, or docker.build)")
        if not isinstance(raw, Mapping):
            raise bad("", "field 'docker' must be a mapping")
        # What is valid is the schema's (specs/target.schema.json); here only its words, and the rules
        # a schema cannot state: folders that exist, the environment's ${VAR}s.
        errors = sorted(_section_validator().iter_errors(dict(raw)), key=_error_order)
        if errors:
            raise bad(*_explain(errors[0]))
        image = raw.get("image")
        build = raw.get("build")
        context = dockerfile = None
        if build is not None:
            if isinstance(build, str):
                build = {"context": build}
            base = config.source.resolve().parent if config.source else Path.cwd()
            context = (base / str(build.get("context", "."))).resolve()
            if not context.is_dir():
                raise bad("build.context", f"{context} is not a folder (relative paths start at {base})")
            dockerfile = (context / str(build.get("dockerfile", "Dockerfile"))).resolve()
            if not dockerfile.is_file():
                raise bad("build.dockerfile", f"{dockerfile} does not exist")
        if image is not None:
            image = _expand_env(image.strip(), f"{src}: field 'docker.image'")
        command = tuple(raw["command"]) if raw.get("command") is not None else None
        port = raw.get("status_port", DEFAULT_STATUS_PORT)
        env = raw.get("env") or {}
        return cls(image=image, build_context=context, dockerfile=dockerfile, command=command, status_port=port,
                   env={str(k): (str(v).lower() if isinstance(v, bool) else str(v)) for k, v in env.items()},
                   source=src)

    def build_tag(self, target_name: str) -> str:
        """The tag a build gets: ``docker.image``, else one derived from the target name and the context."""
        if self.image:
            return self.image
        key = hashlib.sha1(f"{self.build_context}\0{self.dockerfile}".encode()).hexdigest()[:12]
        return f"chaosdrill-build/{re.sub(r'[^a-z0-9_.-]+', '-', target_name.lower()).strip('-.') or 'target'}:{key}"


@dataclass
class DockerStack:
    """The session's compose project: where the venue and the proxy answer on the host."""

    engine: DockerEngine
    compose_file: Path
    project: str
    image: str
    venue_url: str
    proxy_api_url: str
    image_info: dict[str, Any] = field(default_factory=dict)
    reaped: list[str] = field(default_factory=list)   # leftovers of killed runs removed at start
    core_network: str = ""
    proxy_core_ip: str | None = None                  # set when a TLS target first needs it

    def container(self, service: str) -> str | None:
        return self.engine.container_ids(self.project).get(service)


@contextlib.contextmanager
def _environ(env: Mapping[str, str]) -> Iterator[None]:
    """Set ``env`` in ``os.environ`` for a while: pytest-docker's compose calls read the process environment."""
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _answers(url: str) -> bool:
    import requests

    try:
        return requests.get(url, timeout=1).status_code == 200
    except requests.RequestException:
        return False


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")


class DockerBackend(Backend):
    """Runs any service image (the target file's ``docker:`` section) against a venue and a fault
    proxy in containers; kill, pause and network cuts are proven by the engine's own state."""

    name = "docker"
    capabilities = frozenset({START, KILL, PAUSE, NETWORK_CUT, EXIT, DNS})
    extra = "docker"

    def __init__(self, settings: BackendSettings, *, compose_file: Path | None = None,
                 image: str | None = None) -> None:
        super().__init__(settings)
        #: the project image of the venue and the proxy
        self.image = image or os.environ.get("CHAOSDRILL_IMAGE") or DEFAULT_IMAGE
        self.compose_file = Path(compose_file) if compose_file else None
        # xdist workers of one session share its run id: each worker labels (and reaps) its own.
        self.run_id = settings.run_id + (f"-w{settings.worker_index}" if settings.worker_index else "")
        self.project = "chaosdrill_" + hashlib.sha1(self.run_id.encode()).hexdigest()[:12]
        self.engine: DockerEngine | None = None
        self.stack: DockerStack | None = None
        self._stack_cm: contextlib.ExitStack | None = None
        self._checked: str | None = None          # "" when available, else the reason
        self._compose: str | None = None
        self._images: dict[tuple[Any, ...], tuple[str, dict[str, Any], float | None]] = {}
        self._targets: list[DockerTarget] = []

    # -- availability ---------------------------------------------------------------------------
    def check_available(self) -> None:
        """Raise :class:`BackendUnavailable` (pytest-docker missing, no engine, no compose, project
        image not built); checked once per session."""
        if self._checked is None:
            self._checked = self._why_unavailable()
        if self._checked:
            raise BackendUnavailable(self._checked)

    def _why_unavailable(self) -> str:
        try:
            import pytest_docker  # noqa: F401
        except ImportError:
            return f"docker backend: pytest-docker is not installed ({INSTALL_HINT})"
        ok, reason = engine_available()
        if not ok:
            return f"docker backend: {reason}"
        self._compose = compose_command()
        if self._compose is None:
            return "docker backend: neither `docker compose` nor `docker-compose` is installed"
        probe = DockerEngine(self.run_id, compose=self._compose, handle_signals=False)
        if not probe.image_present(self.image):
            return (f"docker backend: image {self.image} (venue and proxy) is not built "
                    f"(build it: chaosdrill build-images --tag {self.image}, or set CHAOSDRILL_IMAGE)")
        return ""

    # -- session resources ------------------------------------------------------------------------
    def _ensure_stack(self) -> DockerStack:
        """Start venue + proxy with pytest-docker (once) and wait until both answer."""
        if self.stack is not None:
            return self.stack
        self.check_available()
        from pytest_docker.plugin import get_docker_services

        assert self._compose is not None
        compose_file = (self.compose_file or default_compose_file()).resolve()
        engine = DockerEngine(self.run_id, compose=self._compose)
        self.engine = engine
        env = {"CHAOSDRILL_IMAGE": self.image, "CHAOSDRILL_RUN_ID": self.run_id}
        # What a killed run left (labelled io.chaosdrill.managed) goes first; an hour keeps a
        # concurrent session's resources safe.
        reaped = reap(older_than_s=3600)
        cm = contextlib.ExitStack()
        try:
            cm.callback(engine.teardown)           # last: whatever the label sweep still finds
            cm.enter_context(_environ(env))        # compose `down` reads the same variables as `up`
            services = cm.enter_context(get_docker_services(
                self._compose, str(compose_file), self.project, ["up -d venue proxy"],
                ["down -v --remove-orphans -t 5"]))
            venue_url = f"http://127.0.0.1:{services.port_for('venue', VENUE_PORT)}"
            proxy_url = f"http://127.0.0.1:{services.port_for('proxy', PROXY_API_PORT)}"
            services.wait_until_responsive(lambda: _answers(f"{venue_url}/api/v5/public/time"), timeout=60, pause=0.2)
            services.wait_until_responsive(lambda: _answers(f"{proxy_url}/version"), timeout=60, pause=0.2)
            self.stack = DockerStack(engine, compose_file, self.project, self.image, venue_url, proxy_url,
                                     engine.image_info(self.image), reaped,
                                     engine.compose_network(self.project, "core"))
        except BaseException:
            cm.close()
            self.engine = None
            raise
        self._stack_cm = cm
        return self.stack

    @contextlib.contextmanager
    def harness(self, site: DrillSite, config: "TargetConfig") -> Iterator[Harness]:
        """The session's venue (reset) and a fresh ``venue`` link in the proxy container."""
        from ..proxy.client import ProxyClient
        from ..venue.client import VenueClient

        stack = self._ensure_stack()
        since = _utc_now()
        venue = VenueClient(stack.venue_url)
        proxy = ProxyClient(stack.proxy_api_url)
        names = ["venue", *(f"venue_tls{port}" for port in TLS_PORTS)] if config.tls else ["venue"]
        try:
            venue.reset()
            proxy.reset()
            existing = proxy.proxies()
            for name in names:
                if name in existing:
                    proxy.delete_proxy(name)
            proxy.create_proxy("venue", upstream=f"venue:{VENUE_PORT}", listen=f"0.0.0.0:{PROXY_LISTEN_PORT}")
            # A dns drill reaches the proxy by a name only its DNS stub answers (DockerTarget._create).
            via_dns = DNS in site.needs and not config.tls
            link = ProxyLink("venue", proxy, f"{VENUE_DNS_NAME if via_dns else 'proxy'}:{PROXY_LISTEN_PORT}",
                             in_process=False)
            key = config.drill_key()
            venue.add_key(key)
            info = {"venue_url": stack.venue_url, "proxy_api_url": stack.proxy_api_url,
                    "compose_project": stack.project, "since": since}
            harness = Harness(venue=venue, proxy=link, proxy_listen=link.listen,
                              local_hosts=("venue", "proxy", *((VENUE_DNS_NAME,) if via_dns else ())),
                              info=info, api_key=key)
            if config.tls:
                proxy_ip = self._tls_ready(stack)
                for port in TLS_PORTS:
                    # TLS terminators in front of the venue link: its toxics see (and act on) every connection.
                    proxy.create_proxy(f"venue_tls{port}", upstream=f"127.0.0.1:{PROXY_LISTEN_PORT}",
                                       listen=f"0.0.0.0:{port}", tls={"cert": PROXY_LEAF_PATH})
                harness.tls_listen = "proxy:443"
                harness.ca_file = f"{CONTAINER_TLS_DIR}/ca.pem"
                # OKX's names resolve to the proxy in the target container, which has no route out.
                harness.local_hosts += EXCHANGE_HOSTNAMES
                info.update({"tls_ports": list(TLS_PORTS), "okx_hostnames_to": proxy_ip})
            yield harness
        finally:
            for name in names:
                with contextlib.suppress(Exception):
                    proxy.delete_proxy(name)
            proxy.close()
            venue.close()

    def _proxy_core_ip(self, stack: DockerStack) -> str:
        """The proxy container's address on ``core``: what OKX's hostnames resolve to in a TLS target's
        container, and what the DNS stub of a ``dns`` drill answers for the venue's name."""
        pid = stack.container("proxy")
        if not pid:
            raise RuntimeError(f"docker backend: no proxy container in compose project {stack.project}")
        nets = (stack.engine.inspect(pid).get("NetworkSettings") or {}).get("Networks") or {}
        ip = (nets.get(stack.core_network) or {}).get("IPAddress")
        if not ip:
            raise RuntimeError(f"docker backend: the proxy container has no address on {stack.core_network}")
        return str(ip)

    def _tls_ready(self, stack: DockerStack) -> str:
        """Put the session CA's listener certificate into the proxy container (once); the proxy's
        address on ``core`` (what OKX's hostnames resolve to in a TLS target's container)."""
        if stack.proxy_core_ip is None:
            pid = stack.container("proxy")
            if not pid:
                raise RuntimeError(f"docker backend: no proxy container in compose project {stack.project}")
            stack.engine.copy_to(pid, self.session_ca().files().leaf_file, PROXY_LEAF_PATH)
            stack.proxy_core_ip = self._proxy_core_ip(stack)
        return stack.proxy_core_ip

    def _image(self, spec: DockerSpec, config: "TargetConfig") -> tuple[str, dict[str, Any], float | None]:
        """(reference, image_info, build seconds or None): built once per session, or local, or pulled."""
        assert self.engine is not None
        key = (spec.image, spec.build_context, spec.dockerfile)
        if key in self._images:
            return self._images[key]
        if spec.build_context is not None:
            tag = spec.build_tag(config.name)
            t0 = time.monotonic()
            self.engine.build_image(spec.build_context, tag, dockerfile=spec.dockerfile,
                                    labels={"io.chaosdrill.image": "service", "io.chaosdrill.target": config.name})
            built: float | None = round(time.monotonic() - t0, 3)
        else:
            assert spec.image is not None
            tag, built = spec.image, None
            if not self.engine.image_present(tag):
                try:
                    self.engine.pull(tag)
                except DockerError as exc:
                    raise BackendUnavailable(
                        f"docker backend: {spec.source}: docker.image {tag} is not in the local engine and "
                        f"cannot be pulled ({exc.stderr.splitlines()[-1] if exc.stderr else exc}); build it, "
                        "or give docker.build") from None
        out = (tag, self.engine.image_info(tag), built)
        self._images[key] = out
        return out

    def create_target(self, config: "TargetConfig", site: DrillSite, harness: Harness) -> "DockerTarget":
        """The drill's service container (created on its first start), its target file rendered
        twice: as the container sees it (env, command) and as the host reads it (URLs, files)."""
        spec = DockerSpec.from_config(config)
        stack = self._ensure_stack()
        ref, info, built = self._image(spec, config)
        common = {**harness.placeholders(), "drill_id": site.drill_id, **key_placeholders(harness)}
        inside = {**common, "host": "0.0.0.0", "status_port": spec.status_port, "python": "python3",
                  "control_dir": CONTAINER_CONTROL_DIR, "data_dir": CONTAINER_DATA_DIR}
        suffix = uuid.uuid4().hex[:8]
        sealed: Sealed | None = None
        if harness.tls_listen:
            sealed = self._seal(stack, suffix, harness)
            status_host, host_port = sealed.status_ip, spec.status_port
        else:
            status_host, host_port = "127.0.0.1", _free_port()
        host_view = config.render({**common, "host": status_host, "status_port": host_port,
                                   "control_dir": str(site.control_dir), "data_dir": str(site.data_dir)})
        env = {k: _fill(config, f"env.{k}", v, inside) for k, v in config.env.items()}
        if harness.ca_file:
            env = {**ca_env(harness.ca_file), **env}     # the target file's own env wins
        env.update({k: _fill(config, f"docker.env.{k}", v, inside) for k, v in spec.env.items()})
        command = ([_fill(config, f"docker.command[{i}]", c, inside) for i, c in enumerate(spec.command)]
                   if spec.command else None)
        # What the plugin reads (status, files, hooks) is host-side; env and command are what the
        # container really gets, so the live-environment interlock and the secret redaction see
        # the real values.
        rendered = RenderedTarget(config=config, command=command or list(info.get("Cmd") or []), env=env,
                                  status_url=host_view.status_url, health_url=host_view.health_url,
                                  files=host_view.files, hooks=host_view.hooks, hooks_log=host_view.hooks_log)
        dns = (DNSStubContainer(stack, f"{stack.project}_{suffix}_dns", self._proxy_core_ip(stack), site.drill_id)
               if DNS in site.needs and sealed is None else None)
        target = DockerTarget(self, stack, site, rendered, spec, ref, info, command, host_port, built,
                              suffix=suffix, sealed=sealed, dns=dns)
        self._targets.append(target)
        return target

    def _seal(self, stack: DockerStack, suffix: str, harness: Harness) -> "Sealed":
        """A TLS target's edge network, created now and internal like ``core``: the container gets
        no route out. The engine publishes no port on an internal network, so the host reads the
        status endpoint at the container's own address there: the first host address after the
        gateway (the container is alone on it; :meth:`DockerTarget.start` checks it got that one)."""
        edge = f"{stack.project}_{suffix}_edge"
        stack.engine.create_network(edge, internal=True)
        ipam = (stack.engine.network_inspect(edge).get("IPAM") or {}).get("Config") or [{}]
        net = ipaddress.ip_network(ipam[0]["Subnet"])
        gateway = ipam[0].get("Gateway")
        ip = next(str(h) for h in net.hosts() if str(h) != gateway)
        harness.local_hosts += (ip,)     # the status endpoint's host: a container this drill created
        return Sealed(edge_network=edge, status_ip=ip, proxy_ip=self._tls_ready(stack),
                      ca_dir=self.session_ca().files().ca_dir)

    def close(self) -> None:
        """Remove every target container still there (logs saved first), then the compose project
        and everything labelled with this backend's run id."""
        for target in list(self._targets):
            with contextlib.suppress(Exception):
                target.close()
        self._targets.clear()
        cm, self._stack_cm, self.stack = self._stack_cm, None, None
        if cm is not None:
            cm.close()
        self.engine = None
        self.close_ca()


@dataclass(frozen=True)
class Sealed:
    """A TLS target's container: only internal networks, OKX's hostnames mapped to the proxy, no
    DNS beyond the engine's own names, the session CA's certificate mounted read-only."""

    edge_network: str     # created internal by the backend before the target
    status_ip: str        # the container's address on it, where the host reads the status endpoint
    proxy_ip: str         # the proxy's address on core: what OKX's hostnames resolve to
    ca_dir: Path          # host folder holding ca.pem only

    def container_args(self) -> list[str]:
        # --dns 127.0.0.1: the engine's resolver answers container names and asks nothing else on
        # the network (a lookup of any other name fails inside the container's own loopback).
        args = ["--dns", "127.0.0.1"]
        for host in EXCHANGE_HOSTNAMES:
            args += ["--add-host", f"{host}:{self.proxy_ip}"]
        return args

    def describe(self) -> dict[str, Any]:
        return {"edge_network": self.edge_network, "status_ip": self.status_ip,
                "okx_hostnames": {h: self.proxy_ip for h in EXCHANGE_HOSTNAMES}, "ca_mount": CONTAINER_TLS_DIR}


def _fill(config: "TargetConfig", where: str, text: str, ctx: Mapping[str, Any]) -> str:
    try:
        return string.Formatter().vformat(text, (), ctx)
    except KeyError as exc:
        raise TargetConfigError(f"{config.source or config.name}: field '{where}': unknown placeholder "
                                f"{{{exc.args[0]}}}; known: {', '.join(sorted(ctx))}") from None


class DNSStubContainer:
    """A ``dns`` drill's DNS stub (``python -m pytest_chaosdrill.dnsstub`` from the project image) on
    the target's edge network: it answers :data:`VENUE_DNS_NAME` with the proxy's address until told
    to fail it. The target gets ``--dns <its address>``; the engine's embedded resolver still answers
    container names and forwards the rest to it. Its control port is published on host loopback."""

    def __init__(self, stack: DockerStack, name: str, proxy_ip: str, drill_id: str) -> None:
        self.stack, self.name, self.proxy_ip, self.drill_id = stack, name, proxy_ip, drill_id
        self.container: str | None = None
        self.ip: str | None = None
        self.control_url = ""

    def start(self, network: str, timeout: float = 30.0) -> list[str]:
        """Start it on ``network``; the ``docker create`` arguments the target needs to use it."""
        import requests

        engine, host_port = self.stack.engine, _free_port()
        self.container = engine.create_container(
            self.stack.image, ["python3", "-m", "pytest_chaosdrill.dnsstub", "--host", "0.0.0.0", "--port", "53",
                               "--control-host", "0.0.0.0", "--control-port", str(DNS_CONTROL_PORT),
                               "--record", f"{VENUE_DNS_NAME}={self.proxy_ip}"],
            name=self.name, network=network, ports={DNS_CONTROL_PORT: host_port},
            labels={"io.chaosdrill.service": "dns-stub", "io.chaosdrill.drill-id": self.drill_id})
        engine.start(self.container)
        nets = (engine.inspect(self.container).get("NetworkSettings") or {}).get("Networks") or {}
        self.ip = (nets.get(network) or {}).get("IPAddress")
        if not self.ip:
            raise RuntimeError(f"docker backend: DNS stub container {self.name} has no address on {network}")
        self.control_url = f"http://127.0.0.1:{host_port}"
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.state()
                break
            except requests.RequestException:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"docker backend: DNS stub {self.name} did not answer on "
                                       f"{self.control_url} within {timeout:.0f} s") from None
                time.sleep(0.1)
        return ["--dns", self.ip]

    def _call(self, method: str, path: str) -> dict[str, Any]:
        import requests

        r = requests.request(method, self.control_url + path, timeout=5)
        r.raise_for_status()
        return dict(r.json())

    def state(self) -> dict[str, Any]:
        return self._call("GET", "/state")

    def set_mode(self, mode: str) -> dict[str, Any]:
        return self._call("POST", f"/mode/{mode}")

    def describe(self) -> dict[str, Any]:
        return {"container": self.name, "address": self.ip, "venue_name": VENUE_DNS_NAME, "answers": self.proxy_ip}

    def close(self) -> None:
        if self.container is not None:
            self.stack.engine.remove_container(self.container)
            self.container = None


class DockerTarget:
    """One drill's service container. The first :meth:`start` creates it; later starts restart the
    same container (so a crash + restart keeps its data); faults act through the engine."""

    backend = "docker"
    shares_host_clock = True   # containers of a local engine share the host kernel's monotonic clock

    def __init__(self, backend: DockerBackend, stack: DockerStack, site: DrillSite, target: RenderedTarget,
                 spec: DockerSpec, image: str, image_info: dict[str, Any], command: list[str] | None,
                 host_port: int, built_s: float | None, *, suffix: str | None = None,
                 sealed: Sealed | None = None, dns: DNSStubContainer | None = None) -> None:
        self._backend = backend
        self.stack = stack
        self.engine = stack.engine
        self.site = site
        self.target = target
        self.spec = spec
        self.image = image
        self.image_info = image_info
        self.command = command
        self.host_port = host_port
        self.built_s = built_s
        self.log_dir = site.log_dir
        suffix = suffix or uuid.uuid4().hex[:8]
        self.sealed = sealed
        self.dns = dns
        self.name = f"chaosdrill-{re.sub(r'[^a-zA-Z0-9_.-]+', '-', site.drill_id)[:40].strip('-.') or 'drill'}-{suffix}"
        self.edge_network = f"{stack.project}_{suffix}_edge"
        self.user = f"{os.getuid()}:{os.getgid()}"
        self.container: str | None = None
        self.starts = 0
        self.proofs: list[dict[str, Any]] = []
        self._closed = False
        self._edge_created = sealed is not None    # a sealed edge network exists already
        self._since = _utc_now()

    # -- lifecycle ----------------------------------------------------------------------------
    def _create(self) -> str:
        for d in (self.site.control_dir, self.site.data_dir, self.log_dir):
            d.mkdir(parents=True, exist_ok=True)
        if not self._edge_created:
            self.engine.create_network(self.edge_network)
            self._edge_created = True
        dns_args = self.dns.start(self.edge_network) if self.dns is not None else []
        volumes: dict[str | Path, str] = {self.site.control_dir: CONTAINER_CONTROL_DIR,
                                          self.site.data_dir: CONTAINER_DATA_DIR}
        if self.sealed is not None:
            volumes[self.sealed.ca_dir] = f"{CONTAINER_TLS_DIR}:ro"
        cid = self.engine.create_container(
            str(self.image_info["Id"]), self.command, name=self.name, network=self.edge_network,
            # Sealed: nothing to publish (an internal network); the host reads the container's address.
            ports=None if self.sealed else {self.spec.status_port: self.host_port}, env=self.target.env,
            labels={"io.chaosdrill.service": "target", "io.chaosdrill.drill-id": self.site.drill_id,
                    "io.chaosdrill.target": self.target.config.name},
            # The host user, so what the service writes in /data and /control pytest can read and delete.
            user=self.user, volumes=volumes,
            extra_args=self.sealed.container_args() if self.sealed else dns_args)
        self.container = cid
        # Attached before the first start, so the service never runs without its way to the proxy.
        self.proofs.append(self.engine.network_connect(self.stack.core_network, cid))
        return cid

    def start(self) -> None:
        """Create (first time) and start the container; its start proof goes to :meth:`describe`."""
        if self._closed:
            raise RuntimeError(f"target container {self.name} was closed")
        self.starts += 1
        cid = self.container or self._create()
        self.proofs.append(self.engine.start(cid))
        if self.sealed is not None:
            nets = (self.engine.inspect(cid).get("NetworkSettings") or {}).get("Networks") or {}
            got = (nets.get(self.edge_network) or {}).get("IPAddress")
            if got != self.sealed.status_ip:
                raise RuntimeError(f"docker backend: target container {self.name} got {got} on {self.edge_network}, "
                                   f"not {self.sealed.status_ip} where its status endpoint is read")

    def _state(self) -> dict[str, Any]:
        return self.engine.state(self.container) if self.container and not self._closed else {}

    def running(self) -> bool:
        """True while the container runs (paused included: a frozen service has not exited)."""
        return bool(self._state().get("Running"))

    def returncode(self) -> int | None:
        st = self._state()
        return None if not st or st.get("Running") else int(st.get("ExitCode", -1))

    def wait_exit(self, timeout: float) -> int | None:
        return self.engine.wait_exit(self.container, timeout) if self.container and not self._closed else None

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM, SIGKILL after ``timeout`` (``docker stop``); the exit code, or None when never started."""
        if self.container is None or self._closed:
            return None
        try:
            st = self._state()
            if st.get("Paused"):
                self.proofs.append(self.engine.unpause(self.container))
            if st.get("Running"):
                self.proofs.append(self.engine.stop(self.container, grace_s=max(1, int(timeout))))
            return self.returncode()
        except DockerError:
            return None

    def _need(self) -> str:
        if self.container is None or self._closed:
            raise RuntimeError(f"target container {self.name} is not started")
        return self.container

    # -- faults (proof: the engine's own state) -----------------------------------------------
    def kill(self) -> dict[str, Any]:
        """SIGKILL the container; proof: the engine says not running with exit code 137."""
        cid = self._need()
        sent = time.monotonic()
        proof = self.engine.kill(cid, "KILL")
        self.proofs.append(proof)
        return {**proof, "sent_mono": sent, "returncode": proof.get("exit_code"),
                "killed_by_sigkill": bool(proof.get("proven"))}

    def pause(self) -> dict[str, Any]:
        """Freeze every process of the container; proof: ``State.Paused``."""
        proof = self.engine.pause(self._need())
        self.proofs.append(proof)
        return {**proof, "mono": time.monotonic()}

    def resume(self) -> dict[str, Any]:
        proof = self.engine.unpause(self._need())
        self.proofs.append(proof)
        return proof

    def network_disconnect(self) -> dict[str, Any]:
        """Cut the container off ``core`` (venue and proxy); its edge network, so the host's view of
        its status port, stays. Proof: ``core`` gone from the container's networks."""
        proof = self.engine.network_disconnect(self.stack.core_network, self._need())
        self.proofs.append(proof)
        return {**proof, "disconnected": bool(proof.get("proven")), "mono": time.monotonic()}

    def network_connect(self) -> dict[str, Any]:
        proof = self.engine.network_connect(self.stack.core_network, self._need())
        self.proofs.append(proof)
        return {**proof, "connected": bool(proof.get("proven"))}

    # -- evidence -------------------------------------------------------------------------------
    def _stub(self) -> DNSStubContainer:
        if self.dns is None or self.dns.container is None:
            raise CannotOnThisBackend(f"target container {self.name} has no DNS stub (its drill does not need dns)")
        return self.dns

    def dns_fail(self, mode: str) -> dict[str, Any]:
        """Make the DNS stub fail the venue's name (``nxdomain``/``servfail``); its state before."""
        before = self._stub().state()
        self._stub().set_mode(mode)
        return before

    def dns_restore(self) -> dict[str, Any]:
        return self._stub().set_mode("answer")

    def dns_state(self) -> dict[str, Any]:
        return self._stub().state()

    def logs(self) -> list[Path]:
        """``container.{target,venue,proxy}.log`` in the drill's log folder (venue and proxy: since
        this target was created); after :meth:`close`, the copies saved before removal."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        if not self._closed:
            sources = [("target", self.container, None)]
            with contextlib.suppress(DockerError):
                sources += [(s, self.stack.container(s), self._since) for s in ("venue", "proxy")]
            for service, cid, since in sources:
                if not cid:
                    continue
                with contextlib.suppress(DockerError):
                    text = self.engine.logs(cid, timestamps=True, since=since)
                    (self.log_dir / f"container.{service}.log").write_text(text, encoding="utf-8")
        # The service's own log last: the runner quotes the last log's tail when start-up fails.
        return sorted(self.log_dir.glob("container.*.log"), key=lambda p: (p.name == "container.target.log", p.name))

    def describe(self) -> dict[str, Any]:
        ids: dict[str, str] = {}
        with contextlib.suppress(DockerError):
            ids = dict(self.engine.container_ids(self.stack.project))
        if self.container:
            ids["target"] = self.container
        return {
            "backend": self.backend, "image": self.image, "image_id": self.image_info.get("Id"),
            "image_digests": self.image_info.get("RepoDigests"), "image_built_s": self.built_s,
            "harness_image": self.stack.image, "harness_image_id": self.stack.image_info.get("Id"),
            "compose_project": self.stack.project, "container_name": self.name, "containers": ids,
            "networks": {"core": self.stack.core_network, "edge": self.edge_network},
            "status_port": {"container": self.spec.status_port, "host": self.host_port},
            **({"sealed": self.sealed.describe()} if self.sealed else {}),
            **({"dns_stub": self.dns.describe()} if self.dns else {}),
            "user": self.user, "command": self.command if self.command is not None else "image default",
            "env_keys": sorted(self.target.env), "starts": self.starts, "engine_proofs": self.proofs,
        }

    def close(self) -> None:
        """Save the logs, remove the container and its edge network. Idempotent."""
        if self._closed:
            return
        if self.container is not None:
            self.logs()
            self.engine.remove_container(self.container)
        if self.dns is not None:
            self.dns.close()
        if self._edge_created:
            self.engine.remove_network(self.edge_network)
        self._closed = True
        with contextlib.suppress(ValueError):
            self._backend._targets.remove(self)


@contextlib.contextmanager
def docker_stack(run_id: str, workdir: Path | None = None, compose_file: Path | None = None,
                 image: str | None = None) -> Iterator[DockerStack]:
    """The venue + proxy stack alone (what :meth:`DockerBackend.harness` starts on the first drill),
    for scripts; removed on exit. ``workdir`` is accepted for older callers and unused."""
    backend = DockerBackend(BackendSettings(run_id=run_id), compose_file=compose_file, image=image)
    try:
        yield backend._ensure_stack()
    finally:
        backend.close()
