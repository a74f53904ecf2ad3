"""The client status report: a printable page for staff, and the same status emailed to the
provider."""

from django.contrib import messages
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from clients.selectors import get_client_for
from portal import audit
from portal.access import firm_member_required

from . import status


@firm_member_required
def client_status(request, public_id):
    client = get_client_for(request, public_id, status.status_queryset())
    audit.record_read("client.status_viewed", request, client)
    return render(
        request,
        "reports/client_status.html",
        {"client": client, "report": status.status_report(client)},
    )


@firm_member_required
@require_POST
def client_status_send(request, public_id):
    client = get_client_for(request, public_id, status.status_queryset())
    status.status_send(client=client, actor=request.user)
    messages.success(request, f"Status report emailed to {client.email}.")
    return redirect("client_detail", public_id=client.public_id)
