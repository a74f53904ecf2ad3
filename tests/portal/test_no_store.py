"""Pages and exports with PHI are never cacheable (issue 11, finding 11)."""

import pytest
from django.urls import reverse

pytestmark = pytest.mark.django_db


def no_store(response) -> bool:
    return "no-store" in response.get("Cache-Control", "")


def test_pages_and_exports_with_phi_are_not_cacheable(
    as_user, northwind_staff, northwind_admin, provider, rivera
):
    staff = as_user(northwind_staff)
    pages = {
        "dashboard": staff.get(reverse("dashboard")),
        "client page": staff.get(reverse("client_detail", args=[rivera.public_id])),
        "status report": staff.get(reverse("client_status", args=[rivera.public_id])),
        "stuck csv": as_user(northwind_admin).get(reverse("stuck_report_csv")),
        "to-dos": as_user(provider).get(reverse("dashboard")),
    }
    for name, response in pages.items():
        assert response.status_code == 200, name
        assert no_store(response), name
