// Catching up from history: what we missed, read from the first region that answers, one read at
// a time (a request during a read runs once after it: it may have a newer `after`).

import { ApiError, fetchHistory, httpBases } from "./api.js";
import { ui } from "./ui.js";
import { lowestUlid, ulidTime } from "./ulid.js";

const HISTORY_WINDOW_MS = 60 * 60 * 1000; // on join: the last hour
// The server accepts an id up to 5 minutes from its clock, so a message stored after we last heard
// from the room can carry an id up to 5 minutes older than the newest one we saw: catch-ups read
// from there (and the list drops the copies).
const ID_WINDOW_MS = 5 * 60 * 1000;

export class History {
  /** hooks: since() the newest id we hold (or null), read(messages, region, userId) → how many
   * were news (userId: whom we read as). */
  constructor(config, room, session, hooks) {
    this.config = config;
    this.room = room;
    this.session = session;
    this.hooks = hooks;
    this.lastPoll = 0;
    this.reading = null;
    this.again = null;
    this.done = false; // a first read went through
  }

  catchUp(preferred) {
    this.lastPoll = Date.now();
    if (this.reading) {
      this.again = preferred ?? true;
      return this.reading;
    }
    this.reading = this.#read(preferred).finally(() => {
      this.reading = null;
      const again = this.again;
      this.again = null;
      if (again) this.catchUp(typeof again === "string" ? again : undefined);
    });
    return this.reading;
  }

  async #read(preferred) {
    const newest = this.hooks.since();
    const since = newest ? Math.min(ulidTime(newest), Date.now()) - ID_WINDOW_MS : Date.now() - HISTORY_WINDOW_MS;
    const firstRead = !this.done;
    const userId = this.session.userId;
    for (const base of httpBases(this.config, preferred)) {
      const token = this.session.token;
      try {
        const { messages, region } = await fetchHistory(base, this.room, lowestUlid(since), token);
        const fresh = this.hooks.read(messages, region, userId);
        this.done = true;
        if (firstRead) ui.log(`history: ${messages.length} message(s) from ${region}`);
        else if (fresh) ui.log(`caught up ${fresh} missed message(s) from ${region}`);
        return;
      } catch (error) {
        if (error instanceof ApiError && error.status === 401) {
          await this.session.refused(token);
          this.again = preferred ?? true; // with the new session
          return;
        }
        // the next region may answer
      }
    }
    ui.log("history: no region answered; will try again");
  }
}
