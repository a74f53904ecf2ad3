import pytest
from django.urls import reverse

from portal.models import AuditEvent

pytestmark = pytest.mark.django_db


def settings_data(firm, **changes):
    data = {
        "name": firm.name,
        "contact_email": "help@northwind.test",
        "time_zone": firm.time_zone,
        "invitation_days": 7,
        "grant_expiry_days": 30,
        "signature_deadline_days": 20,
        "development_response_days": 30,
        "reconsideration_days": 60,
        "notification_max_age_hours": 72,
        "reminder_hour": 9,
        "digest_hour": 8,
        "grant_reminder_days": "3,7,14,21,25,28",
        "grant_staff_alert_days": "21,28",
        "round_reminder_days": "2,5,10,15",
        "round_staff_alert_days": "7,15",
        "credential_reminder_days": "90,60,30,14,7",
        "document_reminder_days": "7,3,1",
        "upload_max_mb": 20,
    }
    from reports.stuck import DEFAULTS

    data.update({f"stuck_{name}": days for name, days in DEFAULTS.items()})
    data.update(changes)
    return data


def test_admin_changes_cadences_and_thresholds(as_user, northwind, northwind_admin):
    response = as_user(northwind_admin).post(
        reverse("firm_settings"),
        settings_data(
            northwind, grant_reminder_days="5, 10", stuck_access_pending=7, reminder_hour=10
        ),
        follow=True,
    )
    assert b"Settings saved" in response.content
    northwind.refresh_from_db()
    assert northwind.grant_reminder_days == [5, 10]
    assert northwind.reminder_hour == 10
    assert northwind.stuck_thresholds["access_pending"] == 7
    event = AuditEvent.objects.get(verb="firm.settings_changed")
    assert "grant_reminder_days" in event.data["fields"]


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("grant_reminder_days", "three", b"whole numbers separated by commas"),
        ("grant_reminder_days", "3, 400", b"between 0 and 365"),
        ("grant_reminder_days", "3, \u0663", b"whole numbers separated by commas"),
        ("time_zone", "Mars/Olympus", b"not a known time zone"),
        ("reminder_hour", "25", b"Choose an hour from the list (0 to 23)."),
        ("reconsideration_days", "0", b"greater than or equal to 1"),
        ("development_response_days", "91", b"less than or equal to 90"),
        ("notification_max_age_hours", "12", b"greater than or equal to 24"),
    ],
)
def test_bad_settings_are_clear_errors_and_change_nothing(
    as_user, northwind, northwind_admin, field, value, message
):
    before = {field: getattr(northwind, field)}
    response = as_user(northwind_admin).post(
        reverse("firm_settings"), settings_data(northwind, **{field: value})
    )
    assert response.status_code == 200
    assert message in response.content
    northwind.refresh_from_db()
    assert getattr(northwind, field) == before[field]


def test_staff_cannot_change_settings(as_user, northwind_staff, northwind):
    response = as_user(northwind_staff).post(
        reverse("firm_settings"), settings_data(northwind, name="Hacked")
    )
    assert response.status_code == 403
    northwind.refresh_from_db()
    assert northwind.name != "Hacked"


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("invitation_days", "99999999999", b"less than or equal to 30"),
        ("invitation_days", "0", b"greater than or equal to 1"),
        ("grant_expiry_days", "31", b"less than or equal to 30"),
        ("signature_deadline_days", "0", b"greater than or equal to 1"),
        ("signature_deadline_days", "21", b"less than or equal to 20"),
        ("digest_hour", "24", b"Choose an hour from the list (0 to 23)."),
        ("reminder_hour", "nine", b"Choose an hour from the list (0 to 23)."),
    ],
)
def test_firm_settings_refuse_out_of_range_numbers(
    as_user, northwind, northwind_admin, field, value, message
):
    before = getattr(northwind, field)
    response = as_user(northwind_admin).post(
        reverse("firm_settings"), settings_data(northwind, **{field: value})
    )
    assert response.status_code == 200
    assert message in response.content
    northwind.refresh_from_db()
    assert getattr(northwind, field) == before


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("invitation_days", 0),
        ("invitation_days", 31),
        ("grant_expiry_days", 0),
        ("signature_deadline_days", 21),
        ("reminder_hour", 24),
        ("digest_hour", 24),
    ],
)
def test_firm_setting_bounds_are_database_rules(northwind, field, value):
    from django.db import IntegrityError, transaction

    from portal.models import Firm

    with pytest.raises(IntegrityError), transaction.atomic():
        Firm.objects.filter(pk=northwind.pk).update(**{field: value})


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("round_reminder_days", "2, 5, 25", b"Day 25 falls on or after the 20-day signature"),
        ("round_staff_alert_days", "20", b"Day 20 falls on or after the 20-day signature"),
        ("grant_reminder_days", "3, 30", b"Day 30 falls on or after the 30-day connection"),
    ],
)
def test_a_cadence_outside_its_clock_is_refused(
    as_user, northwind, northwind_admin, field, value, message
):
    before = getattr(northwind, field)
    response = as_user(northwind_admin).post(
        reverse("firm_settings"), settings_data(northwind, **{field: value})
    )
    assert response.status_code == 200
    assert message in response.content
    northwind.refresh_from_db()
    assert getattr(northwind, field) == before


def test_the_settings_page_is_grouped_and_every_field_is_in_one_section(
    as_user, northwind, northwind_admin
):
    from portal.forms import FirmSettingsForm
    from reports.stuck import DEFAULTS, RULE_LABELS

    rules = {name: (RULE_LABELS[name], days) for name, days in DEFAULTS.items()}
    form = FirmSettingsForm(instance=northwind, stuck_rules=rules)
    placed = [field.name for _, _, fields in form.sections() for field, _ in fields]
    assert sorted(placed) == sorted(form.fields)  # each field once, none forgotten
    assert [title for title, _, _ in form.sections()] == [
        "Firm",
        "Clocks",
        "Reminders",
        "Email and uploads",
        "Stuck thresholds",
    ]

    page = as_user(northwind_admin).get(reverse("firm_settings")).content.decode()
    for title in ("Firm", "Clocks", "Reminders", "Stuck thresholds"):
        assert f"<legend>{title}</legend>" in page
    # The zone is a searchable choice of real zones.
    assert 'list="time-zones"' in page
    assert '<option value="America/Chicago"></option>' in page
    assert '<option value="Mars/Olympus">' not in page
    # Hours are a choice, said the way an office says them.
    assert '<option value="9" selected>9 AM</option>' in page


def test_each_reminder_schedule_reads_as_a_sentence(as_user, northwind, northwind_admin):
    page = as_user(northwind_admin).get(reverse("firm_settings")).content.decode()
    assert "On day 3, 7, 14, 21, 25 and 28 of the 30-day connection request clock." in page
    assert "On day 2, 5, 10 and 15 of the 20-day signature clock." in page
    assert "90, 60, 30, 14 and 7 days before." in page

    # A refused schedule still shows what is saved, next to its error.
    response = as_user(northwind_admin).post(
        reverse("firm_settings"), settings_data(northwind, round_reminder_days="5, 25")
    )
    page = response.content.decode()
    assert "Day 25 falls on or after the 20-day signature deadline" in page
    assert "On day 2, 5, 10 and 15 of the 20-day signature clock." in page
