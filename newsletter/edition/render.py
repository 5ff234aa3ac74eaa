"""``Edition`` → email: Jinja2 renders MJML and plain text, MRML compiles the MJML to HTML.

One Jinja environment is built here, with every filter registered in it. Autoescape is on for the
MJML/HTML templates and off for plain text; undefined names are errors (StrictUndefined).
Templates in the publisher's folder override the built-in ones of the same name.

An email is rendered once per combination of sectors, with markers where the per-reader values
go, each carrying a secret drawn for that render (``personalize``); ``Personalizer`` fills them
in for each reader without rendering again, and nothing from outside can create one.
"""

from __future__ import annotations

import importlib.resources
import re
import traceback
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import jinja2
import mjml

from newsletter.config import Config
from newsletter.config.following import WeeklyConfig
from newsletter.config.settings import EmailConfig, LogoConfig, PublicationConfig, ScheduleConfig
from newsletter.edition import filters, personalize
from newsletter.edition.brief import BriefItem, capped_more, pick, subject_lines
from newsletter.edition.digest import layout, sponsor_place
from newsletter.edition.mjml_place import error_place
from newsletter.errors import TemplateError
from newsletter.models import Edition, EditionKind, RenderedEmail, Section, Sector
from newsletter.text import plain_line, teaser

# templates/ at the top of the repository, installed as the package newsletter.templates
BUILTIN_TEMPLATES = Path(str(importlib.resources.files("newsletter.templates")))
HTML_TEMPLATE = "digest.mjml.j2"
TEXT_TEMPLATE = "digest.txt.j2"
TEMPLATE_NAMES = (HTML_TEMPLATE, TEXT_TEMPLATE)

_BETWEEN_LINES = re.compile(r">\s*\n\s*<")


TEASER_LENGTH = 220  # characters of a story's teaser; the top story keeps its whole summary


@dataclass(frozen=True, slots=True)
class RenderSettings:
    """What the templates need besides the edition; its values come from the config's
    sections (``from_config``), which hold every default."""

    site_url: str
    postal_address: str
    privacy_url: str
    language: str
    subject: str
    preheader: str
    max_bytes: int
    more_headlines: int  # "more" headlines at most, shared between the sections
    base_url: str  # the web app's: the edition's archive page is the "view in browser" link
    timezone: str  # story times are shown in it
    logo: LogoConfig | None = None
    teaser_length: int = TEASER_LENGTH
    weekly_subject: str = "The week: {{ headline }}"  # a weekly edition's (``weekly.subject``)
    sectors: tuple[Sector, ...] = ()  # the configured ones: what a reader's choice names

    @classmethod
    def from_config(
        cls,
        publication: PublicationConfig | None = None,
        email: EmailConfig | None = None,
        schedule: ScheduleConfig | None = None,
        weekly: WeeklyConfig | None = None,
    ) -> RenderSettings:
        publication, email = publication or PublicationConfig(), email or EmailConfig()
        return cls(
            site_url=publication.url,
            postal_address=publication.postal_address,
            privacy_url=publication.privacy_url,
            language=publication.language,
            subject=email.subject,
            preheader=email.preheader,
            max_bytes=email.max_kb * 1024,
            more_headlines=email.more_headlines,
            base_url=publication.base_url.rstrip("/"),
            timezone=(schedule or ScheduleConfig()).timezone,
            logo=publication.logo,
            weekly_subject=(weekly or WeeklyConfig()).subject,
        )


def settings_for(config: Config) -> RenderSettings:
    """The render settings of a publication's config."""
    file = config.file
    settings = RenderSettings.from_config(
        config.publication, file.email, file.schedule, file.weekly
    )
    return replace(settings, sectors=config.sectors)


def make_environment(template_dir: Path | None = None) -> jinja2.Environment:
    """The one Jinja environment: the publisher's folder first, then the built-in templates."""
    search = [str(template_dir)] if template_dir else []
    search.append(str(BUILTIN_TEMPLATES))
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(search),
        undefined=jinja2.StrictUndefined,
        # on for MJML/HTML; off for digest.txt.j2, which is plain text
        autoescape=jinja2.select_autoescape(
            enabled_extensions=("mjml.j2", "html.j2", "mjml", "html"),
            disabled_extensions=("txt.j2", "txt"),
            default_for_string=False,  # subject and preheader are plain text
            default=True,
        ),
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    for name in (
        "longdate",
        "shortdate",
        "hhmm",
        "storytime",
        "when",
        "wrap",
        "outlets",
        "by_outlet",
    ):
        env.filters[name] = getattr(filters, name)
    env.filters["teaser"] = teaser
    return env


def render_page(env: jinja2.Environment, name: str, context: Mapping[str, Any]) -> str:
    """A web page from the templates (``web/...``); a broken template raises ``TemplateError``."""
    try:
        return env.get_template(name).render(context)
    except jinja2.TemplateError as exc:
        raise TemplateError(f"{name}: {exc}") from exc


