"""Issue 11 desk actions: a case may name a component (部件); a count of unanswered urges (督办) per case, set from
the urges already recorded (none had an answer before this); the new event types."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('geo', '0004_speaker'),
        ('gridmgmt', '0017_case_search_trgm'),
    ]

    operations = [
        migrations.AddField(
            model_name='case',
            name='component',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='geo.component', verbose_name='部件'),
        ),
        migrations.AddField(
            model_name='case',
            name='urges_open',
            field=models.PositiveSmallIntegerField(db_default=0, default=0, verbose_name='待回复督办'),
        ),
        migrations.AlterField(
            model_name='caseevent',
            name='type',
            field=models.CharField(choices=[('reported', '上报'), ('supported', '附议'), ('filed', '立案'), ('voided', '作废'), ('dispatched', '派遣'), ('accepted', '签收'), ('sent_back', '退单'), ('arbitrated', '审定'), ('handled', '处置反馈'), ('self_handled', '自处理'), ('check_passed', '核查通过'), ('check_failed', '核查不通过(返工)'), ('extension_requested', '申请延时'), ('extension_approved', '延时批准'), ('extension_rejected', '延时驳回'), ('parked', '挂账'), ('resumed', '恢复'), ('escalated', '升级'), ('merged', '合并'), ('closed', '结案'), ('rated', '评价'), ('reopened', '重新打开'), ('archived', '归档'), ('published', '公开'), ('speaker_called', '喇叭喊话'), ('urged', '督办'), ('urge_answered', '督办回复'), ('reassigned', '改派'), ('recalled', '撤回'), ('reclassified', '改类'), ('component_linked', '关联部件')], max_length=24, verbose_name='类型'),
        ),
        migrations.RunSQL(
            "UPDATE gridmgmt_case c SET urges_open = u.n FROM (SELECT case_id, count(*) AS n FROM gridmgmt_caseevent"
            " WHERE type = 'urged' GROUP BY case_id) u WHERE u.case_id = c.id",
            migrations.RunSQL.noop,
        ),
    ]
