// The settings tab's words and numbers (static/js/tracking_queued_format.js), from the status
// and records the API answers. OctoPrint's page gives it gettext, sprintf and dates; here
// they are stand-ins that show what was asked of them. Run: node --test tests/js
"use strict";

const test = require("node:test");
const assert = require("node:assert/strict");
const makeFormat = require("../../octoprint_tracking_queued/static/js/tracking_queued_format.js");

// underscore.string's sprintf for the named %(x)s / %(x)d the messages use; a missing value throws
function sprintf(text, values) {
    return text.replace(/%\((\w+)\)([sd])/g, (_, name, type) => {
        if (!(name in values)) throw new Error(`no value for ${name} in ${text}`);
        return type === "d" ? String(Math.trunc(Number(values[name]))) : String(values[name]);
    });
}

function env(overrides) {
    return {
        gettext: (text) => text,
        ngettext: (one, many, count) => (count === 1 ? one : many),
        sprintf,
        localTime: (unix) => (unix ? `local(${unix})` : "-"),
        clockTime: (unix) => `clock(${unix})`,
        fromNow: (unix) => `ago(${unix})`,
        ...overrides
    };
}

const format = makeFormat(env());

test("unsent is the server's sum; 0 before the first status", () => {
    assert.equal(format.unsent({pending: 3, in_flight: 1, failed: 2, delivered: 50, unsent: 6}), 6);
    assert.equal(format.unsent({}), 0);
});

const STATES = {
    sending: {text: "Sending", css: "text-success"},
    backoff: {text: "Backing off until %(time)s (%(reason)s)", css: "text-warning"}
};

test("the state's words come from the plugin's table, with its time and reason filled in", () => {
    assert.deepEqual(format.state(STATES, {state: "sending"}), {text: "Sending", css: "text-success"});
    assert.deepEqual(format.state(STATES, {state: "backoff", next_attempt: 1700000000, reason: "HTTP 503"}), {
        text: "Backing off until clock(1700000000) (HTTP 503)",
        css: "text-warning"
    });
    assert.equal(format.state(STATES, {state: "backoff"}).text, "Backing off until - ()");
});

test("an unknown or missing state is a muted dash", () => {
    const none = {text: "-", css: "muted"};
    assert.deepEqual(format.state(STATES, {state: "exploded"}), none);
    assert.deepEqual(format.state(STATES, {}), none);
    assert.deepEqual(format.state(STATES, undefined), none);
    assert.deepEqual(format.state(STATES, {state: "toString"}), none, "only the table's own keys");
    assert.deepEqual(format.state({}, {state: "sending"}), none);
});

test("the connectivity verdict comes from its table; unknown is a muted dash", () => {
    const verdicts = {online: {text: "Online", css: "text-success"}};
    assert.deepEqual(format.verdict(verdicts, {connectivity: "online"}), {text: "Online", css: "text-success"});
    assert.deepEqual(format.verdict(verdicts, {connectivity: "maybe"}), {text: "-", css: "muted"});
    assert.deepEqual(format.verdict(verdicts, undefined), {text: "-", css: "muted"});
});

test("the opt-out warning counts what saving deletes, singular and plural", () => {
    assert.equal(format.optOut(0), "No records are waiting to be sent.");
    assert.equal(format.optOut(1), "1 record not yet sent will be deleted when you save.");
    assert.equal(format.optOut(7), "7 records not yet sent will be deleted when you save.");
});

test("the oldest pending record: its time and how long ago, or only the time when uncertain", () => {
    assert.equal(format.oldest({}), "none");
    assert.equal(format.oldest({oldest_pending: 1700000000}), "local(1700000000) (ago(1700000000))");
    assert.equal(
        format.oldest({oldest_pending: 1700000000, oldest_pending_certain: true}),
        "local(1700000000) (ago(1700000000))"
    );
    assert.equal(format.oldest({oldest_pending: 1700000000, oldest_pending_certain: false}), "local(1700000000)");
});

test("the oldest time is uncertain only when the plugin says so, and there is one", () => {
    assert.equal(format.oldestUncertain({oldest_pending: 5, oldest_pending_certain: false}), true);
    assert.equal(format.oldestUncertain({oldest_pending: 5, oldest_pending_certain: true}), false);
    assert.equal(format.oldestUncertain({oldest_pending: 5}), false, "older plugins did not say");
    assert.equal(format.oldestUncertain({oldest_pending: null, oldest_pending_certain: false}), false);
});

test("the last error with its time, or none", () => {
    assert.equal(format.lastError({}), "none");
    assert.equal(format.lastError(undefined), "none");
    assert.equal(format.lastError({last_error: "HTTP 500", last_error_at: 1700000000}), "HTTP 500 at local(1700000000)");
});

