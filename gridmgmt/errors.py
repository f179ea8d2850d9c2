"""Domain errors. Each carries the HTTP status the edges answer with and a message in the user's language."""


class DomainError(Exception):
    status = 400
    code = "invalid"

    def __init__(self, message, *, field: str | None = None, code: str | None = None):
        super().__init__(str(message))
        self.message = message
        self.field = field
        if code:
            self.code = code


class InvalidInput(DomainError):
    status = 400


class OutsideServiceArea(InvalidInput):
    code = "outside_service_area"


class RoleNotAllowed(DomainError):
    status = 403
    code = "role_not_allowed"


class TransitionNotAllowed(DomainError):
    status = 409
    code = "transition_not_allowed"


class NotFound(DomainError):
    """Something named in the request does not exist (or is out of the caller's scope, which looks the same)."""

    status = 404
    code = "not_found"


class StorageFull(DomainError):
    """The photo store has no room left (ENOSPC/EDQUOT): nothing of the request is kept."""

    status = 507
    code = "storage_full"
