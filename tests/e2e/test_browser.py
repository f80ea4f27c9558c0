"""A real headless Chromium against a running `creditlake demo`: the Dagster UI shows every
format's asset and the checks, and the API docs page lists the endpoints. Screenshots go to
test-artifacts/ (look at them: they are what a new user sees)."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

pytestmark = [pytest.mark.browser, pytest.mark.slow]

FORMATS = ("archive", "csv", "excel", "json", "jsonl", "parquet", "sql", "xml", "unrecognized")
CHECKS = {"normalize/contacts": ("failure_rate", "quality_score"),
          "dedup/records": ("reconciliation", "hash_uniqueness")}
ENDPOINTS = ("/api/v1/query", "/api/v1/credits", "/api/v1/usage", "/healthz", "/metrics")


def open_page(browser, url: str, height: int = 2200) -> Page:  # noqa: ANN001
    page = browser.new_page(viewport={"width": 1800, "height": height})
    page.goto(url, wait_until="networkidle", timeout=120_000)
    skip = page.get_by_role("button", name="Skip")  # Dagster's first-visit community dialog
    if skip.count():
        skip.click()
    return page


def test_dagster_asset_graph_shows_every_format_and_the_checks(demo, browser, artifacts
                                                                ) -> None:  # noqa: ANN001
    # the upstream lineage of the loaded records: every landing/<format> asset feeds
    # normalize/contacts, which feeds dedup/records
    page = open_page(browser, f"{demo.ui}/assets/dedup/records?view=lineage"
                              "&lineageScope=upstream&lineageDepth=5")
    try:
        for group in ("landing", "normalize", "dedup"):
            expect(page.get_by_text(group, exact=True).first).to_be_visible(timeout=90_000)
        for fmt in FORMATS:
            expect(page.get_by_text(fmt, exact=True).first).to_be_visible()
        expect(page.get_by_text("contacts", exact=True).first).to_be_visible()
        expect(page.get_by_text("records", exact=True).first).to_be_visible()
        # the two checked assets show their check results on the graph node
        expect(page.get_by_text(re.compile(r"^2 / 2 Passed$"))).to_have_count(2, timeout=60_000)
        page.screenshot(path=str(artifacts / "dagster_asset_graph.png"))
    finally:
        page.close()

    for asset, names in CHECKS.items():
        page = open_page(browser, f"{demo.ui}/assets/{asset}?view=checks", height=1100)
        try:
            expect(page.get_by_text(f"Checks ({len(names)})")).to_be_visible(timeout=90_000)
            for name in names:
                expect(page.get_by_text(name, exact=True).first).to_be_visible()
            expect(page.get_by_text("Succeeded").first).to_be_visible()
            page.screenshot(path=str(artifacts / f"dagster_checks_{asset.replace('/', '_')}.png"))
        finally:
            page.close()


def test_api_docs_page_lists_the_endpoints(demo, browser, artifacts) -> None:  # noqa: ANN001
    page = open_page(browser, f"{demo.api}/docs", height=1400)
    failed: list[str] = []
    page.on("requestfailed", lambda r: failed.append(r.url))
    try:
        expect(page.get_by_text("creditlake API").first).to_be_visible(timeout=60_000)
        expect(page.locator(".opblock").first).to_be_visible(timeout=60_000)
        paths = page.locator(".opblock-summary-path").all_inner_texts()
        for endpoint in ENDPOINTS:
            assert any(p.replace("\u200b", "") == endpoint for p in paths), (endpoint, paths)
        assert any(p.replace("\u200b", "").startswith("/api/v1/admin/") for p in paths)
        page.screenshot(path=str(artifacts / "api_docs.png"), full_page=True)
    finally:
        page.close()
