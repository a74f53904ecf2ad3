"""The firm's export: everything of the firm as a ZIP, for its admins."""

from django.http import StreamingHttpResponse
from django.utils import timezone
from django.views.decorators.http import require_POST

from portal import audit
from portal.access import admin_required

from .export import FORMAT_VERSION, firm_export


@admin_required
@require_POST
def firm_export_download(request):
    """Streamed as it is written; recorded in the audit trail before the first byte."""
    firm = request.firm
    audit.record(
        "firm.exported",
        actor=request.user,
        firm=firm,
        target=firm,
        target_label=firm.name,
        data={"format_version": FORMAT_VERSION},
    )
    stamp = timezone.now().astimezone(firm.zone).strftime("%Y-%m-%d")
    response = StreamingHttpResponse(
        firm_export(firm=firm, requested_by=request.user), content_type="application/zip"
    )
    response["Content-Disposition"] = f'attachment; filename="credportal-{firm.slug}-{stamp}.zip"'
    return response
