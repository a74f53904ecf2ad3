"""Every GET parameter of every list page, thrown junk: a clear message or a quiet default,
never a 5xx (issue 11, finding 5)."""

import pytest
from django.urls import reverse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytestmark = pytest.mark.django_db

# Each list page with every GET parameter it reads.
LIST_PAGES = {
    "dashboard": ["assignee", "stage", "holder", "due_within", "overdue", "q", "sort", "page"],
    "stuck_report": ["stage", "staff", "holder", "reason", "age", "after"],
    "stuck_report_csv": ["stage", "staff", "holder", "reason", "age"],
    "inbox": ["after", "page"],
}

JUNK = st.one_of(
    st.text(max_size=300),
    st.sampled_from(
        ["all", "none", "junk", "-1", "1e9", "99999999999999999999", "\x00", "²", "٣", "'", "%"]
    ),
    st.uuids().map(str),
)


def _url(name):
    return reverse(name)


def test_dashboard_with_junk_assignee_is_not_a_server_error(as_user, northwind_admin):
    response = as_user(northwind_admin).get(reverse("dashboard"), {"assignee": "junk"})
    assert response.status_code == 200
    assert "That staff member filter was not recognised" in response.content.decode()


def test_stuck_report_with_staff_all_is_not_a_server_error(as_user, northwind_admin):
    for name in ("stuck_report", "stuck_report_csv"):
        response = as_user(northwind_admin).get(reverse(name), {"staff": "all"})
        assert response.status_code == 200, name


@pytest.mark.parametrize("name", sorted(LIST_PAGES))
def test_random_values_in_every_list_parameter_never_give_a_5xx(
    as_user, northwind_admin, northwind_staff, name
):
    admin = as_user(northwind_admin)
    staff = as_user(northwind_staff)

    @settings(
        max_examples=25,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture],
    )
    @given(params=st.dictionaries(st.sampled_from(LIST_PAGES[name]), JUNK, max_size=4))
    def check(params):
        for client in (admin, staff):
            response = client.get(_url(name), params)
            assert response.status_code < 500, (name, params)

    check()
