// The settings tab's pager (static/js/tracking_queued_pager.js): which page it asks for, and
// where it says the page shown is. Run: node --test tests/js
"use strict";

const test = require("node:test");
const assert = require("node:assert/strict");
const Pager = require("../../octoprint_tracking_queued/static/js/tracking_queued_pager.js");

const PAGE = 3;

// rowids of a list of `total` records, from 1
function rows(from, count) {
    return Array.from({length: count}, (_, i) => from + i);
}

// the page fields the view model copies into its observables
function shown(pager) {
    const {position, exact, atStart, atEnd, total} = pager;
    return {position, exact, atStart, atEnd, total, rowids: pager.rowids};
}

// A pager showing page `rowids` of `total`, reached by walking there from the first page.
function walkedTo(total, pages) {
    const pager = new Pager(PAGE);
    assert.equal(pager.receive(pager.request(), rows(1, PAGE), total), Pager.SHOWN);
    for (let i = 1; i < pages; i++) {
        assert.equal(pager.next(), true);
        assert.equal(pager.receive(pager.request(), rows(1 + i * PAGE, PAGE), total), Pager.SHOWN);
    }
    return pager;
}

test("the first request asks for the first page, and an empty list is all start and end", () => {
    const pager = new Pager(PAGE);
    const ticket = pager.request();
    assert.deepEqual(ticket.anchor, {});
    assert.equal(pager.receive(ticket, [], 0), Pager.SHOWN);
    assert.deepEqual(shown(pager), {position: 0, exact: true, atStart: true, atEnd: true, total: 0, rowids: []});
    assert.equal(pager.first(), false);
    assert.equal(pager.prev(), false);
    assert.equal(pager.next(), false);
    assert.equal(pager.last(), false);
});

test("a first page of a longer list is at its start and not at its end", () => {
    const pager = walkedTo(10, 1);
    assert.deepEqual(shown(pager), {position: 0, exact: true, atStart: true, atEnd: false, total: 10, rowids: [1, 2, 3]});
    assert.equal(pager.first(), false, "nothing before the first page");
    assert.equal(pager.prev(), false);
});

test("next asks after the last row shown and counts the position exactly", () => {
    const pager = walkedTo(10, 1);
    assert.equal(pager.next(), true);
    assert.deepEqual(pager.anchor, {after: 3});
    assert.deepEqual(pager.basis, {position: 3, exact: true, total: 10});
    pager.receive(pager.request(), [4, 5, 6], 10);
    assert.deepEqual(shown(pager), {position: 3, exact: true, atStart: false, atEnd: false, total: 10, rowids: [4, 5, 6]});
});

test("a short page after a key ends the list, whatever was counted", () => {
    const pager = walkedTo(10, 3); // rows 7-9 at position 6
    assert.equal(pager.next(), true);
    pager.receive(pager.request(), [10], 10);
    assert.deepEqual(shown(pager), {position: 9, exact: true, atStart: false, atEnd: true, total: 10, rowids: [10]});
    assert.equal(pager.next(), false, "nothing after the end");
    assert.equal(pager.last(), false);
});

test("prev from a short last page goes back a whole page, not the rows shown", () => {
    const pager = walkedTo(10, 3);
    pager.next();
    pager.receive(pager.request(), [10], 10); // position 9
    assert.equal(pager.prev(), true);
    assert.deepEqual(pager.basis, {position: 6, exact: true, total: 10});
    pager.receive(pager.request(), [7, 8, 9], 10);
    assert.deepEqual([pager.position, pager.exact], [6, true]);
});

test("a full page that reaches the total is the end", () => {
    const pager = walkedTo(9, 3);
    assert.deepEqual(shown(pager), {position: 6, exact: true, atStart: false, atEnd: true, total: 9, rowids: [7, 8, 9]});
});

test("prev asks before the first row shown, a page back", () => {
    const pager = walkedTo(10, 3);
    assert.equal(pager.prev(), true);
    assert.deepEqual(pager.anchor, {before: 7});
    assert.deepEqual(pager.basis, {position: 3, exact: true, total: 10});
    pager.receive(pager.request(), [4, 5, 6], 10);
    assert.deepEqual(shown(pager), {position: 3, exact: true, atStart: false, atEnd: false, total: 10, rowids: [4, 5, 6]});
});

test("going back to position 0 by key is the start", () => {
    const pager = walkedTo(10, 2);
    pager.prev();
    pager.receive(pager.request(), [1, 2, 3], 10);
    assert.equal(pager.position, 0);
    assert.equal(pager.atStart, true);
});

test("last asks for the last page, whose position is exact", () => {
    const pager = walkedTo(10, 1);
    assert.equal(pager.last(), true);
    assert.deepEqual(pager.anchor, {last: true});
    pager.receive(pager.request(), [8, 9, 10], 10);
    assert.deepEqual(shown(pager), {position: 7, exact: true, atStart: false, atEnd: true, total: 10, rowids: [8, 9, 10]});
});

test("first from the last page asks for the first page again", () => {
    const pager = walkedTo(10, 1);
    pager.last();
    pager.receive(pager.request(), [8, 9, 10], 10);
    assert.equal(pager.first(), true);
    assert.deepEqual(pager.anchor, {});
});

