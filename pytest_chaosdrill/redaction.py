"""Value-based redaction of secrets in evidence: every form of every secret value, at byte level.

Redacting by key *name* is both too broad (a hook log's ``"token": "KILL_X"`` and prose like
"reason token: fail closed" get blanked) and too narrow (a password inside
``DB_URL=postgres://user:PASS@host/db`` under an innocuous name survives). A :class:`Redactor`
instead knows the secret *values* and replaces each of them wherever it appears, in every
encoding a target, a log line or an evidence writer is likely to produce:

* raw (UTF-8, and Latin-1 when the value is Latin-1-encodable);
* JSON-escaped, with ``ensure_ascii`` on (``\\u00e9``, also upper-case hex) and off, with
  ``/`` escaped as ``\\/`` or not, and JSON-in-JSON (escaped twice);
* Python ``repr`` escaping (a log that prints ``repr(value)``);
* URL-encoded: ``quote(v, safe="")``, ``quote(v)``, ``quote_plus(v)``, lower-case hex too;
* XML/HTML-escaped (JUnit XML writes ``&lt;``, ``&amp;``, ``&quot;``);
* base64 (standard and URL-safe, padded or not) of the value *as a whole*. This is cheap but
  partial: a secret base64-encoded as part of a longer string is at an arbitrary offset and is
  not recognised (only the whole-value encoding, e.g. a Basic-auth ``user:pass``, is).

Hex forms are not covered. Values shorter than :data:`MIN_SECRET_LEN` (4) characters and
obvious non-secrets (``true``, ``none``, ``0``, ...) are ignored: redacting them would mangle
ordinary text while protecting nothing. Replacement is :data:`MARKER`.
"""
from __future__ import annotations

import base64
import html
import json
import logging
import os
import re
import shutil
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus, unquote

MARKER = "***REDACTED***"
#: Shorter values are never treated as secrets (they would match ordinary text everywhere).
MIN_SECRET_LEN = 4
#: Values of secret-looking variables that are settings, not secrets.
NOT_SECRETS = frozenset({"true", "false", "none", "null", "yes", "no", "on", "off", "enabled", "disabled",
                         "required", "optional", "unset", "empty", "changeme_not_set"})

#: Words of an environment variable name that mark its value as a secret.
SECRET_WORDS = frozenset({"KEY", "KEYS", "SECRET", "SECRETS", "PASSPHRASE", "PASSWORD", "PASSWORDS", "PASSWD",
                          "TOKEN", "TOKENS", "CREDENTIAL", "CREDENTIALS", "CREDS", "AUTH", "SIGNATURE", "COOKIE"})
# Not "PRIVATE": OKX's private WebSocket URL (EXCHANGE_WS_PRIVATE) is an address, not a secret; a private
# key is still caught by KEY and the PRIVATEKEY compound.
#: Glued compounds seen in the wild (``APIKEY``); a plain suffix match would catch ``MONKEY``.
SECRET_COMPOUNDS = frozenset({"APIKEY", "ACCESSKEY", "SECRETKEY", "PRIVATEKEY", "AUTHTOKEN", "ACCESSTOKEN",
                              "APITOKEN", "PASSKEY", "APISECRET", "CLIENTSECRET"})
# Not secrets although a word matches (PWD is the shell's working directory, not a password).
_NAME_EXCEPTIONS = frozenset({"SSH_AUTH_SOCK", "XAUTHORITY"})

_WORDS = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+")
# scheme://user[:password]@ ; the password may hold anything but '@', '/' and blanks.
_URL_USERINFO = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://([^\s/@:]*)(?::([^\s/@]*))?@")


def name_looks_secret(name: str) -> bool:
    """True when an environment variable *name* says its value is a secret (word-wise match).

    ``OKX_API_KEY``, ``okxPassphrase``, ``DB_PASSWORD``, ``APIKEY`` yes; ``KEYBOARD_LAYOUT``,
    ``MONKEY``, ``PWD``, ``SSH_AUTH_SOCK`` no.
    """
    if name.upper() in _NAME_EXCEPTIONS:
        return False
    words = [w.upper() for w in _WORDS.findall(name)]
    return any(w in SECRET_WORDS or w in SECRET_COMPOUNDS for w in words)


