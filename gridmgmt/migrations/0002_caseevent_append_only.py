"""The case history is append-only: the database itself refuses UPDATE and DELETE of event rows."""

from django.db import migrations

SQL = """
CREATE OR REPLACE FUNCTION gridmgmt_caseevent_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'gridmgmt_caseevent is append-only (% refused)', TG_OP
        USING ERRCODE = 'restrict_violation';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER gridmgmt_caseevent_append_only
    BEFORE UPDATE OR DELETE ON gridmgmt_caseevent
    FOR EACH ROW EXECUTE FUNCTION gridmgmt_caseevent_append_only();
"""
REVERSE = """
DROP TRIGGER IF EXISTS gridmgmt_caseevent_append_only ON gridmgmt_caseevent;
DROP FUNCTION IF EXISTS gridmgmt_caseevent_append_only();
"""


class Migration(migrations.Migration):
    dependencies = [("gridmgmt", "0001_initial")]
    operations = [migrations.RunSQL(SQL, REVERSE)]
