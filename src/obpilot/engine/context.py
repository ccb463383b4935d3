"""A task's context, OCP style: `stringMap` (str -> str), `listMap` (str -> [str]) and
`parallelIdx` (-1 unless the subtask is one branch of a parallel fan-out).

It renders as OCP's Java-style string (`Context(parallelIdx=-1, stringMap={k=v}, listMap=
{k=[a, b]})`) and as JSON; both mask the values of keys that look secret. Secret values are
stored encrypted (see `encrypt_secrets`)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

MASK = "******"
# Keys whose values are never shown: passwords, secrets, tokens, credentials, keys.
SENSITIVE_KEY = re.compile(
    r"password|passwd|secret|token|credential|private_?key|access_?key", re.IGNORECASE
)


def is_sensitive(key: str) -> bool:
    return SENSITIVE_KEY.search(key) is not None


class Cipher(Protocol):
    def encrypt(self, plaintext: str) -> str: ...

    def decrypt(self, token: str) -> str: ...


def _java_map(items: Iterable[tuple[str, str]]) -> str:
    return "{" + ", ".join(f"{key}={value}" for key, value in items) + "}"


@dataclass(frozen=True)
class Context:
    string_map: Mapping[str, str] = field(default_factory=dict)
    list_map: Mapping[str, Sequence[str]] = field(default_factory=dict)
    parallel_idx: int = -1

    def __post_init__(self) -> None:
        for key, value in self.string_map.items():
            if not isinstance(key, str) or not isinstance(value, str):
                raise TypeError(f"stringMap entries must be str -> str, got {key!r}: {value!r}")
        for key, values in self.list_map.items():
            if not isinstance(key, str) or isinstance(values, str | bytes):
                raise TypeError(f"listMap entries must be str -> [str], got {key!r}: {values!r}")
            if not all(isinstance(value, str) for value in values):
                raise TypeError(f"listMap[{key!r}] must hold strings only, got {values!r}")

    @classmethod
    def of(
        cls,
        strings: Mapping[str, object] | None = None,
        lists: Mapping[str, Iterable[object]] | None = None,
    ) -> Context:
        """Builds a context, turning values into strings (ids are numbers in callers' hands)."""
        return cls(
            string_map={key: str(value) for key, value in (strings or {}).items()},
            list_map={key: [str(v) for v in values] for key, values in (lists or {}).items()},
        )

    @property
    def parallel(self) -> bool:
        return self.parallel_idx != -1

    def merged(self, other: Context) -> Context:
        """`other`'s entries win; the parallel index stays ours."""
        return Context(
            {**self.string_map, **other.string_map},
            {**self.list_map, **other.list_map},
            self.parallel_idx,
        )

    # -- rendering (masked) --------------------------------------------------

    def masked_strings(self) -> dict[str, str]:
        return {k: MASK if is_sensitive(k) else v for k, v in self.string_map.items()}

    def masked_lists(self) -> dict[str, list[str]]:
        return {
            k: [MASK] * len(v) if is_sensitive(k) else list(v) for k, v in self.list_map.items()
        }

    def java_string(self) -> str:
        """OCP's rendering, e.g. `Context(parallelIdx=-1, stringMap={a=1}, listMap={b=[x, y]})`."""
        lists = (
            (key, "[" + ", ".join(values) + "]") for key, values in self.masked_lists().items()
        )
        return (
            f"Context(parallelIdx={self.parallel_idx}, "
            f"stringMap={_java_map(self.masked_strings().items())}, "
            f"listMap={_java_map(lists)})"
        )

    def as_json(self) -> dict[str, Any]:
        """OCP's JSON shape of a context (shape B)."""
        return {
            "listMap": self.masked_lists(),
            "parallel": self.parallel,
            "parallelIdx": self.parallel_idx,
            "stringMap": self.masked_strings(),
        }

    def __repr__(self) -> str:
        return self.java_string()

    # -- storage (secrets encrypted) -------------------------------------------

    def dump(self, cipher: Cipher | None) -> str:
        """The stored form: sensitive values encrypted with `cipher`."""
        secret_keys = [k for k in self.string_map if is_sensitive(k)] + [
            k for k in self.list_map if is_sensitive(k)
        ]
        if secret_keys and cipher is None:
            raise ValueError(
                f"context keys {secret_keys} hold secrets; pass a secret box to store them"
            )

        def protect(key: str, value: str) -> str:
            return cipher.encrypt(value) if cipher is not None and is_sensitive(key) else value

        return json.dumps(
            {
                "stringMap": {k: protect(k, v) for k, v in self.string_map.items()},
                "listMap": {k: [protect(k, v) for v in vs] for k, vs in self.list_map.items()},
            },
            separators=(",", ":"),
        )

    @classmethod
    def load(cls, text: str | None, parallel_idx: int = -1) -> Context:
        """The stored form as stored (secret values still encrypted)."""
        if not text:
            return cls(parallel_idx=parallel_idx)
        data = json.loads(text)
        return cls(dict(data.get("stringMap", {})), dict(data.get("listMap", {})), parallel_idx)

    def decrypted(self, cipher: Cipher | None) -> Context:
        if cipher is None:
            return self
        return Context(
            {k: cipher.decrypt(v) if is_sensitive(k) else v for k, v in self.string_map.items()},
            {
                k: [cipher.decrypt(v) for v in vs] if is_sensitive(k) else list(vs)
                for k, vs in self.list_map.items()
            },
            self.parallel_idx,
        )

    def secret_values(self) -> list[str]:
        """Plain values of sensitive keys (to mask them in log lines)."""
        values = [v for k, v in self.string_map.items() if is_sensitive(k)]
        for key, items in self.list_map.items():
            if is_sensitive(key):
                values.extend(items)
        return [v for v in values if v]
