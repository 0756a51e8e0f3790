// Who is in the room and who is typing, as plain state: no DOM, no socket, no timer; the caller
// passes the time (`now`, in ms). The page (chat.js) feeds it GET /rooms/{room}/presence and the
// `presence` and `typing` frames, and draws what it says (ui.js).
//
// - The roster starts from GET presence each time a socket opens (a failover, a reconnect, the
//   renewal before API Gateway's 2-hour limit) and follows the `presence` frames from then on.
//   Frames are idempotent: an `enter` for a listed user or a `leave` for an absent one changes only
//   the count. The count shown is always the server's (`count`): the list holds at most
//   MEMBERS_SHOWN members, a large room's `count` frames carry no user.
// - A frame can cross the GET on its way: one that arrives while the GET is out is applied at once
//   and again over the GET's answer. One that changes nobody's presence there was already in the
//   answer, so the answer's count stands; one that does change it is newer, and its count wins.
// - Typing: a `typing` frame shows its user for TYPING_SHOWN_MS after their last one; their message,
//   or their leaving, clears them at once. The page sends at most one typing frame per
//   TYPING_SEND_INTERVAL_MS (the server drops extras anyway).

export const MEMBERS_SHOWN = 100;
export const TYPING_SEND_INTERVAL_MS = 2000;
export const TYPING_SHOWN_MS = 3000;

function byNameThenId(a, b) {
  const [x, y] = [a.name.toLowerCase(), b.name.toLowerCase()];
  if (x !== y) return x < y ? -1 : 1;
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

function validUser(user) {
  return user && typeof user.id === "string" && typeof user.name === "string";
}

/** One room's members: id → name, and the server's count of them. */
export class Roster {
  constructor() {
    this.names = new Map();
    this.count = null; // unknown until the first answer or frame
    this.crossing = null; // frames that arrived while a GET was out
  }

  /** A GET presence is on its way: remember the frames that may cross it. */
  refreshing() {
    this.crossing = [];
  }

  /** The GET failed: keep what we have. */
  refreshFailed() {
    this.crossing = null;
  }

  /** The GET's answer `{count, members}`, with the frames that crossed it applied over it. */
  reset(answer) {
    const crossing = this.crossing ?? [];
    this.crossing = null;
    this.names = new Map();
    for (const user of answer?.members ?? []) if (validUser(user)) this.names.set(user.id, user.name);
    this.count = Number.isInteger(answer?.count) ? answer.count : this.names.size;
    for (const frame of crossing) {
      const changed = this.#change(frame);
      if (changed && Number.isInteger(frame.count)) this.count = frame.count;
    }
  }

  /** A `presence` frame: true when it changed what is shown. */
  apply(frame) {
    if (frame?.type !== "presence") return false;
    this.crossing?.push(frame);
    const before = this.count;
    const changed = this.#change(frame);
    if (Number.isInteger(frame.count)) this.count = frame.count;
    return changed || before !== this.count;
  }

  /** Apply an enter or leave to the names only: true when it changed them. */
  #change(frame) {
    if (!validUser(frame.user)) return false;
    const { id, name } = frame.user;
    if (frame.event === "enter") {
      if (this.names.has(id)) return false;
      this.names.set(id, name);
      return true;
    }
    if (frame.event === "leave") return this.names.delete(id);
    return false;
  }

  has(id) {
    return this.names.has(id);
  }

  /** At most MEMBERS_SHOWN members, by name, then id: [{id, name}]. */
  members() {
    return [...this.names].map(([id, name]) => ({ id, name })).sort(byNameThenId).slice(0, MEMBERS_SHOWN);
  }
}

/** Who is typing: id → {name, until}. */
export class Typists {
  constructor() {
    this.entries = new Map();
  }

  /** A typing frame from `user` at `now`. */
  typed(user, now) {
    if (!validUser(user)) return;
    // A Map keeps its first insertion's place: the sentence keeps the order they started in.
    this.entries.set(user.id, { name: user.name, until: now + TYPING_SHOWN_MS });
  }

  /** Their message came, or they left. */
  clear(id) {
    this.entries.delete(id);
  }

  /** The names still typing at `now`, in the order they started; the others are forgotten. */
  names(now) {
    for (const [id, entry] of this.entries) if (entry.until <= now) this.entries.delete(id);
    return [...this.entries.values()].map((entry) => entry.name);
  }
}

/** "" / "Ada is typing…" / "Ada and Bo are typing…" / "3 people are typing…". */
export function typingText(names) {
  if (names.length === 0) return "";
  if (names.length === 1) return `${names[0]} is typing…`;
  if (names.length === 2) return `${names[0]} and ${names[1]} are typing…`;
  return `${names.length} people are typing…`;
}

/** May a typing frame go at `now`, the last one having gone at `lastSentAt` (null: never)? */
export function typingDue(lastSentAt, now) {
  return lastSentAt === null || now - lastSentAt >= TYPING_SEND_INTERVAL_MS;
}
