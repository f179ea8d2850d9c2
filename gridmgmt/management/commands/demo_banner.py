from django.core.management.base import BaseCommand

from gridmgmt.demo import DEMO_PASSWORD, DEMO_USERS

FACES = (
    ("/", "首页", "home"),
    ("/map/", "网格地图", "grid map"),
    ("/wall/", "指挥中心大屏", "command-centre video wall"),
    ("/dispatch/", "派遣", "dispatch desk"),
    ("/patrol/", "巡查移动端", "patrol mobile app"),
    ("/report/", "居民上报", "resident report"),
    ("/admin/", "后台管理", "admin"),
    ("/api/schema/", "接口文档 (OpenAPI)", "API schema"),
)


class Command(BaseCommand):
    help = "Print the demo's pages and logins (Chinese, with English glosses)."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", default="8000")

    def handle(self, *args, host: str, port: str, **options):
        # A wildcard bind address is not something a browser can open.
        shown = "127.0.0.1" if host in {"0.0.0.0", "::", ""} else host
        base = f"http://{shown}:{port}"
        w = self.stdout.write
        rule = "=" * 72
        w(rule)
        w("  网格化城市管理演示 · gridmgmt demo (浦东新区 Pudong, 310115)")
        w(rule)
        w("  页面 pages")
        for path, zh, en in FACES:
            w(f"    {_pad(zh, 20)} {base}{path}   ({en})")
        w("")
        w(f"  演示账号 demo logins — 密码 password: {DEMO_PASSWORD}")
        w(f"    {_pad('用户名 user', 14)} {_pad('角色 role', 34)} 常用页面 page")
        for u in DEMO_USERS:
            w(f"    {_pad(u.username, 14)} {_pad(f'{u.label} {u.gloss}', 34)} {base}{u.face}")
        w(f"    {_pad('pt001-1 …', 14)} {_pad('各巡查队队员 team members', 34)} {base}/patrol/")
        w("")
        w(f"  定位终端 trackers (Traccar Client / OsmAnd): {base}/track/osmand")
        w("    设备标识 device identifier: demo-<用户名 username>, e.g. demo-patrol")
        w("")
        w("  演示数据为合成数据 (synthetic demo data: streets, communities, cases are generated)")
        w(rule)


def _pad(text: str, width: int) -> str:
    # CJK characters take two columns in a terminal.
    cols = sum(2 if ord(ch) > 0x2E80 else 1 for ch in text)
    return text + " " * max(0, width - cols)
