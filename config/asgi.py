"""The ASGI application: Django for HTTP, the streams consumer at `/ws/`; a WebSocket to
any other path is refused (config/ws_refuse.py).

Served by uvicorn (the default) or daphne: `config.asgi:application`.
"""

import gc
import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

from django.core.asgi import get_asgi_application  # noqa: E402

django_asgi_app = get_asgi_application()

from typing import Any  # noqa: E402

from channels.routing import ProtocolTypeRouter  # noqa: E402

from config.ws_refuse import refuse_websocket  # noqa: E402
from realtime.body_limit import BodyLimit  # noqa: E402
from realtime.routing import PATH, streams_application  # noqa: E402


async def websocket_application(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """`/ws/` to the streams consumer, any other path refused. A path test rather than
    channels' URLRouter: the router hands the consumer a copy of the scope with
    `url_route` added, which every socket then holds (about 1.1 KiB), for a route that
    has no parameters."""
    root, path = scope.get("root_path", ""), scope["path"]
    if root and path.startswith(root):
        path = path[len(root):]
    await (streams_application if path == PATH else refuse_websocket)(scope, receive, send)


application = ProtocolTypeRouter(
    {
        "http": BodyLimit(django_asgi_app),  # 413 before a body over the limit is read
        "websocket": websocket_application,  # /ws/, and a refusal for any other path
    }
)

# The modules, settings and app registry loaded so far live as long as the process. Out
# of the collector's reach, a full collection no longer walks them each time: with 1,000
# sockets its pause went from about 120 to 40 ms here, which a fan-out's p99 pays for.
# Collected first, so that no garbage of the start is kept for ever.
gc.collect()
gc.freeze()
