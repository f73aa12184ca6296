"""Network faults (``network.disconnect``): the target's container cut from the venue's network."""
from __future__ import annotations

from ..backends.base import NETWORK_CUT
from .base import BackendFault


class NetworkDisconnect(BackendFault):
    """Disconnect the target's container from the network it shares with the venue (docker backend)."""

    kind, apply, undo, proof_key = "network.disconnect", "network_disconnect", "network_connect", "disconnected"
    requires = frozenset({NETWORK_CUT})
