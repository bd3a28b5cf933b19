"""The post-call pipeline no longer stops at `costed`: costing moves a call straight on to
`exotel_details` (the `costed` step did nothing but that move). A call a worker left at `costed`
before this change is moved on here, or no worker would claim it again.

Revision ID: 0007_no_costed_stage
Revises: 0006_server_checkpoints
Create Date: 2026-12-07 15:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007_no_costed_stage"
down_revision: str | Sequence[str] | None = "0006_server_checkpoints"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(sa.text("UPDATE call_details SET stage = 'exotel_details' WHERE stage = 'costed'"))


def downgrade() -> None:
    # Nothing to undo: `exotel_details` is a stage the older code runs as well.
    pass
