"""A small bar chart as a PNG, encoded in pure Python (zlib + struct): no plotting library deployed.

PNG rather than SVG because many mail clients (Gmail, Outlook) block SVG; the email attaches it as
an inline image (Content-ID). Labels are not drawn into the image (no fonts here): the email shows
them as text next to it, which also keeps them readable to screen readers and text-only clients.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Sequence
from decimal import Decimal

Color = tuple[int, int, int]
BACKGROUND: Color = (255, 255, 255)
BAR: Color = (120, 144, 176)
LATEST: Color = (196, 64, 48)  # the bar of the period that fired
REFERENCE: Color = (40, 40, 40)
AXIS: Color = (200, 200, 200)


def bar_chart_png(
    values: Sequence[Decimal],
    *,
    width_px: int = 480,
    height_px: int = 120,
    reference: Decimal | None = None,
    highlight_last: bool = True,
) -> bytes:
    """Bars for `values` (oldest first); a dashed line at `reference` (e.g. the threshold)."""
    pixels = [[BACKGROUND] * width_px for _ in range(height_px)]
    top = max([*values, reference or Decimal(0), Decimal(0)])
    plot_height = height_px - 2  # one pixel of axis at the bottom, one of air at the top
    if values:
        slot = width_px / len(values)
        gap = max(1, int(slot * 0.2))
        for index, value in enumerate(values):
            if value <= 0 or top <= 0:
                continue
            bar_height = max(1, int(value / top * plot_height))
            left, right = int(index * slot) + gap // 2, int((index + 1) * slot) - (gap - gap // 2)
            color = LATEST if highlight_last and index == len(values) - 1 else BAR
            for y in range(height_px - 1 - bar_height, height_px - 1):
                row = pixels[y]
                for x in range(left, max(left + 1, right)):
                    row[x] = color
    for x in range(width_px):
        pixels[height_px - 1][x] = AXIS
    if reference is not None and top > 0:
        y = height_px - 1 - int(reference / top * plot_height)
        y = min(max(y, 0), height_px - 1)
        for x in range(0, width_px, 6):
            for dx in range(3):
                if x + dx < width_px:
                    pixels[y][x + dx] = REFERENCE
    return encode_png(pixels)


def encode_png(pixels: Sequence[Sequence[Color]]) -> bytes:
    """8-bit RGB, no interlace; each scanline with filter type 0."""
    height = len(pixels)
    width = len(pixels[0]) if height else 0
    raw = b"".join(b"\x00" + bytes(channel for pixel in row for channel in pixel) for row in pixels)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")
