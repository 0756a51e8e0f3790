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
// - edits and deletes of our own messages go through the same outbox, under the message's id, and
//   the list keeps the greatest state of each message it is given (edits.js): a deleted one is final.
//
// Presence (presence.js): the members are read (GET presence) each time a socket opens (not on a
// renewal: the old socket kept them current until the new one opened), then kept
// by the `presence` frames; `typing` frames show who is typing, never this browser's own users.

import { ApiError, changeMessage, fetchPresence, httpBases, postMessage } from "./api.js";
import { Connection } from "./connection.js";
import { outranks, settles } from "./edits.js";
import { History } from "./history.js";
import { Outbox } from "./outbox.js";
import { Roster, Typists, typingDue, typingText } from "./presence.js";
import { ui } from "./ui.js";
import { ulid, ulidTime } from "./ulid.js";

// Over the WebSocket the judge decides when a send is sent again; this only catches a send it
// somehow lost track of.
const UNJUDGED_RESEND_MS = 15000;
const RETRY_AFTER_ERROR_MS = 1000; // after a failed HTTP round, or a frame the stage's throttle dropped
const OFFLINE_POLL_MS = 3000; // with no WebSocket, read history this often
const REGION_FAILURES = new Set(["unavailable", "internal_error"]); // the judge's to count
const MAX_TEXT_CHARS = 4000;
const CHANGE_NOTES = { editMessage: "saving edit…", deleteMessage: "deleting…" };

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
    this.outbox = new Outbox(`rc-outbox:${room}:${session.name}`, (count) => ui.setOutboxCount(count));
    this.unsent = new Map(); // id → the list key of our own message not yet seen stored
    this.lastSeenId = null; // the highest id the server has shown us
    this.offline = false; // no WebSocket could be opened: send over HTTP, poll history
    this.roster = new Roster(); // who is in the room
    this.presenceReads = 0; // GET presence reads started: only the latest one's answer is used
    this.typists = new Typists(); // who else is typing
    this.typingSentAt = null; // when our last typing frame went
    this.history = new History(config, room, session, {
      since: () => this.lastSeenId,
      read: (messages, region, userId) => this.#read(messages, region, userId),
    });
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
    for (const { id, text, userId, action } of this.outbox.saved()) {
      // A change only our current user id can make (a guest signed in again is another user).
      if (action && action !== "sendMessage") {
        if (userId === this.session.userId) this.#queueChange(id, action, text, userId);
      } else {
        this.#queue(id, text, userId ?? this.session.userId);
      }
    }
    this.catchUp();
    this.connection.start();
    setInterval(() => this.#tick(), 500);
  }

  /** The user is typing: tell the room, at most once per TYPING_SEND_INTERVAL_MS and only over an
   * open socket. Fire and forget: never in the outbox, never acknowledged. */
  typing() {
    const now = Date.now();
    if (!typingDue(this.typingSentAt, now) || !this.connection.isOpen) return;
    if (this.connection.send({ action: "typing", room: this.room })) this.typingSentAt = now;
  }

  send(text) {
    const trimmed = text.trim();
    if (!trimmed) return "";
    if ([...trimmed].length > MAX_TEXT_CHARS) return `A message holds at most ${MAX_TEXT_CHARS} characters.`;
    this.#queue(ulid(), trimmed, this.session.userId); // the id is made here, once, and kept across every retry
    this.#pump();
    return "";
  }

  /** Edit (`text`) or delete (`text` null) our stored message `id`; a problem to show, or "". */
  change(id, text) {
    const view = this.messages.get(keyOf(id, this.session.userId));
    if (!view || view.state !== "delivered") return "Only a message that is stored can be changed.";
    if (view.deleted) return "This message was deleted.";
    if (text === null) {
      this.#queueChange(id, "deleteMessage", null, this.session.userId);
    } else {
      const trimmed = text.trim();
      if (!trimmed) return "A message cannot be empty: delete it instead.";
      if ([...trimmed].length > MAX_TEXT_CHARS) return `A message holds at most ${MAX_TEXT_CHARS} characters.`;
      if (trimmed === view.text) return "";
      this.#queueChange(id, "editMessage", trimmed, this.session.userId);
    }
    this.#pump();
    return "";
  }

  /** A later change of one message replaces an earlier one not yet stored (a delete, an edit). */
  #queueChange(id, action, text, userId) {
    this.outbox.put(id, action, text, userId);
    const view = this.messages.get(keyOf(id, userId));
    if (view) this.#show({ ...view, change: CHANGE_NOTES[action], problem: null });
  }

  /** `userId`: the user the message is sent as. The server's idempotency is per (id, user): a
   * message first sent under an earlier session of ours is resent under the current one only once
   * history shows it was not stored (#adopt). */
  #queue(id, text, userId) {
    this.outbox.put(id, "sendMessage", text, userId);
    const key = keyOf(id, userId);
    this.unsent.set(id, key);
    const { tag, kind } = this.session.current?.user ?? {}; // absent from a session kept from before tags
    this.#show({ key, id, authorId: userId, author: this.session.name, authorTag: tag, authorKind: kind, text, time: ulidTime(id), state: "pending" });
  }

  /** After a history read as `userId`: what it did not show stored is ours to send as `userId`. */
  #adopt(userId) {
    if (userId !== this.session.userId) return;
    for (const item of this.outbox.values()) if (item.action === "sendMessage") item.userId = userId;
    this.outbox.save();
  }

  #settle(id) {
    const item = this.outbox.take(id);
    const view = item && item.action !== "sendMessage" && this.messages.get(keyOf(id, item.userId));
    if (view) this.#show({ ...view, change: null });
  }

  #show(view) {
    this.messages.set(view.key, view);
    // Only our current user id can change a message (the server finds it by id and author).
    const changeable = view.authorId === this.session.userId && view.state === "delivered" && !view.deleted;
    ui.renderMessage(view, this.session.isMine(view.authorId), changeable);
  }

  /** A stored message from any source; false when the list already shows it delivered. */
  receive(message, delivered) {
    if (typeof message?.id !== "string" || typeof message.authorId !== "string") return false;
    if (!this.lastSeenId || message.id > this.lastSeenId) this.lastSeenId = message.id;
    const key = keyOf(message.id, message.authorId);
    const shown = this.messages.get(key);
    const stale = shown?.state === "delivered" && !outranks(message, shown); // an older state, or a copy
    if (this.session.isMine(message.authorId)) {
      // Any copy shows a send stored; only a state newer than the one shown can show a change.
      const item = this.outbox.get(message.id);
      if (!item || item.action === "sendMessage" || (!stale && settles(message, item))) {
        this.#settle(message.id); // stored: nothing left to retry, even if its ack was lost
        this.connection.delivered(message.id);
      }
      // Its pending entry may carry the user id we had before signing in again.
      const pending = this.unsent.get(message.id);
      this.unsent.delete(message.id);
      if (pending && pending !== key) {
        this.messages.delete(pending);
        ui.removeMessage(pending);
      }
    }
    if (stale) return false;
    const waiting = this.session.isMine(message.authorId) && this.outbox.get(message.id);
    this.#show({
      change: waiting ? (CHANGE_NOTES[waiting.action] ?? null) : null, // a change of ours still on its way
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
      version: message.version ?? 1,
      editedAt: message.editedAt ?? null,
      deleted: Boolean(message.deleted),
      delivered,
      state: "delivered",
    });
    return true;
  }

  #fail(id, problem) {
    const item = this.outbox.get(id);
    this.#settle(id);
    if (item && item.action !== "sendMessage") {
      const view = this.messages.get(keyOf(id, item.userId));
      if (view) this.#show({ ...view, change: null, problem });
      return;
    }
    const view = this.messages.get(this.unsent.get(id));
    if (view && view.state !== "delivered") this.#show({ ...view, state: "failed", problem });
  }

  /** A change the answering region cannot find the message for: it may not be there yet. */
  #notFound(item, problem) {
    if (this.outbox.notFound(item)) this.#fail(item.id, problem);
  }

  #frame(frame, link) {
    if (frame.type === "message") {
      if (link && frame.deliveredBy && frame.deliveredBy !== link.region) {
        link.region = frame.deliveredBy; // the push says where we really are
        ui.setRegion(link.region, link.via);
      }
      this.receive(frame.message, frame.deliveredBy);
      this.#stoppedTyping(frame.message?.authorId); // their message is here
    } else if (frame.type === "presence") {
      if (this.roster.apply(frame)) this.#showPresence();
      if (frame.event === "leave") this.#stoppedTyping(frame.user?.id);
    } else if (frame.type === "typing") {
      if (typeof frame.user?.id === "string" && !this.session.isMine(frame.user.id)) {
        this.typists.typed(frame.user, Date.now());
        this.#showTyping();
      }
    } else if (frame.type === "ack") {
      const item = this.outbox.get(frame.id);
      this.#settle(frame.id);
      if (item && item.action !== "sendMessage") return; // a change: its new state comes pushed
      const view = this.messages.get(this.unsent.get(frame.id));
      if (view && view.state !== "delivered") {
        this.#show({ ...view, state: "accepted", acceptedRegion: frame.acceptedRegion, transport: "websocket" });
      }
    } else if (frame.type === "error" && frame.id && this.outbox.get(frame.id)) {
      if (frame.code === "rate_limited") {
        this.outbox.rateLimited(this.outbox.get(frame.id), frame.retryAfterMs);
      } else if (frame.code === "message_deleted") {
        this.#settle(frame.id); // deleted meanwhile: the deleted state is coming
      } else if (frame.code === "not_found") {
        this.#notFound(this.outbox.get(frame.id), `${frame.code}: ${frame.message}`);
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
    this.outbox.later(item, afterMs);
    setTimeout(() => this.#pump(), afterMs);
  }

  #connected(link) {
    if (this.offline) ui.log("WebSocket open again: back from HTTP to WebSocket");
    this.offline = false;
    ui.setRegion(link.region, link.via);
    this.outbox.resendAll(); // sends on the old socket may be lost
    this.#pump();
    // Settled once the page caught up on the new socket (a renewal then closes the old one). A
    // renewal's old socket kept the member list current until this one opened: nothing to re-read.
    const reads = [this.catchUp(link.httpUrl)];
    if (!link.renewal) reads.push(this.#readPresence(link.httpUrl));
    return Promise.all(reads);
  }

  /** GET presence, from the region we are connected to first. Frames that cross it are kept by
   * the roster and applied over its answer. */
  async #readPresence(preferred) {
    this.presenceReads += 1;
    const read = this.presenceReads;
    this.roster.refreshing();
    for (const base of httpBases(this.config, preferred)) {
      const token = this.session.token;
      try {
        const answer = await fetchPresence(base, this.room, token);
        if (read !== this.presenceReads) return; // a newer read is on its way
        this.roster.reset(answer);
        this.#showPresence();
        return;
      } catch (error) {
        if (error instanceof ApiError && error.status === 401) {
          await this.session.refused(token); // the next region is asked with the new session
        } else if (error instanceof ApiError && !error.retriable) {
          break; // another region would refuse it too
        }
      }
    }
    if (read === this.presenceReads) this.roster.refreshFailed();
  }

  #showPresence() {
    ui.showMembers(this.roster.count, this.roster.members(), (id) => this.session.isMine(id));
  }

  #stoppedTyping(userId) {
    if (typeof userId !== "string") return;
    this.typists.clear(userId);
    this.#showTyping();
  }

  #showTyping() {
    ui.showTyping(typingText(this.typists.names(Date.now())));
  }

  #unreachable() {
    if (!this.offline) {
      ui.log("no WebSocket can be opened: sending over HTTP until one can");
      this.outbox.resendAll(); // waiting for an ack that cannot come
    }
    this.offline = true;
    this.#pump();
    this.catchUp(); // also tells us soon if the region refused our session (401)
  }

  #tick() {
    this.#pump();
    this.#showTyping(); // each typist goes TYPING_SHOWN_MS after their last frame
    if (this.offline && Date.now() - this.history.lastPoll > OFFLINE_POLL_MS) {
      this.catchUp();
      this.#readPresence(); // no presence frames come over HTTP
    }
  }

  #pump() {
    const now = Date.now();
    for (const item of this.outbox.values()) {
      if (item.sending || now - item.sentAt < item.wait) continue;
      if (item.userId !== this.session.userId) continue; // first: was it stored as our earlier self?
      if (this.connection.isOpen) {
        const text = item.action === "deleteMessage" ? {} : { text: item.text };
        this.connection.send({ action: item.action, room: this.room, id: item.id, ...text });
        this.outbox.later(item, UNJUDGED_RESEND_MS);
      } else if (this.offline) {
        this.#postOverHttp(item);
      }
    }
  }

  async #postOverHttp(item) {
    item.sending = true;
    let notFound = null; // a region without the message: another may have it already
    try {
      for (const base of httpBases(this.config)) {
        const token = this.session.token;
        try {
          const write = item.action === "sendMessage" ? postMessage : changeMessage;
          const { message, region } = await write(base, this.room, item, token);
          this.receive(message, `HTTP reply (${region ?? message.acceptedRegion})`);
          return;
        } catch (error) {
          if (error instanceof ApiError && error.status === 401) {
            await this.session.refused(token); // history, then the next round, with the new session
            this.catchUp();
            break;
          }
          if (error instanceof ApiError && error.status === 429) {
            this.outbox.rateLimited(item, error.retryAfterMs); // per user: another region is no way round
            return;
          }
          if (error instanceof ApiError && error.code === "message_deleted") {
            this.#settle(item.id);
            this.catchUp();
            return;
          }
          if (error instanceof ApiError && error.code === "not_found") {
            notFound = `${error.code}: ${error.message}`;
            continue;
          }
          if (error instanceof ApiError && !error.retriable) {
            this.#fail(item.id, `${error.code}: ${error.message}`);
            return;
          }
        }
      }
      if (notFound) this.#notFound(item, notFound);
      else this.outbox.later(item, RETRY_AFTER_ERROR_MS); // nobody answered
    } finally {
      item.sending = false;
    }
  }

  /** Read what we missed (everything since the last hour on join), from the first region that answers. */
  catchUp(preferred) {
    return this.history.catchUp(preferred);
  }

  /** After a history read as `userId` that gave us `messages`: how many were news. */
  #read(messages, region, userId) {
    const fresh = messages.filter((message) => this.receive(message, `history (${region})`)).length;
    // A message written in the last minutes makes the room active: the heartbeat is short.
    if (messages.length) this.connection.noteActivity(Math.min(ulidTime(messages.at(-1).id), Date.now()));
    this.#adopt(userId);
    return fresh;
  }

  setLocation(location) {
    this.connection.restart(`simulated location is now ${location}`);
  }
}
