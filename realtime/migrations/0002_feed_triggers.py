"""Feed writers in the database: the seq sequence, the ordering lock, and the triggers that copy case
events, team positions/status and camera status into realtime_feedevent in the writer's transaction.

Why the lock: a sequence alone hands out numbers in insert order, but transactions commit in any order,
so a screen could receive 101 before 100 commits and then never ask for 100. Taking one transaction-level
advisory lock before `nextval` (held until commit) makes seq order equal commit order. Services lock their
rows first and append their event last, so the lock is held only for the last statement(s) and commit.
"""

from django.db import migrations

LOCK_KEY = 7461001  # pg_advisory_xact_lock key of the feed (arbitrary, fixed)

# Case events of `{source}` → feed rows, in event order.
CASE_ROWS = """
    INSERT INTO realtime_feedevent
        (seq, type, at, district_id, street_id, community_id, team_id, case_event_id, data)
    SELECT nextval('realtime_feed_seq'), s.* FROM (
        SELECT
            CASE e.type WHEN 'reported' THEN 'case.created' WHEN 'escalated' THEN 'case.escalated'
                        ELSE 'case.updated' END,
            e.at, e.district_id_copy, e.street_id_copy, e.community_id_copy, e.team_id_copy, e.id,
            jsonb_build_object(
                'case_id', c.id, 'code', c.code, 'event', e.type,
                'status', e.to_status, 'from_status', e.from_status,
                'team_id', e.team_id_copy, 'team', t.code, 'team_name', t.name,
                'category', cat.code, 'category_name', cat.name,
                'urgency', c.urgency, 'level', c.level, 'source', c.source,
                'lon', round(ST_X(c.point)::numeric, 6), 'lat', round(ST_Y(c.point)::numeric, 6),
                'address', c.address, 'deadline_at', c.deadline_at, 'warn_at', c.warn_at,
                'light', CASE
                    WHEN c.deadline_at IS NULL
                         OR e.to_status NOT IN ('filed', 'dispatched', 'sent_back', 'handling') THEN NULL
                    WHEN e.at >= c.deadline_at THEN 'red'
                    WHEN c.warn_at IS NOT NULL AND e.at >= c.warn_at THEN 'yellow'
                    ELSE 'green' END,
                'actor_role', e.actor_role, 'note', left(e.note, 200),
                'district_id', e.district_id_copy, 'street_id', e.street_id_copy,
                'community_id', e.community_id_copy)
        FROM {source} e
        JOIN gridmgmt_case c ON c.id = e.case_id
        JOIN gridmgmt_category cat ON cat.id = c.category_id
        LEFT JOIN gridmgmt_patrolteam t ON t.id = e.team_id_copy
        ORDER BY e.id
    ) s;
"""

