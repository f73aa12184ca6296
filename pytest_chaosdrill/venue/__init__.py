"""Venue simulator: an OKX-v5-shaped exchange sandbox with fault injection and a witness ledger.

Protocol and API reference: docs/venue-protocol.md.
"""
from __future__ import annotations

from .client import VenueClient, VenueControlError
from .control import ControlAPI, VenueControl
from .faults import FAULT_KINDS, FaultRecord
from .ledger import Ledger, classify_effect, parse_jsonl
from .market import INSTRUMENTS
from .server import VenueServer

__all__ = [
    "FAULT_KINDS", "INSTRUMENTS", "ControlAPI", "FaultRecord", "Ledger", "VenueClient", "VenueControl",
    "VenueControlError", "VenueServer", "classify_effect", "parse_jsonl",
]
