from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("gridmgmt", "0003_case_clocks_calendar_alerts")]
    operations = [
        migrations.RunSQL(
            "CREATE SEQUENCE IF NOT EXISTS gridmgmt_case_code_seq", "DROP SEQUENCE IF EXISTS gridmgmt_case_code_seq"
        )
    ]
