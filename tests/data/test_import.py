"""`recsaver data import` on a real dump rewritten in another shape: the same examples as `data prepare`.

The Beauty 2023 reviews are written by the test as a CSV with renamed columns (uid, product, stars, when,
headline, body), ratings on a 10-point scale (rating * 2), timestamps in three forms (ISO-8601, seconds,
milliseconds) and review texts whose `<br />` became real line breaks where that cleans to the same text
(quoted cells over several physical lines). The items come from a separate table built from the items
`data prepare` resolved from the metadata dump.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from recsaver.cli import app
from recsaver.data.prepare import PrepareConfig, prepare
from recsaver.data.records import Example, Item, load_examples
from recsaver.data.sources import BadInputError, RatingScale, to_millis
from recsaver.prompts import PromptBuilder

from ..conftest import DUMPS, require_shared_data

HEADER = ["uid", "product", "stars", "when", "headline", "body"]
MAP = ["--map", "user_id=uid", "--map", "item_id=product", "--map", "rating=stars,timestamp=when",
       "--map", "review_title=headline", "--map", "review_text=body"]
COLUMNS = {"user_id": "uid", "item_id": "product", "rating": "stars", "timestamp": "when",
           "review_title": "headline", "review_text": "body"}
COLORS = ("red", "green", "blue", None)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _iso(ms: int, k: int) -> str:
    text = (_EPOCH + timedelta(milliseconds=ms)).isoformat(timespec="milliseconds")
    return [text, text.replace("+00:00", "Z"), text.replace("+00:00", "")][k % 3]  # naive: UTC


def _when(ms: int, k: int) -> Any:
    """Seconds where that is exact, else ISO-8601 or milliseconds by turns."""
    if ms % 1000 == 0:
        return ms // 1000
    return _iso(ms, k) if k % 2 else ms


def _line_breaks(text: str) -> str:
    """`<br />` as real line breaks, where that cleans to the same text (no other `<` or `>` that the
    tag stripping could pair with it)."""
    plain = text.replace("<br />", "\n")
    return text if "<" in plain or ">" in plain else plain


def _write_csv(path: Path, header: list[str], rows: list[list[Any]]) -> list[int]:
    """Write a CSV (gzipped for .gz) and return the physical line each row starts on (the header is line 1)."""
    parts, starts, line = [], [], 2
    for row in [header, *rows]:
        buf = io.StringIO()
        csv.writer(buf).writerow(row)
        parts.append(buf.getvalue())
        if row is not header:
            starts.append(line)
            line += buf.getvalue().count("\n")
    text = "".join(parts)
    if path.name.endswith(".gz"):
        with gzip.open(path, "wt", encoding="utf-8", newline="") as f:
            f.write(text)
    else:
        path.write_text(text, encoding="utf-8", newline="")
    return starts


@pytest.fixture(scope="module")
def real(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The reviews as rows of the CSV shape, `data prepare` on the dump, and the items it resolved."""
    require_shared_data()
    reviews, meta, _ = DUMPS["beauty2023"]
    ref = tmp_path_factory.mktemp("prepared")
    prepare(reviews, meta, ref, PrepareConfig(domain="beauty"))
    rows = []
    for k, line in enumerate(gzip.open(reviews)):
        r = orjson.loads(line)
        rows.append([r["user_id"], r.get("parent_asin") or r["asin"], int(r["rating"]) * 2, _when(r["timestamp"], k),
                     r["title"], _line_breaks(r["text"])])
    items: dict[str, Item] = {}
    for split in ("train", "test"):
        for e in load_examples(ref / f"{split}.jsonl"):
            items[e.target.item_id] = e.target.item
            items.update({h.item_id: h.item for h in e.history})
    return {"ref": ref, "rows": rows, "items": items}


def _items_csv(path: Path, items: dict[str, Item]) -> None:
    rows = [[i, it.title, it.brand,
             # Categories in a text cell: a JSON array, or `|`-separated names (both are read).
             json.dumps(list(it.categories)) if k % 2 or any("|" in c for c in it.categories)
             else "|".join(it.categories),
             it.description, "" if it.price is None else repr(it.price)]
            for k, (i, it) in enumerate(sorted(items.items()))]
    _write_csv(path, ["product", "title", "brand", "categories", "description", "price"], rows)


