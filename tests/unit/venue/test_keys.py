"""The drill's venue key: the target file's ``venue:`` section (validated), the per-drill key and its
placeholders, redaction of its secrets, and the control API that adds keys."""
from __future__ import annotations

from pathlib import Path

import pytest
import requests

from pytest_chaosdrill.backends.base import Harness, key_placeholders
from pytest_chaosdrill.target import TargetConfigError, load_target
from pytest_chaosdrill.venue import VenueClient, VenueServer
from pytest_chaosdrill.venue.auth import ApiKey, rest_headers

BASE = 'name: t\ncommand: ["x"]\nstatus_url: "http://127.0.0.1:1/s"\nenv: {K: "{venue_api_key}", S: "{venue_secret_key}", P: "{venue_passphrase}"}\n'


def test_a_declared_venue_key_is_the_drill_key_and_its_secrets_are_redacted(tmp_path: Path) -> None:
    f = tmp_path / "t.yaml"
    f.write_text(BASE + "venue: {key: {api_key: baked, secret_key: s3cr3t-value, passphrase: pass-value}}\n")
    cfg = load_target(f)
    key = cfg.drill_key()
    assert (key.api_key, key.secret_key, key.passphrase) == ("baked", "s3cr3t-value", "pass-value")
    assert "s3cr3t-value" not in repr(key) and "pass-value" not in repr(cfg)
    rendered = cfg.render(key_placeholders(Harness(venue=None, proxy=None, proxy_listen="", api_key=key)))
    assert rendered.env == {"K": "baked", "S": "s3cr3t-value", "P": "pass-value"}
    # redacted whatever the env names are (K/S/P do not look secret)
    assert {"s3cr3t-value", "pass-value"} <= set(rendered.secrets())


def test_without_a_venue_section_every_drill_gets_a_fresh_key(tmp_path: Path) -> None:
    f = tmp_path / "t.yaml"
    f.write_text(BASE)
    cfg = load_target(f)
    a, b = cfg.drill_key(), cfg.drill_key()
    assert a.api_key != b.api_key and a.secret_key != b.secret_key
    rendered = cfg.render(key_placeholders(Harness(venue=None, proxy=None, proxy_listen="", api_key=a)))
    assert {a.secret_key, a.passphrase} <= set(rendered.secrets())


def test_a_bad_venue_section_is_one_error_naming_the_field(tmp_path: Path) -> None:
    f = tmp_path / "t.yaml"
    f.write_text(BASE + "venue: {key: {api_key: baked, secret_key: s}}\n")
    with pytest.raises(TargetConfigError, match=r"(?s)t\.yaml.*venue\.key\.passphrase. is required"):
        load_target(f)


def test_the_control_api_adds_keys_and_never_answers_secrets() -> None:
    key = ApiKey.generate()
    path = "/api/v5/account/balance"
    with VenueServer(port=0, tick_ms=60_000) as v, VenueClient(v.base_url) as c:
        # no key yet: the venue does not authenticate (its own unit tests)
        assert requests.get(v.rest_url + path, timeout=5).json()["code"] == "0"
        r = requests.post(v.control_url + "/keys", json={"api_key": key.api_key, "secret_key": key.secret_key,
                                                        "passphrase": key.passphrase}, timeout=5)
        assert r.json() == {"api_key": key.api_key}
        assert requests.get(v.rest_url + path, timeout=5).status_code == 401  # now it does
        assert requests.get(v.rest_url + path, headers=rest_headers(key, "GET", path), timeout=5).json()["code"] == "0"
        other = ApiKey.generate()
        c.add_key(other)
        assert requests.get(v.rest_url + path, headers=rest_headers(other, "GET", path), timeout=5).json()["code"] == "0"
        assert requests.post(v.control_url + "/keys", json={"api_key": "x"}, timeout=5).status_code == 400
