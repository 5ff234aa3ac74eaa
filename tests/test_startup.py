"""Commands start light: each imports only what it uses (issue 30). The heavy libraries (the
sector model's numpy and scikit-learn, the migrations' Alembic, the renderer's Jinja2 and MJML,
the article reader) are loaded by the commands that need them, never by `status` or `stories`
on a store that exists (a new one is migrated first: Alembic); what a command imported is read
from the command's own process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from newsletter.config import load_config
from newsletter.store import Store

HEAVY = ("numpy", "sklearn", "scipy", "alembic", "jinja2", "mjml", "trafilatura", "lxml")

# runs the real command in this process, then says which of HEAVY it imported
PROBE = """
import atexit, json, sys
heavy = {heavy!r}
atexit.register(lambda: print("IMPORTED " + json.dumps(
    sorted({{m.split(".")[0] for m in sys.modules}} & set(heavy))), file=sys.stderr))
sys.argv = ["newsletter", *{args!r}]
from newsletter.cli import main
main()
"""


def _imported(args: list[str], cwd: Path) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    code = PROBE.format(heavy=HEAVY, args=args)
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "NEWSLETTER_NOW": "2026-11-25T06:00:00+00:00"},
    )
    line = [x for x in done.stderr.splitlines() if x.startswith("IMPORTED ")]
    assert line, done.stderr[-2000:]
    imported: list[str] = json.loads(line[-1].removeprefix("IMPORTED "))
    return done, imported


@pytest.mark.parametrize("command", [["status"], ["stories"], ["--version"]])
def test_a_light_command_imports_none_of_the_heavy_libraries(
    demo_dir: Path, command: list[str]
) -> None:
    config = str(demo_dir / "config.yaml")
    Store.open(load_config(Path(config)).database_url).close()  # a store that exists already
    done, imported = _imported(["--config", config, *command], demo_dir)
    assert done.returncode == 0, done.stderr[-2000:]
    assert imported == [], f"`newsletter {' '.join(command)}` imported {imported}"


def test_the_probe_sees_what_a_heavy_command_imports(demo_dir: Path) -> None:
    # the same probe on `preview`, which renders: it must report the renderer, or the test
    # above would pass on a probe that sees nothing
    config = str(demo_dir / "config.yaml")
    done, imported = _imported(["--config", config, "preview", "--no-collect"], demo_dir)
    assert {"jinja2", "mjml"} <= set(imported), (imported, done.stderr[-2000:])