test("counts per event: the largest first, ties by name", () => {
    assert.equal(format.perEvent({ping: 2, webui_load: 10, pong: 2, a: 1}), "webui_load 10, ping 2, pong 2, a 1");
    assert.equal(format.perEvent({}), "");
    assert.equal(format.perEvent(undefined), "");
});

test("dropped: over the cap and too old, each with its kinds, and what could not be stored", () => {
    const status = {
        dropped_cap: 12,
        max_records: 1000,
        dropped_age: 3,
        max_age_days: 30,
        store_failed: 1,
        by_event: {dropped_cap: {webui_load: 10, ping: 2}, dropped_age: {print_done: 3}}
    };
    assert.equal(
        format.dropped(status),
        "12 over the limit of 1000 records (webui_load 10, ping 2), " +
            "3 older than 30 days (print_done 3), 1 could not be stored"
    );
    assert.equal(
        format.dropped({}),
        "0 over the limit of 0 records, 0 older than 0 days, 0 could not be stored",
        "no counts yet: zeros, no empty brackets"
    );
});

test("superseded with its kinds, and cleared", () => {
    assert.equal(
        format.superseded({superseded: 4, by_event: {ping: 3, webui_load: 1}}),
        "4 by a newer record of the same kind"
    );
    assert.equal(
        format.superseded({superseded: 4, by_event: {superseded: {ping: 3, webui_load: 1}}}),
        "4 by a newer record of the same kind (ping 3, webui_load 1)"
    );
    assert.equal(format.superseded({}), "0 by a newer record of the same kind");
    assert.equal(format.cleared({cleared: 9}), "9 by Clear or by turning tracking off");
    assert.equal(format.cleared({}), "0 by Clear or by turning tracking off");
});

test("Clear says which list it empties, and asks with the count", () => {
    assert.equal(format.clearButton("pending"), "Clear pending");
    assert.equal(format.clearButton("failed"), "Clear failed");
    assert.equal(format.clearQuestion("pending", 5), "5 pending events will be deleted without being sent.");
    assert.equal(format.clearQuestion("failed", 2), "2 failed events will be deleted. They will not be sent.");
});

test("the pager's words: rows from 1, 'about' when the position was counted", () => {
    assert.equal(format.page(0, 20, 95, true), "1–20 of 95");
    assert.equal(format.page(80, 15, 95, true), "81–95 of 95");
    assert.equal(format.page(40, 20, 97, false), "about 41–60 of 97");
});

test("a record's row: when its event happened, and exactly what is sent", () => {
    const row = format.record({
        id: "abc",
        rowid: 17,
        event: "print_done",
        status: "pending",
        created: 1700000100,
        event_time: 1700000000,
        time_uncertain: true,
        attempts: 2,
        last_error: "timeout",
        sent: {origin: "local", elapsed: 120}
    });
    assert.deepEqual(row, {
        key: "abc",
        rowid: 17,
        event: "print_done",
        status: "pending",
        when: "local(1700000000)",
        uncertain: true,
        attempts: 2,
        lastError: "timeout",
        sentText: '{\n  "origin": "local",\n  "elapsed": 120\n}'
    });
});

test("a record without id, event time, attempts or error, and one that cannot be decoded", () => {
    const row = format.record({rowid: 5, event: null, status: "failed", created: 1700000100, sent: null});
    assert.equal(row.key, "row5", "keyed by rowid when it has no id");
    assert.equal(row.when, "local(1700000100)", "when it was queued, if that is all there is");
    assert.equal(row.uncertain, false);
    assert.equal(row.attempts, 0);
    assert.equal(row.lastError, "");
    assert.equal(row.sentText, "This record cannot be decoded and will not be sent.");
    assert.equal(format.record({rowid: 6}).sentText, "This record cannot be decoded and will not be sent.");
    assert.equal(format.record({rowid: 7, sent: {}}).sentText, "{}", "an empty payload is still sent");
});

test("every word goes through gettext or ngettext", () => {
    const german = makeFormat(
        env({
            gettext: (text) => `de[${text}]`,
            ngettext: (one, many, count) => `de[${count === 1 ? one : many}]`
        })
    );
    const words = [
        german.optOut(0),
        german.optOut(2),
        german.oldest({}),
        german.oldest({oldest_pending: 1}),
        german.lastError({}),
        german.lastError({last_error: "x"}),
        german.cleared({}),
        german.superseded({}),
        german.clearButton("pending"),
        german.clearButton("failed"),
        german.clearQuestion("pending", 1),
        german.clearQuestion("failed", 1),
        german.page(0, 1, 1, true),
        german.page(0, 1, 1, false),
        german.record({rowid: 1}).sentText,
        ...german.dropped({}).split(", ")
    ];
    for (const text of words) assert.match(text, /^de\[.*\]$/, text);
});
