"""Devices (phones, OsmAnd trackers) and the position history, partitioned by day (realtime/positions.py).

The history's parent table is created here with RunSQL (Django cannot declare partitioning: the model is
unmanaged); its first partitions — today and POSITION_PARTITIONS_AHEAD days on — by partitions_maintain.
"""

import django.contrib.gis.db.models.fields
import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

POSITION_SQL = """
CREATE TABLE realtime_position (
    device_id bigint NOT NULL,
    at timestamptz NOT NULL,
    received_at timestamptz NOT NULL,
    user_id bigint NOT NULL,
    team_id bigint,
    point geometry(Point, 4326) NOT NULL,
    speed double precision,
    course double precision,
    altitude double precision,
    accuracy double precision,
    battery double precision,
    PRIMARY KEY (device_id, at)
) PARTITION BY RANGE (at);
CREATE INDEX realtime_position_team_at ON realtime_position (team_id, at);
COMMENT ON TABLE realtime_position IS
    'Position history, one partition per day (realtime/positions.py); old days are dropped, not deleted';
"""


def partitions_first(apps, schema_editor):
    from realtime.positions import partitions_maintain

    partitions_maintain()


class Migration(migrations.Migration):

    dependencies = [
        ('realtime', '0004_feed_user_scope'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name='Position',
            fields=[
                ('pk', models.CompositePrimaryKey('device_id', 'at', blank=True, editable=False, primary_key=True, serialize=False)),
                ('at', models.DateTimeField(verbose_name='定位时间')),
                ('received_at', models.DateTimeField(verbose_name='接收时间')),
                ('user_id', models.BigIntegerField()),
                ('team_id', models.BigIntegerField(null=True)),
                ('point', django.contrib.gis.db.models.fields.PointField(srid=4326, verbose_name='位置')),
                ('speed', models.FloatField(null=True, verbose_name='速度 (m/s)')),
                ('course', models.FloatField(null=True, verbose_name='方向 (°)')),
                ('altitude', models.FloatField(null=True, verbose_name='海拔 (m)')),
                ('accuracy', models.FloatField(null=True, verbose_name='精度 (m)')),
                ('battery', models.FloatField(null=True, verbose_name='电量 (%)')),
            ],
            options={
                'verbose_name': '位置记录',
                'verbose_name_plural': '位置记录',
                'db_table': 'realtime_position',
                'managed': False,
            },
        ),
        migrations.CreateModel(
            name='Device',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('kind', models.CharField(choices=[('phone', '手机'), ('tracker', '定位终端')], default='tracker', max_length=10, verbose_name='类型')),
                ('identifier', models.CharField(max_length=64, unique=True, verbose_name='设备标识')),
                ('active', models.BooleanField(default=True, verbose_name='启用')),
                ('last_seen_at', models.DateTimeField(blank=True, null=True, verbose_name='最近上报')),
                ('created_at', models.DateTimeField(auto_now_add=True, verbose_name='登记时间')),
                ('user', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='devices', to=settings.AUTH_USER_MODEL, verbose_name='使用人')),
            ],
            options={
                'verbose_name': '定位设备',
                'verbose_name_plural': '定位设备',
                'ordering': ['identifier'],
            },
        ),
        migrations.RunSQL(POSITION_SQL, reverse_sql="DROP TABLE realtime_position CASCADE"),
        migrations.RunPython(partitions_first, migrations.RunPython.noop),
    ]
