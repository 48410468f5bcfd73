"""recsaver.data.download against a real HTTP server on 127.0.0.1 serving the real dump files."""

from __future__ import annotations

import hashlib
import re
import shutil
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from recsaver.data.download import DownloadError, DumpFiles, download_dump, download_file, dump_urls

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
BEAUTY_2023 = DATA / "amazon2023" / "All_Beauty"
BEAUTY_2018_5 = DATA / "amazon2018" / "All_Beauty_5.json.gz"

needs_data = pytest.mark.skipif(
    not (BEAUTY_2023 / "reviews.jsonl.gz").is_file() or not BEAUTY_2018_5.is_file(),
    reason=f"real review data not found under {DATA} (expected amazon2023/All_Beauty and amazon2018)",
)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class RangeHandler(SimpleHTTPRequestHandler):
    """Serves files under `directory`, honouring `Range: bytes=N-` with 206 + Content-Range.

    Class attributes (set per server by `serve`): `log` records (method, path, headers) of
    every request; `ranges` turns Range support off; `fail_gets` answers the first N GETs
    with 500; `cut_first_get` sends only half the body on the first GET, then closes.
    """

    log: list[tuple[str, str, dict[str, str]]]
    ranges = True
    fail_gets = 0
    cut_first_get = False
    gets = 0

    def log_message(self, format: str, *args: object) -> None:  # keep test output quiet
        pass

    def do_HEAD(self) -> None:
        self._serve(body=False)

    def do_GET(self) -> None:
        self._serve(body=True)

    def _serve(self, body: bool) -> None:
        cls = type(self)
        cls.log.append((self.command, self.path, dict(self.headers)))
        if self.command == "GET":
            cls.gets += 1
            if cls.gets <= cls.fail_gets:
                self.send_error(500)
                return
        path = Path(self.translate_path(self.path))
        if not path.is_file():
            self.send_error(404)
            return
        data = path.read_bytes()
        size, start = len(data), 0
        rng = self.headers.get("Range") if cls.ranges else None
        m = re.fullmatch(r"bytes=(\d+)-", rng.strip()) if rng else None
        if m:
            start = int(m.group(1))
            if start >= size:
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{size}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{size - 1}/{size}")
        else:
            self.send_response(200)
        self.send_header("Content-Type", "application/gzip")
        self.send_header("Content-Length", str(size - start))
        if cls.ranges:
            self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        if not body:
            return
        payload = data[start:]
        if cls.cut_first_get and cls.gets == 1:
            self.wfile.write(payload[: len(payload) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(payload)


@pytest.fixture
def serve():
    """serve(root, **handler_attrs) -> (base_url, handler class); servers stop at teardown."""
    servers = []

    def start(root: Path, **attrs):
        handler = type("Handler", (RangeHandler,), {"log": [], "gets": 0, **attrs})

        def factory(*args, **kwargs):
            return handler(*args, directory=str(root), **kwargs)

        server = ThreadingHTTPServer(("127.0.0.1", 0), factory)
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}", handler

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture
def mirror(tmp_path: Path) -> Path:
    """A copy of the real files in the official URL layouts of both releases."""
    root = tmp_path / "mirror"
    files = {
        "raw/review_categories/All_Beauty.jsonl.gz": BEAUTY_2023 / "reviews.jsonl.gz",
        "raw/meta_categories/meta_All_Beauty.jsonl.gz": BEAUTY_2023 / "meta.jsonl.gz",
        "categoryFilesSmall/All_Beauty_5.json.gz": BEAUTY_2018_5,
    }
    for rel, src in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, root / rel)
    return root


REVIEWS_URL_PATH = "/raw/review_categories/All_Beauty.jsonl.gz"


# ----------------------------------------------------------------------------- URL table (no server)


