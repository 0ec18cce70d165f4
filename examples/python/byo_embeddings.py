#!/usr/bin/env python3
"""Bring your own embeddings: the ML engineer's loop against a running doppel server.

1. Generates Python stubs from `proto/doppel/v1/*.proto` (grpcio-tools) into a temp dir.
2. Upserts customers (with consent) and items, and records purchases, over `Ingest`.
3. "Trains" in Python: a truncated SVD (numpy) of the customer x item purchase matrix
   gives customer and item vectors in one space (swap in implicit, PyTorch, ...).
4. Streams them with `ModelAdmin.ImportEmbeddings` as version `py-v1`, activates it, and
   checks a lookalike audience and offers; imports `py-v2`, activates, rolls back.

Exits non-zero when any check fails, so CI runs it against a real server:

    pip install grpcio grpcio-tools numpy
    doppel serve --listen 127.0.0.1:50051 --data-dir /tmp/doppel &
    python3 examples/python/byo_embeddings.py --addr 127.0.0.1:50051
"""

import argparse
import importlib
import pathlib
import subprocess
import sys
import tempfile

import numpy as np

REPO = pathlib.Path(__file__).resolve().parents[2]
CLUSTERS, CUSTOMERS, ITEMS, DIM = 5, 600, 100, 16


def generate_stubs(out: pathlib.Path):
    """Compiles doppel's protos to Python and imports the modules."""
    protos = sorted(str(p.relative_to(REPO / "proto")) for p in (REPO / "proto/doppel/v1").glob("*.proto"))
    subprocess.run(
        [sys.executable, "-m", "grpc_tools.protoc", f"-I{REPO / 'proto'}",
         f"--python_out={out}", f"--grpc_python_out={out}", *protos],
        check=True,
    )
    sys.path.insert(0, str(out))
    names = ["common", "ingest", "model_admin", "audiences", "recommendations"]
    mods = {n: importlib.import_module(f"doppel.v1.{n}_pb2") for n in names}
    grpc_mods = {n: importlib.import_module(f"doppel.v1.{n}_pb2_grpc") for n in names[1:]}
    return mods, grpc_mods


def synthetic_purchases(rng):
    """Customers of 5 tastes buying mostly the items of their taste."""
    taste = rng.integers(0, CLUSTERS, CUSTOMERS)
    item_taste = np.arange(ITEMS) % CLUSTERS
    bought = np.zeros((CUSTOMERS, ITEMS), dtype=np.float32)
    for c in range(CUSTOMERS):
        own = np.flatnonzero(item_taste == taste[c])
        for i in rng.choice(own, 8, replace=False):
            bought[c, i] += 1
        bought[c, rng.integers(0, ITEMS)] += 1  # some noise
    return taste, item_taste, bought


def svd_embeddings(bought):
    """Truncated SVD: customers = U·sqrt(S), items = V·sqrt(S)."""
    u, s, vt = np.linalg.svd(bought, full_matrices=False)
    root = np.sqrt(s[:DIM])
    return (u[:, :DIM] * root).astype(np.float32), (vt[:DIM].T * root).astype(np.float32)


def chunks(pb, version, entity, ids, vectors, rows=256):
    for start in range(0, len(ids), rows):
        block = vectors[start:start + rows]
        yield pb.EmbeddingChunk(model_version=version, entity=entity, dim=DIM,
                                ids=ids[start:start + rows], values=block.ravel().tolist())


