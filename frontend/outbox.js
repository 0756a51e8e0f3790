// The outbox: what we wrote that no region has shown stored yet (new messages, and edits and
// deletes of our own, each under its message's id), kept in localStorage so that a reload loses
// nothing, with when each may be sent again.

const RATE_LIMIT_FLOOR_MS = 200; // rate_limited without a usable retryAfterMs
// An edit or delete answered not_found by a region the message has not reached yet (replication
// takes about a second): sent again this often, this many times, before it is given up.
const NOT_FOUND_RETRY_MS = 1500;
const NOT_FOUND_TRIES = 8;

export class Outbox {
  /** `storageKey`: by name, not user id, so that a new sign-in (after a 401) keeps the outbox. */
  constructor(storageKey, onCount) {
    this.storageKey = storageKey;
    this.onCount = onCount;
    this.items = new Map(); // id → {id, action, text, userId, sentAt, wait, sending, notFound}
  }

  /** What a previous page left: [{id, action, text, userId}]. */
  saved() {
    return JSON.parse(localStorage.getItem(this.storageKey) ?? "[]");
  }

  /** A later item of one id replaces an earlier one (an edit or a delete of a stored message). */
  put(id, action, text, userId) {
    this.items.set(id, { id, action, text, userId, sentAt: 0, wait: 0, sending: false, notFound: 0 });
    this.save();
  }

  get(id) {
    return this.items.get(id);
  }

  values() {
    return this.items.values();
  }

  /** Done with `id`: the item it held, if any. */
  take(id) {
    const item = this.items.get(id);
    if (item) {
      this.items.delete(id);
      this.save();
    }
    return item;
  }

  save() {
    const items = [...this.items.values()].map(({ id, action, text, userId }) => ({ id, action, text, userId }));
    localStorage.setItem(this.storageKey, JSON.stringify(items));
    this.onCount(items.length);
  }

  /** Send `item` again in `afterMs` (not before). */
  later(item, afterMs) {
    Object.assign(item, { sentAt: Date.now(), wait: afterMs });
  }

  /** Everything may go again now (sends on a lost socket may be lost, acks cannot come). */
  resendAll() {
    for (const item of this.items.values()) item.sentAt = 0;
  }

  /** Over the per-user rate: nothing was stored; resend the same id when the server says. */
  rateLimited(item, retryAfterMs) {
    this.later(item, Math.max(RATE_LIMIT_FLOOR_MS, retryAfterMs || 0) * (1 + Math.random() * 0.2));
  }

  /** A change whose message the answering region did not have: true once it is time to give up. */
  notFound(item) {
    item.notFound += 1;
    this.later(item, NOT_FOUND_RETRY_MS);
    return item.notFound >= NOT_FOUND_TRIES;
  }
}
