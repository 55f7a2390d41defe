"""Reading one figure from a server's `/metrics` text, as the tests compare them."""

from __future__ import annotations

import re


def metric(text: str, name: str) -> float:
    """The value of the unlabelled series `name` in Prometheus text (0 when absent)."""
    match = re.search(rf"^{name} (\S+)$", text, re.M)
    return float(match.group(1)) if match else 0.0
