from django.urls import re_path

from . import views

urlpatterns = [
    # The same rule as a stream NAME (PROTOCOL.md "Streams"): any such scoreboard works.
    re_path(r"^(?P<name>[A-Za-z0-9_.-]{1,64})/$", views.scoreboard, name="scoreboard"),
]
