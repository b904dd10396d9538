"""Security headers on every HTTP response, as pure ASGI middleware (streams stay streams)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from starlette.applications import Starlette
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# An API answers JSON and event streams: nothing in a response may load or frame anything.
API_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'"
# A same-origin web UI (the chat): its own scripts, styles, images and connections (its
# WebSocket included), nothing else. blob: carries the audio worklets and recordings the
# page makes itself; no inline script, no eval, no other host.
UI_CSP = (
    "default-src 'self'; script-src 'self' blob:; worker-src 'self' blob:; "
    "style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; font-src 'self' data:; "
    "media-src 'self' blob:; connect-src 'self'; object-src 'none'; frame-ancestors 'none'; "
    "base-uri 'self'; form-action 'self'"
)
HSTS = "max-age=31536000"


@dataclass(frozen=True)
class HeaderPolicy:
    """The per-path part of the headers: the CSP, and Cache-Control (None: the app's own)."""

    csp: str = API_CSP
    cache_control: str | None = "no-store"


API_POLICY = HeaderPolicy()
UI_POLICY = HeaderPolicy(UI_CSP, None)

FIXED_HEADERS: dict[str, str] = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}


class SecurityHeadersMiddleware:
    """Sets the security headers on every HTTP response, replacing the app's own values.

    ``prefixes`` maps a path prefix (``/chat`` covers ``/chat`` and ``/chat/...``) to the
    policy for paths under it; the longest matching prefix wins, else ``default``. Only
    the response start is touched, so a streamed body passes through unchanged.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        default: HeaderPolicy = API_POLICY,
        prefixes: Mapping[str, HeaderPolicy] | None = None,
        hsts: bool = False,
    ) -> None:
        self.app = app
        self.default = default
        self.prefixes = sorted((prefixes or {}).items(), key=lambda item: -len(item[0]))
        self.hsts = hsts

    def policy_for(self, path: str) -> HeaderPolicy:
        """The policy of ``path``: the longest prefix that contains it, else the default."""
        for prefix, policy in self.prefixes:
            base = prefix.rstrip("/")
            if path == base or path.startswith(base + "/"):
                return policy
        return self.default

    def headers_for(self, path: str) -> dict[str, str]:
        """Every header this middleware sets on a response to ``path``."""
        policy = self.policy_for(path)
        headers = {**FIXED_HEADERS, "Content-Security-Policy": policy.csp}
        if policy.cache_control is not None:
            headers["Cache-Control"] = policy.cache_control
        if self.hsts:
            headers["Strict-Transport-Security"] = HSTS
        return headers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        added = [
            (name.lower().encode("latin-1"), value.encode("latin-1"))
            for name, value in self.headers_for(scope["path"]).items()
        ]
        replaced = {name for name, _ in added}

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                kept = [(k, v) for k, v in message.get("headers", []) if k.lower() not in replaced]
                message = {**message, "headers": kept + added}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def install(
    app: Starlette,
    *,
    default: HeaderPolicy = API_POLICY,
    prefixes: Mapping[str, HeaderPolicy] | None = None,
    hsts: bool = False,
) -> None:
    """Wrap ``app``'s whole middleware stack in SecurityHeadersMiddleware.

    Outside even the server-error layer, so the 500 page of an unhandled error gets the
    headers too. Call it before the app serves its first request.
    """
    build = app.build_middleware_stack

    def build_with_headers() -> ASGIApp:
        return SecurityHeadersMiddleware(build(), default=default, prefixes=prefixes, hsts=hsts)

    app.build_middleware_stack = build_with_headers  # type: ignore[method-assign]
