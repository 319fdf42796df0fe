"""The wizard step and the settings tab in German, with OctoPrint's language set to German.

Each kind of string takes its own way into the page, so each is checked: templates and the
Python side (tab name) are translated on the server from the .mo; the JavaScript's strings come
from the .po, which OctoPrint serves to the browser as a script.
"""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from tests.browser.conftest import login, screenshot
from tests.harness.api import DONE, PRINTS, offline, wait_status
from tools.basedir import PLUGIN_ID

# What a user picks under Settings > Appearance > Default language (config.yaml).
GERMAN = {"appearance": {"defaultLanguage": "de"}}


def test_wizard_step_in_german(octoprint_factory, receiver, page: Page):
    server = octoprint_factory(
        plugin_settings={**PRINTS, "enabled": None}, extra_config=GERMAN, show_wizards=[PLUGIN_ID]
    )
    login(page, server)
    step = page.locator("#wizard_plugin_tracking_queued")
    expect(step).to_be_visible()
    expect(step.locator("h3")).to_have_text("Anonymous Usage Tracking (mit Warteschlange)")
    expect(step).to_contain_text("keine IP-Adressen")
    expect(page.locator("#tracking_queued_wizard_enable")).to_have_text("Aktivieren")
    expect(page.locator("#tracking_queued_wizard_disable")).to_have_text("Deaktivieren")
    # the dialog fades in over the page: a picture taken earlier shows both
    page.wait_for_function("getComputedStyle(document.querySelector('#wizard_dialog')).opacity === '1'")
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

    # Turned on elsewhere meanwhile, offline: Disable says what it deletes (the start's ping).
    receiver.stop()
    server.api("POST", "/api/settings", json={"plugins": {PLUGIN_ID: {"enabled": True}}})
    wait_status(server, lambda s: s["pending"] + s["in_flight"] == 1)
    expect(page.locator("#tracking_queued_wizard_optout")).to_have_text(
        "Deaktivieren löscht 1 noch nicht gesendeten Eintrag."
    )

    page.click("#tracking_queued_wizard_disable")
    # What is shown, not what the page holds: both outcomes are in it, one hidden. The decision
    # shows once its save has answered; Finish before that asks for a decision.
    result = page.locator("#tracking_queued_wizard_result span")
    expect(result.filter(has_text="Anonymous Usage Tracking (mit Warteschlange) ist deaktiviert")).to_be_visible()
    assert server.api("GET", "/api/settings").json()["plugins"][PLUGIN_ID]["enabled"] is False
    finish.click()  # not forced: Playwright waits until the re-centring dialog holds still
    expect(page.locator("#wizard_dialog")).to_be_hidden()


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
    expect(inspector.get_by_role("heading", name="Warteschlange", exact=True)).to_be_visible()
    expect(page.locator("#tracking_queued_flush")).to_have_text("Jetzt senden")
    expect(page.locator("#tracking_queued_records th")).to_have_text(
        ["", "Zeitpunkt", "Event", "Versuche", "Letzter Fehler"]
    )
    # Computed by the JavaScript: the worker's state, the clear button for the shown list.
    expect(page.locator("#tracking_queued_state")).to_contain_text("Pausiert bis")
    expect(page.locator("#tracking_queued_clear")).to_have_text("Ausstehende löschen")
    expect(page.locator("#tracking_queued_connectivity")).to_have_text(
        "Online: OctoPrints Onlineprüfung meldet das oder ist aus"
    )
    expect(page.locator("#tracking_queued_dropped")).to_have_text(
        "0 über der Grenze von 10000 Einträgen, 0 älter als 30 Tage, 0 nicht speicherbar"
    )
    expect(page.locator("#tracking_queued_superseded")).to_have_text("0 durch einen neueren Eintrag derselben Art")
    expect(page.locator("#tracking_queued_cleared")).to_have_text("0 durch Löschen oder Abschalten des Trackings")
    stats = page.locator("#tracking_queued_inspector dl dt")
    for label in ("Verbindung", "Verworfen", "Ersetzt", "Gelöscht", "Ältestes ausstehendes"):
        expect(stats.filter(has_text=label)).to_have_count(1)
    # Shown only for an uncertain time, and on a long list: the words are there all the same.
    uncertain = page.locator("#tracking_queued_oldest .tracking_queued_uncertain")
    expect(uncertain).to_have_text("Zeit unsicher")
    expect(uncertain).to_have_attribute("title", re.compile(r"^Die Uhr dieses Geräts war nicht"))
    pager = {"first": "Erste Seite", "prev": "Vorherige Seite", "next": "Nächste Seite", "last": "Letzte Seite"}
    for button, title in pager.items():
        expect(page.locator(f"#tracking_queued_{button}")).to_have_attribute("title", title)

    # Unticking the switch warns before saving (JavaScript, with the German plural).
    warning = page.locator("#tracking_queued_optout")
    page.uncheck("#tracking_queued_enabled")
    expect(warning).to_contain_text("1 noch nicht gesendeter Eintrag wird beim Speichern gelöscht.")
    expect(warning).to_contain_text("Das Abschalten des Trackings löscht, was gesammelt")
    screenshot(page, "settings_opt_out_de")
    page.check("#tracking_queued_enabled")
    page.evaluate("PNotify.removeAll()")  # OctoPrint's own pop-ups would hide the tab
    screenshot(page, "settings_de")
