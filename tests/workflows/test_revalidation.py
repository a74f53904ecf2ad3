"""Medicare revalidation due dates: by hand, or imported from CMS's public list."""

from datetime import date, datetime, timedelta
from pathlib import Path

import pytest
import time_machine
from django.contrib.messages import get_messages
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from clients import services as client_services
from clients.models import Client, Organization, Profile
from notifications.models import Notification
from portal.models import AuditEvent
from tests.clients.factories import make_client
from workflows import revalidation, services
from workflows.deadlines import end_of_day
from workflows.errors import TransitionError
from workflows.models import Enrollment

pytestmark = pytest.mark.django_db

SAMPLE = (Path(__file__).parent.parent / "data" / "revalidation_sample.csv").read_text()
HEADER = (
    "Enrollment ID,National Provider Identifier,First Name,Last Name,Organization Name,"
    "Enrollment State Code,Enrollment Type,Provider Type Text,Enrollment Specialty,"
    "Revalidation Due Date,Adjusted Due Date"
)
# Noon in Chicago, before every date in the sample file.
NOW = datetime.fromisoformat("2026-04-15T12:00:00-05:00")


def csv_text(*rows):
    return "\n".join([HEADER, *rows]) + "\n"


@pytest.fixture(autouse=True)
def frozen():
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


@pytest.fixture
def demo_clients(northwind, northwind_staff):
    """The sample file's providers, with the demo's NPIs: Rivera (listed TBD) and her PLLC;
    Okafor (listed twice) and Lakeside Medical Group (an adjusted date)."""
    rivera = make_client(
        northwind, actor=northwind_staff, first_name="Ana", last_name="Rivera", npi="1234567893"
    )
    client_services.organization_add(
        client=rivera,
        legal_name="Rivera Therapy PLLC",
        kind=Organization.Kind.PLLC,
        npi="1245678903",
        actor=northwind_staff,
    )
    okafor = make_client(
        northwind, actor=northwind_staff, first_name="Chidi", last_name="Okafor", npi="1987654328"
    )
    client_services.organization_add(
        client=okafor,
        legal_name="Lakeside Medical Group",
        kind=Organization.Kind.GROUP,
        npi="1876543210",
        actor=northwind_staff,
    )
    return {"rivera": rivera, "okafor": okafor}


def individual(client) -> Profile:
    return client.profiles.get(kind=Profile.Kind.INDIVIDUAL)


def organizational(client) -> Profile:
    return client.profiles.get(kind=Profile.Kind.ORGANIZATIONAL)


def revalidation_of(profile) -> Enrollment | None:
    return Enrollment.objects.filter(profile=profile, kind=Enrollment.Kind.REVALIDATION).first()


def import_sample(firm, actor, text=SAMPLE):
    return revalidation.apply(firm=firm, parsed=revalidation.parse_csv(text), actor=actor)


# --- reading CMS's list -------------------------------------------------------------------


def test_tbd_is_unknown_and_changes_nothing(northwind, northwind_staff, demo_clients):
    parsed = revalidation.parse_csv(SAMPLE)
    assert parsed.listings["1234567893"].due_on is None
    rows = revalidation.plan(firm=northwind, parsed=parsed).rows
    [rivera] = [row for row in rows if row.listing.npi == "1234567893"]
    assert rivera.status == "tbd"
    import_sample(northwind, northwind_staff)
    assert revalidation_of(individual(demo_clients["rivera"])) is None
    assert (
        revalidation.revalidation_set_due(
            profile=individual(demo_clients["rivera"]), due_on=None, actor=northwind_staff
        )
        is None
    )
    assert revalidation_of(individual(demo_clients["rivera"])) is None


def test_the_adjusted_date_wins_over_the_due_date():
    parsed = revalidation.parse_csv(SAMPLE)
    assert parsed.listings["1876543210"].due_on == date(2026, 8, 31)  # not May 31


def test_an_npi_listed_twice_takes_its_earliest_date():
    listing = revalidation.parse_csv(SAMPLE).listings["1987654328"]
    assert listing.due_on == date(2026, 7, 31)
    assert listing.lines == [4, 5]


def test_iso_dates_and_empty_dates_are_read():
    parsed = revalidation.parse_csv(
        csv_text(",1987654328,Chidi,Okafor,,IL,3,P,IM,2026-07-31,", ",1234567893,Ana,R,,TX,3,P,S,,")
    )
    assert parsed.listings["1987654328"].due_on == date(2026, 7, 31)
    assert parsed.listings["1234567893"].due_on is None


