"""The small HTTP pieces the generated routes share."""

from fastapi import Request, Response

from app.core.database import Database

JSON = "application/json"


def database(request: Request) -> Database:
    db: Database = request.app.state.db
    return db


def json_response(body: bytes, status_code: int = 200, etag: str | None = None) -> Response:
    headers = {"ETag": etag} if etag else None
    return Response(body, status_code=status_code, media_type=JSON, headers=headers)
