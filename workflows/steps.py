"""The exact steps a provider follows in CMS's systems, in the provider guide's words."""

from clients.models import CMSRole

from .models import AccessGrant, SignatureRound
from .rules import Step

IA_LOGIN = "Log into the CMS Identity & Access (I&A) system"

TITLES = {
    Step.APPROVE_CONNECTION: "Approve the pending connection",
    Step.ADD_STAFF: "Add the firm as staff",
    Step.ADD_SURROGATE: "Add the firm as a surrogate",
    Step.SIGN: "Sign your application",
    Step.ANSWER_DEVELOPMENT: "Send what the Medicare contractor asked for",
    Step.REGAIN_CONTROL: "Regain control of your I&A account",
    Step.RESET_PASSWORD: "Reset your I&A password",
    Step.UPLOAD_DOCUMENT: "Upload a document",
    Step.REATTEST_CAQH: "Re-attest your CAQH ProView profile",
}


def approve_connection() -> list[str]:
    return [
        IA_LOGIN,
        "On the Home tab, look for My Pending Connections",
        "Check the boxes next to PECOS and NPPES for the request",
        "Click Approve All Selected",
    ]


def add_staff(
    *, staff_name: str, staff_email: str, role_label: str, needs_authorized_official: bool
) -> list[str]:
    return [
        IA_LOGIN,
        "Click the My Staff tab, then Add Staff",
        f"Enter their name and email: {staff_name}, {staff_email}",
        f"Set the role to {role_label}",
        *(
            [
                "Only an Authorized Official can give the Access Manager role: if you are not "
                "the Authorized Official, ask the person who is"
            ]
            if needs_authorized_official
            else []
        ),
        "Submit; they accept the invite from their end",
    ]


def add_surrogate(*, firm_name: str, firm_npi: str = "") -> list[str]:
    by_npi = f", or search by our NPI, {firm_npi}" if firm_npi else ""
    return [
        IA_LOGIN,
        "Click the My Connections tab",
        "Click the + icon next to your name or NPI to expand it",
        "Click Add Surrogate (CMS's term for an authorized third party)",
        f"In Organization Name, enter “{firm_name}”{by_npi}; click Search, and select us",
        "Check PECOS and NPPES",
        "Click Submit, then click Done on the review page",
        "Can't find us? Press “I can't find you” below: we will send you a request to approve "
        "instead",
    ]


def for_grant(grant: AccessGrant, *, firm, assigned_staff) -> list[str]:
    """The provider's steps for this access grant, by its method (the to-do and every
    message about it read the same)."""
    if grant.method == AccessGrant.Method.CONNECTION_REQUEST:
        return approve_connection()
    if grant.method == AccessGrant.Method.ADD_STAFF:
        role = grant.requested_role or CMSRole.ACCESS_MANAGER
        return add_staff(
            staff_name=assigned_staff.display_name if assigned_staff else firm.name,
            staff_email=assigned_staff.email if assigned_staff else (firm.contact_email or ""),
            role_label=CMSRole(role).label,
            needs_authorized_official=role == CMSRole.ACCESS_MANAGER,
        )
    return add_surrogate(firm_name=firm.name_in_ia, firm_npi=firm.npi)


def access_facts(*, firm_name: str) -> list[str]:
    """What giving the firm access means, in the portal's words (shown with every access
    step)."""
    return [
        f"This lets {firm_name} work on your Medicare enrollment records in PECOS and NPPES "
        "for you. It does not let us sign for you, represent you legally or change your NPI "
        "record.",
        "Never share your CMS login with us or anyone: CMS prohibits it, and your login has "
        "its own second factor.",
    ]


SIGNING_FACTS = [
    "Every change to an application after it is submitted needs a new signature: being "
    "asked again is normal.",
    "Only you can sign: nobody at our firm can sign for you.",
]


def sign(*, pecos_email: str = "") -> list[str]:
    where = (
        f"CMS will email {pecos_email}, the address entered in PECOS for you, when the "
        "application reaches the signature step (it may arrive before we call). If you no "
        "longer read that address, tell us today: the request would never reach you"
        if pecos_email
        else "CMS emails you when the application reaches the signature step; it may "
        "arrive before we call"
    )
    return [
        where,
        "Log into PECOS with your I&A credentials (same login as NPPES)",
        "Go to My Associates, find the enrollment and click View Enrollments",
        "On the Manage Signatures screen, select Electronic and enter your email address",
        "Check both Terms and Conditions boxes: this completes your electronic signature",
        "You will see a confirmation that the application was submitted",
    ]


