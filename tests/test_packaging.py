"""A non-editable install (a built wheel) carries its templates and migrations and runs the demo."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.conftest import ROOT

# what a build leaves behind, or caches: never copied into the build's own tree
LEFT_OUT = shutil.ignore_patterns(
    ".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", ".*_cache", "preview", "*.db"
)


@pytest.mark.slow  # in `pytest -m slow` (.ci/run runs it): a heavy real run
def test_wheel_runs_the_demo_preview_outside_the_checkout(demo_dir: Path, tmp_path: Path) -> None:
    checkout = sorted(p.name for p in ROOT.iterdir())
    source = tmp_path / "source"  # a copy: building writes build/ and *.egg-info beside it
    shutil.copytree(ROOT, source, symlinks=True, ignore=LEFT_OUT)
    wheels = tmp_path / "wheels"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            str(source),
            "--no-deps",
            "--no-build-isolation",
            "--quiet",
            "--wheel-dir",
            str(wheels),
        ],
        check=True,
        capture_output=True,
        cwd=tmp_path,
    )
    (wheel,) = wheels.glob("newsletter-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert sorted(p.name for p in ROOT.iterdir()) == checkout  # nothing written here
    assert "newsletter/templates/digest.mjml.j2" in names
    assert "newsletter/templates/web/subscribe.html.j2" in names
    assert "newsletter/templates/digest.txt.j2" in names
    assert "newsletter/store/migrations/env.py" in names
    assert "newsletter/defaults/config.yaml" in names  # for `newsletter init`
    assert any(n.startswith("newsletter/store/migrations/versions/0001") for n in names)

    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    env = {**os.environ, "PYTHONPATH": str(site), "NEWSLETTER_NOW": "2026-11-25T06:00:00Z"}
    out = tmp_path / "preview"
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "import newsletter, sys; print(newsletter.__file__, file=sys.stderr); "
            "from newsletter.cli import main; main()",
            "--config",
            str(demo_dir / "config.yaml"),
            "preview",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr.startswith(str(site))  # the unpacked wheel, not the checkout
    assert (out / "digest.html").stat().st_size > 10_000
    assert "== Oil & Gas ==" in (out / "digest.txt").read_text(encoding="utf-8")
