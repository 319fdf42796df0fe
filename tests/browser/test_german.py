"""The wizard step and the settings tab in German, with OctoPrint's language set to German.

Each kind of string takes its own way into the page, so each is checked: templates and the
Python side (tab name) are translated on the server from the .mo; the JavaScript's strings come
from the .po, which OctoPrint serves to the browser as a script.
"""

from __future__ import annotations

from playwright.sync_api import Page, expect

from tests.browser.conftest import login, screenshot
from tests.harness.api import DONE, PRINTS, offline
from tools.basedir import PLUGIN_ID

# What a user picks under Settings > Appearance > Default language (config.yaml).
GERMAN = {"appearance": {"defaultLanguage": "de"}}


def test_wizard_step_in_german(octoprint_factory, page: Page):
    server = octoprint_factory(plugin_settings={"enabled": None}, extra_config=GERMAN, show_wizards=[PLUGIN_ID])
    login(page, server)
    step = page.locator("#wizard_plugin_tracking_queued")
    expect(step).to_be_visible()
    expect(step.locator("h3")).to_have_text("Anonymous Usage Tracking (mit Warteschlange)")
    expect(step).to_contain_text("keine IP-Adressen")
    expect(page.locator("#tracking_queued_wizard_enable")).to_have_text("Aktivieren")
    expect(page.locator("#tracking_queued_wizard_disable")).to_have_text("Deaktivieren")
    screenshot(page, "wizard_step_de")

    # The refusal to finish without a decision is the JavaScript's text (ours is the only step).
    finish = page.locator("#wizard_dialog .button-finish")
    expect(finish).to_have_text("Beenden")  # OctoPrint's own German
    finish.click()
    message = page.locator(".modal", has_text="Bitte entscheide dich zum Anonymous Usage Tracking")
    expect(message).to_be_visible()
    message.locator(".btn").first.click()
    expect(message).to_be_hidden()
    expect(page.locator(".modal-scrollable")).to_have_count(1)

    page.click("#tracking_queued_wizard_disable")
    expect(page.locator("#tracking_queued_wizard_result")).to_contain_text(
        "Anonymous Usage Tracking (mit Warteschlange) ist deaktiviert"
    )
    assert server.api("GET", "/api/settings").json()["plugins"][PLUGIN_ID]["enabled"] is False
    # Forced: the dialog may still re-centre after the result appeared, and a click aimed
    # mid-move lands on the static backdrop and does nothing (seen on 2.0 under load): aim again.
    dialog = page.locator("#wizard_dialog")
    for _ in range(3):
        finish.click(force=True)
        try:
            expect(dialog).to_be_hidden()
            break
        except AssertionError:
            continue
    expect(dialog).to_be_hidden()


def test_settings_tab_in_german(octoprint_factory, receiver, page: Page):
    server = octoprint_factory(plugin_settings=PRINTS, extra_config=GERMAN)
    offline(server, receiver)
    server.fire_event("PrintDone", DONE)

    login(page, server)
    page.click("#navbar_show_settings")
    tab = page.locator('#settings_dialog a[href="#settings_plugin_tracking_queued"]')
    expect(tab).to_have_text("Anonymous Usage Tracking (mit Warteschlange)")  # Python, gettext
    tab.click()
    inspector = page.locator("#tracking_queued_inspector")
    expect(inspector).to_be_visible()

    settings = page.locator("#settings_plugin_tracking_queued")
    expect(
        settings.locator("label", has_text="Anonymous Usage Tracking (mit Warteschlange) aktivieren")
    ).to_be_visible()
    expect(settings).to_contain_text("Getrackte Events")
    expect(settings).to_contain_text("Druckjobs gestartet, beendet, fehlgeschlagen oder abgebrochen")
    expect(inspector.locator("h4")).to_have_text("Warteschlange")
    expect(page.locator("#tracking_queued_flush")).to_have_text("Jetzt senden")
    expect(page.locator("#tracking_queued_records th")).to_have_text(
        ["", "Zeitpunkt", "Event", "Versuche", "Letzter Fehler"]
    )
    # Computed by the JavaScript: the worker's state, the clear button for the shown list.
    expect(page.locator("#tracking_queued_state")).to_contain_text("Pausiert bis")
    expect(page.locator("#tracking_queued_clear")).to_have_text("Ausstehende löschen")
    page.evaluate("PNotify.removeAll()")  # OctoPrint's own pop-ups would hide the tab
    screenshot(page, "settings_de")
