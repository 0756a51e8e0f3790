// One WebSocket to the chat, kept alive across region failures.
//
// - Routing: each attempt first asks the routed name (the front door locally, the Route 53 latency
//   name in AWS) which region it answers from (`GET /health`). If the routed name does not answer, or
//   still answers from the region whose connection just failed (health checks take a few intervals to
//   notice, DNS answers are cached), the attempt goes straight to another region's own endpoint.
// - Backoff: exponential with jitter ("equal jitter": half fixed, half random), so that a region's
//   worth of clients do not all reconnect in the same millisecond after a failover.
// - Heartbeat: browsers expose no WebSocket ping, so after about HEARTBEAT_MS of silence (±10%, so
//   that a region's pages do not ping in step) we send {"action": "ping"}; API Gateway itself answers
//   {"type": "pong"} (a MOCK integration: no function runs), which is never shown. No frame at all
//   within PONG_TIMEOUT_MS means the connection is dead even if TCP has not noticed; we drop it,
//   reconnect and catch up from history. The interval is priced in docs/architecture.md
//   ("Heartbeat"). A pong proves that the region's API Gateway answers, not that its backend works:
//   a sender notices a broken backend sooner, by a missing ack or an `unavailable` error.

import { probeHealth } from "./api.js";

const BACKOFF_BASE_MS = 200;
const BACKOFF_CAP_MS = 5000;
const CONNECT_TIMEOUT_MS = 4000;
const HEARTBEAT_MS = 150000;
const HEARTBEAT_JITTER = 0.1;
const PONG_TIMEOUT_MS = 10000;
const DELIBERATE = 4000; // our own close code: a restart we asked for, not a failure

/** The silence after which the next ping goes: HEARTBEAT_MS ± HEARTBEAT_JITTER. */
export function heartbeatDelay() {
  return HEARTBEAT_MS * (1 - HEARTBEAT_JITTER + Math.random() * 2 * HEARTBEAT_JITTER);
}

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
 * hooks: onState(state, detail), onLog(text), onFrame(frame), onOpen(link), onUnreachable(attempt)
 * link: {region, via: "routed" | "direct", httpUrl, failover: previous region or null}
 */
export class Connection {
  constructor(config, query, hooks) {
    this.config = config;
    this.query = query;
    this.hooks = hooks;
    this.socket = null;
    this.link = null; // the region we are connected to, and how
    this.attempt = 0;
    this.avoid = null; // the region whose connection failed: not to be used again this round
    this.lostFrom = null;
    this.stopped = true;
    this.timer = null;
    this.heartbeat = null;
    this.quietFor = HEARTBEAT_MS;
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
    this.attempt = 0;
    this.#drop(DELIBERATE, reason);
    if (!this.stopped) this.#connectSoon(0);
  }

  /** Send a frame if the socket is open; false means "not now", the caller keeps it. */
  send(frame) {
    if (!this.isOpen) return false;
    this.socket.send(JSON.stringify(frame));
    return true;
  }

