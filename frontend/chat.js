// A room's chat: the outbox, the de-duplicated message list and the catch-up from history, over
// one Connection (connection.js) judged by the region's service (judge.js).
//
// Exactly-once display, whatever fails:
// - every message gets its ULID once, when it is written, and keeps it on every retry, over the
//   WebSocket or HTTP, in any region: the server stores one item per (id, author's user id);
// - the outbox (kept in localStorage, so a reload does not lose it) resends until an ack, a stored
//   message or a live/history copy of that id by one of our user ids proves the message is stored;
//   over the WebSocket the connection's judge says when to send again (once, then it leaves the
//   region and everything unacknowledged goes again on the next connection); over a rate limit it
//   waits as long as the server says, and resends;
// - the list holds one entry per (id, author's user id): live frames (one per region's stream),
//   history pages and HTTP replies that repeat one are dropped. Another author's message with the
//   same id is another message.

import { ApiError, fetchHistory, httpBases, postMessage } from "./api.js";
import { Connection } from "./connection.js";
import { ui } from "./ui.js";
import { lowestUlid, ulid, ulidTime } from "./ulid.js";

// Over the WebSocket the judge decides when a send is sent again; this only catches a send it
// somehow lost track of.
const UNJUDGED_RESEND_MS = 15000;
const RETRY_AFTER_ERROR_MS = 1000; // after a failed HTTP round, or a frame the stage's throttle dropped
const HISTORY_WINDOW_MS = 60 * 60 * 1000; // on join: the last hour
// The server accepts an id up to 5 minutes from its clock, so a message stored after we last heard
// from the room can carry an id up to 5 minutes older than the newest one we saw: catch-ups read
// from there (and the list drops the copies).
const ID_WINDOW_MS = 5 * 60 * 1000;
const OFFLINE_POLL_MS = 3000; // with no WebSocket, read history this often
const REGION_FAILURES = new Set(["unavailable", "internal_error"]); // the judge's to count
const RATE_LIMIT_FLOOR_MS = 200; // rate_limited without a usable retryAfterMs
const MAX_TEXT_CHARS = 4000;

/** One list entry per message: the same id from two authors is two messages. */
function keyOf(id, authorId) {
  return `${id}|${authorId}`;
}

export class Chat {
  constructor(config, room, session) {
    this.config = config;
    this.room = room;
    this.session = session;
    this.messages = new Map(); // keyOf(id, authorId) → what the list shows for it
    this.outbox = new Map(); // id → {id, text, sentAt, wait, sending}
    this.unsent = new Map(); // id → the list key of our own message not yet seen stored
    this.lastSeenId = null; // the highest id the server has shown us
    this.offline = false; // no WebSocket could be opened: send over HTTP, poll history
    this.lastPoll = 0;
    this.catchingUp = null;
    // By name, not user id: a new sign-in (after a 401) keeps the same outbox.
    this.outboxKey = `rc-outbox:${room}:${session.name}`;
    this.connection = new Connection(config, () => ({ room, token: session.token }), {
      onState: (state, detail) => {
        ui.setConnection(state, detail);
        if (state !== "connected") ui.setRegion(null);
      },
      onLog: (text) => ui.log(text),
      onOpen: (link) => this.#connected(link),
      onFrame: (frame, link) => this.#frame(frame, link),
      onUnreachable: () => this.#unreachable(),
      onResend: (id, afterMs) => this.#sendAgain(id, afterMs),
      onThrottled: (id) => this.#sendAgain(id, RETRY_AFTER_ERROR_MS * (1 + Math.random())),
      newestHeld: () => this.lastSeenId ?? "",
    });
  }

  start() {
    for (const { id, text, userId } of JSON.parse(localStorage.getItem(this.outboxKey) ?? "[]")) {
      this.#queue(id, text, userId ?? this.session.userId);
    }
    this.catchUp();
    this.connection.start();
    setInterval(() => this.#tick(), 500);
  }

  send(text) {
    const trimmed = text.trim();
    if (!trimmed) return "";
    if ([...trimmed].length > MAX_TEXT_CHARS) return `A message holds at most ${MAX_TEXT_CHARS} characters.`;
    this.#queue(ulid(), trimmed, this.session.userId); // the id is made here, once, and kept across every retry
    this.#pump();
    return "";
  }

  /** `userId`: the user the message is sent as. The server's idempotency is per (id, user): a
   * message first sent under an earlier session of ours is resent under the current one only once
   * history shows it was not stored (#adopt). */
  #queue(id, text, userId) {
    this.outbox.set(id, { id, text, userId, sentAt: 0, wait: 0, sending: false });
    this.#saveOutbox();
    const key = keyOf(id, userId);
    this.unsent.set(id, key);
    const { tag, kind } = this.session.current?.user ?? {}; // absent from a session kept from before tags
    this.#show({ key, id, authorId: userId, author: this.session.name, authorTag: tag, authorKind: kind, text, time: ulidTime(id), state: "pending" });
  }

