from __future__ import annotations

import os
import re
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest

from newsletter import flows
from newsletter.config import Config
from newsletter.config.settings import LogoConfig
from newsletter.edition import brief, personalize, render
from newsletter.edition.digest import build_edition, layout
from newsletter.errors import TemplateError
from newsletter.flows.preview import preview
from newsletter.models import Edition, Overrides, Section, Sector, SectorFit, Sponsor, Story
from newsletter.store import Store
from tests.conftest import NOW, ROOT

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
def demo_preview(demo_config: Config, tmp_path: Path) -> flows.PreviewResult:
    store = Store.open(demo_config.database_url)
    flows.collect_all(demo_config, store, now=NOW)
    return preview(demo_config, store, out_dir=tmp_path / "out", now=NOW)


def test_demo_edition_matches_golden_files(demo_preview: flows.PreviewResult) -> None:
    email = demo_preview.email
    assert email is not None
    check_golden("demo.html", email.html)
    check_golden("demo.txt", email.text)
    # the subject is the biggest storyline whose headline a phone shows whole: the price-cap
    # review (two outlets) is longer than 60 characters, the copper story (two outlets) is not
    assert email.subject == "Copper hits 18-month high on Chilean mine disruption"
    assert email.preheader.startswith("Also: Ministers agree review of the price cap")


def test_one_readers_combination_matches_golden_files(demo_config: Config, tmp_path: Path) -> None:
    store = Store.open(demo_config.database_url)
    flows.collect_all(demo_config, store, now=NOW)
    result = preview(
        demo_config, store, out_dir=tmp_path, now=NOW, sectors=("sanctions-regulation", "oil-gas")
    )
    assert [s.sector.slug for s in result.sections] == ["sanctions-regulation", "oil-gas"]
    assert result.email is not None
    check_golden("demo-oil-sanctions.txt", result.email.text)


def _edition_with(
    title: str, summary: str = "Teaser & more, with the figures that matter today."
) -> tuple[Edition, tuple[Section, ...]]:
    story = Story(
        id="x",
        title=title,
        url="https://example.com/a?b=1&c=2",
        summary=summary,
        source="S&P",
        published=NOW - timedelta(hours=1),
        fits=(SectorFit("oil-gas"),),
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
        settings=replace(render.RenderSettings.from_config(), site_url="https://example.com"),
    )
    assert "<script>alert(1)</script>" not in email.html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; Oil &amp; gas" in email.html
    assert 'href="https://example.com/a?b=1&amp;c=2"' in email.html
    assert "<script>alert(1)</script> Oil & gas" in email.text
    assert "S&P" in email.text and "Teaser & more" in email.text
    assert "&amp;" not in email.text


@pytest.mark.parametrize(
    ("chosen", "said"),
    [
        (("oil-gas", "mining-metals"), "and chose Oil & Gas, Mining & Metals"),  # no metals today
        ((), "and chose every sector"),
        (("evs-battery", "mining-metals", "oil-gas"), "and chose every sector"),
        (("mining-metals", "oil-gas"), "and chose Mining & Metals, Oil & Gas"),  # their order
    ],
)
def test_the_footer_names_the_readers_choice_not_the_sections_of_the_day(
    chosen: tuple[str, ...], said: str
) -> None:
    edition, _ = _edition_with("Refiners cut runs as margins slide")
    sectors = (
        Sector("oil-gas", "Oil & Gas"),
        Sector("mining-metals", "Mining & Metals"),
        Sector("evs-battery", "EVs & Battery Technology"),
    )
    settings = replace(render.RenderSettings.from_config(), sectors=sectors)
    email = render.render_email(
        render.make_environment(),
        edition,
        layout(edition, chosen),
        settings=settings,
        chosen=chosen,
    )
    assert said in " ".join(email.text.split())
    assert said.replace("&", "&amp;") in " ".join(email.html.split())


def test_the_editor_s_note_keeps_its_lines() -> None:
    edition, sections = _edition_with("Refiners cut runs as margins slide")
    edition = replace(edition, note="Markets close early.\nNo edition on Friday.")
    email = render.render_email(render.make_environment(), edition, sections)
    assert "From the editor:\n  Markets close early.\n  No edition on Friday." in email.text
    assert re.search(r"Markets close early\.\s*<br\s*/?>\s*No edition on Friday\.", email.html)


