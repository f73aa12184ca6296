"""The ``docker`` backend: venue, fault proxy and target as compose services on a real engine.

The venue and the proxy are session services started by pytest-docker (``get_docker_services``) and
reset before every drill; each drill gets a fresh target container with its own control and data
folders bind-mounted from the host, so STOP files, hooks, manifests and fingerprints are read the
same way as with the process backend. Process faults act on the container through the engine and
their proof is the engine's own state (``docker inspect``).
"""
from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from ..docker_engine import DockerEngine, DockerError, default_compose_file, reap
from ..target import RenderedTarget

VENUE_PORT = 8900
PROXY_API_PORT = 8474
PROXY_LISTEN_PORT = 8901          # inside the compose network: the target's only way to the venue
DEFAULT_IMAGE = "chaosdrill/target:latest"
# Keys the compose file sets for the container itself; the target file's values are host-side.
_CONTAINER_SIDE = {"OKX_REST_URL", "OKX_WS_PUBLIC_URL", "OKX_WS_PRIVATE_URL", "TARGET_HOST", "TARGET_PORT",
                   "TARGET_CONTROL_DIR", "TARGET_DATA_DIR"}


@dataclass
class DockerStack:
    """The session's compose project: where the venue and the proxy answer on the host."""

    engine: DockerEngine
    compose_file: Path
    project: str
    image: str
    venue_url: str
    proxy_api_url: str
    env: dict[str, str]
    image_info: dict[str, Any] = field(default_factory=dict)
    reaped: list[str] = field(default_factory=list)   # leftovers of killed runs removed at start

    def container(self, service: str) -> str | None:
        return self.engine.container_ids(self.project).get(service)


@contextlib.contextmanager
def docker_stack(run_id: str, workdir: Path, compose_file: Path | None = None, image: str | None = None,
                 compose: str | None = None) -> Iterator[DockerStack]:
    """Start venue + proxy with pytest-docker and wait until both answer; tear everything down after."""
    from pytest_docker.plugin import get_docker_services

    from ..docker_engine import compose_command

    compose = compose or compose_command()
    if compose is None:
        raise DockerError(["docker", "compose"], None, "", "neither `docker compose` nor `docker-compose` is installed")
    compose_file = Path(compose_file or default_compose_file()).resolve()
    image = image or os.environ.get("CHAOSDRILL_IMAGE", DEFAULT_IMAGE)
    project = f"chaosdrill_{run_id[-16:]}".replace("-", "_").lower()
    (workdir / "control").mkdir(parents=True, exist_ok=True)
    (workdir / "data").mkdir(parents=True, exist_ok=True)
    env = {"CHAOSDRILL_IMAGE": image, "CHAOSDRILL_RUN_ID": run_id,
           "CHAOSDRILL_TARGET_CONTROL_DIR": str(workdir / "control"),
           "CHAOSDRILL_TARGET_DATA_DIR": str(workdir / "data")}
    engine = DockerEngine(run_id, compose=compose)
    # What a killed run left (labelled io.chaosdrill.managed) goes first; an hour keeps a concurrent
    # session's resources safe.
    reaped = reap(older_than_s=3600)
    image_info = engine.image_info(image)  # raises DockerError with a clear message when not built
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)  # pytest-docker's compose calls read the process environment
    try:
        with get_docker_services(compose, str(compose_file), project, ["up -d venue proxy"],
                                 ["down -v --remove-orphans -t 5"]) as services:
            venue_url = f"http://127.0.0.1:{services.port_for('venue', VENUE_PORT)}"
            proxy_url = f"http://127.0.0.1:{services.port_for('proxy', PROXY_API_PORT)}"
            services.wait_until_responsive(lambda: _answers(f"{venue_url}/api/v5/public/time"), timeout=60, pause=0.2)
            services.wait_until_responsive(lambda: _answers(f"{proxy_url}/version"), timeout=60, pause=0.2)
            yield DockerStack(engine, compose_file, project, image, venue_url, proxy_url, env, image_info, reaped)
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        engine.teardown()


def _answers(url: str) -> bool:
    import requests

    try:
        return requests.get(url, timeout=1).status_code == 200
    except requests.RequestException:
        return False


