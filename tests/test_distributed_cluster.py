"""A sharded collection across two simulated nodes (``ray.cluster_utils.Cluster``): shard
actors spread over both, a shard's node-level process killed, the collection still whole.

Its own module because a multi-node cluster cannot be started inside ``ray.init(num_cpus=2)``.
"""

from __future__ import annotations

import time

import numpy as np
import pytest
import ray
from ray.cluster_utils import Cluster

import slimvec
import slimvec.distributed as sd


@pytest.fixture(scope="module")
def two_nodes():
    cluster = Cluster(
        initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False}
    )
    cluster.add_node(num_cpus=1)
    ray.init(address=cluster.address, log_to_driver=False)
    cluster.wait_for_nodes()
    yield cluster
    ray.shutdown()
    cluster.shutdown()


def test_shards_spread_over_two_nodes_and_survive_a_kill(tmp_path, two_nodes):
    rng = np.random.default_rng(0)
    docs = rng.standard_normal((1000, 16)).astype(np.float32)
    local = slimvec.create(tmp_path / "local", 16, spec="f32")
    local.add(docs)
    # one CPU per shard on two one-CPU nodes: each node must take one shard
    options = {"num_cpus": 1}
    with sd.create(tmp_path / "c", 16, shards=2, spec="f32", actor_options=options) as col:
        col.add(docs)
        nodes = {e["replicas"][0]["node"] for e in col.info()["shard_info"]}
        assert len(nodes) == 2
        want = local.search(docs[:20], k=5)
        got = col.search(docs[:20], k=5)
        assert (got.ids == want.ids).all()
        pid = col.info()["shard_info"][1]["replicas"][0]["pid"]
        ray.kill(col._actors[1][0], no_restart=False)  # returns before the actor is dead
        deadline = time.monotonic() + 60
        while col.info(timeout=5)["shard_info"][1]["replicas"][0].get("pid") in (pid, None):
            assert time.monotonic() < deadline
            time.sleep(0.5)
        assert len(col) == 1000
        assert (col.search(docs[:20], k=5).ids == want.ids).all()
