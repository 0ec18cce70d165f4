"""Canary activation and promotion (needs a binary with canary support)."""

import grpc
import pytest

from doppel_client import DoppelError


def test_canary_serves_a_share_then_is_promoted(client, world):
    for version in ("k-stable", "k-canary"):
        world.import_as(client, version)
    client.activate("k-stable")

    started = client.activate("k-canary", canary_percent=50, guard={"max_error_rate": 0.5, "min_requests": 10})
    assert (started.model_version, started.previous_version, started.canary) == ("k-canary", "k-stable", True)
    assert client.describe_version("k-canary").canary

    served = set()
    for customer in world.customer_ids:
        rec = client.recommend(customer, k=2)
        if rec.arm == "canary":
            assert (rec.experiment, rec.model_version) == ("canary", "k-canary")
        else:
            assert rec.model_version == "k-stable"
        served.add(rec.model_version)
    assert served == {"k-stable", "k-canary"}

    promoted = client.promote_canary()
    assert (promoted.model_version, promoted.previous_version) == ("k-canary", "k-stable")
    assert client.list_versions().active_version == "k-canary"
    assert not client.describe_version("k-canary").canary
    rec = client.recommend(world.customer_ids[0], k=2)
    assert (rec.experiment, rec.model_version) == ("", "k-canary")


def test_promote_without_canary_is_failed_precondition(client):
    with pytest.raises(DoppelError) as caught:
        client.promote_canary()
    assert caught.value.code == grpc.StatusCode.FAILED_PRECONDITION
