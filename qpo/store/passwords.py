"""Passwords for the dashboard's login, kept as argon2id hashes (argon2-cffi, RFC 9106's
recommended parameters): the store never holds, logs or shows a password in clear, and no error
message quotes one."""
from __future__ import annotations

from qpo.errors import StoreError

MIN_LENGTH = 8
MAX_LENGTH = 1024


def _hasher():
    from argon2 import PasswordHasher

    return PasswordHasher()


def check_password(password: object) -> str:
    """The password itself, or a StoreError that says what is valid without quoting it."""
    if not isinstance(password, str):
        raise StoreError(f"a password must be text, got a {type(password).__name__}")
    if len(password) < MIN_LENGTH:
        raise StoreError(f"a password must have at least {MIN_LENGTH} characters (this one has {len(password)})")
    if len(password) > MAX_LENGTH:
        raise StoreError(f"a password must have at most {MAX_LENGTH} characters (this one has {len(password)})")
    if "\x00" in password:
        raise StoreError("a password must not contain a NUL character")
    if any("\ud800" <= c <= "\udfff" for c in password):
        raise StoreError("a password must not contain a lone surrogate (text that is not valid Unicode)")
    return password


def hash_password(password: str) -> str:
    """An argon2id hash of ``password`` (salted: two hashes of one password differ)."""
    return _hasher().hash(check_password(password))


def verify_password(password_hash: str | None, password: object) -> bool:
    """Whether ``password`` is the one ``password_hash`` was made from. False for a user without a
    password, a password that is not text, or a hash that is not argon2's."""
    if not password_hash or not isinstance(password, str):
        return False
    from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

    try:
        return bool(_hasher().verify(password_hash, password))
    except (VerifyMismatchError, VerificationError, InvalidHashError, UnicodeEncodeError):
        return False
