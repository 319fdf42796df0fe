/*
 * Anonymous Usage Tracking (Queued): what the view models in tracking_queued_wizard.js,
 * tracking_queued_settings.js and tracking_queued_webui.js share. get_assets() lists this
 * file first. It is put on window because OctoPrint serves a plugin's files bundled into one
 * function, or one by one when bundling is off, and a name on window works in both. The plain
 * modules (tracking_queued_pager.js, tracking_queued_format.js) add themselves to the same
 * object, whichever order they load in.
 */
(function () {
    var PLUGIN = "tracking_queued";

    function client() {
        return OctoPrint.plugins[PLUGIN];
    }

    // The API answers errors as {"error": "..."}; fall back to the HTTP status text.
    function errorText(jqXHR) {
        if (jqXHR && jqXHR.responseJSON && jqXHR.responseJSON.error) {
            return jqXHR.responseJSON.error;
        }
        return (jqXHR && jqXHR.statusText) || gettext("Unknown error");
    }

    function notifyError(title, jqXHR) {
        new PNotify({title: title, text: _.escape(errorText(jqXHR)), type: "error", hide: false});
    }

    // What tracking_queued_format.js needs from OctoPrint's page; Node's tests give their own.
    function env() {
        return {
            gettext: gettext,
            ngettext: ngettext,
            sprintf: function () {
                return _.sprintf.apply(_, arguments);
            },
            localTime: function (unix) {
                return formatDate(unix, {seconds: true, placeholder: "-"});
            },
            clockTime: function (unix) {
                return moment.unix(unix).format("HH:mm:ss");
            },
            fromNow: function (unix) {
                return moment.unix(unix).fromNow();
            }
        };
    }

    window.TrackingQueuedUi = _.extend(window.TrackingQueuedUi || {}, {
        PLUGIN: PLUGIN,
        client: client,
        notifyError: notifyError,
        env: env
    });
})();
