// One WebSocket to the chat, kept on a region that serves us.
//
// - Judged by the service, not the socket (judge.js): every frame and every send goes through the
//   connection's RegionJudge. When the region fails us (sends that fail twice in a row, a heartbeat
//   answered with an error or not at all, a message the region stored but did not push), we *leave*:
//   close the socket, mark the region sick (SickRegions) and connect elsewhere. The page then
//   catches up from history and resends its outbox (app.js does both on every new connection).
// - Routing: each attempt first asks the routed name (the front door locally, the Route 53 latency
//   name in AWS) which region it answers from (`GET /health`). If the routed name does not answer,
//   answers from a sick region, or still answers from the region whose connection just closed
//   (health checks take a few intervals to notice, DNS answers are cached), the attempt goes
//   straight to another region's own endpoint. We never move back on our own: a healed region is
//   used again only by a connection that has to be made anyway.
// - Backoff: exponential with jitter ("equal jitter": half fixed, half random), so that a region's
//   worth of clients do not all reconnect in the same millisecond after a failover.
// - Heartbeat: browsers expose no WebSocket ping, so after a silence we send {"action": "ping"}; the
//   region answers {"type": "pong", "latest", "region"} from its table, and the pong is never shown.
//   The silence is 20 s while the room is active and 150 s when idle (±10%): judge.js.
// - Renewal, make before break: API Gateway closes every connection after 2 hours. A socket open for
//   RENEW_AFTER_MS has its successor opened beside it (routed as any reconnect); once the new one is
//   open and the page has caught up on it, the old one is closed, quietly: no outage shown, nothing
//   judged, and the room never sees this user leave and come back. Frames the old socket still
//   brings meanwhile are shown (the list keeps one copy of each message) but not judged.
// - Typing frames are fire and forget: sent only on an open socket, never acknowledged, never
//   judged as a send (judge.js).

import { probeHealth } from "./api.js";
import { RegionJudge, SickRegions, gatewayFrame } from "./judge.js";

const BACKOFF_BASE_MS = 200;
const BACKOFF_CAP_MS = 5000;
const CONNECT_TIMEOUT_MS = 4000;
const TICK_MS = 250; // how often the judge looks at its clocks
const DELIBERATE = 4000; // our own close code: a restart or a leave we chose, not a failure
// API Gateway closes a connection after 2 hours: the next one is made 5 minutes before. The page's
// config.json may set `renewSocketAfterMs` (the browser tests do, to see a renewal in seconds).
export const RENEW_AFTER_MS = 115 * 60 * 1000;
const RENEW_RETRY_MS = 30000; // a successor that would not open: try again, the old one still serves
// Frames the region must store and acknowledge: the judge watches their acks.
const MESSAGE_ACTIONS = new Set(["sendMessage", "editMessage", "deleteMessage"]);
const LEAVING_WORDS = { backend: "its backend is failing", silent: "it does not answer" };

export function backoffDelay(attempt) {
  const ceiling = Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** attempt);
  return ceiling / 2 + Math.random() * (ceiling / 2);
}

function withQuery(url, params) {
  const target = new URL(url);
  for (const [key, value] of Object.entries(params)) target.searchParams.set(key, value);
  return target.toString();
}

/**
 * query(): the WebSocket URL's parameters, read at each attempt (`room` and the session's current
 * `token`: a renewed or new session is used by the next connection).
 * hooks: onState(state, detail), onLog(text), onFrame(frame, link), onOpen(link),
 * onUnreachable(attempt), onResend(id, afterMs), onThrottled(id), newestHeld(): the newest
 * message id the page holds ("" for none).
 * link: {region, via: "routed" | "direct", httpUrl, failover: previous region or null}
 */