SQL = """
CREATE SEQUENCE realtime_feed_seq;

-- Serialise feed writers until commit. Called before every nextval of realtime_feed_seq.
CREATE FUNCTION realtime_feed_lock() RETURNS void AS $$
BEGIN
    PERFORM pg_advisory_xact_lock({LOCK_KEY});
END;
$$ LANGUAGE plpgsql;

-- Case events → feed, one statement-level trigger for INSERT and COPY alike (the demo loads by COPY).
-- The data is the case as it stands right after the event (the service saved the case first).
CREATE FUNCTION realtime_feed_from_case_events() RETURNS trigger AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM new_events) THEN
        RETURN NULL;
    END IF;
    PERFORM realtime_feed_lock();
{case_rows_new}    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER realtime_feed_case_events
    AFTER INSERT ON gridmgmt_caseevent REFERENCING NEW TABLE AS new_events
    FOR EACH STATEMENT EXECUTE FUNCTION realtime_feed_from_case_events();

-- Team position and status, whoever changes them (services, admin, scripts).
CREATE FUNCTION realtime_feed_from_team() RETURNS trigger AS $$
BEGIN
    IF NEW.last_position_at IS DISTINCT FROM OLD.last_position_at AND NEW.last_position IS NOT NULL THEN
        PERFORM realtime_feed_lock();
        INSERT INTO realtime_feedevent (seq, type, at, district_id, street_id, team_id, data)
        VALUES (nextval('realtime_feed_seq'), 'team.position', coalesce(NEW.last_position_at, now()),
                NEW.district_id, NEW.street_id, NEW.id,
                jsonb_build_object('team_id', NEW.id, 'team', NEW.code, 'team_name', NEW.name,
                    'status', NEW.status,
                    'lon', round(ST_X(NEW.last_position::geometry)::numeric, 6),
                    'lat', round(ST_Y(NEW.last_position::geometry)::numeric, 6),
                    'at', NEW.last_position_at));
    END IF;
    IF NEW.status IS DISTINCT FROM OLD.status THEN
        PERFORM realtime_feed_lock();
        INSERT INTO realtime_feedevent (seq, type, at, district_id, street_id, team_id, data)
        VALUES (nextval('realtime_feed_seq'), 'team.status', now(), NEW.district_id, NEW.street_id, NEW.id,
                jsonb_build_object('team_id', NEW.id, 'team', NEW.code, 'team_name', NEW.name,
                    'status', NEW.status, 'from_status', OLD.status));
    END IF;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER realtime_feed_team
    AFTER UPDATE ON gridmgmt_patrolteam FOR EACH ROW EXECUTE FUNCTION realtime_feed_from_team();

CREATE FUNCTION realtime_feed_from_camera() RETURNS trigger AS $$
BEGIN
    IF NEW.status IS DISTINCT FROM OLD.status THEN
        PERFORM realtime_feed_lock();
        INSERT INTO realtime_feedevent (seq, type, at, district_id, street_id, community_id, data)
        SELECT nextval('realtime_feed_seq'), 'camera.status', now(),
               coalesce(NEW.district_id, g.district_id), g.street_id, g.community_id,
               jsonb_build_object('camera_id', NEW.id, 'code', NEW.code, 'name', NEW.name,
                   'status', NEW.status, 'from_status', OLD.status,
                   'lon', round(ST_X(NEW.location)::numeric, 6), 'lat', round(ST_Y(NEW.location)::numeric, 6))
        FROM (SELECT NULL) AS one LEFT JOIN geo_gridcell g ON g.id = NEW.cell_id;
    END IF;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER realtime_feed_camera
    AFTER UPDATE ON geo_camera FOR EACH ROW EXECUTE FUNCTION realtime_feed_from_camera();

-- The feed is a log: nothing updates it (old rows are pruned by `manage.py realtime_prune`).
CREATE FUNCTION realtime_feed_no_update() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'realtime_feedevent is append-only' USING ERRCODE = 'restrict_violation';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER realtime_feed_no_update
    BEFORE UPDATE ON realtime_feedevent FOR EACH ROW EXECUTE FUNCTION realtime_feed_no_update();
"""

# Events that exist already (the demo) enter the feed once, in event order.
BACKFILL = CASE_ROWS.format(source="gridmgmt_caseevent")

REVERSE = """
DROP TRIGGER IF EXISTS realtime_feed_no_update ON realtime_feedevent;
DROP TRIGGER IF EXISTS realtime_feed_camera ON geo_camera;
DROP TRIGGER IF EXISTS realtime_feed_team ON gridmgmt_patrolteam;
DROP TRIGGER IF EXISTS realtime_feed_case_events ON gridmgmt_caseevent;
DROP FUNCTION IF EXISTS realtime_feed_no_update();
DROP FUNCTION IF EXISTS realtime_feed_from_camera();
DROP FUNCTION IF EXISTS realtime_feed_from_team();
DROP FUNCTION IF EXISTS realtime_feed_from_case_events();
DROP FUNCTION IF EXISTS realtime_feed_lock();
DROP SEQUENCE IF EXISTS realtime_feed_seq;
"""


class Migration(migrations.Migration):
    dependencies = [("realtime", "0001_feed"), ("gridmgmt", "0004_case_code_seq"), ("geo", "0002_initial")]
    operations = [
        migrations.RunSQL(SQL.replace("{LOCK_KEY}", str(LOCK_KEY)).replace(
            "{case_rows_new}", CASE_ROWS.format(source="new_events")), REVERSE),
        migrations.RunSQL(BACKFILL, migrations.RunSQL.noop),
    ]
