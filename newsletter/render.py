"""``Edition`` → email: Jinja2 renders MJML and plain text, MRML compiles the MJML to HTML.

One Jinja environment is built here, with every filter registered in it. Autoescape is on for the
MJML/HTML templates and off for plain text; undefined names are errors (StrictUndefined).
Templates in the configured folder override the built-in ones of the same name.
"""

from __future__ import annotations

import textwrap
import traceback
from collections.abc import Sequence
from datetime import date, datetime
from pathlib import Path

import jinja2
import mjml

from newsletter.errors import TemplateError
from newsletter.models import Edition, RenderedEmail, Section

BUILTIN_TEMPLATES = Path(__file__).parent / "templates"
HTML_TEMPLATE = "digest.mjml.j2"
TEXT_TEMPLATE = "digest.txt.j2"


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
            default_for_string=True,
            default=True,
        ),
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["longdate"] = longdate
    env.filters["hhmm"] = hhmm
    env.filters["wrap"] = wrap
    return env


def longdate(value: date) -> str:
    """Wednesday, 25 November 2026."""
    return f"{value:%A}, {value.day} {value:%B %Y}"


def hhmm(value: datetime) -> str:
    """07:30 UTC."""
    return f"{value:%H:%M} UTC"


def wrap(text: str, width: int = 72, indent: str = "") -> str:
    """Plain text wrapped for the text part; never breaks a URL or a long word."""
    return textwrap.fill(
        text,
        width=width,
        initial_indent=indent,
        subsequent_indent=indent,
        break_long_words=False,
        break_on_hyphens=False,
    )


def subject_line(edition: Edition, sections: Sequence[Section]) -> str:
    top = next((section.stories[0].title for section in sections if section.stories), None)
    day = f"{edition.edition_date.day} {edition.edition_date:%b %Y}"
    return f"{edition.publication}, {day}: {top}" if top else f"{edition.publication}, {day}"


def render_email(
    env: jinja2.Environment,
    edition: Edition,
    sections: Sequence[Section],
    *,
    site_url: str,
) -> RenderedEmail:
    """Render one variant of the edition (one combination of sectors) to HTML and plain text."""
    subject = subject_line(edition, sections)
    context = {
        "edition": edition,
        "publication": edition.publication,
        "site_url": site_url,
        "sections": sections,
        "subject": subject,
        "story_count": sum(len(s.stories) for s in sections),
    }
    mjml_source = _render(env, HTML_TEMPLATE, context)
    text = _render(env, TEXT_TEMPLATE, context)
    try:
        html = mjml.mjml2html(mjml_source, disable_comments=True)
    except ValueError as exc:
        raise TemplateError(
            f"{_template_path(env, HTML_TEMPLATE)}: the rendered MJML is not valid: {exc}",
            hint="Check that every mj-* tag in the template is closed and correctly nested.",
        ) from None
    return RenderedEmail(subject=subject, html=html, text=text)


def _render(env: jinja2.Environment, name: str, context: dict[str, object]) -> str:
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
    except jinja2.UndefinedError as exc:
        raise TemplateError(
            f"{_failing_line(exc, env, name)}: {exc.message}",
            hint="The template uses a name the renderer does not provide; see docs/templates.md.",
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
