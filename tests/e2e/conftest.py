"""End-to-end helpers: Django users with sessions in the servers' own database."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from tests.conftest import BASE_DIR

# Run inside `manage.py shell` against the e2e database: a user and a logged-in session,
# stored the way django.contrib.auth.login() stores them.
_MAKE_SESSION = """
import os
from importlib import import_module
from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model
user = get_user_model().objects.create_user(os.environ["E2E_USERNAME"], is_staff=os.environ["E2E_STAFF"] == "1")
session = import_module(settings.SESSION_ENGINE).SessionStore()
session[SESSION_KEY] = str(user.pk)
session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
session[HASH_SESSION_KEY] = user.get_session_auth_hash()
session.create()
print(user.pk, session.session_key)
"""


@dataclass(frozen=True)
class SignedIn:
    user_id: str
    username: str
    session_key: str

    @property
    def cookie(self) -> str:
        return f"sessionid={self.session_key}"


@pytest.fixture
def signed_in(server_env: dict[str, str], rt_settings: str) -> Callable[..., SignedIn]:
    """Factory: signed_in(staff=False) -> a new user with a session the servers accept."""
    count = iter(range(1000))

    def make(staff: bool = False) -> SignedIn:
        username = f"{rt_settings}-{next(count)}"
        env = dict(server_env, E2E_USERNAME=username, E2E_STAFF="1" if staff else "0")
        done = subprocess.run(
            [sys.executable, "manage.py", "shell", "-c", _MAKE_SESSION],
            cwd=BASE_DIR, env=env, check=True, capture_output=True, text=True,
        )
        user_id, session_key = done.stdout.split()[-2:]
        return SignedIn(user_id, username, session_key)

    return make


_MAKE_USERS = """
import os
from django.contrib.auth import get_user_model
for name in os.environ["E2E_USERNAMES"].split(","):
    staff = name.endswith("-staff")
    user = get_user_model().objects.create_user(name, is_staff=staff)
    print(user.pk, name)