  /** After a history read as `userId`: what it did not show stored is ours to send as `userId`. */
  #adopt(userId) {
    if (userId !== this.session.userId) return;
    for (const item of this.outbox.values()) item.userId = userId;
    this.#saveOutbox();
  }

  #saveOutbox() {
    const items = [...this.outbox.values()].map(({ id, text, userId }) => ({ id, text, userId }));
    localStorage.setItem(this.outboxKey, JSON.stringify(items));
    ui.setOutboxCount(items.length);
  }

  #settle(id) {
    if (this.outbox.delete(id)) this.#saveOutbox();
  }

  #show(view) {
    this.messages.set(view.key, view);
    ui.renderMessage(view, this.session.isMine(view.authorId));
  }

  /** A stored message from any source; false when the list already shows it delivered. */
  receive(message, delivered) {
    if (typeof message?.id !== "string" || typeof message.authorId !== "string") return false;
    if (!this.lastSeenId || message.id > this.lastSeenId) this.lastSeenId = message.id;
    const key = keyOf(message.id, message.authorId);
    if (this.session.isMine(message.authorId)) {
      this.#settle(message.id); // stored: nothing left to retry, even if its ack was lost
      this.connection.delivered(message.id);
      // Its pending entry may carry the user id we had before signing in again.
      const pending = this.unsent.get(message.id);
      this.unsent.delete(message.id);
      if (pending && pending !== key) {
        this.messages.delete(pending);
        ui.removeMessage(pending);
      }
    }
    if (this.messages.get(key)?.state === "delivered") return false;
    this.#show({
      key,
      id: message.id,
      authorId: message.authorId,
      author: message.author,
      authorTag: message.authorTag,
      authorKind: message.authorKind,
      text: message.text,
      time: Date.parse(message.sentAt) || ulidTime(message.id),
      acceptedRegion: message.acceptedRegion,
      transport: message.transport,
      delivered,
      state: "delivered",
    });
    return true;
  }

  #fail(id, problem) {
    this.#settle(id);
    const view = this.messages.get(this.unsent.get(id));
    if (view && view.state !== "delivered") this.#show({ ...view, state: "failed", problem });
  }

  /** Over the per-user rate: nothing was stored; resend the same id when the server says. */
  #rateLimited(item, retryAfterMs) {
    const wait = Math.max(RATE_LIMIT_FLOOR_MS, retryAfterMs || 0) * (1 + Math.random() * 0.2);
    Object.assign(item, { sentAt: Date.now(), wait });
  }

  #frame(frame, link) {
    if (frame.type === "message") {
      if (link && frame.deliveredBy && frame.deliveredBy !== link.region) {
        link.region = frame.deliveredBy; // the push says where we really are
        ui.setRegion(link.region, link.via);
      }
      this.receive(frame.message, frame.deliveredBy);
    } else if (frame.type === "ack") {
      this.#settle(frame.id);
      const view = this.messages.get(this.unsent.get(frame.id));
      if (view && view.state !== "delivered") {
        this.#show({ ...view, state: "accepted", acceptedRegion: frame.acceptedRegion, transport: "websocket" });
      }
    } else if (frame.type === "error" && frame.id && this.outbox.has(frame.id)) {
      if (frame.code === "rate_limited") {
        this.#rateLimited(this.outbox.get(frame.id), frame.retryAfterMs);
      } else if (!REGION_FAILURES.has(frame.code)) {
        this.#fail(frame.id, `${frame.code}: ${frame.message}`);
      }
      // The region's failures are the judge's: it says when to send again, or leaves the region.
    }
  }

  /** The judge's word (or the stage's throttle): send this one again in `afterMs`. */
  #sendAgain(id, afterMs) {
    const item = this.outbox.get(id);
    if (!item) return; // stored meanwhile
    Object.assign(item, { sentAt: Date.now(), wait: afterMs });
    setTimeout(() => this.#pump(), afterMs);
  }

  #connected(link) {
    if (this.offline) ui.log("WebSocket open again: back from HTTP to WebSocket");
    this.offline = false;
    ui.setRegion(link.region, link.via);
    for (const item of this.outbox.values()) item.sentAt = 0; // sends on the old socket may be lost
    this.#pump();
    this.catchUp(link.httpUrl);
  }

  #unreachable() {
    if (!this.offline) {
      ui.log("no WebSocket can be opened: sending over HTTP until one can");
      for (const item of this.outbox.values()) item.sentAt = 0; // waiting for an ack that cannot come
    }
    this.offline = true;
    this.#pump();
    this.catchUp(); // also tells us soon if the region refused our session (401)
  }

  #tick() {
    this.#pump();
    if (this.offline && Date.now() - this.lastPoll > OFFLINE_POLL_MS) this.catchUp();
  }

  #pump() {
    const now = Date.now();
    for (const item of this.outbox.values()) {
      if (item.sending || now - item.sentAt < item.wait) continue;
      if (item.userId !== this.session.userId) continue; // first: was it stored as our earlier self?
      if (this.connection.isOpen) {
        this.connection.send({ action: "sendMessage", room: this.room, id: item.id, text: item.text });
        Object.assign(item, { sentAt: now, wait: UNJUDGED_RESEND_MS });
      } else if (this.offline) {
        this.#postOverHttp(item);
      }
    }
  }

  async #postOverHttp(item) {
    item.sending = true;
    try {
      for (const base of httpBases(this.config)) {
        const token = this.session.token;
        try {
          const { message, region } = await postMessage(base, this.room, item, token);
          this.receive(message, `HTTP reply (${region ?? message.acceptedRegion})`);
          return;
        } catch (error) {
          if (error instanceof ApiError && error.status === 401) {
            await this.session.refused(token); // history, then the next round, with the new session
            this.catchUp();
            break;
          }
          if (error instanceof ApiError && error.status === 429) {
            this.#rateLimited(item, error.retryAfterMs); // per user: another region is no way round
            return;
          }
          if (error instanceof ApiError && !error.retriable) {
            this.#fail(item.id, `${error.code}: ${error.message}`);
            return;
          }
        }
      }
      Object.assign(item, { sentAt: Date.now(), wait: RETRY_AFTER_ERROR_MS }); // nobody answered
    } finally {
      item.sending = false;
    }
  }

  /** Read what we missed (everything since the last hour on join), from the first region that answers. */
  catchUp(preferred) {
    this.lastPoll = Date.now();
    // One read at a time; a request during a read runs once after it (it may have a newer `after`).
    if (this.catchingUp) {
      this.catchUpAgain = preferred ?? true;
      return this.catchingUp;
    }
    this.catchingUp = this.#readHistory(preferred).finally(() => {
      this.catchingUp = null;
      const again = this.catchUpAgain;
      this.catchUpAgain = null;
      if (again) this.catchUp(typeof again === "string" ? again : undefined);
    });
    return this.catchingUp;
  }

  async #readHistory(preferred) {
    const since = this.lastSeenId
      ? Math.min(ulidTime(this.lastSeenId), Date.now()) - ID_WINDOW_MS
      : Date.now() - HISTORY_WINDOW_MS;
    const firstRead = !this.historyRead;
    const userId = this.session.userId;
    for (const base of httpBases(this.config, preferred)) {
      const token = this.session.token;
      try {
        const { messages, region } = await fetchHistory(base, this.room, lowestUlid(since), token);
        const fresh = messages.filter((message) => this.receive(message, `history (${region})`)).length;
        // A message written in the last minutes makes the room active: the heartbeat is short.
        if (messages.length) this.connection.noteActivity(Math.min(ulidTime(messages.at(-1).id), Date.now()));
        this.#adopt(userId);
        this.historyRead = true;
        if (firstRead) ui.log(`history: ${messages.length} message(s) from ${region}`);
        else if (fresh) ui.log(`caught up ${fresh} missed message(s) from ${region}`);
        return;
      } catch (error) {
        if (error instanceof ApiError && error.status === 401) {
          await this.session.refused(token);
          this.catchUpAgain = preferred ?? true; // with the new session
          return;
        }
        // the next region may answer
      }
    }
    ui.log("history: no region answered; will try again");
  }

  setLocation(location) {
    this.connection.restart(`simulated location is now ${location}`);
  }
}
