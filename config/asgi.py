"""The ASGI application: Django for HTTP, the streams consumer at `/ws/`; a WebSocket to
any other path is refused (config/ws_refuse.py).

Served by uvicorn (the default) or daphne: `config.asgi:application`.
"""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

from django.core.asgi import get_asgi_application  # noqa: E402

django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.urls import re_path  # noqa: E402

from config.ws_refuse import refuse_websocket  # noqa: E402
from realtime.body_limit import BodyLimit  # noqa: E402
from realtime.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": BodyLimit(django_asgi_app),  # 413 before a body over the limit is read
        "websocket": URLRouter([*websocket_urlpatterns, re_path(r"", refuse_websocket)]),
    }
)
