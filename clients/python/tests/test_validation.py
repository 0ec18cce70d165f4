"""Client-side checks: argument shapes, options, arms, TLS settings, error parsing (no server)."""

import grpc
import numpy as np
import pytest

from doppel_client import Client, TlsConfig
from doppel_client._proto import audiences_pb2, common_pb2
from doppel_client.audiences import lookalike_request
from doppel_client.channel import tls_config
from doppel_client.embeddings import CHUNK_BYTES, chunk_rows_for, chunks, tables
from doppel_client.errors import parse_field
from doppel_client.experiments import arm_message

IDS = ["a", "b", "c"]


@pytest.fixture
def offline():
    """A client of a port nobody listens on: calls that get past validation would fail."""
    with Client("127.0.0.1:1") as client:
        yield client


@pytest.mark.parametrize("customer_vectors, item_vectors, error", [
    (np.ones(3), np.ones((3, 4)), "customer_vectors: expected a 2-D array"),
    (np.ones((2, 4)), np.ones((3, 4)), "customer_ids: 3 ids for 2 rows"),
    (np.ones((3, 4)), np.ones((3, 5)), "one space, one dim"),
    (np.array([[1.0, np.nan]] * 3), np.ones((3, 2)), "customer_vectors: NaN"),
    (np.ones((3, 0)), np.ones((3, 0)), "rows × dim ≥ 1"),
])
def test_import_embeddings_checks_shapes(offline, customer_vectors, item_vectors, error):
    with pytest.raises(ValueError, match=error):
        offline.import_embeddings("v", IDS, customer_vectors, IDS, item_vectors, progress=False)


def test_import_embeddings_needs_string_ids(offline):
    with pytest.raises(TypeError, match="ids must be strings"):
        offline.import_embeddings("v", [1, 2, 3], np.ones((3, 2)), IDS, np.ones((3, 2)), progress=False)


def test_chunks_are_float32_rows_under_the_byte_budget():
    dim, rows = 512, 5_000
    customers, items = tables([f"customer-{i:06d}" for i in range(rows)], np.random.rand(rows, dim),
                              IDS, np.ones((3, dim)))
    assert customers.vectors.dtype == np.float32
    per_chunk = chunk_rows_for([customers, items], None)
    sent = list(chunks("v", customers, per_chunk))
    assert sum(len(c.ids) for c in sent) == rows and len(sent) > 1
    assert max(c.ByteSize() for c in sent) <= CHUNK_BYTES
    assert sent[0].entity == common_pb2.CUSTOMER and sent[0].dim == dim
    np.testing.assert_array_equal(np.array(sent[0].values, dtype=np.float32), customers.vectors[:per_chunk].ravel())
    with pytest.raises(ValueError, match="chunk_rows"):
        chunk_rows_for([customers], 0)


def test_lookalike_options_map_onto_request_fields():
    request = lookalike_request(["s1"], None, 5.0, None, {
        "strategy": "MAX_SIMILARITY", "filter": {"country": "FR"}, "explain": True,
        "seed_segments": [{"kind": "rfm", "name": "champions"}], "audit_attributes": ["country"]})
    assert request.WhichOneof("size") == "top_percent" and request.top_percent == 5.0
    assert request.strategy == audiences_pb2.MAX_SIMILARITY and dict(request.filter) == {"country": "FR"}
    assert request.seed_segments[0].name == "champions"


@pytest.mark.parametrize("call, error", [
    (lambda c: c.lookalikes(["s"], count=1, colour="red"), "unknown option"),
    (lambda c: c.lookalikes(["s"], count=1, seed_customer_ids=["x"]), "unknown option"),
    (lambda c: c.lookalikes(["s"]), "exactly one of count, top_percent, min_score"),
    (lambda c: c.lookalikes(["s"], count=1, top_percent=2.0), "exactly one"),
    (lambda c: c.lookalikes("s", count=1), "not one string"),
    (lambda c: c.recommend("c", 1, colour="red"), "unknown option"),
    (lambda c: c.recommend("c", 1, context={"planet": "mars"}), "unknown option"),
    (lambda c: c.train(colour="red"), "unknown option"),
    (lambda c: c.activate("v", canary_percent=5, guard={"max_errors": 1}), "unknown option"),
])
def test_unknown_or_conflicting_options_raise_type_error(offline, call, error):
    with pytest.raises(TypeError, match=error):
        call(offline)


def test_arms_from_tuples_dicts_and_messages():
    assert arm_message(("a", "v1", 3)).model_version == "v1"
    assert (arm_message(("a", 3)).model_version, arm_message(("a", 3)).weight) == ("", 3)
    assert arm_message({"name": "a", "version": "v1", "weight": 1}).model_version == "v1"
    assert arm_message({"name": "a", "model_version": "v1"}).weight == 0
    for bad in ["a", ("a",), {"name": "a", "share": 1}]:
        with pytest.raises(TypeError):
            arm_message(bad)


def test_tls_settings():
    assert tls_config(None) is None and tls_config(False) is None
    assert tls_config(True) == TlsConfig()
    assert tls_config({"ca_cert": "ca.pem"}) == TlsConfig(ca_cert="ca.pem")

    class Files:
        ca_cert, client_cert, client_key = "ca.pem", "c.pem", "c.key"

    assert tls_config(Files()) == TlsConfig("ca.pem", "c.pem", "c.key")
    with pytest.raises(TypeError, match="unknown keys"):
        tls_config({"ca": "ca.pem"})
    with pytest.raises(ValueError, match="go together"):
        tls_config({"client_cert": "c.pem"})


@pytest.mark.parametrize("code, message, field", [
    (grpc.StatusCode.INVALID_ARGUMENT, "k: must be in 1..=1000", "k"),
    (grpc.StatusCode.INVALID_ARGUMENT, "arms[1].weight: must be 0..=10000", "arms[1].weight"),
    (grpc.StatusCode.INVALID_ARGUMENT, "filter.max_price: must be ≥ 0", "filter.max_price"),
    (grpc.StatusCode.FAILED_PRECONDITION, "seed_customer_ids: 2 usable seeds, at least 5", "seed_customer_ids"),
    (grpc.StatusCode.NOT_FOUND, "customer_id: `x` not found", "customer_id"),
    (grpc.StatusCode.FAILED_PRECONDITION, "no previous version is loaded to roll back to", None),
    (grpc.StatusCode.UNAVAILABLE, "store unavailable: connection refused", None),
    (grpc.StatusCode.INTERNAL, "index: corrupt segment", None),
    (grpc.StatusCode.INVALID_ARGUMENT, "", None),
])
def test_field_is_parsed_from_the_message(code, message, field):
    assert parse_field(code, message) == field
