"""The live stats page for staff: the figures of every server process, moving, fed over
the product's own WebSocket from the staff-only stream `staff:stats` (realtime/stats.py)."""

from __future__ import annotations

from django.contrib.admin.views.decorators import staff_member_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from realtime import STATS_STREAM


@staff_member_required
def stats(request: HttpRequest) -> HttpResponse:
    return render(request, "ops/stats.html", {"config": {"stream": STATS_STREAM}})
