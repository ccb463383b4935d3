"""Shapes of adding hosts in a batch, named as OCP names them."""

from __future__ import annotations

from pydantic import Field, JsonValue, field_validator, model_validator

from obpilot.api.envelope import CamelModel
from obpilot.inventory.models import HostKind
from obpilot.inventory.schemas import CredentialIdField, credential_for_kind, host_address
from obpilot.tasks.schemas import SubmittedTaskOut

#: How many hosts one batch may add.
MAX_BATCH = 100


class HostBasicData(CamelModel):
    inner_ip_address: str = Field(min_length=1, max_length=64)
    serial_number: str | None = Field(
        default=None, max_length=128, description="Accepted for OCP's clients; not stored."
    )

    @field_validator("inner_ip_address")
    @classmethod
    def _is_address(cls, value: str) -> str:
        # `localhost` is how OCP's clients name the machine of a LOCAL host.
        return "127.0.0.1" if value == "localhost" else host_address(value)


class HostBatchCreate(CamelModel):
    host_basic_data_list: list[HostBasicData] = Field(min_length=1, max_length=MAX_BATCH)
    ssh_port: int = Field(default=22, ge=1, le=65535)
    kind: HostKind
    publish_ports: JsonValue = Field(
        default=None, description="Accepted for OCP's clients; obpilot publishes no ports."
    )
    idc_id: int = Field(ge=1, le=2**63 - 1)
    type_id: int = Field(ge=1, le=2**63 - 1)
    credential_id: CredentialIdField = None
    alias: str | None = Field(default=None, max_length=128)
    description: str | None = Field(default=None, max_length=256)

    @model_validator(mode="after")
    def _consistent(self) -> HostBatchCreate:
        addresses = [entry.inner_ip_address for entry in self.host_basic_data_list]
        repeated = sorted({address for address in addresses if addresses.count(address) > 1})
        if repeated:
            raise ValueError(f"hostBasicDataList names {', '.join(repeated)} more than once")
        self.credential_id = credential_for_kind(self.kind, self.credential_id)
        if self.kind != HostKind.LOCAL and self.credential_id is None:
            raise ValueError(f"a {self.kind} host needs credentialId (to log in over SSH)")
        return self


class HostBatchCreated(CamelModel):
    """OCP's `contents` (the task), plus what field clients read: the task's `id` and the
    new hosts' ids."""

    contents: list[SubmittedTaskOut]
    id: int
    host_ids: list[int]
