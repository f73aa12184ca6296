"""The service's tests hand it the contract's reason-code manifest, as the target file does for drills."""
from __future__ import annotations

import os

import pytest

from pytest_chaosdrill.resources import default_manifest


@pytest.fixture(autouse=True, scope="session")
def reason_manifest() -> str:
    """``TARGET_REASON_MANIFEST`` for every service the tests start (they inherit os.environ)."""
    path = str(default_manifest())
    old = os.environ.get("TARGET_REASON_MANIFEST")
    os.environ["TARGET_REASON_MANIFEST"] = path
    yield path
    if old is None:
        os.environ.pop("TARGET_REASON_MANIFEST", None)
    else:
        os.environ["TARGET_REASON_MANIFEST"] = old
