import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from clients.importing import COLUMNS, apply_import, plan_import
from clients.models import Client, Organization

pytestmark = pytest.mark.django_db

HEADER = ",".join(COLUMNS)


def csv_text(*rows):
    return "\n".join([HEADER, *rows]) + "\n"


def upload(client, text):
    return client.post(
        reverse("client_import"),
        {"file": SimpleUploadedFile("clients.csv", text.encode(), "text/csv")},
    )


GOOD = csv_text(
    "Ana,Rivera,LCSW,1234567893,ana@clinic.test,555-0100,Rivera Therapy PLLC,,staff@northwind.test",
    "Chidi,Okafor,MD,1987654328,chidi@clinic.test,,,,",
)


def test_preview_writes_nothing(as_user, northwind_staff):
    response = upload(as_user(northwind_staff), GOOD)
    assert response.status_code == 200
    assert response.context["plan"].summary == {"new": 2, "updated": 0, "unchanged": 0, "error": 0}
    assert not Client.objects.exists()


def test_confirm_writes_all_valid_rows_and_reimport_changes_nothing(
    as_user, northwind_staff, northwind
):
    client = as_user(northwind_staff)
    upload(client, GOOD)
    response = client.post(reverse("client_import_confirm"), follow=True)
    assert b"Imported: 2 new" in response.content
    rivera = Client.objects.get(firm=northwind, npi="1234567893")
    assert rivera.assigned_staff == northwind_staff
    assert Organization.objects.get(client=rivera).kind == "pllc"
    assert rivera.profiles.count() == 2
    again = upload(client, GOOD)
    assert again.context["plan"].summary == {"new": 0, "updated": 0, "unchanged": 2, "error": 0}
    assert b"Nothing to import" in again.content


def test_updated_rows_say_what_changes(northwind, northwind_staff):
    plan = plan_import(firm=northwind, text=GOOD)
    apply_import(firm=northwind, plan=plan, actor=northwind_staff)
    changed = csv_text(
        "Ana,Rivera,LCSW,1234567893,ana.new@clinic.test,555-0100,Rivera Therapy PLLC,,staff@northwind.test"
    )
    row = plan_import(firm=northwind, text=changed).rows[0]
    assert row.status == "updated"
    assert row.changes == ["email"]


def test_bad_rows_are_listed_with_their_reason(northwind, northwind_staff):
    text = csv_text(
        "Ana,Rivera,LCSW,1234567890,ana@clinic.test,,,,",  # bad check digit
        "Bo,Brooks,MD,1987654328,bo@clinic.test,,,,nobody@northwind.test",  # unknown staff
        "Cy,Cole,MD,1987654328,cy@clinic.test,,,,",  # same NPI as the line above
        ",Dunn,MD,1245678903,not-an-email,,,,",  # missing first name, bad email
        "Eve,Ellis,DO,1245678903,eve@clinic.test,,,1111111111,",  # org NPI without org
    )
    rows = plan_import(firm=northwind, text=text).rows
    assert [row.status for row in rows] == ["error"] * 5
    assert "check digit" in rows[0].reasons[0]
    assert "no active staff member nobody@northwind.test" in rows[1].reasons
    assert "duplicate of line 3 (same NPI)" in rows[2].reasons
    assert "first name is empty" in rows[3].reasons
    assert any("not an email" in reason for reason in rows[3].reasons)
    assert any("organization NPI" in reason for reason in rows[4].reasons)


def test_a_file_without_the_columns_is_refused(as_user, northwind_staff):
    response = upload(as_user(northwind_staff), "name,phone\nAna,1\n")
    assert b"no column first_name" in response.content


def test_the_whole_import_is_one_transaction(northwind, northwind_staff, monkeypatch):
    from clients import importing, services

    plan = plan_import(firm=northwind, text=GOOD)
    calls = {"n": 0}
    real = services.client_create

    def fail_on_second(**kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("disk full")
        return real(**kwargs)

    monkeypatch.setattr(importing.services, "client_create", fail_on_second)
    with pytest.raises(RuntimeError):
        apply_import(firm=northwind, plan=plan, actor=northwind_staff)
    assert not Client.objects.exists()


def test_data_changed_since_the_preview_is_shown_again(as_user, northwind_staff, northwind):
    client = as_user(northwind_staff)
    upload(client, GOOD)
    from tests.clients.factories import make_client

    make_client(northwind, actor=northwind_staff, npi="1234567893", email="other@clinic.test")
    response = client.post(reverse("client_import_confirm"))
    assert b"changed since the preview" in response.content
    assert Client.objects.count() == 1


def test_template_download(as_user, northwind_staff):
    response = as_user(northwind_staff).get(reverse("client_import_template"))
    assert response["Content-Type"].startswith("text/csv")
    assert response.content.decode().splitlines()[0] == HEADER


def test_npi_check_accepts_only_ascii_digits_in_the_import(northwind, northwind_staff):
    text = csv_text(
        "Ana,Rivera,LCSW,123456789²,ana@clinic.test,,,,",
        "Bo,Brooks,MD,１２３４５６７８９３,bo@clinic.test,,,,",
    )
    rows = plan_import(firm=northwind, text=text).rows
    assert [row.status for row in rows] == ["error", "error"]
    assert all("exactly 10 digits" in row.reasons[0] for row in rows)


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        ("A" * 150 + ",Rivera,LCSW,1234567893,ana@clinic.test,,,,", "first name"),
        ("Ana,Rivera,LCSW,1234567893,ana@clinic.test," + "5" * 40 + ",,,", "phone"),
        ("Ana,Riv\x00era,LCSW,1234567893,ana@clinic.test,,,,", "last name"),
        ("Ana,Rivera,LCSW,1234567893,ana@clinic.test,," + "R" * 300 + " PLLC,,", "organization"),
    ],
)
def test_csv_import_preview_refuses_what_the_database_would_refuse(
    as_user, northwind, northwind_staff, row, reason
):
    plan = plan_import(firm=northwind, text=csv_text(row))
    assert [r.status for r in plan.rows] == ["error"]
    assert any(reason in problem for problem in plan.rows[0].reasons), plan.rows[0].reasons
    # The page shows it as refused, and confirming writes nothing and is not an error.
    browser = as_user(northwind_staff)
    assert upload(browser, csv_text(row)).status_code == 200
    response = browser.post(reverse("client_import_confirm"), follow=True)
    assert response.status_code == 200
    assert not Client.objects.filter(firm=northwind).exists()


def test_services_refuse_a_value_longer_than_its_field(northwind, northwind_staff):
    from clients import services
    from portal.errors import DomainError

    with pytest.raises(DomainError):
        services.client_create(
            firm=northwind,
            actor=northwind_staff,
            first_name="A" * 10_000,
            last_name="Rivera",
            npi="1234567893",
            email="ana@clinic.test",
        )
    assert not Client.objects.filter(firm=northwind).exists()
