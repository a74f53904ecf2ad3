"""National Provider Identifier check: 10 digits whose last is a Luhn check digit computed
over the prefix 80840 followed by the first nine (CMS, NPI check digit standard)."""

from django.core.exceptions import ValidationError

NPI_PREFIX = "80840"


def luhn_valid(digits: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2 == 1:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def is_valid_npi(value: str) -> bool:
    return len(value) == 10 and value.isdigit() and luhn_valid(NPI_PREFIX + value)


def validate_npi(value: str) -> None:
    if not (value.isdigit() and len(value) == 10):
        raise ValidationError("An NPI is exactly 10 digits.", code="npi_format")
    if not is_valid_npi(value):
        raise ValidationError(
            "This NPI's check digit is wrong; check it for a typo.", code="npi_check_digit"
        )


def npi_with_check_digit(first_nine: str) -> str:
    """The valid NPI that starts with these nine digits (for demo and test data)."""
    for digit in "0123456789":
        if is_valid_npi(first_nine + digit):
            return first_nine + digit
    raise ValueError(first_nine)