def url_credentials(value: str) -> list[str]:
    """Credentials inside URLs in ``value``: each password (as written and decoded) and each ``user:password``."""
    out: list[str] = []
    for m in _URL_USERINFO.finditer(value):
        user, password = m.group(1), m.group(2)
        if password:
            out += [password, unquote(password), f"{user}:{password}", f"{unquote(user)}:{unquote(password)}"]
    return out


def _forms(value: str) -> set[str]:
    """Every textual form of ``value`` the redactor looks for."""
    forms = {value}
    j_ascii = json.dumps(value)[1:-1]
    j_utf8 = json.dumps(value, ensure_ascii=False)[1:-1]
    forms |= {j_ascii, j_utf8, j_ascii.replace("/", "\\/"), j_utf8.replace("/", "\\/")}
    forms.add(re.sub(r"\\u([0-9a-f]{4})", lambda m: "\\u" + m.group(1).upper(), j_ascii))
    forms.add(json.dumps(j_ascii)[1:-1])  # JSON inside a JSON string
    forms.add(json.dumps(j_utf8, ensure_ascii=False)[1:-1])
    forms.add(repr(value)[1:-1])
    forms.add(value.encode("unicode_escape").decode("ascii"))
    for q in (quote(value, safe=""), quote(value), quote_plus(value), quote_plus(value, safe="")):
        forms.add(q)
        forms.add(re.sub(r"%[0-9A-F]{2}", lambda m: m.group(0).lower(), q))
    forms |= {html.escape(value, quote=True), html.escape(value, quote=False),
              html.escape(value, quote=True).replace("&#x27;", "&apos;")}
    raw = value.encode("utf-8")
    for enc in (base64.b64encode(raw), base64.urlsafe_b64encode(raw)):
        text = enc.decode("ascii")
        forms |= {text, text.rstrip("=")}
    return {f for f in forms if len(f) >= MIN_SECRET_LEN}


