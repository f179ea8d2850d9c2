from django.core.management.base import BaseCommand, CommandError

from gridmgmt.demo import DEFAULT_DISTRICT, DEFAULT_SEED, DemoError, DemoScale, load_demo


class Command(BaseCommand):
    help = "Load the Pudong demo: geography, taxonomy, cameras, components, teams, logins, 90 days of cases."

    def add_arguments(self, parser):
        defaults = DemoScale()
        parser.add_argument("--district", default=DEFAULT_DISTRICT)
        parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
        parser.add_argument("--cases", type=int, default=defaults.cases)
        parser.add_argument("--cameras", type=int, default=defaults.cameras)
        parser.add_argument("--components", type=int, default=defaults.components)
        parser.add_argument("--teams", type=int, default=defaults.teams)
        parser.add_argument("--days", type=int, default=defaults.days)
        parser.add_argument("--skip-geography", action="store_true", help="do not call the geo commands")

    def handle(self, *args, district: str, seed: int, skip_geography: bool, **opts):
        scale = DemoScale(
            cameras=opts["cameras"], components=opts["components"], teams=opts["teams"], cases=opts["cases"],
            days=opts["days"],
        )  # fmt: skip
        try:
            load_demo(district_code=district, seed=seed, scale=scale, with_geography=not skip_geography, out=self._out)
        except DemoError as exc:
            raise CommandError(str(exc)) from exc

    def _out(self, line: str) -> None:
        self.stdout.write(line)
        self.stdout.flush()
