// Qdrant's JavaScript quickstart, written against @qdrant/js-client-rest only. Point it at
// Qdrant or at slimvec (the Qdrant API is under /qdrant; this client ignores a path in `url`,
// so the prefix is its own setting):
//
//   QDRANT_URL=http://localhost:6333 node quickstart.mjs                       # Qdrant
//   QDRANT_URL=http://localhost:8000 QDRANT_PREFIX=qdrant node quickstart.mjs  # slimvec serve
//
// It prints one JSON line of what it found; benchmarks/qdrant_js_smoke.py checks it.
import { QdrantClient } from "@qdrant/js-client-rest";

const client = new QdrantClient({
  url: process.env.QDRANT_URL ?? "http://localhost:6333",
  prefix: process.env.QDRANT_PREFIX,
});
const name = "js_collection";
if ((await client.collectionExists(name)).exists) await client.deleteCollection(name);
await client.createCollection(name, { vectors: { size: 4, distance: "Dot" } });
await client.upsert(name, {
  wait: true,
  points: [
    { id: 1, vector: [0.05, 0.61, 0.76, 0.74], payload: { city: "Berlin" } },
    { id: 2, vector: [0.19, 0.81, 0.75, 0.11], payload: { city: "London" } },
    { id: 3, vector: [0.36, 0.55, 0.47, 0.94], payload: { city: "Moscow" } },
    { id: 4, vector: [0.18, 0.01, 0.85, 0.8], payload: { city: "New York" } },
    { id: 5, vector: [0.24, 0.18, 0.22, 0.44], payload: { city: "Beijing" } },
    { id: 6, vector: [0.35, 0.08, 0.11, 0.44], payload: { city: "Mumbai" } },
    { id: "5c56c793-69f3-4fbf-87e6-c4bf54c28c26", vector: [0.9, 0.1, 0.1, 0.1], payload: { city: "Oslo" } },
  ],
});
const query = [0.2, 0.1, 0.9, 0.7];
const top = await client.query(name, { query, limit: 3 });
const london = await client.query(name, {
  query,
  filter: { must: [{ key: "city", match: { value: "London" } }] },
  with_payload: true,
  limit: 3,
});
const scrolled = await client.scroll(name, { limit: 10 });
const counted = await client.count(name, { exact: true });
const got = await client.retrieve(name, { ids: ["5c56c793-69f3-4fbf-87e6-c4bf54c28c26"], with_payload: true });
await client.delete(name, { points: [6], wait: true });
const after = await client.count(name, { exact: true });
console.log(
  JSON.stringify({
    top: top.points.map((p) => [p.id, Math.round(p.score * 1000) / 1000]),
    london: london.points.map((p) => [p.id, p.payload.city]),
    scrolled: scrolled.points.length,
    count: counted.count,
    retrieved: got.map((p) => p.payload.city),
    after_delete: after.count,
  }),
);