def _invoke(*args: str) -> Any:
    return CliRunner().invoke(app, ["data", "import", *args, "--no-progress"])


def _same_stats(got: dict[str, Any], want: dict[str, Any]) -> None:
    for key in ("counts", "available_per_label", "selected_per_label", "examples", "shortfalls", "balanced"):
        assert got[key] == want[key], key


def test_csv_with_renamed_columns_and_a_10_point_scale_gives_prepare_examples(real: dict[str, Any],
                                                                              tmp_path: Path) -> None:
    interactions, items, out = tmp_path / "ratings.csv.gz", tmp_path / "items.csv", tmp_path / "out"
    starts = _write_csv(interactions, HEADER, real["rows"])
    assert starts[-1] > len(starts) + 1, "no review spans several lines: the line numbers are not exercised"
    _items_csv(items, real["items"])
    result = _invoke("--interactions", str(interactions), "--items", str(items), *MAP, "--rating-scale", "1,10",
                     "--domain", "beauty", "--out", str(out))
    assert result.exit_code == 0, result.output
    ref = real["ref"]
    for split in ("train", "test"):
        got, want = load_examples(out / f"{split}.jsonl"), load_examples(ref / f"{split}.jsonl")
        assert got and got == want, split
        # Byte for byte: ids, users, ratings, histories, item fields, and no `extra` key without extras.
        assert (out / f"{split}.jsonl").read_bytes() == (ref / f"{split}.jsonl").read_bytes()
        builder = PromptBuilder("beauty")
        assert [builder.rating_prompt(e) for e in got] == [builder.rating_prompt(e) for e in want]
    stats, want_stats = (json.loads((d / "stats.json").read_text()) for d in (out, ref))
    _same_stats(stats, want_stats)
    assert stats["params"]["rating_scale"] == "1,10" and stats["domain"] == "beauty"
    ratings = stats["ratings"]
    assert ratings["scale"] == [1, 10] and "half up" in ratings["rule"]
    assert ratings["table"] == {"2": 1, "4": 2, "6": 3, "8": 4, "10": 5}
    assert sum(ratings["counts"].values()) == len(real["rows"])
    source = stats["sources"]["interactions"]
    assert source["sha256"] == hashlib.sha256(interactions.read_bytes()).hexdigest()
    assert source["format"] == "csv" and source["columns"] == COLUMNS and source["lines"] == starts[-1]
    assert stats["sources"]["items"]["format"] == "csv" and stats["sources"]["items"]["extra_columns"] == []
    assert stats["sources"]["mapping"] == COLUMNS
    assert stats["bad_lines"] == {"interactions": {}, "items": {}, "examples": []}


