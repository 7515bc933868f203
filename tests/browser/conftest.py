"""Browser stories in Debian's Chromium: one browser per session, axe-core from the npm registry, overflow checks."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest


VIEWPORTS = {"desktop": {"width": 1366, "height": 900}, "phone": {"width": 390, "height": 844}}
AXE_VERSION = "4.14.1"


@pytest.fixture(scope="session")
def axe_source(tmp_path_factory) -> str:
    """axe-core's browser bundle, installed from the npm registry into this session's tmp dir."""
    npm = shutil.which("npm")
    if npm is None:
        pytest.skip("npm is not installed: axe-core cannot be fetched")
    target = tmp_path_factory.mktemp("axe")
    try:
        subprocess.run([npm, "install", "--silent", "--no-audit", "--no-fund", "--prefix", str(target),
                        f"axe-core@{AXE_VERSION}"], check=True, timeout=180, capture_output=True)
    except (subprocess.SubprocessError, OSError) as exc:
        pytest.skip(f"axe-core could not be installed from the npm registry: {exc}")
    return (target / "node_modules" / "axe-core" / "axe.min.js").read_text()


@pytest.fixture(params=sorted(VIEWPORTS))
def viewport(request) -> dict:
    """Each story runs at 1366x900 and at 390x844."""
    return VIEWPORTS[request.param]


@pytest.fixture
def new_page(browser, viewport, axe_source):
    """Open a fresh page (own cookies) at the story's viewport; closed after the test."""
    contexts = []

    def make(size: dict | None = None):
        context = browser.new_context(viewport=size or viewport)
        context.set_default_timeout(10_000)
        # Injected by the browser itself, so a strict Content-Security-Policy does not block it.
        context.add_init_script(script=axe_source)
        contexts.append(context)
        return context.new_page()

    yield make
    for context in contexts:
        context.close()


def assert_page_ok(page) -> None:
    """No horizontal overflow at this width, and axe-core reports no violation (colour contrast included)."""
    # The page and its stylesheet must be loaded: measured before the CSS applies, a table is wider
    # than the cards it becomes on a phone (a CI run measured 929 px at 390 px that way).
    page.wait_for_load_state("load")
    width = page.evaluate("window.innerWidth")
    scroll = page.evaluate("document.documentElement.scrollWidth")
    if scroll > width:
        # Name what sticks out, so a failure says where to look.
        wide = page.evaluate("""(width) => [...document.querySelectorAll('body *')]
            .filter(e => e.getBoundingClientRect().right > width + 1)
            .slice(-5).map(e => e.tagName.toLowerCase() + (e.className ? '.' + e.className : '')
                              + ' ' + Math.round(e.getBoundingClientRect().right) + 'px: '
                              + (e.textContent || '').trim().slice(0, 60))""", width)
        raise AssertionError(f"{page.url}: the page is {scroll}px wide at {width}px; sticking out: {wide}")
    result = page.evaluate("""async () => {
        const r = await axe.run(document, {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice']}});
        return r.violations.map(v => ({id: v.id, impact: v.impact, nodes: v.nodes.slice(0, 3).map(n => n.target.join(' ') + ' :: ' + n.failureSummary)}));
    }""")
    assert result == [], f"{page.url}: axe-core violations: {json.dumps(result, indent=1)}"
