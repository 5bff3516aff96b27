"""JSON records -> vectors (MBAT) against two peers, on real Debian package records.

Records: the shared Debian set's packages (../shared/data/debian-gemma) joined with apt's
``Packages`` index (bookworm main amd64): ``{"name", "section", "priority", "maintainer",
"tags": [...], "description": long description}``. Queries: partial records whose
``description`` is the package's one-line synopsis (the shared set's queries, a paraphrase of
the long description) plus some exact metadata of the relevant package. Relevance: the shared
qrels. Three ways to search them:

* **MBAT** — ``JSONEncoder`` over all-MiniLM-L6-v2 (text: description; categories: name,
  section, priority, maintainer, tags), through a slimvec collection (default spec
  ``binary*40 > f32``, ``add_json`` / ``search_json``);
* **serialised JSON** — ``json.dumps(record)`` embedded as one text by the same MiniLM;
* **text + exact filter** — MiniLM on the description alone, restricted to documents whose
  metadata equals the query's (section/maintainer equal, tags a subset): the filtered search a
  vector database would do (emulated with NumPy masks, exact scores).

The query sets: synopsis only; + section; + section + maintainer; + two of the package's tags;
and + a *wrong* section (a user misremembering), where an exact filter can only fail.
Description vectors of MiniLM come precomputed with the shared set (same model, same texts);
the serialised-JSON vectors are embedded once and cached under ``~/.cache/slimvec/json/``.

    .venv/bin/python benchmarks/json_records.py [--docs 2000] [--queries 500] [--markdown F]
"""

from __future__ import annotations

import argparse
import glob
import hashlib
import json
import os
import random
import re
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import slimvec
from slimvec.encoders import Encoder, JSONEncoder, get_encoder
from slimvec.eval.metrics import Judgements, ndcg_at_k, qrels_recall_at_k

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "debian-gemma"
CACHE = Path.home() / ".cache" / "slimvec" / "json"
PACKAGES_GLOB = "*_debian_dists_bookworm_main_binary-amd64_Packages*"
#: MBAT's second run weights the description this much over each metadata field.
DESCRIPTION_WEIGHT = 3.0
WEIGHTED = f"MBAT, description x{DESCRIPTION_WEIGHT:g}"
FIELDS = {
    "name": "category",
    "section": "category",
    "priority": "category",
    "maintainer": "category",
    "tags": "category",
    "description": "text",
}


def packages_index() -> Path:
    """bookworm main amd64 ``Packages``: the system's apt lists, else fetched into the cache."""
    for lists in (Path("/var/lib/apt/lists"), CACHE / "lists"):
        found = sorted(glob.glob(str(lists / PACKAGES_GLOB)))
        if found:
            return Path(found[0])
    lists = CACHE / "lists"
    (lists / "partial").mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["apt-get", "-o", f"Dir::State::Lists={lists}", "-o", "Dir::Cache::pkgcache=",
         "-o", "Dir::Cache::srcpkgcache=", "update"],
        check=True,
    )  # fmt: skip
    return Path(sorted(glob.glob(str(lists / PACKAGES_GLOB)))[0])


def parse_packages(path: Path) -> dict[str, dict]:
    """Package name -> {section, priority, maintainer, tags} (first stanza of each name)."""
    raw = subprocess.run(
        ["/usr/lib/apt/apt-helper", "cat-file", str(path)], check=True, capture_output=True
    ).stdout.decode("utf-8")
    out: dict[str, dict] = {}
    for stanza in raw.split("\n\n"):
        fields = dict(re.findall(r"^([\w-]+): ?(.*(?:\n[ \t].*)*)", stanza, re.M))
        name = fields.get("Package")
        if not name or name in out:
            continue
        tags = " ".join(fields.get("Tag", "").split())
        out[name] = {
            "section": fields.get("Section", "").strip(),
            "priority": fields.get("Priority", "").strip(),
            "maintainer": fields.get("Maintainer", "").strip(),
            "tags": [t.strip() for t in tags.split(",") if t.strip()],
        }
    return out


