"""The shape issue 16 asks for, checked on the source itself: small modules, no upward imports, the
rating header written only in prompts/. (ruff and mypy run beside the tests in `make test`.)"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "recsaver"
MAX_LINES = 400


def modules() -> list[Path]:
    return sorted(SRC.rglob("*.py"))


def project_imports(path: Path) -> set[str]:
    """Top-level recsaver packages a module imports (relative imports resolved), at any depth of the file."""
    package = path.relative_to(SRC).parent.parts
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)] if node.level > 1 else package
                parts = (*base, *(node.module.split(".") if node.module else ()))
                names = [a.name for a in node.names] if not parts else []
                found.update(names or parts[:1])
            elif node.module and node.module.startswith("recsaver."):
                found.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            found.update(a.name.split(".")[1] for a in node.names if a.name.startswith("recsaver."))
    return found


def test_no_module_is_over_400_lines() -> None:
    long = {str(p.relative_to(SRC)): n for p in modules() if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not long, f"modules over {MAX_LINES} lines: {long}"


def test_config_imports_nothing_above_it() -> None:
    upward = {str(p.relative_to(SRC)): project_imports(p) - {"config"} for p in (SRC / "config").glob("*.py")}
    assert not {k: v for k, v in upward.items() if v}, upward


def test_reports_does_not_import_steps() -> None:
    bad = [str(p.relative_to(SRC)) for p in (SRC / "reports").rglob("*.py") if "steps" in project_imports(p)]
    assert not bad, bad


def test_the_rating_header_is_written_only_in_prompts() -> None:
    header = "### Rating ###"
    outside = []
    for p in modules():
        if p.is_relative_to(SRC / "prompts"):
            continue
        for k, line in enumerate(p.read_text().splitlines(), 1):
            if header in line.split("#", 1)[0] or (header in line and not line.lstrip().startswith("#")):
                outside.append(f"{p.relative_to(SRC)}:{k}")
    assert not outside, outside