"""


@pytest.fixture
def users(server_env: dict[str, str], rt_settings: str) -> Callable[..., list[SignedIn]]:
    """Factory: users("ann", "bob", "eve-staff") -> Django users in the servers' database, made
    in one process (no sessions: tests act as them with tokens whose `sub` is their id)."""
    count = iter(range(1000))

    def make(*names: str) -> list[SignedIn]:
        tag = f"{rt_settings}-{next(count)}"
        usernames = [f"{name.removesuffix('-staff')}{tag}" + ("-staff" if name.endswith("-staff") else "") for name in names]
        env = dict(server_env, E2E_USERNAMES=",".join(usernames))
        done = subprocess.run(
            [sys.executable, "manage.py", "shell", "-c", _MAKE_USERS],
            cwd=BASE_DIR, env=env, check=True, capture_output=True, text=True,
        )
        rows = [line.split() for line in done.stdout.splitlines() if line.strip()][-len(names):]
        return [SignedIn(pk, name, "") for pk, name in rows]

    return make


# --- Browser fixtures: Debian's Chromium driven by Playwright ---------------------------
# The browser tests fail (never skip) when /usr/bin/chromium is missing: `make browser`
# installs it.

import os  # noqa: E402
from collections.abc import Iterator  # noqa: E402
from dataclasses import field  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
CHAT_PASSWORD = "correct-horse-battery"
CHAT_USERS = ("alice", "bob", "carol")


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    """One headless Chromium per test module (the sync API: use it from sync tests only)."""
    from playwright.sync_api import sync_playwright

    assert os.path.exists(CHROMIUM), f"{CHROMIUM} is missing: run `make browser` (apt-get install chromium)"
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture(scope="session")
def chat_users(e2e_data: Path) -> dict[str, str]:
    """alice, bob and carol, all with CHAT_PASSWORD, in the e2e database (idempotent)."""
    code = (
        "from django.contrib.auth import get_user_model\n"
        "User = get_user_model()\n"
        f"for name in {list(CHAT_USERS)!r}:\n"
        "    user, _ = User.objects.get_or_create(username=name)\n"
        f"    user.set_password({CHAT_PASSWORD!r})\n"
        "    user.save()\n"
    )
    env = dict(os.environ, RT_DATA_DIR=str(e2e_data), DJANGO_SETTINGS_MODULE="config.settings")
    subprocess.run([sys.executable, "manage.py", "shell", "-c", code], cwd=BASE_DIR, env=env, check=True)
    return {name: CHAT_PASSWORD for name in CHAT_USERS}


@dataclass
class Person:
    """One browser context (its own cookies) with one page, and what the page did wrong."""

    context: Any
    page: Any
    base: str
    dialogs: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def sign_in(self, username: str, password: str = CHAT_PASSWORD) -> None:
        self.page.goto(self.base + "/accounts/login/")
        self.page.fill("input[name=username]", username)
        self.page.fill("input[name=password]", password)
        self.page.click("button[type=submit]")
        self.page.wait_for_url(self.base + "/rooms/")

    def open_room(self, name: str) -> None:
        self.page.goto(f"{self.base}/rooms/{name}/")
        # Up to 30 s, not Playwright's 15: in the parallel suite a benchmark smoke run can
        # hold both cores for a while (it connects in 5 s alone).
        self.page.wait_for_selector("#status[data-state=connected]", timeout=30_000)

    def say(self, text: str) -> None:
        self.page.fill("#text", text)
        self.page.press("#text", "Enter")

    def texts(self) -> list[str]:
        return self.page.locator("#messages li.message .text").all_text_contents()


@pytest.fixture
def people(chromium: Any) -> Iterator[Callable[[str], Person]]:
    """Factory: people(base_url) -> a Person with a fresh context; all closed afterwards."""
    made: list[Person] = []

    def make(base: str) -> Person:
        context = chromium.new_context(base_url=base, viewport={"width": 420, "height": 820})
        context.set_default_timeout(15000)
        page = context.new_page()
        person = Person(context, page, base)

        def on_dialog(dialog: Any) -> None:
            person.dialogs.append(dialog.message)
            dialog.dismiss()

        page.on("dialog", on_dialog)
        page.on("pageerror", lambda exc: person.errors.append(str(exc)))
        made.append(person)
        return person

    yield make
    for person in made:
        person.context.close()


@pytest.fixture
def alice_and_bob(people: Callable[[str], Person], chat_users: dict[str, str]) -> Callable[[Any, str], tuple[Person, Person]]:
    """alice_and_bob(server, room) -> both signed in, each on that room's page."""

    def make(server: Any, room: str) -> tuple[Person, Person]:
        alice, bob = people(server.http), people(server.http)
        alice.sign_in("alice")
        bob.sign_in("bob")
        alice.open_room(room)
        bob.open_room(room)
        return alice, bob

    return make


# --- Another site that embeds the feed (examples/embed_host.py) -------------------------


@pytest.fixture
def embed_host(server_env: dict[str, str]) -> Iterator[Callable[..., Any]]:
    """Factory: embed_host(server, user_id, ttl=300, pages={}) -> a running HostServer on
    its own port (another origin than `server`), minting tokens with the servers' secret."""
    from examples.embed_host import HostConfig, HostServer

    made: list[Any] = []

    def make(server: Any, user_id: str, ttl: int = 300, pages: dict[str, str] | None = None) -> Any:
        config = HostConfig(
            server=server.http, secret=server_env["RT_TOKEN_SECRET"], user_id=user_id, ttl=ttl, pages=dict(pages or {})
        )
        httpd = HostServer(("127.0.0.1", 0), config)
        httpd.serve_in_thread()
        made.append(httpd)
        return httpd

    yield make
    for httpd in made:
        httpd.shutdown()
        httpd.server_close()
