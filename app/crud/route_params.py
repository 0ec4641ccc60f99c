"""The path, header and error declarations the generated routes share."""

from typing import Annotated

from fastapi import Header, Path

MAX_ID = 2**31 - 1
ItemId = Annotated[int, Path(ge=1, le=MAX_ID, description="The record's id")]
IfMatch = Annotated[
    str | None, Header(description="Write only if the record still has this ETag (else 412)")
]
IdempotencyKeyHeader = Annotated[
    str | None,
    Header(
        min_length=1,
        max_length=255,
        pattern=r"^[\x21-\x7e]+$",
        description="Retries with the same key and body return the first response (24 h)",
    ),
]
IfNoneMatch = Annotated[str | None, Header(description="304 when the ETag is unchanged")]
# 401 even on public reads: a token that is sent must be valid.
READ_ERRORS = (401,)
WRITE_ERRORS = (400, 401, 403, 404, 409, 412, 422)
