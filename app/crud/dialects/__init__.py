"""Frontend frameworks' REST dialects: extra mounts of every generated resource.

`/api/compat/json-server` (react-admin's `ra-data-json-server`, refine's `@refinedev/simple-rest`)
and `/api/compat/simple-rest` (react-admin's `ra-data-simple-rest`). A dialect only
translates its list query into the `/api/v1` one, which the same `Listing` validates, plans
and reads, and writes the page as its provider reads it: a bare JSON array, the total in a
header. Gets and writes run the generic routes' own code, with write bodies that may carry
the record's read-only fields (react-admin's edit form sends the whole record back).
"""

from app.crud.dialects import json_server, simple_rest
from app.crud.dialects.routes import Dialect, DialectRoutes

DIALECTS = tuple(
    Dialect(
        name=module.NAME,
        description=module.DESCRIPTION,
        translate=module.translate,
        embedded=module.embedded,
        headers=module.headers,
        header_docs=module.HEADER_DOCS,
        parameters=module.parameters,
    )
    for module in (json_server, simple_rest)
)

__all__ = ["DIALECTS", "Dialect", "DialectRoutes"]
