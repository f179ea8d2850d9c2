"""The desk search's trigram indexes led by the street and community ids (btree_gin): a street's or community's
search reads only its own matches from the index instead of every match in the city, then intersecting them with
the street's cases. bench/scale.py (5 M cases, a word in 2,684 of a street's 109,588 cases): the count 317 ms →
94 ms. The scope must be compared as bigint (gridmgmt.access.area_id_value): btree_gin's int8_ops serves
int8 = int8 only. Without a street or community in the query the index serves the text alone, as before.

btree_gin is a trusted extension (PostgreSQL 13+): the database owner may create it without superuser.
"""

import django.contrib.postgres.indexes
from django.contrib.postgres.operations import BtreeGinExtension
from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("gridmgmt", "0021_case_search_indexes")]

    operations = [
        BtreeGinExtension(),
        migrations.AddIndex(
            model_name="case",
            index=django.contrib.postgres.indexes.GinIndex(
                fields=["street", "community", "description"],
                name="case_description_scoped_trgm",
                opclasses=["int8_ops", "int8_ops", "gin_trgm_ops"],
            ),
        ),
        migrations.AddIndex(
            model_name="case",
            index=django.contrib.postgres.indexes.GinIndex(
                fields=["street", "community", "address"],
                name="case_address_scoped_trgm",
                opclasses=["int8_ops", "int8_ops", "gin_trgm_ops"],
            ),
        ),
        migrations.RemoveIndex(model_name="case", name="case_description_trgm"),
        migrations.RemoveIndex(model_name="case", name="case_address_trgm"),
    ]
