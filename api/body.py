"""Request bodies for the ingestion API: read within a size limit and a time limit, gunzip
safely.

A client that goes away mid-body is an everyday event on the internet (a phone losing its
network), not an error of ours: it is logged at INFO without a traceback. A body that stops
arriving is cut off with 408 after ``LIFECYCLE_BODY_READ_TIMEOUT`` seconds without a chunk,
so a stalled client does not hold a connection forever.
"""

from __future__ import annotations

import asyncio
import logging
import zlib

from starlette.requests import ClientDisconnect, Request

from triggers.segment import PayloadError

log = logging.getLogger(__name__)

# Seconds without a chunk before a body is cut off, unless the app says otherwise
# (``create_app`` stores ``settings.body_read_timeout`` as ``app.state.body_read_timeout``).
DEFAULT_BODY_READ_TIMEOUT = 30.0


def _too_large(limit: int) -> PayloadError:
    return PayloadError(f"Body is larger than the {limit // 1024} KB allowed.", status=413)


def _read_timeout(request: Request) -> float:
    app = request.scope.get("app")
    state = getattr(app, "state", None)
    return float(getattr(state, "body_read_timeout", DEFAULT_BODY_READ_TIMEOUT))


async def read_limited(request: Request, limit: int, *, timeout: float | None = None) -> bytes:
    """The raw body, refused with 413 as soon as it passes ``limit`` bytes.

    Args:
        request: the request whose body is read.
        limit: the most bytes accepted.
        timeout: seconds to wait for each chunk; by default the app's
            ``state.body_read_timeout``, else :data:`DEFAULT_BODY_READ_TIMEOUT`.

    Raises:
        PayloadError: 413 past ``limit``; 408 when no chunk came within ``timeout``; 400 when
            the client went away before the end (nobody reads that answer; it ends the
            request quietly).
    """
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    wait = _read_timeout(request) if timeout is None else timeout
    chunks: list[bytes] = []
    size = 0
    stream = request.stream()
    try:
        while True:
            try:
                async with asyncio.timeout(wait):  # no task per chunk, unlike wait_for
                    chunk = await anext(stream)
            except StopAsyncIteration:
                break
            size += len(chunk)
            if size > limit:
                raise _too_large(limit)
            chunks.append(chunk)
    except TimeoutError:
        log.info(
            "body of %s cut off: nothing came for %g s (%d bytes read)",
            request.url.path,
            wait,
            size,
        )
        raise PayloadError(
            f"The body stopped arriving: nothing came for {wait:g} s.", status=408
        ) from None
    except ClientDisconnect:
        log.info("client went away while sending %s (%d bytes read)", request.url.path, size)
        raise PayloadError("The client went away before the body ended.") from None
    finally:
        await stream.aclose()
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