class Redactor:
    """Replaces known secret values, in all their forms, with :data:`MARKER`.

    Build it with :meth:`collect` (from the target's environment and its ``secrets:`` list) or
    directly from values. Redaction is value-based only: a key *named* ``token`` whose value is
    not a secret survives.
    """

    def __init__(self, values: Iterable[str] = (), *, min_length: int = MIN_SECRET_LEN) -> None:
        self.min_length = min_length
        secrets = {v for v in values if isinstance(v, str) and self._worth_redacting(v)}
        self._count = len(secrets)
        forms: set[str] = set()
        for v in secrets:
            forms |= {f for f in _forms(v) if len(f) >= min_length}
        # Longest first: alternation takes the first alternative that matches at a position.
        ordered = sorted(forms, key=lambda f: (-len(f), f))
        self._text_re = re.compile("|".join(map(re.escape, ordered))) if ordered else None
        byte_forms: set[bytes] = {f.encode("utf-8") for f in forms}
        for v in secrets:
            try:
                byte_forms.add(v.encode("latin-1"))
            except UnicodeEncodeError:
                pass
        ordered_b = sorted(byte_forms, key=lambda f: (-len(f), f))
        self._bytes_re = re.compile(b"|".join(map(re.escape, ordered_b))) if ordered_b else None
        self._marker_b = MARKER.encode("ascii")
        self._numbers = {v for v in secrets if v.isdigit()}

    def _worth_redacting(self, value: str) -> bool:
        v = value.strip()
        return len(v) >= self.min_length and v.lower() not in NOT_SECRETS and v != MARKER

    @classmethod
    def collect(cls, env: Mapping[str, str], extra: Iterable[str] = (), *,
                min_length: int = MIN_SECRET_LEN) -> "Redactor":
        """Secrets from ``env`` (values of secret-looking names, credentials in any URL) and ``extra``."""
        values: list[str] = []
        for name, value in env.items():
            if not isinstance(value, str):
                continue
            if name_looks_secret(name):
                values.append(value)
                if value != value.strip():
                    values.append(value.strip())
            values += url_credentials(value)
        values += [v for v in extra if isinstance(v, str)]
        return cls(values, min_length=min_length)

    def __bool__(self) -> bool:
        return self._count > 0

    def __len__(self) -> int:
        """How many distinct secret values are known (never which)."""
        return self._count

    def __repr__(self) -> str:
        return f"<Redactor of {self._count} secret value(s)>"

    # -- redaction ------------------------------------------------------------------------
    def text(self, s: str) -> str:
        """``s`` with every form of every secret replaced."""
        if self._text_re is None or not s:
            return s
        return self._text_re.sub(MARKER, s)

    def bytes(self, b: bytes) -> bytes:
        """``b`` redacted at byte level: works on data that is not valid UTF-8."""
        if self._bytes_re is None or not b:
            return bytes(b)
        return self._bytes_re.sub(self._marker_b, bytes(b))

    def json_obj(self, obj: Any) -> Any:
        """A deep copy of a JSON-like value with secrets replaced in every string (keys too).

        A number whose digits are exactly a secret (a numeric PIN) becomes the marker string.
        """
        if isinstance(obj, str):
            return self.text(obj)
        if isinstance(obj, bool) or obj is None:
            return obj
        if isinstance(obj, int):
            return MARKER if self._numbers and str(obj) in self._numbers else obj
        if isinstance(obj, dict):
            return {self.text(k) if isinstance(k, str) else k: self.json_obj(v) for k, v in obj.items()}
        if isinstance(obj, (list, tuple)):
            return [self.json_obj(v) for v in obj]
        if isinstance(obj, (bytes, bytearray)):
            return self.bytes(bytes(obj))
        return obj

    def file(self, src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> bool:
        """Copy ``src`` to ``dst`` redacted (byte level, any encoding); True when something was replaced.

        ``src`` and ``dst`` may be the same path (redact in place).
        """
        data = Path(src).read_bytes()
        clean = self.bytes(data)
        Path(dst).write_bytes(clean)
        try:
            shutil.copymode(src, dst)
        except OSError:
            pass
        return clean != data

    def tree(self, root: str | os.PathLike[str]) -> list[Path]:
        """Redact every regular file under ``root`` in place; the files that changed."""
        changed = []
        for path in sorted(Path(root).rglob("*")):
            if path.is_file() and not path.is_symlink() and self.file(path, path):
                changed.append(path)
        return changed


class SecretLogFilter(logging.Filter):
    """A logging filter that redacts every record with every :class:`Redactor` it was given.

    Installed on the ``chaosdrill`` logger by :func:`guard_logs`: a log line such as the runner's
    ``drill: NOT PROVEN (<reason>)`` carries what the target echoed, and pytest shows it in live
    logs, in "Captured log" sections and in the JUnit file. Redactors accumulate over the session,
    so one drill's secrets never print during another's.
    """

    def __init__(self) -> None:
        super().__init__()
        self._redactors: list[Redactor] = []

    def add(self, redactor: Redactor) -> None:
        if redactor and all(r is not redactor for r in self._redactors):
            self._redactors.append(redactor)

    def filter(self, record: logging.LogRecord) -> bool:
        if not self._redactors:
            return True
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a malformed record is logging's problem, not a reason to leak
            message = str(record.msg)
        clean = message
        for r in self._redactors:
            clean = r.text(clean)
        if clean != message:
            record.msg, record.args = clean, None
        return True


_LOG_FILTER = SecretLogFilter()


def guard_logs(redactor: Redactor, logger: str = "chaosdrill") -> None:
    """Redact ``redactor``'s secrets from every record of ``logger`` (idempotent)."""
    log = logging.getLogger(logger)
    if _LOG_FILTER not in log.filters:
        log.addFilter(_LOG_FILTER)
    _LOG_FILTER.add(redactor)
