"""The profile's I&A fields, now the person's (clients/migrations/0007 copied them)."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("clients", "0007_copy_ia_login_to_the_person"),
    ]

    operations = [
        migrations.RemoveField(
            model_name="profile",
            name="ia_controller",
        ),
        migrations.RemoveField(
            model_name="profile",
            name="ia_controller_note",
        ),
        migrations.RemoveField(
            model_name="profile",
            name="password_reset_likely",
        ),
    ]