test("a total that changed during the walk makes the position approximate", () => {
    const pager = walkedTo(10, 1);
    pager.next();
    pager.receive(pager.request(), [5, 6, 7], 11); // a record arrived meanwhile
    assert.deepEqual(shown(pager), {position: 3, exact: false, atStart: false, atEnd: false, total: 11, rowids: [5, 6, 7]});
    assert.equal(pager.next(), true);
    assert.deepEqual(pager.basis, {position: 6, exact: false, total: 11}, "a guess stays a guess");
    pager.receive(pager.request(), [8, 9, 10], 11);
    assert.equal(pager.exact, false);
    assert.equal(pager.atEnd, false);
});

test("a counted position that reaches the total is not the end: only an exact one is", () => {
    const pager = walkedTo(10, 3); // rows 7-9 at position 6
    pager.next();
    pager.receive(pager.request(), [10, 11, 12], 12); // two arrived meanwhile
    assert.deepEqual([pager.position, pager.exact], [9, false]);
    assert.equal(pager.atEnd, false, "more may follow: the position is a guess");
    assert.equal(pager.next(), true);
});

test("a counted position beyond what the list now holds is pulled in, and marked approximate", () => {
    const pager = walkedTo(12, 3); // rows 7-9 at position 6
    pager.next();
    pager.receive(pager.request(), [10, 11, 12], 5); // most were sent meanwhile
    assert.equal(pager.position, 2);
    assert.equal(pager.exact, false);
});

test("a counted position outside the list is approximate even when the total is the same", () => {
    const pager = walkedTo(4, 1);
    pager.last();
    pager.receive(pager.request(), [2, 3, 4], 4); // position 1, exact
    pager.prev();
    assert.deepEqual(pager.basis, {position: -2, exact: true, total: 4});
    // a whole page before the key, the total unchanged: the list changed under the walk
    pager.receive(pager.request(), [-1, 0, 1], 4);
    assert.deepEqual([pager.position, pager.exact], [0, false]);
});

test("a counted position below 0 is pulled up to 0, approximate", () => {
    const pager = walkedTo(10, 1);
    pager.next();
    pager.receive(pager.request(), [4, 5, 6], 4); // six sent meanwhile: counted 3, pulled to 1
    assert.deepEqual([pager.position, pager.exact], [1, false]);
    pager.prev();
    assert.equal(pager.basis.position, -2, "a page back from 1");
    pager.receive(pager.request(), [1, 2, 3], 4);
    assert.deepEqual([pager.position, pager.exact], [0, false]);
    assert.equal(pager.atStart, false, "not known to be the start");
});

test("nothing after the key while records remain: it asks for the last page instead", () => {
    const pager = walkedTo(10, 1);
    pager.next();
    assert.equal(pager.receive(pager.request(), [], 4), Pager.AGAIN);
    assert.deepEqual(pager.anchor, {last: true});
    assert.deepEqual(shown(pager).rowids, [1, 2, 3], "the page shown stays until the new one arrives");
    pager.receive(pager.request(), [2, 3, 4], 4);
    assert.equal(pager.position, 1);
    assert.equal(pager.atEnd, true);
});

test("less than a page before the key while more remain: it asks for the first page instead", () => {
    const pager = walkedTo(10, 2);
    pager.prev();
    assert.equal(pager.receive(pager.request(), [3], 8), Pager.AGAIN);
    assert.deepEqual(pager.anchor, {});
});

test("a short page before the key is shown when it is the whole list", () => {
    const pager = walkedTo(10, 2);
    pager.prev();
    assert.equal(pager.receive(pager.request(), [3], 1), Pager.SHOWN);
});

test("an emptied list starts over at the first page", () => {
    const pager = walkedTo(10, 2);
    pager.next();
    assert.equal(pager.receive(pager.request(), [], 0), Pager.SHOWN);
    assert.deepEqual(pager.anchor, {}, "new records start a list, not a page after a gone key");
    assert.deepEqual(shown(pager), {position: 0, exact: true, atStart: true, atEnd: true, total: 0, rowids: []});
});

test("an answer to an older request is ignored", () => {
    const pager = walkedTo(10, 1);
    const old = pager.request();
    pager.next();
    const latest = pager.request();
    assert.equal(pager.receive(old, [1, 2, 3], 10), Pager.STALE);
    assert.deepEqual(pager.rowids, [1, 2, 3]);
    assert.equal(pager.receive(latest, [4, 5, 6], 10), Pager.SHOWN);
    assert.deepEqual(pager.rowids, [4, 5, 6]);
});

test("restart (another list) asks for its first page and cannot walk from the rows it showed", () => {
    const pager = walkedTo(10, 2);
    pager.restart();
    assert.deepEqual(pager.anchor, {});
    assert.equal(pager.next(), false, "no row to walk from until the new list arrives");
    assert.equal(pager.prev(), false);
});

test("the pager keeps a copy of the rowids it was given", () => {
    const pager = new Pager(PAGE);
    const given = [1, 2, 3];
    pager.receive(pager.request(), given, 5);
    given.length = 0;
    assert.equal(pager.next(), true);
    assert.deepEqual(pager.anchor, {after: 3});
});
