"""A/B experiments across imported versions (needs a binary with doppel.v1.Experiments)."""

from collections import Counter

import grpc
import pytest

from doppel_client import DoppelError

VERSIONS = {"control": "x-a", "treatment": "x-b"}


@pytest.fixture(scope="module")
def versions(client, world):
    for version in VERSIONS.values():
        world.import_as(client, version)
    client.activate("x-a")
    return VERSIONS


def test_experiment_arms_answer_with_their_version_and_are_reported(client, world, versions):
    info = client.create_experiment("ab", [("control", "x-a", 1), {"name": "treatment", "version": "x-b", "weight": 1}])
    assert (info.state, info.kind, info.traffic_percent) == ("running", "experiment", 100)
    assert [(a.name, a.model_version) for a in info.arms] == list(VERSIONS.items())
    assert sum(info.arm_buckets) == 10_000

    customers, impressions = Counter(), Counter()
    for customer in world.customer_ids:
        rec = client.recommend(customer, k=3, record_impressions=True)
        assert rec.experiment == "ab"
        assert rec.model_version == versions[rec.arm]
        customers[rec.arm] += 1
        impressions[rec.arm] += len(rec.offers)
    assert min(customers.values()) > len(world.customer_ids) // 4, customers

    report = client.experiment_report("ab")
    assert [a.name for a in report.arms] == ["control", "treatment"]
    for arm in report.arms:
        assert arm.model_version == versions[arm.name]
        assert arm.customers_assigned == customers[arm.name]
        assert arm.customers_exposed == customers[arm.name]
        assert arm.impressions == impressions[arm.name]
    assert not report.arms[0].HasField("versus_first") and report.arms[1].HasField("versus_first")

    moved = client.update_weights("ab", [("control", 0), ("treatment", 1)])
    assert (list(moved.arm_buckets), moved.updates) == ([0, 10_000], 1)
    assert {client.recommend(c, k=1).arm for c in world.customer_ids[:20]} == {"treatment"}

    stopped = client.stop_experiment("ab")
    assert stopped.state == "stopped" and stopped.stopped_ms > 0
    rec = client.recommend(world.customer_ids[0], k=1)
    assert (rec.experiment, rec.arm, rec.model_version) == ("", "", "x-a")
    assert [(e.name, e.state) for e in client.list_experiments()] == [("ab", "stopped")]


def test_experiment_errors_name_the_arm_field(client, versions):
    with pytest.raises(DoppelError) as caught:
        client.create_experiment("bad", [("a", "x-a", 1), ("b", "x-b", 10_001)])
    assert (caught.value.code, caught.value.field) == (grpc.StatusCode.INVALID_ARGUMENT, "arms[1].weight")
    with pytest.raises(DoppelError) as caught:
        client.create_experiment("bad", [("a", "no-such-version", 1)])
    assert (caught.value.code, caught.value.field) == (grpc.StatusCode.NOT_FOUND, "arms[0].model_version")
