// Everything that touches the DOM. Message data only ever goes through textContent or attributes
// that are never interpreted (data-*, datetime): a message is text, never markup.

const $ = (selector) => document.querySelector(selector);

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function clock(ms) {
  return new Date(ms).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
}

export const ui = {
  /** Set by the page: `change(id, text)` edits (text) or deletes (null) one of our messages;
   * returns a problem to show, or "". */
  onChange: () => "",

  showChat(room, user) {
    $("#join").hidden = true;
    $("#chat").hidden = false;
    $("#room-name").textContent = room;
    this.setUser(user);
    $("#compose-text").focus();
  },

  /** Who this page is signed in as: the name, its tag and kind, as every reader sees them. */
  setUser(user) {
    $("#me").textContent = user.name;
    $("#me").title = user.id;
    $("#me").dataset.userId = user.id;
    showWho($("#me-who"), user.tag, user.kind);
  },

  /** "connected: eu-west-2 (failover)"; "leaving us-east-1: its backend is failing; ...". */
  setConnection(state, detail) {
    const node = $("#connection");
    node.dataset.state = state;
    const separator = state === "leaving" ? " " : ": ";
    node.textContent = detail ? `${state}${separator}${detail}` : state;
  },

  setRegion(region, via) {
    const node = $("#region");
    node.textContent = region ? `${region}${via === "direct" ? " (direct)" : ""}` : "none";
    node.dataset.region = region ?? "";
  },

  setOutboxCount(count) {
    $("#outbox-count").textContent = String(count);
  },

  log(text) {
    const list = $("#log");
    const item = el("li");
    const now = Date.now();
    const time = el("time", null, clock(now));
    time.dateTime = new Date(now).toISOString();
    item.append(time, " ", text);
    list.prepend(item);
    while (list.children.length > 100) list.lastElementChild.remove();
    $("#log-count").textContent = String(list.children.length);
  },

  showComposeError(text) {
    $("#compose-error").textContent = text;
  },

  /**
   * Draw (or redraw) one message. `view`: {key, id, authorId, author, authorTag, authorKind, text, time (ms),
   * acceptedRegion, delivered, transport, state: pending | accepted | delivered | failed, problem,
   * version, editedAt, deleted, change (a note while our edit or delete is on its way)}.
   * One element per key (id and author's user id), kept in id (= time) order, whatever order the
   * copies arrive in. `isMine`: written by this browser's user, known by user id, not by name;
   * `changeable`: ours to edit and delete (stored, not deleted, under our current user id).
   */
  renderMessage(view, isMine, changeable = false) {
    const list = $("#messages");
    let item = list.querySelector(`li[data-key="${CSS.escape(view.key)}"]`);
    if (!item) {
      item = el("li", "message");
      item.dataset.key = view.key;
      item.dataset.id = view.id;
      const head = el("p", "head");
      const who = el("span", "who");
      who.append(el("span", "author"), " ", el("span", "tag"), " ", el("span", "kind"));
      head.append(who, " ", el("time", "time"), " ", el("span", "edited"), " ", el("span", "change"));
      const route = el("p", "route");
      route.append(
        el("span", "accepted"),
        " · ",
        el("span", "delivered"),
        " · ",
        el("span", "transport"),
      );
      item.append(head, el("p", "text"), actions(item), route, el("p", "problem"));
      // Nearly always the newest: check the end first, and only search when a late copy arrives.
      const last = list.lastElementChild;
      const later = !last || last.dataset.key < view.key ? null : [...list.children].find((other) => other.dataset.key > view.key);
      list.insertBefore(item, later ?? null);
      if (!later) item.scrollIntoView({ block: "nearest" });
    }
    item.dataset.state = view.state;
    item.dataset.authorId = view.authorId;
    item.classList.toggle("mine", isMine);
    item.querySelector(".author").textContent = view.author;
    item.querySelector(".author").title = view.authorId;
    // Two people may share a name, or names that look alike: the tag (from the user id) and the
    // kind (guest or signed-in account) tell them apart at a glance.
    showWho(item.querySelector(".who"), view.authorTag, view.authorKind);
    const time = item.querySelector(".time");
    time.textContent = clock(view.time);
    time.dateTime = new Date(view.time).toISOString();
    // A deleted message has no text anywhere: the list says so instead.
    item.dataset.deleted = view.deleted ? "true" : "false";
    item.querySelector(".text").textContent = view.deleted ? "This message was deleted." : view.text;
    const edited = item.querySelector(".edited");
    edited.textContent = view.deleted ? "deleted" : view.editedAt ? "edited" : "";
    edited.title = view.editedAt ? `edited at ${new Date(view.editedAt).toLocaleString()}` : "";
    item.querySelector(".change").textContent = view.change ?? "";
    item.dataset.version = String(view.version ?? "");
    item.querySelector(".actions").hidden = !changeable;
    if (!changeable) item.querySelector(".editor")?.remove();
    item.querySelector(".accepted").textContent = `accepted: ${view.acceptedRegion ?? "…"}`;
    item.querySelector(".delivered").textContent = `delivered: ${view.delivered ?? stateLabel(view.state)}`;
    item.querySelector(".transport").textContent = view.transport ?? "…";
    item.querySelector(".problem").textContent = view.problem ?? "";
  },

  /**
   * The room's members ([{id, name}], at most 100) and the server's count of them (null: not known
   * yet). `isMine(id)`: one of this browser's user ids. Names are text, like every message's.
   */
  showMembers(count, members, isMine) {
    $("#presence-count").textContent = count === null ? "…" : String(count);
    const items = members.map(({ id, name }) => {
      const item = el("li", "member", name);
      item.dataset.userId = id;
      item.title = id;
      item.classList.toggle("mine", isMine(id));
      return item;
    });
    if (count !== null && count > members.length) items.push(el("li", "more", `and ${count - members.length} more`));
    $("#members").replaceChildren(...items);
  },

  /** "Ada is typing…", or "" when nobody is. */
  showTyping(text) {
    const node = $("#typing");
    if (node.textContent !== text) node.textContent = text;
  },

  /** An entry replaced by another key (our pending message, stored under a newer user id). */
  removeMessage(key) {
    $("#messages").querySelector(`li[data-key="${CSS.escape(key)}"]`)?.remove();
  },
};

