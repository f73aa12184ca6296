"""Tests of pytest_chaosdrill.backends.docker_engine against a real Docker engine.

Without an engine every engine test SKIPS with engine_available()'s reason (CHAOSDRILL_REQUIRE_DOCKER=1
turns that skip into a failure, for CI after .ci/docker-setup.sh). Each test labels what it creates
with its own run id and proves afterwards that nothing with that label is left.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.request
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterator

import pytest

from pytest_chaosdrill.backends import docker_engine as de
from pytest_chaosdrill.backends.docker_engine import DockerEngine, engine_available

REPO = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO / "docker" / "docker-compose.yml"
IMAGE = os.environ.get("CHAOSDRILL_IMAGE", "chaosdrill/target:latest")
HTTP_SERVER = ["python3", "-m", "http.server", "8000", "--bind", "0.0.0.0"]


def _new_run_id() -> str:
    return f"test-{os.getpid()}-{uuid.uuid4().hex[:8]}"


def _skip_or_fail(reason: str) -> None:
    if os.environ.get("CHAOSDRILL_REQUIRE_DOCKER") == "1":
        pytest.fail(f"CHAOSDRILL_REQUIRE_DOCKER=1 but {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def image() -> str:
    ok, reason = engine_available()
    if not ok:
        _skip_or_fail(reason)
    if subprocess.run(["docker", "image", "inspect", IMAGE], capture_output=True).returncode != 0:
        _skip_or_fail(f"image {IMAGE} not built (bash docker/build-images.sh)")
    return IMAGE


@pytest.fixture
def engine(image: str) -> Iterator[DockerEngine]:
    eng = DockerEngine(_new_run_id())
    try:
        yield eng
    finally:
        eng.teardown()
        assert eng.leftovers() == [], "teardown left labelled resources behind"


def _poll(fn: Callable[[], bool], timeout: float, what: str, interval: float = 0.1) -> None:
    deadline = time.monotonic() + timeout
    while not fn():
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what} not reached within {timeout}s")
        time.sleep(interval)


def _http_ok(url: str, timeout: float = 1.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status == 200
    except (OSError, urllib.error.URLError):
        return False


def _serve(engine: DockerEngine, image: str, **kw: object) -> tuple[str, str]:
    """A labelled container serving HTTP on 8000, published on 127.0.0.1; waits until it answers."""
    cid = engine.run_container(image, HTTP_SERVER, ports={8000: None}, **kw)  # type: ignore[arg-type]
    url = f"http://127.0.0.1:{engine.host_port(cid, 8000)}/"
    _poll(lambda: _http_ok(url), 30, f"{url} answering")
    return cid, url


# ---------------------------------------------------------------------------------------------
# no engine needed


def test_engine_available_without_cli(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHAOSDRILL_DOCKER", "docker-that-does-not-exist")
    ok, reason = engine_available()
    assert ok is False and "docker CLI not found" in reason


def test_engine_available_daemon_unreachable(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    if de.docker_cli() is None:
        pytest.skip("docker CLI not installed")
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-daemon.sock")
    ok, reason = engine_available()
    assert ok is False and "not reachable" in reason, reason


def test_engine_available_without_permission() -> None:
    ok, _ = engine_available()
    if not ok or os.getuid() != 0 or not Path("/usr/bin/setpriv").exists():
        pytest.skip("needs a running engine, root and setpriv to drop to an unprivileged user")
    proc = subprocess.run(
        ["/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", sys.executable, "-c",
         "from pytest_chaosdrill.backends.docker_engine import engine_available; print(engine_available())"],
        capture_output=True, text=True, timeout=60, cwd="/")
    if proc.returncode != 0:  # e.g. the venv lives under a folder nobody may not enter
        pytest.skip(f"the unprivileged user cannot run this interpreter: {proc.stderr.strip()[-200:]}")
    assert "(False, 'no permission" in proc.stdout, proc.stdout


def test_parse_time_handles_docker_formats() -> None:
    t = de._parse_time("2026-11-23T16:23:40.346478587Z")
    assert t is not None and t.microsecond == 346478 and t.utcoffset().total_seconds() == 0  # type: ignore[union-attr]
    assert de._parse_time("2026-11-23T16:23:40+01:00") is not None
    assert de._parse_time("0001-01-01T00:00:00Z") is None
    assert de._parse_time("") is None


def test_run_id_is_validated() -> None:
    with pytest.raises(ValueError):
        DockerEngine("has space", handle_signals=False)


# ---------------------------------------------------------------------------------------------
# with an engine


def test_image_info_reports_identity(engine: DockerEngine, image: str) -> None:
    info = engine.image_info(image)
    assert info["Id"].startswith("sha256:")
    assert info["Labels"].get("io.chaosdrill.image") == "target"
    assert info["Labels"].get("org.opencontainers.image.revision")
    assert info["Created"]
    assert isinstance(info["RepoDigests"], list)  # empty for a never-pushed local image


def test_container_is_labelled(engine: DockerEngine, image: str) -> None:
    cid = engine.run_container(image, ["sleep", "30"])
    labels = engine.inspect(cid)["Config"]["Labels"]
    assert labels[de.MANAGED_KEY] == "true" and labels[de.RUN_ID_KEY] == engine.run_id
    assert engine.container_ids("no-such-project") == {}


def test_kill_sigkill_gives_137_and_start_brings_it_back(engine: DockerEngine, image: str) -> None:
    cid, url = _serve(engine, image)
    proof = engine.kill(cid, "KILL")
    assert proof["proven"] is True
    assert proof["running"] is False and proof["exit_code"] == 137 and proof["signal"] == "KILL"
    assert de._parse_time(proof["finished_at"]) is not None
    assert not _http_ok(url)  # observable from the host: nothing answers any more

    started = engine.start(cid)
    assert started["proven"] is True and started["running"] is True
    assert started["started_at"] != proof["started_at_before"]
    new_url = f"http://127.0.0.1:{engine.host_port(cid, 8000)}/"
    _poll(lambda: _http_ok(new_url), 30, "server answering after restart")


def test_sigterm_reaches_the_process(engine: DockerEngine, image: str) -> None:
    cid, _ = _serve(engine, image)
    proof = engine.kill(cid, "TERM")
    # With tini as PID 1 the signal reaches Python, which dies of it: 128 + 15.
    assert proof["proven"] is True and proof["exit_code"] == 143
    assert engine.wait_exit(cid, timeout=5) == 143
    engine.start(cid)
    stopped = engine.stop(cid, grace_s=5)
    assert stopped["proven"] is True and stopped["exit_code"] == 143


def test_pause_freezes_and_unpause_thaws(engine: DockerEngine, image: str) -> None:
    cid, url = _serve(engine, image)
    paused = engine.pause(cid)
    assert paused["proven"] is True and paused["paused"] is True and paused["status"] == "paused"
    # Frozen: the port still accepts (docker-proxy), but no HTTP answer comes back.
    assert not _http_ok(url, timeout=1.0)
    resumed = engine.unpause(cid)
    assert resumed["proven"] is True and resumed["paused"] is False and resumed["running"] is True
    _poll(lambda: _http_ok(url), 30, "server answering after unpause")


def test_network_disconnect_cuts_the_peer_but_not_the_host(engine: DockerEngine, image: str) -> None:
    """The compose layout in miniature: server and client share an internal network; the client is
    also on its own edge network where its port is published. Disconnecting the client from the
    internal network must cut client->server while the host still reaches the client."""
    tag = engine.run_id
    core = f"{tag}-core"
    edge = f"{tag}-edge"
    engine.create_network(core, internal=True)
    engine.create_network(edge)
    engine.run_container(image, HTTP_SERVER, name=f"{tag}-server", network=core,
                         extra_args=["--network-alias", "server-core"])
    client, client_url = _serve(engine, image, name=f"{tag}-client", network=edge)
    engine.network_connect(core, client)

    probe = ["python3", "-c", "import urllib.request as u; u.urlopen('http://server-core:8000/', timeout=2)"]
    _poll(lambda: engine.exec(client, probe).returncode == 0, 30, "client reaching server over core")

    proof = engine.network_disconnect(core, client)
    assert proof["proven"] is True
    assert core in proof["networks_before"] and core not in proof["networks_after"]
    assert proof["container"] not in proof["network_members_after"]
    assert core not in engine.networks_of(client)
    assert engine.exec(client, probe, timeout=20).returncode != 0  # the peer is unreachable
    assert _http_ok(client_url)  # the host still samples the client

    back = engine.network_connect(core, client)
    assert back["proven"] is True and back["ip_address"]
    _poll(lambda: engine.exec(client, probe).returncode == 0, 30, "client reaching server again")


def test_logs_capture_stdout_and_stderr(engine: DockerEngine, image: str) -> None:
    cid = engine.run_container(image, ["sh", "-c", "echo out-marker; echo err-marker >&2; sleep 30"])
    _poll(lambda: "err-marker" in engine.logs(cid), 30, "log lines")
    text = engine.logs(cid)
    assert "out-marker" in text and "err-marker" in text


def test_reap_removes_a_killed_runs_leftovers(engine: DockerEngine, image: str) -> None:
    # Leftovers of "another run" that died without teardown: created with the plain CLI.
    rid = _new_run_id()
    label = ["--label", de.MANAGED_LABEL, "--label", f"{de.RUN_ID_KEY}={rid}"]
    run_label = f"{de.RUN_ID_KEY}={rid}"
    try:
        subprocess.run(["docker", "network", "create", *label, f"{rid}-net"], check=True, capture_output=True)
        subprocess.run(["docker", "volume", "create", *label, f"{rid}-vol"], check=True, capture_output=True)
        subprocess.run(["docker", "run", "-d", *label, "--network", f"{rid}-net", "-v", f"{rid}-vol:/v",
                        image, "sleep", "60"], check=True, capture_output=True)
        assert len(de.leftovers(run_label)) == 3
        assert de.reap(run_label, older_than_s=3600) == []  # too young: a live run is spared
        removed = de.reap(run_label)
        assert sorted(r.split(":")[0] for r in removed) == ["container", "network", "volume"]
        assert de.leftovers(run_label) == []
    finally:
        de.reap(run_label)


def test_teardown_after_failure_removes_everything(image: str) -> None:
    eng = DockerEngine(_new_run_id())
    with pytest.raises(RuntimeError, match="drill failed"):
        with eng:
            eng.create_network(f"{eng.run_id}-net")
            eng.run_container(image, ["sleep", "60"], network=f"{eng.run_id}-net")
            assert len(eng.leftovers()) == 2
            raise RuntimeError("drill failed")
    assert eng.leftovers() == []


def test_sigterm_to_the_runner_still_tears_down(image: str, tmp_path: Path) -> None:
    rid = _new_run_id()
    child = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time\n"
         "from pytest_chaosdrill.backends.docker_engine import DockerEngine\n"
         f"eng = DockerEngine({rid!r})\n"
         f"eng.run_container({image!r}, ['sleep', '120'])\n"
         "print('ready', flush=True)\n"
         "time.sleep(120)\n"],
        stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "ready"
        assert len(de.leftovers(f"{de.RUN_ID_KEY}={rid}")) == 1
        child.terminate()
        # Torn down, then killed by the re-delivered signal, as without the handler.
        assert child.wait(timeout=60) == -15
        assert de.leftovers(f"{de.RUN_ID_KEY}={rid}") == []
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        de.reap(f"{de.RUN_ID_KEY}={rid}")


def test_create_container_env_user_volumes_and_image_cmd(engine: DockerEngine, image: str, tmp_path: Path) -> None:
    """create_container: not started until start(); env (through an env file) arrives; the host
    user owns what it writes in a bind mount; no command keeps the image's CMD."""
    out = tmp_path / "out"
    out.mkdir()
    script = "import os; open('/out/f', 'w').write(os.environ['WIP_VALUE'])"
    cid = engine.create_container(image, ["python3", "-c", script], env={"WIP_VALUE": "a b=c 'd'"},
                                  user=f"{os.getuid()}:{os.getgid()}", volumes={out: "/out"})
    assert engine.state(cid)["Status"] == "created"
    started = engine.start(cid)
    assert started["action"] == "start"
    assert engine.wait_exit(cid, 30) == 0, engine.logs(cid)
    assert (out / "f").read_text() == "a b=c 'd'"
    assert (out / "f").stat().st_uid == os.getuid()
    with pytest.raises(ValueError, match="single-line"):
        engine.create_container(image, env={"BAD": "two\nlines"})
    default = engine.create_container(image)
    assert engine.inspect(default)["Config"]["Cmd"] == engine.image_info(image)["Cmd"] == ["chaosdrill", "--help"]
    engine.remove_container(default)
    engine.remove_container(default)  # already gone: no error
    assert subprocess.run(["docker", "inspect", default], capture_output=True).returncode != 0


