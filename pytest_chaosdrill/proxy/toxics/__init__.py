"""Toxics: Toxiproxy's toxic types (one module each, registered by name in :mod:`.base`), their
attributes, validation and JSON shape. The data path that runs them lives in ``core``; a new toxic
type is a new module here, imported below.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

# The built-in toxic types register themselves on import, in this order (Toxiproxy's, then ours).
from . import latency, bandwidth, slow_close, timeout, reset_peer, slicer, limit_data, partition  # noqa: F401
from .base import REGISTRY, Chunk, LinkClosed, ToxicKind, register
from .latency import latency_delay_s
from .slicer import slice_sizes

STREAMS = ("upstream", "downstream")

# The built-in types' attribute defaults (a view of the registry at import). Names and units are
# Toxiproxy's (ms unless noted; see each type's module).
TOXIC_TYPES: dict[str, dict[str, int]] = {name: dict(kind.defaults) for name, kind in REGISTRY.items()}
# type -> string attributes and their defaults (every other attribute is a whole number).
STRING_ATTRIBUTES: dict[str, dict[str, str]] = {name: dict(kind.strings) for name, kind in REGISTRY.items()
                                                if kind.strings}


class ToxicError(ValueError):
    """A toxic definition is invalid (unknown type, stream, attribute or value)."""


@dataclass
class Toxic:
    """A toxic as Toxiproxy's API describes it (a snapshot; changing it changes nothing)."""

    name: str
    type: str
    stream: str = "downstream"
    toxicity: float = 1.0
    attributes: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """Toxiproxy's JSON shape for a toxic."""
        return {
            "name": self.name,
            "type": self.type,
            "stream": self.stream,
            "toxicity": self.toxicity,
            "attributes": dict(self.attributes),
        }

    def copy(self) -> "Toxic":
        """An independent snapshot (the server's own object must not be shared across threads)."""
        return Toxic(self.name, self.type, self.stream, self.toxicity, dict(self.attributes))

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "Toxic":
        """Build a snapshot from Toxiproxy's JSON shape (no validation)."""
        return cls(
            name=data["name"],
            type=data["type"],
            stream=data.get("stream", "downstream"),
            toxicity=float(data.get("toxicity", 1.0)),
            attributes=dict(data.get("attributes") or {}),
        )


def _int_attr(type_: str, key: str, value: Any) -> int:
    # bool is an int subclass; "true" is never a sensible duration or size.
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ToxicError(f"{type_} attribute {key!r} must be a number, got {value!r}")
    if isinstance(value, float) and not value.is_integer():
        raise ToxicError(f"{type_} attribute {key!r} must be a whole number, got {value!r}")
    if value < 0:
        raise ToxicError(f"{type_} attribute {key!r} must be >= 0, got {value!r}")
    return int(value)


def validate_attributes(type_: str, attributes: Mapping[str, Any], base: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Return the full attribute dict for ``type_``: defaults (or ``base``) overlaid with ``attributes``.

    Unknown attribute names are rejected (Toxiproxy silently ignores them; a typo in a drill
    would then inject nothing, which is worse than an error).
    """
    kind = REGISTRY.get(type_)
    if kind is None:
        raise ToxicError(f"invalid toxic type {type_!r}; known types: {', '.join(REGISTRY)}")
    strings = kind.strings
    allowed: dict[str, Any] = {**kind.defaults, **strings}
    result = dict(base if base is not None else allowed)
    for key, value in attributes.items():
        if key not in allowed:
            raise ToxicError(f"unknown attribute {key!r} for toxic type {type_!r}; known: {', '.join(allowed)}")
        if key in strings:
            if not isinstance(value, str):
                raise ToxicError(f"{type_} attribute {key!r} must be a string, got {value!r}")
            result[key] = value
        else:
            result[key] = _int_attr(type_, key, value)
    try:
        kind.check(result)
    except ValueError as e:
        raise ToxicError(f"{type_}: {e}") from None
    return result


def validate_toxicity(value: Any) -> float:
    """Check a toxicity (probability 0..1 that the toxic applies to a connection)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= float(value) <= 1.0:
        raise ToxicError(f"toxicity must be a number between 0 and 1, got {value!r}")
    return float(value)


def validate_stream(value: Any) -> str:
    """Check a stream name."""
    if value not in STREAMS:
        raise ToxicError(f"stream was invalid, can be either upstream or downstream (got {value!r})")
    return str(value)


def make_toxic(
    type_: str,
    *,
    stream: str = "downstream",
    toxicity: float = 1.0,
    name: str | None = None,
    attributes: Mapping[str, Any] | None = None,
) -> Toxic:
    """Validate and build a toxic; the default name is Toxiproxy's ``<type>_<stream>``."""
    attrs = validate_attributes(type_, attributes or {})
    stream = validate_stream(stream)
    toxicity = validate_toxicity(toxicity)
    if name is None:
        name = f"{type_}_{stream}"
    if not isinstance(name, str) or not name or "/" in name:
        raise ToxicError(f"toxic name must be a non-empty string without '/', got {name!r}")
    return Toxic(name=name, type=type_, stream=stream, toxicity=toxicity, attributes=attrs)


__all__ = ["REGISTRY", "STREAMS", "STRING_ATTRIBUTES", "TOXIC_TYPES", "Chunk", "LinkClosed", "Toxic", "ToxicError",
           "ToxicKind", "latency_delay_s", "make_toxic", "register", "slice_sizes", "validate_attributes",
           "validate_stream", "validate_toxicity"]
