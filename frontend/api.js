// The HTTP API of BRIEF section 3 and docs/api.md, with timeouts: a region that stops answering must
// not hang us. The rooms' routes carry the session as `Authorization: Bearer <token>`.

const PROBE_TIMEOUT_MS = 1500;
const REQUEST_TIMEOUT_MS = 5000;
const PAGE_LIMIT = 100;
const MAX_PAGES = 50; // 5,000 messages: a catch-up bigger than that is a reload, not a catch-up

/** An HTTP error that says whether trying again (here or elsewhere) can help. */
export class ApiError extends Error {
  constructor(message, { status = 0, code = "unreachable", retriable = true, retryAfterMs = 0 } = {}) {
    super(message);
    this.status = status;
    this.code = code;
    this.retriable = retriable;
    this.retryAfterMs = retryAfterMs; // rate_limited: when the same request will be accepted
  }
}

/** Where to send an HTTP call: `preferred` (the region we are connected to), the routed name, then
 * each region's own endpoint (they allow this page's origin by CORS). */
export function httpBases(config, preferred) {
  const bases = [preferred, config.apiUrl, ...Object.values(config.regions ?? {}).map((r) => r.httpUrl)];
  return [...new Set(bases.filter(Boolean))];
}

function bearer(token) {
  return token ? { Authorization: `Bearer ${token}` } : {};
}

async function request(url, options = {}, timeoutMs = REQUEST_TIMEOUT_MS) {
  let response;
  try {
    response = await fetch(url, { cache: "no-store", ...options, signal: AbortSignal.timeout(timeoutMs) });
  } catch (error) {
    throw new ApiError(`${new URL(url).host} did not answer (${error.name})`);
  }
  let body = null;
  try {
    body = await response.json();
  } catch {
    body = null;
  }
  // The front door (or a region's custom domain) says which region served the request.
  const region = response.headers.get("X-Routed-Region") || body?.region || null;
  if (!response.ok) {
    const code = body?.error?.code ?? `http_${response.status}`;
    const message = body?.error?.message ?? `HTTP ${response.status}`;
    // 4xx: our input (or our session: 401) is wrong and stays wrong; 5xx and 429: try again.
    const retriable = response.status >= 500 || response.status === 429;
    const retryAfterMs = body?.error?.retryAfterMs ?? Number(response.headers.get("Retry-After") ?? 0) * 1000;
    const error = new ApiError(message, { status: response.status, code, retriable, retryAfterMs });
    throw Object.assign(error, { region });
  }
  return { status: response.status, body, region };
}

/** GET /health: `{ok, region}`; never throws (a probe that fails is an answer too). */
export async function probeHealth(baseUrl) {
  try {
    const { body, region } = await request(`${baseUrl}/health`, {}, PROBE_TIMEOUT_MS);
    return { ok: body?.status === "ok", region: body?.region ?? region };
  } catch (error) {
    return { ok: false, region: error.region ?? null };
  }
}

/** Every message after `after`, oldest first, paging through `next`; and the region that served it. */
export async function fetchHistory(baseUrl, room, after, token) {
  const messages = [];
  let region = null;
  let cursor = after;
  for (let page = 0; page < MAX_PAGES; page += 1) {
    const query = new URLSearchParams({ limit: String(PAGE_LIMIT) });
    if (cursor) query.set("after", cursor);
    const result = await request(`${baseUrl}/rooms/${encodeURIComponent(room)}/messages?${query}`, {
      headers: bearer(token),
    });
    messages.push(...result.body.messages);
    region = result.body.region ?? result.region;
    cursor = result.body.next;
    if (!cursor) break;
  }
  return { messages, region };
}

/** GET /rooms/{room}/presence: `{count, members: [{id, name}], region}` (at most 100 members;
 * `count` is all of them). */
export async function fetchPresence(baseUrl, room, token) {
  const result = await request(`${baseUrl}/rooms/${encodeURIComponent(room)}/presence`, { headers: bearer(token) });
  return { ...result.body, region: result.body?.region ?? result.region };
}

/** POST one message: the stored message (201 new, 200 already stored: both are success). The
 * author is the session's: the server never reads one from the body. */
export async function postMessage(baseUrl, room, { id, text }, token) {
  const result = await request(`${baseUrl}/rooms/${encodeURIComponent(room)}/messages`, {
    method: "POST",
    headers: { "Content-Type": "application/json", ...bearer(token) },
    body: JSON.stringify({ id, text }),
  });
  return { message: result.body, region: result.region ?? result.body?.acceptedRegion ?? null };
}

/** PATCH (an edit, `text`) or DELETE one of our messages: the stored message after it (200). */
export async function changeMessage(baseUrl, room, { id, action, text }, token) {
  const edit = action === "editMessage";
  const result = await request(`${baseUrl}/rooms/${encodeURIComponent(room)}/messages/${encodeURIComponent(id)}`, {
    method: edit ? "PATCH" : "DELETE",
    headers: { "Content-Type": "application/json", ...bearer(token) },
    body: edit ? JSON.stringify({ text }) : undefined,
  });
  return { message: result.body, region: result.region ?? result.body?.acceptedRegion ?? null };
}

/** POST /session: `{name}` signs a guest in; with the current token, `{}` renews it (same user id).
 * `{token, user: {id, name}, expiresAt}`. */
export async function createSession(baseUrl, body, token) {
  const result = await request(`${baseUrl}/session`, {
    method: "POST",
    headers: { "Content-Type": "application/json", ...bearer(token) },
    body: JSON.stringify(body),
  });
  return result.body;
}
