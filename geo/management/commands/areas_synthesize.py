from django.core.management.base import BaseCommand

from geo.services import areas_synthesize


class Command(BaseCommand):
    help = "Demo only: synthesise grid-aligned streets/towns and communities for a district that has none."

    def add_arguments(self, parser):
        parser.add_argument("--district", required=True)
        parser.add_argument("--street-km", type=float, default=6.0)
        parser.add_argument("--community-km", type=float, default=1.0)

    def handle(self, *args, district: str, street_km: float, community_km: float, **options):
        r = areas_synthesize(district_code=district, street_km=street_km, community_km=community_km)
        if r.skipped:
            self.stdout.write(f"areas: {district} already has streets/communities, skipped")
        else:
            self.stdout.write(f"areas: {r.streets} synthetic streets, {r.communities} communities")
