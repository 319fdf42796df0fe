(function (global, factory) {
    if (typeof define === "function" && define.amd) {
        define(["OctoPrintClient"], factory);
    } else {
        factory(global.OctoPrintClient);
    }
})(this, function (OctoPrintClient) {
    var PLUGIN = "tracking_queued";

    var TrackingQueuedClient = function (base) {
        this.base = base;
    };

    TrackingQueuedClient.prototype.status = function (opts) {
        return this.base.get(this.base.getSimpleApiUrl(PLUGIN), opts);
    };

    TrackingQueuedClient.prototype.records = function (scope, offset, limit, opts) {
        var url = this.base.getSimpleApiUrl(PLUGIN);
        return this.base.get(
            url + "?" + $.param({records: scope, offset: offset || 0, limit: limit || 20}),
            opts
        );
    };

    // A page by key, as fast at the end of a long queue as at its start: `keys` is {} (the
    // first page), {after: rowid}, {before: rowid} or {last: true}.
    TrackingQueuedClient.prototype.recordsPage = function (scope, keys, limit, opts) {
        var url = this.base.getSimpleApiUrl(PLUGIN);
        var query = _.extend({records: scope, limit: limit || 20}, keys || {});
        if (query.last) query.last = 1;
        return this.base.get(url + "?" + $.param(query), opts);
    };

    TrackingQueuedClient.prototype.track = function (event, payload, opts) {
        return this.base.simpleApiCommand(PLUGIN, "track", {event: event, payload: payload}, opts);
    };

    TrackingQueuedClient.prototype.flush = function (opts) {
        return this.base.simpleApiCommand(PLUGIN, "flush", {}, opts);
    };

    TrackingQueuedClient.prototype.retryFailed = function (opts) {
        return this.base.simpleApiCommand(PLUGIN, "retry_failed", {}, opts);
    };

    // One destination's: "tracking" (the public server) or "collector" (a farm's own).
    TrackingQueuedClient.prototype.flushDestination = function (dest, opts) {
        return this.base.simpleApiCommand(PLUGIN, "flush", {dest: dest}, opts);
    };

    TrackingQueuedClient.prototype.retryFailedDestination = function (dest, opts) {
        return this.base.simpleApiCommand(PLUGIN, "retry_failed", {dest: dest}, opts);
    };

    TrackingQueuedClient.prototype.clearDestination = function (scope, dest, opts) {
        return this.base.simpleApiCommand(PLUGIN, "clear", {scope: scope, dest: dest}, opts);
    };

    TrackingQueuedClient.prototype.clear = function (scope, opts) {
        return this.base.simpleApiCommand(PLUGIN, "clear", {scope: scope}, opts);
    };

    OctoPrintClient.registerPluginComponent(PLUGIN, TrackingQueuedClient);
    return TrackingQueuedClient;
});
