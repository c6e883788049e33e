"""Customer-facing complaint references: short, unambiguous, with a check character.

Crockford's base32 alphabet (no I, L, O, U: nothing to misread) and a Luhn mod 32 check
character (python-stdnum), which catches every single-character slip and most swaps of
neighbouring characters when a customer reads the reference back over the phone.
"""

from __future__ import annotations

import hashlib

from stdnum import luhn

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
BODY_LENGTH = 10  # 50 bits: collisions are rare and resolved by `candidate(attempt=n)`


def candidate(prefix: str, complaint_id: str, attempt: int = 0) -> str:
    """The reference for a complaint id; derived from the id so every replay agrees."""
    seed = complaint_id if attempt == 0 else f"{complaint_id}#{attempt}"
    number = int.from_bytes(hashlib.sha256(seed.encode("utf-8")).digest()[:8], "big")
    body = "".join(ALPHABET[(number >> (5 * i)) & 31] for i in range(BODY_LENGTH))
    check = luhn.calc_check_digit(body, alphabet=ALPHABET)
    return f"{prefix}-{body[:5]}-{body[5:]}-{check}"


def is_valid(reference: str) -> bool:
    """True when a typed reference is well formed and its check character agrees."""
    parts = reference.strip().upper().split("-")
    if len(parts) != 4 or len(parts[1]) + len(parts[2]) != BODY_LENGTH or len(parts[3]) != 1:
        return False
    code = parts[1] + parts[2] + parts[3]
    if any(ch not in ALPHABET for ch in code):
        return False
    return bool(luhn.is_valid(code, alphabet=ALPHABET))
