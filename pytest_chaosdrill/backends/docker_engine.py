"""A thin layer over the ``docker`` CLI for the container backend.

Plain subprocess calls, no drill knowledge. Every fault primitive returns *proof read back from the
engine's own state* (``docker inspect``), never the mere fact that a command exited 0: a kill is
proven by ``State.Running == false`` and ``ExitCode == 128 + signal``, a pause by ``State.Paused``,
a network cut by the network missing from ``NetworkSettings.Networks`` (and the container missing
from the network's own ``Containers``).

Everything this module creates carries the labels ``io.chaosdrill.managed=true`` and
``io.chaosdrill.run-id=<run id>``. :meth:`DockerEngine.teardown` removes all of a run's resources
(also from ``atexit``, registered when the first engine is made, and on SIGTERM/SIGHUP); :func:`reap` removes what a killed run left behind.

Compose: :func:`compose_command` picks ``docker compose`` (v2 plugin) or ``docker-compose`` (v1,
Debian bookworm). pytest-docker's ``docker_services`` works with ``docker/docker-compose.yml`` when
its ``docker_compose_command`` fixture returns that command and ``CHAOSDRILL_RUN_ID`` plus the
target's folders are in the environment (see ``docs/docker.md``).
"""
from __future__ import annotations

import atexit
import json
import os
import shlex
import shutil
import signal as _signal
import subprocess
import threading
import time
import weakref
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

from ..errors import DockerError

MANAGED_KEY = "io.chaosdrill.managed"
RUN_ID_KEY = "io.chaosdrill.run-id"
MANAGED_LABEL = f"{MANAGED_KEY}=true"
#: A kept environment's (``--chaosdrill-keep``) resources carry ``io.chaosdrill.kept=<keep id>`` and
#: ``io.chaosdrill.kept-run-id=<run id>`` instead of the managed labels: no session's sweep of
#: ``io.chaosdrill.managed`` (nor its run-id teardown) takes them; only ``chaosdrill keep-reap`` and the
#: next drill session of the user who kept them remove them, by their own keep id.
KEPT_KEY = "io.chaosdrill.kept"
KEPT_RUN_ID_KEY = "io.chaosdrill.kept-run-id"
COMPOSE_PROJECT_KEY = "com.docker.compose.project"
COMPOSE_SERVICE_KEY = "com.docker.compose.service"

DEFAULT_TIMEOUT_S = 60.0
# Signals that end a container's PID 1 by default: after sending one, wait for the exit and prove it.
_TERMINATING = {"KILL", "TERM", "INT", "HUP", "QUIT", "ABRT", "USR1", "USR2"}


# --------------------------------------------------------------------------------------------
# discovery


def docker_cli() -> str | None:
    """Path of the ``docker`` CLI, or None (``CHAOSDRILL_DOCKER`` overrides the lookup)."""
    return shutil.which(os.environ.get("CHAOSDRILL_DOCKER", "docker"))


