"""Number every room's messages 1, 2, 3... (seq), let senders name their messages, and
redact rather than delete."""

from django.db import migrations, models


def number_messages(apps, schema_editor):
    Message = apps.get_model("realtime", "Message")
    Room = apps.get_model("realtime", "Room")
    for room in Room.objects.all().iterator():
        seq = 0
        batch = []
        for message in Message.objects.filter(room=room).order_by("id").only("id").iterator():
            seq += 1
            message.seq = seq
            batch.append(message)
            if len(batch) >= 1000:
                Message.objects.bulk_update(batch, ["seq"])
                batch = []
        Message.objects.bulk_update(batch, ["seq"])
        Room.objects.filter(pk=room.pk).update(last_seq=seq)


class Migration(migrations.Migration):
    dependencies = [("realtime", "0001_initial")]

    operations = [
        migrations.AddField(
            model_name="room",
            name="last_seq",
            field=models.BigIntegerField(default=0, editable=False),
        ),
        migrations.AddField(
            model_name="message",
            name="seq",
            field=models.BigIntegerField(editable=False, null=True),
        ),
        migrations.AddField(
            model_name="message",
            name="client_id",
            field=models.CharField(blank=True, editable=False, max_length=64, null=True),
        ),
        migrations.AddField(
            model_name="message",
            name="redacted_at",
            field=models.DateTimeField(blank=True, editable=False, null=True),
        ),
        migrations.RunPython(number_messages, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="message",
            name="seq",
            field=models.BigIntegerField(editable=False),
        ),
        migrations.RemoveIndex(model_name="message", name="realtime_msg_room_id_desc"),
        migrations.AlterModelOptions(name="message", options={"ordering": ["room", "seq"]}),
        migrations.AddConstraint(
            model_name="message",
            constraint=models.UniqueConstraint(
                fields=("room", "seq"), name="realtime_msg_room_seq"
            ),
        ),
        migrations.AddConstraint(
            model_name="message",
            constraint=models.UniqueConstraint(
                condition=models.Q(client_id__isnull=False),
                fields=("author", "client_id"),
                name="realtime_msg_author_client_id",
            ),
        ),
    ]
