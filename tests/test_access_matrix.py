"""The access matrix: every URL pattern, every persona, one expected outcome each.

A route missing from ROUTES fails `test_every_route_is_in_the_matrix`: a new view is not done
until this table says who may reach it. Objects are Northwind's, so Bluebird's people must get
404 for them, exactly as for something that does not exist.
"""

from datetime import timedelta

import pytest
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from notifications.models import Notification
from tests.portal.factories import InvitationFactory, MembershipFactory

OK, LOGIN, FORBIDDEN, NOT_FOUND, REDIRECT = 200, "login", 403, 404, 302
PERSONAS = [
    "anonymous",
    "northwind_admin",
    "northwind_staff",
    "bluebird_staff",
    "deactivated",
    "operator",
    "provider",  # Northwind's Ana Rivera
    "delegate",  # her office manager
]


def row(*outcomes):
    return dict(zip(PERSONAS, outcomes, strict=True))


#                      anon   nw admin  nw staff  bb staff   deact  operator   provider   delegate
ADMIN_ONLY = row(LOGIN, OK, FORBIDDEN, FORBIDDEN, LOGIN, FORBIDDEN, FORBIDDEN, FORBIDDEN)
ADMIN_ACTION = row(LOGIN, REDIRECT, FORBIDDEN, FORBIDDEN, LOGIN, FORBIDDEN, FORBIDDEN, FORBIDDEN)
# Pages of one's own firm for admins and staff (Bluebird's staff sees Bluebird's).
FIRM_PAGE = row(LOGIN, OK, OK, OK, LOGIN, FORBIDDEN, FORBIDDEN, FORBIDDEN)
FIRM_ACTION = row(LOGIN, REDIRECT, REDIRECT, REDIRECT, LOGIN, FORBIDDEN, FORBIDDEN, FORBIDDEN)
# A Northwind object: Bluebird's staff gets 404, as for a missing one.
NW_PAGE = row(LOGIN, OK, OK, NOT_FOUND, LOGIN, FORBIDDEN, FORBIDDEN, FORBIDDEN)
NW_ACTION = row(LOGIN, REDIRECT, REDIRECT, NOT_FOUND, LOGIN, FORBIDDEN, FORBIDDEN, FORBIDDEN)
# A Northwind client's office: the provider may act too, the delegate may not.
PROVIDER_ACTION = row(LOGIN, REDIRECT, REDIRECT, NOT_FOUND, LOGIN, FORBIDDEN, REDIRECT, FORBIDDEN)

