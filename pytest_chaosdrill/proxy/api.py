"""Toxiproxy-compatible HTTP API (aiohttp) over a ``core.Hub``, plus GET .../counters."""
from __future__ import annotations

import json
from typing import Any, Awaitable, Callable

from aiohttp import web

from .core import Hub, ProxyRuntime
from .errors import BadRequest, ProxyError

# Reported by GET /version; the Toxiproxy major version whose API this follows.
API_VERSION = "2.x-compatible (pytest-chaosdrill)"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message, "status": status}, status=status)


@web.middleware
async def _errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ProxyError as exc:
        return _error(exc.status, str(exc))
    except web.HTTPException as exc:
        if exc.status >= 400:  # unknown path / method: JSON like every other error
            return _error(exc.status, exc.reason)
        raise


async def _body(request: web.Request, kind: type = dict) -> Any:
    try:
        data = json.loads(await request.read() or b"null")
    except ValueError as exc:
        raise BadRequest(f"bad request body: {exc}") from None
    if data is None:
        data = kind()
    if not isinstance(data, kind):
        raise BadRequest(f"bad request body: expected a JSON {'object' if kind is dict else 'array'}")
    return data


def build_app(hub: Hub) -> web.Application:
    """The aiohttp application serving Toxiproxy's endpoints for ``hub``."""
    routes = web.RouteTableDef()

    def proxy_of(request: web.Request) -> ProxyRuntime:
        return hub.get(request.match_info["proxy"])

    @routes.get("/version")
    async def version(request: web.Request) -> web.Response:
        return web.json_response({"version": API_VERSION})

    @routes.post("/reset")
    async def reset(request: web.Request) -> web.Response:
        await hub.reset()
        return web.Response(status=204)

    @routes.get("/proxies")
    async def proxy_index(request: web.Request) -> web.Response:
        return web.json_response({name: p.to_json() for name, p in hub.proxies.items()})

    @routes.post("/proxies")
    async def proxy_create(request: web.Request) -> web.Response:
        body = await _body(request)
        proxy = await hub.create_proxy(body.get("name"), body.get("upstream"), body.get("listen") or "127.0.0.1:0",
                                       enabled=bool(body.get("enabled", True)), tls=body.get("tls"))
        return web.json_response(proxy.to_json(), status=201)

    @routes.post("/populate")
    async def populate(request: web.Request) -> web.Response:
        body = await _body(request, list)
        created = []
        for item in body:
            if not isinstance(item, dict):
                raise BadRequest("bad request body: each proxy must be a JSON object")
            name, listen, upstream = item.get("name"), item.get("listen") or "127.0.0.1:0", item.get("upstream")
            existing = hub.proxies.get(name) if isinstance(name, str) else None
            # As Toxiproxy: an existing proxy with the same addresses is kept, otherwise replaced.
            if existing is not None and (existing.upstream != upstream or
                                         (not listen.endswith(":0") and existing.listen != listen)):
                await hub.delete_proxy(name)
                existing = None
            if existing is None:
                existing = await hub.create_proxy(name, upstream, listen, enabled=bool(item.get("enabled", True)))
            created.append(existing.to_json())
        return web.json_response({"proxies": created}, status=201)

    @routes.get("/proxies/{proxy}")
    async def proxy_show(request: web.Request) -> web.Response:
        return web.json_response(proxy_of(request).to_json())

    @routes.post("/proxies/{proxy}")
    async def proxy_update(request: web.Request) -> web.Response:
        body = await _body(request)
        enabled = body.get("enabled")
        if enabled is not None and not isinstance(enabled, bool):
            raise BadRequest(f"bad request body: enabled must be true or false, got {enabled!r}")
        proxy = await hub.update_proxy(request.match_info["proxy"], enabled=enabled,
                                       listen=body.get("listen"), upstream=body.get("upstream"))
        return web.json_response(proxy.to_json())

    @routes.delete("/proxies/{proxy}")
    async def proxy_delete(request: web.Request) -> web.Response:
        await hub.delete_proxy(request.match_info["proxy"])
        return web.Response(status=204)

    @routes.get("/proxies/{proxy}/counters")
    async def proxy_counters(request: web.Request) -> web.Response:
        return web.json_response(proxy_of(request).counters())

    @routes.get("/proxies/{proxy}/toxics")
    async def toxic_index(request: web.Request) -> web.Response:
        return web.json_response([st.spec.to_json() for st in proxy_of(request).toxics.values()])

    @routes.post("/proxies/{proxy}/toxics")
    async def toxic_create(request: web.Request) -> web.Response:
        body = await _body(request)
        if not body.get("type"):
            raise BadRequest("missing required field: type")
        attributes = body.get("attributes") or {}
        if not isinstance(attributes, dict):
            raise BadRequest("bad request body: attributes must be a JSON object")
        toxicity = body.get("toxicity")
        st = hub.add_toxic(request.match_info["proxy"], body["type"], stream=body.get("stream") or "downstream",
                           toxicity=1.0 if toxicity is None else toxicity, name=body.get("name") or None,
                           attributes=attributes)
        return web.json_response(st.spec.to_json())

    @routes.get("/proxies/{proxy}/toxics/{toxic}")
    async def toxic_show(request: web.Request) -> web.Response:
        return web.json_response(proxy_of(request).get_toxic(request.match_info["toxic"]).spec.to_json())

    @routes.get("/proxies/{proxy}/toxics/{toxic}/counters")
    async def toxic_counters(request: web.Request) -> web.Response:
        return web.json_response(proxy_of(request).get_toxic(request.match_info["toxic"]).counters.to_dict())

    @routes.post("/proxies/{proxy}/toxics/{toxic}")
    async def toxic_update(request: web.Request) -> web.Response:
        body = await _body(request)
        attributes = body.get("attributes") or {}
        if not isinstance(attributes, dict):
            raise BadRequest("bad request body: attributes must be a JSON object")
        st = hub.update_toxic(request.match_info["proxy"], request.match_info["toxic"], attributes,
                              body.get("toxicity"))
        return web.json_response(st.spec.to_json())

    @routes.delete("/proxies/{proxy}/toxics/{toxic}")
    async def toxic_delete(request: web.Request) -> web.Response:
        proxy_of(request).remove_toxic(request.match_info["toxic"])
        return web.Response(status=204)

    app = web.Application(middlewares=[_errors])
    app.add_routes(routes)
    return app
