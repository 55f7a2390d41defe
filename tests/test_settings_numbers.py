"""Numbers given in the environment: one that is not a number, or below what the setting
can take, stops the settings with a message that names the variable and says why."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.test_settings_secrets import load_settings

pytestmark = pytest.mark.slow  # each case imports the settings in a process of its own


@pytest.mark.parametrize(("value", "said"), [("soon", "expected a number"), ("-1", "must be at least 0.0")])
def test_a_wrong_write_interval_is_refused_with_why(tmp_path: Path, value: str, said: str) -> None:
    done = load_settings(tmp_path, RT_WS_COALESCE_MS=value)
    assert done.returncode != 0
    assert "ImproperlyConfigured" in done.stderr and f"RT_WS_COALESCE_MS={value!r}: {said}" in done.stderr


def test_the_write_interval_defaults_to_two_ms_and_takes_zero(tmp_path: Path) -> None:
    default = load_settings(tmp_path, show="settings.RT_WS_COALESCE_MS")
    off = load_settings(tmp_path, show="settings.RT_WS_COALESCE_MS", RT_WS_COALESCE_MS="0")
    assert (default.returncode, off.returncode) == (0, 0), default.stderr + off.stderr
    assert (default.stdout.strip(), off.stdout.strip()) == ("2.0", "0.0")
