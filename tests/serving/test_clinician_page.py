"""The clinician page end to end in headless Chromium (Debian's /usr/bin/chromium)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.serving.conftest import RARE_CASE, client, phenopacket_patient

pytestmark = [pytest.mark.slow, pytest.mark.server, pytest.mark.browser]

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
LEVELS = {"low", "moderate", "high", "critical"}


def launch_chromium(playwright):
    """Headless Debian Chromium (``pytest.fail`` naming the package when it is missing)."""
    if not CHROMIUM.exists():
        pytest.fail("Debian's chromium is required: apt-get install -y chromium")
    return playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)


def open_page(browser, url: str, token: str | None = None):
    """The clinician page of the service at ``url`` in a fresh browser context of
    ``browser`` (its own storage: no token or patient of another page), ready, with
    ``token`` saved as the page's access token when given."""
    page = browser.new_context().new_page()
    page.set_default_timeout(20_000)
    page.goto(f"{url}/ui/")
    page.wait_for_selector("body[data-ready='true']")
    if token is not None:
        page.fill("#token", token)
        page.click("#save-token")
    return page


@contextmanager
def clinician_page(url: str, token: str | None = None) -> Iterator:
    """Headless Chromium on the clinician page of the service at ``url`` (a Playwright
    page), with ``token`` saved as the page's access token when given."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        yield open_page(browser, url, token)
        browser.close()


@pytest.fixture(scope="module")
def browser():
    """One Chromium for the module (starting it takes a second or two)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = launch_chromium(playwright)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, service):
    """A fresh page per test (its own context: the symptoms, measurements and token a test
    enters never reach another test, whatever the order)."""
    page = open_page(browser, service.url)
    yield page
    page.context.close()


def add_symptom(page, query: str, hpo_id: str) -> None:
    page.fill("#symptom-search", query)
    page.click(f"#suggestions li[data-id='{hpo_id}']")


def add_measurement(page, kind: str, loinc: str, value: str, unit: str) -> None:
    page.click(f"#add-{kind}")
    row = page.locator(f"#{kind}s tbody tr").last
    row.locator(".loinc").select_option(loinc)
    row.locator(".unit").select_option(unit)
    row.locator(".value").fill(value)


def test_a_clinician_predicts_reads_the_result_and_sends_feedback(page, service, tokens):
    from playwright.sync_api import expect

    page.fill("#token", tokens["clinician"])
    page.click("#save-token")
    page.fill("#age", "34")
    page.select_option("#sex", "female")
    add_symptom(page, "fever", "HP:0001945")
    add_symptom(page, "cough", "HP:0012735")
    expect(page.locator("#symptoms tbody tr")).to_have_count(2)
    add_measurement(page, "vital", "8310-5", "101.5", "[degF]")
    add_measurement(page, "lab", "2345-7", "6.2", "mmol/L")
    page.click("#predict-btn")

    rows = page.locator("#differential tbody tr")
    expect(rows.first).to_be_visible()
    assert 1 <= rows.count() <= 10
    assert page.text_content("#severity") in LEVELS
    expect(page.locator("#explanation li").first).to_be_visible()
    expect(page.locator("#input-notes")).to_contain_text("converted")
    shown_top = rows.first.locator("td").nth(2).text_content()

    record = {
        "age": 34,
        "sex": "female",
        "symptoms": [
            {"code": "HP:0001945", "present": True},
            {"code": "HP:0012735", "present": True},
        ],
        "vitals": [{"loinc": "8310-5", "value": 101.5, "unit": "[degF]"}],
        "labs": [{"loinc": "2345-7", "value": 6.2, "unit": "mmol/L"}],
    }
    with client(service, tokens["clinician"]) as http:
        api_top = http.post("/predict", json={"patient": record}).json()["differential"][0]["code"]
    assert shown_top == api_top

    page.fill("#feedback-code", shown_top)
    page.fill("#feedback-notes", "confirmed on imaging")
    page.click("#feedback-btn")
    expect(page.locator("#feedback-status")).to_contain_text("Feedback stored")
    expect(page.locator("#feedback-status")).to_contain_text("rank 1")


def test_the_page_shows_refusals_with_their_fields(page, tokens):
    from playwright.sync_api import expect

    page.fill("#token", tokens["clinician"])
    page.click("#save-token")
    remove = page.locator("#symptoms tbody button")
    while remove.count():
        remove.first.click()
    page.click("#predict-btn")
    expect(page.locator("#errors")).to_be_visible()
    expect(page.locator("#errors .field-error")).to_contain_text("patient.symptoms")

    add_symptom(page, "fever", "HP:0001945")
    page.fill("#token", "wrong-token")
    page.click("#save-token")
    page.click("#predict-btn")
    expect(page.locator("#errors")).to_contain_text("401")


def test_the_page_shows_matched_and_missing_phenotypes_of_rare_candidates(page, service, tokens):
    from playwright.sync_api import expect

    record, _ = phenopacket_patient(RARE_CASE)
    terms = [s["code"] for s in record["symptoms"] if s["present"]]
    page.fill("#token", tokens["clinician"])
    page.click("#save-token")
    for table in ("#symptoms", "#vitals", "#labs"):  # start from an empty patient
        remove = page.locator(f"{table} tbody button")
        while remove.count():
            remove.first.click()
    for term in terms:
        add_symptom(page, term, term)
    page.fill("#age", "10")
    # 100 entries: more than every catalogue disease (all are ranked), so rare candidates are
    # listed (and explained) whatever P(rare) the small test model gives
    page.fill("#top-k", "100")
    page.click("#predict-btn")
    expect(page.locator("#rare-phenotypes-block")).to_be_visible()

    sent = {"age": 10, "sex": page.input_value("#sex"), "symptoms": [{"code": t} for t in terms]}
    with client(service, tokens["clinician"]) as http:
        body = http.post("/predict", json={"patient": sent, "top_k": 100}).json()
    explained = [d for d in body["differential"] if d["phenotypes"]]
    shown = page.locator("#rare-phenotypes details")
    expect(shown).to_have_count(len(explained))
    first = shown.first
    assert first.get_attribute("data-code") == explained[0]["code"]
    first.locator("summary").click()
    matched = {m["hpo_id"] for m in explained[0]["phenotypes"]["matched"]}
    assert matched and matched <= set(terms)
    for hpo_id in matched:
        expect(first.locator(f"li[data-hpo='{hpo_id}']").first).to_be_visible()
    for missing in explained[0]["phenotypes"]["expected_absent"]:
        expect(first.locator(f"li[data-hpo='{missing['hpo_id']}']").first).to_be_visible()