def test_unmatched_npis_are_reported_with_their_names(northwind, demo_clients):
    plan = revalidation.plan(firm=northwind, parsed=revalidation.parse_csv(SAMPLE))
    assert [(item.npi, item.name) for item in plan.unmatched] == [("1111111112", "Morgan Example")]
    assert plan.summary == {"changed": 0, "new": 3, "error": 0, "tbd": 1, "unchanged": 0}


def test_an_npi_that_is_not_10_digits_is_reported_per_line(northwind, demo_clients):
    parsed = revalidation.parse_csv(
        csv_text(
            ",12345,Bo,Short,,TX,3,P,S,07/31/2026,",
            ",１２３４５６７８９３,Cy,Wide,,TX,3,P,S,07/31/2026,",
            ",1987654328,Chidi,Okafor,,IL,3,P,IM,31/07/2026,",
            ",1987654328,Chidi,Okafor,,IL,3,P,IM,07/31/2026,",
        )
    )
    assert parsed.problems == [
        "Line 2: the NPI “12345” is not 10 digits; skipped.",
        "Line 3: the NPI “１２３４５６７８９３” is not 10 digits; skipped.",
        "Line 4: “31/07/2026” is not a date (MM/DD/YYYY or TBD); skipped.",
    ]
    assert list(parsed.listings) == ["1987654328"]


def test_a_file_without_the_columns_says_which_are_missing():
    parsed = revalidation.parse_csv("National Provider Identifier,Revalidation Due Date\n1,2\n")
    assert parsed.error == (
        "This is not CMS's Revalidation Due Date List: it has no column Adjusted Due Date."
    )


def test_too_many_lines_are_refused(monkeypatch):
    monkeypatch.setattr(revalidation, "MAX_ROWS", 2)
    parsed = revalidation.parse_csv(csv_text(*[",1987654328,C,O,,IL,3,P,IM,TBD,"] * 3))
    assert parsed.error.startswith("At most 2 lines per file")


# --- writing the dates ----------------------------------------------------------------


def test_import_writes_the_dates_and_reimport_changes_nothing(
    northwind, northwind_staff, demo_clients
):
    assert import_sample(northwind, northwind_staff) == {"new": 3, "changed": 0}
    okafor = revalidation_of(individual(demo_clients["okafor"]))
    assert okafor.due_on == date(2026, 7, 31)
    assert okafor.deadline == end_of_day(northwind, date(2026, 7, 31))
    events, notifications = AuditEvent.objects.count(), Notification.objects.count()
    enrollments = set(Enrollment.objects.values_list("pk", "due_on", "deadline"))

    assert import_sample(northwind, northwind_staff) == {"new": 0, "changed": 0}

    # One more event: the import itself, which wrote nothing.
    assert AuditEvent.objects.count() == events + 1
    assert AuditEvent.objects.latest("pk").verb == "revalidations.imported"
    assert Notification.objects.count() == notifications
    assert set(Enrollment.objects.values_list("pk", "due_on", "deadline")) == enrollments
    plan = revalidation.plan(firm=northwind, parsed=revalidation.parse_csv(SAMPLE))
    assert plan.summary["unchanged"] == 3
    assert not plan.writable


def test_an_organization_npi_matches_the_organization_profile(
    northwind, northwind_staff, demo_clients
):
    import_sample(northwind, northwind_staff)
    group = revalidation_of(organizational(demo_clients["okafor"]))
    assert group.profile.organization.legal_name == "Lakeside Medical Group"
    assert group.due_on == date(2026, 8, 31)
    assert revalidation_of(individual(demo_clients["okafor"])).due_on == date(2026, 7, 31)


def test_an_open_revalidation_takes_the_date(northwind, northwind_staff, demo_clients):
    profile = individual(demo_clients["okafor"])
    started = services.enrollment_create(
        profile=profile, kind="revalidation", actor=northwind_staff
    )
    import_sample(northwind, northwind_staff)
    assert Enrollment.objects.filter(profile=profile).count() == 1
    started.refresh_from_db()
    assert started.due_on == date(2026, 7, 31)


def test_a_finished_revalidation_is_not_reopened_by_an_old_list(
    northwind, northwind_staff, demo_clients
):
    profile = individual(demo_clients["okafor"])
    enrollment = revalidation.revalidation_set_due(
        profile=profile, due_on=date(2026, 7, 31), actor=northwind_staff
    )
    services.enrollment_change_state(enrollment=enrollment, to="submitted", actor=northwind_staff)
    services.enrollment_record_outcome(
        enrollment=enrollment,
        outcome="approved",
        effective_date=date(2026, 4, 15),
        actor=northwind_staff,
    )
    import_sample(northwind, northwind_staff)
    assert list(Enrollment.objects.filter(profile=profile).values_list("state", flat=True)) == [
        "approved"
    ]


