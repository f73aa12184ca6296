"""Tests of the docker backend (pytest_chaosdrill.backends.docker) against a real engine.

The service under drill is a few-line Python HTTP server that is NOT the reference target: its image
is built in the test from ``chaosdrill/base:bookworm`` through the target file's ``docker.build``,
and driven through :class:`DockerBackend` exactly as the plugin drives it (harness, create_target,
start, faults, close). The reference target then runs through its own target file's ``docker:``
section. Without an engine or images every engine test SKIPS with one reason;
``CHAOSDRILL_REQUIRE_DOCKER=1`` turns that skip into a failure.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any, Callable, Iterator

import jsonschema
import pytest
import requests
import yaml

from pytest_chaosdrill.backends import docker_engine as de
from pytest_chaosdrill.backends.base import (ALL_CAPABILITIES, NODE_LOSS, OOM_KILL, POD_DELETE, POD_NETWORK_CUT, POD_TEMPLATE, SCALE, BackendSettings, BackendUnavailable, DrillSite,
                                             Harness)
from pytest_chaosdrill.backends.docker import (DOCKER_SECTION_SCHEMA, DockerBackend, DockerSpec, DockerTarget,
                                               PROXY_LISTEN_PORT)
from pytest_chaosdrill.target import TargetConfig, TargetConfigError, load_target

REPO = Path(__file__).resolve().parents[2]
IMAGE = os.environ.get("CHAOSDRILL_IMAGE", "chaosdrill/target:latest")
BASE_IMAGE = "chaosdrill/base:bookworm"

SERVICE = r'''
import json, os, socket, threading, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

DATA, CONTROL = os.environ["SVC_DATA"], os.environ["SVC_CONTROL"]
with open(os.path.join(DATA, "starts.log"), "a") as fh:
    fh.write(f"{time.time()}\n")
with open(os.path.join(DATA, "starts.log")) as fh:
    starts = len(fh.read().splitlines())
hello = {k: v for k, v in os.environ.items() if k.startswith("SVC_")}
hello.update(uid=os.getuid(), gid=os.getgid(), starts=starts)
with open(os.path.join(DATA, "hello.json"), "w") as fh:
    json.dump(hello, fh)


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/status":
            body = {"state": "ok", **hello}
        elif self.path == "/probe-venue":   # can the service reach its venue URL's host:port?
            u = urlsplit(os.environ["SVC_VENUE"])
            try:
                socket.create_connection((u.hostname, u.port), timeout=2).close()
                body = {"reached": True}
            except OSError as exc:
                body = {"reached": False, "error": str(exc)}
        else:
            self.send_error(404)
            return
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, fmt, *args):
        print("tiny-service", fmt % args, flush=True)


def watch_control():
    while not os.path.exists(os.path.join(CONTROL, "EXIT")):
        time.sleep(0.05)
    print("tiny-service: EXIT file seen, exiting 3", flush=True)
    os._exit(3)


threading.Thread(target=watch_control, daemon=True).start()
print(f"tiny-service start {starts} listening on {os.environ['SVC_HOST']}:{os.environ['SVC_PORT']}", flush=True)
ThreadingHTTPServer((os.environ["SVC_HOST"], int(os.environ["SVC_PORT"])), Handler).serve_forever()
'''

TARGET_FILE = """
name: tiny_service
command: ["{python}", "svc.py"]          # the process backend's; the docker backend uses the image's CMD
env:
  SVC_VENUE: "{venue_rest_url}"
  SVC_WS: "{venue_ws_public_url}"
  SVC_HOST: "{host}"
  SVC_PORT: "{status_port}"
  SVC_DATA: "{data_dir}"
  SVC_CONTROL: "{control_dir}"
  SVC_DRILL: "{drill_id}"
  SVC_PY: "{python}"
status_url: "http://{host}:{status_port}/status"
files:
  hello: "{data_dir}/hello.json"
docker:
  image: chaosdrill-test/tiny-service:latest   # the tag the build gets (a stable one: no image per test run)
  build: {context: ".", dockerfile: Dockerfile}
  status_port: 9000
  env: {SVC_EXTRA: "extra-{drill_id}"}
