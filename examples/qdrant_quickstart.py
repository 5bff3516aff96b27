"""A Qdrant application, written against qdrant-client only: Qdrant's quickstart (create,
upsert with payloads, filtered query, scroll, count). Point it at Qdrant or at slimvec:

    QDRANT_URL=http://localhost:6333 python examples/qdrant_quickstart.py         # Qdrant
    QDRANT_URL=http://localhost:8000/qdrant python examples/qdrant_quickstart.py  # slimvec serve

Nothing here knows about slimvec; ``tests/test_qdrant_client.py`` runs it against
``slimvec serve``.
"""

from __future__ import annotations

import os

from qdrant_client import QdrantClient, models


def main() -> None:
    client = QdrantClient(url=os.environ.get("QDRANT_URL", "http://localhost:6333"))
    if client.collection_exists("test_collection"):
        client.delete_collection("test_collection")
    client.create_collection(
        collection_name="test_collection",
        vectors_config=models.VectorParams(size=4, distance=models.Distance.DOT),
    )
    client.upsert(
        collection_name="test_collection",
        wait=True,
        points=[
            models.PointStruct(id=1, vector=[0.05, 0.61, 0.76, 0.74], payload={"city": "Berlin"}),
            models.PointStruct(id=2, vector=[0.19, 0.81, 0.75, 0.11], payload={"city": "London"}),
            models.PointStruct(id=3, vector=[0.36, 0.55, 0.47, 0.94], payload={"city": "Moscow"}),
            models.PointStruct(id=4, vector=[0.18, 0.01, 0.85, 0.80], payload={"city": "New York"}),
            models.PointStruct(id=5, vector=[0.24, 0.18, 0.22, 0.44], payload={"city": "Beijing"}),
            models.PointStruct(id=6, vector=[0.35, 0.08, 0.11, 0.44], payload={"city": "Mumbai"}),
        ],
    )
    hits = client.query_points(
        collection_name="test_collection", query=[0.2, 0.1, 0.9, 0.7], limit=3, with_payload=False
    ).points
    print("top 3:", [(h.id, round(h.score, 3)) for h in hits])
    london = client.query_points(
        collection_name="test_collection",
        query=[0.2, 0.1, 0.9, 0.7],
        query_filter=models.Filter(
            must=[models.FieldCondition(key="city", match=models.MatchValue(value="London"))]
        ),
        with_payload=True,
        limit=3,
    ).points
    print("in London:", [(h.id, h.payload) for h in london])
    records, _ = client.scroll("test_collection", limit=10)
    print("scroll:", [r.id for r in records], "count:", client.count("test_collection").count)


if __name__ == "__main__":
    main()
