"""`import recsaver`: the public API, and the README's example run as it stands (real SmolLM2, real sample)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def readme_example() -> str:
    text = README.read_text()
    match = re.search(r"<!-- api-example -->\n```python\n(.*?)```", text, re.S)
    assert match, "README.md lost its Python API example"
    return match.group(1)


def test_the_api_is_the_steps_with_typed_configs() -> None:
    import recsaver
    from recsaver import api

    for name in ("prepare", "import_data", "predict", "references", "rebuild_references", "score", "distill",
                 "finetune", "report", "experiment", "ImportConfig"):
        assert getattr(recsaver, name) is getattr(api, name)
    import recsaver.reports.html  # noqa: F401  (a subpackage must not shadow recsaver.report)

    assert recsaver.report is api.report
    assert recsaver.PredictConfig(data="x", method="direct").max_tokens == 16
    with pytest.raises(AttributeError):
        _ = recsaver.nothing_here


@pytest.mark.slow
def test_the_readme_example_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RECSAVER_HOME", str(tmp_path / "home"))  # a fresh generation cache, as on a new machine
    code = readme_example()
    assert len([line for line in code.splitlines() if line.strip()]) <= 12
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        exec(compile(code, str(README), "exec"), {"__name__": "readme"})
    finally:
        os.chdir(cwd)
    printed = capsys.readouterr().out.split()
    assert len(printed) == 3 and float(printed[0]) >= 0 and 0 <= float(printed[1]) <= 1
    assert (tmp_path / printed[2]).is_file() and (tmp_path / "work" / "cot" / "predictions.jsonl").is_file()
    assert (tmp_path / "work" / "score" / "text_metrics.json").is_file()
