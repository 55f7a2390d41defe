from django.urls import include, path, re_path
from django.views.generic import RedirectView

from realtime import NAME_PATTERN

from . import views

urlpatterns = [
    path("", RedirectView.as_view(url="/rooms/", permanent=False)),
    path("rooms/", views.room_list, name="room_list"),
    # The same rule as a stream NAME (docs/protocol.md "Streams"): any such room works.
    re_path(r"^rooms/(?P<name>%s)/$" % NAME_PATTERN, views.room, name="room"),
    path("accounts/signup/", views.signup, name="signup"),
    path("accounts/", include("django.contrib.auth.urls")),
]