# name -> (method, kwargs key, expectations)
ROUTES = {
    "home": (
        "get",
        None,
        row(LOGIN, REDIRECT, REDIRECT, REDIRECT, LOGIN, REDIRECT, REDIRECT, REDIRECT),
    ),
    "favicon": ("get", None, row(301, 301, 301, 301, LOGIN, 301, 301, 301)),
    "ping": ("get", None, row(LOGIN, 204, 204, 204, LOGIN, 204, 204, 204)),
    # Monitors: no login (a deactivated session is still logged out first).
    "health_live": ("get", None, row(OK, OK, OK, OK, LOGIN, OK, OK, OK)),
    "health_ready": ("get", None, row(OK, OK, OK, OK, LOGIN, OK, OK, OK)),
    "dashboard": ("get", None, row(LOGIN, OK, OK, OK, LOGIN, FORBIDDEN, OK, OK)),
    "team": ("get", None, ADMIN_ONLY),
    "firm_settings": ("get", None, ADMIN_ONLY),
    "invite_member": ("post", None, ADMIN_ACTION),
    "resend_invitation": ("post", "invitation", ADMIN_ACTION),
    "revoke_invitation": ("post", "invitation", ADMIN_ACTION),
    "change_role": ("post", "membership", ADMIN_ACTION),
    "deactivate_member": ("post", "membership", ADMIN_ACTION),
    "reactivate_member": ("post", "membership", ADMIN_ACTION),
    "accept_invitation": ("get", "token", row(OK, OK, OK, OK, LOGIN, OK, OK, OK)),
    # The emailed sign-in link: no login needed; a link that is not one is 410 for everyone.
    "sign_in_link": ("get", "signin_token", row(410, 410, 410, 410, LOGIN, 410, 410, 410)),
    "sign_in_link_fresh": ("post", "signin_token", row(OK, OK, OK, OK, LOGIN, OK, OK, OK)),
    "account_email": (
        "get",
        None,
        row(LOGIN, REDIRECT, REDIRECT, REDIRECT, LOGIN, REDIRECT, REDIRECT, REDIRECT),
    ),
    # clients
    "client_new": ("get", None, FIRM_PAGE),
    "client_import": ("get", None, FIRM_PAGE),
    "client_import_confirm": ("post", None, FIRM_ACTION),
    "client_import_template": ("get", None, FIRM_PAGE),
    "client_detail": (
        "get",
        "client",
        row(LOGIN, OK, OK, NOT_FOUND, LOGIN, FORBIDDEN, REDIRECT, REDIRECT),
    ),
    "client_edit": ("get", "client", NW_PAGE),
    "client_access_log": ("get", "client", ADMIN_ONLY),
    "client_reassign": ("post", "client", NW_ACTION),
    "organization_add": ("post", "client", NW_ACTION),
    "delegate_add": ("post", "client", PROVIDER_ACTION),
    "client_ia": ("post", "client", NW_ACTION),
    "official_add": ("post", "organization", NW_ACTION),
    "official_remove": ("post", "official", NW_ACTION),
    "delegate_remove": ("post", "other_delegate", PROVIDER_ACTION),
    "portal_invite": ("post", "invite_client", NW_ACTION),
    "client_status": ("get", "client", NW_PAGE),
    "client_status_send": ("post", "client", NW_ACTION),
    # workflows
    "grant_create": ("post", "profile", NW_ACTION),
    "enrollment_create": ("post", "profile", NW_ACTION),
    "grant_action": ("post", "grant_action", NW_ACTION),
    "round_create": ("post", "enrollment", NW_ACTION),
    "enrollment_change_state": ("post", "enrollment", NW_ACTION),
    "enrollment_update": ("post", "enrollment", NW_ACTION),
    "round_action": ("post", "round_action", NW_ACTION),
    "signer_confirm": ("post", "signer", NW_ACTION),
    "enrollment_outcome": ("post", "enrollment", NW_ACTION),
    "reconsideration_action": ("post", "reconsideration_action", NW_ACTION),
    "development_create": ("post", "enrollment", NW_ACTION),
    "development_action": ("post", "development_action", NW_ACTION),
    "revalidation_set_due": ("post", "profile", NW_ACTION),
    "revalidation_import": ("get", None, FIRM_PAGE),
    "revalidation_import_confirm": ("post", None, FIRM_ACTION),
    # reports: admins and staff (staff limited to their caseload), never providers
    # credentials: staff of the firm; a document also to the provider's side whose role
    # covers it (the office manager is Access Manager on both profiles)
    "credential_create": ("post", "credential_create", NW_ACTION),
    "credential_kinds": ("get", None, ADMIN_ONLY),
    "credential_kind_active": ("post", "credential_kind", ADMIN_ACTION),
    "credential_detail": ("get", "credential", NW_PAGE),
    "credential_action": ("post", "credential_action", NW_ACTION),
    "credential_file": (
        "get",
        "credential_file",
        row(LOGIN, OK, OK, NOT_FOUND, LOGIN, FORBIDDEN, OK, OK),
    ),
    "todo_upload": (
        "post",
        "credential",
        row(LOGIN, FORBIDDEN, FORBIDDEN, FORBIDDEN, LOGIN, FORBIDDEN, REDIRECT, REDIRECT),
    ),
    "stuck_report": ("get", None, FIRM_PAGE),
    "stuck_report_csv": ("get", None, FIRM_PAGE),
    # everything of the firm as a ZIP: its admins only (a POST: heavy, and audited)
    "firm_export": ("post", None, ADMIN_ONLY),
    # notifications: everyone logged in has an inbox; one person's notification is theirs only
    "inbox": ("get", None, row(LOGIN, OK, OK, OK, LOGIN, OK, OK, OK)),
    "inbox_mark_all_read": (
        "post",
        None,
        row(LOGIN, REDIRECT, REDIRECT, REDIRECT, LOGIN, REDIRECT, REDIRECT, REDIRECT),
    ),
    "notification_preferences": ("get", None, row(LOGIN, OK, OK, OK, LOGIN, OK, OK, OK)),
    "inbox_mark_read": (
        "post",
        "provider_notification",
        row(LOGIN, NOT_FOUND, NOT_FOUND, NOT_FOUND, LOGIN, NOT_FOUND, REDIRECT, NOT_FOUND),
    ),
    "todo_undo": (
        "post",
        "todo_grant",
        row(LOGIN, FORBIDDEN, FORBIDDEN, FORBIDDEN, LOGIN, FORBIDDEN, REDIRECT, REDIRECT),
    ),
    "todo_firm_not_found": (
        "post",
        "grant",
        row(LOGIN, FORBIDDEN, FORBIDDEN, FORBIDDEN, LOGIN, FORBIDDEN, REDIRECT, REDIRECT),
    ),
    "todo_done": (
        "post",
        "todo_grant",
        row(LOGIN, FORBIDDEN, FORBIDDEN, FORBIDDEN, LOGIN, FORBIDDEN, REDIRECT, REDIRECT),
    ),
    # calendar: the feed's secret address is its only key (a deactivated session is still
    # logged out first); every member manages their own address on the Security page.
    "calendar_feed": ("get", "calendar_token", row(OK, OK, OK, OK, LOGIN, OK, OK, OK)),
    "calendar_feed_rotate": (
        "post",
        None,
        row(LOGIN, REDIRECT, REDIRECT, REDIRECT, LOGIN, FORBIDDEN, REDIRECT, REDIRECT),
    ),
    "calendar_feed_off": (
        "post",
        None,
        row(LOGIN, REDIRECT, REDIRECT, REDIRECT, LOGIN, FORBIDDEN, REDIRECT, REDIRECT),
    ),
    "security": ("get", None, row(LOGIN, OK, OK, OK, LOGIN, OK, OK, OK)),
}
ALLAUTH_PREFIXES = ("account_", "mfa_")


