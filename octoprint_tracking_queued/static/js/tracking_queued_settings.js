/*
 * Anonymous Usage Tracking (Queued): the settings tab with its queue inspector.
 */
$(function () {
    var PLUGIN = TrackingQueuedUi.PLUGIN;
    var TAB = "#settings_plugin_tracking_queued";
    var PAGE_SIZE = 20;
    var client = TrackingQueuedUi.client;
    var notifyError = TrackingQueuedUi.notifyError;
    var Pager = TrackingQueuedUi.Pager;
    // a row's fields that change on a refresh (tracking_queued_format.js: record)
    var ROW_FIELDS = ["event", "status", "when", "uncertain", "attempts", "lastError", "sentText"];

    // The words and the pager live in plain modules (tracking_queued_format.js,
    // tracking_queued_pager.js, tested in tests/js); this view model hands them the data and
    // puts what they answer into observables.
    function TrackingQueuedSettingsViewModel(parameters) {
        var self = this;
        var format = TrackingQueuedUi.format(TrackingQueuedUi.env());
        self.loginState = parameters[0];
        self.settingsViewModel = parameters[1];
        self.access = parameters[2];

        self.pluginSettings = ko.observable(undefined);
        self.status = ko.observable({worker: {}});
        self.scope = ko.observable("pending");
        self.dest = ko.observable("tracking"); // whose records the table shows
        self.records = ko.observableArray([]);
        self.pageSize = PAGE_SIZE;
        self.pager = new Pager(PAGE_SIZE);
        // the pager's page, observable
        self.total = ko.observable(0);
        self.position = ko.observable(0); // of the first row shown, from 0
        self.positionExact = ko.observable(true);
        self.atStart = ko.observable(true);
        self.atEnd = ko.observable(true);
        self.busy = ko.observable(false);
        self.now = ko.observable(Date.now() / 1000);

        self.visible = false; // our tab is open: only then are records fetched
        self.expanded = {}; // record ids shown expanded, kept across refreshes
        self.ticker = undefined;

        self.canManage = ko.pureComputed(function () {
            return self.loginState.hasPermission(
                self.access.permissions.PLUGIN_TRACKING_QUEUED_MANAGE
            );
        });

        self.bundledEnabled = ko.pureComputed(function () {
            return !!self.status().bundled_enabled;
        });

        // {state: {text, css}} and {verdict: {text, css}} from the plugin (vocabulary.py),
        // translated when the page was made
        self.states = JSON.parse($("#tracking_queued_state").attr("data-states") || "{}");
        self.verdicts = JSON.parse($("#tracking_queued_connectivity").attr("data-verdicts") || "{}");

        self.stateView = ko.pureComputed(function () {
            return format.state(self.states, self.status().worker);
        });
        self.verdictView = ko.pureComputed(function () {
            return format.verdict(self.verdicts, self.status().worker);
        });

        self.stateText = ko.pureComputed(function () {
            return self.stateView().text;
        });
        self.stateCss = ko.pureComputed(function () {
            return self.stateView().css;
        });
        self.connectivityText = ko.pureComputed(function () {
            return self.verdictView().text;
        });
        self.connectivityCss = ko.pureComputed(function () {
            return self.verdictView().css;
        });

        self.unsent = ko.pureComputed(function () {
            return format.unsent(self.status());
        });

        // The switch is off in the form while tracking is on as saved: saving opts out.
        self.optingOut = ko.pureComputed(function () {
            var plugin = self.pluginSettings();
            return !!plugin && !plugin.enabled() && self.status().enabled === true;
        });

        self.optOutText = ko.pureComputed(function () {
            return format.optOut(self.unsent());
        });

        self.oldestText = ko.pureComputed(function () {
            self.now(); // re-evaluate as time passes ("5 minutes ago")
            return format.oldest(self.status());
        });

        self.oldestUncertain = ko.pureComputed(function () {
            return format.oldestUncertain(self.status());
        });

        self.lastErrorText = ko.pureComputed(function () {
            return format.lastError(self.status().worker);
        });

        self.droppedText = ko.pureComputed(function () {
            return format.dropped(self.status());
        });

        self.supersededText = ko.pureComputed(function () {
            return format.superseded(self.status());
        });

        self.clearedText = ko.pureComputed(function () {
            return format.cleared(self.status());
        });

        // Each destination's row: its own consent, state and counts (status().destinations).
        // The counts of the destination whose records the table shows.
        self.shown = ko.pureComputed(function () {
            var all = self.status().destinations || {};
            return all[self.dest()] || self.status();
        });

        self.destinations = ko.pureComputed(function () {
            var all = self.status().destinations || {};
            var labels = {
                tracking: gettext("Public tracking server"),
                collector: gettext("Your OpenTelemetry collector")
            };
            return _.map(["tracking", "collector"], function (name) {
                var dest = all[name] || {worker: {}};
                return {
                    name: name,
                    label: labels[name],
                    shown: self.dest() === name,
                    enabled: !!dest.enabled,
                    state: format.state(self.states, dest.worker),
                    pending: (dest.pending || 0) + (dest.in_flight || 0),
                    failed: dest.failed || 0,
                    delivered: dest.delivered || 0,
                    partial: name === "collector" ? String(dest.partial_rejected || 0) : "-",
                    partialWhy: (dest.worker && dest.worker.last_partial) || ""
                };
            });
        });

        self.clearText = ko.pureComputed(function () {
            return format.clearButton(self.scope());
        });

        self.pageText = ko.pureComputed(function () {
            return format.page(self.position(), self.records().length, self.total(), self.positionExact());
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
            var view = format.record(record);
            var row = self.rowsByKey[view.key];
            if (!row) {
                row = {key: view.key, expanded: ko.observable(!!self.expanded[view.key])};
                _.each(ROW_FIELDS, function (field) {
                    row[field] = ko.observable();
                });
            }
            row.rowid = view.rowid;
            _.each(ROW_FIELDS, function (field) {
                row[field](view[field]);
            });
            return row;
        };

        self.requestRecords = function () {
            if (!self.visible || !self.canManage()) return;
            var ticket = self.pager.request();
            return client()
                .recordsPage(self.scope(), _.extend({dest: self.dest()}, ticket.anchor), PAGE_SIZE)
                .done(function (response) {
                    var rows = response.records;
                    var outcome = self.pager.receive(ticket, _.pluck(rows, "rowid"), response.total);
                    if (outcome === Pager.AGAIN) self.requestRecords();
                    if (outcome !== Pager.SHOWN) return;
                    self._showPage();
                    rows = _.map(rows, self.toRow);
                    self.rowsByKey = _.indexBy(rows, "key");
                    self.records(rows);
                });
        };

        self._showPage = function () {
            var pager = self.pager;
            self.position(pager.position);
            self.positionExact(pager.exact);
            self.atStart(pager.atStart);
            self.atEnd(pager.atEnd);
            self.total(pager.total);
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
            self.pager.restart();
            self.requestRecords();
        };

        self.showDestination = function (row) {
            if (row.name === self.dest()) return;
            self.dest(row.name);
            self.records([]);
            self.pager.restart();
            self.requestRecords();
        };

        // a move asks for a page only when there is one to go to
        self.firstPage = function () {
            if (self.pager.first()) self.requestRecords();
        };
        self.prevPage = function () {
            if (self.pager.prev()) self.requestRecords();
        };
        self.nextPage = function () {
            if (self.pager.next()) self.requestRecords();
        };
        self.lastPage = function () {
            if (self.pager.last()) self.requestRecords();
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

        self.flushDestination = function (row) {
            self._command(function () {
                return client().flushDestination(row.name);
            }, gettext("Could not flush the tracking queue"));
        };

        self.retryDestination = function (row) {
            self._command(function () {
                return client().retryFailedDestination(row.name);
            }, gettext("Could not retry the failed events"));
        };

        self.clear = function () {
            var scope = self.scope();
            showConfirmationDialog({
                title: gettext("Clear the tracking queue?"),
                message: format.clearQuestion(scope, self.total()),
                proceed: gettext("Delete"),
                onproceed: function () {
                    self._command(function () {
                        return client().clearDestination(scope, self.dest());
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
