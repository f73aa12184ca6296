"""The safety rules in one place (pytest_chaosdrill.guard): loopback hosts and live environments."""
from __future__ import annotations

import pytest

from pytest_chaosdrill import guard


@pytest.mark.parametrize("url, extra, local", [
    ("http://127.0.0.1:8080/s", (), True), ("http://127.9.9.9/s", (), True), ("http://[::1]:1/s", (), True),
    ("http://localhost/s", (), True), ("http://venue/s", ("venue",), True), ("http://venue/s", (), False),
    ("https://www.okx.com/api", (), False), ("http://10.0.0.1/s", (), False), ("http:///s", (), False),
])
def test_is_local_url(url: str, extra: tuple[str, ...], local: bool) -> None:
    assert guard.is_local_url(url, extra) is local


def test_url_refusal_names_why() -> None:
    assert guard.url_refusal("http://127.0.0.1/s") is None
    assert "not http(s)" in (guard.url_refusal("ftp://127.0.0.1/s") or "")
    assert "no host" in (guard.url_refusal("http:///s") or "")
    assert "neither loopback nor a drill-created host" in (guard.url_refusal("http://203.0.113.7/s") or "")
    assert guard.url_refusal("http://venue/s", ["venue"]) is None


@pytest.mark.parametrize("value, live", [("LIVE", True), (" prod ", True), ("Production", True), ("paper", False),
                                         ("", False), (None, False), (1, False)])
def test_live_names_and_statuses(value: object, live: bool) -> None:
    assert guard.is_live_name(value) is live
    assert (guard.is_live_status({"deployment_environment": value}) is not None) is live
