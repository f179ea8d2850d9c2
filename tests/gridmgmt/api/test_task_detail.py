"""What a patrol phone needs to choose and work a task (issue 10): the list line's description summary, the
detail's handling standard (结案条件), navigation links, photo kinds, and each action's confirmation."""

from gridmgmt import services
from gridmgmt.models import Category, User
from tests.gridmgmt.api.conftest import jpeg, report

R = User.Role


def dispatched(world, **fields) -> dict:
    body = report(world, R.RESIDENT, photos=[jpeg()], **fields)
    services.case_file(case_id=body["id"], actor=world.users[R.DISPATCHER])
    services.case_dispatch(case_id=body["id"], actor=world.users[R.DISPATCHER], team_id=world.team.pk)
    return body


def test_list_line_carries_a_one_line_summary_of_the_description(world):
    long = "锦绣路人行道上堆了十几袋装修垃圾,\n已经挡住盲道," + "行人只能走到非机动车道上" * 5
    short = dispatched(world, description="井盖破损")
    cut = dispatched(world, description=long)
    empty = dispatched(world, description="")
    rows = world.client(R.PATROL).get("/api/cases/?status=dispatched").json()["features"]
    summaries = {row["id"]: row["properties"]["summary"] for row in rows}
    assert summaries[short["id"]] == "井盖破损"
    assert summaries[cut["id"]] == (
        "锦绣路人行道上堆了十几袋装修垃圾, 已经挡住盲道,"
        "行人只能走到非机动车道上行人只能走到非机动车道上行人只能走到非机动车…"
    )
    assert len(summaries[cut["id"]]) == 60
    assert summaries[empty["id"]] == ""


def test_detail_carries_the_standard_navigation_and_photo_kinds(world):
    Category.objects.filter(pk=world.category.pk).update(closing_condition="物料清运完毕,现场清理干净")
    body = dispatched(world, address="浦东大道 100 号")
    lon, lat = body["geometry"]["coordinates"]
    detail = world.client(R.PATROL).get(f"/api/cases/{body['id']}/").json()["properties"]
    assert detail["closing_condition"] == "物料清运完毕,现场清理干净"
    assert [(p["kind"], p["kind_label"]) for p in detail["photos"]] == [("before", "处置前")]
    assert [link["name"] for link in detail["navigation"]] == ["geo", "amap", "baidu"]
    label = f"{detail['code']}%20%E6%B5%A6%E4%B8%9C%E5%A4%A7%E9%81%93%20100%20%E5%8F%B7"
    assert detail["navigation"][0] == {
        "name": "geo",
        "label": "手机地图",
        "href": f"geo:{lat:.6f},{lon:.6f}?q={lat:.6f},{lon:.6f}({label})",
    }
    assert detail["light"] == "green"


def test_detail_in_english(world):
    body = dispatched(world)
    detail = world.client(R.PATROL).get(f"/api/cases/{body['id']}/", HTTP_ACCEPT_LANGUAGE="en").json()["properties"]
    assert [link["label"] for link in detail["navigation"]] == ["Phone map app", "AMap", "Baidu Maps"]
    assert detail["photos"][0]["kind_label"] == "Before"
    assert [(a["name"], a["done"]) for a in detail["actions"]] == [
        ("accept", "Accepted: go and handle it on site"),
        ("send_back", "Sent back; waiting to be dispatched again"),
    ]


def test_each_action_says_what_happens_next(world):
    body = dispatched(world)
    client = world.client(R.PATROL)
    actions = client.get(f"/api/cases/{body['id']}/").json()["properties"]["actions"]
    assert [(a["name"], a["label"], a["done"]) for a in actions] == [
        ("accept", "签收", "已签收,请到现场处置"),
        ("send_back", "退单", "已退单,等待重新派遣"),
    ]
    accepted = client.post(f"/api/cases/{body['id']}/accept/", {}, format="json").json()["properties"]
    assert [(a["name"], a["done"]) for a in accepted["actions"]] == [
        ("handle", "已提交处理,等待核查"),
        ("extension_request", "已申请延时,等待审批"),
    ]
    handle = accepted["actions"][0]
    assert handle["inputs"] == [
        {"name": "photos", "kind": "photos", "label": "处置后照片", "required": True},
        {"name": "note", "kind": "text", "label": "说明", "required": False},
    ]


def test_page_states_carry_the_light_words(world):
    from gridmgmt.states import states_describe

    assert states_describe()["lightLabels"] == {
        "red": "已超时",
        "yellow": "临近时限",
        "green": "时限内",
        "none": "未计时",
    }