def build(n_docs: int, n_queries: int, seed: int = 0):
    """Records, their description vectors, the queries (synopsis text + vector) and qrels."""
    docs = [json.loads(line) for line in (DATA / "docs.jsonl").read_text().splitlines()]
    doc_vecs = np.load(DATA / "minilm_doc_emb.npy").astype(np.float32)
    queries = [json.loads(x) for x in (DATA / "queries.jsonl").read_text().splitlines()][:n_queries]
    query_vecs = np.load(DATA / "minilm_query_emb.npy").astype(np.float32)[:n_queries]
    qrels: dict[str, dict[str, int]] = {}
    for line in (DATA / "qrels.tsv").read_text().splitlines()[1:]:
        qid, did, rel = line.split()
        qrels.setdefault(qid, {})[did] = int(rel)
    wanted = {d for q in queries for d in qrels.get(q["id"], {})}
    others = [d["id"] for d in docs if d["id"] not in wanted]
    random.Random(seed).shuffle(others)
    keep = wanted | set(others[: max(0, n_docs - len(wanted))])
    rows = [i for i, d in enumerate(docs) if d["id"] in keep]
    meta = parse_packages(packages_index())
    records = []
    for i in rows:
        name = docs[i]["id"].split("~")[0]
        fields = {k: v for k, v in meta.get(name, {}).items() if v}  # absent: a partial record
        records.append({"name": name, **fields, "description": docs[i]["text"]})
    return records, doc_vecs[rows], queries, query_vecs, qrels, [docs[i]["id"] for i in rows]


class Precomputed(Encoder):
    """all-MiniLM-L6-v2 with the shared set's vectors looked up instead of recomputed (the
    same model on the same texts); anything else goes to the model."""

    def __init__(self, texts: list[str], vectors: np.ndarray):
        self.model = get_encoder("all-MiniLM-L6-v2")
        self.name, self.dim = self.model.name, self.model.dim
        self.table = dict(zip(texts, vectors, strict=True))

    def _encode(self, texts: list[str], kind: str, batch_size: int) -> np.ndarray:
        missing = [t for t in texts if t not in self.table]
        if missing:
            self.table.update(zip(missing, self.model.encode(missing, kind=kind, progress=False)))
        return np.stack([self.table[t] for t in texts])


def query_sets(records, queries, qrels, ids, seed: int = 0) -> dict[str, list[dict]]:
    """Partial records per query set; a query takes its metadata from its first relevant
    document in the corpus."""
    row_of = {d: i for i, d in enumerate(ids)}
    sections = sorted({r["section"] for r in records if "section" in r})
    rng = random.Random(seed)
    out: dict[str, list[dict]] = {k: [] for k in ("synopsis", "+section", "+section+maintainer",
                                                  "+2 tags", "+wrong section")}  # fmt: skip
    for q in queries:
        rec = records[row_of[min(qrels[q["id"]])]]
        base = {"description": q["text"]}
        sec = {"section": rec["section"]} if "section" in rec else {}
        out["synopsis"].append(base)
        out["+section"].append({**base, **sec})
        mnt = {"maintainer": rec["maintainer"]} if "maintainer" in rec else {}
        out["+section+maintainer"].append({**base, **sec, **mnt})
        tags = rec.get("tags", [])
        out["+2 tags"].append({**base, "tags": rng.sample(tags, 2)} if len(tags) >= 2 else base)
        wrong = [s for s in sections if s != rec.get("section")]
        out["+wrong section"].append({**base, "section": rng.choice(wrong)})
    return out


def filter_mask(records: list[dict], query: dict) -> np.ndarray:
    """Documents matching the query's metadata exactly (tags: subset)."""
    ok = np.ones(len(records), dtype=bool)
    for key, value in query.items():
        if key == "description":
            continue
        if key == "tags":
            want = set(value)
            ok &= np.array([want <= set(r.get("tags", ())) for r in records])
        else:
            ok &= np.array([r.get(key) == value for r in records])
    return ok


