"""The only package that talks to Postgres.

The trio-asyncio bridge, the comment store, the bus, viewer counts, moderation
SQL, migrations and the embedded cluster.
"""
