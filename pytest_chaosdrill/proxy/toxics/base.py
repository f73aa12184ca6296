"""The interface every toxic type implements, and their registry (as Toxiproxy's ``toxics.Register``).

A toxic type is one module of this package: a :class:`ToxicKind` subclass with its ``name``, its
attributes and their defaults, registered with :func:`register`. A link of the data path
(``core.Link``) runs each chunk through the link's toxics in the order they were added
(:meth:`ToxicKind.on_data`), the source's EOF through :meth:`ToxicKind.on_eof`, and tells a toxic
when it starts applying to a connection (:meth:`ToxicKind.on_start`).

The link a toxic gets offers: ``still(st)`` (the toxic still applies), ``wait_change(st, timeout)``,
``rng``, ``count_dropped(n)``, ``limit_passed``, ``timers`` and ``conn.close(reset=, reason=)``; ``st``
is the installed toxic (``st.spec`` its definition, ``st.acted(link, nbytes)`` counts an effect).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar


class LinkClosed(Exception):
    """A toxic closed the connection: the link's writer stops."""


@dataclass
class Chunk:
    """One chunk of data on its way through a link's toxics: the pieces it becomes (bytes, pause
    before each in s), the pacing rate (KB/s, 0: none) and the toxic that closes the link after it."""

    data: bytes
    arrived_mono: float
    pieces: list[tuple[bytes, float]] = field(default_factory=list)
    rate: int = 0
    close_after: Any = None

    def __post_init__(self) -> None:
        if not self.pieces:
            self.pieces = [(self.data, 0.0)]


class ToxicKind:
    """One toxic type. Subclasses set ``name`` and ``defaults`` (whole-number attributes, Toxiproxy's
    names and units) and ``strings`` (string attributes), and override the hooks they need."""

    name: ClassVar[str] = ""
    defaults: ClassVar[dict[str, int]] = {}
    strings: ClassVar[dict[str, str]] = {}

    @classmethod
    def check(cls, attributes: dict[str, Any]) -> None:
        """Refuse attribute values that no single attribute's type catches (raise ValueError)."""

    async def on_data(self, link: Any, st: Any, chunk: Chunk) -> bool:
        """Act on one chunk; False stops the chain (the later toxics do not see it)."""
        return True

    async def on_eof(self, link: Any, st: Any) -> None:
        """The source sent EOF: act before the destination is closed."""

    def on_start(self, link: Any, st: Any) -> None:
        """The toxic starts applying to ``link`` (added, updated, or a new connection rolled it)."""


#: name -> toxic type, in registration order (the order error messages list them in).
REGISTRY: dict[str, ToxicKind] = {}

K = TypeVar("K", bound=type[ToxicKind])


def register(kind: K) -> K:
    """Register a toxic type under its ``name`` (a class decorator)."""
    if not kind.name or kind.name in REGISTRY:
        raise ValueError(f"toxic type name {kind.name!r} is empty or registered twice")
    REGISTRY[kind.name] = kind()
    return kind
