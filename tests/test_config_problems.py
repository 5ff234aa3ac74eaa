"""A config file's problems as a stranger needs them: in our words, every one at once, each
with the file, the line and the key path, and a did-you-mean where a near name exists."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import pytest
from click.testing import CliRunner
from pydantic import BaseModel

from newsletter.cli import cli
from newsletter.config import load_config, load_overrides, save_move, settings
from newsletter.config.values import time_zone_problem, time_zones
from newsletter.errors import ConfigError
from tests.conftest import write_config

PYDANTIC_WORDS = (
    "Input should",
    "String should",
    "Value error",
    "Field required",
    "Extra inputs",
    "unable to parse",
    "valid dictionary",
)


def _error(tmp_path: Path, data: dict[str, object]) -> ConfigError:
    path = write_config(tmp_path, data)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    return info.value


def _text(err: ConfigError) -> str:
    return f"{err.message}\n{err.hint}"


def test_a_wrong_type_is_said_in_our_words_with_the_file_and_line(tmp_path: Path) -> None:
    err = _error(tmp_path, {"digest": {"per_sector": "five"}})
    path = tmp_path / "config.yaml"
    assert err.message == f"{path}, line 3: digest.per_sector: expected a whole number, got 'five'"
    assert not any(words in _text(err) for words in PYDANTIC_WORDS)


@pytest.mark.parametrize(
    ("data", "said"),
    [
        (
            {"digest": {"max_age_hours": 2.5}},
            "digest.max_age_hours: expected a whole number, got 2.5",
        ),
        (
            {"feeds": [{"name": "A", "url": "a.xml", "weight": "heavy"}]},
            "expected a number, got 'heavy'",
        ),
        ({"digest": {"per_sector": 0}}, "digest.per_sector: must be at least 1, got 0"),
        ({"digest": {"per_sector": 500}}, "digest.per_sector: must be at most 50, got 500"),
        ({"classify": {"min_score": 0}}, "classify.min_score: must be more than 0, got 0"),
        ({"publication": {"name": 123}}, "publication.name: expected text, got 123"),
        ({"publication": {"name": ""}}, "publication.name: must not be empty"),
        ({"publication": {"language": "English"}}, "expected a language code such as en or en-GB"),
        ({"digest": {"languages": "fr"}}, "digest.languages: expected a list, got 'fr'"),
        (
            {"collect": {"teasers": True}},
            "collect.teasers: expected keys and values (enabled, min_length, timeout_seconds, "
            "...), got true",
        ),
        (
            {"delivery": {"backend": "smpt"}},
            "expected one of 'outbox', 'smtp' or 'sendgrid', got 'smpt'; did you mean 'smtp'?",
        ),
        (
            {"schedule": {"send_at": "7am"}},
            "schedule.send_at: expected a time such as \"07:00\", got '7am'",
        ),
        ({"schedule": {"weekdays": ["monday"]}}, "did you mean 'mon'?"),
        (
            {"delivery": {"sendgrid": {"track_opens": "sometimes"}}},
            "expected true or false, got 'sometimes'",
        ),
        ({"sponsor": {"title": "T", "text": "x"}}, "sponsor.cta_url: required key missing"),
        (
            {"feeds": ["https://a.example.com/feed"]},
            "feeds[0]: expected keys and values (name, url, sector, ...), got 'https:",
        ),
        ({"signup": {"per_ip": "lots"}}, 'expected a rate such as "5/10 minutes"'),
        ({"delivery": {"from_address": "insights@"}}, "expected one address such as"),
        ({"delivery": {"from_address": "<@>"}}, "expected one address such as"),
    ],
)
def test_each_kind_of_mistake_is_said_in_our_words(
    tmp_path: Path, data: dict[str, object], said: str
) -> None:
    err = _error(tmp_path, data)
    assert said in err.message
    assert re.match(rf"{re.escape(str(tmp_path / 'config.yaml'))}, line \d+: ", err.message)
    assert not any(words in _text(err) for words in PYDANTIC_WORDS), _text(err)


def test_every_pattern_in_the_settings_has_words() -> None:
    """A value that does not match a pattern is described, never shown the regular expression."""
    from newsletter.config.problems import PATTERNS

    found: set[str] = set()
    for model in _models(settings.ConfigFile) | _models(settings.OverridesFile):
        for field in model.model_fields.values():
            for rule in [*field.metadata, *_inner_metadata(field.annotation)]:
                pattern = getattr(rule, "pattern", None)
                if pattern is not None:
                    found.add(pattern)
    assert found and found <= set(PATTERNS), found - set(PATTERNS)


def _models(model: type[BaseModel]) -> set[type[BaseModel]]:
    seen = {model}
    for field in model.model_fields.values():
        for inner in _types(field.annotation):
            if isinstance(inner, type) and issubclass(inner, BaseModel) and inner not in seen:
                seen |= _models(inner)
    return seen


def _types(annotation: object) -> list[object]:
    args = getattr(annotation, "__args__", ())
    return [annotation, *(t for a in args for t in _types(a))]


def _inner_metadata(annotation: object) -> list[object]:
    return [m for t in _types(annotation) for m in getattr(t, "__metadata__", ())]


def test_every_problem_is_reported_at_once_in_the_order_of_the_file(tmp_path: Path) -> None:
    err = _error(
        tmp_path,
        {
            "publicaton": {"name": "Typo"},
            "digest": {"per_sector": "five", "per_sectr": 4},
            "schedule": {"timezone": "Europe/Londn"},
            "feeds": [{"name": "Oily", "url": "https://a.example.com/f", "sector": "oil-and-gas"}],
            "delivery": {"backend": "smpt"},
        },
    )
    path = tmp_path / "config.yaml"
    assert err.message.startswith(f"{path}: 6 problems\n")
    assert err.problems == (
        "line 2: publicaton: unknown key 'publicaton'; did you mean 'publication'?",
        "line 5: digest.per_sector: expected a whole number, got 'five'",
        "line 6: digest.per_sectr: unknown key 'per_sectr'; did you mean 'per_sector'?",
        "line 8: schedule.timezone: unknown time zone 'Europe/Londn'; "
        "did you mean 'Europe/London'?",
        "line 12: feeds[0].sector: unknown sector 'oil-and-gas' (feed 'Oily'); "
        "did you mean 'oil-gas'?",
        "line 14: delivery.backend: expected one of 'outbox', 'smtp' or 'sendgrid', got 'smpt'; "
        "did you mean 'smtp'?",
    )
    for line in err.problems:
        assert f"\n  {line}" in err.message
    assert err.hint is not None and "oil-gas, rare-earths-commodities" in err.hint


def test_an_unknown_key_without_a_near_name_lists_the_known_ones(tmp_path: Path) -> None:
    err = _error(tmp_path, {"schedule": {"colour": "blue"}})
    assert err.message.endswith("schedule.colour: unknown key 'colour'")
    assert err.hint is not None and "Known keys under schedule: send_at, timezone" in err.hint
    path = tmp_path / "own.yaml"
    path.write_text("sectors:\n  - {slug: a, name: A, keyword: [x]}\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.message == (
        f"{path}, line 2: sectors[0].keyword: unknown key 'keyword'; did you mean 'keywords'?"
    )


@pytest.mark.parametrize(
    ("zone", "said"),
    [
        ("Europe/Londn", "unknown time zone 'Europe/Londn'; did you mean 'Europe/London'?"),
        (
            "europe/london",
            "unknown time zone 'europe/london'; did you mean 'Europe/London'? "
            "(time zone names are case-sensitive)",
        ),
        (
            "America/New York",
            "unknown time zone 'America/New York'; did you mean 'America/New_York'?",
        ),
    ],
)
def test_a_time_zone_gets_a_did_you_mean(tmp_path: Path, zone: str, said: str) -> None:
    err = _error(tmp_path, {"schedule": {"timezone": zone}})
    assert err.message.endswith(f"schedule.timezone: {said}")


def test_a_misspelt_sector_gets_a_did_you_mean_wherever_it_is_named(tmp_path: Path) -> None:
    err = _error(
        tmp_path,
        {
            "feeds": [{"name": "F", "url": "https://a.example.com/f", "sector": "esg-renewable"}],
            "sponsor": {
                "title": "T",
                "text": "x",
                "cta_url": "https://s.example.com",
                "after": "minng-metals",
            },
        },
    )
    assert (
        "feeds[0].sector: unknown sector 'esg-renewable' (feed 'F'); did you mean 'esg-renewables'?"
        in err.message
    )
    assert (
        "sponsor.after: unknown sector 'minng-metals'; did you mean 'mining-metals'?" in err.message
    )
    config = load_config(write_config(tmp_path / "good", {"feeds": []}))
    overrides = config.overrides_dir / "2026-11-25.yaml"
    overrides.parent.mkdir(parents=True)
    overrides.write_text(
        "move: {abc: sanction-regulation}\n"
        "sponsor: {title: T, text: x, cta_url: 'https://s.example.com', after: oilgas}\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as info:
        load_overrides(config, date(2026, 11, 25))
    assert info.value.problems == (
        "line 1: move.abc: unknown sector 'sanction-regulation'; "
        "did you mean 'sanctions-regulation'?",
        "line 2: sponsor.after: unknown sector 'oilgas'; did you mean 'oil-gas'?",
    )
    with pytest.raises(ConfigError) as info:
        save_move(config, date(2026, 11, 24), "abc", "aerospace-defence")
    assert "did you mean 'aerospace-defense'?" in info.value.message


def test_an_unknown_sector_on_the_command_line_gets_a_did_you_mean(tmp_path: Path) -> None:
    path = write_config(tmp_path, {"feeds": []})
    result = CliRunner().invoke(cli, ["--config", str(path), "stories", "--sector", "oil-gaz"])
    assert result.exit_code == 2
    assert "unknown sector 'oil-gaz'; did you mean 'oil-gas'?" in result.stderr


def test_images_must_be_https(tmp_path: Path) -> None:
    err = _error(
        tmp_path,
        {
            "publication": {"logo": {"url": "http://cdn.example.com/logo.png", "alt": "Logo"}},
            "sponsor": {
                "title": "T",
                "text": "x",
                "cta_url": "https://s.example.com",
                "image": {"url": "http://cdn.example.com/ad.png", "alt": "Ad"},
            },
        },
    )
    assert err.problems == (
        "line 4: publication.logo.url: an image must be served over https, got "
        "'http://cdn.example.com/logo.png': the web pages' content security policy blocks "
        "http images; use 'https://cdn.example.com/logo.png'",
        "line 11: sponsor.image.url: an image must be served over https, got "
        "'http://cdn.example.com/ad.png': the web pages' content security policy blocks "
        "http images; use 'https://cdn.example.com/ad.png'",
    )
    config = load_config(
        write_config(
            tmp_path / "good",
            {"publication": {"logo": {"url": "https://cdn.example.com/logo.png", "alt": "L"}}},
        )
    )
    assert config.publication.logo is not None


def test_a_missing_config_file_says_how_to_start_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("NEWSLETTER_CONFIG", raising=False)
    result = CliRunner().invoke(cli, ["status"])
    assert result.exit_code == 3
    assert f"Error: config.yaml: config file not found in {tmp_path}" in result.stderr
    hint = result.stderr.split("Hint: ", 1)[1]
    assert "newsletter init FOLDER" in hint
    assert "--config FOLDER/config.yaml" in hint and "NEWSLETTER_CONFIG" in hint
    assert list(tmp_path.iterdir()) == []


def test_the_command_prints_every_problem_under_the_error(tmp_path: Path) -> None:
    path = write_config(tmp_path, {"digest": {"per_sector": "five", "max_age_hours": -1}})
    result = CliRunner().invoke(cli, ["--config", str(path), "status"])
    assert result.exit_code == 3
    assert result.stderr.splitlines()[:3] == [
        f"Error: {path}: 2 problems",
        "  line 3: digest.per_sector: expected a whole number, got 'five'",
        "  line 4: digest.max_age_hours: must be at least 1, got -1",
    ]


def test_a_misspelt_sector_in_a_file_or_an_address_gets_a_did_you_mean(tmp_path: Path) -> None:
    path = write_config(tmp_path, {"feeds": []})
    env = {"NEWSLETTER_NOW": "2026-11-25T06:00:00+00:00"}
    readers = tmp_path / "readers.csv"
    readers.write_text("email,name,sectors\nana@example.com,Ana,oil-gaz\n", encoding="utf-8")
    result = CliRunner().invoke(
        cli, ["--config", str(path), "subscribers", "import", str(readers)], env=env
    )
    assert "line 2: unknown sector 'oil-gaz'; did you mean 'oil-gas'?" in result.stdout
    result = CliRunner().invoke(
        cli,
        ["--config", str(path), "subscribers", "add", "bo@example.com", "--sectors", "evs-batery"],
        env=env,
    )
    assert result.exit_code == 2 and "did you mean 'evs-battery'?" in result.stderr
    labelled = tmp_path / "labelled.jsonl"
    labelled.write_text('{"title": "Brent jumps", "primary": "oil-gaz"}\n', encoding="utf-8")
    result = CliRunner().invoke(
        cli, ["--config", str(path), "rules", "check", str(labelled)], env=env
    )
    assert result.exit_code == 1
    assert f"{labelled}, line 1: unknown sector 'oil-gaz'; did you mean 'oil-gas'?" in result.stderr


@pytest.mark.parametrize("zone", ["localtime", "Factory", "posixrules"])
def test_a_machines_own_zone_file_is_no_time_zone(tmp_path: Path, zone: str) -> None:
    """ "localtime" is the machine's own zone (another machine sends at another hour), and
    "Factory" names no place: not offered, not taken."""
    assert zone not in time_zones()
    assert time_zone_problem(zone) == f"unknown time zone {zone!r}"
    err = _error(tmp_path, {"schedule": {"timezone": zone}})
    assert f"schedule.timezone: unknown time zone {zone!r}" in err.message


@pytest.mark.parametrize(
    ("url", "said", "hint"),
    [
        ("notaurl", "'notaurl' is not a database URL", "sqlite:///newsletter.db"),
        ("postgres://news@db/news", "no database driver for 'postgres'", "postgresql+psycopg://"),
        ("postgresql://news:s3cret@db:port/news", "'postgresql://***@db:port/news' is not", "URL"),
    ],
)
def test_a_database_url_that_cannot_be_used_is_a_configuration_error(
    tmp_path: Path, url: str, said: str, hint: str
) -> None:
    path = write_config(tmp_path, {"feeds": []})
    result = CliRunner().invoke(
        cli, ["--config", str(path), "status"], env={"NEWSLETTER_DATABASE_URL": url}
    )
    assert result.exit_code == 3, result.output
    error, _, advice = result.output.partition("Hint:")
    assert said in error and hint in advice and "NEWSLETTER_DATABASE_URL" in advice
    assert "Traceback" not in result.output and "s3cret" not in result.output
