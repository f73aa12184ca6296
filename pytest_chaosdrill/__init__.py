"""pytest-chaosdrill: chaos drills for trading services as pytest test cases."""
from __future__ import annotations

__version__ = "0.1.0"
