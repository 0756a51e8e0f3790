// The chat session (docs/api.md, "Sessions"): a guest signs in with a display name and gets a
// short-lived token that every region verifies on its own.
//
// - Kept in localStorage, so a reload (or another tab) stays the same user and keeps its outbox.
// - Renewed before it expires: POST /session with the current token keeps the user id.
// - A region that answers 401 (a tampered token, a key it does not know, an expired session) gets a
//   new sign-in with the same name; the outbox waits and is sent with the new token.
// - Every user id this browser has signed in as is remembered, so the page marks its own messages
//   by user id (never by name: two people may share one), even those sent before a new sign-in.
// - Sign-in goes to the routed name first, then to each region's own endpoint, like every call.
// - Sign-out (DELETE /session) ends the session in every region, this token and every earlier one
//   it was renewed from; the page forgets it at once, even when no region answers.

import { ApiError, createSession, httpBases } from "./api.js";

const STORAGE_KEY = "rc-session";
const OWN_IDS_KEY = "rc-user-ids";
const RENEW_BEFORE_MS = 5 * 60 * 1000; // renew this long before expiry (or at half life if shorter)
const RETRY_MS = 2000; // after a sign-in or renewal that no region answered
const SIGN_OUT_TIMEOUT_MS = 5000;

function load(key, fallback) {
  try {
    return JSON.parse(localStorage.getItem(key) ?? "null") ?? fallback;
  } catch {
    return fallback;
  }
}

/** hooks: onLog(text), onChange(session) after every new token. */
export class Session {
  constructor(config, hooks) {
    this.config = config;
    this.hooks = hooks;
    this.current = load(STORAGE_KEY, null); // {token, user: {id, name}, expiresAt, receivedAt}
    this.ownIds = new Set(load(OWN_IDS_KEY, []));
    this.signingIn = null;
    this.timer = null;
  }

  get token() {
    return this.current?.token ?? null;
  }

  get userId() {
    return this.current?.user.id ?? null;
  }

  get name() {
    return this.current?.user.name ?? null;
  }

  isMine(authorId) {
    return this.ownIds.has(authorId);
  }

  /** Join as `name`: the kept session if it is this name's and still valid, else a new one. */
  async join(name) {
    if (this.current && this.current.user.name === name && this.#remainingMs() > 0) {
      this.#scheduleRenewal();
      return this.current;
    }
    return this.#signIn({ name });
  }

  /** A region refused `token` with 401: sign in again (once, however many requests were refused). */
  refused(token) {
    if (token !== this.token) return this.signingIn ?? Promise.resolve(this.current); // already replaced
    this.hooks.onLog("the session was refused (401): signing in again");
    return this.#retrying(() => this.#signIn({ name: this.name }));
  }

  /** Sign out: DELETE /session (204; a 401 means the session had already ended). The token is
   * forgotten here first, so nothing renews it or signs in again on its behalf. */
  async signOut() {
    const token = this.token;
    clearTimeout(this.timer);
    this.current = null;
    localStorage.removeItem(STORAGE_KEY);
    if (!token) return true;
    for (const base of httpBases(this.config)) {
      try {
        const response = await fetch(`${base}/session`, {
          method: "DELETE",
          headers: { Authorization: `Bearer ${token}` },
          cache: "no-store",
          signal: AbortSignal.timeout(SIGN_OUT_TIMEOUT_MS),
        });
        if (response.status === 204 || response.status === 401) {
          this.hooks.onLog("signed out: this session is refused in every region within seconds");
          return true;
        }
      } catch {
        // this region did not answer: the next one can sign out just as well
      }
    }
    this.hooks.onLog("sign-out reached no region: the token stays valid until it expires");
    return false;
  }

  #remainingMs() {
    return Date.parse(this.current?.expiresAt ?? "") - Date.now() || 0;
  }

  #scheduleRenewal() {
    clearTimeout(this.timer);
    const lifetime = Date.parse(this.current.expiresAt) - (this.current.receivedAt ?? Date.now());
    const renewIn = this.#remainingMs() - Math.min(RENEW_BEFORE_MS, lifetime / 2);
    this.timer = setTimeout(() => this.#retrying(() => this.#renew()), Math.max(0, renewIn));
  }

  /** Renewal keeps the user id; a token the region no longer accepts means a new sign-in. */
  async #renew() {
    try {
      const session = await this.#post({}, this.token);
      this.hooks.onLog(`session renewed (until ${new Date(session.expiresAt).toLocaleTimeString()})`);
      return session;
    } catch (error) {
      if (error instanceof ApiError && error.status === 401) return this.#signIn({ name: this.name });
      throw error;
    }
  }

  async #signIn(body) {
    const session = await this.#post(body, null);
    this.hooks.onLog(`signed in as ${session.user.name}`);
    return session;
  }

  /** One attempt at a time; when no region answers, try again until one does. */
  #retrying(attempt) {
    if (!this.signingIn) {
      const loop = async () => {
        for (;;) {
          try {
            return await attempt();
          } catch (error) {
            if (error instanceof ApiError && !error.retriable) throw error;
            await new Promise((resolve) => setTimeout(resolve, RETRY_MS));
          }
        }
      };
      this.signingIn = loop().finally(() => {
        this.signingIn = null;
      });
    }
    return this.signingIn;
  }

  /** POST /session at the routed name, then at each region's own endpoint. */
  async #post(body, token) {
    let lastError = null;
    for (const base of httpBases(this.config)) {
      try {
        const session = await createSession(base, body, token);
        this.#keep(session);
        return session;
      } catch (error) {
        if (error instanceof ApiError && !error.retriable) throw error; // our input, or our token
        lastError = error;
      }
    }
    throw lastError ?? new ApiError("no region answered");
  }

  #keep(session) {
    this.current = { ...session, receivedAt: Date.now() };
    localStorage.setItem(STORAGE_KEY, JSON.stringify(this.current));
    this.ownIds.add(session.user.id);
    localStorage.setItem(OWN_IDS_KEY, JSON.stringify([...this.ownIds].slice(-20)));
    this.#scheduleRenewal();
    this.hooks.onChange(this.current);
  }
}
