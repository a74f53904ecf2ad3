"""Every read of a client's record is audited, and the firm admin sees a client's access
log (issue 11, defence in depth: HIPAA's audit-controls rule)."""

import pytest
from django.urls import reverse

from portal.models import AuditEvent

pytestmark = pytest.mark.django_db


def reads_of(client):
    return AuditEvent.objects.filter(target_type="clients.client", target_id=str(client.public_id))


def test_opening_a_client_page_or_status_report_is_audited(as_user, northwind_staff, rivera):
    staff = as_user(northwind_staff)
    staff.get(reverse("client_detail", args=[rivera.public_id]))
    staff.get(reverse("client_status", args=[rivera.public_id]))
    events = list(reads_of(rivera).filter(verb__endswith="viewed").order_by("pk"))
    assert [e.verb for e in events] == ["client.viewed", "client.status_viewed"]
    assert all(e.actor == northwind_staff and e.ip == "127.0.0.1" for e in events)
    # Reads stay off the client's timeline of changes.
    page = staff.get(reverse("client_detail", args=[rivera.public_id])).content.decode()
    assert "client.viewed" not in page


def test_exporting_the_stuck_report_is_audited(as_user, northwind_admin, northwind):
    b"".join(as_user(northwind_admin).get(reverse("stuck_report_csv")).streaming_content)
    assert AuditEvent.objects.filter(firm=northwind, verb="report.stuck_exported").count() == 1


def test_the_firm_admin_sees_who_opened_a_client(as_user, northwind_admin, northwind_staff, rivera):
    as_user(northwind_staff).get(reverse("client_detail", args=[rivera.public_id]))
    page = as_user(northwind_admin).get(reverse("client_access_log", args=[rivera.public_id]))
    assert page.status_code == 200
    text = page.content.decode()
    assert northwind_staff.display_name in text
    assert "Opened the client page" in text
    assert "127.0.0.1" in text


def test_staff_cannot_read_the_access_log(as_user, northwind_staff, rivera):
    page = as_user(northwind_staff).get(reverse("client_access_log", args=[rivera.public_id]))
    assert page.status_code == 403
