from __future__ import annotations

import os
import re
from datetime import timedelta
from pathlib import Path

import pytest

from newsletter import pipeline, render
from newsletter.config import Config
from newsletter.digest import build_edition, layout
from newsletter.errors import TemplateError
from newsletter.models import Edition, Section, Sector, Story
from newsletter.store import Store
from tests.conftest import NOW

GOLDEN = Path(__file__).parent / "golden"
_DATES = [
    (re.compile(r"\b(?:Mon|Tues|Wednes|Thurs|Fri|Satur|Sun)day, \d{1,2} \w+ \d{4}\b"), "<DATE>"),
    (
        re.compile(r"\b\d{1,2} (?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4}\b"),
        "<DATE>",
    ),
    (re.compile(r"\b\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2})?(?:Z|[+-]\d{2}:\d{2})?"), "<DATETIME>"),
]


def scrub(text: str) -> str:
    """Dates out, so the golden files do not change with the day they are rendered."""
    for pattern, replacement in _DATES:
        text = pattern.sub(replacement, text)
    return text


def check_golden(name: str, actual: str) -> None:
    path = GOLDEN / name
    actual = scrub(actual)
    if os.environ.get("UPDATE_GOLDEN") == "1":
        path.write_text(actual, encoding="utf-8")
    assert path.is_file(), f"{path} missing: run UPDATE_GOLDEN=1 pytest {__file__}"
    expected = path.read_text(encoding="utf-8")
    assert actual == expected, f"{name} differs from its golden file; UPDATE_GOLDEN=1 rewrites it"


@pytest.fixture
def demo_preview(demo_config: Config, tmp_path: Path) -> pipeline.PreviewResult:
    store = Store.open(demo_config.database_url)
    pipeline.collect_all(demo_config, store, now=NOW)
    return pipeline.preview(demo_config, store, out_dir=tmp_path / "out", now=NOW)


def test_demo_edition_matches_golden_files(demo_preview: pipeline.PreviewResult) -> None:
    email = demo_preview.email
    assert email is not None
    check_golden("demo.html", email.html)
    check_golden("demo.txt", email.text)
    assert email.subject == (
        "Top Insights Today, 25 Nov 2026: "
        "Budget electric hatchback tops European EV sales in October"
    )


def test_one_readers_combination_matches_golden_files(demo_config: Config, tmp_path: Path) -> None:
    store = Store.open(demo_config.database_url)
    pipeline.collect_all(demo_config, store, now=NOW)
    result = pipeline.preview(
        demo_config, store, out_dir=tmp_path, now=NOW, sectors=("sanctions-regulation", "oil-gas")
    )
    assert [s.sector.slug for s in result.sections] == ["oil-gas", "sanctions-regulation"]
    assert result.email is not None
    check_golden("demo-oil-sanctions.txt", result.email.text)


def _edition_with(
    title: str, summary: str = "Teaser & more"
) -> tuple[Edition, tuple[Section, ...]]:
    story = Story(
        id="x",
        title=title,
        url="https://example.com/a?b=1&c=2",
        summary=summary,
        source="S&P",
        published=NOW - timedelta(hours=1),
        sectors=("oil-gas",),
    )
    edition = build_edition(
        [story],
        [Sector("oil-gas", "Oil & Gas")],
        publication="P & Q",
        edition_date=NOW.date(),
        now=NOW,
    )
    return edition, layout(edition)


def test_html_is_escaped_and_text_is_not() -> None:
    edition, sections = _edition_with("<script>alert(1)</script> Oil & gas")
    email = render.render_email(
        render.make_environment(),
        edition,
        sections,
        site_url="https://example.com",
    )
    assert "<script>alert(1)</script>" not in email.html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; Oil &amp; gas" in email.html
    assert 'href="https://example.com/a?b=1&amp;c=2"' in email.html
    assert "<script>alert(1)</script> Oil & gas" in email.text
    assert "S&P" in email.text and "Teaser & more" in email.text
    assert "&amp;" not in email.text


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        (  # a name the renderer does not provide
            "<mjml><mj-body>\n<mj-section><mj-column><mj-text>\n{{ no_such_name }}\n"
            "</mj-text></mj-column></mj-section></mj-body></mjml>\n",
            ["{path}, line 3", "no_such_name"],
        ),
        (  # Jinja syntax
            "<mjml>\n<mj-body>\n{% for x in %}\n</mj-body></mjml>\n",
            ["{path}, line 3"],
        ),
        (  # MJML that MRML cannot compile
            "<mjml><mj-body><mj-section><mj-column>\n</mjml>\n",
            ["{path}: the rendered MJML is not valid"],
        ),
    ],
)
def test_template_errors_name_the_file(tmp_path: Path, template: str, expected: list[str]) -> None:
    folder = tmp_path / "templates"
    folder.mkdir()
    (folder / "digest.mjml.j2").write_text(template, encoding="utf-8")
    edition, sections = _edition_with("Crude rises")
    with pytest.raises(TemplateError) as info:
        render.render_email(render.make_environment(folder), edition, sections, site_url="x")
    for text in expected:
        assert text.format(path=folder / "digest.mjml.j2") in info.value.message
    assert info.value.hint


def test_builtin_templates_ship_inside_the_package() -> None:
    assert (render.BUILTIN_TEMPLATES / render.HTML_TEMPLATE).is_file()
    assert (render.BUILTIN_TEMPLATES / render.TEXT_TEMPLATE).is_file()
    assert render.BUILTIN_TEMPLATES.parent.name == "newsletter"
