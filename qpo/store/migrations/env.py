"""Alembic environment: runs on the connection qpo hands over (or on sqlalchemy.url)."""
from alembic import context
from sqlalchemy import create_engine

from qpo.errors import StoreError
from qpo.store.models import Base

config = context.config
target_metadata = Base.metadata


def run() -> None:
    connection = config.attributes.get("connection")
    if connection is None:  # invoked by the alembic CLI
        url = config.get_main_option("sqlalchemy.url")
        if url is None:
            raise StoreError("alembic needs a database: set sqlalchemy.url in its config (qpo hands over a "
                             "connection when it migrates)")
        engine = create_engine(url)
        with engine.begin() as connection:
            context.configure(connection=connection, target_metadata=target_metadata,
                              render_as_batch=True)
            context.run_migrations()
        return
    context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
    context.run_migrations()


if context.is_offline_mode():
    context.configure(url=config.get_main_option("sqlalchemy.url"), target_metadata=target_metadata,
                      literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    run()
