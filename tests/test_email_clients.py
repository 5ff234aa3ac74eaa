"""The email against the caniemail database: the full nine-sector edition with sponsor and
logo, compiled by MRML (mjml-python), has no more unsupported features than the reference
MJML compiler makes of the same source. Needs Node.js and `npm install --prefix
tests/email-check` (`.ci/run` does both)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest

from newsletter.config.settings import LogoConfig
from newsletter.edition import render
from newsletter.edition.digest import layout
from tests.conftest import ROOT
from tests.test_render import _full_edition, full_sponsor

TOOLS = ROOT / "tests" / "email-check"
INSTALL = "npm install --prefix tests/email-check --no-audit --no-fund"
REQUIRED = "NEWSLETTER_REQUIRE_EMAIL_CHECK"  # set by .ci/run: a missing tool fails instead


def _tools() -> str:
    node = shutil.which("node")
    if node is None or not (TOOLS / "node_modules" / "mjml").is_dir():
        reason = f"Node.js and the reference MJML compiler are needed; install them with: {INSTALL}"
        if os.environ.get(REQUIRED):
            pytest.fail(f"{reason} ({REQUIRED} is set)")
        pytest.skip(reason)
    return node


def test_caniemail_finds_no_more_problems_than_in_the_reference_compilers_output(
    tmp_path: Path,
) -> None:
    node = _tools()
    edition = replace(_full_edition(), sponsor=full_sponsor())
    sections = layout(edition)
    logo = LogoConfig(url="https://cdn.example.org/tit/logo.png", width=180, alt="Logo")
    settings = replace(render.RenderSettings.from_config(), logo=logo)
    env = render.make_environment()
    (tmp_path / "email.mjml").write_text(
        render.mjml_source(env, edition, sections, settings), encoding="utf-8"
    )
    ours = render.render_email(env, edition, sections, settings=settings)
    (tmp_path / "ours.html").write_text(ours.html, encoding="utf-8")
    done = subprocess.run(
        [node, str(TOOLS / "check.cjs"), str(tmp_path / "email.mjml"), str(tmp_path / "ours.html")],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=TOOLS,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    counts = json.loads(done.stdout)
    assert counts["reference"]["errors"] > 0  # the check does find things
    assert counts["ours"]["errors"] <= counts["reference"]["errors"], counts
