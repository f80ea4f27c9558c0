"""Request bodies bounded before anything parses them: size (413), valid UTF-8 and nesting
depth (400). The JSON decoder recurses per level, so a body nested 100,000 levels would
otherwise end in a RecursionError (a 500); the depth pre-scan is the readers' (vectorized)."""

from __future__ import annotations

from litestar.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import ApiError
from creditlake.readers.limits import exact_shape, naive_max_depth

NO_BODY = frozenset({"GET", "HEAD", "OPTIONS", "DELETE"})


class BodyTooLarge(ApiError):
    status_code = 413
    code = "PAYLOAD_TOO_LARGE"


class BadBody(ApiError):
    code = ""  # INVALID_QUERY on /query routes, INVALID_REQUEST elsewhere (api/errors.py)


def check_body(body: bytes, max_depth: int) -> None:
    """Raise BadBody when `body` is not UTF-8 or is nested deeper than `max_depth`."""
    try:
        body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadBody(f"request body is not valid UTF-8 (invalid byte at offset {exc.start})"
                      ) from None
    if body.count(b"{") + body.count(b"[") <= max_depth:  # no deeper than its openers
        return
    if naive_max_depth(body) > max_depth:  # an upper bound: confirm with strings masked
        depth = exact_shape(body)[0]
        if depth > max_depth:
            raise BadBody(f"request body nested {depth:,} levels deep; the limit is "
                          f"{max_depth} (CREDITLAKE_API_MAX_BODY_DEPTH)")


def body_guard(max_bytes: int, max_depth: int):  # noqa: ANN201 - Litestar middleware factory
    too_large = (f"request body over {max_bytes:,} bytes "
                 "(CREDITLAKE_API_MAX_BODY_BYTES)")

    def factory(app: ASGIApp) -> ASGIApp:
        async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != "http" or scope["method"] in NO_BODY:
                await app(scope, receive, send)
                return
            for name, value in scope.get("headers", []):
                if name == b"content-length" and value.isdigit() and int(value) > max_bytes:
                    raise BodyTooLarge(too_large)
            chunks, size = [], 0
            while True:
                message = await receive()
                if message["type"] != "http.request":  # client went away
                    return
                chunk = message.get("body", b"")
                size += len(chunk)
                if size > max_bytes:
                    raise BodyTooLarge(too_large)
                chunks.append(chunk)
                if not message.get("more_body"):
                    break
            body = b"".join(chunks)
            check_body(body, max_depth)
            replayed = False

            async def replay() -> Message:
                nonlocal replayed
                if replayed:
                    return await receive()
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}

            await app(scope, replay, send)

        return middleware

    return factory
