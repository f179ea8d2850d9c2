"""Subscription scopes and who may hold them — the same rules as gridmgmt.access, applied to areas/teams.

A scope is written `all`, `district:<id>`, `street:<id>`, `community:<id>`, `team:<id>` (ids of
geo.AdminArea / gridmgmt.PatrolTeam) or `user:<id>` (one person's own rows: their notifications, which only
that person may hold and which `all` never carries). A scope the user may not see is refused exactly like
one that does not exist.
"""

from dataclasses import dataclass

from django.db.models import Q
from django.utils.translation import gettext as _

from geo.models import AdminArea
from gridmgmt import access
from gridmgmt.errors import InvalidInput
from gridmgmt.models import User

AREA_KINDS = {
    "district": AdminArea.Level.DISTRICT,
    "street": AdminArea.Level.STREET,
    "community": AdminArea.Level.COMMUNITY,
}
KINDS = ("all", *AREA_KINDS, "team", "user")


@dataclass(frozen=True)
class Scope:
    kind: str
    id: int | None = None

    @property
    def key(self) -> str:
        return "all" if self.kind == "all" else f"{self.kind}:{self.id}"

    @property
    def column(self) -> str | None:
        """The realtime_feedevent column this scope filters on (None: every row)."""
        return None if self.kind == "all" else f"{self.kind}_id"

    def q(self) -> Q:
        return Q(user_id__isnull=True) if self.kind == "all" else Q(**{self.column: self.id})


def scope_parse(*, text) -> Scope:
    if not isinstance(text, str) or len(text) > 40:
        raise InvalidInput(_("订阅范围格式错误"), field="scope", code="bad_scope")
    kind, _sep, ident = text.partition(":")
    if kind == "all" and not ident:
        return Scope("all")
    # ASCII digits only: str.isdigit() also takes '²' and '١', which int() then refuses or reads.
    if kind not in KINDS or kind == "all" or not (ident.isascii() and ident.isdigit()) or len(ident) > 18:
        raise InvalidInput(_("订阅范围格式错误"), field="scope", code="bad_scope")
    return Scope(kind, int(ident))


def scope_keys(*, district_id=None, street_id=None, community_id=None, team_id=None, user_id=None) -> list[str]:
    """The scope keys a feed row belongs to (besides `all`)."""
    pairs = (
        ("district", district_id),
        ("street", street_id),
        ("community", community_id),
        ("team", team_id),
        ("user", user_id),
    )
    return [f"{kind}:{ident}" for kind, ident in pairs if ident is not None]


def scope_allowed(*, user: User, scope: Scope) -> bool:
    if not user.is_authenticated:
        return False
    if scope.kind == "user":  # one's own inbox, nobody else's (not even an administrator's)
        return scope.id == user.id
    if scope.kind == "team":
        return access.teams_visible(user=user).filter(pk=scope.id).exists()
    if access.is_unrestricted(user):
        return scope.kind == "all" or AdminArea.objects.filter(pk=scope.id, level=AREA_KINDS[scope.kind]).exists()
    if scope.kind == "all" or access.role_effective(user) not in access.STAFF_ROLES:
        return False
    # Staff with an area: the area itself or anything below it.
    area = AdminArea.objects.filter(pk=scope.id, level=AREA_KINDS[scope.kind]).select_related("parent__parent").first()
    while area is not None:
        if area.id == user.area_id:
            return True
        area = area.parent
    return False


def scopes_default(*, user: User) -> list[Scope]:
    """What a screen of this user subscribes to when it does not say: the widest scope it may see, and, for
    staff and patrol members, their own inbox (`user:<id>`)."""
    if not user.is_authenticated:
        return []
    own = (
        [Scope("user", user.id)] if access.is_staff_user(user) or user.team_id or user.role == User.Role.PATROL else []
    )
    if access.is_unrestricted(user):
        return [Scope("all"), *own]
    if access.is_staff_user(user) and user.area is not None and user.area.level in AREA_KINDS.values():
        kind = next(k for k, level in AREA_KINDS.items() if level == user.area.level)
        return [Scope(kind, user.area_id), *own]
    if user.team_id:
        return [Scope("team", user.team_id), *own]
    return own
