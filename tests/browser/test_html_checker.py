"""The Nu Html Checker the browser suite runs on every page it receives: it must find an
error when there is one, or the suite's "0 errors" would mean nothing."""

import shutil

from tests.browser.conftest import VNU_JAR, vnu_errors
from tests.conftest import skip_or_fail

PAGE = "<!DOCTYPE html><html lang=en><head><title>t</title></head><body>{}</body></html>"


def test_the_checker_finds_an_error_and_passes_a_valid_page():
    if shutil.which("java") is None or not VNU_JAR.exists():
        skip_or_fail("the Nu Html Checker is not installed (make vnu)")
    errors = vnu_errors(
        {
            "http://portal.test/bad/": PAGE.format(
                '<span id="a"></span><span id="a"></span>'
            ).encode(),
            "http://portal.test/good/": PAGE.format("<p>Fine</p>").encode(),
        }
    )
    assert len(errors) == 1
    assert errors[0].startswith("http://portal.test/bad/: line 1: Duplicate ID")
