"""The web page at ``/``: what the server holds, and a search box for text collections.

Rendered on the server from ``index.html`` (plain HTML, no script): the search box is a GET
form, so results are a link that can be shared and the page works in any browser. Every value
shown is HTML-escaped.
"""

from __future__ import annotations

import json
from html import escape
from importlib.resources import files
from string import Template
from typing import Any
from urllib.parse import quote

import numpy as np

from slimvec.errors import SlimvecError

MODES = ("dense", "sparse", "hybrid")
_TEMPLATE = Template(files(__package__).joinpath("index.html").read_text(encoding="utf-8"))


def _bytes(value: Any) -> str:
    return "-" if value is None else f"{value:,}"


def _collection_rows(infos: list[dict[str, Any]]) -> str:
    if not infos:
        return '<tr><td colspan="9" class="empty">no collections yet</td></tr>'
    rows = []
    for info in infos:
        encoder = (info.get("encoder") or {}).get("name") or "-"
        rows.append(
            "<tr>"
            f'<td class="name">{escape(info["name"])}</td>'
            f"<td>{info['count']:,}</td>"
            f"<td>{info['dim']}</td>"
            f"<td>{escape(info['metric'])}</td>"
            f"<td><code>{escape(info['spec'])}</code></td>"
            f"<td>{_bytes(info['ram_bytes_per_vector'])}</td>"
            f"<td>{_bytes(info['disk_bytes_per_vector'])}</td>"
            f"<td>{escape(encoder)}</td>"
            f'<td class="recall">{_recall(info.get("quality"))}</td>'
            "</tr>"
        )
    return "\n".join(rows)


def _recall(quality: dict[str, Any] | None) -> str:
    """Live recall per plan kind with its 95 % interval (``slimvec.engine.quality``), red
    below the target; "-" before any search was measured."""
    if not quality or not quality["plans"]:
        return "-"
    parts = []
    for kind, plan in quality["plans"].items():
        if plan["estimate"] is None:
            continue
        low, high = plan["interval"]
        css = ' class="below"' if plan["below_target"] else ""
        parts.append(
            f"<span{css}>{escape(kind)} {plan['estimate']:.3f} ({low:.3f}–{high:.3f}, "
            f"n={plan['samples']:,})</span>"
        )
    target = quality["target_recall"]
    if target is not None:
        parts.append(f'<span class="note">target {target:g}</span>')
    return "<br>".join(parts) or "-"


def _search_form(names: list[str], query: dict[str, str]) -> str:
    if not names:
        return '<p class="note">No collection here has an encoder, so none takes text queries.</p>'
    chosen = query.get("collection", names[0])
    options = "".join(
        f'<option value="{escape(n)}"{" selected" if n == chosen else ""}>{escape(n)}</option>'
        for n in names
    )
    mode = query.get("mode", "dense")
    modes = "".join(f"<option{' selected' if m == mode else ''}>{m}</option>" for m in MODES)
    return (
        '<form method="get" action="/" class="search">'
        f'<select name="collection" aria-label="collection">{options}</select>'
        f'<input type="search" name="q" value="{escape(query.get("q", ""))}" '
        'placeholder="search text" aria-label="query" autofocus>'
        f'<select name="mode" aria-label="mode">{modes}</select>'
        '<button type="submit">Search</button></form>'
    )


def _results(registry: Any, query: dict[str, str], allowed: list[str]) -> str:
    name, text = query.get("collection"), query.get("q", "").strip()
    if not name or not text:
        return ""
    if name not in allowed:
        return f'<p class="error">no text collection named {escape(name)}</p>'
    try:
        col = registry.reader(name)
        result = col.search_texts(text, k=10, mode=query.get("mode", "dense"))
        hits = np.isfinite(result.scores[0])  # -inf pads; the ids there are -1 or None
        ids, scores = result.ids[0][hits].tolist(), result.scores[0][hits].tolist()
        texts, metas = col.texts(ids), col.metadata(ids)
    except SlimvecError as exc:
        return f'<p class="error">{escape(str(exc))}</p>'
    rows = "".join(
        f"<tr><td>{rank}</td><td>{escape(str(i))}</td><td>{score:.4f}</td>"
        f"<td>{escape(t or '')}</td>"
        f"<td><code>{escape(json.dumps(m) if m is not None else '')}</code></td></tr>"
        for rank, (i, score, t, m) in enumerate(zip(ids, scores, texts, metas), start=1)
    )
    return (
        f"<h2>Results for “{escape(text)}” in {escape(name)}</h2>"
        '<table class="results"><thead><tr><th>#</th><th>id</th><th>score</th><th>text</th>'
        f"<th>metadata</th></tr></thead><tbody>{rows or '<tr><td colspan=5>no hits</td></tr>'}"
        "</tbody></table>"
    )


def render_page(registry: Any, who: Any, query: dict[str, str], has_plot: bool) -> str:
    """The page for principal ``who``: only the collections its key may use."""
    infos = []
    for name in registry.names():
        if not who.may_see(name):
            continue
        try:
            infos.append({**registry.reader(name).info(), "name": name})
        except SlimvecError:
            continue  # dropped or damaged meanwhile; the API reports it properly
    with_encoder = [i["name"] for i in infos if i.get("encoder")]
    plot = (
        '<h2>Latest benchmark</h2><img src="/bench.png" alt="slimvec bench plot" class="plot">'
        if has_plot
        else ""
    )
    return _TEMPLATE.substitute(
        rows=_collection_rows(infos),
        total=f"{len(infos)} collection{'s' if len(infos) != 1 else ''}",
        search=_search_form(with_encoder, query),
        results=_results(registry, query, with_encoder),
        plot=plot,
        user=escape(who.name),
        docs=quote("/docs"),
    )


def render_login(failed: bool) -> str:
    message = '<p class="error">That key is not valid.</p>' if failed else ""
    body = (
        "<h2>API key</h2><p>This server needs an API key to show its collections.</p>"
        f'{message}<form method="post" action="/login" class="search">'
        '<input type="password" name="key" placeholder="api key" aria-label="api key">'
        '<button type="submit">Enter</button></form>'
    )
    return _TEMPLATE.substitute(
        rows="", total="", search=body, results="", plot="", user="-", docs="/docs"
    ).replace('<table class="collections">', '<table class="collections" hidden>')