def test_dump_urls_official_layouts():
    assert dump_urls("2023", "All_Beauty") == [
        ("https://datarepo.eng.ucsd.edu/mcauley_group/data/amazon_2023/raw/review_categories/All_Beauty.jsonl.gz",
         "All_Beauty.jsonl.gz"),
        ("https://datarepo.eng.ucsd.edu/mcauley_group/data/amazon_2023/raw/meta_categories/meta_All_Beauty.jsonl.gz",
         "meta_All_Beauty.jsonl.gz"),
    ]
    assert dump_urls("2018", "Movies_and_TV", meta=False) == [
        ("https://datarepo.eng.ucsd.edu/mcauley_group/data/amazon_v2/categoryFiles/Movies_and_TV.json.gz",
         "Movies_and_TV.json.gz"),
    ]
    assert dump_urls("2018", "All_Beauty", five_core=True, base_url="http://mirror/x/") == [
        ("http://mirror/x/categoryFilesSmall/All_Beauty_5.json.gz", "All_Beauty_5.json.gz"),
        ("http://mirror/x/metaFiles2/meta_All_Beauty.json.gz", "meta_All_Beauty.json.gz"),
    ]


def test_dump_urls_rejects_bad_input():
    with pytest.raises(ValueError, match="unknown release '2014'"):
        dump_urls("2014", "All_Beauty")
    with pytest.raises(ValueError, match="five-core"):
        dump_urls("2023", "All_Beauty", five_core=True)
    for bad in ["", "../etc", "a/b"]:
        with pytest.raises(ValueError, match="invalid category"):
            dump_urls("2023", bad)
    with pytest.raises(ValueError, match="unknown release"):
        download_dump("1999", "All_Beauty", Path("unused"), progress=False)


# ----------------------------------------------------------------------------- against a local server


@needs_data
def test_full_download_2023_reviews_and_meta(tmp_path, mirror, serve):
    base, handler = serve(mirror)
    out = tmp_path / "out"
    files = download_dump("2023", "All_Beauty", out, base_url=base, progress=False)
    assert files == DumpFiles(reviews=out / "All_Beauty.jsonl.gz", meta=out / "meta_All_Beauty.jsonl.gz")
    assert sha256(files.reviews) == sha256(BEAUTY_2023 / "reviews.jsonl.gz")
    assert sha256(files.meta) == sha256(BEAUTY_2023 / "meta.jsonl.gz")
    assert not list(out.glob("*.part"))
    assert all("Range" not in headers for _, _, headers in handler.log)

    # Second run: files exist with the size the server reports (HEAD), so nothing is fetched again.
    handler.log.clear()
    assert download_dump("2023", "All_Beauty", out, base_url=base, progress=False) == files
    assert [method for method, _, _ in handler.log] == ["HEAD", "HEAD"]


@needs_data
def test_existing_file_with_wrong_size_is_fetched_again(tmp_path, mirror, serve):
    base, handler = serve(mirror)
    dest = tmp_path / "All_Beauty.jsonl.gz"
    dest.write_bytes(b"stale")
    download_file(base + REVIEWS_URL_PATH, dest, progress=False)
    assert sha256(dest) == sha256(BEAUTY_2023 / "reviews.jsonl.gz")
    assert [method for method, _, _ in handler.log] == ["HEAD", "GET"]


@needs_data
def test_resume_from_part_file_uses_range(tmp_path, mirror, serve):
    base, handler = serve(mirror)
    original = (BEAUTY_2023 / "reviews.jsonl.gz").read_bytes()
    half = len(original) // 2
    dest = tmp_path / "All_Beauty.jsonl.gz"
    (tmp_path / "All_Beauty.jsonl.gz.part").write_bytes(original[:half])
    assert download_file(base + REVIEWS_URL_PATH, dest, progress=False) == dest
    assert dest.read_bytes() == original
    assert not (tmp_path / "All_Beauty.jsonl.gz.part").exists()
    gets = [headers for method, _, headers in handler.log if method == "GET"]
    assert len(gets) == 1 and gets[0].get("Range") == f"bytes={half}-"


@needs_data
def test_complete_part_file_is_finished_without_body(tmp_path, mirror, serve):
    base, handler = serve(mirror)
    original = (BEAUTY_2023 / "reviews.jsonl.gz").read_bytes()
    dest = tmp_path / "All_Beauty.jsonl.gz"
    (tmp_path / "All_Beauty.jsonl.gz.part").write_bytes(original)
    download_file(base + REVIEWS_URL_PATH, dest, progress=False)  # server answers 416 bytes */size
    assert dest.read_bytes() == original


