"""Result files served only to the session that made them.

Gradio serves a result by an unguessable URL (`/gradio_api/file=<cache>/<hash>/<name>`), but
any client that has the URL gets the file: Gradio 6 gives its file route no session. So the
server gives each visitor a random cookie (the page and gradio_client both send it back on
every request, downloads included), each result file records the cookie of the request that
made it (`ResultFiles.path`, through `current_owner`), and any request whose path names a
file of another session gets a 404. Result names carry a unique id (`heatmap-<16 hex>.jpg`),
which the name of Gradio's cached copy keeps: every request's path is searched for ids, so
no route, alias or spelling of the path (`/file=`, `/file/`, a trailing `/.`) gets around it.

A request without the cookie (curl, a client that drops cookies, a browser that blocks the
cookie of a page embedded from another site) and an MCP tool call (Gradio's loopback client:
the agent fetches the URLs it is given with its own tools) make files anyone with the URL may
fetch, as before: binding never refuses the client that made a result.
"""

from __future__ import annotations

import re
import secrets
import uuid
from typing import Any, Awaitable, Callable, MutableMapping

from starlette.requests import cookie_parser

COOKIE = "diachestxr_session"
_TOKEN = re.compile(r"[A-Za-z0-9_-]{22}")  # secrets.token_urlsafe(16)
FILE_ID = re.compile(r"-([0-9a-f]{16})(?=\.|/|$)")  # what unique_name() puts in a name
Scope = MutableMapping[str, Any]
OwnerOf = Callable[[str], "str | None"]  # a result file's id -> its session's cookie or None


def unique_name(name: str) -> tuple[str, str]:
    """A fresh file id and `name` carrying it (`heatmap.jpg` -> `heatmap-<16 hex>.jpg`)."""
    file_id = uuid.uuid4().hex[:16]
    stem, dot, suffix = name.rpartition(".")
    return file_id, f"{stem}-{file_id}.{suffix}" if dot else f"{name}-{file_id}"


def _token(cookie_header: str | None) -> str | None:
    value = cookie_parser(cookie_header or "").get(COOKIE)
    return value if value and _TOKEN.fullmatch(value) else None


def current_owner() -> str | None:
    """The session cookie of the Gradio event now running (None outside one, or without it)."""
    from gradio.context import LocalContext

    request = LocalContext.request.get(None)
    headers = getattr(request, "headers", None)  # a gr.Request: the event's HTTP headers
    if headers is None or headers.get("x-gradio-user") == "mcp":
        return None  # an MCP tool's answer goes to an agent, which fetches URLs on its own
    return _token(headers.get("cookie"))


class SessionFiles:
    """ASGI middleware: give each client the session cookie; serve a bound result file only
    to its owner (`owner_of(id)`: the cookie that made the file with this id, or None)."""

    def __init__(self, app: Callable[..., Awaitable[None]], owner_of: OwnerOf) -> None:
        self.app, self.owner_of = app, owner_of

    async def __call__(self, scope: Scope, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers") or ())
        token = _token(headers.get(b"cookie", b"").decode("latin-1"))
        for file_id in FILE_ID.findall(scope.get("path", "")):
            owner = self.owner_of(file_id)
            if owner is not None and owner != token:
                return await _not_found(send)
        if token is not None:
            return await self.app(scope, receive, send)
        cookie = _set_cookie(secrets.token_urlsafe(16), _https(scope, headers))

        async def send_with_cookie(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.start":  # never stored by a shared cache
                kept = [h for h in message.get("headers", ()) if h[0].lower() != b"cache-control"]
                message["headers"] = [*kept, (b"cache-control", b"private, no-store"),
                                      (b"set-cookie", cookie)]
            await send(message)

        await self.app(scope, receive, send_with_cookie)


def _https(scope: Scope, headers: dict[bytes, bytes]) -> bool:
    """Served over HTTPS, here or at a proxy in front (a Hugging Face Space)."""
    forwarded = headers.get(b"x-forwarded-proto", b"").split(b",")[0].strip().lower()
    return (scope.get("scheme") == "https" or forwarded == b"https"
            or b"proto=https" in headers.get(b"forwarded", b"").lower())


def _set_cookie(token: str, https: bool) -> bytes:
    # Over HTTPS the cookie is partitioned: a Space's page embedded on huggingface.co keeps
    # it (a cross-site frame's cookie, for that site only). Plain HTTP (localhost): Lax.
    site = "SameSite=None; Secure; Partitioned" if https else "SameSite=Lax"
    return f"{COOKIE}={token}; Path=/; HttpOnly; {site}".encode("latin-1")


async def _not_found(send: Callable) -> None:
    body = b"Not found: a result is served only to the session that made it."
    await send({"type": "http.response.start", "status": 404,
                "headers": [(b"content-type", b"text/plain; charset=utf-8"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
