"""The WebSocket route: `/ws/` is the streams consumer (config/asgi.py refuses any other path)."""

from .consumers import StreamConsumer

PATH = "/ws/"
streams_application = StreamConsumer.as_asgi()
