"""django-csp's middleware, with this host's WebSocket addresses in `connect-src`.

'self' already matches ws: and wss: of the page's own host and port in current browsers
(CSP Level 3); naming them keeps the room, the scoreboard and the bell connecting in
browsers that predate that rule. The host is known only per request, hence not a setting.
"""

from __future__ import annotations

from csp.constants import SELF
from csp.middleware import CSPMiddleware, PolicyParts
from django.core.exceptions import DisallowedHost
from django.http import HttpRequest, HttpResponseBase


def own_sockets(request: HttpRequest) -> list[str]:
    """ws: and wss: of the host this request came to; none for a host Django refuses, nor
    for an IPv6 literal, which a CSP source cannot name ('self' covers it)."""
    try:
        host = request.get_host()
    except DisallowedHost:
        return []
    if host.startswith("["):
        return []
    return [f"ws://{host}", f"wss://{host}"]


class SameHostSocketsCSPMiddleware(CSPMiddleware):
    def get_policy_parts(
        self, request: HttpRequest, response: HttpResponseBase, report_only: bool = False
    ) -> PolicyParts:
        parts = super().get_policy_parts(request, response, report_only)
        sockets = own_sockets(request)
        if sockets:
            update = dict(parts.update or {})
            earlier = update.get("connect-src") or []
            earlier = [earlier] if isinstance(earlier, str) else list(earlier)
            # 'self' too: without it, a view's own policy lacking connect-src would lose it.
            update["connect-src"] = [*earlier, SELF, *sockets]
            parts.update = update
        return parts
