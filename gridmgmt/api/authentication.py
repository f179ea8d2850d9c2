"""API token authentication: DRF's (same header, same answers), its lookup one statement.

A module of its own: DRF imports the authentication classes while it defines APIView, so this one may import
nothing that imports DRF's views (gridmgmt.api.auth does).
"""

from django.utils.translation import gettext_lazy as _
from rest_framework import authentication, exceptions
from rest_framework.authtoken.models import Token

from gridmgmt.models import User

# The token and its user in one statement, written by hand because it is measured: DRF's
# `Token.objects.select_related("user").get(key=key)` spent 0.9–1.0 ms of CPU building its join (Django's
# PostgreSQL join clause builds a field per join to compare column types) on every API request — 8 % of a
# report's server CPU under bench/intake.py's HTTP load (py-spy --gil); this one takes 0.3–0.55 ms.
_TOKEN_USER_SQL = """
SELECT u.*, t.created AS token_created
FROM authtoken_token t JOIN gridmgmt_user u ON u.id = t.user_id
WHERE t.key = %s
"""


class TokenAuthentication(authentication.TokenAuthentication):
    def authenticate_credentials(self, key):
        user = next(iter(User.objects.raw(_TOKEN_USER_SQL, [key])), None)
        if user is None:
            raise exceptions.AuthenticationFailed(_("Invalid token."))
        if not user.is_active:
            raise exceptions.AuthenticationFailed(_("User inactive or deleted."))
        token = Token(key=key, user=user, created=user.token_created)
        token._state.adding, token._state.db = False, user._state.db
        return user, token
