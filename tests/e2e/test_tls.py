"""The venue over TLS (target file ``venue: {tls: true}``): the session CA (pytest_chaosdrill/tls.py),
the proxy's TLS listener (proxy/tls.py) and the placeholders and variables a target gets, judged by
real clients (requests, aiohttp, websocket-client, ccxt) with nothing but the URL and the CA changed.
The drills of the reference target over TLS run with
``pytest -m phase2 --chaosdrill-target tests/targets/okx_demo_api_tls.yaml``."""
from __future__ import annotations

import asyncio
import json
import os
import ssl
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import aiohttp
import pytest

from pytest_chaosdrill.venue.auth import ApiKey
from cryptography import x509
import requests
import websocket
import yaml

from pytest_chaosdrill.backends.base import BackendSettings, DrillSite, Harness
from pytest_chaosdrill.backends.local import TLS_PROXY, local_harness, render_local
from pytest_chaosdrill.backends.process import ProcessBackend
from pytest_chaosdrill.proxy import ProxyServer
from pytest_chaosdrill.proxy.errors import BadRequest
from pytest_chaosdrill.target import TargetConfigError, load_target
from pytest_chaosdrill.venue.auth import ApiKey
from pytest_chaosdrill.tls import CA_ENV_VARS, EXCHANGE_HOSTNAMES, SessionCA, TLSFiles

REPO = Path(__file__).resolve().parents[2]
TLS_TARGET = REPO / "tests" / "targets" / "okx_demo_api_tls.yaml"


@pytest.fixture(scope="module")
def ca() -> Iterator[SessionCA]:
    session_ca = SessionCA()
    yield session_ca
    session_ca.cleanup()


@pytest.fixture(scope="module")
def files(ca: SessionCA) -> TLSFiles:
    return ca.files()


@pytest.fixture
def harness(files: TLSFiles) -> Iterator[Harness]:
    with local_harness(seed=7, tls=files, api_key=ApiKey.generate()) as h:  # target files name the drill's key
        yield h


def test_ca_files_hold_no_ca_key_and_the_leaf_key_is_private(ca: SessionCA, files: TLSFiles) -> None:
    assert sorted(p.name for p in files.ca_dir.iterdir()) == ["ca.pem"]
    assert "PRIVATE KEY" not in files.ca_file.read_text() and "BEGIN CERTIFICATE" in files.ca_file.read_text()
    assert oct(files.leaf_file.stat().st_mode & 0o777) == "0o600"
    # The only private key written anywhere is the listener's, and it is not the CA's.
    keys = [p for p in ca.folder.rglob("*") if p.is_file() and "PRIVATE KEY" in p.read_text()]
    assert keys == [files.leaf_file]
    assert "PRIVATE" not in repr(ca) and ca.files() is files      # made once per session
    # The listener's certificate is the CA's and names loopback, the docker proxy and OKX's hosts.
    ctx = ssl.create_default_context(cafile=str(files.ca_file))
    ctx.load_cert_chain(str(files.leaf_file))
    leaf = x509.load_pem_x509_certificates(files.leaf_file.read_bytes())[0]
    ca_cert = x509.load_pem_x509_certificate(files.ca_file.read_bytes())
    assert leaf.issuer == ca_cert.subject
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    names = set(san.get_values_for_type(x509.DNSName)) | {str(ip) for ip in san.get_values_for_type(x509.IPAddress)}
    assert names == {"127.0.0.1", "::1", "localhost", "proxy", *EXCHANGE_HOSTNAMES}


def test_session_ca_cleanup_removes_its_temp_folder() -> None:
    own = SessionCA()
    folder = own.files().ca_dir.parent
    assert folder.is_dir()
    own.cleanup()
    assert not folder.exists()


def test_requests_over_https_verifies_against_the_session_ca_only(harness: Harness) -> None:
    ep = harness.endpoints()
    assert ep.rest_url.startswith("https://127.0.0.1:") and ep.ws_private_url.startswith("wss://127.0.0.1:")
    r = requests.get(f"{ep.rest_url}/api/v5/public/time", verify=harness.ca_file, timeout=5)
    assert r.status_code == 200 and r.json()["code"] == "0"
    with pytest.raises(requests.exceptions.SSLError):   # the system's trust store does not know the CA
        requests.get(f"{ep.rest_url}/api/v5/public/time", timeout=5)
    with pytest.raises(requests.exceptions.ConnectionError):   # and the TLS port speaks nothing but TLS
        requests.get(f"http://{harness.tls_listen}/api/v5/public/time", timeout=5)


def test_tls_connections_go_through_the_venue_link_and_its_toxics_act(harness: Harness) -> None:
    ep = harness.endpoints()
    harness.proxy.add_toxic("latency", latency=150, stream="downstream")
    r = requests.get(f"{ep.rest_url}/api/v5/public/time", verify=harness.ca_file, timeout=5)
    assert r.status_code == 200 and r.elapsed.total_seconds() >= 0.15
    proof = harness.proxy.wait_toxic_acted("latency_downstream", timeout=5)
    assert proof["bytes_acted"] > 0 and harness.proxy.counters()["connections_opened"] >= 1


