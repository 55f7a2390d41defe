from typing import Any

from django.apps import AppConfig


class FeedConfig(AppConfig):
    name = "feed"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Mounted from here, not from realtime/: the core never imports the product.
        from django.contrib.auth import get_user_model
        from django.db.models.signals import post_delete

        from realtime import add_api_router

        from .api import router

        add_api_router("/feed", router)
        post_delete.connect(_forget_read_position, sender=get_user_model(), dispatch_uid="feed-read-position")


def _forget_read_position(sender: Any, instance: Any, **kwargs: Any) -> None:
    from .models import ReadPosition

    ReadPosition.objects.filter(person=str(instance.pk)).delete()