def engine_available(timeout: float = 15.0) -> tuple[bool, str]:
    """Whether a Docker engine answers here, and one human reason string either way.

    Used to SKIP docker drills with a single clear reason: never raises.
    """
    cli = docker_cli()
    if cli is None:
        return False, "docker CLI not found on PATH (install Docker Engine: https://docs.docker.com/engine/install/)"
    try:
        proc = subprocess.run(
            [cli, "version", "--format", "{{.Server.Version}} (API {{.Server.APIVersion}})"],
            capture_output=True, text=True, timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        return False, f"docker daemon did not answer within {timeout:.0f}s"
    except OSError as exc:
        return False, f"docker CLI {cli} cannot run: {exc}"
    err = (proc.stderr or "").strip()
    if proc.returncode == 0 and proc.stdout.strip():
        return True, f"docker engine {proc.stdout.strip()}"
    low = err.lower()
    last = err.splitlines()[-1] if err else f"exit {proc.returncode}"
    if "permission denied" in low:
        return False, f"no permission to use the docker daemon socket (run as root or join group docker): {last}"
    if "cannot connect" in low or "is the docker daemon running" in low or "no such file" in low:
        return False, "docker daemon not reachable (start it: `sudo systemctl start docker` or `dockerd &`; or set DOCKER_HOST)"
    return False, f"docker engine unusable: {last}"


def compose_command(timeout: float = 15.0) -> str | None:
    """The compose command that works here: ``docker compose`` (v2) or ``docker-compose`` (v1)."""
    cli = docker_cli()
    if cli is not None:
        try:
            if subprocess.run([cli, "compose", "version"], capture_output=True, timeout=timeout).returncode == 0:
                return "docker compose"
        except (subprocess.TimeoutExpired, OSError):
            pass
    return "docker-compose" if shutil.which("docker-compose") else None


def default_compose_file() -> Path:
    """``docker/docker-compose.yml`` of a source checkout, else the copy a wheel carries in
    ``pytest_chaosdrill/_data/docker/`` (the bundled data, :func:`pytest_chaosdrill.resources.data_dir`)."""
    from ..resources import data_dir

    candidate = data_dir("docker") / "docker-compose.yml"
    if candidate.is_file():
        return candidate
    raise FileNotFoundError("docker-compose.yml not found in the checkout (docker/) nor in pytest_chaosdrill/_data/docker/")


def docker_services_settings(compose: str | None = None) -> dict[str, Any]:
    """Values for pytest-docker's overridable session fixtures, so ``docker_services`` runs
    ``docker/docker-compose.yml`` with whichever compose is installed.

    pytest-docker 3.2 defaults to ``docker compose`` and ``up --build --wait``; ``--wait`` exists only
    in Compose v2, so with Debian's docker-compose 1.29 the setup is ``up -d`` (the compose file's
    ``depends_on: service_healthy`` still orders the start; wait for ports with
    ``docker_services.wait_until_responsive``).
    """
    cmd = compose or compose_command() or "docker compose"
    v2 = cmd.split()[:2] == ["docker", "compose"]
    return {
        "docker_compose_command": cmd,
        "docker_compose_file": str(default_compose_file()),
        "docker_setup": ["up --build --wait"] if v2 else ["up -d"],
        "docker_cleanup": ["down -v --remove-orphans -t 5"],
    }


# --------------------------------------------------------------------------------------------
# helpers


def _parse_time(value: str) -> datetime | None:
    """Docker's RFC 3339 timestamps (nanoseconds, 'Z' or offset) as aware datetimes."""
    if not value or value.startswith("0001-01-01"):
        return None
    v = value.strip().replace("Z", "+00:00")
    # Python parses at most 6 fractional digits; docker gives 9.
    if "." in v:
        head, rest = v.split(".", 1)
        digits = "".join(ch for ch in rest if ch.isdigit())
        tz = rest[len(digits):]
        v = f"{head}.{digits[:6]}{tz}"
    try:
        dt = datetime.fromisoformat(v)
    except ValueError:
        return None
    return dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)


def _signal_number(sig: str | int) -> int:
    if isinstance(sig, int):
        return sig
    name = sig.upper()
    name = name if name.startswith("SIG") else f"SIG{name}"
    return int(getattr(_signal, name))


def _signal_name(sig: str | int) -> str:
    if isinstance(sig, int):
        return _signal.Signals(sig).name.removeprefix("SIG")
    return sig.upper().removeprefix("SIG")


def _run(
    args: Sequence[str], *, timeout: float = DEFAULT_TIMEOUT_S, check: bool = True,
    env: Mapping[str, str] | None = None, cwd: str | Path | None = None,
) -> subprocess.CompletedProcess[str]:
    try:
        proc = subprocess.run(list(args), capture_output=True, text=True, timeout=timeout,
                              env=dict(env) if env is not None else None, cwd=cwd)
    except subprocess.TimeoutExpired as exc:
        err = exc.stderr.decode(errors="replace") if isinstance(exc.stderr, bytes) else (exc.stderr or "")
        raise DockerError(args, None, err, f"timed out after {timeout:.0f}s") from None
    if check and proc.returncode != 0:
        raise DockerError(args, proc.returncode, proc.stderr or proc.stdout)
    return proc


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