"""


def _skip_or_fail(reason: str) -> None:
    if os.environ.get("CHAOSDRILL_REQUIRE_DOCKER") == "1":
        pytest.fail(f"CHAOSDRILL_REQUIRE_DOCKER=1 but {reason}")
    pytest.skip(reason)


def _poll(fn: Callable[[], Any], timeout: float, what: str, interval: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        out = fn()
        if out:
            return out
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what} not reached within {timeout}s")
        time.sleep(interval)


def _get(url: str, timeout: float = 1.0) -> Any:
    """The JSON an URL answers, or None when it does not answer."""
    try:
        r = requests.get(url, timeout=timeout)
        return r.json() if r.status_code == 200 else None
    except (requests.RequestException, ValueError):
        return None


def _base(url: str) -> str:
    return url.rsplit("/", 1)[0]


# ---------------------------------------------------------------------------------------------
# no engine needed: the docker section


def _config(docker: Any, tmp_path: Path | None = None) -> TargetConfig:
    return TargetConfig(name="svc", command=["x"], env={}, status_url="http://{host}:{status_port}/s",
                        health_url="http://{host}:{status_port}/s", docker=docker,
                        source=(tmp_path / "svc.yaml") if tmp_path else Path("/nowhere/svc.yaml"))


@pytest.mark.parametrize("docker, message", [
    ({}, "needs a 'docker:' section"),
    ({"command": ["a"]}, "field 'docker.image': required unless docker.build is given"),
    ({"image": ""}, "field 'docker.image': must be a non-empty string"),
    ({"image": "  "}, "field 'docker.image': must be a non-empty string"),
    ({"build": {"context": " "}}, "field 'docker.build.context': must be a non-empty string"),
    ({"image": "x", "status_port": 0}, "field 'docker.status_port': must be a port number"),
    ({"image": "x", "status_port": True}, "field 'docker.status_port'"),
    ({"image": "x", "command": "python3 -m svc"}, "field 'docker.command': must be a non-empty list of strings"),
    ({"image": "x", "env": ["A=1"]}, "field 'docker.env': must be a mapping"),
    ({"image": "x", "env": {"A": {"b": 1}}}, "field 'docker.env.A'"),
    ({"image": "x", "ports": [1]}, "field 'docker.ports': unknown key"),
    ({"build": {"context": "no-such-folder"}}, "field 'docker.build.context'"),
    ({"build": {"context": ".", "dockerfile": "Nope"}}, "field 'docker.build.dockerfile'"),
    ({"build": {"context": ".", "target": "x"}}, "field 'docker.build.target': unknown key"),
])
def test_docker_section_errors_name_the_file_and_field(docker: Any, message: str, tmp_path: Path) -> None:
    with pytest.raises(TargetConfigError) as info:
        DockerSpec.from_config(_config(docker, tmp_path))
    assert message in str(info.value) and str(tmp_path / "svc.yaml") in str(info.value)


def test_docker_section_valid_forms(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "ctx").mkdir()
    (tmp_path / "ctx" / "Dockerfile").write_text("FROM scratch\n")
    spec = DockerSpec.from_config(_config({"build": "ctx", "env": {"N": 3, "B": True}}, tmp_path))
    assert spec.build_context == (tmp_path / "ctx").resolve() and spec.dockerfile == spec.build_context / "Dockerfile"
    assert spec.image is None and spec.build_tag("My Svc").startswith("chaosdrill-build/my-svc:")
    assert spec.status_port == 8080 and spec.command is None and dict(spec.env) == {"N": "3", "B": "true"}

    monkeypatch.delenv("WIP_IMG", raising=False)
    assert DockerSpec.from_config(_config({"image": "${WIP_IMG:-a/b:1}"})).image == "a/b:1"
    monkeypatch.setenv("WIP_IMG", "c/d:2")
    assert DockerSpec.from_config(_config({"image": "${WIP_IMG:-a/b:1}"})).image == "c/d:2"
    monkeypatch.delenv("WIP_IMG")
    with pytest.raises(TargetConfigError, match="WIP_IMG is not set"):
        DockerSpec.from_config(_config({"image": "${WIP_IMG}"}))


def test_schema_agrees_with_the_parser(tmp_path: Path) -> None:
    """DOCKER_SECTION_SCHEMA is a valid 2020-12 schema and accepts/rejects what from_config does."""
    jsonschema.Draft202012Validator.check_schema(DOCKER_SECTION_SCHEMA)
    validator = jsonschema.Draft202012Validator(DOCKER_SECTION_SCHEMA)
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    good = [{"image": "a"}, {"build": "."}, {"build": {"context": ".", "dockerfile": "Dockerfile"}, "image": "t:1"},
            {"image": "a", "command": ["x", "y"], "status_port": 65535, "env": {"A": "1", "B": 2, "C": False}},
            yaml.safe_load((REPO / "targets" / "okx_demo_api.yaml").read_text())["docker"]]
    bad = [{}, {"command": ["a"]}, {"image": ""}, {"image": "a", "status_port": 0}, {"image": "a", "command": "x"},
           {"image": "a", "command": []}, {"image": "a", "env": {"A": None}}, {"image": "a", "extra": 1},
           {"build": {"context": ".", "target": "x"}}, {"image": "a", "status_port": "8080"}]
    for section in good:
        assert not list(validator.iter_errors(section)), section
        DockerSpec.from_config(_config(section, tmp_path))
    for section in bad:
        assert list(validator.iter_errors(section)), section
        with pytest.raises(TargetConfigError):
            DockerSpec.from_config(_config(section, tmp_path))


def test_backend_declares_every_capability_but_the_clusters_and_its_extra() -> None:
    assert DockerBackend.name == "docker" and DockerBackend.extra == "docker"
    assert DockerBackend.capabilities == ALL_CAPABILITIES - {POD_DELETE, NODE_LOSS, POD_TEMPLATE, OOM_KILL, SCALE, POD_NETWORK_CUT}   # cluster faults: kubernetes only


def test_unavailable_without_pytest_docker(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pytest_docker", None)  # import fails as when not installed
    with pytest.raises(BackendUnavailable, match=r"pip install 'pytest-chaosdrill\[docker\]'"):
        DockerBackend(BackendSettings(run_id="t-noplugin")).check_available()


def test_unavailable_without_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHAOSDRILL_DOCKER", "docker-that-does-not-exist")
    with pytest.raises(BackendUnavailable, match="docker CLI not found"):
        DockerBackend(BackendSettings(run_id="t-noengine")).check_available()


def test_generic_code_names_no_reference_target_variable() -> None:
    """The backend, the engine layer and the compose file know nothing of the reference target."""
    for rel in ("pytest_chaosdrill/backends/docker.py", "pytest_chaosdrill/backends/docker_engine.py",
                "docker/docker-compose.yml", "docker/Dockerfile"):
        text = (REPO / rel).read_text()
        for word in ("OKX_", "TARGET_PORT", "TARGET_CONTROL_DIR", "TARGET_DATA_DIR", "okx_demo_api"):
            assert word not in text, f"{rel} names {word}"
    assert not (REPO / "docker" / "target.env").exists()


# ---------------------------------------------------------------------------------------------
# with an engine


@pytest.fixture(scope="module")
def backend() -> Iterator[DockerBackend]:
    ok, reason = de.engine_available()
    if not ok:
        _skip_or_fail(reason)
    for image in (IMAGE, BASE_IMAGE):
        if subprocess.run(["docker", "image", "inspect", image], capture_output=True).returncode != 0:
            _skip_or_fail(f"image {image} not built (bash docker/build-images.sh)")
    b = DockerBackend(BackendSettings(run_id=f"tb-{os.getpid()}-{uuid.uuid4().hex[:8]}"), image=IMAGE)
    try:
        b.check_available()
    except BackendUnavailable as exc:
        _skip_or_fail(str(exc))
    try:
        yield b
    finally:
        run_label = f"{de.RUN_ID_KEY}={b.run_id}"
        b.close()
        assert de.leftovers(run_label) == [], "backend.close() left labelled resources behind"


@pytest.fixture(scope="module")
def service_config(tmp_path_factory: pytest.TempPathFactory) -> TargetConfig:
    folder = tmp_path_factory.mktemp("tiny-service")
    (folder / "svc.py").write_text(SERVICE)
    (folder / "Dockerfile").write_text(f"FROM {BASE_IMAGE}\nCOPY svc.py /svc.py\nCMD [\"python3\", \"/svc.py\"]\n")
    (folder / "tiny_service.yaml").write_text(TARGET_FILE)
    return load_target(folder / "tiny_service.yaml")


@pytest.fixture
def site(tmp_path: Path, request: pytest.FixtureRequest) -> DrillSite:
    return DrillSite(f"tiny_{request.node.name[:30]}", tmp_path / "drill", "unused").create()


@pytest.fixture
def harness(backend: DockerBackend, site: DrillSite, service_config: TargetConfig) -> Iterator[Harness]:
    with backend.harness(site, service_config) as h:
        yield h


@pytest.fixture
def service(backend: DockerBackend, service_config: TargetConfig, site: DrillSite,
            harness: Harness) -> Iterator[DockerTarget]:
    target = backend.create_target(service_config, site, harness)
    target.start()
    _poll(lambda: _get(target.target.status_url), 60, "tiny service status on the published port")
    try:
        yield target
    finally:
        target.stop(5)
        target.close()


def test_any_image_serves_with_placeholders_rendered_inside(service: DockerTarget, site: DrillSite,
                                                           harness: Harness, backend: DockerBackend) -> None:
    assert harness.proxy_listen == f"proxy:{PROXY_LISTEN_PORT}" and set(harness.local_hosts) == {"venue", "proxy"}
    rendered = service.target
    assert rendered.status_url.startswith("http://127.0.0.1:") and rendered.status_url.endswith("/status")
    status = _get(rendered.status_url)
    # What the container saw: the placeholders as the container sees them.
    assert status["SVC_VENUE"] == f"http://proxy:{PROXY_LISTEN_PORT}"
    assert status["SVC_WS"] == f"ws://proxy:{PROXY_LISTEN_PORT}/ws/v5/public"
    assert (status["SVC_HOST"], status["SVC_PORT"]) == ("0.0.0.0", "9000")
    assert (status["SVC_DATA"], status["SVC_CONTROL"], status["SVC_PY"]) == ("/data", "/control", "python3")
    assert status["SVC_DRILL"] == site.drill_id and status["SVC_EXTRA"] == f"extra-{site.drill_id}"
    assert rendered.env["SVC_VENUE"] == status["SVC_VENUE"]  # the host view carries the container's env
    # The file the container wrote is on the host, the host user's, and pytest can delete it.
    hello = Path(rendered.files["hello"])
    assert hello.parent == site.data_dir
    assert json.loads(hello.read_text())["SVC_DRILL"] == site.drill_id
    assert (hello.stat().st_uid, hello.stat().st_gid) == (os.getuid(), os.getgid())
    assert (status["uid"], status["gid"]) == (os.getuid(), os.getgid())
    # Engine-side facts: labels for the reaper, ports only on 127.0.0.1, the image built here.
    data = service.engine.inspect(service.container or "")
    labels = data["Config"]["Labels"]
    assert labels[de.MANAGED_KEY] == "true" and labels[de.RUN_ID_KEY] == backend.run_id
    bindings = [b for v in data["NetworkSettings"]["Ports"].values() if v for b in v]
    assert bindings and all(b["HostIp"] == "127.0.0.1" for b in bindings)
    d = service.describe()
    assert d["image"] == "chaosdrill-test/tiny-service:latest" and d["image_id"].startswith("sha256:")
    assert d["image_built_s"] is not None and d["harness_image_id"].startswith("sha256:")
    assert d["containers"]["target"] == service.container and {"venue", "proxy"} <= set(d["containers"])
    assert d["command"] == "image default" and rendered.command == ["python3", "/svc.py"]


def test_kill_is_proven_and_restart_keeps_the_data(service: DockerTarget, site: DrillSite) -> None:
    cid = service.container
    proof = service.kill()
    assert proof["killed_by_sigkill"] is True and proof["exit_code"] == 137 and proof["running"] is False
    assert service.running() is False and service.returncode() == 137
    assert _get(service.target.status_url) is None           # nothing answers any more
    service.start()
    status = _poll(lambda: _get(service.target.status_url), 60, "status after restart")
    assert service.container == cid                          # the same container ...
    assert status["starts"] == 2                              # ... on the same /data
    assert len((site.data_dir / "starts.log").read_text().splitlines()) == 2
    start = service.describe()["engine_proofs"][-1]
    assert start["action"] == "start" and start["proven"] is True


def test_pause_is_proven_and_freezes_the_status(service: DockerTarget) -> None:
    proof = service.pause()
    assert proof["proven"] is True and proof["paused"] is True
    assert service.running() is True                         # frozen, not exited
    assert _get(service.target.status_url, timeout=1.0) is None
    assert service.resume()["proven"] is True
    _poll(lambda: _get(service.target.status_url), 30, "status after resume")


def test_network_cut_is_proven_while_the_host_still_reads_status(service: DockerTarget) -> None:
    probe = _base(service.target.status_url) + "/probe-venue"
    _poll(lambda: (_get(probe, timeout=10) or {}).get("reached"), 30, "service reaching the proxy")
    proof = service.network_disconnect()
    assert proof["disconnected"] is True and service.stack.core_network not in proof["networks_after"]
    assert service.stack.core_network not in service.engine.networks_of(service.container or "")
    assert _get(service.target.status_url) is not None      # the host still samples it
    cut = _get(probe, timeout=15)
    assert cut is not None and cut["reached"] is False, cut  # ... but it cannot reach the venue side
    back = service.network_connect()
    assert back["connected"] is True
    _poll(lambda: (_get(probe, timeout=10) or {}).get("reached"), 30, "service reaching the proxy again")


def test_exit_is_observed(service: DockerTarget, site: DrillSite) -> None:
    (site.control_dir / "EXIT").write_text("")                 # the bind-mounted control folder, host -> container
    assert service.wait_exit(30) == 3
    assert service.running() is False and service.returncode() == 3


def test_close_saves_logs_and_leaves_no_container(backend: DockerBackend, service_config: TargetConfig,
                                                  site: DrillSite, harness: Harness) -> None:
    target = backend.create_target(service_config, site, harness)
    target.start()
    _poll(lambda: _get(target.target.status_url), 60, "status")
    cid, edge = target.container, target.edge_network
    target.stop(5)
    target.close()
    target.close()                                            # idempotent
    logs = {p.name: p for p in target.logs()}
    assert "tiny-service start 1 listening" in logs["container.target.log"].read_text()
    assert {"container.venue.log", "container.proxy.log"} <= set(logs)
    ps = subprocess.run(["docker", "ps", "-aq", "--no-trunc", "--filter", f"label={de.MANAGED_LABEL}",
                         "--filter", f"label={de.RUN_ID_KEY}={backend.run_id}"], capture_output=True, text=True)
    assert cid not in ps.stdout.split()
    assert subprocess.run(["docker", "network", "inspect", edge], capture_output=True).returncode != 0


def test_reference_target_runs_from_its_docker_section(backend: DockerBackend, tmp_path: Path) -> None:
    """The reference target, wired only by targets/okx_demo_api.yaml's docker: section, trades
    (Active) with the venue through the proxy container."""
    config = load_target(REPO / "targets" / "okx_demo_api.yaml")
    site = DrillSite("reference_docker", tmp_path / "ref", "unused").create()
    with backend.harness(site, config) as h:
        target = backend.create_target(config, site, h)
        try:
            assert target.image == IMAGE
            target.start()
            status = _poll(lambda: (s := _get(target.target.status_url)) and s.get("trading_mode") == "Active" and s,
                           90, "reference target Active")
            assert status["trading_mode"] == "Active"
            counters = h.proxy.counters()
            assert counters["bytes_upstream"] > 0 and counters["bytes_downstream"] > 0  # it went through the proxy
            assert Path(target.target.files["run_manifest"]).parent == site.data_dir
            _poll(lambda: Path(target.target.files["run_manifest"]).exists(), 30, "run manifest on the host")
        finally:
            target.stop(10)
            target.close()
    assert target.describe()["engine_proofs"][-1]["action"] == "stop"


@pytest.mark.parametrize("mode", ["nxdomain", "servfail"])
def test_dns_site_resolves_the_venue_through_its_stub_and_the_stub_fails_it(
        backend: DockerBackend, service_config: TargetConfig, tmp_path: Path, mode: str) -> None:
    """A drill needing ``dns``: the venue is reached as venue.chaosdrill.internal, which only the drill's
    DNS stub answers; NXDOMAIN from the stub makes the service's own lookup fail (counted by the stub),
    answers again bring it back; close() removes the stub container with the service. SERVFAIL alike."""
    site = DrillSite("tiny_dns", tmp_path / "drill", "unused", needs=frozenset({"dns"})).create()
    with backend.harness(site, service_config) as harness:
        assert harness.proxy_listen == f"venue.chaosdrill.internal:{PROXY_LISTEN_PORT}"
        target = backend.create_target(service_config, site, harness)
        try:
            target.start()
            probe = _base(_poll(lambda: _get(target.target.status_url) and target.target.status_url, 60,
                                "status")) + "/probe-venue"
            _poll(lambda: (_get(probe, timeout=10) or {}).get("reached"), 30, "service reaching the proxy by name")
            assert target.describe()["dns_stub"]["venue_name"] == "venue.chaosdrill.internal"
            before = target.dns_fail(mode)
            assert before["mode"] == "answer" and before["counts"]["venue.chaosdrill.internal"]["answered"] >= 1
            cut = _get(probe, timeout=15)
            assert cut is not None and cut["reached"] is False, cut
            assert target.dns_state()["counts"]["venue.chaosdrill.internal"].get(mode, 0) >= 1
            assert target.dns_restore()["mode"] == "answer"
            _poll(lambda: (_get(probe, timeout=10) or {}).get("reached"), 30, "service reaching the proxy again")
            stub = target.dns.container if target.dns else None
        finally:
            target.stop(5)
            target.close()
    assert stub and subprocess.run(["docker", "inspect", stub], capture_output=True).returncode != 0
