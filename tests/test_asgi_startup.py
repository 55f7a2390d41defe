"""What loading the ASGI application leaves behind, in a process of its own."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # imports the application in a process of its own
BASE = Path(__file__).resolve().parent.parent


def test_the_objects_of_the_start_are_frozen_out_of_the_collectors_walk(tmp_path: Path) -> None:
    """config/asgi.py freezes what importing Django and the app made (gc.freeze), so that
    a full collection under load walks only what came after; nothing of the start is left
    as garbage in the frozen part (collected before it was frozen)."""
    code = (
        "import gc; import config.asgi; "
        "frozen = gc.get_freeze_count(); gc.unfreeze(); "
        "print(frozen, gc.collect())"
    )
    env = dict(os.environ, DJANGO_SETTINGS_MODULE="config.settings", RT_DATA_DIR=str(tmp_path))
    done = subprocess.run([sys.executable, "-c", code], cwd=BASE, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    frozen, garbage = map(int, done.stdout.split())
    assert frozen > 10_000, frozen  # Django's modules and the app: tens of thousands of objects
    assert garbage < frozen // 100, (garbage, frozen)