def reap(label: str = MANAGED_LABEL, older_than_s: float | None = None, *,
         docker: str | None = None, timeout: float = DEFAULT_TIMEOUT_S) -> list[str]:
    """Remove containers, then networks, then volumes carrying ``label`` (``key=value`` or ``key``).

    ``older_than_s`` keeps resources created less than that many seconds ago (so a reaper at session
    start does not remove what a concurrent run is using). Returns ``kind:name`` of what was removed.
    """
    cli = docker or docker_cli() or "docker"
    now = datetime.now(timezone.utc)

    def old_enough(created: str) -> bool:
        if older_than_s is None:
            return True
        ts = _parse_time(created)
        # Unknown age: keep it; the reaper must never take a live run's resources by mistake.
        return ts is not None and (now - ts).total_seconds() >= older_than_s

    removed: list[str] = []
    ids = _lines(_run([cli, "ps", "-aq", "--no-trunc", "--filter", f"label={label}"], timeout=timeout).stdout)
    if ids:
        info = json.loads(_run([cli, "inspect", *ids], timeout=timeout, check=False).stdout or "[]")
        victims = [c for c in info if old_enough(c.get("Created", ""))]
        if victims:
            # -v: also the anonymous volumes of those containers.
            _run([cli, "rm", "-f", "-v", *[c["Id"] for c in victims]], timeout=timeout, check=False)
            removed += [f"container:{c.get('Name', '').lstrip('/') or c['Id'][:12]}" for c in victims]
    nets = _lines(_run([cli, "network", "ls", "-q", "--no-trunc", "--filter", f"label={label}"], timeout=timeout).stdout)
    if nets:
        info = json.loads(_run([cli, "network", "inspect", *nets], timeout=timeout, check=False).stdout or "[]")
        for net in info:
            if old_enough(net.get("Created", "")):
                if _run([cli, "network", "rm", net["Id"]], timeout=timeout, check=False).returncode == 0:
                    removed.append(f"network:{net.get('Name', net['Id'][:12])}")
    vols = _lines(_run([cli, "volume", "ls", "-q", "--filter", f"label={label}"], timeout=timeout).stdout)
    if vols:
        info = json.loads(_run([cli, "volume", "inspect", *vols], timeout=timeout, check=False).stdout or "[]")
        for vol in info:
            if old_enough(vol.get("CreatedAt", "")):
                if _run([cli, "volume", "rm", "-f", vol["Name"]], timeout=timeout, check=False).returncode == 0:
                    removed.append(f"volume:{vol['Name']}")
    return removed


def leftovers(label: str = MANAGED_LABEL, *, docker: str | None = None) -> list[str]:
    """``kind:id`` of every container, network and volume that still carries ``label``."""
    cli = docker or docker_cli() or "docker"
    found = [f"container:{i}" for i in _lines(_run([cli, "ps", "-aq", "--filter", f"label={label}"]).stdout)]
    found += [f"network:{i}" for i in _lines(_run([cli, "network", "ls", "-q", "--filter", f"label={label}"]).stdout)]
    found += [f"volume:{i}" for i in _lines(_run([cli, "volume", "ls", "-q", "--filter", f"label={label}"]).stdout)]
    return found


# --------------------------------------------------------------------------------------------
# teardown on exit and on SIGTERM/SIGHUP

_live_engines: "weakref.WeakSet[DockerEngine]" = weakref.WeakSet()
_previous_handlers: dict[int, Any] = {}
_handler_lock = threading.Lock()
_atexit_registered = False


def _teardown_all() -> None:
    for engine in list(_live_engines):
        if not engine._closed:
            engine.teardown()


def _on_signal(signum: int, frame: Any) -> None:
    # Clean up, then let the signal do what it would have done. Re-delivering it with the default
    # disposition (rather than raising SystemExit) matters under pytest, which would report a
    # SystemExit as one failed test and carry on with the session.
    _teardown_all()
    previous = _previous_handlers.get(signum, _signal.SIG_DFL)
    if callable(previous) and previous not in (_signal.SIG_DFL, _signal.SIG_IGN):
        previous(signum, frame)
        return
    _signal.signal(signum, _signal.SIG_DFL)
    os.kill(os.getpid(), signum)


def _install_signal_handlers() -> None:
    """Hook SIGTERM/SIGHUP once, only from the main thread and only over the default handler:
    a host program's own handlers are kept (and chained)."""
    if threading.current_thread() is not threading.main_thread():
        return
    with _handler_lock:
        for sig in (_signal.SIGTERM, _signal.SIGHUP):
            if sig in _previous_handlers:
                continue
            current = _signal.getsignal(sig)
            if current is _signal.SIG_IGN:
                continue
            _previous_handlers[sig] = current
            _signal.signal(sig, _on_signal)


def _track(engine: "DockerEngine") -> None:
    """Remember ``engine`` for teardown at exit; the ``atexit`` hook is registered with the first one
    (importing this module registers nothing)."""
    global _atexit_registered
    with _handler_lock:
        _live_engines.add(engine)
        if not _atexit_registered:
            atexit.register(_teardown_all)
            _atexit_registered = True


# --------------------------------------------------------------------------------------------
# the engine


