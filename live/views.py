"""The scoreboard page of a `live:` stream.

Thousands of read-only viewers are the normal case, so the page is a shell that costs no
database work: it reads no model and never touches the session, and for an anonymous
visitor (no session cookie) the template's `user` resolves without a query. The score
itself comes over the WebSocket (`static/live/scoreboard.js`).
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_safe

#: Each update carries the full state, so the latest message is all a new viewer needs.
HISTORY = 1


@require_safe
def scoreboard(request: HttpRequest, name: str) -> HttpResponse:
    config = {"stream": f"live:{name}", "history": HISTORY}
    return render(request, "live/scoreboard.html", {"name": name, "config": config})
