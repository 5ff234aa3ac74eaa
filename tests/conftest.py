from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from newsletter.config import Config, load_config
from tests.feedserver import FeedServer, serve

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "examples" / "demo"
SHARED = ROOT.parent / "shared"
NOW = datetime(2026, 11, 25, 6, 0, tzinfo=UTC)


# NEWSLETTER_TEST_DATABASE_URL=postgresql+psycopg://user@host:port/postgres runs every test
# that opens a store against that PostgreSQL server: each test gets a database of its own,
# made here and dropped after it (the commands find it through NEWSLETTER_DATABASE_URL)
TEST_DATABASE = os.environ.get("NEWSLETTER_TEST_DATABASE_URL", "")


def pytest_configure(config: pytest.Config) -> None:
    if TEST_DATABASE:  # a test's store left open is dropped with its database: no warning
        config.addinivalue_line("filterwarnings", "ignore::pytest.PytestUnraisableExceptionWarning")


@pytest.fixture(autouse=True)
def database(monkeypatch: pytest.MonkeyPatch) -> Iterator[str | None]:
    if not TEST_DATABASE:
        yield None
        return
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    admin = create_engine(TEST_DATABASE, isolation_level="AUTOCOMMIT")
    name = f"nl_test_{uuid.uuid4().hex[:16]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(TEST_DATABASE).set(database=name).render_as_string(hide_password=False)
    monkeypatch.setenv("NEWSLETTER_DATABASE_URL", url)
    try:
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def feed_server() -> Iterator[FeedServer]:
    with serve() as server:
        yield server


def write_config(folder: Path, data: dict[str, object]) -> Path:
    """Write a config file whose sectors come from the root config.yaml."""
    folder.mkdir(parents=True, exist_ok=True)
    body = {"sectors_file": str(ROOT / "config.yaml"), **data}
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(body, sort_keys=False), encoding="utf-8")
    return path


@pytest.fixture
def demo_dir(tmp_path: Path) -> Path:
    """A copy of examples/demo whose sectors_file points at the repository's config.yaml."""
    target = tmp_path / "demo"
    shutil.copytree(DEMO, target, ignore=shutil.ignore_patterns("*.db*", "outbox", "preview"))
    path = target / "config.yaml"
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("../../config.yaml", str(ROOT / "config.yaml")), encoding="utf-8")
    return target


@pytest.fixture
def demo_config(demo_dir: Path) -> Config:
    return load_config(demo_dir / "config.yaml")