def sign_upload() -> list[str]:
    return [
        "Print the certification statement page we sent you and sign it in ink where it is marked",
        "Photograph or scan the signed page and send it to us from your to-dos (“Upload your "
        "signed certification statement”): we upload it in PECOS. You may also upload it in "
        "PECOS yourself, on the Manage Signatures screen (choose Upload)",
        "CMS still counts 20 days from submission: an application whose signature has not "
        "arrived by then is rejected",
    ]


def sign_mail() -> list[str]:
    return [
        "Print the certification statement page we sent you and sign it in ink where it is marked",
        "Mail it to the Medicare Administrative Contractor at the address on the cover sheet we "
        "sent, not to us, the same day",
        "CMS still counts 20 days from submission, and mail is slow: an application whose "
        "signature has not arrived by then is rejected. Electronic signing is faster: ask us "
        "to switch if you can",
    ]


def sign_for(method: str, *, pecos_email: str = "") -> list[str]:
    if method == SignatureRound.Method.ELECTRONIC:
        return sign(pecos_email=pecos_email)
    return {SignatureRound.Method.UPLOAD: sign_upload, SignatureRound.Method.PAPER: sign_mail}[
        method
    ]()


def answer_development(*, asked: str, firm_name: str, due: str) -> list[str]:
    return [
        f"The Medicare contractor reviewing your application asks for: {asked}",
        f"Send it to {firm_name} (reply to this email, or call us), not to the contractor: "
        "we put the response together",
        f"The contractor needs the response by {due}; an application whose request is not "
        "answered in time is rejected",
        "When you have sent it, press “I've done this”",
    ]


def regain_control(*, who: str = "") -> list[str]:
    holder = f" ({who})" if who else " (a former biller or group admin)"
    return [
        f"Someone else{holder} controls your login to the CMS Identity & Access (I&A) system. "
        "It is one login for you and every organization you manage through it",
        "Ask them to hand it back; if they will not or cannot, tell us who set it up and we "
        "will walk you through CMS's process to regain it",
        "Never share your CMS login with us or anyone: CMS prohibits it, and the login has "
        "its own second factor",
        "When you can log in to I&A yourself again, press “I've done this”",
    ]


def reset_password() -> list[str]:
    return [
        "You have not logged in to I&A for a long time, so CMS has probably expired your "
        "password (one login for all your profiles)",
        IA_LOGIN + " (the same login as NPPES)",
        "If it asks you to change your password, choose one with 8-12 characters, at least "
        "one letter, one number and one special character, not starting with a number",
        "Only some special characters are accepted: if one is refused, try another",
        "Save it in a password manager, then press “I've done this”",
    ]


def upload_document(
    *,
    what: str,
    note: str = "",
    reason: str = "",
    renewal: bool = False,
    expired: bool = False,
    whose: str = "your",
):
    """`whose`: "your" to the provider, "Ana's" to someone sending it for her."""
    lines = []
    if reason:
        lines.append(f"We could not accept the last upload: {reason}")
    owner = whose[:1].upper() + whose[1:]
    if expired:
        lines.append(f"{owner} {what} has expired: we need the renewed one now")
    elif renewal:
        lines.append(f"{owner} {what} expires soon: we need the renewed one")
    lines.append(note or f"Upload {whose} current {what}")
    lines += [
        "On a phone, take a clear photo of every page (flat, in good light) or choose the PDF; "
        "on a computer, choose the PDF or a scan",
        "A PDF or a photo (JPEG, PNG or HEIC) up to your firm's size limit",
        "We review it and tell you if anything is missing",
    ]
    return lines


def reattest_caqh(*, caqh_id: str = "", due: str = "") -> list[str]:
    login = f" (CAQH Provider ID {caqh_id})" if caqh_id else ""
    return [
        f"Log in to CAQH ProView{login}",
        "Review each section, update anything that changed (addresses, insurance, "
        "hospital privileges) and upload any expired document",
        "Choose “Attest” and confirm: health plans stop using a profile not re-attested "
        "every 120 days" + (f"; this one is due by {due}" if due else ""),
        "When you have attested, press “I've done this”: we record the new date",
    ]
