from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("geo", "0004_speaker"), ("gridmgmt", "0019_case_queue_order_index")]

    operations = [
        migrations.AddIndex(
            model_name="case",
            index=models.Index(fields=["street", "district"], name="case_street_district"),
        ),
        migrations.AddIndex(
            model_name="case",
            index=models.Index(fields=["community", "district"], name="case_community_district"),
        ),
    ]
