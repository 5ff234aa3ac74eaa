from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from newsletter.config import load_config
from newsletter.errors import ConfigError
from tests.conftest import DEMO, ROOT, write_config

DESIGN_SLUGS = (
    "evs-battery",
    "oil-gas",
    "rare-earths-commodities",
    "mining-metals",
    "esg-renewables",
    "ai-semiconductors",
    "aerospace-defense",
    "sanctions-regulation",
    "business-politics",
)


def test_root_config_has_the_nine_sectors_and_real_feeds() -> None:
    config = load_config(ROOT / "config.yaml")
    assert config.sector_slugs == DESIGN_SLUGS
    assert all(s.description and len(s.keywords) >= 10 for s in config.file.sectors)
    assert config.feeds and all(f.url.startswith("https://") for f in config.feeds)
    hinted = {f.sector for f in config.feeds}
    assert hinted == set(DESIGN_SLUGS)  # a starting feed for every sector
    assert config.file.delivery.backend == "outbox"
    if not os.environ.get("NEWSLETTER_DATABASE_URL"):  # (else the environment's overrides it)
        assert config.database_url == f"sqlite:///{ROOT / 'newsletter.db'}"


def test_demo_paths_resolve_against_the_config_folder(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir("/")
    monkeypatch.delenv("NEWSLETTER_DATABASE_URL", raising=False)  # the file's own setting
    config = load_config(DEMO / "config.yaml")
    assert config.database_url == f"sqlite:///{DEMO.resolve() / 'newsletter.db'}"
    assert config.outbox_dir == DEMO.resolve() / "outbox"
    assert config.sector_slugs == DESIGN_SLUGS  # taken from ../../config.yaml
    for feed in config.feeds:
        assert Path(feed.location).is_absolute()
        assert Path(feed.location).is_file(), feed.location


def _error(tmp_path: Path, data: dict[str, object]) -> ConfigError:
    path = write_config(tmp_path, data)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    return info.value


def test_unknown_key_names_file_line_path_and_known_keys(tmp_path: Path) -> None:
    err = _error(tmp_path, {"digest": {"per_sector": 3, "per_sectr": 4}})
    assert str(tmp_path / "config.yaml") in err.message
    assert "line 4" in err.message  # sectors_file, digest, per_sector, per_sectr
    assert "digest.per_sectr: unknown key 'per_sectr'" in err.message
    assert err.hint is not None and "per_sector" in err.hint and "max_age_hours" in err.hint


def test_wrong_type_names_the_key_path(tmp_path: Path) -> None:
    err = _error(tmp_path, {"digest": {"per_sector": "many"}})
    assert "digest.per_sector:" in err.message
    assert "'many'" in err.message
    assert err.hint


def test_unknown_sector_hint_names_the_feed(tmp_path: Path) -> None:
    feeds = [
        {"name": "Good", "url": "https://a.example.com/feed", "sector": "oil-gas"},
        {"name": "Typo", "url": "https://b.example.com/feed", "sector": "oil-and-gas"},
    ]
    err = _error(tmp_path, {"feeds": feeds})
    assert "feeds[1].sector: unknown sector 'oil-and-gas'" in err.message
    assert "'Typo'" in err.message
    assert err.hint is not None and "oil-gas" in err.hint and "business-politics" in err.hint


def test_bad_timezone(tmp_path: Path) -> None:
    err = _error(tmp_path, {"schedule": {"timezone": "Europe/Londn"}})
    assert "schedule.timezone: unknown time zone 'Europe/Londn'" in err.message


def test_missing_file_says_how_to_fix(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "nope.yaml")
    assert "nope.yaml: config file not found" in info.value.message
    assert info.value.hint is not None and "--config" in info.value.hint


def test_invalid_yaml_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("publication:\n  name: [unclosed\ndatabase: x\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert "not valid YAML" in info.value.message
    assert ", line " in info.value.message


def _refused(tmp_path: Path, text: str) -> tuple[Path, ConfigError]:
    """The error of a config file of this text."""
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    return path, info.value


def test_an_unclosed_bracket_is_named_where_it_opens(tmp_path: Path) -> None:
    lines = ["publication:", "  name: Daily", "digest:", "  per_sector: [2", "", "delivery:"]
    path, error = _refused(tmp_path, "\n".join([*lines, "  backend: outbox", ""]))
    # where the list opens (line 4), not only where the parser gave up (line 6)
    assert f"{path}, line 4: not valid YAML" in error.message
    assert "line 6" in error.message


def test_a_key_given_twice_is_refused_with_both_lines(tmp_path: Path) -> None:
    text = "digest:\n  per_sector: 2\npublication:\n  name: Daily\ndigest:\n  brief: 3\n"
    path, error = _refused(tmp_path, f"sectors_file: {ROOT / 'config.yaml'}\n{text}")
    assert f"{path}, line 2: digest: given twice (again at line 6)" in error.message
    assert error.hint is not None and "one" in error.hint


def test_a_key_given_twice_is_listed_with_the_file_s_other_problems(tmp_path: Path) -> None:
    text = (
        "digest:\n  brief: 3\n  per_sector: yes\n  brief: 2\n"
        "delivery:\n  from_address: a@example.com, b@example.com\n"
    )
    path, error = _refused(tmp_path, f"sectors_file: {ROOT / 'config.yaml'}\n{text}")
    assert f"{path}: 3 problems" in error.message
    assert "line 3: digest.brief: given twice (again at line 5)" in error.message
    assert "line 4: digest.per_sector: expected a number, got true" in error.message
    assert "line 7: delivery.from_address:" in error.message


@pytest.mark.parametrize(
    ("key", "value"), [("per_sector", True), ("freshness_half_life_hours", False)]
)
def test_yes_or_no_is_no_number(tmp_path: Path, key: str, value: bool) -> None:
    err = _error(tmp_path, {"digest": {key: value}})
    assert f"digest.{key}: expected a number, got {str(value).lower()}" in err.message


@pytest.mark.parametrize(
    "address", ["not an address", "news@pub.example.com extra", "a@b.co, c@d.co", "Ana <ana@>"]
)
def test_the_from_address_must_be_one_address(tmp_path: Path, address: str) -> None:
    err = _error(tmp_path, {"delivery": {"from_address": address}})
    assert "delivery.from_address:" in err.message and repr(address) in err.message


def test_the_from_address_may_carry_a_name(tmp_path: Path) -> None:
    for address in ("Top Insights <news@pub.example.com>", '"Ruiz, Ana" <a@b.co>', "n@b.co"):
        config = load_config(write_config(tmp_path, {"delivery": {"from_address": address}}))
        assert config.file.delivery.from_address == address


def test_missing_sectors_file(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("sectors_file: elsewhere.yaml\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert "sectors_file: file" in info.value.message and "not found" in info.value.message


def test_duplicate_feed_and_unsupported_scheme(tmp_path: Path) -> None:
    feed = {"name": "A", "url": "https://a.example.com/feed"}
    err = _error(tmp_path, {"feeds": [feed, {**feed, "name": "B"}]})
    assert "feeds[1].url" in err.message and "twice" in err.message
    err = _error(tmp_path, {"feeds": [{"name": "F", "url": "ftp://x.example.com/feed"}]})
    assert "unsupported scheme 'ftp'" in err.message


def test_keywords_as_list_weigh_one(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(
        "sectors:\n  - {slug: energy, name: Energy, keywords: [oil, gas]}\n", encoding="utf-8"
    )
    config = load_config(path)
    assert config.file.sectors[0].keywords == {"oil": 1.0, "gas": 1.0}


def test_the_environment_names_the_database_instead_of_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NEWSLETTER_DATABASE_URL", "postgresql+psycopg://news@db.internal/news")
    config = load_config(write_config(tmp_path, {"feeds": [], "database": "sqlite:///x.db"}))
    assert config.database_url == "postgresql+psycopg://news@db.internal/news"


def test_processes_making_the_privacy_key_at_once_all_get_the_same_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Processes started together on a fresh folder (a collector and a sender) all
    find no key file: one makes it, the others read that one, never a half-written file."""
    monkeypatch.delenv("NEWSLETTER_PRIVACY_KEY", raising=False)
    script = (
        "import sys\n"
        "from pathlib import Path\n"
        "from newsletter.config import load_config\n"
        "config = load_config(Path(sys.argv[1]))\n"
        "print('ready', flush=True)\n"
        "sys.stdin.readline()\n"  # all start together: the test answers once every one is ready
        "print(config.privacy_key().decode())\n"
    )
    for round_ in range(2):
        folder = tmp_path / str(round_)
        folder.mkdir()
        path = write_config(folder, {"feeds": []})
        runs = [
            subprocess.Popen(
                [sys.executable, "-c", script, str(path)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(6)
        ]
        for run in runs:
            assert run.stdout is not None and run.stdout.readline() == "ready\n"
        for run in runs:
            assert run.stdin is not None
            run.stdin.write("go\n")
            run.stdin.flush()
        results = [run.communicate(timeout=60) for run in runs]
        assert [err for _, err in results] == [""] * 6
        keys = {out.strip() for out, _ in results}
        assert len(keys) == 1 and len(keys.pop()) == 64


def test_two_feeds_of_one_name_are_refused(tmp_path: Path) -> None:
    """Status lines, the overrides' drop_feeds and the logs name a feed by its name."""
    feeds = [
        {"name": "Wire", "url": "https://a.example.com/feed"},
        {"name": "Wire", "url": "https://b.example.com/feed"},
    ]
    err = _error(tmp_path, {"feeds": feeds})
    assert "feeds[1].name: feed name 'Wire' is used twice" in err.message


def test_a_feed_address_typed_slightly_wrong_is_named_with_what_to_do(tmp_path: Path) -> None:
    """Spaces around an address, one without its scheme, the same feed with a fragment: each
    refused with a next step; an upper-case scheme is the scheme (it was read as a file)."""
    spaced = _error(tmp_path, {"feeds": [{"name": "A", "url": "https://a.example.com/f.xml "}]})
    assert "has spaces around it" in spaced.message
    bare = _error(tmp_path, {"feeds": [{"name": "A", "url": "127.0.0.1:18302/a.xml"}]})
    assert "did you mean 'http://127.0.0.1:18302/a.xml'" in bare.message
    www = _error(tmp_path, {"feeds": [{"name": "A", "url": "www.example.com/feed"}]})
    assert "did you mean 'https://www.example.com/feed'" in www.message
    twice = [
        {"name": "A", "url": "https://a.example.com/f.xml"},
        {"name": "B", "url": "https://a.example.com/f.xml#latest"},
    ]
    assert "listed twice" in _error(tmp_path, {"feeds": twice}).message
    path = write_config(tmp_path, {"feeds": [{"name": "A", "url": "HTTP://a.example.com/f.xml"}]})
    (feed,) = load_config(path).feeds
    assert feed.location == "http://a.example.com/f.xml"
