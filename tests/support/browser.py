"""A real browser for the web UI's tests: Debian's Chromium, driven by Playwright (never a
browser Playwright downloads), and the script that collects the Content-Security-Policy
violations a page reports."""

import shutil

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"

# Collects what the page itself reports; Playwright injects it through the DevTools protocol,
# so the policy under test does not apply to it.
RECORD_VIOLATIONS = """
window.__violations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.__violations.push(`${event.violatedDirective} ${event.blockedURI || "inline"}`);
});
"""
