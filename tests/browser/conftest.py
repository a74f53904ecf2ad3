"""Playwright against the system Chromium, plus an axe accessibility check.

Playwright's own browser download does not work here: the tests drive the Debian
`chromium` binary. Without it they skip locally and fail in CI (see `skip_or_fail`).
"""

import json
import shutil
import subprocess  # nosec B404: runs the Nu Html Checker on files this suite wrote
import tempfile
from pathlib import Path

import pytest
from django.conf import settings

from tests.conftest import REQUIRE_SERVICES, skip_or_fail

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--disable-quic",
]
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
TIMEOUT_MS = 10_000

# WCAG 2.1 A and AA rules only; a violation of "serious" or "critical" impact fails.
AXE_OPTIONS = {
    "runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]},
    "resultTypes": ["violations"],
}
AXE_FAILING_IMPACTS = {"serious", "critical"}


@pytest.fixture(scope="session")
def browser():
    executable = shutil.which("chromium")
    if executable is None:
        skip_or_fail("the system Chromium (`chromium`) is not installed")
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an asyncio loop in this thread; Django's ORM refuses to run
    # beside one unless told it is deliberate (the test thread never awaits anything). Other
    # tests' subprocesses drop the variable (tests/portal/test_settings.py).
    patch = pytest.MonkeyPatch()
    patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=executable, headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield browser
        finally:
            browser.close()
            patch.undo()


# Every HTML page the browser tests receive, as the server sent it: checked by the Nu Html
# Checker once, when the session ends (one Java start for all of them).
VNU_JAR = (
    Path(settings.BASE_DIR) / "devtools" / "vnu" / "node_modules" / "vnu-jar" / "build" / "dist"
) / "vnu.jar"
HTML_PAGES: dict[str, bytes] = {}


def _keep_html(responses):
    def keep(response):
        if (
            response.request.resource_type == "document"
            and response.status == 200
            and "text/html" in response.headers.get("content-type", "")
        ):
            responses.append(response)

    return keep


@pytest.fixture
def new_context(browser):
    """Open fresh browser contexts (own cookies, own viewport); all closed after the test.
    The HTML pages they received are kept for the Nu Html Checker."""
    contexts, responses = [], []

    def open_context(viewport=DESKTOP):
        context = browser.new_context(viewport=viewport)
        context.set_default_timeout(TIMEOUT_MS)
        context.on("response", _keep_html(responses))
        contexts.append(context)
        return context

    yield open_context
    for response in responses:
        try:
            # By the whole address: a page's query (a sort, a page number, a filter) changes
            # what it shows, so each variant visited is checked.
            HTML_PAGES.setdefault(response.url, response.body())
        except Exception:  # noqa: BLE001, S112  (a page closed before its body was read)
            continue
    for context in contexts:
        context.close()


def vnu_errors(pages: dict[str, bytes]) -> list[str]:
    """The Nu Html Checker's errors on these pages, as "url: line N: message"."""
    with tempfile.TemporaryDirectory() as folder:
        names = {}  # the checker's name for each file ("file:/tmp/..."), and its page
        for index, (url, body) in enumerate(sorted(pages.items())):
            path = Path(folder) / f"page{index:04d}.html"
            path.write_bytes(body)
            names[f"file:{path}"] = url
        files = [name.removeprefix("file:") for name in names]
        result = subprocess.run(  # nosec B603: fixed arguments, our own files
            ["java", "-jar", str(VNU_JAR), "--errors-only", "--format", "json", *files],
            capture_output=True,
            text=True,
            check=False,
        )
    report = json.loads(result.stderr or result.stdout or '{"messages": []}')
    return [
        f"{names.get(message.get('url'), message.get('url'))}: line {message.get('lastLine')}: "
        f"{message.get('message')}"
        for message in report["messages"]
        if message.get("type") == "error"
    ]


@pytest.fixture(scope="session", autouse=True)
def _html_is_valid():
    """When the browser tests are done: every page they received has no HTML error."""
    yield
    if not HTML_PAGES:
        return
    if shutil.which("java") is None or not VNU_JAR.exists():
        message = "the Nu Html Checker is not installed (make vnu: Java and devtools/vnu)"
        if REQUIRE_SERVICES:
            pytest.fail(message)
        return
    errors = vnu_errors(HTML_PAGES)
    if errors:
        pytest.fail(
            f"Nu Html Checker: {len(errors)} error(s) on {len(HTML_PAGES)} pages:\n"
            + "\n".join(errors),
            pytrace=False,
        )


@pytest.fixture
def page(new_context):
    """A page in a new desktop-sized (1280x900) context."""
    return new_context().new_page()


def assert_accessible(page, label: str = "") -> None:
    """Run axe-core on the page; fail on serious or critical WCAG 2.1 A/AA violations."""
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page, options=AXE_OPTIONS)
    failing = [
        violation
        for violation in results.response["violations"]
        if violation.get("impact") in AXE_FAILING_IMPACTS
    ]
    if failing:
        report = "\n".join(
            results.generate_report(violation_id=violation["id"]) for violation in failing
        )
        print(report)
        pytest.fail(
            f"axe: {len(failing)} serious/critical WCAG 2.1 A/AA violation(s) on "
            f"{label or page.url}:\n{report}",
            pytrace=False,
        )


@pytest.fixture
def axe_check():
    """`axe_check(page, "label")` asserts the page has no serious/critical violations."""
    return assert_accessible
