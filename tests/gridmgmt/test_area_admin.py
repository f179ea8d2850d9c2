"""The Django admin for an administrator bound to a street: their street's users and teams only (others look
like missing rows), members on the team page, password change by the administrator, no API tokens."""

import pytest
from rest_framework.authtoken.models import Token

from geo.models import AdminArea
from gridmgmt.models import User
from tests.factories import DistrictFactory, TeamFactory, UserFactory

R = User.Role
pytestmark = pytest.mark.django_db


@pytest.fixture
def town():
    district = DistrictFactory(code="310115", name="浦东新区")
    east = DistrictFactory(code="310115001", name="东街道", level=AdminArea.Level.STREET, parent=district)
    west = DistrictFactory(code="310115002", name="西街道", level=AdminArea.Level.STREET, parent=district)
    community = DistrictFactory(code="310115001001", name="东社区", level=AdminArea.Level.COMMUNITY, parent=east)
    team_e = TeamFactory(district=district, street=east, code="PT-E", name="东队")
    team_w = TeamFactory(district=district, street=west, code="PT-W", name="西队")
    u = {
        "admin": UserFactory(username="east_admin", role=R.ADMIN, area=east, is_staff=True),
        "disp_e": UserFactory(username="disp_e", role=R.DISPATCHER, area=community),
        "patrol_e": UserFactory(
            username="patrol_e", role=R.PATROL, team=team_e, area=district, last_name="张", first_name="三"
        ),
        "disp_w": UserFactory(username="disp_w", role=R.DISPATCHER, area=west),
        "patrol_w": UserFactory(username="patrol_w", role=R.PATROL, team=team_w),
        "root": UserFactory(username="root", role=R.ADMIN, is_staff=True, is_superuser=True),
    }
    return u, team_e, team_w, east, west


def names(response) -> set[str]:
    return {str(obj) for obj in response.context["cl"].result_list}


def test_area_admin_lists_only_their_area_users_and_filters_by_team_and_role(client, town):
    u, team_e, *_ = town
    client.force_login(u["admin"])
    assert names(client.get("/admin/gridmgmt/user/")) == {"east_admin", "disp_e", "patrol_e"}
    filtered = client.get("/admin/gridmgmt/user/", {"role": "patrol", "team__id__exact": team_e.pk})
    assert names(filtered) == {"patrol_e"}
    client.force_login(u["root"])
    assert len(names(client.get("/admin/gridmgmt/user/"))) == 6


def test_other_areas_users_and_teams_are_not_found(client, town):
    u, team_e, team_w, *_ = town
    client.force_login(u["admin"])
    assert client.get(f"/admin/gridmgmt/user/{u['disp_e'].pk}/change/").status_code == 200
    # Django's admin answers a row outside get_queryset like a deleted one: back to the index, nothing shown.
    response = client.get(f"/admin/gridmgmt/user/{u['disp_w'].pk}/change/")
    assert response.status_code == 302 and "disp_w" not in response.content.decode()
    assert client.get(f"/admin/gridmgmt/user/{u['disp_w'].pk}/password/").status_code == 404
    assert client.get(f"/admin/gridmgmt/patrolteam/{team_w.pk}/change/").status_code == 302
    assert names(client.get("/admin/gridmgmt/patrolteam/")) == {str(team_e)}


def test_team_page_shows_its_members(client, town):
    u, team_e, *_ = town
    client.force_login(u["admin"])
    html = client.get(f"/admin/gridmgmt/patrolteam/{team_e.pk}/change/").content.decode()
    assert "patrol_e" in html and "张" in html and "patrol_w" not in html


def test_area_admin_changes_a_password_and_grants_no_superuser(client, town):
    u, *_, west = town
    client.force_login(u["admin"])
    url = f"/admin/gridmgmt/user/{u['disp_e'].pk}/password/"
    assert client.get(url).status_code == 200
    response = client.post(url, {"password1": "Neu-Passw0rt!x", "password2": "Neu-Passw0rt!x"})
    assert response.status_code == 302
    u["disp_e"].refresh_from_db()
    assert u["disp_e"].check_password("Neu-Passw0rt!x")
    form = client.get(f"/admin/gridmgmt/user/{u['disp_e'].pk}/change/").context["adminform"].form
    assert "is_superuser" not in form.fields and "user_permissions" not in form.fields
    assert west not in form.fields["area"].queryset  # areas only from their own street down
    assert client.get(f"/admin/gridmgmt/user/{u['disp_e'].pk}/delete/").status_code == 403


def test_no_api_token_in_the_admin(client, town):
    u, *_ = town
    Token.objects.create(user=u["disp_e"])
    client.force_login(u["root"])
    assert client.get("/admin/authtoken/tokenproxy/").status_code == 404
    assert Token.objects.get().key not in client.get(f"/admin/gridmgmt/user/{u['disp_e'].pk}/change/").content.decode()


def test_values_above_the_admins_area_are_kept_not_blanked(client, town):
    """A team's district and a member's district-wide area sit above a street's administrator: the forms keep
    them as a choice (saving does not blank them), and offer nothing else outside the street."""
    u, team_e, _, east, west = town
    district = east.parent
    client.force_login(u["admin"])
    team_form = client.get(f"/admin/gridmgmt/patrolteam/{team_e.pk}/change/").context["adminform"].form
    assert team_form.initial["district"] == district.pk
    assert {a.name for a in team_form.fields["district"].queryset} == {"浦东新区", "东街道", "东社区"}
    member_form = client.get(f"/admin/gridmgmt/user/{u['patrol_e'].pk}/change/").context["adminform"].form
    assert district in member_form.fields["area"].queryset and west not in member_form.fields["area"].queryset
    add_form = client.get("/admin/gridmgmt/patrolteam/add/").context["adminform"].form
    assert {a.name for a in add_form.fields["district"].queryset} == {"浦东新区", "东街道", "东社区"}
