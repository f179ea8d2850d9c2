"""The feed's envelopes move to Python (gridmgmt.events.case_envelope, realtime.feed): the triggers that built
them from case events, team and camera rows go. What stays in the database is what must be there: `seq`
drawn under the feed's transaction-level advisory lock (so seq order is commit order), and the log's
append-only guard (migration 0002)."""

from django.db import migrations

LOCK_KEY = 7461001  # the same key as migration 0002

SQL = f"""
DROP TRIGGER IF EXISTS realtime_feed_case_events ON gridmgmt_caseevent;
DROP TRIGGER IF EXISTS realtime_feed_team ON gridmgmt_patrolteam;
DROP TRIGGER IF EXISTS realtime_feed_camera ON geo_camera;
DROP FUNCTION IF EXISTS realtime_feed_from_case_events();
DROP FUNCTION IF EXISTS realtime_feed_from_team();
DROP FUNCTION IF EXISTS realtime_feed_from_camera();

-- Every feed row: serialise writers until commit, then draw seq. Rows are written last in a transaction,
-- so the lock is held only for the final statement(s) and the commit.
CREATE FUNCTION realtime_feed_seq_assign() RETURNS trigger AS $$
BEGIN
    PERFORM pg_advisory_xact_lock({LOCK_KEY});
    NEW.seq := nextval('realtime_feed_seq');
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER realtime_feed_seq_assign
    BEFORE INSERT ON realtime_feedevent FOR EACH ROW EXECUTE FUNCTION realtime_feed_seq_assign();
"""

REVERSE = """
DROP TRIGGER IF EXISTS realtime_feed_seq_assign ON realtime_feedevent;
DROP FUNCTION IF EXISTS realtime_feed_seq_assign();
"""


class Migration(migrations.Migration):
    dependencies = [("realtime", "0002_feed_triggers")]
    operations = [migrations.RunSQL(SQL, REVERSE)]
