from django.apps import AppConfig


class ChatConfig(AppConfig):
    name = "chat"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Mounted from here, not from realtime/: the core never imports the product.
        from realtime import add_api_router

        from . import notify
        from .api import list_router, read_router

        add_api_router("/read", read_router)
        add_api_router("/conversations", list_router)
        notify.connect()