  #connectSoon(delayMs) {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.#attemptConnection(), delayMs);
  }

  #retryLater(why) {
    if (this.stopped) return;
    const delay = backoffDelay(this.attempt);
    this.attempt += 1;
    this.hooks.onState("reconnecting", `attempt ${this.attempt}, next in ${(delay / 1000).toFixed(1)} s`);
    this.hooks.onLog(`${why}; retrying in ${(delay / 1000).toFixed(1)} s (attempt ${this.attempt})`);
    this.#connectSoon(delay);
  }

  async #chooseTarget() {
    const routed = await probeHealth(this.config.apiUrl);
    if (routed.ok && routed.region !== this.avoid) {
      return { url: this.config.websocketUrl, region: routed.region, via: "routed", httpUrl: this.config.apiUrl };
    }
    const others = Object.entries(this.config.regions ?? {}).filter(([name]) => name !== this.avoid);
    const probes = await Promise.all(others.map(([, endpoints]) => probeHealth(endpoints.httpUrl)));
    const index = probes.findIndex((probe) => probe.ok);
    if (index >= 0) {
      const [name, endpoints] = others[index];
      this.hooks.onLog(
        routed.ok
          ? `routed name still answers from ${routed.region}, which just failed: going straight to ${name}`
          : `routed name does not answer: going straight to ${name}`,
      );
      return { url: endpoints.websocketUrl, region: name, via: "direct", httpUrl: endpoints.httpUrl };
    }
    // Nothing answers its health check: try the routed name anyway (Route 53 fails open too).
    return { url: this.config.websocketUrl, region: routed.region, via: "routed", httpUrl: this.config.apiUrl };
  }

  async #attemptConnection() {
    if (this.stopped) return;
    this.hooks.onState(this.lostFrom || this.attempt ? "reconnecting" : "connecting", "choosing a region");
    const target = await this.#chooseTarget();
    if (this.stopped) return;
    this.hooks.onState(this.lostFrom || this.attempt ? "reconnecting" : "connecting", `to ${target.region ?? "?"} (${target.via})`);
    const socket = new WebSocket(withQuery(target.url, this.query()));
    this.socket = socket;
    let opened = false;
    const giveUp = setTimeout(() => socket.close(), CONNECT_TIMEOUT_MS);

    socket.addEventListener("open", () => {
      clearTimeout(giveUp);
      opened = true;
      const failover = this.lostFrom && this.lostFrom !== target.region ? this.lostFrom : null;
      this.link = { ...target, failover };
      this.attempt = 0;
      this.avoid = null;
      this.lostFrom = null;
      this.#startHeartbeat(socket, target);
      this.hooks.onState("connected", `${target.region} (${target.via})`);
      this.hooks.onLog(
        failover
          ? `failover: ${failover} → ${target.region} (${target.via})`
          : `connected to ${target.region} (${target.via})`,
      );
      this.hooks.onOpen(this.link);
    });
    socket.addEventListener("message", (event) => {
      this.lastFrameAt = Date.now();
      this.pingSentAt = 0;
      let frame;
      try {
        frame = JSON.parse(event.data);
      } catch {
        return;
      }
      if (frame?.type === "pong") return; // the heartbeat's answer: not a message
      this.hooks.onFrame(frame, this.link);
    });
    socket.addEventListener("close", (event) => {
      clearTimeout(giveUp);
      if (event.code !== DELIBERATE) this.#lost(socket, target, opened, event.code);
    });
  }

  /** A socket closed or went silent: reconnect, away from its region unless the close was clean. */
  #lost(socket, target, opened, code) {
    if (this.socket !== socket || this.stopped) return; // one we already replaced or dropped
    this.socket = null;
    clearInterval(this.heartbeat);
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

  #startHeartbeat(socket, target) {
    this.lastFrameAt = Date.now();
    this.pingSentAt = 0;
    this.quietFor = heartbeatDelay();
    clearInterval(this.heartbeat);
    this.heartbeat = setInterval(() => {
      const now = Date.now();
      if (this.pingSentAt && now - this.pingSentAt > PONG_TIMEOUT_MS) {
        this.hooks.onLog(`no answer from ${this.link?.region} for ${PONG_TIMEOUT_MS / 1000} s`);
        // A dead peer may never complete a close handshake: count it lost now, close in the background.
        this.#lost(socket, target, true, 4001);
        socket.close(DELIBERATE, "heartbeat timeout");
      } else if (!this.pingSentAt && now - this.lastFrameAt > this.quietFor) {
        this.pingSentAt = now;
        this.quietFor = heartbeatDelay();
        socket.send(JSON.stringify({ action: "ping" }));
      }
    }, 1000);
  }

  #drop(code, reason) {
    const socket = this.socket;
    this.socket = null;
    this.link = null;
    clearInterval(this.heartbeat);
    if (socket && socket.readyState <= WebSocket.OPEN) socket.close(code, reason);
  }
}
