"""A bot with OKX's real hostnames built in, in a container, reaches the drill's venue and nothing else
(docker backend, target file ``venue: {tls: true}``; docs/docker.md, "OKX's hostnames").

The bot is a few lines of Python run from the project image: it calls ``https://www.okx.com`` and the
private WS at ``wss://wspap.okx.com:8443``, with no URL, host or CA option of its own: the container
resolves OKX's names to the drill's proxy, which answers TLS with the session CA's certificate, and the
CA reaches the bot through ``SSL_CERT_FILE`` / ``REQUESTS_CA_BUNDLE``. That the real exchange cannot be
reached is proven without sending a packet anywhere but loopback and the project's own containers:
the engine says every network of the container is internal and its DNS is the container's loopback;
the container's routing table has its default route only into those internal networks; the OKX names
resolve to the proxy and a name that is not declared does not resolve, its lookup caught on the
container's own loopback (where the backend points its DNS).
Without an engine or the images the test SKIPS; ``CHAOSDRILL_REQUIRE_DOCKER=1`` makes that a failure.
"""
from __future__ import annotations

import ipaddress
import json
import socket
import struct
import time
from pathlib import Path
from typing import Any, Iterator

import pytest
import requests

from pytest_chaosdrill.backends.base import DrillSite
from pytest_chaosdrill.backends.docker import CONTAINER_TLS_DIR, TLS_PORTS, DockerBackend
from pytest_chaosdrill.target import load_target
from pytest_chaosdrill.tls import CA_ENV_VARS, EXCHANGE_HOSTNAMES
from test_docker_backend import backend  # noqa: F401  (the engine fixture: skips without engine or images)

#: The bot: OKX's URLs as built into real clients, nothing about the drill. It records what it saw in
#: /data/bot.json and serves /status so the host can read it on the sealed network.
BOT = r'''
import asyncio, base64, datetime, hashlib, hmac, json, os, socket, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
import aiohttp, certifi, requests

KEY, SECRET, PASSPHRASE = os.environ["BOT_API_KEY"], os.environ["BOT_SECRET_KEY"], os.environ["BOT_PASSPHRASE"]

def sign(prehash):  # OKX v5: base64(HMAC-SHA256(secret, timestamp + method + requestPath + body))
    return base64.b64encode(hmac.new(SECRET.encode(), prehash.encode(), hashlib.sha256).digest()).decode()

out = {"env": {k: os.environ.get(k) for k in ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "NODE_EXTRA_CA_CERTS")}}
r = requests.get("https://www.okx.com/api/v5/public/time", timeout=10)
out["rest"] = {"status": r.status_code, "body": r.json()}
try:   # the same call trusting only the public roots (certifi): the venue's certificate is not theirs
    requests.get("https://www.okx.com/api/v5/public/time", timeout=10, verify=certifi.where())
    out["public_roots"] = "accepted"
except requests.exceptions.SSLError as exc:
    out["public_roots"] = "refused"

async def ws(url, msg):
    async with aiohttp.ClientSession() as s:
        async with s.ws_connect(url) as w:
            await w.send_json(msg)
            return json.loads((await w.receive(timeout=10)).data)

ts = str(int(time.time()))
login = {"op": "login", "args": [{"apiKey": KEY, "passphrase": PASSPHRASE, "timestamp": ts,
                                  "sign": sign(ts + "GET/users/self/verify")}]}
out["ws_private"] = asyncio.run(ws("wss://wspap.okx.com:8443/ws/v5/private", login))
out["ws_public"] = asyncio.run(ws("wss://ws.okx.com/ws/v5/public",
                                  {"op": "subscribe", "args": [{"channel": "books5", "instId": "BTC-USDT-SWAP"}]}))
# A signed private REST call, as a demo-trading bot makes it.
ts = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
path = "/api/v5/account/balance"
r = requests.get("https://www.okx.com" + path, timeout=10, headers={
    "OK-ACCESS-KEY": KEY, "OK-ACCESS-SIGN": sign(ts + "GET" + path), "OK-ACCESS-TIMESTAMP": ts,
    "OK-ACCESS-PASSPHRASE": PASSPHRASE, "x-simulated-trading": "1"})
out["rest_signed"] = {"status": r.status_code, "body": r.json()}
out["resolve"] = {h: socket.gethostbyname(h) for h in json.loads(os.environ["BOT_OKX_HOSTS"])}
# Where does a lookup of an undeclared name go? A listener on the container's own loopback port 53
# (the DNS the backend gives the container) catches it and does not answer.
dns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
dns.bind(("127.0.0.1", 53))
dns.settimeout(10)
try:
    out["undeclared"] = socket.gethostbyname("undeclared.invalid")
except socket.gaierror as exc:
    out["undeclared"] = None
try:
    out["undeclared_query_seen_on_loopback"] = b"undeclared" in dns.recvfrom(512)[0]
except socket.timeout:
    out["undeclared_query_seen_on_loopback"] = False
out["routes"] = open("/proc/net/route").read()
out["ca_dir"] = sorted(os.listdir(os.environ["BOT_CA_DIR"]))
with open("/data/bot.json.tmp", "w") as fh:
    json.dump(out, fh)
os.replace("/data/bot.json.tmp", "/data/bot.json")


class Status(BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps({"bot": "up"}).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *a):
        pass


ThreadingHTTPServer(("0.0.0.0", 9000), Status).serve_forever()
'''

