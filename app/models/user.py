from datetime import datetime

from pydantic import EmailStr, field_validator
from sqlmodel import Field, SQLModel

from app.core.db import UTCDateTime, utcnow
from app.core.security import new_token_family, password_fits_bcrypt
from app.crud.table import Timestamps, input_config


def _no_nul(text: str | None) -> str | None:
    if text is not None and "\x00" in text:
        raise ValueError("may not contain NUL characters")
    return text


def _lower(email: str | None) -> str | None:
    return email.lower() if email is not None else None


def _check_password(password: str) -> str:
    if not password_fits_bcrypt(password):
        raise ValueError("must be at most 72 bytes in UTF-8")
    return password


class UserBase(SQLModel):
    email: EmailStr = Field(max_length=255, schema_extra={"examples": ["ada@example.com"]})
    full_name: str | None = Field(
        default=None, max_length=255, schema_extra={"examples": ["Ada Lovelace"]}
    )

    _lower_email = field_validator("email")(_lower)
    _no_nul_name = field_validator("full_name")(_no_nul)


class User(UserBase, Timestamps, table=True):
    __tablename__ = "users"
    # SQLite would otherwise give a deleted user's id (the highest) to the next account, and
    # the deleted user's access tokens with it.
    __table_args__ = {"sqlite_autoincrement": True}

    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(max_length=255, unique=True)
    hashed_password: str
    is_active: bool = True
    is_superuser: bool = False
    # In every access token ("ver"); bumping it ends them all (password change, logout-all).
    token_version: int = Field(default=0, sa_column_kwargs={"server_default": "0"})


class UserCreate(UserBase):
    model_config = input_config()

    password: str = Field(min_length=8, schema_extra={"examples": ["correct-horse-battery-staple"]})

    _check_password = field_validator("password")(_check_password)


class UserUpdateBase(SQLModel):
    """Explicit null is refused for non-nullable fields: their type has no None."""

    model_config = input_config()

    email: EmailStr = Field(
        default=None, max_length=255, schema_extra={"examples": ["ada@example.com"]}
    )
    full_name: str | None = Field(
        default=None, max_length=255, schema_extra={"examples": ["Ada Lovelace"]}
    )

    _lower_email = field_validator("email")(_lower)
    _no_nul_name = field_validator("full_name")(_no_nul)


class UserUpdateMe(UserUpdateBase):
    # Needed to change the login email: a stolen access token must not take the account over.
    current_password: str | None = Field(default=None, max_length=1024)


class UserUpdate(UserUpdateBase):
    is_active: bool = Field(default=None)
    is_superuser: bool = Field(default=None)


class UserProfile(SQLModel):
    """What others see of a user where a resource nests one (a post's owner): never the email."""

    id: int
    full_name: str | None = Field(schema_extra={"examples": ["Ada Lovelace"]})


class UserPublic(UserBase):
    id: int
    is_active: bool
    is_superuser: bool = Field(schema_extra={"examples": [False]})
    created_at: datetime
    updated_at: datetime


class PasswordChange(SQLModel):
    model_config = input_config()

    current_password: str
    new_password: str = Field(min_length=8)

    _check_password = field_validator("new_password")(_check_password)


class RefreshToken(SQLModel, table=True):
    """One refresh token; a login's tokens form a family, rotated one into the next.

    Revoked rows stay until their family ends: presenting one again is reuse, and revokes the
    family (app/services/accounts.py). scripts/purge.py deletes them after that.
    """

    __tablename__ = "refresh_tokens"

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="users.id", ondelete="CASCADE", index=True)
    token_digest: str = Field(max_length=64, unique=True)
    expires_at: datetime = Field(sa_type=UTCDateTime)  # never past family_expires_at
    revoked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    family: str = Field(default_factory=new_token_family, max_length=32, index=True)
    # The login's absolute end (REFRESH_TOKEN_MAX_DAYS); a row written without one is over.
    family_expires_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    # The user's token_version at login: a bump ends the family even mid-rotation.
    token_version: int = Field(default=0, sa_column_kwargs={"server_default": "0"})


class TokenPair(SQLModel):
    access_token: str = Field(
        schema_extra={"examples": ["eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiI0MiJ9.c2ln"]}
    )
    refresh_token: str = Field(schema_extra={"examples": ["kq3Vv0Yc4Z9x2bNw7LrT1sHd8mFjPa6E"]})
    token_type: str = "bearer"
    expires_in: int = Field(schema_extra={"examples": [1800]})  # seconds


class StreamTicket(SQLModel):
    ticket: str = Field(
        schema_extra={"examples": ["eyJhbGciOiJIUzI1NiJ9.eyJ0eXBlIjoic3RyZWFtIn0.c2ln"]}
    )
    expires_in: int = Field(schema_extra={"examples": [60]})  # seconds


class LoginTokens(TokenPair):
    # Also set as an HttpOnly cookie; clients that keep no cookies send it back in the
    # X-Device-Token header of their next login (app/services/devices.py).
    device_token: str


class RefreshRequest(SQLModel):
    model_config = input_config()

    refresh_token: str = Field(max_length=256)
