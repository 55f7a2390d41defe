from django.contrib import admin
from django.urls import include, path

from realtime import health

urlpatterns = [
    path("healthz", health.healthz),
    path("readyz", health.readyz),
    path("metrics", health.metrics_view),
    path("api/", include("realtime.api_urls")),
    path("admin/", admin.site.urls),
    path("live/", include("live.urls")),
    path("stats/", include("ops.urls")),
    path("", include("chat.urls")),
]
