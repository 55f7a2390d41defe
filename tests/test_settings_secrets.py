"""Secrets given in the environment: outside DEBUG, one that is short or a placeholder stops
the settings with a message that names the variable (and never shows the value)."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # each case imports the settings in a process of its own
BASE = Path(__file__).resolve().parent.parent
NAMES = ["DJANGO_SECRET_KEY", "RT_TOKEN_SECRET"]


def load_settings(
    tmp_path: Path, show: str = "len(settings.SECRET_KEY), len(settings.RT_TOKEN_SECRET)", **env: str
) -> subprocess.CompletedProcess[str]:
    """Import the settings in a fresh process with `env`, printing `show`."""
    full = {k: v for k, v in os.environ.items() if k not in (*NAMES, "DEBUG", "REDIS_SENTINELS", "REDIS_CLUSTER_NODES")}
    full.update(DJANGO_SETTINGS_MODULE="config.settings", RT_DATA_DIR=str(tmp_path), **env)
    code = f"from django.conf import settings; print({show})"
    return subprocess.run([sys.executable, "-c", code], cwd=BASE, env=full, capture_output=True, text=True, timeout=60)


WEAK = {
    "short": ("too-short-9f3k", "is shorter than 32 bytes"),
    "compose's old default": ("change-me-to-a-long-random-secret", "looks like a placeholder (it contains 'change-me')"),
    "django's startproject": ("django-insecure-" + secrets.token_urlsafe(32), "it contains 'insecure'"),
    "a word in capitals": ("MY-SECRET-" + secrets.token_urlsafe(32), "it contains 'secret'"),
    "xxx": ("x" * 40, "one character repeated"),
    "a run inside": (secrets.token_hex(16) + "000000" + secrets.token_hex(4), "one character repeated"),
    "two characters": ("ab" * 20, "one character repeated"),
}


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("case", list(WEAK))
def test_a_weak_secret_is_refused_outside_debug(tmp_path: Path, name: str, case: str) -> None:
    value, why = WEAK[case]
    done = load_settings(tmp_path, **{name: value})
    assert done.returncode != 0
    assert "ImproperlyConfigured" in done.stderr and f"{name} " in done.stderr and why in done.stderr
    assert value not in done.stderr


@pytest.mark.parametrize("name", NAMES)
def test_debug_allows_a_weak_secret(tmp_path: Path, name: str) -> None:
    done = load_settings(tmp_path, DEBUG="1", **{name: "dev"})
    assert done.returncode == 0, done.stderr


def test_random_secrets_and_generated_ones_pass(tmp_path: Path) -> None:
    given = {"DJANGO_SECRET_KEY": secrets.token_urlsafe(48), "RT_TOKEN_SECRET": secrets.token_hex(32)}
    done = load_settings(tmp_path, **given)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["64", "64"]
    generated = load_settings(tmp_path / "fresh")  # none given: generated into the data dir
    assert generated.returncode == 0, generated.stderr
    assert sorted(p.name for p in (tmp_path / "fresh").glob("*.secret")) == ["django_secret_key.secret", "rt_token_secret.secret"]
    assert oct((tmp_path / "fresh").stat().st_mode & 0o777) == "0o700"
