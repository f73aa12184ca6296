"""Toxic definitions: Toxiproxy's toxic types, their attributes, validation and JSON shape.

This module only describes toxics; the data path that applies them lives in ``core``.
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any, Mapping

STREAMS = ("upstream", "downstream")

# type -> attribute defaults. Names and units are Toxiproxy's (ms unless noted).
TOXIC_TYPES: dict[str, dict[str, int]] = {
    "latency": {"latency": 0, "jitter": 0},  # ms
    "bandwidth": {"rate": 0},  # KB/s (1 KB = 1000 bytes); 0 = unlimited
    "slow_close": {"delay": 0},  # ms
    "timeout": {"timeout": 0},  # ms; 0 = hold forever (until removed)
    "reset_peer": {"timeout": 0},  # ms after the first data before the RST
    "slicer": {"average_size": 0, "size_variation": 0, "delay": 0},  # bytes, bytes, µs
    "limit_data": {"bytes": 0},  # bytes passed before the connection is closed
    # Not in Toxiproxy: a partition with requests in flight (see docs/proxy.md). ms, ms.
    "partition": {"cut": 3000, "deliver_after": 1500},
}
# type -> string attributes and their defaults (every other attribute is a whole number).
STRING_ATTRIBUTES: dict[str, dict[str, str]] = {
    "partition": {"match": ""},  # the cut starts on the first chunk containing these bytes ("" = at once)
}


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
    if type_ not in TOXIC_TYPES:
        raise ToxicError(f"invalid toxic type {type_!r}; known types: {', '.join(TOXIC_TYPES)}")
    strings = STRING_ATTRIBUTES.get(type_, {})
    allowed: dict[str, Any] = {**TOXIC_TYPES[type_], **strings}
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


def latency_delay_s(attributes: Mapping[str, int], rng: random.Random) -> float:
    """Delay for one chunk: ``latency`` +/- uniform ``jitter`` (never negative), in seconds."""
    delay_ms = attributes["latency"]
    jitter = attributes["jitter"]
    if jitter:
        delay_ms += rng.uniform(-jitter, jitter)
    return max(0.0, delay_ms / 1000.0)


def slice_sizes(total: int, attributes: Mapping[str, int], rng: random.Random) -> list[int]:
    """Split ``total`` bytes into slicer packet sizes: ``average_size`` +/- ``size_variation``."""
    avg = attributes["average_size"]
    if avg <= 0 or total <= 0:
        return [total] if total else []
    var = min(attributes["size_variation"], avg - 1)  # a slice is at least 1 byte
    sizes: list[int] = []
    left = total
    while left > 0:
        size = avg + (rng.randint(-var, var) if var else 0)
        size = min(max(1, size), left)
        sizes.append(size)
        left -= size
    return sizes
