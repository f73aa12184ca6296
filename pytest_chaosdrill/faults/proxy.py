"""Proxy faults (``proxy.toxic``): a toxic on the target↔venue link, proved by the toxic's own counters."""
from __future__ import annotations

from typing import Any

from ..proxy.toxics import ToxicError, make_toxic
from .base import FaultNotLanded, Trigger


class ProxyToxic(Trigger):
    """A toxic on the target↔venue link (``proxy.toxic``): proof is the toxic's own counters."""

    kind = "proxy.toxic"

    @classmethod
    def check_params(cls, params: dict[str, Any]) -> list[str]:
        attrs = {k: v for k, v in params.items() if k not in ("type", "name", "stream", "toxicity")}
        try:
            make_toxic(params.get("type", ""), stream=params.get("stream", "downstream"),
                       toxicity=params.get("toxicity", 1.0), name=params.get("name"), attributes=attrs)
        except ToxicError as exc:
            return [str(exc)]
        return []

    def fire(self) -> dict[str, Any]:
        params = dict(self.params)
        self.toxic_type = params.pop("type")
        self.toxic_name = params.pop("name", f"drill_{self.toxic_type}")
        stream = params.pop("stream", "downstream")
        toxicity = params.pop("toxicity", 1.0)
        self.ctx.proxy.add_toxic(self.toxic_type, name=self.toxic_name, stream=stream, toxicity=toxicity, **params)
        return {"toxic": self.toxic_name, "type": self.toxic_type, "stream": stream, "toxicity": toxicity,
                "attributes": params}

    def wait_landed(self, timeout: float) -> dict[str, Any]:
        try:
            counters = self.ctx.proxy.wait_toxic_acted(self.toxic_name, timeout=timeout)
        except TimeoutError as exc:
            raise FaultNotLanded(f"toxic {self.toxic_name} was added but never acted on traffic: {exc}") from None
        self.proof = dict(counters)
        self.landed_mono = self.proof.get("first_acted_mono")
        return self.proof

    def release(self) -> dict[str, Any]:
        counters = dict(self.ctx.proxy.toxic_counters(self.toxic_name))
        self.ctx.proxy.remove_toxic(self.toxic_name)
        return {"removed": self.toxic_name, "final_counters": counters}