def test_websocket_client_over_wss(harness: Harness) -> None:
    ws = websocket.create_connection(harness.endpoints().ws_public_url, sslopt={"ca_certs": harness.ca_file},
                                     timeout=5)
    try:
        ws.send(json.dumps({"op": "subscribe", "args": [{"channel": "books5", "instId": "BTC-USDT-SWAP"}]}))
        reply = json.loads(ws.recv())
    finally:
        ws.close()
    assert reply.get("event") in ("subscribe", "error"), reply     # the venue's answer, over wss


def test_aiohttp_over_wss_and_https(harness: Harness) -> None:
    ep = harness.endpoints()

    async def run() -> tuple[int, str]:
        ctx = ssl.create_default_context(cafile=harness.ca_file)
        async with aiohttp.ClientSession() as s:
            async with s.get(f"{ep.rest_url}/api/v5/public/time", ssl=ctx) as r:
                status = r.status
            async with s.ws_connect(ep.ws_private_url, ssl=ctx) as ws:
                await ws.send_json({"op": "login", "args": [{"apiKey": "k", "passphrase": "p",
                                                             "timestamp": "0", "sign": "s"}]})
                msg = await ws.receive(timeout=5)
                return status, msg.data

    status, data = asyncio.run(run())
    assert status == 200 and "event" in json.loads(data)


def test_a_process_trusts_the_ca_through_ssl_cert_file_alone(harness: Harness) -> None:
    """What a target gets: SSL_CERT_FILE (OpenSSL's default store), used by aiohttp and urllib with no
    option at all, as the reference target uses it."""
    code = ("import asyncio, aiohttp, os, urllib.request as u, json\n"
            "print(json.loads(u.urlopen(os.environ['URL'] + '/api/v5/public/time', timeout=5).read())['code'])\n"
            "async def main():\n"
            "    async with aiohttp.ClientSession() as s:\n"
            "        async with s.ws_connect(os.environ['WS']) as ws:\n"
            "            await ws.send_str('ping'); print((await ws.receive(timeout=5)).data)\n"
            "asyncio.run(main())\n")
    ep = harness.endpoints()
    env = {**os.environ, "URL": ep.rest_url, "WS": ep.ws_public_url, "SSL_CERT_FILE": str(harness.ca_file)}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["0", "pong"]


def test_ccxt_with_only_its_url_changed(harness: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    ccxt = pytest.importorskip("ccxt")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(harness.ca_file))   # what a TLS target gets
    # ccxt ignores the environment unless told to read it (its own option, documented by ccxt).
    ex = ccxt.okx({"enableRateLimit": False, "requests_trust_env": True})
    ex.urls["api"] = {"rest": harness.endpoints().rest_url}
    ex.set_sandbox_mode(False)
    assert abs(ex.fetch_time() - ex.milliseconds()) < 60_000


def test_target_gets_https_urls_the_ca_placeholder_and_variables(harness: Harness, tmp_path: Path) -> None:
    config = load_target(TLS_TARGET)
    assert config.tls
    site = DrillSite("d1", tmp_path, "r").create()
    rendered = render_local(config, site, harness, 12345)
    assert rendered.env["OKX_REST_URL"] == f"https://{harness.tls_listen}"
    assert rendered.env["OKX_WS_PRIVATE_URL"] == f"wss://{harness.tls_listen}/ws/v5/private"
    assert {k: rendered.env[k] for k in CA_ENV_VARS} == {k: harness.ca_file for k in CA_ENV_VARS}
    assert TLS_PROXY in harness.info.get("proxy_tls", "") or harness.info["proxy_tls"] == harness.tls_listen
    config.env["MY_CA"] = "{venue_ca_file}"
    config.env["SSL_CERT_FILE"] = "/etc/my-bundle.pem"                  # the target file's own value wins
    rendered = render_local(config, site, harness, 12345)
    assert rendered.env["MY_CA"] == harness.ca_file and rendered.env["SSL_CERT_FILE"] == "/etc/my-bundle.pem"


def test_without_tls_no_ca_and_a_clear_error_for_the_placeholder(tmp_path: Path) -> None:
    doc = yaml.safe_load((REPO / "targets" / "okx_demo_api.yaml").read_text())
    doc["env"]["MY_CA"] = "{venue_ca_file}"
    path = tmp_path / "t.yaml"
    path.write_text(yaml.safe_dump(doc))
    with pytest.raises(TargetConfigError, match=r"field 'env.MY_CA': unknown placeholder \{venue_ca_file\} "
                                                r"\(it needs 'venue: \{tls: true\}'\)"):
        load_target(path)  # named when the file is loaded, at collection (issue 23)
    with local_harness(seed=7, api_key=ApiKey.generate()) as h:
        assert h.tls_listen is None and h.endpoints().rest_url.startswith("http://")
        doc["env"].pop("MY_CA")
        path.write_text(yaml.safe_dump(doc))
        rendered = render_local(load_target(path), DrillSite("d", tmp_path, "r").create(), h, 1)
        assert not set(CA_ENV_VARS) & set(rendered.env)