/** The Edit and Delete buttons of one of our messages (shown only while it is ours to change). */
function actions(item) {
  const bar = el("p", "actions");
  bar.hidden = true;
  const edit = el("button", "edit", "Edit");
  edit.type = "button";
  edit.setAttribute("aria-label", "Edit this message");
  edit.addEventListener("click", () => openEditor(item, edit));
  const remove = el("button", "delete", "Delete");
  remove.type = "button";
  remove.setAttribute("aria-label", "Delete this message");
  remove.addEventListener("click", () => {
    item.querySelector(".problem").textContent = ui.onChange(item.dataset.id, null);
  });
  bar.append(edit, " ", remove);
  return bar;
}

/** An editor under the message's text: Enter (or Save) saves, Escape (or Cancel) closes it. */
function openEditor(item, opener) {
  item.querySelector(".editor")?.remove();
  const form = el("form", "editor");
  const box = el("textarea");
  box.rows = 2;
  box.maxLength = 4000;
  box.setAttribute("aria-label", "Edited message");
  box.value = item.querySelector(".text").textContent;
  const save = el("button", null, "Save");
  save.type = "submit";
  const cancel = el("button", null, "Cancel");
  cancel.type = "button";
  const close = () => {
    form.remove();
    opener.focus();
  };
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const problem = ui.onChange(item.dataset.id, box.value);
    item.querySelector(".problem").textContent = problem;
    if (!problem) close();
  });
  box.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      form.requestSubmit();
    } else if (event.key === "Escape") {
      close();
    }
  });
  cancel.addEventListener("click", close);
  form.append(box, " ", save, " ", cancel);
  item.querySelector(".actions").after(form);
  box.focus();
}

/** A name's tag ("#k3f9") and kind ("guest" / "account") into `who`'s .tag and .kind. */
function showWho(who, tag, kind) {
  const tagNode = who.querySelector(".tag");
  tagNode.textContent = tag ? `#${tag}` : "";
  tagNode.title = tag ? "the tag of this user's id: two people of one name have different tags" : "";
  const kindNode = who.querySelector(".kind");
  kindNode.textContent = kind === "account" ? "account" : kind === "guest" ? "guest" : "";
  kindNode.title = kind === "account" ? "signed in with an account" : kind === "guest" ? "a guest: anyone can pick this name" : "";
  who.dataset.kind = kind ?? "";
}

function stateLabel(state) {
  return { pending: "waiting in outbox", accepted: "stored, awaiting delivery", failed: "not sent" }[state] ?? "…";
}