class DockerEngine:
    """Docker operations for one run: everything it creates is labelled with ``run_id`` and removed
    by :meth:`teardown` (context manager exit, ``atexit``, SIGTERM/SIGHUP), even after failures."""

    def __init__(self, run_id: str, *, docker: str | None = None, compose: str | None = None,
                 timeout: float = DEFAULT_TIMEOUT_S, handle_signals: bool = True) -> None:
        if not run_id or any(ch.isspace() or ch in ",=" for ch in run_id):
            raise ValueError(f"run_id must be non-empty without spaces, ',' or '=': {run_id!r}")
        self.run_id = run_id
        self.docker = docker or docker_cli() or "docker"
        self._compose = compose
        self.timeout = timeout
        self._projects: dict[str, tuple[Path, dict[str, str]]] = {}
        self._closed = False
        _track(self)
        if handle_signals:
            _install_signal_handlers()

    # -- labels -------------------------------------------------------------------------------
    @property
    def labels(self) -> dict[str, str]:
        """The labels put on everything this engine creates."""
        return {MANAGED_KEY: "true", RUN_ID_KEY: self.run_id}

    @property
    def run_label(self) -> str:
        """``io.chaosdrill.run-id=<run id>``: the filter for this run's resources."""
        return f"{RUN_ID_KEY}={self.run_id}"

    def _label_args(self, extra: Mapping[str, str] | None = None) -> list[str]:
        out: list[str] = []
        for key, value in {**(extra or {}), **self.labels}.items():
            out += ["--label", f"{key}={value}"]
        return out

    def _docker(self, *args: str, timeout: float | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
        return _run([self.docker, *args], timeout=timeout or self.timeout, check=check)

    # -- lifecycle ----------------------------------------------------------------------------
    def __enter__(self) -> "DockerEngine":
        return self

    def __exit__(self, *exc: object) -> None:
        self.teardown()

    def teardown(self) -> list[str]:
        """Remove every compose project started here and everything labelled with this run id.

        Idempotent; never raises (a teardown error must not hide the test's own failure): what it
        could not remove stays visible to :func:`leftovers` and the reaper.
        """
        removed: list[str] = []
        for project in list(self._projects):
            try:
                self.compose_down(project=project)
            except (DockerError, OSError):
                pass
        try:
            removed = reap(self.run_label, docker=self.docker, timeout=self.timeout)
        except (DockerError, OSError, json.JSONDecodeError):
            pass
        self._closed = True
        return removed

    def leftovers(self) -> list[str]:
        """What of this run still exists in the engine (empty after a clean teardown)."""
        return leftovers(self.run_label, docker=self.docker)

    # -- creating things ------------------------------------------------------------------------
    def create_network(self, name: str, *, internal: bool = False) -> str:
        """Create a labelled bridge network; returns its id."""
        self._closed = False
        args = ["network", "create", *self._label_args()]
        if internal:
            args.append("--internal")
        return self._docker(*args, name).stdout.strip()

    def _container_args(
        self, image: str, command: Sequence[str] | None, *, name: str | None, network: str | None,
        ports: Mapping[int, int | None] | None, env: Mapping[str, str] | None, labels: Mapping[str, str] | None,
        init: bool, user: str | None, volumes: Mapping[str | Path, str] | None, env_file: str | Path | None,
        extra_args: Sequence[str],
    ) -> list[str]:
        args = [*self._label_args(labels)]
        if init:
            args.append("--init")  # tini as PID 1, so SIGTERM ends the process promptly
        if name:
            args += ["--name", name]
        if network:
            args += ["--network", network]
        if user:
            args += ["--user", user]
        for cport, hport in (ports or {}).items():
            args += ["-p", f"127.0.0.1:{hport or ''}:{cport}"]
        for host_path, container_path in (volumes or {}).items():
            args += ["-v", f"{Path(host_path).resolve()}:{container_path}"]
        if env_file is not None:
            args += ["--env-file", str(env_file)]
        for key, value in (env or {}).items():
            args += ["-e", f"{key}={value}"]
        return [*args, *extra_args, image, *(command or [])]

    def run_container(
        self, image: str, command: Sequence[str] | None = None, *, name: str | None = None,
        network: str | None = None, ports: Mapping[int, int | None] | None = None,
        env: Mapping[str, str] | None = None, labels: Mapping[str, str] | None = None,
        init: bool = True, user: str | None = None, volumes: Mapping[str | Path, str] | None = None,
        extra_args: Sequence[str] = (),
    ) -> str:
        """``docker run -d`` a labelled container; ``ports`` maps container port to host port
        (None: a free one), always published on 127.0.0.1 only. Returns the container id."""
        self._closed = False
        args = self._container_args(image, command, name=name, network=network, ports=ports, env=env, labels=labels,
                                    init=init, user=user, volumes=volumes, env_file=None, extra_args=extra_args)
        return self._docker("run", "-d", *args).stdout.strip()

    def create_container(
        self, image: str, command: Sequence[str] | None = None, *, name: str | None = None,
        network: str | None = None, ports: Mapping[int, int | None] | None = None,
        env: Mapping[str, str] | None = None, labels: Mapping[str, str] | None = None,
        init: bool = True, user: str | None = None, volumes: Mapping[str | Path, str] | None = None,
        extra_args: Sequence[str] = (),
    ) -> str:
        """``docker create`` a labelled container (not started; attach more networks first, then
        :meth:`start`). ``command`` None keeps the image's CMD. ``env`` goes through a private
        (0600) env file deleted right after, so values never appear on a command line.
        Returns the container id."""
        import tempfile

        self._closed = False
        for key, value in (env or {}).items():
            if "\n" in value or "\r" in value or "=" in key or not key:
                raise ValueError(f"environment variable {key!r}: names must be non-empty without '=', "
                                 "values single-line (docker env files cannot carry newlines)")
        fd, env_path = tempfile.mkstemp(prefix="chaosdrill-env-", suffix=".list")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.writelines(f"{k}={v}\n" for k, v in (env or {}).items())
            args = self._container_args(image, command, name=name, network=network, ports=ports, env=None,
                                        labels=labels, init=init, user=user, volumes=volumes, env_file=env_path,
                                        extra_args=extra_args)
            return self._docker("create", *args).stdout.strip()
        finally:
            os.unlink(env_path)

    def remove_container(self, container: str) -> None:
        """``docker rm -f -v`` one container (with its anonymous volumes); a missing one is no error."""
        self._docker("rm", "-f", "-v", container, check=False)

    def network_inspect(self, network: str) -> dict[str, Any]:
        """``docker network inspect`` of one network (Name, Internal, IPAM, Containers ...)."""
        data: dict[str, Any] = json.loads(self._docker("network", "inspect", network).stdout)[0]
        return data

    def copy_to(self, container: str, src: str | Path, dest: str) -> None:
        """``docker cp`` a host file into a container (running or not) at ``dest``."""
        self._docker("cp", str(src), f"{container}:{dest}")

    def remove_network(self, network: str) -> None:
        """Remove one network; a missing one is no error."""
        self._docker("network", "rm", network, check=False)

    # -- images ---------------------------------------------------------------------------------
    def image_present(self, image: str) -> bool:
        """Whether the engine has ``image`` locally (no registry is asked)."""
        return self._docker("image", "inspect", image, check=False).returncode == 0

    def pull(self, image: str, timeout: float = 300.0) -> None:
        """``docker pull`` (raises :class:`DockerError` with the engine's reason when it fails)."""
        self._docker("pull", image, timeout=timeout)

    def build_image(self, context: str | Path, tag: str, *, dockerfile: str | Path | None = None,
                    labels: Mapping[str, str] | None = None, timeout: float = 900.0) -> str:
        """Build ``context`` into ``tag`` with the legacy builder (needs no registry and no buildx
        plugin, only what ``FROM`` names must be local); returns the image id. A failure raises
        :class:`DockerError` carrying the build output's tail."""
        args = [self.docker, "build", "--force-rm", "-t", tag]
        if dockerfile is not None:
            args += ["-f", str(dockerfile)]
        for key, value in (labels or {}).items():
            args += ["--label", f"{key}={value}"]
        _run([*args, str(context)], env={**os.environ, "DOCKER_BUILDKIT": "0"}, timeout=timeout)
        return str(self.image_info(tag)["Id"])

    # -- compose --------------------------------------------------------------------------------
    @property
    def compose(self) -> list[str]:
        """The compose command as argv (``docker compose`` or ``docker-compose``)."""
        if self._compose is None:
            self._compose = compose_command()
            if self._compose is None:
                raise DockerError(["docker", "compose"], None, "", "neither `docker compose` nor `docker-compose` is installed")
        return shlex.split(self._compose)

    def compose_env(self, env: Mapping[str, str] | None = None) -> dict[str, str]:
        """The environment compose runs with: ours, then ``env``, then this run's id."""
        return {**os.environ, **(env or {}), "CHAOSDRILL_RUN_ID": self.run_id}

    def compose_up(self, compose_file: str | Path, project: str, env: Mapping[str, str] | None = None,
                   services: Sequence[str] = (), timeout: float = 180.0) -> dict[str, str]:
        """``up -d`` a compose project (labelled with this run id through ``CHAOSDRILL_RUN_ID``);
        returns ``{service: container id}``. Registered for teardown before it starts."""
        self._closed = False
        path = Path(compose_file).resolve()
        full_env = self.compose_env(env)
        self._projects[project] = (path, full_env)
        base = [*self.compose, "-f", str(path), "-p", project]
        try:
            _run([*base, "up", "-d", *services], env=full_env, timeout=timeout, cwd=path.parent)
        except DockerError as exc:
            # An unhealthy or crashing service explains itself in its logs: put them in the error.
            logs = _run([*base, "logs", "--no-color", "--tail=40"], env=full_env, timeout=30,
                        cwd=path.parent, check=False).stdout
            raise DockerError(exc.cmd, exc.returncode, f"{exc.stderr}\n--- compose logs ---\n{logs[-4000:]}") from None
        return self.container_ids(project)

    def compose_down(self, compose_file: str | Path | None = None, project: str = "",
                     env: Mapping[str, str] | None = None, timeout: float = 120.0) -> list[str]:
        """``down -v --remove-orphans`` a project, then remove by label whatever compose missed.

        Returns ``kind:name`` of resources the label sweep still found (empty after a clean down).
        """
        path, known_env = self._projects.pop(project, (None, None))
        path = Path(compose_file).resolve() if compose_file else path
        full_env = self.compose_env(env) if env is not None or known_env is None else known_env
        if path is not None:
            _run([*self.compose, "-f", str(path), "-p", project, "down", "-v", "--remove-orphans", "-t", "5"],
                 env=full_env, timeout=timeout, cwd=path.parent, check=False)
        return reap(f"{COMPOSE_PROJECT_KEY}={project}", docker=self.docker, timeout=self.timeout)

    def container_ids(self, project: str) -> dict[str, str]:
        """``{service: container id}`` of a compose project's containers (running or not)."""
        out = self._docker("ps", "-a", "--no-trunc", "--filter", f"label={COMPOSE_PROJECT_KEY}={project}",
                           "--format", f'{{{{.ID}}}} {{{{.Label "{COMPOSE_SERVICE_KEY}"}}}}').stdout
        ids: dict[str, str] = {}
        for line in _lines(out):
            cid, _, service = line.partition(" ")
            ids[service or cid[:12]] = cid
        return ids

    def compose_network(self, project: str, network: str = "core") -> str:
        """Engine name of a compose project's network (``core`` is the one a drill cuts); looked up
        by compose's labels because compose v1 and v2 normalise project names differently."""
        out = self._docker("network", "ls", "--filter", f"label={COMPOSE_PROJECT_KEY}={project}",
                           "--filter", f"label=com.docker.compose.network={network}", "--format", "{{.Name}}").stdout
        names = _lines(out)
        if len(names) != 1:
            raise DockerError(["network", "ls", project, network], None, "",
                              f"expected one network {network!r} in project {project!r}, found {names}")
        return names[0]

    # -- reading state ------------------------------------------------------------------------
    def inspect(self, container: str) -> dict[str, Any]:
        """``docker inspect`` of one container."""
        data: dict[str, Any] = json.loads(self._docker("inspect", "--type", "container", container).stdout)[0]
        return data

    def state(self, container: str) -> dict[str, Any]:
        """``State`` of one container (Running, Paused, ExitCode, FinishedAt, Health ...)."""
        state: dict[str, Any] = self.inspect(container)["State"]
        return state

    def networks_of(self, container: str) -> list[str]:
        """Names of the networks the engine says the container is attached to."""
        return sorted((self.inspect(container).get("NetworkSettings") or {}).get("Networks") or {})

    def host_port(self, container: str, container_port: int, proto: str = "tcp") -> int:
        """Host port published for ``container_port`` (on 127.0.0.1)."""
        ports = (self.inspect(container).get("NetworkSettings") or {}).get("Ports") or {}
        bindings = ports.get(f"{container_port}/{proto}") or []
        for binding in bindings:
            if binding.get("HostPort"):
                return int(binding["HostPort"])
        raise DockerError(["port", container, str(container_port)], None, "", f"{container_port}/{proto} is not published")

    def image_info(self, image: str) -> dict[str, Any]:
        """Id, RepoTags, RepoDigests (empty for never-pushed local images), Created, Labels, Entrypoint, Cmd."""
        data = json.loads(self._docker("image", "inspect", image).stdout)[0]
        return {
            "Id": data.get("Id"),
            "RepoTags": data.get("RepoTags") or [],
            "RepoDigests": data.get("RepoDigests") or [],
            "Created": data.get("Created"),
            "Labels": (data.get("Config") or {}).get("Labels") or {},
            "Entrypoint": (data.get("Config") or {}).get("Entrypoint") or [],
            "Cmd": (data.get("Config") or {}).get("Cmd") or [],
        }

    def logs(self, container: str, *, tail: int | None = None, timestamps: bool = False,
             since: str | None = None) -> str:
        """The container's stdout and stderr, interleaved as the engine stored them (``since``: an
        RFC 3339 time, only lines after it)."""
        args = [self.docker, "logs"]
        if since is not None:
            args += ["--since", since]
        if tail is not None:
            args += ["--tail", str(tail)]
        if timestamps:
            args.append("--timestamps")
        try:
            proc = subprocess.run([*args, container], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                  timeout=self.timeout)
        except subprocess.TimeoutExpired:
            raise DockerError(args, None, "", f"timed out after {self.timeout:.0f}s") from None
        text = proc.stdout.decode("utf-8", errors="replace")
        if proc.returncode != 0:
            raise DockerError(args + [container], proc.returncode, text)
        return text

    def exec(self, container: str, command: Sequence[str], *, timeout: float | None = None,
             check: bool = False) -> subprocess.CompletedProcess[str]:
        """``docker exec`` a command in a running container."""
        return self._docker("exec", container, *command, timeout=timeout, check=check)

    def wait_for(self, container: str, predicate: Callable[[dict[str, Any]], bool], *,
                 timeout: float = 30.0, interval: float = 0.1, what: str = "condition") -> dict[str, Any]:
        """Poll ``docker inspect`` until ``predicate(inspect)`` holds; raise on the deadline."""
        deadline = time.monotonic() + timeout
        while True:
            data = self.inspect(container)
            if predicate(data):
                return data
            if time.monotonic() >= deadline:
                raise TimeoutError(f"{container}: {what} not reached within {timeout:.1f}s; State={data.get('State')}")
            time.sleep(interval)

    def wait_healthy(self, container: str, timeout: float = 60.0) -> dict[str, Any]:
        """Wait for the container's HEALTHCHECK to report healthy (fails fast if it exits)."""
        def ok(d: dict[str, Any]) -> bool:
            st = d["State"]
            if not st.get("Running") and st.get("Status") in ("exited", "dead"):
                raise DockerError(["wait-healthy", container], st.get("ExitCode"), self.logs(container, tail=40),
                                  f"container exited with {st.get('ExitCode')} before it was healthy")
            return (st.get("Health") or {}).get("Status") == "healthy"
        return self.wait_for(container, ok, timeout=timeout, interval=0.2, what="healthy")

    # -- faults (each returns proof read from docker inspect) -----------------------------------
    @staticmethod
    def _state_proof(data: dict[str, Any]) -> dict[str, Any]:
        st = data["State"]
        return {
            "container": data["Id"],
            "name": data.get("Name", "").lstrip("/"),
            "status": st.get("Status"),
            "running": st.get("Running"),
            "paused": st.get("Paused"),
            "exit_code": st.get("ExitCode"),
            "oom_killed": st.get("OOMKilled"),
            "pid": st.get("Pid"),
            "started_at": st.get("StartedAt"),
            "finished_at": st.get("FinishedAt"),
            "restart_count": data.get("RestartCount"),
            "inspected_at": datetime.now(timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z"),
        }

    def kill(self, container: str, signal: str | int = "KILL", timeout: float = 30.0) -> dict[str, Any]:
        """Send ``signal`` to the container's PID 1. For a terminating signal, wait for the exit and
        prove it: ``proven`` is true when the engine says not running and ExitCode == 128 + signum
        (137 for KILL)."""
        name = _signal_name(signal)
        signum = _signal_number(signal)
        before = self.inspect(container)
        sent_at = datetime.now(timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")
        self._docker("kill", "--signal", name, container)
        expected = 128 + signum
        if name in _TERMINATING:
            after = self.wait_for(container, lambda d: not d["State"].get("Running"), timeout=timeout,
                                  what=f"exit after SIG{name}")
        else:
            after = self.inspect(container)
        proof = self._state_proof(after)
        proof.update({
            "action": "kill", "signal": name, "signal_number": signum, "sent_at": sent_at,
            "pid_before": before["State"].get("Pid"), "started_at_before": before["State"].get("StartedAt"),
            "expected_exit_code": expected if name in _TERMINATING else None,
            "proven": (name in _TERMINATING and proof["running"] is False and proof["exit_code"] == expected
                       and _parse_time(proof["finished_at"] or "") is not None),
        })
        return proof

    def wait_exit(self, container: str, timeout: float) -> int | None:
        """Wait for the container to stop running; its ExitCode, or None on the deadline."""
        try:
            return int(self.wait_for(container, lambda d: not d["State"].get("Running"), timeout=timeout,
                                     what="exit")["State"]["ExitCode"])
        except TimeoutError:
            return None

    def stop(self, container: str, grace_s: int = 10) -> dict[str, Any]:
        """``docker stop``: SIGTERM, then SIGKILL after ``grace_s``; proof: not running, with the
        exit code the engine recorded (143 for a clean SIGTERM death, 137 if it had to be killed)."""
        self._docker("stop", "-t", str(grace_s), container, timeout=self.timeout + grace_s)
        proof = self._state_proof(self.inspect(container))
        proof.update({"action": "stop", "proven": proof["running"] is False})
        return proof

    def start(self, container: str, timeout: float = 30.0) -> dict[str, Any]:
        """Start a created or stopped container; proof: Running true with a new StartedAt (and Pid).

        Waits for the new StartedAt only, not for Running: a service that dies at once is then
        reported (``running`` false, its exit code) instead of timing out."""
        before = self.inspect(container)["State"]
        self._docker("start", container)
        after = self.wait_for(container, lambda d: d["State"].get("StartedAt") != before.get("StartedAt"),
                              timeout=timeout, what="started")
        proof = self._state_proof(after)
        proof.update({"action": "start", "started_at_before": before.get("StartedAt"),
                      "proven": proof["running"] is True and proof["started_at"] != before.get("StartedAt")})
        return proof

    def pause(self, container: str, timeout: float = 30.0) -> dict[str, Any]:
        """Freeze every process of the container (cgroup freezer); proof: State.Paused true."""
        self._docker("pause", container)
        proof = self._state_proof(self.wait_for(container, lambda d: bool(d["State"].get("Paused")),
                                                timeout=timeout, what="paused"))
        proof.update({"action": "pause", "proven": proof["paused"] is True and proof["status"] == "paused"})
        return proof

    def unpause(self, container: str, timeout: float = 30.0) -> dict[str, Any]:
        """Thaw a paused container; proof: State.Paused false and Running true."""
        self._docker("unpause", container)
        proof = self._state_proof(self.wait_for(container, lambda d: not d["State"].get("Paused"),
                                                timeout=timeout, what="unpaused"))
        proof.update({"action": "unpause", "proven": proof["paused"] is False and proof["running"] is True})
        return proof

    def _network_name(self, network: str) -> str:
        return self._docker("network", "inspect", "-f", "{{.Name}}", network).stdout.strip()

    def _network_members(self, network: str) -> list[str]:
        data = json.loads(self._docker("network", "inspect", network).stdout)[0]
        return sorted((data.get("Containers") or {}).keys())

    def network_disconnect(self, network: str, container: str, *, force: bool = False,
                           timeout: float = 30.0) -> dict[str, Any]:
        """Cut the container off ``network``; proof: the network is gone from the container's
        NetworkSettings.Networks and the container from the network's Containers."""
        name = self._network_name(network)
        before = self.networks_of(container)
        at = datetime.now(timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")
        self._docker("network", "disconnect", *(["--force"] if force else []), name, container)
        data = self.wait_for(container, lambda d: name not in ((d.get("NetworkSettings") or {}).get("Networks") or {}),
                             timeout=timeout, what=f"detached from {name}")
        after = sorted((data.get("NetworkSettings") or {}).get("Networks") or {})
        members = self._network_members(name)
        return {
            "action": "network_disconnect", "network": name, "container": data["Id"],
            "name": data.get("Name", "").lstrip("/"), "at": at,
            "networks_before": before, "networks_after": after, "network_members_after": members,
            "proven": name in before and name not in after and data["Id"] not in members,
        }

    def network_connect(self, network: str, container: str, *, aliases: Iterable[str] = (),
                        timeout: float = 30.0) -> dict[str, Any]:
        """Re-attach the container to ``network``; proof: the network is listed again, with an IP."""
        name = self._network_name(network)
        before = self.networks_of(container)
        args = ["network", "connect"]
        for alias in aliases:
            args += ["--alias", alias]
        at = datetime.now(timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")
        self._docker(*args, name, container)
        data = self.wait_for(container, lambda d: name in ((d.get("NetworkSettings") or {}).get("Networks") or {}),
                             timeout=timeout, what=f"attached to {name}")
        nets = (data.get("NetworkSettings") or {}).get("Networks") or {}
        return {
            "action": "network_connect", "network": name, "container": data["Id"],
            "name": data.get("Name", "").lstrip("/"), "at": at,
            "networks_before": before, "networks_after": sorted(nets),
            "ip_address": (nets.get(name) or {}).get("IPAddress"),
            "proven": name in nets,
        }
