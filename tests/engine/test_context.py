"""The task context: OCP's Java-style string, its JSON shape, masking and encryption."""

from __future__ import annotations

import json

import pytest
from cryptography.fernet import Fernet

from obpilot.engine import Context
from obpilot.secretbox import SecretBox
from tests.support.engine_tasks import seed_context


def test_java_style_string_matches_the_seed() -> None:
    assert seed_context().java_string() == (
        "Context(parallelIdx=-1, stringMap={cluster_name=ob_upgrade, cluster_id=21, "
        "former_cluster_status=RUNNING}, listMap={server_ids=[5], zone_names=[zone1]})"
    )


def test_empty_context() -> None:
    assert Context().java_string() == "Context(parallelIdx=-1, stringMap={}, listMap={})"


def test_json_shape_and_parallel_flag() -> None:
    context = Context({"a": "1"}, {"b": ["x", "y"]}, parallel_idx=1)
    assert context.as_json() == {
        "listMap": {"b": ["x", "y"]},
        "parallel": True,
        "parallelIdx": 1,
        "stringMap": {"a": "1"},
    }


def test_secrets_are_masked_in_both_renderings() -> None:
    context = Context.of({"root_password": "s3cret", "user": "root"}, {"ssh_private_key": ["k"]})
    assert "s3cret" not in context.java_string()
    assert "root_password=******" in context.java_string()
    assert context.as_json()["stringMap"] == {"root_password": "******", "user": "root"}
    assert context.as_json()["listMap"] == {"ssh_private_key": ["******"]}


def test_secrets_are_stored_encrypted_and_read_back() -> None:
    box = SecretBox(Fernet.generate_key())
    context = Context.of({"root_password": "s3cret", "user": "root"})
    stored = context.dump(box)
    assert "s3cret" not in stored
    assert json.loads(stored)["stringMap"]["user"] == "root"
    loaded = Context.load(stored).decrypted(box)
    assert loaded.string_map["root_password"] == "s3cret"


def test_secrets_without_a_secret_box_are_refused() -> None:
    with pytest.raises(ValueError, match="root_password"):
        Context.of({"root_password": "x"}).dump(None)


def test_values_must_be_strings() -> None:
    with pytest.raises(TypeError):
        Context({"a": 1})  # type: ignore[dict-item]
    with pytest.raises(TypeError):
        Context(list_map={"a": "not a list"})
