"""Tokens for tests, minted with PyJWT the way another site's backend would."""

from __future__ import annotations

import time
from typing import Any

import jwt
from django.conf import settings


def mint(secret: str | None = None, ttl: int = 3600, **claims: Any) -> str:
    payload = {"exp": int(time.time()) + ttl, **claims}
    return jwt.encode(payload, secret or settings.RT_TOKEN_SECRET, algorithm="HS256")
