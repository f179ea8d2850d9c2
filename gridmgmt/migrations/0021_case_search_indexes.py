"""The desk search's code prefix (gridmgmt.queue.cases_search) as `LOWER(code) LIKE LOWER('text%')`: an expression
index with text_pattern_ops serves it for every text. (`code ILIKE 'text%'` had a fixed prefix only when the text
held no letter and no CJK character; otherwise that arm, and so the whole OR of the search, was a filter over every
case of the caller's scope.) In SQL: Django writes an OpClass on an expression only with django.contrib.postgres
installed, which this project is not.
"""

from django.db import migrations

SQL = "CREATE INDEX IF NOT EXISTS case_code_lower ON gridmgmt_case (lower(code::text) text_pattern_ops)"


class Migration(migrations.Migration):
    dependencies = [("gridmgmt", "0020_case_area_count_indexes")]
    operations = [migrations.RunSQL(SQL, "DROP INDEX IF EXISTS case_code_lower")]
