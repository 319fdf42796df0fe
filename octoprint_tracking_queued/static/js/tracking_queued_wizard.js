/*
 * Anonymous Usage Tracking (Queued): the first-run wizard step, where the user enables or
 * disables tracking.
 */
$(function () {
    var PLUGIN = TrackingQueuedUi.PLUGIN;
    var notifyError = TrackingQueuedUi.notifyError;

    function TrackingQueuedWizardViewModel(parameters) {
        var self = this;
        self.settingsViewModel = parameters[0];

        self.decision = ko.observable(undefined); // saved decision: true, false or undefined
        self.pending = ko.observable(undefined); // the decision being saved
        self.busy = ko.observable(false);
        self.bundledEnabled = ko.observable(false);
        self.bundledTurnedOff = ko.observable(false);
        self.required = false;

        self.onWizardDetails = function (response) {
            var ours = (response && response[PLUGIN]) || {};
            self.required = !!ours.required;
            self.bundledEnabled(!!(ours.details && ours.details.bundled_enabled));
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
    }

    OCTOPRINT_VIEWMODELS.push({
        construct: TrackingQueuedWizardViewModel,
        dependencies: ["settingsViewModel"],
        elements: ["#wizard_plugin_tracking_queued"]
    });
});
