"""User.username_skeleton: the look-alike key of each username (accounts.usernames), unique.

Added empty, filled for every existing user, then made unique and required. If two existing
usernames already look alike, the unique index cannot be built: the fill stops, names them,
and the migration rolls back. Rename (or delete) one of each pair, then migrate again; which
one is the impostor is a person's call, not a migration's.
"""

from django.db import migrations, models

from accounts.usernames import username_skeleton

BATCH = 500


def fill_username_skeletons(apps, schema_editor):
    User = apps.get_model("accounts", "User")
    users = User.objects.using(schema_editor.connection.alias)
    first_with: dict[str, tuple[int, str]] = {}
    clashes: list[str] = []
    batch = []
    for user in users.only("pk", "username").order_by("pk").iterator(chunk_size=BATCH):
        user.username_skeleton = username_skeleton(user.username)
        other = first_with.setdefault(user.username_skeleton, (user.pk, user.username))
        if other[0] != user.pk:
            clashes.append(
                f"id {other[0]} {ascii(other[1])} and id {user.pk} {ascii(user.username)}"
            )
        batch.append(user)
        if len(batch) == BATCH:
            users.bulk_update(batch, ["username_skeleton"])
            batch = []
    if clashes:
        raise RuntimeError(
            "These users' usernames look alike, so User.username_skeleton cannot be unique: "
            + "; ".join(clashes)
            + ". Rename or delete one of each pair, then migrate again."
        )
    users.bulk_update(batch, ["username_skeleton"])


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0002_loginsession"),
    ]

    operations = [
        migrations.AddField(
            model_name="user",
            name="username_skeleton",
            field=models.CharField(
                editable=False, max_length=64, null=True, verbose_name="username skeleton"
            ),
        ),
        migrations.RunPython(fill_username_skeletons, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="user",
            name="username_skeleton",
            field=models.CharField(
                editable=False,
                error_messages={"unique": "A user with a similar username already exists."},
                max_length=64,
                unique=True,
                verbose_name="username skeleton",
            ),
        ),
    ]