class DockerTarget:
    """One drill's target container. ``start`` creates it (then restarts the same container, so a
    crash + restart keeps its data), ``kill``/``stop``/``pause`` act through the engine."""

    backend = "docker"

    def __init__(self, stack: DockerStack, target: RenderedTarget, workdir: Path, host_port: int,
                 proxy_listen: str) -> None:
        self.stack = stack
        self.engine = stack.engine
        self.target = target
        self.workdir = workdir
        self.log_dir = workdir / "logs"
        self.host_port = host_port
        self.proxy_listen = proxy_listen
        self.container: str | None = None
        self.starts = 0
        self.proofs: list[dict[str, Any]] = []

    def _env_file(self) -> Path:
        # The target file's environment applies in the container too, except what the compose file
        # sets for the container side (URLs through the proxy, container paths, the port).
        path = self.workdir / "target.env"
        lines = [f"{k}={v}" for k, v in self.target.env.items() if k not in _CONTAINER_SIDE and "\n" not in v]
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return path

    def start(self) -> None:
        self.starts += 1
        if self.container is not None:
            self.proofs.append(self.engine.start(self.container))
            return
        env = dict(self.stack.env)
        env.update({
            "CHAOSDRILL_TARGET_CONTROL_DIR": str(self.workdir / "control"),
            "CHAOSDRILL_TARGET_DATA_DIR": str(self.workdir / "data"),
            "CHAOSDRILL_TARGET_HOST_PORT": str(self.host_port),
            "CHAOSDRILL_TARGET_ENV_FILE": str(self._env_file()),
            "CHAOSDRILL_OKX_REST_URL": f"http://{self.proxy_listen}",
            "CHAOSDRILL_OKX_WS_PUBLIC_URL": f"ws://{self.proxy_listen}/ws/v5/public",
            "CHAOSDRILL_OKX_WS_PRIVATE_URL": f"ws://{self.proxy_listen}/ws/v5/private",
        })
        ids = self.engine.compose_up(self.stack.compose_file, self.stack.project, env,
                                     services=["--no-deps", "--force-recreate", "target"])
        self.container = ids.get("target")
        if self.container is None:
            raise DockerError(["compose", "up", "target"], None, "", f"no target container in project {self.stack.project}")

    def _state(self) -> dict[str, Any]:
        return self.engine.state(self.container) if self.container else {}

    def running(self) -> bool:
        st = self._state()
        return bool(st.get("Running")) and not st.get("Paused")

    def returncode(self) -> int | None:
        st = self._state()
        return None if not st or st.get("Running") else int(st.get("ExitCode", -1))

    def kill(self) -> dict[str, Any]:
        """SIGKILL the container's process; proof: the engine says not running with exit code 137."""
        assert self.container is not None
        sent = time.monotonic()
        proof = self.engine.kill(self.container, "KILL")
        self.proofs.append(proof)
        return {**proof, "sent_mono": sent, "killed_by_sigkill": bool(proof.get("proven"))}

    def wait_exit(self, timeout: float) -> int | None:
        return self.engine.wait_exit(self.container, timeout) if self.container else None

    def stop(self, timeout: float = 10.0) -> int | None:
        if self.container is None:
            return None
        try:
            st = self._state()
            if st.get("Paused"):
                self.engine.unpause(self.container)
            if st.get("Running"):
                self.proofs.append(self.engine.stop(self.container, grace_s=int(timeout)))
            return self.returncode()
        except DockerError:
            return None

    def remove(self) -> None:
        """Remove the container (after its logs were saved)."""
        if self.container is not None:
            self.logs()
            with contextlib.suppress(DockerError):
                self.engine._docker("rm", "-f", "-v", self.container)

    def pause(self) -> dict[str, Any]:
        assert self.container is not None
        proof = self.engine.pause(self.container)
        self.proofs.append(proof)
        return proof

    def resume(self) -> dict[str, Any]:
        assert self.container is not None
        proof = self.engine.unpause(self.container)
        self.proofs.append(proof)
        return proof

    def network_disconnect(self) -> dict[str, Any]:
        assert self.container is not None
        network = self.engine.compose_network(self.stack.project, "core")
        proof = self.engine.network_disconnect(network, self.container)
        self.proofs.append(proof)
        return {**proof, "disconnected": bool(proof.get("proven")), "mono": time.monotonic()}

    def network_connect(self) -> dict[str, Any]:
        assert self.container is not None
        network = self.engine.compose_network(self.stack.project, "core")
        proof = self.engine.network_connect(network, self.container)
        self.proofs.append(proof)
        return proof

    def logs(self) -> list[Path]:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        for service, cid in [("target", self.container), ("venue", self.stack.container("venue")),
                             ("proxy", self.stack.container("proxy"))]:
            if not cid:
                continue
            path = self.log_dir / f"container.{service}.log"
            with contextlib.suppress(DockerError):
                path.write_text(self.engine.logs(cid, timestamps=True), encoding="utf-8")
        # A removed container's log was saved before removal: keep returning it.
        out = sorted(self.log_dir.glob("container.*.log"))
        return out

    def describe(self) -> dict[str, Any]:
        ids = {}
        with contextlib.suppress(DockerError):
            ids = self.engine.container_ids(self.stack.project)
        if self.container:
            ids["target"] = self.container
        return {"backend": self.backend, "image": self.stack.image, "image_id": self.stack.image_info.get("Id"),
                "image_digests": self.stack.image_info.get("RepoDigests"), "compose_project": self.stack.project,
                "containers": ids, "engine_proofs": self.proofs, "starts": self.starts}