BOT_TARGET = """
name: okx_hostname_bot
environment: PAPER
venue: {tls: true}
command: ["{python}", "/control/bot.py"]
env:
  BOT_API_KEY: "{venue_api_key}"
  BOT_SECRET_KEY: "{venue_secret_key}"
  BOT_PASSPHRASE: "{venue_passphrase}"
  BOT_CA_DIR: "%s"
  BOT_OKX_HOSTS: '%s'
status_url: "http://{host}:{status_port}/status"
docker:
  image: "${CHAOSDRILL_IMAGE:-chaosdrill/target:latest}"
  command: ["python3", "/control/bot.py"]
  status_port: 9000
""" % (CONTAINER_TLS_DIR, json.dumps(list(EXCHANGE_HOSTNAMES)))


def _default_gateways(routes: str) -> list[str]:
    """Gateways of the default routes in /proc/net/route (little-endian hex)."""
    out = []
    for line in routes.splitlines()[1:]:
        f = line.split()
        if len(f) > 2 and f[1] == "00000000":
            out.append(socket.inet_ntoa(struct.pack("<I", int(f[2], 16))))
    return out


def _poll_file(path: Path, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if time.monotonic() > deadline:
            raise AssertionError(f"{path} not written within {timeout}s")
        time.sleep(0.1)
    return json.loads(path.read_text())


def test_bot_with_okx_hostnames_reaches_the_venue_and_nothing_else(backend: DockerBackend, tmp_path: Path) -> None:
    (tmp_path / "bot.yaml").write_text(BOT_TARGET)
    config = load_target(tmp_path / "bot.yaml")
    site = DrillSite("tls_bot", tmp_path / "drill", "unused").create()
    (site.control_dir / "bot.py").write_text(BOT)
    with backend.harness(site, config) as harness:
        assert harness.endpoints().rest_url == "https://proxy"
        target = backend.create_target(config, site, harness)
        try:
            target.start()
            seen = _poll_file(site.data_dir / "bot.json", 90)
            engine = target.engine
            proxy_ip = harness.info["okx_hostnames_to"]

            # It reached the venue through the drill's proxy, over TLS, with OKX's own names.
            assert seen["rest"]["status"] == 200 and seen["rest"]["body"]["code"] == "0"
            # Signed with the drill's demo key: the login succeeds and a private REST call is served.
            assert (seen["ws_private"]["event"], seen["ws_private"]["code"]) == ("login", "0"), seen["ws_private"]
            assert seen["ws_public"]["event"] == "subscribe", seen["ws_public"]
            assert seen["rest_signed"]["status"] == 200 and seen["rest_signed"]["body"]["code"] == "0", seen["rest_signed"]
            assert seen["rest_signed"]["body"]["data"][0]["details"][0]["ccy"] == "USDT"
            assert seen["public_roots"] == "refused"             # the certificate is the session CA's only
            assert seen["env"] == {k: f"{CONTAINER_TLS_DIR}/ca.pem" for k in CA_ENV_VARS}
            assert seen["ca_dir"] == ["ca.pem"]                  # no key of any kind in the target
            assert harness.proxy.counters()["connections_opened"] >= 3   # REST + two WS, all on the venue link
            signed = [e for e in harness.venue.ledger() if e["type"] == "request" and e["path"] == "/api/v5/account/balance"]
            assert [(e["auth"], e["simulated"]) for e in signed] == [("0", True)]  # the venue checked the signature
            tls_proxies = backend_proxies(harness)
            assert {f"venue_tls{p}" for p in TLS_PORTS} <= set(tls_proxies)

            # Names: OKX's resolve to the proxy; a name nobody declared does not resolve.
            assert seen["resolve"] == {h: proxy_ip for h in EXCHANGE_HOSTNAMES}
            assert seen["undeclared"] is None
            assert seen["undeclared_query_seen_on_loopback"] is True    # asked of the container's loopback only

            # No route out: the engine's view of every network the container is on ...
            data = engine.inspect(target.container)
            assert data["HostConfig"]["Dns"] == ["127.0.0.1"]
            nets = data["NetworkSettings"]["Networks"]
            assert set(nets) == {target.stack.core_network, target.edge_network}
            subnets = []
            for name in nets:
                info = engine.network_inspect(name)
                assert info["Internal"] is True, f"network {name} is not internal"
                subnets += [ipaddress.ip_network(c["Subnet"]) for c in info["IPAM"]["Config"]]
            # ... and the container's own routing table: every default route leads into them.
            gateways = _default_gateways(seen["routes"])
            assert gateways and all(any(ipaddress.ip_address(g) in n for n in subnets) for g in gateways)

            # The host reads the status endpoint at the container's address on its internal edge network.
            assert target.target.status_url == f"http://{target.sealed.status_ip}:9000/status"
            assert requests.get(target.target.status_url, timeout=5).json() == {"bot": "up"}
            assert target.describe()["sealed"]["okx_hostnames"]["www.okx.com"] == proxy_ip
        finally:
            target.stop(5)
            target.close()


def backend_proxies(harness: Any) -> dict[str, Any]:
    return harness.proxy.api.proxies()
