# Alerts: what an alert is about, the delay applied to adapters too, adapter failing spells.

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('llm', '0006_incidents_rollups_switches_alerts'),
    ]

    operations = [
        migrations.AddField(
            model_name='alert',
            name='about',
            field=models.CharField(blank=True, max_length=32),
        ),
        migrations.AlterField(
            model_name='alertrules',
            name='down_after',
            field=models.PositiveIntegerField(default=60, help_text='Seconds a tier must stay down, or an adapter failing, before an alert goes out'),
        ),
        migrations.CreateModel(
            name='AdapterOutage',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('platform', models.CharField(max_length=16)),
                ('started', models.DateTimeField()),
                ('ended', models.DateTimeField(blank=True, help_text='Empty: still failing', null=True)),
                ('error', models.CharField(blank=True, max_length=500)),
            ],
            options={
                'ordering': ['-started'],
                'constraints': [models.UniqueConstraint(condition=models.Q(('ended__isnull', True)), fields=('platform',), name='llm_adapteroutage_open')],
            },
        ),
    ]