def check(condition, message):
    print(("ok    " if condition else "FAIL  ") + message)
    if not condition:
        sys.exit(1)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--addr", default="127.0.0.1:50051")
    args = parser.parse_args()
    import grpc

    with tempfile.TemporaryDirectory() as tmp:
        mods, stubs = generate_stubs(pathlib.Path(tmp))
        common, ingest, admin, audiences, recs = (mods[n] for n in
                                                  ["common", "ingest", "model_admin", "audiences", "recommendations"])
        channel = grpc.insecure_channel(args.addr)
        grpc.channel_ready_future(channel).result(timeout=30)
        ingest_stub = stubs["ingest"].IngestStub(channel)
        admin_stub = stubs["model_admin"].ModelAdminStub(channel)
        audience_stub = stubs["audiences"].AudiencesStub(channel)
        recs_stub = stubs["recommendations"].RecommendationsStub(channel)

        rng = np.random.default_rng(42)
        taste, item_taste, bought = synthetic_purchases(rng)
        cids = [f"py-c{c:04d}" for c in range(CUSTOMERS)]
        iids = [f"py-i{i:03d}" for i in range(ITEMS)]
        consent = common.Consent(ads_personalization=True, onsite_personalization=True)
        summary = ingest_stub.UpsertCustomers(iter(common.Customer(id=c, consent=consent) for c in cids))
        check(summary.accepted == CUSTOMERS, f"{summary.accepted} customers upserted")
        summary = ingest_stub.UpsertItems(iter(
            common.Item(id=i, category=f"cat{item_taste[n]}", price=10.0, in_stock=True)
            for n, i in enumerate(iids)))
        check(summary.accepted == ITEMS, f"{summary.accepted} items upserted")
        events = [common.Event(customer_id=cids[c], item_id=iids[i], type=common.PURCHASE,
                               quantity=1, timestamp_ms=1_700_000_000_000)
                  for c, i in zip(*np.nonzero(bought))]
        summary = ingest_stub.RecordEvents(iter(events))
        check(summary.rejected == 0, f"{summary.accepted} purchase events recorded")

        customer_vectors, item_vectors = svd_embeddings(bought)
        for version in ["py-v1", "py-v2"]:
            def stream():
                yield from chunks(admin, version, common.CUSTOMER, cids, customer_vectors)
                yield from chunks(admin, version, common.ITEM, iids, item_vectors)
            summary = admin_stub.ImportEmbeddings(stream())
            check(summary.customers == CUSTOMERS and summary.items == ITEMS,
                  f"{version}: {summary.customers} customer and {summary.items} item vectors imported")
        admin_stub.ActivateVersion(admin.ActivateVersionRequest(model_version="py-v1"))

        seeds = [cids[c] for c in np.flatnonzero(taste == 0)[:10]]
        prospects = []
        for batch in audience_stub.FindLookalikes(audiences.LookalikeRequest(seed_customer_ids=seeds, count=20)):
            check(batch.model_version == "py-v1", "the audience names py-v1")
            prospects.extend(batch.prospects)
        same = sum(taste[cids.index(p.customer_id)] == 0 for p in prospects)
        check(len(prospects) == 20 and same >= 16, f"{same}/20 lookalikes share the seeds' taste")

        customer = int(np.flatnonzero(taste == 1)[0])
        offers = recs_stub.RecommendOffers(recs.RecommendRequest(customer_id=cids[customer], k=5)).offers
        on_taste = sum(item_taste[iids.index(o.item_id)] == 1 for o in offers)
        already = sum(bought[customer, iids.index(o.item_id)] > 0 for o in offers)
        check(on_taste >= 4 and already == 0, f"{on_taste}/5 offers match the taste, none already bought")

        admin_stub.ActivateVersion(admin.ActivateVersionRequest(model_version="py-v2"))
        back = admin_stub.Rollback(admin.RollbackRequest())
        check(back.model_version == "py-v1" and back.previous_version == "py-v2",
              "rollback re-activated py-v1")
        try:
            ingest_stub.GetCustomer(ingest.GetCustomerRequest(customer_id="nobody"))
            check(False, "unknown customer must be NOT_FOUND")
        except grpc.RpcError as e:
            check(e.code() == grpc.StatusCode.NOT_FOUND, f"unknown customer: {e.code().name}")
    print("byo_embeddings: all checks passed")


if __name__ == "__main__":
    main()
