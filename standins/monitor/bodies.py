"""Request bodies as the ingestion endpoints receive them: optionally gzip-compressed JSON."""

from __future__ import annotations

import gzip
import zlib

from aiohttp import web

GZIP_MAGIC = b"\x1f\x8b"


class BodyError(ValueError):
    """The body cannot be read (bad compression)."""


async def read_body(request: web.Request) -> bytes:
    """The decompressed body. aiohttp may already have inflated a gzip request; check the bytes."""
    data = await request.read()
    if data[:2] == GZIP_MAGIC:
        try:
            return gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as exc:
            raise BodyError(f"the gzip body cannot be decompressed: {exc}") from exc
    return data
