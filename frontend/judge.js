// When does a region fail this page? The rule, as plain decisions: no DOM, no WebSocket, no timer;
// the caller passes the time (`now`, in ms) and, for the heartbeat's jitter, a random source. The
// same rule, with the same constants, drives the drill's and the benchmarks' clients
// (docs/architecture.md, "Clients judge the service").
//
// A region can be up and still fail us: its API Gateway answers, its sockets stay open, its pings
// come back, while its functions or its table fail. So we judge what the region does with our
// messages, not whether the socket is open:
// - a send fails on an `unavailable`/`internal_error` error frame for its id, on API Gateway's bare
//   "Internal server error" frame (it carries no id: it counts against the oldest send not yet
//   acknowledged), or when no ack comes within ACK_TIMEOUT_MS. The first failure resends the same
//   id on the same socket once, RESEND_AFTER_MS later; a second failure with no ack in between
//   leaves the region. `rate_limited`, a refusal of our input and API Gateway's "Too Many Requests"
//   are about us, not the region: never a failure. A bare "Internal server error" while nothing is
//   unacknowledged but a ping is out is the heartbeat's answer: it fails.
// - the heartbeat reads the region's table (the pong carries the room's newest id there): it fails
//   when no pong comes within PONG_TIMEOUT_MS, or when an error frame without an id comes while a
//   ping is out. A pong naming a newer message than any we hold means the region stored a message
//   it did not push to us: if it (or a newer one) has not come GAP_GRACE_MS later, we leave.
// - a typing frame is never acknowledged and never a send: a region that works does not answer it,
//   one that fails answers it with an error frame that names no message (or API Gateway's bare one).
//   Such an answer within TYPING_ANSWER_MS of a typing frame is taken as that frame's, not a send's
//   or the heartbeat's: if it was in fact theirs, the ack's or the pong's timeout still catches it.
// - leaving marks the region sick for SICK_MS, doubling on each new mark, up to SICK_MAX_MS; a new
//   connection avoids sick regions, and when every region is sick, uses the one whose mark ends first.

export const ACK_TIMEOUT_MS = 3000;
export const RESEND_AFTER_MS = 500;
export const ACTIVE_HEARTBEAT_MS = 20000;
export const HEARTBEAT_MS = 150000;
export const HEARTBEAT_JITTER = 0.1;
export const ACTIVE_WINDOW_MS = 300000;
export const PONG_TIMEOUT_MS = 10000;
export const GAP_GRACE_MS = 3000;
export const SICK_MS = 60000;
export const SICK_MAX_MS = 600000;
export const TYPING_ANSWER_MS = 3000;

const REGION_FAILURES = new Set(["unavailable", "internal_error"]);

/**
 * API Gateway's own frames have no `type`, only a `message` (and connectionId, requestId):
 * "internal_error" when the integration failed (a function that errs or is throttled),
 * "throttled" when the stage's throttle dropped our frame; null for every frame of ours.
 */
export function gatewayFrame(frame) {
  if (!frame || typeof frame !== "object" || "type" in frame || typeof frame.message !== "string") return null;
  if (/^internal server error/i.test(frame.message)) return "internal_error";
  if (/^too many requests/i.test(frame.message)) return "throttled";
  return null;
}

/** The silence before a ping, before jitter: short while the room is active (a message sent or
 * received in the last ACTIVE_WINDOW_MS), long when it is idle (the idle month's price). */
export function heartbeatInterval(now, lastActivityAt) {
  const active = typeof lastActivityAt === "number" && now - lastActivityAt < ACTIVE_WINDOW_MS;
  return active ? ACTIVE_HEARTBEAT_MS : HEARTBEAT_MS;
}

/** A factor in [1 - HEARTBEAT_JITTER, 1 + HEARTBEAT_JITTER): a region's pages do not ping in step. */
export function jitter(random) {
  return 1 - HEARTBEAT_JITTER + random() * 2 * HEARTBEAT_JITTER;
}

/**
 * The judge of one connection to one region. Verdicts (or null):
 * - {resend: id, afterMs, why}: the send's first failure: send the same id again, same socket
 * - {throttled: id}: API Gateway dropped that send: send it again later, not a failure
 * - {ping: true}: the silence has lasted: send {"action": "ping"} now (counted as sent)
 * - {leave: "backend" | "silent", why}: the region fails us: leave it
 */
export class RegionJudge {
  constructor(now, random = Math.random) {
    this.random = random;
    this.unacked = new Map(); // id → when it was (last) sent; in send order, oldest first
    this.failures = 0; // send failures in a row, with no ack in between
    this.lastFrameAt = now;
    this.jitter = jitter(random);
    this.pingSentAt = null;
    this.gap = null; // {id, since}: the newest id a pong named that we do not hold yet
    this.typingOut = []; // when our typing frames went out, oldest first: a failing region answers them
  }

  /** A typing frame went out: not a send, nothing to acknowledge (see the rule above). */
  typingSent(now) {
    this.typingOut = this.typingOut.filter((at) => now - at < TYPING_ANSWER_MS);
    this.typingOut.push(now);
  }

