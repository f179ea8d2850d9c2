"""The reporter's tokens: random, handed out once, stored only as their sha256 on the case.

Two may be live at once: the tracking token returned with the report (`Case.tracking_token_hash`, replaced when
the same client replays its report) and the token put in the link of the "closed" SMS (`Case.sms_token_hash`,
written by gridmgmt.outbox with that SMS; a later "closed" SMS replaces it). Either lets its holder follow the
case, rate it or say it is not fixed (gridmgmt.api.public); nothing derives one from the code or the SECRET_KEY,
and a database reader cannot use a hash.
"""

import hashlib
import secrets

from django.utils.crypto import constant_time_compare

from gridmgmt.models import Case

TOKEN_MAX = 128  # longer input is no token of ours (and is not hashed)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def token_new() -> tuple[str, str]:
    """A new random token and its hash."""
    token = secrets.token_urlsafe(24)
    return token, token_hash(token)


def tracking_token_issue(*, case: Case) -> str:
    """A new tracking token for the case (replacing any earlier one): returned once, stored hashed."""
    token, digest = token_new()
    case.tracking_token_hash = digest
    Case.objects.filter(pk=case.pk).update(tracking_token_hash=digest)
    return token


def sms_token_issue(*, case: Case) -> str:
    """A new token for the link in the reporter's "closed" SMS (replacing an earlier SMS token, not the tracking
    token): returned once, stored hashed."""
    token, digest = token_new()
    case.sms_token_hash = digest
    Case.objects.filter(pk=case.pk).update(sms_token_hash=digest)
    return token


def tracking_token_check(*, case: Case, token: str | None) -> bool:
    """`token` is the case's tracking token or the token of its "closed" SMS (constant-time; a case without
    either accepts none)."""
    if not token or len(token) > TOKEN_MAX:
        return False
    digest = token_hash(token)
    ok = False
    for stored in (case.tracking_token_hash, case.sms_token_hash):
        if stored and constant_time_compare(stored, digest):
            ok = True
    return ok
