"""A real browser for the web UI's tests: pytest-playwright's ``page``, driving Debian's
Chromium (the harness installs the package; Playwright never downloads a browser here), against
pytest-django's live server. tests/conftest.py imports the fixtures below.

``watched_page`` fails the test on a console error, an uncaught exception or a
Content-Security-Policy violation the page reports. On a failure pytest-playwright saves a
screenshot under ``var/browser/`` (``--screenshot=only-on-failure`` in pyproject's addopts).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest
from django.conf import settings
from django.test import Client

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"

# Collects what the page itself reports; Playwright injects it through the DevTools protocol,
# so the policy under test does not apply to it.
RECORD_VIOLATIONS = """
window.__violations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.__violations.push(`${event.violatedDirective} ${event.blockedURI || "inline"}`);
});
"""

VIEWPORT = {"width": 1280, "height": 800}


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict) -> dict:
    return {**browser_type_launch_args, "executable_path": CHROMIUM, "args": ["--no-sandbox"]}


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args: dict) -> dict:
    return {**browser_context_args, "viewport": VIEWPORT}


@pytest.fixture(scope="session")
def base_url(live_server) -> str:
    return live_server.url


class PageProblems:
    """What the page reported that a user would see as broken, collected as it happens."""

    def __init__(self) -> None:
        self.errors: list[str] = []

    def watch(self, page) -> None:
        page.add_init_script(RECORD_VIOLATIONS)
        page.on(
            "console",
            lambda message: (
                self.errors.append(f"console {message.type}: {message.text} at {page.url}")
                if message.type == "error"
                else None
            ),
        )
        page.on("pageerror", lambda error: self.errors.append(f"uncaught: {error} at {page.url}"))

    def collect_violations(self, page) -> None:
        if page.is_closed() or not page.url.startswith("http"):
            return
        try:
            violations = page.evaluate("window.__violations || []")
        except Exception:  # a page mid-navigation has no window to ask
            return
        self.errors += [f"CSP violation: {line} at {page.url}" for line in violations]


@pytest.fixture
def page_problems(page) -> Iterator[PageProblems]:
    problems = PageProblems()
    problems.watch(page)
    yield problems
    problems.collect_violations(page)
    assert problems.errors == [], "the page reported errors:\n" + "\n".join(problems.errors)


@pytest.fixture
def watched_page(page, page_problems):
    """``page``, failing the test on any console error, uncaught exception or CSP violation."""
    return page


def sign_in(page, user, base_url: str) -> None:
    """Start the page's session as ``user`` without typing a password (the login form has its
    own tests)."""
    client = Client()
    client.force_login(user)
    page.context.add_cookies(
        [
            {
                "name": settings.SESSION_COOKIE_NAME,
                "value": client.cookies[settings.SESSION_COOKIE_NAME].value,
                "url": base_url,
            }
        ]
    )


def in_viewport(page, selector: str) -> bool:
    """Whether the element is on screen now, not merely in the document: its box intersects
    the viewport without scrolling."""
    return page.locator(selector).first.evaluate(
        """(element) => {
            const box = element.getBoundingClientRect();
            return box.width > 0 && box.height > 0 && box.bottom > 0 && box.right > 0
                && box.top < window.innerHeight && box.left < window.innerWidth;
        }"""
    )
