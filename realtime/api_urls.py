"""URLs under `/api/`: the ninja API, and the JSON error shape for what it does not have.

ninja answers a method a path does not have with a plain-text 405, and Django answers an
unknown path with an HTML 404; docs/protocol.md "HTTP" wants every error as
`{"error": {"code", "message"}}`, so both are rewritten here.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any

from asgiref.sync import iscoroutinefunction
from django.http import HttpRequest, HttpResponseBase, JsonResponse
from django.urls import URLPattern, include, path, re_path
from django.views.decorators.common import no_append_slash
from django.views.decorators.csrf import csrf_exempt

from .api import api
from .errors import NotFound
from .http import error_response

View = Callable[..., Any]


def _method_error(response: HttpResponseBase) -> HttpResponseBase:
    if response.status_code != 405:
        return response
    allowed = response.get("Allow", "")
    answer = JsonResponse(
        {"error": {"code": "bad_request", "message": f"method not allowed here; allowed: {allowed}"}}, status=405
    )
    answer["Allow"] = allowed
    return answer


def json_405(view: View) -> View:
    """The same view, with its 405 answer in the API's error shape."""
    if iscoroutinefunction(view):
        async_view: Callable[..., Awaitable[HttpResponseBase]] = view

        @functools.wraps(view)
        async def wrapped_async(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
            return _method_error(await async_view(request, *args, **kwargs))

        return wrapped_async

    @functools.wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        return _method_error(view(request, *args, **kwargs))

    return wrapped


@csrf_exempt
@no_append_slash  # a catch-all would otherwise make CommonMiddleware redirect every 404
def not_found(request: HttpRequest, rest: str = "") -> HttpResponseBase:
    return error_response(NotFound(f"no such endpoint: {request.method} {request.path}"))


def _api_patterns() -> list[Any]:
    patterns, app_name, namespace = api.urls
    for pattern in patterns:
        if isinstance(pattern, URLPattern):
            pattern.callback = json_405(pattern.callback)
    return [path("", include((patterns, app_name), namespace=namespace))]


urlpatterns = [*_api_patterns(), re_path(r"^(?P<rest>.*)$", not_found)]