def top10(scores: np.ndarray) -> np.ndarray:
    return np.argsort(-scores, axis=1, kind="stable")[:, :10]


def serialised(texts: list[str], encoder: Encoder, kind: str, tag: str) -> np.ndarray:
    key = hashlib.sha256(("\n".join(texts) + kind).encode()).hexdigest()[:16]
    path = CACHE / f"{tag}-{key}.npy"
    if path.exists():
        return np.load(path)
    vecs = encoder.encode(texts, kind=kind, progress=True)
    CACHE.mkdir(parents=True, exist_ok=True)
    np.save(path, vecs)
    return vecs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--docs", type=int, default=2000)
    parser.add_argument("--queries", type=int, default=500)
    parser.add_argument("--markdown", type=Path, help="also write the table here")
    args = parser.parse_args()
    records, desc_vecs, queries, query_vecs, qrels, ids = build(args.docs, args.queries)
    judgements = Judgements.from_qrels(qrels, [q["id"] for q in queries], ids)
    sets = query_sets(records, queries, qrels, ids)
    n_meta = sum("section" in r for r in records)
    print(f"{len(records)} records ({n_meta} with Packages metadata), {len(queries)} queries")
    print(f"load average {os.getloadavg()[0]:.1f}")
    text = Precomputed([r["description"] for r in records] + [q["text"] for q in queries],
                       np.vstack([desc_vecs, query_vecs]))  # fmt: skip
    minilm = text.model
    results = []
    mbat_s = 0.0
    weighted = {"description": DESCRIPTION_WEIGHT}
    doc_json = serialised([json.dumps(r) for r in records], minilm, "doc", "docs")
    dense = query_vecs @ desc_vecs.T
    with tempfile.TemporaryDirectory() as tmp:
        cols = {}
        for label, weights in (("MBAT", None), (WEIGHTED, weighted)):
            t0 = time.perf_counter()
            cols[label] = slimvec.create(
                Path(tmp) / label, encoder=JSONEncoder(text, fields=FIELDS, weights=weights)
            )
            cols[label].add_json(records)
            mbat_s = time.perf_counter() - t0
        for name, partial in sets.items():
            q_json = serialised([json.dumps(p) for p in partial], minilm, "query", "queries")
            masks = np.stack([filter_mask(records, p) for p in partial])
            filt = top10(np.where(masks, dense, -np.inf))
            filt = np.where(np.take_along_axis(masks, filt, 1), filt, -1)  # fewer than 10 left
            tops = {label: col.search_json(partial, k=10).ids for label, col in cols.items()}
            tops["serialised JSON"] = top10(q_json @ doc_json.T)
            tops["text + filter"] = filt  # ids above are rows: a new collection assigns 0..n-1
            row = {"queries": name, "selectivity": float(masks.mean())}
            for method, top in tops.items():
                row[method] = (
                    ndcg_at_k(top, judgements, 10),
                    qrels_recall_at_k(top, judgements, 10),
                )
            results.append(row)
        for col in cols.values():
            col.close()
    methods = ("MBAT", WEIGHTED, "serialised JSON", "text + filter")
    lines = [
        "| queries | filter keeps | " + " | ".join(f"{m} nDCG@10 / R@10" for m in methods) + " |",
        "|---|---|" + "---|" * len(methods),
    ]
    for row in results:
        cells = " | ".join(f"{row[m][0]:.4f} / {row[m][1]:.3f}" for m in methods)
        lines.append(f"| {row['queries']} | {100 * row['selectivity']:.1f}% | {cells} |")
    table = "\n".join(lines)
    print(f"\nMBAT encode + add: {mbat_s:.1f} s for {len(records)} records (text vectors cached)")
    print(f"load average after: {os.getloadavg()[0]:.1f}\n{table}")
    if args.markdown:
        args.markdown.write_text(table + "\n")


if __name__ == "__main__":
    main()