def test_a_date_more_than_60_days_ago_is_refused(northwind, northwind_staff, demo_clients):
    profile = individual(demo_clients["okafor"])
    with pytest.raises(TransitionError, match="more than 60 days ago"):
        revalidation.revalidation_set_due(
            profile=profile, due_on=date(2026, 1, 31), actor=northwind_staff
        )
    assert revalidation_of(profile) is None
    # 59 days ago is a stay of enrollment coming: still a date to record.
    assert revalidation.revalidation_set_due(
        profile=profile, due_on=date(2026, 2, 15), actor=northwind_staff
    )
    plan = revalidation.plan(
        firm=northwind,
        parsed=revalidation.parse_csv(csv_text(",1987654328,C,O,,IL,3,P,IM,12/31/2025,")),
    )
    assert [row.status for row in plan.rows] == ["error"]
    assert "more than 60 days ago" in plan.rows[0].reason


def test_the_caseload_next_deadline_picks_up_the_revalidation(
    northwind, northwind_staff, demo_clients
):
    client = demo_clients["okafor"]
    revalidation.revalidation_set_due(
        profile=individual(client), due_on=date(2026, 7, 31), actor=northwind_staff
    )
    client = Client.objects.get(pk=client.pk)
    assert client.next_deadline == end_of_day(northwind, date(2026, 7, 31))


# --- the staff alerts -------------------------------------------------------------------


def scheduled(kind_prefix="revalidation."):
    return Notification.objects.filter(
        kind__startswith=kind_prefix, state=Notification.State.SCHEDULED, channel="email"
    )


def test_a_changed_date_reschedules_the_alerts(northwind, northwind_staff, demo_clients, frozen):
    profile = individual(demo_clients["okafor"])
    enrollment = revalidation.revalidation_set_due(
        profile=profile, due_on=date(2026, 7, 31), actor=northwind_staff
    )
    first = list(scheduled())
    # 90, 60, 30, 14 and 7 days before, and on the day; to the assigned staff member.
    assert sorted(n.kind for n in first) == ["revalidation.due_alert"] * 5 + [
        "revalidation.due_today"
    ]
    assert {n.recipient for n in first} == {northwind_staff}
    assert all("2026-07-31" in n.step for n in first)
    assert all(n.subject_id == str(enrollment.public_id) for n in first)
    assert min(n.due_at for n in first) == datetime.fromisoformat("2026-05-02T09:00:00-05:00")

    frozen.shift(timedelta(minutes=5))
    revalidation.revalidation_set_due(
        profile=profile, due_on=date(2026, 8, 31), actor=northwind_staff
    )
    for old in first:
        old.refresh_from_db()
        assert old.state == Notification.State.CANCELLED
    second = list(scheduled())
    assert len(second) == 6
    assert all("2026-08-31" in n.step for n in second)
    event = AuditEvent.objects.filter(verb="enrollment.revalidation_due").latest("pk")
    assert event.data == {"due_on": "2026-08-31", "from": "2026-07-31"}

    # Set back to the first date: its alerts come again.
    frozen.shift(timedelta(minutes=5))
    revalidation.revalidation_set_due(
        profile=profile, due_on=date(2026, 7, 31), actor=northwind_staff
    )
    assert scheduled().count() == 6
    assert all("2026-07-31" in n.step for n in scheduled())


def test_alerts_already_past_are_not_scheduled(northwind, northwind_staff, demo_clients):
    revalidation.revalidation_set_due(
        profile=individual(demo_clients["okafor"]), due_on=date(2026, 4, 30), actor=northwind_staff
    )
    # April 30 is 15 days away: the 14- and 7-day alerts, and the day itself.
    assert sorted(n.step.split("-2026")[0] for n in scheduled()) == [
        "before-14",
        "before-7",
        "due-day",
    ]


# --- the pages --------------------------------------------------------------------------


def upload(browser, content, name="revalidation.csv"):
    if isinstance(content, str):
        content = content.encode()
    return browser.post(
        reverse("revalidation_import"), {"file": SimpleUploadedFile(name, content, "text/csv")}
    )


