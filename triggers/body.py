"""Request bodies for the ingestion API: read within a size limit, gunzip safely."""

from __future__ import annotations

import zlib

from starlette.requests import Request

from triggers.segment import PayloadError


def _too_large(limit: int) -> PayloadError:
    return PayloadError(f"Body is larger than the {limit // 1024} KB allowed.", status=413)


async def read_limited(request: Request, limit: int) -> bytes:
    """The raw body, refused with 413 as soon as it passes ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)


def gunzip_limited(data: bytes, limit: int) -> bytes:
    """Decompress a gzip body, producing at most ``limit + 1`` bytes (gzip bombs stop there).

    Concatenated gzip members are accepted, as ``gzip.decompress`` does.
    """
    out = bytearray()
    while True:
        decoder = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            # max_length is never 0 here (0 would mean "no limit"): out stays <= limit.
            out += decoder.decompress(data, limit + 1 - len(out))
        except zlib.error:
            raise PayloadError("Body is not a valid gzip stream.") from None
        if len(out) > limit:
            raise PayloadError(
                f"Body is larger than the {limit // 1024} KB allowed once decompressed.",
                status=413,
            )
        if not decoder.eof:
            raise PayloadError("Body is not a valid gzip stream (it ends early).")
        data = decoder.unused_data
        if not data.strip(b"\x00"):
            return bytes(out)


async def read_body(request: Request, limit: int) -> bytes:
    """The body as sent, decompressed if ``Content-Encoding: gzip``, within ``limit`` bytes."""
    raw = await read_limited(request, limit)
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding in ("", "identity"):
        return raw
    if encoding in ("gzip", "x-gzip"):
        return gunzip_limited(raw, limit)
    raise PayloadError(
        f"Content-Encoding {encoding!r} is not supported; send gzip or no encoding.", status=415
    )
