"""Versions, audiences and offers against a real server (any doppel binary)."""

import grpc
import numpy as np
import pytest

from doppel_client import DoppelError, ImportSummary, Recommendation


def test_import_activate_lookalikes_and_recommend(client, world, capsys):
    summary = world.import_as(client, "m-v1", progress=True)
    assert summary == ImportSummary("m-v1", len(world.customer_ids), len(world.item_ids), 0, summary.build_seconds)
    assert "import m-v1" in capsys.readouterr().err
    assert client.activate("m-v1").model_version == "m-v1"

    seeds = world.customers_of(0)[:8]
    audience = client.lookalikes(seeds, count=20, explain=True)
    assert list(audience.columns) == ["customer_id", "score", "nearest_seed_ids"]
    assert len(audience) == 20
    assert audience.attrs["model_version"] == "m-v1"
    assert audience.attrs["eligible_population"] > 0
    assert not set(audience.customer_id) & set(seeds)
    assert (np.diff(audience.score.to_numpy()) <= 1e-6).all(), "best first"
    assert all(nearest and set(nearest) <= set(seeds) for nearest in audience.nearest_seed_ids)
    assert sum(t == 0 for t in world.taste_of(audience.customer_id)) >= 16

    share = client.lookalikes(seeds, top_percent=10, strategy="CENTROID")
    assert 0 < len(share) <= audience.attrs["eligible_population"] // 10 + 1
    assert share.attrs["strategy_used"] == "CENTROID"
    above = client.lookalikes(seeds, min_score=0.5)
    assert (above.score >= 0.5).all()

    customer = world.customers_of(1)[0]
    rec = client.recommend(customer, k=5, context={"channel": "web", "device": "mobile"})
    assert isinstance(rec, Recommendation)
    assert (rec.model_version, rec.personalized, rec.experiment, rec.arm) == ("m-v1", True, "", "")
    assert len(rec.offers) == 5
    row = world.customer_ids.index(customer)
    assert not any(world.bought[row, world.item_ids.index(i)] for i in rec.item_ids), "never already bought"
    assert sum(world.item_taste[world.item_ids.index(i)] == 1 for i in rec.item_ids) >= 4


def test_errors_carry_code_and_field(client, world):
    with pytest.raises(DoppelError) as caught:
        client.recommend(world.customer_ids[0], k=0)
    assert caught.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert caught.value.field == "k"
    assert caught.value.message.startswith("k: ")

    with pytest.raises(DoppelError) as caught:
        client.lookalikes([], count=3)
    assert (caught.value.code, caught.value.field) == (grpc.StatusCode.INVALID_ARGUMENT, "seed_customer_ids")

    with pytest.raises(DoppelError) as caught:
        client.get_customer("nobody")
    assert (caught.value.code, caught.value.field) == (grpc.StatusCode.NOT_FOUND, "customer_id")

    with pytest.raises(DoppelError) as caught:
        client.train(iterations=0, progress=False)
    assert (caught.value.code, caught.value.field) == (grpc.StatusCode.INVALID_ARGUMENT, "iterations")


def test_train_streams_progress(client, world, capsys):
    final = client.train(model_version="m-als", iterations=3, factors=8, seed=1)
    assert final.done and final.stage == "done" and final.model_version == "m-als"
    assert final.customers == len(world.customer_ids) and final.events == int(world.bought.sum())
    err = capsys.readouterr().err
    assert "train" in err and "m-als" in err
    described = client.describe_version("m-als")
    assert (described.info.source, described.info.state) == ("trained", "ready")
    assert described.info.params["iterations"] == "3"


def test_rollback(client, world):
    for version in ("r-v1", "r-v2"):
        world.import_as(client, version)
    client.activate("r-v1")
    switched = client.activate("r-v2")
    assert (switched.model_version, switched.previous_version) == ("r-v2", "r-v1")
    back = client.rollback()
    assert (back.model_version, back.previous_version) == ("r-v1", "r-v2")
    assert client.list_versions().active_version == "r-v1"
    assert client.describe_version("r-v1").active
    assert client.recommend(world.customer_ids[0], k=3).model_version == "r-v1"


def test_ingest_helpers(client, world):
    profile = client.get_customer(world.customer_ids[0])
    assert profile.customer.consent.ads_personalization
    assert profile.purchased_items == int(world.bought[0].sum())
    summary = client.record_events([{"customer_id": "", "item_id": world.item_ids[0], "type": "VIEW"}])
    assert (summary.accepted, summary.rejected, summary.errors[0].field) == (0, 1, "customer_id")
    client.upsert_customers([{"id": "to-erase"}])
    assert client.delete_customer("to-erase") is True
    with pytest.raises(ValueError, match="favourite_colour"):
        client.upsert_customers([{"id": "c-bad", "favourite_colour": "red"}])  # raised here, not CANCELLED