def test_bad_venue_section_names_file_and_field(tmp_path: Path) -> None:
    doc = yaml.safe_load(TLS_TARGET.read_text())
    doc["venue"] = {"tls": "yes"}
    path = tmp_path / "t.yaml"
    path.write_text(yaml.safe_dump(doc))
    with pytest.raises(TargetConfigError, match=r"t\.yaml: field 'venue.tls': 'yes' is not"):
        load_target(path)


def test_tls_copy_is_the_reference_target_with_tls_on() -> None:
    ref = yaml.safe_load((REPO / "targets" / "okx_demo_api.yaml").read_text())
    tls = yaml.safe_load(TLS_TARGET.read_text())
    assert tls.pop("venue") == {"tls": True}
    assert tls.pop("name") == "okx_demo_api_tls" and ref.pop("name") == "okx_demo_api"
    # one folder deeper: the manifest path (relative to the target file's folder) gains one "../"
    assert tls["env"].pop("TARGET_REASON_MANIFEST") == "../" + ref["env"].pop("TARGET_REASON_MANIFEST")
    assert tls == ref


def test_process_backend_makes_the_ca_on_demand_only(tmp_path: Path) -> None:
    backend = ProcessBackend(BackendSettings(run_id="r", scratch=tmp_path))
    site = DrillSite("d", tmp_path / "w", "r").create()
    with backend.harness(site, load_target(REPO / "targets" / "okx_demo_api.yaml")) as h:
        assert h.ca_file is None and not (tmp_path / "tls").exists()
    with backend.harness(site, load_target(TLS_TARGET)) as h:
        assert h.ca_file == str(tmp_path / "tls" / "ca" / "ca.pem") and h.tls_listen


def test_proxy_tls_option_is_checked() -> None:
    with ProxyServer() as server:
        with pytest.raises(BadRequest, match="tls.cert: cannot load"):
            server.create_proxy("x", upstream="127.0.0.1:1", tls={"cert": "/nonexistent.pem"})
        with pytest.raises(BadRequest, match="bad field tls"):
            server.create_proxy("y", upstream="127.0.0.1:1", tls={"certificate": "a"})


PYTHON_OKX = r'''
import asyncio, json, os, sys
from okx import PublicData
from okx.websocket.WsPublicAsync import WsPublicAsync

api = PublicData.PublicAPI(flag="1", domain=os.environ["URL"])
print(api.get_system_time()["code"])

async def main():
    got = asyncio.get_running_loop().create_future()
    ws = WsPublicAsync(url=os.environ["WS"])
    await ws.connect()
    await ws.subscribe([{"channel": "books5", "instId": "BTC-USDT-SWAP"}], lambda m: got.done() or got.set_result(m))
    consumer = asyncio.ensure_future(ws.consume())
    msg = json.loads(await asyncio.wait_for(got, 10))
    consumer.cancel()
    await ws.websocket.close()
    print("event" in msg or "data" in msg)

asyncio.run(main())
'''


def test_python_okx_rest_and_ws_with_only_urls_and_ssl_cert_file(harness: Harness) -> None:
    """python-okx's WS always connects with TLS (its own context: the default store plus certifi's);
    with SSL_CERT_FILE it trusts the session CA, and so does its REST client (httpx)."""
    pytest.importorskip("okx")
    ep = harness.endpoints()
    env = {**os.environ, "URL": ep.rest_url, "WS": ep.ws_public_url, "SSL_CERT_FILE": str(harness.ca_file)}
    out = subprocess.run([sys.executable, "-c", PYTHON_OKX], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["0", "True"]


def test_external_backend_tls_listener_on_its_fixed_port(tmp_path: Path) -> None:
    from pytest_chaosdrill.backends.external import ExternalBackend
    from pytest_chaosdrill.backends.local import free_port

    doc = yaml.safe_load(TLS_TARGET.read_text())
    port = free_port()
    doc["external"] = {"status_port": 1, "proxy_tls_port": port}
    path = tmp_path / "ext.yaml"
    path.write_text(yaml.safe_dump(doc))
    backend = ExternalBackend(BackendSettings(run_id="r"))
    try:
        with backend.harness(DrillSite("d", tmp_path / "w", "r").create(), load_target(path)) as h:
            assert h.tls_listen == f"127.0.0.1:{port}"
            r = requests.get(f"https://127.0.0.1:{port}/api/v5/public/time", verify=h.ca_file, timeout=5)
            assert r.status_code == 200
            folder = Path(h.ca_file).parents[1]
    finally:
        backend.close()
    assert not folder.exists()          # the session CA's temp folder goes with the backend