def iter_patterns(patterns=None, namespace="", params=frozenset()):
    """Yield (name, parameter names) for every route, parameters of enclosing includes too."""
    for pattern in patterns if patterns is not None else get_resolver().url_patterns:
        own = params | set(pattern.pattern.regex.groupindex)
        if isinstance(pattern, URLResolver):
            ns = f"{namespace}{pattern.namespace}:" if pattern.namespace else namespace
            yield from iter_patterns(pattern.url_patterns, ns, own)
        elif isinstance(pattern, URLPattern):
            yield f"{namespace}{pattern.name}", own


def is_allauth(name: str) -> bool:
    return name.startswith(ALLAUTH_PREFIXES)


def test_every_route_is_in_the_matrix():
    missing = sorted(
        name
        for name, _params in iter_patterns()
        if name not in ROUTES and not is_allauth(name) and not name.startswith("admin:")
    )
    assert not missing, f"Routes with no row in the access matrix: {missing}"


@pytest.fixture
def people(
    northwind_admin, northwind_staff, bluebird_staff, deactivated, operator, provider, delegate
):
    return {
        "anonymous": None,
        "northwind_admin": northwind_admin,
        "northwind_staff": northwind_staff,
        "bluebird_staff": bluebird_staff,
        "deactivated": deactivated,
        "operator": operator,
        "provider": provider,
        "delegate": delegate,
    }


