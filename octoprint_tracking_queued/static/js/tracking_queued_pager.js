/*
 * Anonymous Usage Tracking (Queued): the queue inspector's pager, without Knockout or jQuery.
 *
 * It pages by key (rowid), so the last page of a long queue costs what the first does. The
 * page asked for is `anchor`: {} the first, {after: rowid}, {before: rowid}, {last: true}.
 * Its position in the list is known at either end; in between it is counted from the pages
 * walked, which records sent or dropped meanwhile make approximate.
 *
 * The settings view model asks `request()` for a ticket, fetches that page, hands the answer
 * to `receive()` and copies the fields below into its observables. Plain JS so that Node's
 * test runner checks it (tests/js); in the browser it is TrackingQueuedUi.Pager.
 */
(function (factory) {
    var Pager = factory();
    if (typeof module === "object" && module && module.exports) module.exports = Pager;
    if (typeof window !== "undefined") {
        window.TrackingQueuedUi = window.TrackingQueuedUi || {};
        window.TrackingQueuedUi.Pager = Pager;
    }
})(function () {
    // what receive() did with an answer
    var SHOWN = "shown"; // placed: the fields below describe the new page
    var AGAIN = "again"; // the key was past an end: `anchor` now asks for that end
    var STALE = "stale"; // a newer request is under way: ignore this answer

    function isFirst(anchor) {
        return !anchor.last && anchor.after === undefined && anchor.before === undefined;
    }

    function Pager(pageSize) {
        this.pageSize = pageSize;
        this.anchor = {}; // the page the next request asks for
        // the position counted for the anchor's page when it was asked for, and the total then
        this.basis = {position: 0, exact: true, total: 0};
        this.seq = 0;
        // the page shown
        this.position = 0; // of its first row, from 0
        this.exact = true;
        this.atStart = true;
        this.atEnd = true;
        this.total = 0;
        this.rowids = [];
    }

    // What to fetch: {seq, anchor}; give it back to receive() with the answer.
    Pager.prototype.request = function () {
        this.seq += 1;
        return {seq: this.seq, anchor: this.anchor};
    };

    // The answer to a request: the rowids of its records, in order, and the scope's total.
    Pager.prototype.receive = function (ticket, rowids, total) {
        if (ticket.seq !== this.seq) return STALE;
        var anchor = ticket.anchor;
        var count = rowids.length;
        var keyed = anchor.after !== undefined || anchor.before !== undefined;
        var short = count === 0 || (anchor.before !== undefined && count < this.pageSize);
        if (keyed && short && total > count) {
            // nothing (or, going back, less than a page) beyond the key: that end
            this.anchor = anchor.after !== undefined ? {last: true} : {};
            return AGAIN;
        }
        if (total === 0) this.anchor = anchor = {}; // emptied: new records start a list
        this._place(anchor, count, total);
        this.total = total;
        this.rowids = rowids.slice();
        return SHOWN;
    };

    // Where the page is in the list: exact at either end, else counted from the walk.
    Pager.prototype._place = function (anchor, count, total) {
        var position, exact;
        if (anchor.last) {
            position = total - count;
            exact = true;
        } else if (isFirst(anchor)) {
            position = 0;
            exact = true;
        } else if (anchor.after !== undefined && count < this.pageSize) {
            position = total - count; // a short page after a key ends the list
            exact = true;
        } else {
            position = this.basis.position;
            exact = this.basis.exact && total === this.basis.total;
            if (position < 0 || position > total - count) {
                position = Math.min(Math.max(position, 0), Math.max(total - count, 0));
                exact = false;
            }
        }
        this.position = position;
        this.exact = exact;
        this.atStart = isFirst(anchor) || (exact && position === 0);
        this.atEnd = !!anchor.last || (exact && position + count >= total);
    };

    Pager.prototype._go = function (anchor, position) {
        this.anchor = anchor;
        this.basis = {position: position || 0, exact: this.exact, total: this.total};
    };

    // Another list (scope): its first page; the rows shown are no longer walked from.
    Pager.prototype.restart = function () {
        this.rowids = [];
        this._go({});
    };

    // The moves: each aims `anchor` and returns true, or returns false when there is nowhere
    // to go (then nothing needs fetching).
    Pager.prototype.first = function () {
        if (this.atStart) return false;
        this._go({});
        return true;
    };

    Pager.prototype.prev = function () {
        if (this.atStart || !this.rowids.length) return false;
        this._go({before: this.rowids[0]}, this.position - this.pageSize);
        return true;
    };

    Pager.prototype.next = function () {
        if (this.atEnd || !this.rowids.length) return false;
        this._go({after: this.rowids[this.rowids.length - 1]}, this.position + this.rowids.length);
        return true;
    };

    Pager.prototype.last = function () {
        if (this.atEnd) return false;
        this._go({last: true});
        return true;
    };

    Pager.SHOWN = SHOWN;
    Pager.AGAIN = AGAIN;
    Pager.STALE = STALE;
    return Pager;
});