export class Connection {
  constructor(config, query, hooks) {
    this.config = config;
    this.query = query;
    this.hooks = hooks;
    this.socket = null;
    this.link = null; // the region we are connected to, and how
    this.judge = null; // the open socket's RegionJudge
    this.sick = new SickRegions();
    this.attempt = 0;
    this.avoid = null; // the region whose socket closed under us: not to be used again this round
    this.lostFrom = null;
    this.leaving = null; // while reconnecting after a leave: what the status line says
    this.lastActivityAt = null; // a message sent or received: the heartbeat is short for a while
    this.stopped = true;
    this.timer = null;
    this.ticker = null;
    this.renewAfterMs = config.renewSocketAfterMs ?? RENEW_AFTER_MS;
    this.renewTimer = null;
    this.successor = null; // the socket opening beside the open one, to replace it
    this.retiring = null; // the socket replaced by its successor, closed once the page caught up
  }

  get isOpen() {
    return this.socket?.readyState === WebSocket.OPEN;
  }

  start() {
    this.stopped = false;
    this.#connectSoon(0);
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    this.#drop(DELIBERATE, "stopped");
    this.hooks.onState("stopped", "");
  }

  /** Reconnect now through the routed name (e.g. the simulated location changed). */
  restart(reason) {
    this.hooks.onLog(`reconnecting: ${reason}`);
    clearTimeout(this.timer);
    this.avoid = null;
    this.lostFrom = null;
    this.leaving = null;
    this.attempt = 0;
    this.#drop(DELIBERATE, reason);
    if (!this.stopped) this.#connectSoon(0);
  }

  /** Send a frame if the socket is open; false means "not now", the caller keeps it. */
  send(frame) {
    if (!this.isOpen) return false;
    this.socket.send(JSON.stringify(frame));
    if (MESSAGE_ACTIONS.has(frame.action)) {
      this.judge?.sent(frame.id, Date.now());
      this.noteActivity(Date.now());
    } else if (frame.action === "typing") {
      this.judge?.typingSent(Date.now()); // not a send: its answer, if any, is not one's failure
    }
    return true;
  }

  /** One of our messages is known stored (pushed back, or read from history): as good as an ack. */
  delivered(id) {
    this.judge?.acked(id);
  }

  /** A message was sent or received at `at` (ms): the room is active. */
  noteActivity(at) {
    if (this.lastActivityAt === null || at > this.lastActivityAt) this.lastActivityAt = at;
  }

