"""API key format: generation, checksum, parsing, hashing and masking."""

from __future__ import annotations

import hmac
import secrets
import zlib
from dataclasses import dataclass

KEY_TYPES = ("publishable", "secret")
MODES = ("live", "test")
TYPE_PREFIX = {"publishable": "pk", "secret": "sk"}

BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
RANDOM_LENGTH = 32
CHECKSUM_LENGTH = 6
PREFIX_LENGTH = len("sk_live_")
TOKEN_LENGTH = PREFIX_LENGTH + RANDOM_LENGTH + CHECKSUM_LENGTH

_BASE62_CHARS = frozenset(BASE62)
_PREFIXES: dict[str, tuple[str, str]] = {
    f"{TYPE_PREFIX[key_type]}_{mode}_": (key_type, mode) for key_type in KEY_TYPES for mode in MODES
}
_CHECKSUM_END = PREFIX_LENGTH + RANDOM_LENGTH


@dataclass(frozen=True, slots=True)
class ParsedToken:
    """The parts of a well-formed API key."""

    key_type: str
    mode: str
    random_part: str
    checksum: str

    @property
    def prefix(self) -> str:
        """The visible prefix, e.g. "sk_live_"."""
        return f"{TYPE_PREFIX[self.key_type]}_{self.mode}_"


def checksum(random_part: str) -> str:
    """Return the CRC32 of the random part as 6 base62 characters."""
    value = zlib.crc32(random_part.encode("ascii"))
    digits = []
    while value:
        value, remainder = divmod(value, 62)
        digits.append(BASE62[remainder])
    # 62**6 > 2**32, so every CRC32 fits in CHECKSUM_LENGTH digits.
    return "".join(reversed(digits)).rjust(CHECKSUM_LENGTH, "0")


def generate_token(key_type: str, mode: str = "live") -> str:
    """Return a new random key of the given type and mode."""
    if key_type not in TYPE_PREFIX:
        raise ValueError(f"Unknown key type {key_type!r}; expected one of {KEY_TYPES}.")
    if mode not in MODES:
        raise ValueError(f"Unknown mode {mode!r}; expected one of {MODES}.")
    random_part = "".join(secrets.choice(BASE62) for _ in range(RANDOM_LENGTH))
    return f"{TYPE_PREFIX[key_type]}_{mode}_{random_part}{checksum(random_part)}"


def parse_token(token: str) -> ParsedToken | None:
    """Return the parts of a well-formed key, or None if it is malformed or mistyped."""
    if not isinstance(token, str) or len(token) != TOKEN_LENGTH:
        return None
    kind = _PREFIXES.get(token[:PREFIX_LENGTH])
    if kind is None:
        return None
    random_part = token[PREFIX_LENGTH:_CHECKSUM_END]
    token_checksum = token[_CHECKSUM_END:]
    if not _BASE62_CHARS.issuperset(token[PREFIX_LENGTH:]):
        return None
    if checksum(random_part) != token_checksum:
        return None
    return ParsedToken(kind[0], kind[1], random_part, token_checksum)


def hash_token(token: str, pepper: bytes) -> str:
    """Return the hex HMAC-SHA256 of the key under the pepper, as stored in the database."""
    return hmac.digest(pepper, token.encode("utf-8"), "sha256").hex()


def mask_token(prefix: str, last4: str) -> str:
    """Return the displayable form of a key, e.g. "sk_live_…a1B2"."""
    return f"{prefix}\u2026{last4}"


def token_prefix(token: str) -> str:
    """Return the type-and-mode prefix of a key, e.g. "sk_live_"."""
    return token[:PREFIX_LENGTH]


def token_last4(token: str) -> str:
    """Return the last 4 characters of a key."""
    return token[-4:]
