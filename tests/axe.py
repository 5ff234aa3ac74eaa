"""axe-core (Deque's accessibility engine, from npm) injected into a page Chromium shows, and
its findings of impact serious or critical. Without it the caller is skipped with the install
command, or failed where ``NEWSLETTER_REQUIRE_AXE`` is set (``.ci/run``)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from playwright.sync_api import Page

from tests.conftest import ROOT

AXE = ROOT / "tests" / "a11y" / "node_modules" / "axe-core" / "axe.min.js"
INSTALL = "npm install --prefix tests/a11y --no-audit --no-fund"
REQUIRED = "NEWSLETTER_REQUIRE_AXE"  # set by .ci/run: a missing axe-core fails instead


def axe_script() -> Path:
    """axe-core's script, or a skip (a failure under .ci/run) saying how to install it."""
    if not AXE.is_file():
        reason = f"axe-core is not installed; install it with: {INSTALL}"
        if os.environ.get(REQUIRED):
            pytest.fail(f"{reason} ({REQUIRED} is set, so the accessibility tests must run)")
        pytest.skip(reason)
    return AXE


def serious_violations(page: Page) -> list[str]:
    """axe-core's violations of impact serious or critical on the page as it stands, each
    with the rule, its help and the first elements it found."""
    page.add_script_tag(path=str(axe_script()))
    result = page.evaluate(
        "async () => await axe.run(document, {resultTypes: ['violations'], iframes: false})"
    )
    return [
        f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes'][:3]]}"
        for v in result["violations"]
        if v["impact"] in ("serious", "critical")
    ]