  #connectSoon(delayMs) {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.#attemptConnection(), delayMs);
  }

  #retryLater(why) {
    if (this.stopped) return;
    const delay = backoffDelay(this.attempt);
    this.attempt += 1;
    this.#state("reconnecting", `attempt ${this.attempt}, next in ${(delay / 1000).toFixed(1)} s`);
    this.hooks.onLog(`${why}; retrying in ${(delay / 1000).toFixed(1)} s (attempt ${this.attempt})`);
    this.#connectSoon(delay);
  }

  /** While we are leaving a region, the status line keeps saying so until another one serves us. */
  #state(state, detail) {
    if (this.leaving && state !== "connected") this.hooks.onState("leaving", `${this.leaving}; ${detail}`);
    else this.hooks.onState(state, detail);
  }

  async #chooseTarget() {
    const now = Date.now();
    const names = Object.keys(this.config.regions ?? {});
    // Not sick (or, every region sick, the one whose mark ends first), and not the one just lost.
    const usable = this.sick.usable(names, now).filter((name) => name !== this.avoid);
    const allowed = (region) => (names.length ? usable.includes(region) : region !== this.avoid);
    const routed = await probeHealth(this.config.apiUrl);
    if (routed.ok && allowed(routed.region)) {
      return { url: this.config.websocketUrl, region: routed.region, via: "routed", httpUrl: this.config.apiUrl };
    }
    const probes = await Promise.all(usable.map((name) => probeHealth(this.config.regions[name].httpUrl)));
    const passing = usable.find((_, index) => probes[index].ok);
    // Nothing passes its health check: a region we have not judged sick before the routed name's
    // sick one; otherwise the routed name anyway (Route 53 fails open too).
    const name = passing ?? (routed.region && this.sick.isSick(routed.region, now) ? usable[0] : undefined);
    if (name === undefined) {
      return { url: this.config.websocketUrl, region: routed.region, via: "routed", httpUrl: this.config.apiUrl };
    }
    let why = `routed name does not answer: going straight to ${name}`;
    if (routed.ok && this.sick.isSick(routed.region, now)) {
      why = `routed name answers from ${routed.region}, which is failing us: going straight to ${name}`;
    } else if (routed.ok) {
      why = `routed name still answers from ${routed.region}, which just failed: going straight to ${name}`;
    }
    this.hooks.onLog(why);
    const endpoints = this.config.regions[name];
    return { url: endpoints.websocketUrl, region: name, via: "direct", httpUrl: endpoints.httpUrl };
  }

  /** `replacing`: the open socket this one renews (make before break); null for a (re)connect. */
  async #attemptConnection(replacing = null) {
    if (this.stopped) return;
    const phase = this.lostFrom || this.attempt ? "reconnecting" : "connecting";
    if (!replacing) this.#state(phase, "choosing a region");
    const target = await this.#chooseTarget();
    if (this.stopped || (replacing && this.socket !== replacing)) return;
    if (!replacing) this.#state(phase, `to ${target.region ?? "?"} (${target.via})`);
    const socket = new WebSocket(withQuery(target.url, this.query()));
    if (replacing) this.successor = socket;
    else this.socket = socket;
    let opened = false;
    const giveUp = setTimeout(() => socket.close(), CONNECT_TIMEOUT_MS);

    socket.addEventListener("open", () => {
      clearTimeout(giveUp);
      opened = true;
      if (replacing) {
        if (this.successor !== socket) return socket.close(DELIBERATE, "renewal abandoned");
        this.successor = null;
        this.retiring = replacing; // still open: it keeps bringing frames until we caught up
      }
      const failover = this.lostFrom && this.lostFrom !== target.region ? this.lostFrom : null;
      this.socket = socket;
      this.link = { ...target, failover, renewal: Boolean(replacing) };
      this.attempt = 0;
      this.avoid = null;
      this.lostFrom = null;
      this.leaving = null;
      this.judge = new RegionJudge(Date.now());
      this.#startTicking(socket);
      this.#scheduleRenewal(socket);
      this.hooks.onState("connected", `${target.region} (${failover ? "failover" : target.via})`);
      this.hooks.onLog(
        replacing
          ? `renewed before API Gateway's 2-hour limit: connected to ${target.region} (${target.via})`
          : failover
            ? `failover: ${failover} → ${target.region} (${target.via})`
            : `connected to ${target.region} (${target.via})`,
      );
      const caughtUp = this.hooks.onOpen(this.link);
      if (replacing) Promise.resolve(caughtUp).finally(() => this.#retire(replacing));
    });
    socket.addEventListener("message", (event) => {
      const retiring = socket === this.retiring;
      if (this.socket !== socket && !retiring) return; // a socket we already left
      let frame;
      try {
        frame = JSON.parse(event.data);
      } catch {
        return;
      }
      if (retiring) {
        // Its successor is judged; this one only brings what it still has (the list drops copies).
        if (frame?.type !== "pong" && gatewayFrame(frame) === null) this.hooks.onFrame(frame, null);
        return;
      }
      const now = Date.now();
      const verdict = this.judge.received(frame, now, this.hooks.newestHeld());
      if (frame?.type === "message") this.noteActivity(now);
      // The pong and API Gateway's own frames are for the judge only, never shown.
      if (frame?.type !== "pong" && gatewayFrame(frame) === null) this.hooks.onFrame(frame, this.link);
      this.#apply(verdict, socket);
    });
    socket.addEventListener("close", (event) => {
      clearTimeout(giveUp);
      if (socket === this.retiring) {
        this.retiring = null; // closed under us before we closed it: its successor serves already
      } else if (socket === this.successor) {
        this.successor = null; // it would not open: the old one still serves, try again later
        this.hooks.onLog(`could not open the renewed connection; trying again in ${RENEW_RETRY_MS / 1000} s`);
        this.#scheduleRenewal(this.socket, RENEW_RETRY_MS);
      } else if (event.code !== DELIBERATE) {
        this.#lost(socket, target, opened, event.code);
      }
    });
  }

  /** Open `socket`'s successor in `afterMs` (the socket must still be ours then). */
  #scheduleRenewal(socket, afterMs = this.renewAfterMs) {
    clearTimeout(this.renewTimer);
    this.renewTimer = setTimeout(() => {
      if (this.stopped || !socket || this.socket !== socket || this.successor) return;
      this.hooks.onLog("renewing the connection before API Gateway's 2-hour limit");
      this.#attemptConnection(socket);
    }, afterMs);
  }

  /** The successor is open and the page caught up on it: close the old socket, quietly. */
  #retire(socket) {
    if (this.retiring !== socket) return;
    this.retiring = null;
    if (socket.readyState <= WebSocket.OPEN) socket.close(DELIBERATE, "renewed");
  }

  #startTicking(socket) {
    clearInterval(this.ticker);
    this.ticker = setInterval(() => {
      if (this.socket !== socket) return;
      this.#apply(this.judge.tick(Date.now(), this.hooks.newestHeld(), this.lastActivityAt), socket);
    }, TICK_MS);
  }

  #apply(verdict, socket) {
    if (!verdict || this.socket !== socket) return;
    if (verdict.ping) {
      socket.send(JSON.stringify({ action: "ping" }));
    } else if (verdict.resend) {
      this.hooks.onLog(`send ${verdict.resend} failed (${verdict.why}): sending it again, once`);
      this.hooks.onResend(verdict.resend, verdict.afterMs);
    } else if (verdict.throttled) {
      this.hooks.onThrottled(verdict.throttled);
    } else if (verdict.leave) {
      this.#leave(socket, verdict);
    }
  }

  /** The region fails us: close, mark it sick, connect elsewhere at once. */
  #leave(socket, verdict) {
    const region = this.link?.region ?? "?";
    const sickForMs = this.sick.mark(region, Date.now());
    this.hooks.onLog(`leaving ${region}: ${verdict.why}; keeping away from it for ${sickForMs / 1000} s`);
    this.leaving = `${region}: ${LEAVING_WORDS[verdict.leave]}`;
    this.lostFrom = region;
    this.avoid = null; // the sick mark keeps us away, longer than one round
    this.attempt = 0;
    this.#drop(DELIBERATE, "leaving a failing region");
    this.hooks.onState("leaving", this.leaving);
    this.#connectSoon(0);
  }

  /** A socket closed: reconnect, away from its region unless the close was clean. */
  #lost(socket, target, opened, code) {
    if (this.socket !== socket || this.stopped) return; // one we already replaced or dropped
    this.socket = null;
    this.judge = null;
    clearInterval(this.ticker);
    this.#abandonRenewal();
    if (opened) {
      const region = this.link?.region;
      // A clean close (API Gateway's idle or 2-hour limit) may reconnect to the same region.
      this.avoid = code === 1000 || code === 1001 ? null : region;
      this.lostFrom = region;
      this.link = null;
      this.#retryLater(`connection to ${region} lost (code ${code})`);
    } else {
      this.hooks.onUnreachable(this.attempt + 1);
      this.#retryLater(`could not open a WebSocket to ${target.region ?? "the routed name"}`);
    }
  }

  #drop(code, reason) {
    const socket = this.socket;
    this.socket = null;
    this.link = null;
    this.judge = null;
    clearInterval(this.ticker);
    this.#abandonRenewal();
    if (socket && socket.readyState <= WebSocket.OPEN) socket.close(code, reason);
  }

  /** No renewal of a socket we no longer use: its successor (if opening) and its old one go. */
  #abandonRenewal() {
    clearTimeout(this.renewTimer);
    for (const socket of [this.successor, this.retiring]) {
      if (socket && socket.readyState <= WebSocket.OPEN) socket.close(DELIBERATE, "renewal abandoned");
    }
    this.successor = null;
    this.retiring = null;
  }
}