def test_the_text_parts_greeting_intro_and_stories_are_apart() -> None:
    from newsletter.readers.links import preview_values

    edition, sections = _edition_with("Refiners cut runs as margins slide")
    edition = replace(edition, intro="Refiners led the day.")
    variant = render.render_email(render.make_environment(), edition, sections)
    text = personalize.Personalizer(variant).fill(preview_values("https://example.com")).text
    assert "Good morning.\n\nRefiners led the day." in text  # a blank line between them


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
        (  # MJML that MRML cannot compile: an element never closed
            "<mjml>\n<mj-body>\n<mj-section>\n<mj-column>\n"
            "<mj-text>{{ publication }}</mj-text>\n</mj-section>\n</mj-body>\n</mjml>\n",
            ["{path}, line 4: the rendered MJML is not valid"],
        ),
    ],
)
def test_template_errors_name_the_file(tmp_path: Path, template: str, expected: list[str]) -> None:
    folder = tmp_path / "templates"
    folder.mkdir()
    (folder / "digest.mjml.j2").write_text(template, encoding="utf-8")
    edition, sections = _edition_with("Crude rises")
    with pytest.raises(TemplateError) as info:
        render.render_email(render.make_environment(folder), edition, sections)
    for text in expected:
        assert text.format(path=folder / "digest.mjml.j2") in info.value.message
    assert info.value.hint


def test_the_builtin_templates_are_the_one_copy_at_the_top() -> None:
    assert (render.BUILTIN_TEMPLATES / render.HTML_TEMPLATE).is_file()
    assert (render.BUILTIN_TEMPLATES / render.TEXT_TEMPLATE).is_file()
    # the editable install reads templates/ itself (the wheel installs it as newsletter/templates)
    assert render.BUILTIN_TEMPLATES.resolve() == (ROOT / "templates").resolve()
    assert not (ROOT / "newsletter" / "templates").exists()