def render_email(
    env: jinja2.Environment,
    edition: Edition,
    sections: Sequence[Section],
    *,
    settings: RenderSettings | None = None,
    chosen: Sequence[str] = (),
) -> RenderedEmail:
    """Render one variant (one combination of sectors, ``chosen``: the readers' choice, in
    their order; empty: every sector) to HTML and text, with placeholders.

    The "more" headlines are cut to ``settings.more_headlines`` before rendering, so a variant
    is rendered once. Only past ``settings.max_bytes`` of HTML (a template or teasers far
    longer than the built-in ones) is it rendered again: without the "more" headlines, then
    without the lowest-ranked stories of the longest sections, until it fits; ``trimmed`` says
    how many were left out that way. Without ``settings``, the config's defaults.
    """
    settings = settings or RenderSettings.from_config()
    brief, sections = pick(edition, sections)  # the brief first: the sections refill its places
    sections = capped_more(sections, settings.more_headlines)
    secret = personalize.new_secret()
    email = _render(env, edition, brief, sections, settings, secret, chosen)
    trimmed = 0
    if _size(email) > settings.max_bytes and any(s.more for s in sections):
        trimmed = sum(len(s.more) for s in sections)
        sections = [replace(s, more=()) for s in sections]
        email = _render(env, edition, brief, sections, settings, secret, chosen)
    while _size(email) > settings.max_bytes:
        longest = max(range(len(sections)), key=lambda i: len(sections[i].stories))
        if len(sections[longest].stories) <= 1:
            break
        cut = sections[longest]
        sections = [
            *sections[:longest],
            replace(cut, stories=cut.stories[:-1]),
            *sections[longest + 1 :],
        ]
        trimmed += 1
        email = _render(env, edition, brief, sections, settings, secret, chosen)
    label = "Today's brief" if len(brief) > 1 else "Top story"  # as the email's heading says
    shown: tuple[tuple[str, int, int], ...] = ((label, len(brief), 0),) if brief else ()
    shown += tuple(
        (s.sector.name, len(s.stories), len(s.more)) for s in sections if s.stories or s.more
    )
    return replace(email, trimmed=trimmed, shown=shown)


def _size(email: RenderedEmail) -> int:
    return len(email.html.encode("utf-8"))


def _context(
    env: jinja2.Environment,
    edition: Edition,
    brief: Sequence[BriefItem],
    rest: Sequence[Section],
    settings: RenderSettings,
    secret: str,
    chosen: Sequence[str] = (),
) -> dict[str, Any]:
    """What one variant's templates (for ``chosen``) get; reader fields: markers (``secret``)."""
    headline, following = subject_lines(brief)
    more = [(section.sector.name, story) for section in rest for story in section.more]
    story_count = sum(len(s.stories) for s in rest) + len(brief)
    order = {s.sector.name: i for i, s in enumerate(edition.sections)}
    names = sorted(
        {*(item.sector for item in brief), *(s.sector.name for s in rest)},
        key=lambda n: order.get(n, 0),
    )
    covers = set(edition.intro_covers)
    # the writer's intro shows with the storylines it is about; the editor's (no covers) always
    intro = edition.intro if covers <= {item.story.id for item in brief} else ""
    values: dict[str, object] = {
        "publication": edition.publication,
        "edition_date": edition.edition_date,
        "top": brief[0].story if brief else None,
        "headline": headline,
        "following": following,
        "story_count": story_count,
        "sectors": names,
    }
    weekly = edition.kind == EditionKind.WEEKLY
    subject = _subject(env, edition, settings, values)
    preheader = plain_line(_render_string(env, settings.preheader, values, "email.preheader"))
    context = {
        **values,
        "edition": edition,
        "note": edition.note,
        "intro": intro,
        "brief": brief,
        "contents": [s for s in rest if s.stories],
        "sections": rest,
        "more": more,
        "subject": subject,
        "preheader": preheader,
        "site_url": settings.site_url,
        "postal_address": settings.postal_address,
        "privacy_url": settings.privacy_url,
        "lang": settings.language,
        "teaser_length": settings.teaser_length,
        "view_url": f"{settings.base_url}/archive"
        + ("" if weekly else f"/{edition.edition_date.isoformat()}"),
        "weekly": weekly,
        "logo": settings.logo,
        "zone": settings.timezone,
        "sponsor": edition.sponsor,
        "sponsor_after": sponsor_place(edition, rest),
        "chosen": _chosen_names(settings, chosen),
        **personalize.html_markers(secret),
    }
    return context


def _chosen_names(settings: RenderSettings, chosen: Sequence[str]) -> list[str]:
    """The names of a reader's chosen sectors, in their order; empty when they chose every
    sector (or none, which means every one)."""
    names = {sector.slug: sector.name for sector in settings.sectors}
    if not chosen or (names and set(names) <= set(chosen)):
        return []
    return [names.get(slug, slug) for slug in chosen]


