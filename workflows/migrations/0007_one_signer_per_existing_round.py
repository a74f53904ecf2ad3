"""Every existing signature round gets its one signer: the provider, as they were assumed
to be (as Authorized Official on an organizational profile). Batched, one transaction per
batch, and safe to run again (rounds that have signers are skipped): the rounds table may be
large and live."""

from django.db import migrations, transaction

BATCH = 2000
SIGNER_STATE = {
    "confirmed": "signed",
    "received": "signed",
    "provider_says_signed": "says_signed",
    "mailed": "says_signed",
}


def add_signers(apps, schema_editor):
    SignatureRound = apps.get_model("workflows", "SignatureRound")
    Signer = apps.get_model("workflows", "Signer")
    last = 0
    while True:
        with transaction.atomic():
            rounds = list(
                SignatureRound.objects.filter(pk__gt=last, signers__isnull=True)
                .select_related("enrollment__profile__client")
                .order_by("pk")[:BATCH]
            )
            if not rounds:
                return
            signers = []
            for signature_round in rounds:
                profile = signature_round.enrollment.profile
                client = profile.client
                name = f"{client.first_name} {client.last_name}".strip()
                signers.append(
                    Signer(
                        firm_id=signature_round.firm_id,
                        signature_round=signature_round,
                        role="provider" if profile.kind == "individual" else "authorized_official",
                        name=f"{name}, {client.credentials}" if client.credentials else name,
                        pecos_email=client.email,
                        is_provider=True,
                        state=SIGNER_STATE.get(signature_round.state, "awaiting"),
                        state_entered_at=signature_round.state_entered_at,
                    )
                )
            Signer.objects.bulk_create(signers)
        last = rounds[-1].pk


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("workflows", "0006_officials_and_signers"),
    ]

    operations = [migrations.RunPython(add_signers, migrations.RunPython.noop)]
