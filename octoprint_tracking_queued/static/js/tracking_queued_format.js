/*
 * Anonymous Usage Tracking (Queued): the settings tab's words and numbers, from the status
 * and the records the API answers. No Knockout, jQuery or page: what a format needs from
 * OctoPrint (translation, sprintf, dates) comes in as `env`, so that Node's test runner
 * checks every line (tests/js). In the browser it is TrackingQueuedUi.format(env), with the
 * env of tracking_queued_helpers.js.
 *
 * env: {gettext, ngettext, sprintf (underscore.string's, named %(x)s), localTime(unix) (a
 * date and time, "-" for none), clockTime(unix) ("HH:mm:ss"), fromNow(unix) ("5 minutes ago")}
 */
(function (factory) {
    if (typeof module === "object" && module && module.exports) module.exports = factory;
    if (typeof window !== "undefined") {
        window.TrackingQueuedUi = window.TrackingQueuedUi || {};
        window.TrackingQueuedUi.format = factory;
    }
})(function (env) {
    // Called by these names so that pybabel finds the messages (babel.cfg).
    var gettext = env.gettext;
    var ngettext = env.ngettext;
    var sprintf = env.sprintf;

    function has(table, key) {
        return !!table && Object.prototype.hasOwnProperty.call(table, key);
    }

    // Records that turning tracking off deletes: everything not yet delivered, as the
    // server sums it (status.py); 0 before the first status arrives.
    function unsent(status) {
        return status.unsent || 0;
    }

    // {text, css} of the worker's state; `states` is the plugin's table (vocabulary.py),
    // {state: {text, css}}, translated when the page was made.
    function state(states, worker) {
        worker = worker || {};
        if (!has(states, worker.state)) return {text: "-", css: "muted"};
        var entry = states[worker.state];
        return {
            text: sprintf(entry.text, {
                reason: worker.reason || "",
                time: worker.next_attempt ? env.clockTime(worker.next_attempt) : "-"
            }),
            css: entry.css
        };
    }

    // {text, css} of the connectivity verdict the worker goes by; `verdicts` as `states`.
    function verdict(verdicts, worker) {
        var key = (worker || {}).connectivity;
        if (!has(verdicts, key)) return {text: "-", css: "muted"};
        return {text: verdicts[key].text, css: verdicts[key].css};
    }

    function optOut(count) {
        if (count === 0) return gettext("No records are waiting to be sent.");
        return sprintf(
            ngettext(
                "%(count)d record not yet sent will be deleted when you save.",
                "%(count)d records not yet sent will be deleted when you save.",
                count
            ),
            {count: count}
        );
    }

    // The oldest pending record's time was not confirmed by time synchronisation.
    function oldestUncertain(status) {
        return !!status.oldest_pending && status.oldest_pending_certain === false;
    }

    function oldest(status) {
        var time = status.oldest_pending;
        if (!time) return gettext("none");
        if (oldestUncertain(status)) return env.localTime(time); // "ago" would repeat a doubt
        return sprintf(gettext("%(time)s (%(ago)s)"), {
            time: env.localTime(time),
            ago: env.fromNow(time)
        });
    }

    function lastError(worker) {
        worker = worker || {};
        if (!worker.last_error) return gettext("none");
        return sprintf(gettext("%(error)s at %(time)s"), {
            error: worker.last_error,
            time: env.localTime(worker.last_error_at)
        });
    }

    // "webui_load 10, ping 2": a count per tracking event, the largest first
    function perEvent(counts) {
        var pairs = Object.keys(counts || {}).map(function (key) {
            return [key, counts[key]];
        });
        pairs.sort(function (a, b) {
            return b[1] - a[1] || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0);
        });
        return pairs
            .map(function (pair) {
                return pair[0] + " " + pair[1];
            })
            .join(", ");
    }

    function withKinds(text, counts) {
        var kinds = perEvent(counts);
        return kinds ? sprintf("%(text)s (%(kinds)s)", {text: text, kinds: kinds}) : text;
    }

    function byEvent(status, kind) {
        return (status.by_event || {})[kind];
    }

    function dropped(status) {
        return [
            withKinds(
                sprintf(gettext("%(count)d over the limit of %(max)d records"), {
                    count: status.dropped_cap || 0,
                    max: status.max_records || 0
                }),
                byEvent(status, "dropped_cap")
            ),
            withKinds(
                sprintf(gettext("%(count)d older than %(days)d days"), {
                    count: status.dropped_age || 0,
                    days: status.max_age_days || 0
                }),
                byEvent(status, "dropped_age")
            ),
            sprintf(gettext("%(count)d could not be stored"), {count: status.store_failed || 0})
        ].join(", ");
    }

    function superseded(status) {
        return withKinds(
            sprintf(gettext("%(count)d by a newer record of the same kind"), {
                count: status.superseded || 0
            }),
            byEvent(status, "superseded")
        );
    }

    function cleared(status) {
        return sprintf(gettext("%(count)d by Clear or by turning tracking off"), {
            count: status.cleared || 0
        });
    }

    // The Clear button's label and its question, for the list shown.
    function clearButton(scope) {
        return scope === "failed" ? gettext("Clear failed") : gettext("Clear pending");
    }

    function clearQuestion(scope, count) {
        var message =
            scope === "failed"
                ? gettext("%(count)d failed events will be deleted. They will not be sent.")
                : gettext("%(count)d pending events will be deleted without being sent.");
        return sprintf(message, {count: count});
    }

    // "21–40 of 95" from the pager (position from 0, exact or counted) and the rows shown.
    function page(position, shown, total, exact) {
        var values = {first: position + 1, last: position + shown, total: total};
        return exact
            ? sprintf(gettext("%(first)d–%(last)d of %(total)d"), values)
            : sprintf(gettext("about %(first)d–%(last)d of %(total)d"), values);
    }

    // A row of the records table from a record of the API.
    function record(r) {
        return {
            key: r.id || "row" + r.rowid, // kept across refreshes, so rows update in place
            rowid: r.rowid, // the pager's key
            event: r.event,
            status: r.status,
            // when its event happened (true time where known), not when it was queued
            when: env.localTime(r.event_time || r.created),
            uncertain: !!r.time_uncertain,
            attempts: r.attempts || 0,
            lastError: r.last_error || "",
            sentText:
                r.sent === null || r.sent === undefined
                    ? gettext("This record cannot be decoded and will not be sent.")
                    : JSON.stringify(r.sent, null, 2)
        };
    }

    return {
        unsent: unsent,
        state: state,
        verdict: verdict,
        optOut: optOut,
        oldest: oldest,
        oldestUncertain: oldestUncertain,
        lastError: lastError,
        perEvent: perEvent,
        dropped: dropped,
        superseded: superseded,
        cleared: cleared,
        clearButton: clearButton,
        clearQuestion: clearQuestion,
        page: page,
        record: record
    };
});
