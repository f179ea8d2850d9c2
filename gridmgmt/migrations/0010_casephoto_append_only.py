"""Evidence photos and their links to events are append-only like the events themselves: the database
refuses UPDATE and DELETE of `gridmgmt_casephoto` and `gridmgmt_caseevent_photos` rows (TRUNCATE, as
`flush` and the demo reset use, stays allowed, as for the events)."""

from django.db import migrations

SQL = """
CREATE OR REPLACE FUNCTION gridmgmt_evidence_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION '% is append-only (% refused)', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'restrict_violation';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER gridmgmt_casephoto_append_only
    BEFORE UPDATE OR DELETE ON gridmgmt_casephoto
    FOR EACH ROW EXECUTE FUNCTION gridmgmt_evidence_append_only();
CREATE TRIGGER gridmgmt_caseevent_photos_append_only
    BEFORE UPDATE OR DELETE ON gridmgmt_caseevent_photos
    FOR EACH ROW EXECUTE FUNCTION gridmgmt_evidence_append_only();
"""
REVERSE = """
DROP TRIGGER IF EXISTS gridmgmt_caseevent_photos_append_only ON gridmgmt_caseevent_photos;
DROP TRIGGER IF EXISTS gridmgmt_casephoto_append_only ON gridmgmt_casephoto;
DROP FUNCTION IF EXISTS gridmgmt_evidence_append_only();
"""


class Migration(migrations.Migration):
    dependencies = [("gridmgmt", "0009_open311client")]
    operations = [migrations.RunSQL(SQL, REVERSE)]
