"""What a subscriber's frames must show after a failover: the delivery promise, checked."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


def check_order_and_holes(frames: Iterable[dict[str, Any]]) -> None:
    """Within an epoch seqs rise by one; a jump only right after `recovered: false`."""
    epoch, last, announced = None, 0, False
    for frame in frames:
        if frame["type"] == "subscribed":
            if frame["epoch"] != epoch or not frame["recovered"]:
                epoch, last = frame["epoch"], frame["seq"]
            announced = not frame["recovered"]
            continue
        assert frame["epoch"] == epoch, (frame, epoch)
        assert frame["seq"] == last + 1 or announced, f"a silent hole before {frame['seq']} (after {last})"
        assert frame["seq"] > last, f"{frame['seq']} again or out of order (after {last})"
        last, announced = frame["seq"], False
