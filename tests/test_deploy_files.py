"""The deployment files parse and name only what exists (no Docker engine runs here)."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

BASE = Path(__file__).resolve().parent.parent


def test_compose_parses_and_builds_from_files_that_exist() -> None:
    compose = yaml.safe_load((BASE / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"redis", "web1", "web2", "archiver"} <= set(services)
    assert "--appendonly" in services["redis"]["command"] and "healthcheck" in services["redis"]
    for name in ("web1", "web2", "archiver"):
        service = services[name]
        assert (BASE / service["build"] / "Dockerfile").exists()
        assert service["depends_on"]["redis"]["condition"] == "service_healthy"
        assert service["environment"]["REDIS_URL"].startswith("redis://redis:")
    for name in ("web1", "web2"):
        assert services[name]["environment"]["RT_ARCHIVER"] == "0"
    assert services["archiver"]["command"][-1] == "run_archiver"
    assert (BASE / "realtime/management/commands").is_dir()


def test_dockerfile_installs_like_make() -> None:
    dockerfile = (BASE / "Dockerfile").read_text()
    makefile = (BASE / "Makefile").read_text()
    flags = "--require-hashes -r requirements.lock"
    assert flags in dockerfile and flags in makefile
    for src in re.findall(r"^COPY (\S+)", dockerfile, re.M):
        assert src == "." or (BASE / src).exists(), src
    assert 'CMD ["python", "-m", "config.serve"]' in dockerfile