@needs_data
def test_server_without_range_support_restarts_part(tmp_path, mirror, serve):
    base, handler = serve(mirror, ranges=False)
    original = (BEAUTY_2023 / "reviews.jsonl.gz").read_bytes()
    dest = tmp_path / "All_Beauty.jsonl.gz"
    # A .part whose bytes are wrong: appending to it would corrupt the file.
    (tmp_path / "All_Beauty.jsonl.gz.part").write_bytes(b"x" * (len(original) // 2))
    download_file(base + REVIEWS_URL_PATH, dest, progress=False)
    assert sha256(dest) == sha256(BEAUTY_2023 / "reviews.jsonl.gz")
    assert handler.log[0][2].get("Range") == f"bytes={len(original) // 2}-"  # asked, was ignored


@needs_data
def test_dropped_connection_is_resumed(tmp_path, mirror, serve):
    base, handler = serve(mirror, cut_first_get=True)
    dest = tmp_path / "All_Beauty.jsonl.gz"
    download_file(base + REVIEWS_URL_PATH, dest, progress=False, backoff=0.01, chunk_size=64 * 1024)
    assert sha256(dest) == sha256(BEAUTY_2023 / "reviews.jsonl.gz")
    gets = [headers for method, _, headers in handler.log if method == "GET"]
    assert len(gets) == 2 and "Range" not in gets[0] and gets[1]["Range"].startswith("bytes=")


@needs_data
def test_404_names_url_and_status(tmp_path, mirror, serve):
    base, handler = serve(mirror)
    with pytest.raises(DownloadError) as info:
        download_dump("2023", "All_Beuaty", tmp_path / "out", base_url=base, progress=False, backoff=0.01)
    message = str(info.value)
    assert "404" in message and "Not Found" in message
    assert f"{base}/raw/review_categories/All_Beuaty.jsonl.gz" in message
    assert "--category" in message
    assert len(handler.log) == 1  # a 404 is not retried
    assert not list((tmp_path / "out").glob("*"))


@needs_data
def test_500_twice_then_success_is_retried(tmp_path, mirror, serve):
    base, handler = serve(mirror, fail_gets=2)
    dest = tmp_path / "All_Beauty.jsonl.gz"
    download_file(base + REVIEWS_URL_PATH, dest, progress=False, retries=3, backoff=0.01)
    assert sha256(dest) == sha256(BEAUTY_2023 / "reviews.jsonl.gz")
    assert handler.gets == 3


@needs_data
def test_500_beyond_retries_fails_clearly(tmp_path, mirror, serve):
    base, handler = serve(mirror, fail_gets=10)
    url = base + REVIEWS_URL_PATH
    with pytest.raises(DownloadError) as info:
        download_file(url, tmp_path / "x.gz", progress=False, retries=2, backoff=0.01)
    assert "HTTP 500" in str(info.value) and url in str(info.value) and "3 attempts" in str(info.value)
    assert handler.gets == 3


def test_unreachable_server_fails_clearly(tmp_path):
    import socket

    with socket.socket() as s:  # a port with nothing listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/x.gz"
    with pytest.raises(DownloadError, match=re.escape(url)):
        download_file(url, tmp_path / "x.gz", progress=False, retries=1, backoff=0.01, timeout=2)


@needs_data
def test_2018_five_core(tmp_path, mirror, serve):
    base, handler = serve(mirror)
    out = tmp_path / "out"
    files = download_dump("2018", "All_Beauty", out, base_url=base, five_core=True, meta=False, progress=False)
    assert files == DumpFiles(reviews=out / "All_Beauty_5.json.gz", meta=None)
    assert sha256(files.reviews) == sha256(BEAUTY_2018_5)
    assert [path for _, path, _ in handler.log] == ["/categoryFilesSmall/All_Beauty_5.json.gz"]


@needs_data
def test_progress_bar_does_not_break_download(tmp_path, mirror, serve):
    base, _ = serve(mirror)
    dest = tmp_path / "All_Beauty.jsonl.gz"
    download_file(base + REVIEWS_URL_PATH, dest, progress=True, chunk_size=64 * 1024)
    assert sha256(dest) == sha256(BEAUTY_2023 / "reviews.jsonl.gz")
