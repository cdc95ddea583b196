// The app-name rule, the same as src/base/validate.rs (docs/contracts.md): a lowercase letter followed by up
// to 39 lowercase letters, digits, '_' or '-'; "main" is reserved. Messages read like the engine's.

export const NAME_RULE =
  "a name is a lowercase letter followed by up to 39 lowercase letters, digits, '_' or '-'";
export const MAIN = 'main';

const lower = (c: string) => c >= 'a' && c <= 'z';
const digit = (c: string) => c >= '0' && c <= '9';

/** Rust's `{:?}` of a string, close enough for messages. */
const q = (s: string) => JSON.stringify(s);

/** null when the name is acceptable, else the reason and the rule. */
export function checkName(name: string): string | null {
  const bad = (why: string) => `${why}; ${NAME_RULE}`;
  if (name.length === 0) return bad('the name is empty');
  const chars = Array.from(name);
  if (!lower(chars[0])) return bad(`${q(name)} does not start with a lowercase letter`);
  // The engine counts bytes for the limit and characters for the message.
  if (new TextEncoder().encode(name).length > 40) return bad(`${q(name)} is ${chars.length} characters long`);
  const wrong = chars.slice(1).find((c) => !(lower(c) || digit(c) || c === '_' || c === '-'));
  if (wrong !== undefined) return bad(`${q(name)} contains '${wrong}'`);
  if (name === MAIN) return '"main" is reserved for the main app; choose another name';
  return null;
}

/** A fresh name in the style of NocoBase's multi-app manager: `a_` and six random lowercase letters or digits. */
export function generateName(random: () => number = Math.random): string {
  const alphabet = 'abcdefghijklmnopqrstuvwxyz0123456789';
  let s = 'a_';
  for (let i = 0; i < 6; i++) s += alphabet[Math.floor(random() * alphabet.length) % alphabet.length];
  return s;
}
