"""The kubernetes backend's parts that need no cluster: the target file's section, the pod relay,
and the namespace interlock's message. The cluster itself is drilled by .ci/k8s/ci.sh."""
from __future__ import annotations

import http.server
import threading
import time
from pathlib import Path

import pytest

from pytest_chaosdrill.backends.k8s.relay import PodRelay
from pytest_chaosdrill.backends.k8s.spec import KubeSpec
from pytest_chaosdrill.target import TargetConfigError, load_target

ROOT = Path(__file__).resolve().parents[3]


def _config(tmp_path: Path, section: str) -> object:
    text = (ROOT / "targets/okx_demo_api.yaml").read_text() + section
    path = tmp_path / "target.yaml"
    path.write_text(text)
    return load_target(path)


def test_reference_target_falls_back_to_the_docker_section(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CHAOSDRILL_K8S_IMAGE", raising=False)
    monkeypatch.delenv("CHAOSDRILL_K8S_NAMESPACE", raising=False)
    monkeypatch.setenv("CHAOSDRILL_IMAGE", "chaosdrill/target:test")
    spec = KubeSpec.from_config(load_target(ROOT / "targets/okx_demo_api.yaml"))
    assert spec.image == "chaosdrill/target:test"
    assert spec.namespace == "chaosdrill" and spec.replicas == 1 and spec.status_port == 8080
    assert spec.command == ("python3", "-m", "okx_demo_api")
    assert spec.env["TARGET_REASON_MANIFEST"].startswith("/opt/chaosdrill/specs/")   # docker.env too


@pytest.mark.parametrize("section, field", [
    ("kubernetes: {replicas: 0}\n", "kubernetes.replicas"),
    ("kubernetes: {image_pull_policy: Sometimes}\n", "kubernetes.image_pull_policy"),
    ("kubernetes: {node_access: ssh}\n", "kubernetes.node_access"),
])
def test_bad_section_names_file_and_field(tmp_path: Path, section: str, field: str) -> None:
    # the target file's schema (load_target) or the section's own check (configs built in code)
    with pytest.raises(TargetConfigError) as err:
        KubeSpec.from_config(_config(tmp_path, section))
    msg = str(err.value)
    assert "target.yaml" in msg and field in msg


class Hello(http.server.BaseHTTPRequestHandler):
    """Answers with its server's port: which "pod" the relay reached."""

    def do_GET(self) -> None:
        body = self.server.server_address[1].to_bytes(4, "big")
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def test_relay_follows_the_serving_pod() -> None:
    servers = [http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hello) for _ in range(2)]
    for s in servers:
        threading.Thread(target=s.serve_forever, daemon=True).start()
    upstream: list[tuple[str, int] | None] = [None]
    relay = PodRelay(lambda: upstream[0]).start()
    import requests

    url = f"http://127.0.0.1:{relay.port}/"
    try:
        with pytest.raises(requests.ConnectionError):
            requests.get(url, timeout=2)          # no pod serves: refused, as a stopped service
        for s in servers:
            upstream[0] = ("127.0.0.1", s.server_address[1])
            assert int.from_bytes(requests.get(url, timeout=2).content, "big") == s.server_address[1]
    finally:
        relay.stop()
        for s in servers:
            s.shutdown()
            s.server_close()


def test_pods_share_the_host_clock_only_with_local_node_access() -> None:
    from types import SimpleNamespace

    from pytest_chaosdrill.backends.k8s import KubeTarget
    from pytest_chaosdrill.backends.process import ProcessTarget
    from pytest_chaosdrill.backends.external import ExternalTarget

    for access, shared in (("local", True), ("none", False)):
        target = SimpleNamespace(spec=SimpleNamespace(node_access=access))
        assert KubeTarget.shares_host_clock.fget(target) is shared
    assert ProcessTarget.shares_host_clock is True and ExternalTarget.shares_host_clock is False


def test_relay_drops_a_kept_alive_connection_to_a_pod_no_longer_serving() -> None:
    import requests

    class KeepAlive(Hello):
        protocol_version = "HTTP/1.1"   # keep-alive, as the sampler's session

    old, new = (http.server.ThreadingHTTPServer(("127.0.0.1", 0), KeepAlive) for _ in range(2))
    for s in (old, new):
        threading.Thread(target=s.serve_forever, daemon=True).start()
    upstream = [("127.0.0.1", old.server_address[1])]
    relay = PodRelay(lambda: upstream[0]).start()
    url = f"http://127.0.0.1:{relay.port}/"
    try:
        with requests.Session() as session:
            assert int.from_bytes(session.get(url, timeout=2).content, "big") == old.server_address[1]
            upstream[0] = ("127.0.0.1", new.server_address[1])
            # the old pod still answers on the open connection until the relay follows the new one
            assert int.from_bytes(session.get(url, timeout=2).content, "big") == old.server_address[1]
            relay.follow(upstream[0])
            deadline = time.monotonic() + 5
            seen = None
            while seen != new.server_address[1] and time.monotonic() < deadline:
                try:
                    seen = int.from_bytes(session.get(url, timeout=2).content, "big")
                except requests.ConnectionError:
                    pass   # the dropped connection: the next request opens a new one
            assert seen == new.server_address[1]
    finally:
        relay.stop()
        for s in (old, new):
            s.shutdown()
            s.server_close()
