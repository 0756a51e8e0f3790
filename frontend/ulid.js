// ULIDs (https://github.com/ulid/spec): 26 Crockford base32 characters, a 48-bit millisecond time
// then 80 random bits. The client makes one per message and keeps it across every retry, in every
// region, so a retry can only ever converge to the one stored message.

const ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
const TIME_CHARS = 10;
const RANDOM_CHARS = 16;

function encodeTime(ms) {
  let chars = "";
  let rest = Math.floor(ms);
  for (let i = 0; i < TIME_CHARS; i += 1) {
    chars = ALPHABET[rest % 32] + chars;
    rest = Math.floor(rest / 32);
  }
  return chars;
}

function encodeRandom() {
  const bytes = crypto.getRandomValues(new Uint8Array(10));
  let bits = 0n;
  for (const byte of bytes) bits = (bits << 8n) | BigInt(byte);
  let chars = "";
  for (let i = 0; i < RANDOM_CHARS; i += 1) {
    chars = ALPHABET[Number(bits & 31n)] + chars;
    bits >>= 5n;
  }
  return chars;
}

/** A new ULID for `ms` (now by default). */
export function ulid(ms = Date.now()) {
  return encodeTime(ms) + encodeRandom();
}

/** The smallest ULID of a millisecond: `?after=lowestUlid(t)` reads history from time t on. */
export function lowestUlid(ms) {
  return encodeTime(Math.max(0, ms)) + "0".repeat(RANDOM_CHARS);
}

/** The millisecond time a ULID was made. */
export function ulidTime(id) {
  let ms = 0;
  for (const char of id.slice(0, TIME_CHARS)) ms = ms * 32 + ALPHABET.indexOf(char);
  return ms;
}
