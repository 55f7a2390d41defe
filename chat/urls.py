from django.urls import include, path, re_path
from django.views.generic import RedirectView

from realtime import NAME_PATTERN

from . import views

urlpatterns = [
    path("", RedirectView.as_view(url="/rooms/", permanent=False)),
    path("rooms/", views.room_list, name="room_list"),
    # The same rule as a stream NAME (docs/protocol.md "Streams"): any such room works.
    re_path(r"^rooms/(?P<name>%s)/$" % NAME_PATTERN, views.room, name="room"),
    path("groups/", views.create_group, name="create_group"),
    re_path(r"^groups/(?P<name>%s)/$" % NAME_PATTERN, views.group, name="group"),
    re_path(r"^groups/(?P<name>%s)/members/$" % NAME_PATTERN, views.add_member, name="add_member"),
    re_path(
        r"^groups/(?P<name>%s)/members/(?P<user_id>[0-9]{1,18})/remove/$" % NAME_PATTERN,
        views.remove_member,
        name="remove_member",
    ),
    re_path(r"^dm/(?P<user_id>[0-9]{1,18})/$", views.direct, name="direct"),
    path("people/", views.people, name="people"),
    path("accounts/signup/", views.signup, name="signup"),
    path("accounts/", include("django.contrib.auth.urls")),
]
