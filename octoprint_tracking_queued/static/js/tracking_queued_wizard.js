/*
 * Anonymous Usage Tracking (Queued): the first-run wizard step, where the user enables or
 * disables tracking.
 */
$(function () {
    var PLUGIN = TrackingQueuedUi.PLUGIN;
    var notifyError = TrackingQueuedUi.notifyError;
    var STEP = "#wizard_plugin_" + PLUGIN;

    function TrackingQueuedWizardViewModel(parameters) {
        var self = this;
        self.settingsViewModel = parameters[0];

        self.decision = ko.observable(undefined); // saved decision: true, false or undefined
        self.pending = ko.observable(undefined); // the decision being saved
        self.busy = ko.observable(false);
        self.bundledEnabled = ko.observable(false);
        self.bundledTurnedOff = ko.observable(false);
        // Records not yet sent, which Disable deletes: none when the wizard opens undecided,
        // but tracking may be turned on elsewhere (another tab, the API) while it is open.
        self.pendingRecords = ko.observable(0);
        self.required = false;
        self.shown = false; // our step is in the open wizard dialog

        self.onWizardDetails = function (response) {
            var ours = (response && response[PLUGIN]) || {};
            self.required = !!ours.required;
            self.shown = $(STEP).length > 0;
            self._fromDetails(ours.details);
        };

        self._fromDetails = function (details) {
            self.bundledEnabled(!!(details && details.bundled_enabled));
            self.pendingRecords((details && details.pending_records) || 0);
        };

        self.showOptOut = ko.pureComputed(function () {
            return self.pendingRecords() > 0 && self.decision() !== false;
        });

        self.optOutText = ko.pureComputed(function () {
            var count = self.pendingRecords();
            return _.sprintf(
                ngettext(
                    "Disable deletes %(count)d record not yet sent.",
                    "Disable deletes %(count)d records not yet sent.",
                    count
                ),
                {count: count}
            );
        });

        // The same details again when the queue changed; only the counts are taken from them.
        self._refresh = _.throttle(function () {
            OctoPrint.wizard.get().done(function (response) {
                self._fromDetails(((response || {})[PLUGIN] || {}).details);
            });
        }, 500);

        self.onDataUpdaterPluginMessage = function (plugin, data) {
            if (plugin !== PLUGIN || !data || data.type !== "changed") return;
            if (!self.shown || self.decision() === false) return;
            self._refresh();
        };

        self.enable = function () {
            self._decide(true);
        };

        self.disable = function () {
            self._decide(false);
        };

        self._decide = function (value) {
            self.busy(true);
            self.pending(value);
            self.settingsViewModel
                .saveData({plugins: {tracking_queued: {enabled: value}}})
                .done(function () {
                    self.decision(value);
                    // the server turned the bundled plugin off while saving
                    self.bundledTurnedOff(value && self.bundledEnabled());
                })
                .fail(function (jqXHR) {
                    notifyError(gettext("Your decision could not be saved"), jqXHR);
                })
                .always(function () {
                    self.busy(false);
                    self.pending(undefined);
                });
        };

        self._decided = function () {
            return self.decision() !== undefined;
        };

        self._askForDecision = function () {
            showMessageDialog({
                title: gettext("Please decide on anonymous usage tracking (queued)"),
                message: gettext(
                    "Choose Enable or Disable on the Anonymous Usage Tracking (Queued) step before you continue."
                )
            });
        };

        self.onBeforeWizardTabChange = function (next, current) {
            if (!self.required || self._decided()) return true;
            // `current` is the id of the step's nav entry, "<step id>_link"; only leaving
            // our own step needs a decision ("wizard_plugin_tracking" is the bundled one)
            if (current !== "wizard_plugin_" + PLUGIN + "_link") return true;
            self._askForDecision();
            return false;
        };

        self.onBeforeWizardFinish = function () {
            if (!self.required || self._decided()) return true;
            self._askForDecision();
            return false;
        };

        self.onAfterWizardFinish = function () {
            self.shown = false;
        };
    }

    OCTOPRINT_VIEWMODELS.push({
        construct: TrackingQueuedWizardViewModel,
        dependencies: ["settingsViewModel"],
        elements: [STEP]
    });
});
