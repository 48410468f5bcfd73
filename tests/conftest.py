"""Shared fixtures: where the real data lives, and small prepared datasets built from it."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

# tests/crash_demo segfaults on purpose; only tests/test_crash_isolation.py collects it (in a child run).
collect_ignore = [] if os.environ.get("RECSAVER_CRASH_DEMO") else ["crash_demo"]


@pytest.hookimpl(optionalhook=True)
def pytest_handlecrashitem(crashitem: str, report: pytest.TestReport, sched: object) -> None:
    """xdist reports a dead worker as "worker crashed"; name the signal that killed it (SIGSEGV, SIGILL...)."""
    popen = getattr(getattr(getattr(report, "node", None), "gateway", None), "_io", None)
    popen = getattr(popen, "popen", None)
    code = None
    if popen is not None:
        try:
            code = popen.wait(timeout=10)
        except Exception:  # still running or not a local process: say what is known
            code = None
    if code is not None and code < 0:
        name = signal.Signals(-code).name
        report.longrepr = (f"{report.longrepr}: the test process was killed by {name} (a native crash; the "
                           "faulthandler traceback above shows where). The other tests still ran.")

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"

DUMPS = {
    "beauty2023": (SHARED_DATA / "amazon2023/All_Beauty/reviews.jsonl.gz",
                   SHARED_DATA / "amazon2023/All_Beauty/meta.jsonl.gz", "beauty"),
    "movies2023": (SHARED_DATA / "amazon2023/Movies_and_TV/reviews.jsonl.gz",
                   SHARED_DATA / "amazon2023/Movies_and_TV/meta.jsonl.gz", "movies"),
    "beauty2018": (SHARED_DATA / "amazon2018/All_Beauty_5.json.gz", None, "beauty"),
}


def require_shared_data() -> Path:
    if not SHARED_DATA.exists():
        pytest.fail(f"real data missing: {SHARED_DATA} (tests read ../shared/data beside the repository)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def prepared_dumps(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Each real dump through `prepare` with the paper's defaults, once per session."""
    from recsaver.data.prepare import PrepareConfig, prepare

    require_shared_data()
    out = {}
    for name, (reviews, meta, domain) in DUMPS.items():
        target = tmp_path_factory.mktemp(name)
        prepare(reviews, meta, target, PrepareConfig(domain=domain))
        out[name] = target
    return out


@pytest.fixture(scope="session")
def small_beauty(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Real Beauty 2023 examples with short fields, so real-model tests stay quick on a CPU."""
    from recsaver.data.prepare import PrepareConfig, prepare
    from recsaver.data.sources import FieldCaps

    require_shared_data()
    reviews, meta, domain = DUMPS["beauty2023"]
    out = tmp_path_factory.mktemp("small_beauty")
    caps = FieldCaps(title=80, description=120, review_title=60, review_text=160)
    prepare(reviews, meta, out, PrepareConfig(domain=domain, train_per_label=6, test_per_label=2, caps=caps))
    return out
