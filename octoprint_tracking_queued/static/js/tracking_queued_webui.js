/*
 * Anonymous Usage Tracking (Queued): the web interface load event, once per page load.
 */
$(function () {
    var client = TrackingQueuedUi.client;

    function TrackingQueuedLoadViewModel(parameters) {
        var self = this;
        self.loginState = parameters[0];
        self.tracked = false;

        // The track command needs a logged-in user; once per page load is the event.
        self._track = function () {
            if (self.tracked || !self.loginState.isUser()) return;
            var browser = OctoPrint.coreui.browser || {};
            var payload = {
                browser_name: browser.browser_name,
                browser_version: browser.browser_version,
                os_name: browser.os_name,
                os_version: browser.os_version
            };
            if (!_.every(_.values(payload))) return;
            self.tracked = true;
            client().track("webui_load", payload);
        };

        self.onStartupComplete = self._track;
        self.onUserLoggedIn = self._track;
    }

    OCTOPRINT_VIEWMODELS.push({
        construct: TrackingQueuedLoadViewModel,
        dependencies: ["loginStateViewModel"],
        elements: []
    });
});