  /** An answer that names no message: a typing frame's, if one went out recently (true). */
  #typingAnswered(now) {
    this.typingOut = this.typingOut.filter((at) => now - at < TYPING_ANSWER_MS);
    return this.typingOut.shift() !== undefined;
  }

  /** A sendMessage frame with this id went out (first time or again). */
  sent(id, now) {
    this.unacked.delete(id); // re-inserted: its place in the order is its latest send
    this.unacked.set(id, now);
  }

  /** The message is stored (its ack, or our own message pushed or read back). */
  acked(id) {
    this.unacked.delete(id);
    this.failures = 0;
  }

  /** Every frame the server sends, parsed; `newestHeld` is the newest message id we hold ("" for none). */
  received(frame, now, newestHeld) {
    this.lastFrameAt = now; // a new silence starts, with its own jitter
    this.jitter = jitter(this.random);
    const gateway = gatewayFrame(frame);
    // An answer that names no message may be a typing frame's. A throttled send, though, is sent
    // again at no cost, so API Gateway's "Too Many Requests" still goes to the oldest send first.
    const unnamed = gateway === "internal_error" || (frame?.type === "error" && (frame.id ?? null) === null);
    const throttledTyping = gateway === "throttled" && this.#oldest() === null;
    if ((unnamed || throttledTyping) && this.#typingAnswered(now)) return null;
    if (gateway === "internal_error") {
      const oldest = this.#oldest();
      if (oldest !== null) return this.#failed(oldest, "Internal server error (API Gateway)");
      if (this.pingSentAt === null) return null;
      return { leave: "backend", why: "the heartbeat was answered Internal server error" };
    }
    if (gateway === "throttled") {
      const oldest = this.#oldest();
      if (oldest !== null) {
        this.unacked.delete(oldest);
        return { throttled: oldest };
      }
      this.pingSentAt = null; // a dropped ping: the next silence sends another
      return null;
    }
    if (frame?.type === "ack") {
      this.acked(frame.id);
    } else if (frame?.type === "pong") {
      this.pingSentAt = null;
      const latest = frame.latest;
      // No `latest` (an older region): no gap information.
      if (typeof latest === "string" && latest > (newestHeld ?? "") && this.gap === null) {
        this.gap = { id: latest, since: now };
      }
    } else if (frame?.type === "error") {
      return this.#error(frame);
    }
    return null;
  }

  #error(frame) {
    if (frame.id === null || frame.id === undefined) {
      if (this.pingSentAt === null) return null;
      return { leave: "backend", why: `the heartbeat was answered ${frame.code}` };
    }
    if (!this.unacked.has(frame.id)) return null;
    if (REGION_FAILURES.has(frame.code)) return this.#failed(frame.id, frame.code);
    this.unacked.delete(frame.id); // rate_limited or our input refused: the region did its job
    return null;
  }

  /** Called often (every 250 ms will do): the timeouts, the gap's grace and the next ping. */
  tick(now, newestHeld, lastActivityAt) {
    for (const [id, sentAt] of this.unacked) {
      if (now - sentAt >= ACK_TIMEOUT_MS) return this.#failed(id, `no ack in ${ACK_TIMEOUT_MS / 1000} s`);
    }
    if (this.pingSentAt !== null && now - this.pingSentAt >= PONG_TIMEOUT_MS) {
      return { leave: "silent", why: `no answer for ${PONG_TIMEOUT_MS / 1000} s` };
    }
    if (this.gap !== null) {
      if ((newestHeld ?? "") >= this.gap.id) {
        this.gap = null;
      } else if (now - this.gap.since >= GAP_GRACE_MS) {
        const why = `it stored ${this.gap.id} but did not deliver it in ${GAP_GRACE_MS / 1000} s`;
        return { leave: "backend", why };
      }
    }
    const silence = heartbeatInterval(now, lastActivityAt) * this.jitter;
    if (this.pingSentAt === null && now - this.lastFrameAt >= silence) {
      this.pingSentAt = now;
      return { ping: true };
    }
    return null;
  }

  #oldest() {
    for (const id of this.unacked.keys()) return id;
    return null;
  }

  #failed(id, why) {
    this.unacked.delete(id);
    this.failures += 1;
    if (this.failures >= 2) return { leave: "backend", why: `two sends in a row failed (last: ${why})` };
    return { resend: id, afterMs: RESEND_AFTER_MS, why };
  }
}

/** Regions this page has left by the rule, and until when it keeps away from them. */
export class SickRegions {
  constructor() {
    this.marks = new Map(); // region → {until, count}
  }

  /** Mark `region` sick from `now`; returns for how long (ms). */
  mark(region, now) {
    const count = (this.marks.get(region)?.count ?? 0) + 1;
    const ms = Math.min(SICK_MAX_MS, SICK_MS * 2 ** (count - 1));
    this.marks.set(region, { until: now + ms, count });
    return ms;
  }

  isSick(region, now) {
    return (this.marks.get(region)?.until ?? 0) > now;
  }

  /** The regions a new connection may use: those not sick; if every one is sick, fail open to
   * the one whose mark ends first. */
  usable(regions, now) {
    const healthy = regions.filter((region) => !this.isSick(region, now));
    if (healthy.length || !regions.length) return healthy;
    const until = (region) => this.marks.get(region).until;
    return [regions.reduce((best, region) => (until(region) < until(best) ? region : best))];
  }
}
