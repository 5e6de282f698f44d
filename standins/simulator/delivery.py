"""Send a planned completion at the configured pace, as JSON or SSE, or break it as a fault asks."""

from __future__ import annotations

import asyncio
import contextlib
import math

from aiohttp import web

from standins.simulator.completion import Completion
from standins.simulator.config import SimulatorConfig
from standins.simulator.faults import Fault
from standins.simulator.payloads import ChunkWriter, completion_json

_STALL_POLL_SECONDS = 0.05


class Delivery:
    def __init__(self, config: SimulatorConfig, closing: asyncio.Event) -> None:
        self._config = config
        # Set when the server shuts down, so stalled responses let it stop promptly.
        self._closing = closing
        self._tokens_per_chunk = max(
            1, math.ceil(config.tokens_per_second * config.min_chunk_interval_ms / 1000)
        )

    async def send(
        self, request: web.Request, completion: Completion, fault: Fault, headers: dict[str, str]
    ) -> web.StreamResponse:
        if completion.stream:
            return await self._send_stream(request, completion, fault, headers)
        return await self._send_json(request, completion, fault, headers)

    def _generation_seconds(self, tokens: int) -> float:
        return tokens / self._config.tokens_per_second

    async def _send_json(
        self, request: web.Request, completion: Completion, fault: Fault, headers: dict[str, str]
    ) -> web.StreamResponse:
        # A non-streamed reply arrives only once the whole completion has been generated.
        await asyncio.sleep(
            (self._config.latency_ms + self._config.time_to_first_token_ms) / 1000
            + self._generation_seconds(completion.completion_tokens)
        )
        body = completion_json(completion).encode()
        if fault is Fault.STALL:
            await self._stall(request)
            return _cut(request, web.Response(status=200))
        if fault is not Fault.TRUNCATE:
            return web.Response(body=body, content_type="application/json", headers=headers)
        response = web.StreamResponse(headers={**headers, "Content-Type": "application/json"})
        response.content_length = len(body)
        await response.prepare(request)
        await response.write(body[: len(body) // 2])
        return _cut(request, response)

    async def _send_stream(
        self, request: web.Request, completion: Completion, fault: Fault, headers: dict[str, str]
    ) -> web.StreamResponse:
        await asyncio.sleep(self._config.latency_ms / 1000)
        response = web.StreamResponse(
            headers={
                **headers,
                "Content-Type": "text/event-stream; charset=utf-8",
                "Cache-Control": "no-cache",
            }
        )
        await response.prepare(request)
        chunks = ChunkWriter(completion)
        pieces = completion.pieces
        step = self._tokens_per_chunk
        breaks_at = len(pieces) // 2 if fault in (Fault.STALL, Fault.TRUNCATE) else None
        loop = asyncio.get_running_loop()
        try:
            await response.write(chunks.role())
            # The model reasons (hidden) before the first visible token.
            first_token_at = (
                loop.time()
                + self._config.time_to_first_token_ms / 1000
                + self._generation_seconds(completion.reasoning_tokens)
            )
            for start in range(0, len(pieces), step):
                if breaks_at is not None and start >= breaks_at:
                    break
                # Absolute schedule, so slow writes do not accumulate drift.
                await asyncio.sleep(max(0.0, first_token_at + self._generation_seconds(start) - loop.time()))
                await response.write(chunks.content("".join(pieces[start : start + step])))
            if fault is Fault.STALL:
                await self._stall(request)
            if breaks_at is not None:
                return _cut(request, response)
            await response.write(chunks.finish())
            if completion.include_usage:
                await response.write(chunks.usage())
            await response.write(chunks.done())
        except ConnectionResetError:
            # The client went away mid-stream; nothing left to send.
            return response
        return response

    async def _stall(self, request: web.Request) -> None:
        """Send nothing until the client gives up, the stall bound passes or the server stops."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._config.faults.stall_seconds
        while loop.time() < deadline and not self._closing.is_set() and not _client_gone(request):
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closing.wait(), min(_STALL_POLL_SECONDS, deadline - loop.time()))


def _client_gone(request: web.Request) -> bool:
    transport = request.transport
    return transport is None or transport.is_closing()


def _cut(request: web.Request, response: web.StreamResponse) -> web.StreamResponse:
    """Close the connection mid-body, so the client sees an incomplete (not a finished) response."""
    transport = request.transport
    if transport is not None:
        transport.close()
    return response