def test_staff_preview_then_confirm(as_user, northwind, northwind_staff, demo_clients):
    browser = as_user(northwind_staff)
    response = upload(browser, SAMPLE)
    assert response.status_code == 200
    plan = response.context["plan"]
    assert plan.summary["new"] == 3
    assert b"Morgan Example" in response.content
    assert b"TBD: unknown" in response.content
    assert not Enrollment.objects.exists()  # a preview writes nothing

    response = browser.post(reverse("revalidation_import_confirm"), follow=True)
    assert b"Revalidation due dates imported: 3 new" in response.content
    assert revalidation_of(individual(demo_clients["okafor"])).due_on == date(2026, 7, 31)
    # Confirming again finds nothing waiting.
    response = browser.post(reverse("revalidation_import_confirm"), follow=True)
    assert b"Nothing to import" in response.content


def test_data_changed_since_the_preview_is_shown_again(
    as_user, northwind, northwind_staff, demo_clients
):
    browser = as_user(northwind_staff)
    upload(browser, SAMPLE)
    revalidation.revalidation_set_due(
        profile=individual(demo_clients["okafor"]), due_on=date(2026, 6, 30), actor=northwind_staff
    )
    response = browser.post(reverse("revalidation_import_confirm"))
    assert b"changed since the preview" in response.content
    assert revalidation_of(individual(demo_clients["okafor"])).due_on == date(2026, 6, 30)


def test_another_firms_admin_cannot_see_or_affect_our_profiles(
    as_user, northwind, bluebird_admin, demo_clients
):
    browser = as_user(bluebird_admin)
    response = upload(browser, SAMPLE)
    plan = response.context["plan"]
    assert plan.rows == []
    assert len(plan.unmatched) == 5  # every NPI: none is Bluebird's
    browser.post(reverse("revalidation_import_confirm"))
    profile = individual(demo_clients["okafor"])
    response = browser.post(
        reverse("revalidation_set_due", args=[profile.public_id]), {"due_on": "2026-07-31"}
    )
    assert response.status_code == 404
    assert not Enrollment.objects.exists()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"PK\x03\x04\x14\x00\x06\x00", "spreadsheet workbook, not a CSV"),
        (b"\xff\xfe\x00N\x00P\x00I", "not UTF-8 text"),
        (b"National Provider Identifier\x00,x\n", "not a CSV file"),
        (b"npi,due\n1987654328,07/31/2026\n", "it has no column National Provider Identifier"),
        (HEADER.encode() + b"\n", "no lines below its header"),
    ],
)
def test_a_bad_file_is_refused_with_a_clear_message(as_user, northwind_staff, content, message):
    response = upload(as_user(northwind_staff), content)
    assert response.status_code == 200
    assert response.context["plan"] is None
    assert message in response.context["form"].errors["file"][0]


def said(response) -> str:
    return " ".join(str(message) for message in get_messages(response.wsgi_request))


def test_a_date_set_by_hand_from_the_client_page(as_user, northwind, northwind_staff, demo_clients):
    browser = as_user(northwind_staff)
    profile = organizational(demo_clients["okafor"])
    url = reverse("revalidation_set_due", args=[profile.public_id])
    response = browser.post(url, {"due_on": "2026-09-30"})
    assert response.status_code == 302
    assert response.url == reverse("client_detail", args=[demo_clients["okafor"].public_id])
    assert revalidation_of(profile).due_on == date(2026, 9, 30)

    # Blank is "TBD": nothing changes.
    response = browser.post(url, {"due_on": ""})
    assert "Nothing changed" in said(response)
    assert revalidation_of(profile).due_on == date(2026, 9, 30)

    # Too old: refused in words, nothing changed.
    response = browser.post(url, {"due_on": "2025-12-31"})
    assert "more than 60 days ago" in said(response)
    assert revalidation_of(profile).due_on == date(2026, 9, 30)


def test_the_client_page_shows_the_due_date_and_its_form(
    as_user, northwind, northwind_staff, demo_clients
):
    client = demo_clients["okafor"]
    profile = individual(client)
    revalidation.revalidation_set_due(
        profile=profile, due_on=date(2026, 7, 31), actor=northwind_staff
    )
    page = as_user(northwind_staff).get(reverse("client_detail", args=[client.public_id]))
    text = page.content.decode()
    assert 'due at CMS <time datetime="2026-07-31">Jul 31, 2026</time>' in text
    assert reverse("revalidation_set_due", args=[profile.public_id]) in text
    assert f'id="reval-due-{profile.public_id}" value="2026-07-31"' in text
