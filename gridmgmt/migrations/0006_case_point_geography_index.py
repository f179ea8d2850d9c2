# Duplicate search asks "open cases within R metres" with ST_DWithin on geography; the plain GiST index on
# the geometry column cannot serve a geography predicate, so index the cast expression itself. RunSQL keeps
# models.py untouched (Django's Index() cannot spell the bare `::geography` cast the query uses).

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("gridmgmt", "0005_camerasystem_label_map"),
    ]

    operations = [
        migrations.RunSQL(
            "CREATE INDEX IF NOT EXISTS case_point_geog ON gridmgmt_case USING gist ((point::geography));",
            "DROP INDEX IF EXISTS case_point_geog;",
        ),
    ]
