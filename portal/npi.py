"""National Provider Identifier check: 10 ASCII digits whose last is a Luhn check digit
computed over the prefix 80840 followed by the first nine (CMS, NPI check digit standard).

python-stdnum does the digit test and the Luhn sum (it has no NPI module of its own):
`isdigits` accepts only ASCII 0-9, so superscript, Arabic-Indic or fullwidth digits, which
`str.isdigit()` lets through, are refused and cannot defeat per-firm NPI uniqueness.
"""

from django.core.exceptions import ValidationError
from stdnum import luhn
from stdnum.util import isdigits

NPI_PREFIX = "80840"


def is_valid_npi(value: str) -> bool:
    return len(value) == 10 and isdigits(value) and luhn.is_valid(NPI_PREFIX + value)


def validate_npi(value: str) -> None:
    if not (len(value) == 10 and isdigits(value)):
        raise ValidationError("An NPI is exactly 10 digits.", code="npi_format")
    if not is_valid_npi(value):
        raise ValidationError(
            "This NPI's check digit is wrong; check it for a typo.", code="npi_check_digit"
        )


def npi_with_check_digit(first_nine: str) -> str:
    """The valid NPI that starts with these nine digits (for demo and test data)."""
    return first_nine + luhn.calc_check_digit(NPI_PREFIX + first_nine)
