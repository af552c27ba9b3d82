"""Reading a request body with a size limit, before anything else looks at it."""

from __future__ import annotations

from starlette.requests import Request


class BodyTooLarge(Exception):
    def __init__(self, limit: int) -> None:
        super().__init__(f"the body is larger than {limit} bytes (web.max_body_bytes)")
        self.limit = limit


async def read_limited(request: Request, limit: int) -> bytes:
    """The raw body, or :class:`BodyTooLarge` as soon as it passes ``limit`` bytes.

    A ``Content-Length`` over the limit is refused before a byte is read; a body sent without
    one (chunked) is read only up to the limit. The body is kept on the request, so
    ``request.form()`` and ``request.json()`` still work after this.
    """
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge(limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(limit)
        chunks.append(chunk)
    body = b"".join(chunks)
    request._body = body  # Starlette's own cache: stream()/form() read it from here
    return body
