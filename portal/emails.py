"""Rendering an email from its templates/emails/<name>_{subject,body}.{txt,html} triplet."""

from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string


def build_email(name: str, *, to: str, context: dict) -> EmailMultiAlternatives:
    subject = " ".join(render_to_string(f"emails/{name}_subject.txt", context).split())
    text = render_to_string(f"emails/{name}_body.txt", context)
    html = render_to_string(f"emails/{name}_body.html", context)
    message = EmailMultiAlternatives(subject=subject, body=text, to=[to])
    message.attach_alternative(html, "text/html")
    return message