def _full_edition(teaser_words: int = 50, per_sector: int = 5, more: int = 5) -> Edition:
    """A full nine-sector edition with long headlines and teasers: the size worst case."""
    sectors = [Sector(f"s{i}", f"Sector number {i}") for i in range(9)]
    stories = [
        Story(
            id=f"{i}-{j}",
            title=f"A long headline about development {1000 + i * 100 + j} that readers follow",
            url=f"https://news{i}.example.com/2026/11/25/sector-{i}/story-{j}?id={i * 100 + j}",
            summary=" ".join(["Words of the teaser that readers will skim."] * (teaser_words // 8)),
            source=f"Outlet {j}",
            published=NOW - timedelta(minutes=10 * j + i),
            feed_url=f"feed{j}",
            fits=(SectorFit(f"s{i}"),),
            also_in=("Another Outlet", "A Third Outlet") if j == 0 else (),
        )
        for i in range(9)
        for j in range(per_sector + more)
    ]
    return build_edition(
        stories,
        sectors,
        publication="Top Insights Today",
        edition_date=NOW.date(),
        now=NOW,
        per_sector=per_sector,
        max_age=timedelta(days=2),
        overrides=Overrides(note="A short note."),
    )


def full_sponsor() -> Sponsor:
    """A sponsor slot with every part filled: the size and client checks' worst case."""
    return Sponsor(
        title="Halvard Analytics: the grid storage outlook",
        text="Quarterly outlooks on grid storage and critical minerals, with a weekly data call "
        "for subscribers and a desk that answers questions within a day.",
        cta_label="See the outlooks",
        url="https://halvard.example.org/outlooks?utm_source=newsletter&utm_medium=email",
        image_url="https://cdn.example.org/halvard/outlook-banner-1200x400.png",
        image_width=552,
        image_alt="Halvard Analytics outlook",
        after="s3",
    )


def test_full_nine_sector_edition_with_sponsor_and_logo_stays_under_90_kb() -> None:
    edition = replace(_full_edition(), sponsor=full_sponsor())
    sections = layout(edition)
    assert sum(len(s.stories) for s in sections) == 45 and all(len(s.more) == 5 for s in sections)
    logo = LogoConfig(url="https://cdn.example.org/tit/logo-360x80.png", width=180, alt="Logo")
    settings = replace(render.RenderSettings.from_config(), logo=logo)
    email = render.render_email(render.make_environment(), edition, sections, settings=settings)
    assert email.trimmed == 0
    assert email.html.count(">Sponsored<") == 1 and str(logo.url) in email.html
    assert "Today&#39;s brief" in email.html and "In this edition:" in email.html
    assert len(email.html.encode()) <= 90 * 1024, len(email.html.encode())
    assert "<!--[if mso | IE]>" in email.html  # Outlook's conditional comments survive minifying


def test_the_more_headlines_are_capped_before_rendering_and_shared_in_turn() -> None:
    edition = _full_edition()
    sections = layout(edition)
    capped = brief.capped_more(sections, 12)
    assert [len(s.more) for s in capped] == [2, 2, 2, 1, 1, 1, 1, 1, 1]
    assert [s.more for s in capped] == [
        s.more[: len(c.more)] for s, c in zip(sections, capped, strict=True)
    ]
    assert brief.capped_more(sections, 100) == list(sections)
    settings = replace(render.RenderSettings.from_config(), more_headlines=12)
    email = render.render_email(render.make_environment(), edition, sections, settings=settings)
    assert email.trimmed == 0  # capped by choice, not trimmed for size
    # the brief takes its stories first and each section refills from its "more" headlines
    _, rest = brief.pick(edition, sections)
    shown = {s.title for section in brief.capped_more(rest, 12) for s in section.more}
    hidden = {s.title for section in rest for s in section.more} - shown
    assert all(title in email.text for title in shown)
    assert not any(title in email.text for title in hidden)


def test_too_big_an_edition_loses_its_more_headlines_first() -> None:
    edition = _full_edition()
    sections = layout(edition)
    every = replace(render.RenderSettings.from_config(), more_headlines=100)
    full = render.render_email(render.make_environment(), edition, sections, settings=every)
    size = len(full.html.encode())
    settings = replace(
        render.RenderSettings.from_config(), max_bytes=size - 1000, more_headlines=100
    )
    trimmed = render.render_email(render.make_environment(), edition, sections, settings=settings)
    # the "more" headlines left once the brief's places are refilled from them, and no story
    _, rest = brief.pick(edition, sections)
    assert trimmed.trimmed == sum(len(s.more) for s in rest)
    assert "Read more insights" not in trimmed.html
    assert trimmed.html.count("<h3") == full.html.count("<h3")
    tighter = replace(render.RenderSettings.from_config(), max_bytes=size // 2, more_headlines=100)
    cut = render.render_email(render.make_environment(), edition, sections, settings=tighter)
    assert cut.trimmed > trimmed.trimmed and len(cut.html.encode()) <= size // 2


def test_accessible_structure() -> None:
    edition = _full_edition(per_sector=2, more=1)
    email = render.render_email(render.make_environment(), edition, layout(edition))
    assert '<html lang="en"' in email.html
    assert email.html.count("<h1") == 1 and "<h2" in email.html and "<h3" in email.html
    for text in re.findall(r"<a [^>]*>(.*?)</a>", email.html, re.S):
        assert len(text.strip()) >= 5, text  # every link says where it goes
    assert "click here" not in email.html.lower()


def test_readers_get_their_own_links_and_greeting_escaped() -> None:
    edition = _full_edition(per_sector=1, more=0)
    variant = render.render_email(render.make_environment(), edition, layout(edition))
    secret = variant.markers
    assert len(secret) >= 16  # 96 random bits, drawn for this render
    assert personalize.placeholder("unsubscribe_url", secret) in variant.html
    assert personalize.placeholder("greeting", secret, text=True) in variant.text
    personalizer = personalize.Personalizer(variant)
    mine = personalizer.fill(
        {
            "unsubscribe_url": "https://pub.example.com/unsubscribe/tok1?a=1&b=2",
            "preferences_url": "https://pub.example.com/preferences/tok1",
            "greeting": "Good morning, <Ana>.",
        }
    )
    assert 'href="https://pub.example.com/unsubscribe/tok1?a=1&amp;b=2"' in mine.html
    assert "Good morning, &lt;Ana&gt;." in mine.html and "<Ana>" not in mine.html
    assert "Unsubscribe:\n  https://pub.example.com/unsubscribe/tok1?a=1&b=2" in mine.text
    assert "Good morning, <Ana>." in mine.text
    assert "%%" not in mine.html and "%%" not in mine.text
    other = personalizer.fill(
        {
            "unsubscribe_url": "https://x.example.com/u/2",
            "preferences_url": "https://x.example.com/p/2",
            "greeting": "Hi.",
        }
    )
    assert "tok1" not in other.html


def test_subject_and_preheader_come_from_the_config_templates() -> None:
    edition = _full_edition(per_sector=1, more=0)
    settings = replace(
        render.RenderSettings.from_config(),
        subject="{{ publication }} | {{ edition_date | shortdate }} | {{ story_count }} stories",
        preheader="Led by {{ top.source }}",
    )
    email = render.render_email(
        render.make_environment(), edition, layout(edition), settings=settings
    )
    assert email.subject == "Top Insights Today | 25 Nov 2026 | 9 stories"
    assert email.preheader == "Led by Outlet 0"
    bad = replace(render.RenderSettings.from_config(), subject="{{ no_such_thing.title }}")
    with pytest.raises(TemplateError, match=r"config: email\.subject"):
        render.render_email(render.make_environment(), edition, layout(edition), settings=bad)


def test_the_subject_and_preheader_carry_no_bidirectional_controls() -> None:
    """A headline stored by an older version (before feed text lost its bidirectional
    controls) must not reverse the subject line in the inbox."""
    edition = _full_edition(per_sector=1, more=0)
    section = edition.sections[0]
    top = replace(section.stories[0], title="Shares \u202erise\u202c as \u2066oil\u2069 falls")
    sections = (replace(section, stories=(top, *section.stories[1:])), *edition.sections[1:])
    edition = replace(edition, sections=sections)
    settings = replace(
        render.RenderSettings.from_config(),
        subject="{{ top.title }}",
        preheader="\u202e{{ top.title }}\u2028today",
    )
    email = render.render_email(
        render.make_environment(), edition, layout(edition), settings=settings
    )
    assert email.subject == "Shares rise as oil falls"
    assert email.preheader == "Shares rise as oil falls today"
