"""Findings 12 and 13: a created cluster kept an unsalted SHA-256 of its request body, root's
password included, so the metadb alone let the password be guessed; and clientToken was one
namespace for every user (tests/lifecycle/test_routes.py shows another creator's token is
never answered with the first creator's cluster or task)."""

from __future__ import annotations

import hashlib
import json

from cryptography.fernet import Fernet

from obpilot.lifecycle.schemas import ClusterCreate
from obpilot.lifecycle.service import request_digest
from obpilot.secretbox import SecretBox


def create_body(**extra: object) -> ClusterCreate:
    return ClusterCreate.model_validate(
        {
            "name": "c1",
            "rpmName": "pylibseekdb",
            "password": "Guess-me-1",
            "zones": [{"name": "zone1", "servers": [{"hostId": 1, "sqlPort": 2881}]}],
            **extra,
        }
    )


def test_the_digest_of_a_request_needs_the_secret_key() -> None:
    body = create_body(clientToken="t-1")
    box = SecretBox(Fernet.generate_key())
    digest = request_digest(body, box)
    assert digest is not None
    assert digest == request_digest(body, box)  # the same request is recognised
    assert digest != request_digest(create_body(clientToken="t-1", password="Guess-me-2"), box)
    # Guessing passwords against the metadb's digest fails without the key:
    wire = body.model_dump(mode="json", by_alias=True, exclude={"client_token"})
    plain = hashlib.sha256(json.dumps(wire, sort_keys=True).encode()).hexdigest()
    assert digest != plain
    assert digest != request_digest(body, SecretBox(Fernet.generate_key()))


def test_a_request_without_a_client_token_is_not_digested() -> None:
    assert request_digest(create_body(), SecretBox(Fernet.generate_key())) is None
