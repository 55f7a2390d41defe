from django.urls import re_path

from realtime import NAME_PATTERN

from . import views

urlpatterns = [
    # The same rule as a stream NAME (docs/protocol.md "Streams"): any such scoreboard works.
    re_path(r"^(?P<name>%s)/$" % NAME_PATTERN, views.scoreboard, name="scoreboard"),
]