@pytest.mark.parametrize("fmt", ["jsonl", "parquet"])
def test_jsonl_and_parquet_tables_give_the_same_examples(fmt: str, real: dict[str, Any], tmp_path: Path) -> None:
    """The schema's own column names (no --map), the 1-5 scale, timestamps as Parquet timestamps or mixed JSON."""
    rows = [dict(zip(COLUMNS, (u, i, s // 2, w, t, b))) for u, i, s, w, t, b in real["rows"]]
    if fmt == "jsonl":
        interactions = tmp_path / "ratings.jsonl"
        interactions.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows))
    else:
        interactions = tmp_path / "ratings.parquet"
        stamps = [_EPOCH + timedelta(milliseconds=to_millis(r["timestamp"], interactions, 0, "t")) for r in rows]
        table = pa.table({**{k: [r[k] for r in rows] for k in COLUMNS if k != "timestamp"},
                          "timestamp": pa.array(stamps, pa.timestamp("ms", tz="UTC"))})
        pq.write_table(table, interactions)
    items = tmp_path / "items.jsonl"
    items.write_bytes(b"".join(orjson.dumps({"item_id": i, **it.to_dict()}) + b"\n" for i, it in real["items"].items()))
    result = _invoke("--interactions", str(interactions), "--items", str(items), "--domain", "beauty",
                     "--out", str(tmp_path / "out"))
    assert result.exit_code == 0, result.output
    for split in ("train", "test"):
        assert (tmp_path / "out" / f"{split}.jsonl").read_bytes() == (real["ref"] / f"{split}.jsonl").read_bytes()
    stats = json.loads((tmp_path / "out" / "stats.json").read_text())
    assert stats["sources"]["interactions"]["format"] == fmt and stats["ratings"]["table"] == {str(r): r for r in
                                                                                              range(1, 6)}


def _without_extras(e: Example) -> Example:
    def strip(item: Item) -> Item:
        return replace(item, extra=())

    return replace(e, target=replace(e.target, item=strip(e.target.item)),
                   history=tuple(replace(h, item=strip(h.item)) for h in e.history))


def test_extra_item_columns_are_prompt_lines(real: dict[str, Any], tmp_path: Path) -> None:
    """A `color` column of a Parquet items table: a `color: ...` line after the price, N/A where missing;
    the default domain is `generic` (neutral wording)."""
    interactions, items, out = tmp_path / "ratings.csv", tmp_path / "items.parquet", tmp_path / "out"
    _write_csv(interactions, HEADER, real["rows"])
    ids = sorted(real["items"])
    color = {i: COLORS[k % len(COLORS)] for k, i in enumerate(ids)}
    its = [real["items"][i] for i in ids]
    pq.write_table(pa.table({"product": ids, "title": [it.title for it in its], "brand": [it.brand for it in its],
                             "categories": [list(it.categories) for it in its],
                             "description": [it.description for it in its], "price": [it.price for it in its],
                             "color": [color[i] for i in ids]}), items)
    result = _invoke("--interactions", str(interactions), "--items", str(items), *MAP, "--rating-scale", "1,10",
                     "--out", str(out))
    assert result.exit_code == 0, result.output
    stats = json.loads((out / "stats.json").read_text())
    assert stats["domain"] == "generic" and stats["sources"]["items"]["extra_columns"] == ["color"]
    builder = PromptBuilder("generic")
    for split in ("train", "test"):
        got, want = load_examples(out / f"{split}.jsonl"), load_examples(real["ref"] / f"{split}.jsonl")
        assert len(got) == len(want)
        for g, w in zip(got, want):
            # The same example as prepare's, but for the domain (in the id) and the extra field.
            assert replace(_without_extras(g), example_id=w.example_id, domain=w.domain) == w
            assert g.target.item.extra == (("color", color.get(g.target.item_id)),)
            prompt = builder.rating_prompt(g)
            target = prompt.split("### New Item Information: ###", 1)[1]
            price = target.split("Item Price: ", 1)[1].split("\n")[0]
            assert f"Item Price: {price}\ncolor: {color.get(g.target.item_id) or 'N/A'}\n" in target
            assert prompt.count("\ncolor: ") == len(g.history) + 1
            assert "New Item\nItem Title: " in prompt and "past interaction history" in prompt
            # Without its extras the example renders exactly as it did before extras existed.
            plain = "\n".join(line for line in prompt.split("\n") if not line.startswith("color: "))
            assert builder.rating_prompt(_without_extras(g)) == plain
    assert b'"extra":{"color":' in (out / "train.jsonl").read_bytes()


BAD = {"missing": (900, 2, ""), "scale": (1400, 2, "11"), "time": (2100, 3, "yesterday at noon")}


def _broken(real: dict[str, Any], path: Path, cases: tuple[str, ...]) -> dict[str, int]:
    """The CSV with some of: a missing rating cell, a rating off the declared scale, a bad timestamp;
    returns the physical line of each bad row."""
    rows = [list(r) for r in real["rows"]]
    for case in cases:
        index, column, value = BAD[case]
        rows[index][column] = value
    starts = _write_csv(path, HEADER, rows)
    return {case: starts[BAD[case][0]] for case in cases}


@pytest.mark.parametrize(("case", "column", "says"), [("missing", "stars", "missing required field"),
                                                      ("scale", "stars", "outside the declared scale 1-10"),
                                                      ("time", "when", "ISO-8601")])
def test_bad_cells_name_file_line_and_column(case: str, column: str, says: str, real: dict[str, Any],
                                             tmp_path: Path) -> None:
    path = tmp_path / "ratings.csv"
    line = _broken(real, path, (case,))[case]
    assert line > BAD[case][0] + 2  # the physical line: earlier reviews span several lines
    result = _invoke("--interactions", str(path), *MAP, "--rating-scale", "1,10", "--out", str(tmp_path / "out"))
    assert result.exit_code == 2, result.output
    assert f"{path}:{line}: field '{column}': " in result.output and says in result.output
    assert "Traceback" not in result.output


def test_skip_counts_the_bad_rows(real: dict[str, Any], tmp_path: Path) -> None:
    path, out = tmp_path / "ratings.csv", tmp_path / "out"
    lines = _broken(real, path, tuple(BAD))
    result = _invoke("--interactions", str(path), *MAP, "--rating-scale", "1,10", "--on-bad-line", "skip",
                     "--out", str(out))
    assert result.exit_code == 0, result.output
    assert "skipped 3 bad lines" in result.output
    stats = json.loads((out / "stats.json").read_text())
    assert stats["bad_lines"]["interactions"] == {"stars: missing": 1, "stars: invalid": 1, "when: invalid": 1}
    assert [s.split(": field")[0] for s in stats["bad_lines"]["examples"]] == [f"{path}:{lines[k]}" for k in BAD]
    assert stats["counts"]["reviews_valid"] == sum(stats["ratings"]["counts"].values()) == len(real["rows"]) - 3
    assert stats["sources"]["items"] is None and stats["items_without_metadata"] > 0


def test_header_and_option_errors(real: dict[str, Any], tmp_path: Path) -> None:
    path = tmp_path / "ratings.csv"
    _write_csv(path, HEADER, real["rows"][:50])
    twice = _invoke("--interactions", str(path), *MAP, "--map", "rating=score", "--out", str(tmp_path))
    assert twice.exit_code == 2 and "name field 'rating' twice" in twice.output
    plain = ["--map", "user_id=uid", "--map", "item_id=product", "--map", "timestamp=when"]
    missing = _invoke("--interactions", str(path), *plain, "--map", "rating=score", "--out", str(tmp_path))
    assert missing.exit_code == 2 and f"{path}:1: field 'score': no such column" in missing.output
    unmapped = _invoke("--interactions", str(path), *plain, "--out", str(tmp_path))
    assert unmapped.exit_code == 2 and "field 'rating': no such column" in unmapped.output
    assert "--map rating=COLUMN" in unmapped.output
    unknown = _invoke("--interactions", str(path), "--map", "stars=rating", "--out", str(tmp_path))
    assert unknown.exit_code == 2 and "unknown field 'stars'" in unknown.output
    scale = _invoke("--interactions", str(path), "--rating-scale", "10,1", "--out", str(tmp_path))
    assert scale.exit_code == 2 and "MIN must be below MAX" in scale.output
    fmt = _invoke("--interactions", str(path.with_suffix(".xlsx")), "--out", str(tmp_path))
    assert fmt.exit_code == 2 and "unknown table format" in fmt.output


def test_rescale_and_timestamp_rules() -> None:
    ten = RatingScale.parse("1,10")
    assert [ten.rescale(Fraction(v)) for v in range(1, 11)] == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    percent = RatingScale.parse("0,100")
    assert percent.rescale(Fraction("37.5")) == 3 and percent.rescale(Fraction(0)) == 1  # 2.5 rounds up
    assert percent.rescale(Fraction("62.4")) == 3 and percent.rescale(Fraction(100)) == 5
    p = Path("t.csv")
    ms = 1547589356001
    assert to_millis(1547589356, p, 2, "when") == to_millis("1547589356", p, 2, "when") == 1547589356000
    assert to_millis(ms, p, 2, "when") == to_millis(str(ms), p, 2, "when") == ms
    assert to_millis("2019-01-15T21:55:56.001Z", p, 2, "when") == ms
    assert to_millis("2019-01-15T22:55:56.001+01:00", p, 2, "when") == ms
    assert to_millis("2019-01-15T21:55:56.001", p, 2, "when") == ms  # no zone: UTC
    assert to_millis("2019-01-15", p, 2, "when") == to_millis(datetime(2019, 1, 15), p, 2, "when") == 1547510400000
    for bad in ("soon", "1547589356.5", "1960-01-01", -5, True):
        with pytest.raises(BadInputError, match=r"t.csv:2: field 'when'"):
            to_millis(bad, p, 2, "when")
