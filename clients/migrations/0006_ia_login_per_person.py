"""The I&A login is the person's (issue 10, section 6): its fields move to the client."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("clients", "0005_officials_and_signers"),
    ]

    operations = [
        migrations.AddField(
            model_name="client",
            name="ia_controller",
            field=models.CharField(
                choices=[
                    ("provider", "The provider"),
                    ("someone_else", "Someone else (former biller, group admin…): to regain"),
                    ("regain_claimed", "The provider says they regained it: to check"),
                    ("unknown", "Unknown"),
                ],
                default="provider",
                max_length=16,
                verbose_name="who controls the I&A login",
            ),
        ),
        migrations.AddField(
            model_name="client",
            name="ia_controller_note",
            field=models.CharField(blank=True, max_length=200, verbose_name="who, if known"),
        ),
        migrations.AddField(
            model_name="client",
            name="password_reset_likely",
            field=models.BooleanField(
                default=False,
                help_text="No I&A login for a long time: the password has probably expired.",
                verbose_name="I&A password reset likely",
            ),
        ),
    ]
