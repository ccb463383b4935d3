"""Every table of the metadb: importing this module puts each domain's models on
`Base.metadata`, so that foreign keys between domains resolve, Alembic's autogenerate sees
the whole schema, and the drift test compares it with the migrations. The composition
roots (the app, the CLI) import it; `db/` itself knows no domain."""

from obpilot.compute import models as compute_models  # noqa: F401
from obpilot.credentials import models as credentials_models  # noqa: F401
from obpilot.db.base import Base
from obpilot.engine import models as engine_models  # noqa: F401
from obpilot.iam import models as iam_models  # noqa: F401
from obpilot.inventory import models as inventory_models  # noqa: F401
from obpilot.packages import models as packages_models  # noqa: F401

metadata = Base.metadata
