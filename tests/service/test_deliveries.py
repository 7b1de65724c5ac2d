"""Delivery de-duplication: one winner among concurrent redeliveries, kept at least 7 days."""

from __future__ import annotations

import threading

import pytest
import redis

from service.deliveries import TTL_SECONDS, DeliveryLog, delivery_key, execution_name


def test_first_delivery_records_and_a_redelivery_gets_the_first_outcome(redis_client):
    log = DeliveryLog(redis_client)
    first, _ = log.record_once("1", "d-1", {"run_id": "a"}, lambda pipe: pipe.rpush("started", "a"))
    again, existing = log.record_once("1", "d-1", {"run_id": "b"}, lambda pipe: pipe.rpush("started", "b"))
    assert (first, again) == (True, False) and existing["run_id"] == "a"
    assert redis_client.lrange("started", 0, -1) == [b"a"]  # the redelivery's writes never land
    assert redis_client.ttl(delivery_key("1", "d-1")) > 7 * 24 * 3600 - 5
    assert TTL_SECONDS >= 7 * 24 * 3600


def test_the_same_delivery_id_of_another_hook_is_another_delivery(redis_client):
    log = DeliveryLog(redis_client)
    assert log.record_once("1", "d", {}, lambda pipe: None)[0]
    assert log.record_once("2", "d", {}, lambda pipe: None)[0]


def test_a_write_that_fails_leaves_the_delivery_unclaimed_for_the_redelivery(redis_client):
    log = DeliveryLog(redis_client)
    redis_client.set("a-string", "x")
    with pytest.raises(redis.ResponseError):
        log.record_once("1", "d", {"run_id": "a"}, lambda pipe: pipe.rpush("a-string", "a"))
    assert redis_client.get(delivery_key("1", "d")) is None
    assert log.record_once("1", "d", {"run_id": "b"}, lambda pipe: pipe.rpush("started", "b"))[0]


def test_fifty_concurrent_claims_have_one_winner(redis_server, redis_client):
    winners = []
    barrier = threading.Barrier(50)

    def claim(n: int) -> None:
        log = DeliveryLog(redis_server.client())
        barrier.wait()
        first, record = log.record_once(
            "1", "same", {"run_id": f"r{n}"}, lambda pipe: pipe.incr("side-effects")
        )
        if first:
            winners.append(record["run_id"])

    threads = [threading.Thread(target=claim, args=(n,)) for n in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(winners) == 1 and redis_client.get("side-effects") == b"1"


def test_execution_names_follow_aws_rules():
    for delivery in ["82f638c0-00f1-11ea-8a5a-03fe5a4959a9", "x" * 100, "$(rm -rf /)", "ünïcode:;"]:
        name = execution_name("42", delivery)
        assert 1 <= len(name) <= 80
        assert all(c.isascii() and (c.isalnum() or c in "-_") for c in name)
    assert execution_name("1", "d") != execution_name("2", "d")
    assert execution_name("1", "d") == execution_name("1", "d")
