"""`make demo`: real Debian package descriptions, embedded with all-MiniLM-L6-v2, end to end.

1. builds the Debian dataset (apt's English descriptions; synopsis = query) and embeds it;
2. asks the advisor for the cheapest spec keeping recall@10 >= 0.99 against exact search;
3. creates a collection with that spec and the encoder, adds the documents with their texts;
4. searches a few real queries by text and prints the hits;
5. benchmarks the advised spec, the default and FAISS baselines side by side, with a plot.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from rich.console import Console

import slimvec
from slimvec.datasets import load_debian
from slimvec.eval.advise import advise
from slimvec.eval.bench import print_table, run_bench, write_csv, write_json

MODEL = "all-MiniLM-L6-v2"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=3000, help="documents to sample")
    parser.add_argument("--queries", type=int, default=1000, help="queries to sample")
    parser.add_argument("--out", type=Path, default=Path("demo-output"), help="output folder")
    args = parser.parse_args(argv)
    console = Console(width=max(150, Console().width))
    out = args.out
    out.mkdir(parents=True, exist_ok=True)

    console.rule("1. Debian package descriptions, embedded with all-MiniLM-L6-v2")
    data = load_debian(size=args.size, queries=args.queries, model=MODEL)
    console.print(
        f"{len(data.doc_ids):,} documents, {len(data.query_ids):,} queries, dim {data.dim}"
    )

    console.rule("2. slimvec advise: cheapest spec with recall@10 >= 0.99")
    advice = advise(data, target_recall=0.99)
    console.print(advice.summary())
    spec = advice.spec or slimvec.DEFAULT_SPEC

    console.rule(f"3. a collection with spec {spec!r}")
    path = out / "debian.slim"
    shutil.rmtree(path, ignore_errors=True)
    col = slimvec.create(path, encoder=MODEL, spec=spec)
    col.add(
        data.docs,
        texts=data.doc_texts,
        metadata=[{"package": doc_id} for doc_id in data.doc_ids],
    )
    info = col.info()
    console.print(
        f"{info['count']:,} vectors; RAM {info['ram_bytes_per_vector']} B/vector "
        f"(float32: {info['float32_bytes_per_vector']}), disk {info['disk_bytes_per_vector']} "
        f"B/vector (keeps float32 originals for exact search)"
    )

    console.rule("4. real queries (synopses), searched by text")
    for qid, text in list(zip(data.query_ids, data.query_texts or [], strict=False))[:4]:
        relevant = set(data.qrels.get(qid, {}))
        res = col.search_texts(text, k=3)
        console.print(f"[bold]{text}[/bold]")
        packages = col.metadata(res.ids[0])
        for rank, (meta, score) in enumerate(zip(packages, res.scores[0], strict=True), 1):
            name = meta["package"] if meta else "?"
            mark = "[green]✓ relevant[/green]" if name in relevant else ""
            console.print(f"  {rank}. {name:32s} {score:.3f} {mark}")

    console.rule("5. slimvec bench: advised and default specs beside FAISS")
    specs = list(dict.fromkeys([spec, slimvec.DEFAULT_SPEC, "int8*4 > f32", "f32"]))
    rows = run_bench(data, specs, baselines=True)
    print_table(rows, console=console)
    write_csv(rows, out / "bench.csv")
    write_json(rows, out / "bench.json")
    try:
        from slimvec.eval.plots import plot_frontiers

        png = plot_frontiers(rows, out / "bench.png")
        console.print(f"plot: {png}")
    except ImportError:
        console.print("matplotlib not installed: no plot (pip install 'slimvec[bench]')")
    console.print(f"tables: {out / 'bench.csv'}, {out / 'bench.json'}")


if __name__ == "__main__":
    main()
