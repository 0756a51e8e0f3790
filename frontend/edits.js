// Edits and deletes (docs/api.md, "Editing and deleting"): the order of a message's states, which
// the page applies to every copy it is given (live frames from any region, history pages, HTTP
// replies), so that it ends showing what every region's table ends holding.

/** Compare two strings by Unicode code point (the servers' and DynamoDB's order), not by UTF-16
 * unit as `<` does: the two disagree past U+FFFF. Negative, 0 or positive. */
export function compareCodePoints(a, b) {
  const left = [...a];
  const right = [...b];
  for (let i = 0; i < Math.min(left.length, right.length); i += 1) {
    const difference = left[i].codePointAt(0) - right[i].codePointAt(0);
    if (difference !== 0) return difference;
  }
  return left.length - right.length;
}

/** Whether state `a` replaces state `b` of one message: a deleted state outranks every other and
 * is final; then the higher version, the later `editedAt`, the greater text. */
export function outranks(a, b) {
  if (Boolean(a.deleted) !== Boolean(b.deleted)) return Boolean(a.deleted);
  if ((a.version ?? 1) !== (b.version ?? 1)) return (a.version ?? 1) > (b.version ?? 1);
  const editedA = a.editedAt ?? "";
  const editedB = b.editedAt ?? "";
  if (editedA !== editedB) return editedA > editedB;
  return compareCodePoints(a.text ?? "", b.text ?? "") > 0;
}

/** Whether a stored state shows our outbox item done: a send once stored at all, an edit once
 * its text is stored (or the message is deleted: nothing left to edit), a delete once deleted. */
export function settles(state, item) {
  if (item.action === "editMessage") return Boolean(state.deleted) || state.text === item.text;
  if (item.action === "deleteMessage") return Boolean(state.deleted);
  return true;
}
