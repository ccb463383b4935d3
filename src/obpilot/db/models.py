"""Imports every domain's models so that `Base.metadata` knows all tables (Alembic's
autogenerate and the migration drift test read it)."""

from obpilot.credentials import models as credentials_models
from obpilot.engine import models as engine_models
from obpilot.iam import models as iam_models
from obpilot.inventory import models as inventory_models

__all__ = ["credentials_models", "engine_models", "iam_models", "inventory_models"]
