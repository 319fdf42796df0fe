/*
 * Anonymous Usage Tracking (Queued): the settings tab with its queue inspector.
 */
$(function () {
    var PLUGIN = TrackingQueuedUi.PLUGIN;
    var TAB = "#settings_plugin_tracking_queued";
    var PAGE_SIZE = 20;
    var client = TrackingQueuedUi.client;
    var notifyError = TrackingQueuedUi.notifyError;

    function localTime(unixTimestamp) {
        return formatDate(unixTimestamp, {seconds: true, placeholder: "-"});
    }

    function TrackingQueuedSettingsViewModel(parameters) {
        var self = this;
        self.loginState = parameters[0];
        self.settingsViewModel = parameters[1];
        self.access = parameters[2];

        self.pluginSettings = ko.observable(undefined);
        self.status = ko.observable({worker: {}});
        self.scope = ko.observable("pending");
        self.records = ko.observableArray([]);
        self.total = ko.observable(0);
        self.pageSize = PAGE_SIZE;
        // The pager goes by key (rowid), so the last page of a long queue costs what the
        // first does. The page shown is the one `anchor` asks for: {} the first,
        // {after: rowid}, {before: rowid}, {last: true}. Its position in the list is known
        // at either end; in between it is counted from the pages walked, which records
        // sent or dropped meanwhile make approximate.
        self.anchor = {};
        self.position = ko.observable(0); // of the first row shown, from 0
        self.positionExact = ko.observable(true);
        self.atStart = ko.observable(true);
        self.atEnd = ko.observable(true);
        // the position counted for the anchor's page when it was asked for, and the total then
        self.basis = {position: 0, exact: true, total: 0};
        self.busy = ko.observable(false);
        self.now = ko.observable(Date.now() / 1000);

        self.visible = false; // our tab is open: only then are records fetched
        self.expanded = {}; // record ids shown expanded, kept across refreshes
        self.ticker = undefined;
        self.requestSeq = 0;

        self.canManage = ko.pureComputed(function () {
            return self.loginState.hasPermission(
                self.access.permissions.PLUGIN_TRACKING_QUEUED_MANAGE
            );
        });

        self.bundledEnabled = ko.pureComputed(function () {
            return !!self.status().bundled_enabled;
        });

        // {state: {text, css}} from the plugin (vocabulary.py), translated when the page was made
        self.states = JSON.parse($("#tracking_queued_state").attr("data-states") || "{}");

        self._state = function () {
            var key = (self.status().worker || {}).state;
            return _.has(self.states, key) ? self.states[key] : undefined;
        };

        self.stateText = ko.pureComputed(function () {
            var worker = self.status().worker || {};
            var state = self._state();
            if (!state) return "-";
            return _.sprintf(state.text, {
                reason: worker.reason || "",
                time: worker.next_attempt ? moment.unix(worker.next_attempt).format("HH:mm:ss") : "-"
            });
        });

        self.stateCss = ko.pureComputed(function () {
            var state = self._state();
            return state ? state.css : "muted";
        });

        // {verdict: {text, css}}: which connectivity verdict the worker goes by
        self.verdicts = JSON.parse($("#tracking_queued_connectivity").attr("data-verdicts") || "{}");

        self._verdict = function () {
            var key = (self.status().worker || {}).connectivity;
            return _.has(self.verdicts, key) ? self.verdicts[key] : undefined;
        };

        self.connectivityText = ko.pureComputed(function () {
            var verdict = self._verdict();
            return verdict ? verdict.text : "-";
        });

        self.connectivityCss = ko.pureComputed(function () {
            var verdict = self._verdict();
            return verdict ? verdict.css : "muted";
        });

        // Records that turning tracking off deletes: everything not yet delivered.
        self.unsent = ko.pureComputed(function () {
            var s = self.status();
            return (s.pending || 0) + (s.in_flight || 0) + (s.failed || 0);
        });

        // The switch is off in the form while tracking is on as saved: saving opts out.
        self.optingOut = ko.pureComputed(function () {
            var plugin = self.pluginSettings();
            return !!plugin && !plugin.enabled() && self.status().enabled === true;
        });

        self.optOutText = ko.pureComputed(function () {
            var count = self.unsent();
            if (count === 0) return gettext("No records are waiting to be sent.");
            return _.sprintf(
                ngettext(
                    "%(count)d record not yet sent will be deleted when you save.",
                    "%(count)d records not yet sent will be deleted when you save.",
                    count
                ),
                {count: count}
            );
        });

        self.oldestText = ko.pureComputed(function () {
            var oldest = self.status().oldest_pending;
            if (!oldest) return gettext("none");
            if (self.oldestUncertain()) return localTime(oldest); // "ago" would repeat a doubt
            self.now(); // re-evaluate as time passes
            return _.sprintf(gettext("%(time)s (%(ago)s)"), {
                time: localTime(oldest),
                ago: moment.unix(oldest).fromNow()
            });
        });

        self.oldestUncertain = ko.pureComputed(function () {
            var s = self.status();
            return !!s.oldest_pending && s.oldest_pending_certain === false;
        });

        self.lastErrorText = ko.pureComputed(function () {
            var worker = self.status().worker || {};
            if (!worker.last_error) return gettext("none");
            return _.sprintf(gettext("%(error)s at %(time)s"), {
                error: worker.last_error,
                time: localTime(worker.last_error_at)
            });
        });

        // "webui_load 10, ping 2": a count per tracking event, the largest first
        function perEvent(counts) {
            var pairs = _.pairs(counts || {}).sort(function (a, b) {
                return b[1] - a[1] || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0);
            });
            return _.map(pairs, function (pair) {
                return pair[0] + " " + pair[1];
            }).join(", ");
        }

        function withKinds(text, counts) {
            var kinds = perEvent(counts);
            return kinds ? _.sprintf("%(text)s (%(kinds)s)", {text: text, kinds: kinds}) : text;
        }

        self._byEvent = function (kind) {
            return (self.status().by_event || {})[kind];
        };

        self.droppedText = ko.pureComputed(function () {
            var s = self.status();
            return [
                withKinds(
                    _.sprintf(gettext("%(count)d over the limit of %(max)d records"), {
                        count: s.dropped_cap || 0,
                        max: s.max_records || 0
                    }),
                    self._byEvent("dropped_cap")
                ),
                withKinds(
                    _.sprintf(gettext("%(count)d older than %(days)d days"), {
                        count: s.dropped_age || 0,
                        days: s.max_age_days || 0
                    }),
                    self._byEvent("dropped_age")
                ),
                _.sprintf(gettext("%(count)d could not be stored"), {count: s.store_failed || 0})
            ].join(", ");
        });

        self.supersededText = ko.pureComputed(function () {
            return withKinds(
                _.sprintf(gettext("%(count)d by a newer record of the same kind"), {
                    count: self.status().superseded || 0
                }),
                self._byEvent("superseded")
            );
        });

        self.clearedText = ko.pureComputed(function () {
            return _.sprintf(gettext("%(count)d by Clear or by turning tracking off"), {
                count: self.status().cleared || 0
            });
        });

        self.clearText = ko.pureComputed(function () {
            return self.scope() === "failed"
                ? gettext("Clear failed")
                : gettext("Clear pending");
        });

        self.pageText = ko.pureComputed(function () {
            var values = {
                first: self.position() + 1,
                last: self.position() + self.records().length,
                total: self.total()
            };
            return self.positionExact()
                ? _.sprintf(gettext("%(first)d–%(last)d of %(total)d"), values)
                : _.sprintf(gettext("about %(first)d–%(last)d of %(total)d"), values);
        });

        // ~~ data

        self.fromStatus = function (status) {
            if (status) self.status(status);
        };

        self.requestStatus = function () {
            if (!self.canManage()) return;
            return client().status().done(self.fromStatus);
        };

        // Rows are kept by key and updated in place, so a live refresh does not
        // re-render (and collapse or detach) the rows the user is looking at.
        self.rowsByKey = {};

        self.toRow = function (record) {
            var key = record.id || "row" + record.rowid;
            var row = self.rowsByKey[key];
            if (!row) {
                row = {
                    key: key,
                    event: ko.observable(),
                    status: ko.observable(),
                    when: ko.observable(),
                    uncertain: ko.observable(),
                    attempts: ko.observable(),
                    lastError: ko.observable(),
                    sentText: ko.observable(),
                    expanded: ko.observable(!!self.expanded[key])
                };
            }
            row.rowid = record.rowid; // the pager's key
            row.event(record.event);
            row.status(record.status);
            // when its event happened (true time where known), not when it was queued
            row.when(localTime(record.event_time || record.created));
            row.uncertain(!!record.time_uncertain);
            row.attempts(record.attempts || 0);
            row.lastError(record.last_error || "");
            row.sentText(
                record.sent === null || record.sent === undefined
                    ? gettext("This record cannot be decoded and will not be sent.")
                    : JSON.stringify(record.sent, null, 2)
            );
            return row;
        };

        self.requestRecords = function () {
            if (!self.visible || !self.canManage()) return;
            var seq = ++self.requestSeq;
            var anchor = self.anchor;
            return client()
                .recordsPage(self.scope(), anchor, PAGE_SIZE)
                .done(function (response) {
                    if (seq !== self.requestSeq) return; // a newer request is under way
                    var rows = response.records;
                    var total = response.total;
                    var keyed = anchor.after !== undefined || anchor.before !== undefined;
                    var short =
                        rows.length === 0 ||
                        (anchor.before !== undefined && rows.length < PAGE_SIZE);
                    if (keyed && short && total > rows.length) {
                        // nothing (or, going back, less than a page) beyond the key: that end
                        self.anchor = anchor.after !== undefined ? {last: true} : {};
                        self.requestRecords();
                        return;
                    }
                    if (total === 0) self.anchor = anchor = {}; // emptied: new records start a list
                    self._place(anchor, rows.length, total);
                    self.total(total);
                    rows = _.map(rows, self.toRow);
                    self.rowsByKey = {};
                    _.each(rows, function (row) {
                        self.rowsByKey[row.key] = row;
                    });
                    self.records(rows);
                });
        };

        // Where the page is in the list: exact at either end, else counted from the walk.
        self._place = function (anchor, count, total) {
            var position, exact;
            if (anchor.last) {
                position = total - count;
                exact = true;
            } else if (anchor.after === undefined && anchor.before === undefined) {
                position = 0;
                exact = true;
            } else if (anchor.after !== undefined && count < PAGE_SIZE) {
                position = total - count; // a short page after a key ends the list
                exact = true;
            } else {
                position = self.basis.position;
                exact = self.basis.exact && total === self.basis.total;
                if (position < 0 || position > total - count) {
                    position = Math.min(Math.max(position, 0), Math.max(total - count, 0));
                    exact = false;
                }
            }
            self.position(position);
            self.positionExact(exact);
            var first = !anchor.last && anchor.after === undefined && anchor.before === undefined;
            self.atStart(first || (exact && position === 0));
            self.atEnd(!!anchor.last || (exact && position + count >= total));
        };

        // plugin messages come at most twice a second; fetching the page as often is fine
        self.refreshRecords = _.throttle(self.requestRecords, 500);
        self.refreshStatus = _.throttle(self.requestStatus, 500);

        self.refresh = function () {
            self.requestStatus();
            self.requestRecords();
        };

        // ~~ user actions

        self.toggle = function (row) {
            row.expanded(!row.expanded());
            self.expanded[row.key] = row.expanded();
        };

        self.showScope = function (scope) {
            if (scope === self.scope()) return;
            self.scope(scope);
            self.records([]);
            self._go({});
        };

        self._go = function (anchor, position) {
            self.anchor = anchor;
            self.basis = {
                position: position || 0,
                exact: self.positionExact(),
                total: self.total()
            };
            self.requestRecords();
        };

        self._rowid = function (index) {
            var rows = self.records();
            return rows.length ? rows[index < 0 ? rows.length - 1 : index].rowid : undefined;
        };

        self.firstPage = function () {
            if (self.atStart()) return;
            self._go({});
        };

        self.prevPage = function () {
            if (self.atStart() || !self.records().length) return;
            self._go({before: self._rowid(0)}, self.position() - PAGE_SIZE);
        };

        self.nextPage = function () {
            if (self.atEnd() || !self.records().length) return;
            self._go({after: self._rowid(-1)}, self.position() + self.records().length);
        };

        self.lastPage = function () {
            if (self.atEnd()) return;
            self._go({last: true});
        };

        self._command = function (call, title) {
            self.busy(true);
            return call()
                .fail(function (jqXHR) {
                    notifyError(title, jqXHR);
                })
                .always(function () {
                    self.busy(false);
                    self.refresh();
                });
        };

        self.flush = function () {
            self._command(function () {
                return client().flush();
            }, gettext("Could not flush the tracking queue"));
        };

        self.retryFailed = function () {
            self._command(function () {
                return client().retryFailed();
            }, gettext("Could not retry the failed events"));
        };

        self.clear = function () {
            var scope = self.scope();
            var count = self.total();
            var message =
                scope === "failed"
                    ? gettext(
                          "%(count)d failed events will be deleted. They will not be sent."
                      )
                    : gettext(
                          "%(count)d pending events will be deleted without being sent."
                      );
            showConfirmationDialog({
                title: gettext("Clear the tracking queue?"),
                message: _.sprintf(message, {count: count}),
                proceed: gettext("Delete"),
                onproceed: function () {
                    self._command(function () {
                        return client().clear(scope);
                    }, gettext("Could not clear the tracking queue"));
                }
            });
        };

        // ~~ OctoPrint callbacks

        self._setVisible = function (visible) {
            self.visible = visible;
            if (self.ticker) {
                window.clearInterval(self.ticker);
                self.ticker = undefined;
            }
            if (!visible) return;
            self.ticker = window.setInterval(function () {
                self.now(Date.now() / 1000);
            }, 5000);
            self.refresh();
        };

        self.onAllBound = function () {
            $('#settings_dialog ul.nav-list a[data-toggle="tab"]').on("shown", function (event) {
                self._setVisible($(event.target).attr("href") === TAB);
            });
        };

        self.onSettingsShown = function () {
            var plugins = self.settingsViewModel.settings && self.settingsViewModel.settings.plugins;
            self.pluginSettings(plugins && plugins[PLUGIN]);
            if ($(TAB).hasClass("active")) self._setVisible(true);
        };

        self.onSettingsHidden = function () {
            self._setVisible(false);
        };

        self.onDataUpdaterPluginMessage = function (plugin, data) {
            // The push says only "changed" (it reaches every socket, permitted or not);
            // the data comes through the permission-checked API, while the tab is open.
            if (plugin !== PLUGIN || !data || data.type !== "changed") return;
            if (!self.visible || !self.canManage()) return;
            self.refreshStatus();
            self.refreshRecords();
        };

        self.onUserLoggedIn = function () {
            self.requestStatus();
        };
    }

    OCTOPRINT_VIEWMODELS.push({
        construct: TrackingQueuedSettingsViewModel,
        dependencies: ["loginStateViewModel", "settingsViewModel", "accessViewModel"],
        elements: ["#settings_plugin_tracking_queued"]
    });
});
