"""Cache lookup, scopes, LRU eviction and retention (statemachines/caches.py), and the step declarations."""

from __future__ import annotations

import pytest

from statemachines.blob_store import open_blob_store
from statemachines.caches import CacheStore, Scope
from statemachines.contract import check_pipeline
from statemachines.step_outputs import parse_step_outputs


def test_lookup_lru_eviction_and_retention(redis_client, blob_settings, tmp_path):
    caches = CacheStore(redis_client, open_blob_store(blob_settings))
    trusted, fork = Scope("octo/app", True), Scope("octo/app", False)
    archive = tmp_path / "c.tar"
    archive.write_bytes(b"t" * 100)
    caches.save(trusted, "pip-aaa", archive, 100, 1000)
    caches.save(trusted, "pip-bbb", archive, 100, 1000)
    caches.save(fork, "pip-ccc", archive, 100, 1000)

    assert caches.find(trusted, "pip-aaa").exact
    assert caches.find(trusted, "pip-zzz", ("npm-", "pip-")).key == "pip-bbb"  # the newest of the prefix
    assert caches.find(trusted, "pip-ccc") is None  # the untrusted side is another scope
    assert caches.find(Scope("octo/other", True), "pip-aaa") is None
    caches.fetch(trusted, caches.find(trusted, "pip-aaa"), tmp_path / "out.tar")  # aaa is now the most recent
    assert (tmp_path / "out.tar").read_bytes() == b"t" * 100

    assert caches.save(trusted, "pip-ddd", archive, 100, 250) == ["pip-bbb"]  # least recently used goes
    assert caches.find(trusted, "pip-bbb") is None and caches.find(trusted, "pip-aaa") is not None
    assert caches.usage() == {"entries": 3, "bytes": 300}

    assert caches.trim(retention_days=1) == 0
    assert caches.trim(retention_days=1, now=10**11) == 3
    assert caches.usage() == {"entries": 0, "bytes": 0}
    assert list(caches.store.list("caches/")) == []


@pytest.mark.parametrize(
    ("params", "said"),
    [
        ({"cache": {"key": "pip-{env:SECRET}", "paths": [".venv"]}}, "unknown placeholder {env:SECRET}"),
        ({"cache": {"key": "pip", "paths": []}}, "'cache.paths' must name at least one path"),
        ({"cache": {"key": "pip", "paths": ["../up"]}}, "without '..'"),
        ({"cache": {"key": "pip", "paths": ["/etc"]}}, "relative to the work tree"),
        ({"cache": {"key": "pip", "paths": [".venv"], "extra": 1}}, "must be an object of key"),
        ({"needs": "build"}, "'needs' must be a list"),
        ({"needs": ["$(rm)"]}, "'needs' entry"),
        ({"artifacts": [1]}, "'artifacts' must be a list"),
    ],
)
def test_bad_declarations_are_named(params, said):
    with pytest.raises(ValueError, match=said.replace("(", r"\(").replace(")", r"\)")):
        parse_step_outputs(params)
    state = {
        "Type": "Task", "Resource": "${activity:build}", "HeartbeatSeconds": 60, "TimeoutSeconds": 600,
        "Retry": [{"ErrorEquals": ["States.HeartbeatTimeout"]}], "End": True,
        "Parameters": {"step": "build", "commands": ["make"], "run.$": "$$.Execution.Input", **params},
    }  # fmt: skip
    problems = check_pipeline({"StartAt": "B", "States": {"B": state}})
    assert any(said in problem for problem in problems), problems
