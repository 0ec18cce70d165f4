#!/usr/bin/env python3
"""Bring your own embeddings: the ML engineer's loop against a running doppel server.

1. Upserts customers (with consent) and items, and records purchases, over `Ingest`.
2. "Trains" in Python: a truncated SVD (numpy) of the customer x item purchase matrix
   gives customer and item vectors in one space (swap in implicit, PyTorch, ...).
3. Imports them as version `py-v1` (`ModelAdmin.ImportEmbeddings`), activates it, and
   checks a lookalike audience and offers; imports `py-v2`, activates, rolls back.

It uses the Python client in clients/python (`doppel_client`). Exits non-zero when any
check fails, so CI runs it against a real server:

    pip install ./clients/python
    doppel serve --listen 127.0.0.1:50051 --data-dir /tmp/doppel &
    python3 examples/python/byo_embeddings.py --addr 127.0.0.1:50051
"""

import argparse
import sys

import numpy as np
from grpc import StatusCode

from doppel_client import Client, DoppelError

CLUSTERS, CUSTOMERS, ITEMS, DIM = 5, 600, 100, 16


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
    return u[:, :DIM] * root, vt[:DIM].T * root


def check(condition, message):
    print(("ok    " if condition else "FAIL  ") + message)
    if not condition:
        sys.exit(1)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--addr", default="127.0.0.1:50051")
    args = parser.parse_args()

    with Client(args.addr) as doppel:
        doppel.wait_ready(timeout=30)
        rng = np.random.default_rng(42)
        taste, item_taste, bought = synthetic_purchases(rng)
        cids = [f"py-c{c:04d}" for c in range(CUSTOMERS)]
        iids = [f"py-i{i:03d}" for i in range(ITEMS)]
        consent = {"ads_personalization": True, "onsite_personalization": True}
        summary = doppel.upsert_customers({"id": c, "consent": consent} for c in cids)
        check(summary.accepted == CUSTOMERS, f"{summary.accepted} customers upserted")
        summary = doppel.upsert_items({"id": i, "category": f"cat{item_taste[n]}", "price": 10.0, "in_stock": True}
                                      for n, i in enumerate(iids))
        check(summary.accepted == ITEMS, f"{summary.accepted} items upserted")
        summary = doppel.record_events(
            {"customer_id": cids[c], "item_id": iids[i], "type": "PURCHASE", "quantity": 1,
             "timestamp_ms": 1_700_000_000_000}
            for c, i in zip(*np.nonzero(bought)))
        check(summary.rejected == 0, f"{summary.accepted} purchase events recorded")

        customer_vectors, item_vectors = svd_embeddings(bought)
        for version in ["py-v1", "py-v2"]:
            imported = doppel.import_embeddings(version, cids, customer_vectors, iids, item_vectors)
            check(imported.customers == CUSTOMERS and imported.items == ITEMS,
                  f"{version}: {imported.customers} customer and {imported.items} item vectors imported")
        doppel.activate("py-v1")

        seeds = [cids[c] for c in np.flatnonzero(taste == 0)[:10]]
        audience = doppel.lookalikes(seeds, count=20)
        check(audience.attrs["model_version"] == "py-v1", "the audience names py-v1")
        same = sum(taste[cids.index(p)] == 0 for p in audience.customer_id)
        check(len(audience) == 20 and same >= 16, f"{same}/20 lookalikes share the seeds' taste")

        customer = int(np.flatnonzero(taste == 1)[0])
        offers = doppel.recommend(cids[customer], k=5).item_ids
        on_taste = sum(item_taste[iids.index(i)] == 1 for i in offers)
        already = sum(bought[customer, iids.index(i)] > 0 for i in offers)
        check(on_taste >= 4 and already == 0, f"{on_taste}/5 offers match the taste, none already bought")

        doppel.activate("py-v2")
        back = doppel.rollback()
        check(back.model_version == "py-v1" and back.previous_version == "py-v2", "rollback re-activated py-v1")
        try:
            doppel.get_customer("nobody")
            check(False, "unknown customer must be NOT_FOUND")
        except DoppelError as e:
            check(e.code == StatusCode.NOT_FOUND and e.field == "customer_id",
                  f"unknown customer: {e.code.name} naming {e.field}")
    print("byo_embeddings: all checks passed")


if __name__ == "__main__":
    main()
