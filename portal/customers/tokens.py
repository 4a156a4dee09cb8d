"""Shopper token format: opaque random strings with a checksum, stored as HMAC hashes.

Pure Python (no Flask): access (`cat_`), refresh (`crt_`) and password-reset (`crs_`) tokens are
a prefix, 40 random base62 characters and the 6-character CRC32 checksum of the random part, so a
mistyped or made-up token is refused without touching the database.
"""

from __future__ import annotations

import hmac
import secrets

from portal.keys.tokens import BASE62, CHECKSUM_LENGTH, checksum, hash_token

ACCESS = "access"
REFRESH = "refresh"
RESET = "reset"
PREFIXES = {ACCESS: "cat_", REFRESH: "crt_", RESET: "crs_"}
RANDOM_LENGTH = 40
TOKEN_LENGTH = 4 + RANDOM_LENGTH + CHECKSUM_LENGTH
CODE_DIGITS = 6

_BASE62_CHARS = frozenset(BASE62)


def generate(kind: str) -> str:
    """A new random token of this kind."""
    random_part = "".join(secrets.choice(BASE62) for _ in range(RANDOM_LENGTH))
    return PREFIXES[kind] + random_part + checksum(random_part)


def well_formed(kind: str, token: object) -> bool:
    """Whether `token` has the shape and checksum of a token of this kind (no database)."""
    if not isinstance(token, str) or len(token) != TOKEN_LENGTH:
        return False
    if not token.startswith(PREFIXES[kind]) or not _BASE62_CHARS.issuperset(token[4:]):
        return False
    random_part, token_checksum = token[4 : 4 + RANDOM_LENGTH], token[4 + RANDOM_LENGTH :]
    return hmac.compare_digest(checksum(random_part), token_checksum)


def digest(token: str, pepper: bytes) -> str:
    """The stored form of a token: hex HMAC-SHA256 under the pepper."""
    return hash_token(token, pepper)


def generate_code() -> str:
    """A one-time sign-in code: 6 random digits."""
    return f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"


def code_digest(customer_id: int, code: str, pepper: bytes) -> str:
    """The stored form of a one-time code, bound to its customer (6 digits alone are guessable
    offline from a leaked table, so the hash covers the customer too)."""
    return hash_token(f"customer-code:{customer_id}:{code}", pepper)
