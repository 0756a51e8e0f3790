// resilient-chat's browser client, the page: config, the simulated-location control, the join
// form and the compose box. A room's chat (outbox, message list, catch-up) is chat.js; the
// WebSocket's life (routing, backoff, heartbeat, leaving a failing region) connection.js, judged by
// judge.js; the session (sign-in, renewal, sign-in again on a 401) session.js; the DOM ui.js; the
// HTTP API api.js.

import { ApiError } from "./api.js";
import { Chat } from "./chat.js";
import { Session } from "./session.js";
import { ui } from "./ui.js";

const MAX_AUTHOR_CHARS = 40;
const ROOM_PATTERN = /^[a-z0-9-]{1,64}$/;
const LOCATION_COOKIE = "rc-location";

function setLocationCookie(location) {
  document.cookie = `${LOCATION_COOKIE}=${encodeURIComponent(location)}; path=/; max-age=31536000; SameSite=Lax`;
}

/**
 * The front door routes a WebSocket by its `location` query parameter, so each window keeps its own
 * simulated location (sessionStorage) and two windows of one browser can chat from two regions.
 * HTTP calls to the routed name go by the cookie: the location last chosen in this browser.
 */
function routeFrom(config, location) {
  const url = new URL(config.websocketUrl);
  url.searchParams.set("location", location);
  config.websocketUrl = url.toString();
}

function setUpLocalControls(config, chat) {
  if (!config.local) return;
  document.querySelector("#local-controls").hidden = false;
  const select = document.querySelector("#location");
  // Each location with the region it is nearest to: any region the stack runs can be picked.
  for (const location of config.locations ?? []) {
    const near = config.nearestRegion?.[location];
    select.append(new Option(near && near !== location ? `${location} (${near})` : location, location));
  }
  select.value = sessionStorage.getItem(LOCATION_COOKIE) ?? config.location;
  routeFrom(config, select.value);
  select.addEventListener("change", () => {
    sessionStorage.setItem(LOCATION_COOKIE, select.value);
    setLocationCookie(select.value);
    routeFrom(config, select.value);
    ui.log(`simulated location: ${select.value}`);
    chat.current?.setLocation(select.value);
  });
  const status = document.querySelector("#status-link");
  status.href = config.statusUrl;
}

function validateJoin(author, room) {
  if (!author || [...author].length > MAX_AUTHOR_CHARS) return `Your name: 1 to ${MAX_AUTHOR_CHARS} characters.`;
  if (!ROOM_PATTERN.test(room)) return "Room: 1 to 64 characters of a-z, 0-9 and '-'.";
  return "";
}

function setUpJoin(config, chat) {
  const form = document.querySelector("#join");
  const name = document.querySelector("#join-name");
  const room = document.querySelector("#join-room");
  name.value = localStorage.getItem("rc-name") ?? "";
  room.value = new URLSearchParams(location.search).get("room") ?? localStorage.getItem("rc-room") ?? "lobby";
  const error = document.querySelector("#join-error");
  const session = new Session(config, {
    onLog: (text) => ui.log(text),
    onChange: (current) => ui.setUser(current.user),
  });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (form.dataset.busy) return;
    // The server keeps names NFKC-normalised: so does the comparison with the kept session's.
    const author = name.value.trim().normalize("NFKC");
    const roomName = room.value.trim().toLowerCase();
    const problem = validateJoin(author, roomName);
    error.textContent = problem;
    if (problem) return;
    form.dataset.busy = "true";
    try {
      await session.join(author);
    } catch (failure) {
      // A name the server refuses (invisible or control characters...), or no region answered.
      error.textContent =
        failure instanceof ApiError && !failure.retriable
          ? `${failure.message} (${failure.code})`
          : "Cannot sign in: no region answers. Try again in a moment.";
      return;
    } finally {
      delete form.dataset.busy;
    }
    localStorage.setItem("rc-name", author);
    localStorage.setItem("rc-room", roomName);
    ui.showChat(roomName, session.current.user);
    chat.current = new Chat(config, roomName, session);
    chat.current.start();
  });
  // Sign-out ends the session in every region (DELETE /session); a reload closes the chat's socket
  // and shows the join form again.
  document.querySelector("#sign-out").addEventListener("click", async () => {
    await session.signOut();
    location.reload();
  });
  (name.value ? room : name).focus();
}

function setUpCompose(chat) {
  const form = document.querySelector("#compose");
  const text = document.querySelector("#compose-text");
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const problem = chat.current.send(text.value);
    ui.showComposeError(problem);
    if (!problem) text.value = "";
    text.focus();
  });
  // Typing tells the room (chat.js sends at most one frame per 2 s); clearing the box does not.
  text.addEventListener("input", () => {
    if (text.value.trim()) chat.current?.typing();
  });
  text.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      form.requestSubmit();
    }
  });
}

async function main() {
  let config;
  try {
    const response = await fetch("config.json", { cache: "no-store" });
    config = await response.json();
  } catch (error) {
    document.querySelector("#join-error").textContent = `Cannot load config.json (${error.message}).`;
    return;
  }
  const chat = { current: null };
  setUpLocalControls(config, chat);
  setUpJoin(config, chat);
  setUpCompose(chat);
  ui.onChange = (id, text) => chat.current?.change(id, text) ?? "";
  ui.setConnection("not connected", "");
  document.body.dataset.ready = "true";
}

main();
