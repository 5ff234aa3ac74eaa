"""The house rules that keep the code easy to change, checked on the source itself."""

from __future__ import annotations

import ast
import dataclasses
import tomllib
from pathlib import Path

from newsletter import models
from tests.conftest import ROOT

PACKAGE = ROOT / "newsletter"
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60
STATUS_NAMES = "DeliveryStatus EditionStatus FeedStatus FetchOutcome MailStatus SubscriberStatus"
STATUS_ENUMS = [getattr(models, name) for name in [*STATUS_NAMES.split(), "SuppressionReason"]]


def _modules() -> list[Path]:
    return [p for p in sorted(PACKAGE.rglob("*.py")) if "migrations" not in p.parts]


def test_no_module_over_400_lines_and_no_function_over_60() -> None:
    long_modules = [
        f"{p.relative_to(ROOT)}: {n} lines"
        for p in _modules()
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES
    ]
    long_functions = []
    for path in _modules():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    long_functions.append(f"{path.relative_to(ROOT)}:{node.name}: {length} lines")
    assert long_modules == [] and long_functions == []


def test_no_status_literal_outside_models() -> None:  # the vocabulary: newsletter/models/
    statuses = {s.value for enum in STATUS_ENUMS for s in enum}
    found = []
    for path in [*_modules(), *sorted((ROOT / "tests").glob("*.py"))]:
        if path.parent == PACKAGE / "models" or path == Path(__file__):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and node.value in statuses:
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {node.value!r}")
    assert found == []


def test_the_top_level_is_the_shared_vocabulary_and_a_folder_per_stage() -> None:
    """At most 8 modules beside the folders, and the layers contract places every one."""
    modules = sorted(p.stem for p in PACKAGE.glob("*.py"))
    assert len(modules) <= 8, modules
    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    (layers,) = [c for c in contracts["tool"]["importlinter"]["contracts"] if c["type"] == "layers"]
    placed = {name.strip() for layer in layers["layers"] for name in layer.split("|")}
    placed |= set(layers["exhaustive_ignores"])
    folders = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()}
    tops = folders | {m for m in modules if m != "__init__"}
    assert tops <= placed, sorted(tops - placed)


def test_the_store_takes_and_gives_records_not_strings_and_tuples() -> None:
    """Statuses, kinds and sources cross the store as enums and records (``models``), claims
    as ``Claim`` records, never a ``str`` or a list of bare tuples."""
    found = []
    for path in sorted((PACKAGE / "store").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.FunctionDef) or node.name.startswith("_"):
                continue
            where = f"{path.relative_to(ROOT)}:{node.name}"
            for arg in [*node.args.args, *node.args.kwonlyargs]:
                text = ast.unparse(arg.annotation) if arg.annotation else ""
                if arg.arg in {"status", "kind", "source"} and "str" in text.split(" | "):
                    found.append(f"{where}: {arg.arg}: {text}")
            returned = ast.unparse(node.returns) if node.returns else ""
            if returned.startswith(("list[tuple[int", "list[tuple[str, str")):
                found.append(f"{where} -> {returned}")
    assert found == []


def test_a_story_carries_its_sectors_as_records_not_parallel_tuples() -> None:
    """A story's sectors and the classifier's confidence in each travel together as
    ``SectorFit`` records: no record of the shared vocabulary or the store keeps a bare tuple of
    numbers beside a tuple of names, and no store function takes or gives such numbers."""
    stores = sorted((PACKAGE / "store").glob("*.py"))
    found = []
    vocabulary = sorted((PACKAGE / "models").glob("*.py"))
    for path in [*vocabulary, PACKAGE / "records.py", *stores]:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            where = f"{path.relative_to(ROOT)}:{getattr(node, 'name', '?')}"
            if isinstance(node, ast.ClassDef):
                fields = [
                    ast.unparse(s.annotation) for s in node.body if isinstance(s, ast.AnnAssign)
                ]
                if any(f.startswith("tuple[float") for f in fields):
                    found.append(f"{where}: a tuple of bare numbers")
            public = isinstance(node, ast.FunctionDef) and not node.name.startswith("_")
            if public and path in stores:
                assert isinstance(node, ast.FunctionDef)
                args = [*node.args.args, *node.args.kwonlyargs]
                texts = [ast.unparse(a.annotation) for a in args if a.annotation]
                texts += [ast.unparse(node.returns)] if node.returns else []
                if any("Sequence[float]" in t or "tuple[float" in t for t in texts):
                    found.append(f"{where}: numbers apart from what they measure")
    assert found == []
    story_fields = {f.name: f.type for f in dataclasses.fields(models.Story)}
    assert "confidence" not in story_fields
    assert story_fields["fits"] == "tuple[SectorFit, ...]"
