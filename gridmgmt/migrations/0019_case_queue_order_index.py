"""The desk queue's order (`GET /api/cases/?order=deadline`, gridmgmt.api.filters.CaseFilter.filter_order) as an
expression index: cases whose clock runs first, then by deadline, report time and id. Without it every page
sorts all the cases of the area; bench/scale.py (5,000,000 cases): see README, "Benchmarks".

The expression must be the one the filter generates, statuses in sorted order (gridmgmt.states.CLOCKED_STATUSES).
"""

from django.db import migrations

SQL = """
CREATE INDEX IF NOT EXISTS case_queue_order ON gridmgmt_case (
    (CASE WHEN status IN ('dispatched', 'filed', 'handling', 'sent_back') THEN 0 ELSE 1 END),
    deadline_at NULLS LAST, reported_at, id)
"""


class Migration(migrations.Migration):
    dependencies = [("gridmgmt", "0018_desk_actions")]
    operations = [migrations.RunSQL(SQL, "DROP INDEX IF EXISTS case_queue_order")]
