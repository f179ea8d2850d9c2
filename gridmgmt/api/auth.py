"""`POST /api/token/`: a user's API token for their username and password, limited like the login page.

Attempts per client address are throttled ("login" rate), and django-axes locks a (username, address) after
repeated failures: it sees this request as the plain HttpRequest, so AxesMiddleware turns the lockout into
our 429 (gridmgmt.clients.lockout_response).
"""

from rest_framework.authtoken.views import ObtainAuthToken

from gridmgmt import clients


class TokenLogin(ObtainAuthToken):
    throttle_classes = [clients.ClientRateThrottle]
    throttle_scope = "login"

    def get_serializer_context(self):
        # django-axes marks the lockout on the request it is given; the middleware reads the HttpRequest.
        return {"request": self.request._request, "format": self.format_kwarg, "view": self}
