"""Run Alembic commands against the packaged migrations without an alembic.ini.

DATABASE_URL=sqlite:///./dev.db python -m receptionist.store.migrations upgrade head
DATABASE_URL=... python -m receptionist.store.migrations revision -m "add x" --autogenerate
"""

from __future__ import annotations

import sys

from alembic.config import CommandLine

from receptionist.store.db import alembic_config


def main(argv: list[str] | None = None) -> None:
    cli = CommandLine(prog="python -m receptionist.store.migrations")
    options = cli.parser.parse_args(argv if argv is not None else sys.argv[1:])
    if not hasattr(options, "cmd"):
        cli.parser.error("too few arguments")
    cli.run_cmd(alembic_config(), options)


if __name__ == "__main__":
    main()
