"""The pure part of two-factor sign-in: TOTP codes with pyotp, recovery codes and their hashes,
and the QR code (segno) an authenticator app scans. No Flask, no database."""

from __future__ import annotations

import hashlib
import hmac
import html
import re
import secrets
from collections.abc import Iterable

import pyotp
import segno

STEP_SECONDS = 30
DRIFT_STEPS = 1  # the code of the step before and after is accepted too (clock drift)
ISSUER = "Merchant key portal"
RECOVERY_CODE_COUNT = 10
# 10 characters from 32 (no 0/o, 1/l/i look-alikes): 50 random bits each, shown as xxxxx-xxxxx.
RECOVERY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"
RECOVERY_LENGTH = 10
_SEPARATORS = re.compile(r"[\s-]+")
_SIX_DIGITS = re.compile(r"^[0-9]{6}$")


def new_secret() -> str:
    """A new random TOTP secret: 32 base32 characters (160 bits, as RFC 4226 recommends)."""
    return pyotp.random_base32()


def grouped(secret: str) -> str:
    """The secret in groups of four, for people who type it into their app."""
    return " ".join(secret[index : index + 4] for index in range(0, len(secret), 4))


def provisioning_uri(secret: str, account: str) -> str:
    """The otpauth:// URI an authenticator app reads from the QR code."""
    return pyotp.TOTP(secret).provisioning_uri(name=account, issuer_name=ISSUER)


def qr_svg(uri: str, title: str) -> str:
    """The QR code of `uri` as an inline <svg> (no script, no image request: the CSP allows it)."""
    svg = segno.make(uri, error="m").svg_inline(
        scale=4, border=4, dark="#000", light="#fff", title=title, omitsize=True
    )
    return svg.replace("<svg ", f'<svg role="img" aria-label="{html.escape(title)}" ', 1)


def step_at(now: float) -> int:
    """The TOTP time step (counter) of a moment in Unix seconds."""
    return int(now // STEP_SECONDS)


def normalize(code: str) -> str:
    """A typed code without spaces or hyphens, lower-case (recovery codes are)."""
    return _SEPARATORS.sub("", code).lower()


def is_totp_code(code: str) -> bool:
    """Whether a normalised code has the shape of an authenticator code (six digits)."""
    return bool(_SIX_DIGITS.match(code))


def matching_step(secret: str, code: str, now: float, after: int | None) -> int | None:
    """The time step, within the drift allowed around `now`, whose code is `code` and that is
    later than `after` (the last step used): None if there is none (wrong, or already used)."""
    if not is_totp_code(code):
        return None
    otp = pyotp.TOTP(secret)
    current = step_at(now)
    for step in range(current + DRIFT_STEPS, current - DRIFT_STEPS - 1, -1):
        if after is not None and step <= after:
            continue
        if hmac.compare_digest(otp.generate_otp(step), code):
            return step
    return None


def code_at(secret: str, now: float) -> str:
    """The code an authenticator app shows at `now` (tests and demos)."""
    return pyotp.TOTP(secret).generate_otp(step_at(now))


def new_recovery_codes(count: int = RECOVERY_CODE_COUNT) -> list[str]:
    """`count` random recovery codes, as shown to the member (xxxxx-xxxxx)."""
    codes = []
    for _ in range(count):
        raw = "".join(secrets.choice(RECOVERY_ALPHABET) for _ in range(RECOVERY_LENGTH))
        codes.append(f"{raw[:5]}-{raw[5:]}")
    return codes


def hash_recovery_code(code: str, key: bytes) -> str:
    """The stored form of a recovery code: HMAC-SHA256 under the server's secret `key`.

    A code holds 50 random bits, so a slow password hash adds nothing against guessing, and a
    keyed hash lets the database find a code by one indexed lookup; without the key, a copy of
    the database does not let anyone test guesses offline.
    """
    message = b"recovery-code:" + normalize(code).encode("utf-8")
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def hashes(codes: Iterable[str], key: bytes) -> list[str]:
    """The stored forms of several codes."""
    return [hash_recovery_code(code, key) for code in codes]