def test_build_image_from_a_local_base(engine: DockerEngine, image: str, tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text(f"FROM {image}\nCMD [\"echo\", \"built-marker\"]\n")
    tag = f"chaosdrill-test/build:{uuid.uuid4().hex[:8]}"
    try:
        image_id = engine.build_image(tmp_path, tag, labels={"io.chaosdrill.image": "test"})
        info = engine.image_info(tag)
        assert info["Id"] == image_id and info["Labels"]["io.chaosdrill.image"] == "test"
        assert info["Cmd"] == ["echo", "built-marker"]
        (tmp_path / "Dockerfile").write_text("FROM chaosdrill/no-such-base:never\n")
        with pytest.raises(de.DockerError):
            engine.build_image(tmp_path, tag + "-bad")
    finally:
        subprocess.run(["docker", "image", "rm", "-f", tag], capture_output=True)


def test_logs_since(engine: DockerEngine, image: str) -> None:
    cid = engine.run_container(image, ["sh", "-c", "echo early-marker; sleep 2; echo late-marker; sleep 30"])
    _poll(lambda: "early-marker" in engine.logs(cid), 30, "first line")
    since = datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")
    _poll(lambda: "late-marker" in engine.logs(cid), 30, "second line")
    text = engine.logs(cid, since=since)
    assert "late-marker" in text and "early-marker" not in text


# ---------------------------------------------------------------------------------------------
# the compose file: the harness (venue and proxy) from the project image


def _image_has(image: str, *command: str) -> bool:
    labels = ["--label", de.MANAGED_LABEL, "--label", f"{de.RUN_ID_KEY}=probe-{os.getpid()}"]
    proc = subprocess.run(["docker", "run", "--rm", *labels, image, "chaosdrill", *command, "--help"],
                          capture_output=True, timeout=60)
    return proc.returncode == 0


@pytest.fixture(scope="module")
def compose_ready(image: str) -> str:
    if de.compose_command() is None:
        _skip_or_fail("neither `docker compose` nor `docker-compose` is installed")
    missing = [c for c in ("venue", "proxy") if not _image_has(image, c)]
    if missing:
        _skip_or_fail(f"image {image} has no working `chaosdrill {'/'.join(missing)}`")
    return image


def test_compose_up_serves_venue_and_proxy_and_down_leaves_nothing(engine: DockerEngine, compose_ready: str) -> None:
    project = f"cd{uuid.uuid4().hex[:10]}"
    ids = engine.compose_up(COMPOSE_FILE, project, {"CHAOSDRILL_IMAGE": compose_ready})
    assert set(ids) == {"venue", "proxy"}    # the service under drill is not a compose service
    for service in ids:
        labels = engine.inspect(ids[service])["Config"]["Labels"]
        assert labels[de.RUN_ID_KEY] == engine.run_id and labels[de.MANAGED_KEY] == "true"
        engine.wait_healthy(ids[service], timeout=90)
        bindings = engine.inspect(ids[service])["NetworkSettings"]["Ports"]
        assert all(b["HostIp"] == "127.0.0.1" for v in bindings.values() if v for b in v)
    venue_time = f"http://127.0.0.1:{engine.host_port(ids['venue'], 8900)}/api/v5/public/time"
    proxy_version = f"http://127.0.0.1:{engine.host_port(ids['proxy'], 8474)}/version"
    _poll(lambda: _http_ok(venue_time), 30, "venue via 127.0.0.1")
    _poll(lambda: _http_ok(proxy_version), 30, "proxy API via 127.0.0.1")
    core = engine.compose_network(project, "core")
    assert core == f"{project}_core"
    net = json.loads(subprocess.run(["docker", "network", "inspect", core], capture_output=True, text=True,
                                    check=True).stdout)[0]
    assert net["Internal"] is True and set(net["Containers"]) == set(ids.values())
    assert engine.compose_down(project=project) == []
    assert de.leftovers(f"{de.COMPOSE_PROJECT_KEY}={project}") == []
    assert engine.leftovers() == []


def test_pytest_docker_docker_services_runs_the_compose_file(compose_ready: str, tmp_path: Path) -> None:
    """pytest-docker's own ``docker_services`` fixture, with the overrides from
    ``docker_services_settings()``, starts the compose file and cleans it up (in a child pytest, so its
    session-scoped fixtures do not mix with this session's)."""
    project = f"pd{uuid.uuid4().hex[:10]}"
    rid = _new_run_id()
    (tmp_path / "conftest.py").write_text(textwrap.dedent(f"""
        import pytest
        from pytest_chaosdrill.backends.docker_engine import docker_services_settings
        S = docker_services_settings()

        @pytest.fixture(scope="session")
        def docker_compose_command(): return S["docker_compose_command"]
        @pytest.fixture(scope="session")
        def docker_compose_file(): return S["docker_compose_file"]
        @pytest.fixture(scope="session")
        def docker_setup(): return S["docker_setup"]
        @pytest.fixture(scope="session")
        def docker_cleanup(): return S["docker_cleanup"]
        @pytest.fixture(scope="session")
        def docker_compose_project_name(): return {project!r}
    """))
    (tmp_path / "test_pd.py").write_text(textwrap.dedent("""
        import urllib.request

        def ok(url):
            try:
                return urllib.request.urlopen(url, timeout=1).status == 200
            except OSError:
                return False

        def test_services_answer(docker_services, docker_ip):
            venue = f"http://{docker_ip}:{docker_services.port_for('venue', 8900)}/api/v5/public/time"
            proxy = f"http://{docker_ip}:{docker_services.port_for('proxy', 8474)}/version"
            docker_services.wait_until_responsive(check=lambda: ok(venue), timeout=60, pause=0.2)
            docker_services.wait_until_responsive(check=lambda: ok(proxy), timeout=60, pause=0.2)
    """))
    env = {**os.environ, "CHAOSDRILL_RUN_ID": rid, "CHAOSDRILL_IMAGE": compose_ready}
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:chaosdrill",
             "--rootdir", str(tmp_path), str(tmp_path / "test_pd.py")],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
        assert "1 passed" in proc.stdout
        assert de.leftovers(f"{de.COMPOSE_PROJECT_KEY}={project}") == []
        assert de.leftovers(f"{de.RUN_ID_KEY}={rid}") == []
    finally:
        de.reap(f"{de.COMPOSE_PROJECT_KEY}={project}")
        de.reap(f"{de.RUN_ID_KEY}={rid}")


