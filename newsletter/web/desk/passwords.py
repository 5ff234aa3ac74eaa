"""Editors' passwords hashed with argon2id (``argon2-cffi``'s defaults, RFC 9106's low-memory
profile): the one module that imports argon2."""

from __future__ import annotations

import argon2
import argon2.exceptions

from newsletter.errors import EditorError

MIN_LENGTH = 12
MAX_LENGTH = 256  # a cap on what a form may make us hash

_HASHER = argon2.PasswordHasher()
# verified against when the address has no account (or no password yet), so a wrong address
# takes as long as a wrong password and the answer's timing tells nobody which addresses exist
_DUMMY = _HASHER.hash("no account has this password")


def check_new_password(password: str, again: str) -> None:
    """``EditorError`` unless the two match and the password is long enough."""
    if password != again:
        raise EditorError("the two passwords differ", hint="Type the same password twice.")
    if len(password) < MIN_LENGTH:
        raise EditorError(
            f"a password needs at least {MIN_LENGTH} characters",
            hint="A few unrelated words make a long password that is easy to type.",
        )
    if len(password) > MAX_LENGTH:
        raise EditorError(f"a password has at most {MAX_LENGTH} characters")


def hash_password(password: str) -> str:
    return _HASHER.hash(password)


def verify_password(stored: str | None, password: str) -> bool:
    """Whether ``password`` is the one ``stored`` hashes (None: no account, or no password
    yet; the same work is done, and the answer is no)."""
    if len(password) > MAX_LENGTH:
        password = password[:MAX_LENGTH] + "\0"  # hashed all the same, and never matches
    try:
        return _HASHER.verify(stored or _DUMMY, password) and stored is not None
    except (argon2.exceptions.VerificationError, argon2.exceptions.InvalidHashError):
        return False


def needs_rehash(stored: str) -> bool:
    """Whether a hash was made with weaker parameters than today's (rehash it at sign-in)."""
    return _HASHER.check_needs_rehash(stored)