def _subject(
    env: jinja2.Environment, edition: Edition, settings: RenderSettings, values: dict[str, object]
) -> str:
    """The editor's subject, else the configured one (the weekly one for a weekly edition),
    else the publication and date."""
    weekly = edition.kind == EditionKind.WEEKLY
    template = settings.weekly_subject if weekly else settings.subject
    key = "weekly.subject" if weekly else "email.subject"
    subject = plain_line(_render_string(env, template, values, key))
    subject = plain_line(edition.subject) or subject
    return subject or f"{edition.publication}, {filters.shortdate(edition.edition_date)}"


def mjml_source(
    env: jinja2.Environment,
    edition: Edition,
    sections: Sequence[Section],
    settings: RenderSettings | None = None,
) -> str:
    """The MJML one variant compiles from (to check it with other MJML tools)."""
    settings = settings or RenderSettings.from_config()
    brief, rest = pick(edition, sections)
    context = _context(env, edition, brief, rest, settings, personalize.new_secret())
    return _render_template(env, HTML_TEMPLATE, context)


def _render(
    env: jinja2.Environment,
    edition: Edition,
    brief: Sequence[BriefItem],
    sections: Sequence[Section],
    settings: RenderSettings,
    secret: str,
    chosen: Sequence[str] = (),
) -> RenderedEmail:
    context = _context(env, edition, brief, sections, settings, secret, chosen)
    subject, preheader = str(context["subject"]), str(context["preheader"])
    mjml_source = _render_template(env, HTML_TEMPLATE, context)
    text_context = {**context, **personalize.text_markers(secret)}
    text = _render_template(env, TEXT_TEMPLATE, text_context)
    try:
        html = mjml.mjml2html(mjml_source, disable_comments=True)
    except ValueError as exc:
        place = error_place(_template_path(env, HTML_TEMPLATE), mjml_source)
        raise TemplateError(
            f"{place}: the rendered MJML is not valid: {exc}",
            hint="Check that every mj-* tag in the template is closed and correctly nested.",
        ) from None
    html = _BETWEEN_LINES.sub("><", html)  # line breaks between tags only: inline spaces stay
    return RenderedEmail(subject=subject, html=html, text=text, preheader=preheader, markers=secret)


_COMPILED: weakref.WeakKeyDictionary[jinja2.Environment, dict[str, jinja2.Template]] = (
    weakref.WeakKeyDictionary()
)


def _compiled(env: jinja2.Environment, source: str) -> jinja2.Template:
    """A template from config text, compiled once per environment (not once per variant)."""
    cache = _COMPILED.setdefault(env, {})
    template = cache.get(source)
    if template is None:
        template = cache[source] = env.from_string(source)
    return template


def _render_string(
    env: jinja2.Environment, source: str, values: Mapping[str, object], key: str
) -> str:
    try:
        return _compiled(env, source).render(values)
    except jinja2.TemplateError as exc:
        raise TemplateError(
            f"config: {key}: {exc}",
            hint=f"Fix the template in `{key}`; it may use {', '.join(values)}.",
        ) from None


def _render_template(env: jinja2.Environment, name: str, context: Mapping[str, object]) -> str:
    try:
        return env.get_template(name).render(context)
    except jinja2.TemplateSyntaxError as exc:
        where = f"{exc.filename or name}, line {exc.lineno}"
        raise TemplateError(
            f"{where}: {exc.message}", hint="Fix the template syntax there."
        ) from None
    except jinja2.TemplateNotFound as exc:
        raise TemplateError(
            f"template {exc.name} not found", hint="Check the `templates` folder in config.yaml."
        ) from None
    except jinja2.TemplateError as exc:
        raise TemplateError(
            f"{_failing_line(exc, env, name)}: {exc.message}",
            hint="The template uses a name or value the renderer does not provide; "
            "see the README's Templates section.",
        ) from None


def _failing_line(exc: BaseException, env: jinja2.Environment, name: str) -> str:
    """``file, line N`` of the template frame that raised, as Jinja records it in the traceback."""
    for frame in reversed(traceback.extract_tb(exc.__traceback__)):
        if frame.filename.endswith(".j2"):
            return f"{frame.filename}, line {frame.lineno}"
    return _template_path(env, name)


def _template_path(env: jinja2.Environment, name: str) -> str:
    try:
        template = env.get_template(name)
    except jinja2.TemplateError:
        return name
    return template.filename or name


# --- rendering in a worker process (``variants.Variants.prepare``) -----------------------------

# what one render worker renders with: set once in that process by ``start_worker``
_WORKER: list[tuple[jinja2.Environment, Edition, RenderSettings]] = []


def start_worker(templates: Path | None, edition: Edition, settings: RenderSettings) -> None:
    """A render worker's set-up: its own environment, the edition and the settings, once."""
    _WORKER[:] = [(make_environment(templates), edition, settings)]


def render_choice(chosen: tuple[str, ...]) -> RenderedEmail | None:
    """In a render worker: the variant of one choice of sectors (None when it shows nothing)."""
    env, edition, settings = _WORKER[0]
    sections = layout(edition, chosen)
    return (
        render_email(env, edition, sections, settings=settings, chosen=chosen) if sections else None
    )