def test_compose_up_failure_carries_the_service_logs(engine: DockerEngine, image: str) -> None:
    """A venue that cannot become healthy fails compose_up (the proxy waits for it) with its own
    log lines in the error, and teardown still removes the half-started project."""
    if de.compose_command() is None:
        _skip_or_fail("neither `docker compose` nor `docker-compose` is installed")
    project = f"cf{uuid.uuid4().hex[:10]}"
    # The venue exits at once with a recognisable line, so the proxy never starts.
    env = {"CHAOSDRILL_IMAGE": image, "CHAOSDRILL_VENUE_ARGS": "--no-such-option-marker"}
    with pytest.raises(de.DockerError) as info:
        engine.compose_up(COMPOSE_FILE, project, env, services=["venue", "proxy"], timeout=120)
    assert "no-such-option-marker" in str(info.value)
    engine.teardown()
    assert de.leftovers(f"{de.COMPOSE_PROJECT_KEY}={project}") == []


def test_a_container_on_core_reaches_the_venue_through_the_proxy(engine: DockerEngine, compose_ready: str) -> None:
    """The layout a proxy drill needs: a container on the project's `core` network talks to a proxy
    listener the host created through the proxy's published API, and the proxy's counters show the
    traffic crossing it."""
    project = f"cp{uuid.uuid4().hex[:10]}"
    ids = engine.compose_up(COMPOSE_FILE, project, {"CHAOSDRILL_IMAGE": compose_ready})
    engine.wait_healthy(ids["proxy"], timeout=90)
    api = f"http://127.0.0.1:{engine.host_port(ids['proxy'], 8474)}"
    body = json.dumps({"name": "venue", "listen": "0.0.0.0:18900", "upstream": "venue:8900"}).encode()
    req = urllib.request.Request(f"{api}/proxies", data=body, method="POST",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert resp.status in (200, 201)
    client = engine.run_container(compose_ready, ["sleep", "60"], network=engine.compose_network(project, "core"))
    probe = ["python3", "-c", "import urllib.request as u; u.urlopen('http://proxy:18900/api/v5/public/time', timeout=2)"]
    _poll(lambda: engine.exec(client, probe).returncode == 0, 30, "client reaching the venue through the proxy")
    with urllib.request.urlopen(f"{api}/proxies/venue/counters", timeout=5) as resp:
        c = json.loads(resp.read())
    assert int(c.get("bytes_upstream", 0)) > 0 and int(c.get("bytes_downstream", 0)) > 0
    engine.remove_container(client)
    assert engine.compose_down(project=project) == []
