"""The session's certificate authority: the one place that makes and holds the CA a drill's venue
is served with over ``https://`` / ``wss://`` (docs/targets.md, "TLS").

Made by trustme on first use, one per pytest session (per xdist worker). The CA's private key stays
in this process's memory: it is never written to a file, so it cannot reach evidence, a container or
a log. What is written, under the session's temp folder:

- ``ca/ca.pem``: the CA certificate only, what a target trusts (``{venue_ca_file}``,
  ``SSL_CERT_FILE``, ...); the ``ca/`` folder is what a target container gets mounted;
- ``proxy/leaf.pem``: the TLS listener's private key and certificate chain (mode 0600), issued by the
  CA for loopback, the docker harness's ``proxy`` host and OKX's hostnames; the ``proxy/`` folder is
  what the proxy container gets mounted.
"""
from __future__ import annotations

import os
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

#: Host names OKX's clients have built in (REST, public/private/business WS, AWS and demo WS hosts).
#: On the docker backend with TLS on, the target container resolves them to the drill's proxy.
EXCHANGE_HOSTNAMES: tuple[str, ...] = ("www.okx.com", "aws.okx.com", "ws.okx.com", "wspap.okx.com", "wsaws.okx.com")

#: Names (and addresses) the listener's certificate is valid for.
LEAF_NAMES: tuple[str, ...] = ("127.0.0.1", "::1", "localhost", "proxy", *EXCHANGE_HOSTNAMES)

#: The environment variables a TLS-on target gets, all set to the CA file: OpenSSL (Python's ``ssl``,
#: aiohttp, websocket-client, curl, Go's crypto/x509 on Linux), requests, Node.js.
CA_ENV_VARS: tuple[str, ...] = ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "NODE_EXTRA_CA_CERTS")

CA_FILE = "ca.pem"
LEAF_FILE = "leaf.pem"


@dataclass(frozen=True)
class TLSFiles:
    """Where the session's TLS material is on the host."""

    ca_dir: Path        # holds ca.pem only: safe to mount into a target container
    proxy_dir: Path     # holds leaf.pem (key + chain): for the TLS listener only

    @property
    def ca_file(self) -> Path:
        return self.ca_dir / CA_FILE

    @property
    def leaf_file(self) -> Path:
        return self.proxy_dir / LEAF_FILE


class SessionCA:
    """The per-session CA (trustme) and its files under ``folder``; made on the first :meth:`files`."""

    def __init__(self, folder: Path | None = None) -> None:
        # None: a private temp folder (0700), removed when this object is collected or at exit.
        self._tmp = None if folder is not None else tempfile.TemporaryDirectory(prefix="chaosdrill-tls-")
        self.folder = Path(folder) if folder is not None else Path(self._tmp.name)
        self._files: TLSFiles | None = None
        self._lock = threading.Lock()

    def cleanup(self) -> None:
        """Remove the temp folder this object made (a given folder is left to its owner)."""
        if self._tmp is not None:
            self._tmp.cleanup()
            self._files = None

    def __repr__(self) -> str:  # never the key
        return f"SessionCA({str(self.folder)!r}, made={self._files is not None})"

    def files(self) -> TLSFiles:
        """Make the CA and the listener's certificate (once) and return where their files are."""
        with self._lock:
            if self._files is None:
                self._files = self._make()
            return self._files

    def _make(self) -> TLSFiles:
        import trustme

        ca = trustme.CA(organization_name="pytest-chaosdrill session CA")
        leaf = ca.issue_cert(*LEAF_NAMES)
        files = TLSFiles(self.folder / "ca", self.folder / "proxy")
        files.ca_dir.mkdir(parents=True, exist_ok=True)
        files.proxy_dir.mkdir(parents=True, exist_ok=True)
        ca.cert_pem.write_to_path(str(files.ca_file))
        os.chmod(files.ca_file, 0o644)
        fd = os.open(files.leaf_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(leaf.private_key_and_cert_chain_pem.bytes())
        return files


def ca_env(ca_file: str) -> dict[str, str]:
    """The CA variables a TLS-on target gets (see :data:`CA_ENV_VARS`)."""
    return {name: ca_file for name in CA_ENV_VARS}
