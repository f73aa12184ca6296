"""Dispatch gate: orders share it; two-leg orders and reconciliation take it exclusively.

Exclusive holders see no order in flight: a two-leg order's outcome is not mixed with a concurrent
open, and reconciliation compares positions that are not moving.
"""
from __future__ import annotations

import asyncio
import contextlib
from typing import AsyncIterator


class DispatchGate:
    """A small readers-writer lock for asyncio with writer preference."""

    def __init__(self) -> None:
        self._cond = asyncio.Condition()
        self._shared = 0
        self._exclusive = False
        self._waiting_exclusive = 0

    @property
    def in_flight(self) -> int:
        return self._shared

    @contextlib.asynccontextmanager
    async def shared(self) -> AsyncIterator[None]:
        async with self._cond:
            await self._cond.wait_for(lambda: not self._exclusive and not self._waiting_exclusive)
            self._shared += 1
        try:
            yield
        finally:
            async with self._cond:
                self._shared -= 1
                self._cond.notify_all()

    @contextlib.asynccontextmanager
    async def exclusive(self) -> AsyncIterator[None]:
        async with self._cond:
            self._waiting_exclusive += 1
            try:
                await self._cond.wait_for(lambda: not self._exclusive and self._shared == 0)
            finally:
                self._waiting_exclusive -= 1
            self._exclusive = True
        try:
            yield
        finally:
            async with self._cond:
                self._exclusive = False
                self._cond.notify_all()
