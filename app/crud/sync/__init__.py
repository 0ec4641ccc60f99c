"""Delta sync and the live change feed of every generated resource (docs/sync.md).

`schema` (stamps, tombstones, triggers), `token` (sync tokens), `statements` and `changes`
(reading the feed), `live` (the worker's listener and streams), `routes` (`/changes`,
`/events`), `migration` (the Alembic operation that adds a table's triggers).
"""