@pytest.fixture
def objects(northwind, northwind_staff, rivera):
    from clients.services import delegate_save
    from portal.services import invitation_token
    from tests.workflows.documents import upload
    from workflows import credentials, services
    from workflows.calendar import calendar_feed_rotate

    invitation = InvitationFactory(firm=northwind)
    # Others than the personas, so acting on them never changes a persona mid-table.
    colleague = MembershipFactory(firm=northwind)
    other_delegate = delegate_save(
        client=rivera, actor=northwind_staff, name="Temp", email="temp@rivera.test", roles={}
    )
    profile = rivera.profiles.get(kind="individual")
    grant = services.grant_create(
        profile=profile, method="connection_request", actor=northwind_staff
    )
    enrollment = services.enrollment_create(profile=profile, kind="initial", actor=northwind_staff)
    signature_round = services.round_open(enrollment=enrollment, actor=northwind_staff)
    submitted = services.enrollment_create(
        profile=profile, kind="revalidation", actor=northwind_staff
    )
    services.enrollment_change_state(enrollment=submitted, to="submitted", actor=northwind_staff)
    development = services.development_open(
        enrollment=submitted, asked="Current license", holder="provider", actor=northwind_staff
    )
    organization = rivera.organizations.get()
    credential = credentials.credential_add(
        profile=profile,
        kind=credentials.kind_for(northwind, "malpractice"),
        actor=northwind_staff,
        expires_on=enrollment.created_at.date() + timedelta(days=200),
        upload=upload(),
    )
    feed, _created = calendar_feed_rotate(
        membership=northwind_staff.memberships.select_related("firm", "user").get()
    )
    return {
        "organization": {"public_id": organization.public_id},
        "official": {"public_id": organization.officials.get().public_id},
        "signer": {"public_id": signature_round.signers.get().public_id},
        "invitation": {"public_id": invitation.public_id},
        "membership": {"public_id": colleague.public_id},
        "token": {"token": invitation_token(invitation)},
        "signin_token": {"token": "not-a-sign-in-link"},
        "calendar_token": {"token": feed.token},
        "client": {"public_id": rivera.public_id},
        "credential_create": {"public_id": rivera.public_id, "mode": "request"},
        "credential": {"public_id": credential.public_id},
        "credential_kind": {
            "public_id": credentials.kind_for(northwind, "other").public_id,
            "active": "off",
        },
        "credential_action": {"public_id": credential.public_id, "action": "reject"},
        "credential_file": {"public_id": credential.files.get().public_id},
        "profile": {"public_id": profile.public_id},
        "other_delegate": {"public_id": other_delegate.public_id},
        "invite_client": {"kind": "client", "public_id": rivera.public_id},
        "grant_action": {"public_id": grant.public_id, "action": "mark-active"},
        "enrollment": {"public_id": enrollment.public_id},
        "round_action": {"public_id": signature_round.public_id, "action": "confirm"},
        "reconsideration_action": {"public_id": enrollment.public_id, "action": "filed"},
        "development_action": {"public_id": development.public_id, "action": "answered"},
        "todo_grant": {"kind": "grant", "public_id": grant.public_id},
        "grant": {"public_id": grant.public_id},
        "provider_notification": {
            "public_id": Notification.objects.filter(
                recipient=rivera.user, channel="in_app", step="sent"
            )
            .first()
            .public_id
        },
    }


def outcome(response):
    if response.status_code == 302 and "/accounts/login/" in response.url:
        return LOGIN
    return response.status_code


@pytest.mark.django_db
@pytest.mark.parametrize("name", sorted(ROUTES))
def test_route_answers_each_persona_as_the_matrix_says(name, people, objects, as_user):
    method, kwargs_key, expected = ROUTES[name]
    url = reverse(name, kwargs=objects[kwargs_key] if kwargs_key else None)
    got = {}
    for persona, user in people.items():
        response = getattr(as_user(user), method)(url)
        got[persona] = outcome(response)
    assert got == expected


@pytest.mark.django_db
def test_allauth_pages_never_fail_or_leak(people, as_user, northwind):
    """allauth's routes: each persona gets a page, a redirect or a refusal; never a 500,
    and no page of theirs shows firm data."""
    for name, params in iter_patterns():
        if not is_allauth(name):
            continue
        kwargs = dict.fromkeys(params, "1")
        if "key" in kwargs:
            kwargs["key"] = "bogus-key"
        url = reverse(name, kwargs=kwargs)
        for persona, user in people.items():
            response = as_user(user).get(url)
            assert response.status_code in (200, 302, 403, 404, 405), (name, persona)
            assert b"Northwind Credentialing" not in response.content or persona in (
                "northwind_admin",
                "northwind_staff",
                "provider",
                "delegate",
            ), (name, persona)


@pytest.mark.django_db
def test_only_the_operator_reaches_the_django_admin(people, as_user):
    # The admin's nameless catch-all is reached through a path of its own below.
    admin_routes = [
        (name, params)
        for name, params in iter_patterns()
        if name.startswith("admin:") and name != "admin:None"
    ]
    assert admin_routes
    for name, params in admin_routes:
        kwargs = dict.fromkeys(params, "1")
        if name == "admin:app_list":
            kwargs = {"app_label": "portal"}
        if name == "admin:view_on_site":
            kwargs = {"content_type_id": "1", "object_id": "1"}
        url = reverse(name, kwargs=kwargs or None)
        for persona, user in people.items():
            response = as_user(user).get(url)
            if persona == "operator":
                # autocomplete answers 403 without its query parameters.
                assert response.status_code in (200, 302, 403, 404, 405), name
            else:
                assert response.status_code in (302, 403, 404, 405), (name, persona)
                assert b"Site administration" not in response.content
