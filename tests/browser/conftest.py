"""Playwright against the system Chromium, plus an axe accessibility check.

Playwright's own browser download does not work here: the tests drive the Debian
`chromium` binary. Without it they skip locally and fail in CI (see `skip_or_fail`).
"""

import shutil

import pytest

from tests.conftest import skip_or_fail

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


@pytest.fixture
def new_context(browser):
    """Open fresh browser contexts (own cookies, own viewport); all closed after the test."""
    contexts = []

    def open_context(viewport=DESKTOP):
        context = browser.new_context(viewport=viewport)
        context.set_default_timeout(TIMEOUT_MS)
        contexts.append(context)
        return context

    yield open_context
    for context in contexts:
        context.close()


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
