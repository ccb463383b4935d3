"""Settings: environment variables `OBPILOT_*`, optionally a TOML file named by `OBPILOT_CONFIG`."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="OBPILOT_", extra="ignore")

    home: Path = Field(default=Path("./var"), description="State directory of this instance.")
    metadb_url: str | None = Field(
        default=None,
        description="SQLAlchemy async URL of the metadb; default: SQLite file in `home`.",
    )
    host: str = Field(default="127.0.0.1", description="Address the API server binds to.")
    port: int = Field(default=8080, ge=0, le=65535, description="Port the API server binds to.")
    advertised_address: str | None = Field(
        default=None,
        description="host:port this instance reports in the envelope's `server` field.",
    )
    log_format: Literal["console", "json"] = "console"
    log_level: str = "INFO"
    sqlite_busy_timeout_ms: int = Field(default=30_000, ge=0)
    admin_password: SecretStr | None = None
    secret_key: SecretStr | None = Field(
        default=None,
        description="Fernet key for stored secrets; default: HOME/secret.key, made on first use.",
    )
    lockout_attempts: int = Field(
        default=5, ge=1, description="Failed logins in a row that lock an account."
    )
    lockout_seconds: float = Field(
        default=600, gt=0, description="How long a locked account stays locked."
    )
    session_lifetime_seconds: int = Field(
        default=8 * 3600, ge=60, description="Lifetime of a console session cookie."
    )
    basic_auth_cache_seconds: float = Field(
        default=60,
        ge=0,
        description="How long a verified Basic credential skips the password hash (0: never).",
    )
    login_failures_per_address: int = Field(
        default=20,
        ge=1,
        description="Failed password logins from one source address, within lockout_seconds, "
        "after which that address's password logins are refused until the window passes.",
    )
    trusted_proxies: list[str] = Field(
        default_factory=list,
        description="Addresses of reverse proxies whose X-Forwarded-For names the client "
        "(empty: the connection's peer is the client).",
    )
    max_body_bytes: int = Field(
        default=1024 * 1024,
        ge=1024,
        description="Largest request body accepted by the API, refused before it is read.",
    )
    max_package_bytes: int = Field(
        default=2 * 1024**3,
        ge=1024,
        description="Largest software package upload (POST /api/v2/software-packages), "
        "streamed to disk, refused past this size.",
    )
    max_login_body_bytes: int = Field(
        default=4096, ge=256, description="Largest body accepted by POST /api/v2/iam/login."
    )
    header_read_timeout_seconds: float = Field(
        default=10,
        gt=0,
        description="A connection that has not sent a whole request head in this time is closed.",
    )
    streams_per_user: int = Field(
        default=8, ge=1, description="Task streams (SSE) one user may hold open at once."
    )
    streams_per_instance: int = Field(
        default=256, ge=1, description="Task streams (SSE) this instance serves at once."
    )

    engine_workers: int = Field(
        default=8, ge=0, le=1000, description="Subtasks this instance runs at once (0: none)."
    )
    engine_lease_seconds: float = Field(
        default=30, gt=0, description="A running subtask's lease; another instance reaps it after."
    )
    engine_heartbeat_seconds: float = Field(
        default=10, gt=0, description="How often leases are renewed (shorter than the lease)."
    )
    engine_poll_seconds: float = Field(
        default=2, gt=0, description="How often to look for work other instances made ready."
    )
    engine_cancel_grace_seconds: float = Field(
        default=5, ge=0, description="How long a cancelled handler may take to stop by itself."
    )
    engine_drain_seconds: float = Field(
        default=20, ge=0, description="On shutdown, how long running subtasks may take to end."
    )
    engine_executor: str | None = Field(
        default=None,
        description="This instance's name in tasks' `executor`; default: the server address. "
        "It must be unique among live instances sharing the metadb. Any instance on the "
        "same machine takes back at once the subtasks of an instance whose process ended, "
        "whatever its name; one restarted under the same name also takes back its previous "
        "boots' (after the machine itself restarted), instead of waiting for their leases.",
    )
    api_docs: bool = Field(
        default=False,
        description="Serve the interactive API pages /docs and /redoc. They load their "
        "scripts from a CDN into obpilot's origin, where the console's session cookie is "
        "valid, so they are off unless an admin turns them on; /openapi.json is always "
        "served (and committed as docs/openapi.json).",
    )
    extra_modules: str = Field(
        default="",
        description="Comma-separated modules whose `TEMPLATES` are registered at start.",
    )

    ssh_connect_timeout: float = Field(
        default=10, gt=0, description="Seconds to open an SSH session (TCP, key exchange, login)."
    )
    ssh_keepalive_seconds: float = Field(
        default=15, gt=0, description="SSH keepalive interval of pooled host connections."
    )
    ssh_max_sessions: int = Field(
        default=8, ge=1, le=100, description="Commands at once on one host's SSH connection."
    )
    host_python: str = Field(
        default="python3",
        min_length=1,
        description="Python 3.7+ interpreter on SSH hosts that runs obpilot's host agent.",
    )
    host_min_memory_available: int = Field(
        default=1024**3,
        ge=0,
        description="Bytes of MemAvailable a host needs to pass a new host's pre-check.",
    )
    host_min_free_disk: int = Field(
        default=2 * 1024**3,
        ge=0,
        description="Free bytes on / or the login's home a host needs to pass the pre-check.",
    )
    reconcile_interval_seconds: float = Field(
        default=30.0,
        ge=0,
        description="How often stored statuses are compared with the real processes (0: never).",
    )
    reconcile_max_age_seconds: float = Field(
        default=5.0,
        ge=0,
        description="GET of a cluster re-checks its processes when the last check is older.",
    )
    process_start_timeout: float = Field(
        default=120, gt=0, description="Seconds a server start may take until it answers SQL."
    )
    process_stop_grace: float = Field(
        default=60, ge=0, description="Seconds a clean stop (SIGUSR1) may take before SIGKILL."
    )
    process_kill_timeout: float = Field(
        default=30, gt=0, description="Seconds for a killed server to exit and free its port."
    )

    @model_validator(mode="after")
    def _heartbeat_within_lease(self) -> Settings:
        if self.engine_heartbeat_seconds >= self.engine_lease_seconds:
            raise ValueError("engine_heartbeat_seconds must be shorter than engine_lease_seconds")
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        config_file = os.environ.get("OBPILOT_CONFIG")
        if config_file:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=Path(config_file)))
        return tuple(sources)

    @property
    def resolved_metadb_url(self) -> str:
        if self.metadb_url:
            return self.metadb_url
        return f"sqlite+aiosqlite:///{(self.home / 'obpilot.db').resolve()}"

    @property
    def server_address(self) -> str:
        return self.advertised_address or f"{self.host}:{self.port}"

    @property
    def executor_name(self) -> str:
        return self.engine_executor or self.server_address
