"""Browsers must reach the API by one of its own names (:func:`allowed_hosts`): any other
``Host`` is answered 400, so no redirect or page is ever built on a forged one. Machine
endpoints (ingestion and admin under ``/v1/``, provider webhooks, ``/healthz``, ``/readyz``,
``/metrics``) are exempt: they check a key or a signature, build nothing from the Host, and
are called by names the operator may not list (a probe uses the pod's IP, a platform a
cluster-internal service name), where a 400 would drop events.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

from config import Settings

_MACHINE_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
_MACHINE_PREFIXES = ("/v1/", "/webhooks/")
_LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")


def _host_pattern(host: str) -> str:
    host = host.strip().lower()
    if ":" in host and not host.startswith("["):  # an IPv6 literal, as a Host header has it
        return f"[{host}]"
    return host


def allowed_hosts(settings: Settings) -> list[str]:
    """The ``Host`` names browsers may use: the loopback names, the public URL's host, the
    API host unless it listens everywhere, and ``LIFECYCLE_ALLOWED_HOSTS`` ("*": any)."""
    if "*" in settings.allowed_hosts:
        return ["*"]
    hosts = [*_LOOPBACK_NAMES, urlsplit(settings.public_base_url).hostname or ""]
    if settings.api_host not in ("0.0.0.0", "::", ""):  # noqa: S104 - compared, not bound
        hosts.append(settings.api_host)
    hosts += settings.allowed_hosts
    return sorted({_host_pattern(host) for host in hosts if host.strip()})


class BrowserHostCheck:
    """Starlette's :class:`TrustedHostMiddleware` for every path but the machine endpoints."""

    def __init__(self, app: ASGIApp, *, hosts: list[str]) -> None:
        self._app = app
        self._checked = TrustedHostMiddleware(app, allowed_hosts=hosts, www_redirect=False)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = str(scope.get("path", ""))
        if path in _MACHINE_PATHS or path.startswith(_MACHINE_PREFIXES):
            await self._app(scope, receive, send)
        else:
            await self._checked(scope, receive, send)
