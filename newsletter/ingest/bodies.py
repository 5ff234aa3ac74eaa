"""Response bodies within a byte cap, as sent and as decompressed (gzip, deflate)."""

from __future__ import annotations

import zlib
from collections.abc import AsyncIterator, Mapping

from newsletter.errors import FeedError


class TooBig(Exception):
    pass


async def bounded_body(
    chunks: AsyncIterator[bytes], headers: Mapping[str, str], max_bytes: int
) -> bytes:
    """A body as it arrives (``chunks``, as sent), decompressed here in bounded steps: the
    Content-Encoding in ``headers`` is undone a piece at a time, so a small gzip bomb never
    becomes a big buffer; raises ``TooBig`` past ``max_bytes``, as sent or decompressed."""
    encoding = headers.get("content-encoding", "identity").strip().lower()
    too_big = TooBig(f"response larger than {max_bytes:,} bytes; gave up")
    declared = headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise too_big
    decoder = _decoder(encoding)
    out = bytearray()
    received = 0
    async for chunk in chunks:
        received += len(chunk)
        if received > max_bytes:
            raise too_big
        if decoder is None:
            out += chunk
            continue
        data = chunk
        while data:
            try:
                piece = decoder.decompress(data, max_bytes - len(out) + 1)
            except zlib.error as exc:
                raise FeedError(f"the {encoding} body is corrupt: {exc}") from None
            out += piece
            if len(out) > max_bytes:
                raise too_big
            data = decoder.unconsumed_tail
    return bytes(out)


def _decoder(encoding: str) -> zlib._Decompress | None:
    if encoding in {"", "identity"}:
        return None
    if encoding in {"gzip", "x-gzip"}:
        return zlib.decompressobj(16 + zlib.MAX_WBITS)
    if encoding == "deflate":
        return zlib.decompressobj(zlib.MAX_WBITS | 32)  # zlib or gzip header, auto-detected
    raise FeedError(f"unsupported Content-Encoding {encoding!r}")
