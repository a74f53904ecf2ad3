"""Links to the CMS pages where a provider's step starts: the Identity & Access (I&A) login
and the PECOS login, on the step's own words ("Log into the CMS Identity & Access (I&A)
system"), opened in a new tab. Addresses: CMS's I&A system is at nppes.cms.hhs.gov/IAWeb
(the NPPES and PECOS logins both authenticate there) and PECOS at pecos.cms.hhs.gov (CMS
MLN "I&A System" lesson; see docs/decisions.md)."""

from django import template
from django.utils.html import escape, format_html
from django.utils.safestring import mark_safe

register = template.Library()

IA_LOGIN_URL = "https://nppes.cms.hhs.gov/IAWeb/login.do"
PECOS_LOGIN_URL = "https://pecos.cms.hhs.gov/pecos/login.do"
# Not CMS, but where a provider's CAQH re-attestation starts (CAQH's provider login).
CAQH_PROVIEW_URL = "https://proview.caqh.org/"
# The words of a step that name where it starts, and that page.
CMS_PAGES = {
    "Log into the CMS Identity & Access (I&A) system": IA_LOGIN_URL,
    "Log into PECOS": PECOS_LOGIN_URL,
    "Log in to CAQH ProView": CAQH_PROVIEW_URL,
}


def _page_in(step: str) -> tuple[str, str] | None:
    return next(((words, url) for words, url in CMS_PAGES.items() if words in step), None)


@register.filter
def cms_link(step: str, where: str = "page") -> str:
    """The step as HTML, its CMS words a link to the page opened in a new tab (on a page,
    screen readers hear so; an email client decides for itself)."""
    found = _page_in(step)
    if found is None:
        return escape(step)
    words, url = found
    before, after = step.split(words, 1)
    hint = (
        format_html('<span class="visually-hidden">{}</span>', " (opens CMS in a new tab)")
        if where == "page"
        else ""
    )
    link = format_html(
        '<a href="{}" target="_blank" rel="noopener noreferrer">{}{}</a>', url, words, hint
    )
    return mark_safe(escape(before) + link + escape(after))  # noqa: S308  # nosec B308, B703


@register.filter
def cms_link_text(step: str) -> str:
    """The step for a plain-text email: the page's address after its words."""
    found = _page_in(step)
    if found is None:
        return step
    words, url = found
    return step.replace(words, f"{words} ({url})", 1)
