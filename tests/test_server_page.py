"""The web page at / in a real headless browser (Debian's chromium): the collections table,
the text search box with results, the benchmark plot, escaping, and the key form."""

from __future__ import annotations

import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import httpx
import numpy as np
import pytest

import slimvec
from api_contract import TEXTS, HashEncoder
from serving import thread_server
from slimvec.engine import planner
from slimvec.server.app import create_app
from slimvec.server.auth import KeyFile, new_key

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="Debian's chromium is not installed (make test installs it: scripts/system-deps.sh)",
)
EVIL = "<script>alert(1)</script> & <b>bold</b>"


def _png(path: Path, width: int = 120, height: int = 60) -> None:
    """A small solid orange PNG standing in for a saved `slimvec bench` plot."""
    row = b"\x00" + bytes([240, 120, 20]) * width
    chunks = [
        (b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)),
        (b"IDAT", zlib.compress(row * height)),
        (b"IEND", b""),
    ]
    body = b"".join(
        struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))
        for tag, data in chunks
    )
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + body)


def _chromium(tmp_path: Path, url: str, *args: str) -> str:
    cmd = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
        "--window-size=1200,900",
        *args,
        url,
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    root = tmp_path_factory.mktemp("page-root")
    x = np.random.default_rng(0).standard_normal((100, 32)).astype(np.float32)
    measured = slimvec.create(root / "vectors", 32, spec="int8*4 > f32", target_recall=0.9)
    measured.add(x)
    measured.quality.configure(rate=1.0, budget=None)
    with planner.funnel_only():  # 100 rows: the planner would answer exactly, unmeasured
        measured.search(x[:12] + 0.1, k=5)
    measured.quality.flush()  # measured and saved with the collection, read by the server
    measured.close()
    texts = slimvec.create(root / "packages", encoder=HashEncoder())
    texts.add_texts([*TEXTS, EVIL], metadata=[{"i": i} for i in range(len(TEXTS) + 1)])
    keyed = slimvec.create(root / "keyed", encoder=HashEncoder(), ids="str")
    keyed.add_texts(TEXTS[:2], ids=["pkg/libhtml-tableextract-perl", EVIL])
    (root / "results").mkdir()
    _png(root / "results" / "bench.png")
    with thread_server(create_app(root, encoders={"hash-16": HashEncoder()})) as url:
        yield url


def test_page_lists_collections_and_searches_in_a_browser(served, tmp_path):
    dom = _chromium(
        tmp_path, f"{served}/?collection=packages&q=html+parser&mode=sparse", "--dump-dom"
    )
    for expected in ("vectors", "packages", "int8*4 &gt; f32", "hash-16", "3 collections"):
        assert expected in dom
    assert "Results for “html parser” in packages" in dom
    assert "HTML parser and tree builder for Python" in dom and '{"i": 5}' in dom
    assert 'src="/bench.png"' in dom
    assert "flat 1.000 (" in dom and "n=12)" in dom and "target 0.9" in dom  # live recall
    evil = _chromium(
        tmp_path, f"{served}/?collection=packages&q=script+alert&mode=sparse", "--dump-dom"
    )
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in evil and "<script>alert" not in evil


def test_page_screenshot_shows_the_styled_table_and_plot(served, tmp_path):
    from PIL import Image  # matplotlib's dependency, in the bench extra

    shot = tmp_path / "page.png"
    _chromium(
        tmp_path, f"{served}/?collection=packages&q=compression&mode=hybrid", f"--screenshot={shot}"
    )
    image = np.asarray(Image.open(shot).convert("RGB")).astype(int)
    assert image.shape[:2] == (900, 1200)
    assert len(np.unique(image.reshape(-1, 3), axis=0)) > 50  # text and tables, not blank
    blue = (np.abs(image - [47, 111, 235]).sum(axis=2) < 30).sum()  # header rule, button
    orange = (np.abs(image - [240, 120, 20]).sum(axis=2) < 30).sum()  # the bench plot
    assert blue > 1000 and orange > 0.5 * 120 * 60


def test_page_asks_for_a_key_when_the_server_has_keys(tmp_path):
    root = tmp_path / "root"
    slimvec.create(root / "secret-docs", 8).add(np.eye(8, dtype=np.float32))
    key = new_key(tmp_path / "keys.toml", "viewer")
    with thread_server(create_app(root, keys=KeyFile.load(tmp_path / "keys.toml"))) as url:
        dom = _chromium(tmp_path, url + "/", "--dump-dom")
        assert 'name="key"' in dom and "secret-docs" not in dom
        with httpx.Client(base_url=url) as browser:
            assert (
                "That key is not valid"
                in browser.post("/login", data={"key": "wrong"}, follow_redirects=True).text
            )
            page = browser.post("/login", data={"key": key}, follow_redirects=True)
            assert "secret-docs" in page.text and "key: viewer" in page.text
            assert browser.get("/collections").json() == {"collections": ["secret-docs"]}


def test_page_shows_string_ids_escaped(served, tmp_path):
    page = f"{served}/?collection=keyed&mode=sparse&q="
    dom = _chromium(tmp_path, page + "html+table", "--dump-dom")
    assert "<td>pkg/libhtml-tableextract-perl</td>" in dom
    evil = _chromium(tmp_path, page + "compression", "--dump-dom")  # an id that is HTML
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in evil and "<script>alert" not in evil
