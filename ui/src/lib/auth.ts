// The control panel's login. A login link (`hangar open`, `hangar serve`, the desktop shell) is
// `/login?code=…`: the page POSTs the one-time code to `/login` and gets a panel session, which
// it keeps in this origin's own localStorage and sends as `Authorization: Bearer`. No cookie
// holds a credential: cookies ignore ports, so every app on 127.0.0.1 would be sent one, while
// an origin's storage is that origin's alone (another port is another origin).

/** Where the session is kept, in the API origin's localStorage. */
export const SESSION_KEY = 'hangar.session';

/** The part of `Storage` the session needs (a fake in tests). */
export interface KeyStore {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
  removeItem(key: string): void;
}

/** This page's localStorage, or none (a page that may not use it: then no session survives). */
export function pageStorage(): KeyStore | null {
  try {
    return (globalThis as unknown as { localStorage?: KeyStore }).localStorage ?? null;
  } catch {
    return null;
  }
}

export const readSession = (s: KeyStore | null): string | null => {
  try {
    return s?.getItem(SESSION_KEY) || null;
  } catch {
    return null;
  }
};

export const forgetSession = (s: KeyStore | null) => {
  try {
    s?.removeItem(SESSION_KEY);
  } catch {
    /* nothing kept */
  }
};

/** The header a request carries: the session as a bearer, or nothing. */
export const authHeader = (session: string | null): Record<string, string> =>
  session ? { Authorization: `Bearer ${session}` } : {};

/** The login code of a login link (`/login?code=…`), or null for any other page. */
export function loginCodeOf(loc: { pathname: string; search: string }): string | null {
  if (loc.pathname !== '/login') return null;
  return new URLSearchParams(loc.search).get('code') || null;
}

/** What a failed exchange says; `null`: logged in. */
export type LoginOutcome = { ok: true } | { ok: false; message: string };

/** Trade a login code for a session at `${origin}/login` and keep it in `store`. */
export async function exchangeCode(
  code: string,
  store: KeyStore | null,
  origin = '',
  fetchImpl: typeof fetch = fetch,
): Promise<LoginOutcome> {
  let resp: Response;
  try {
    resp = await fetchImpl(`${origin}/login`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ code }),
      credentials: 'omit',
      cache: 'no-store',
    });
  } catch (e) {
    return { ok: false, message: `cannot reach the engine: ${(e as Error).message}` };
  }
  let json: { session?: string; error?: { message?: string } } | null = null;
  try {
    json = await resp.json();
  } catch {
    /* not JSON */
  }
  if (!resp.ok || !json?.session) {
    return { ok: false, message: json?.error?.message ?? `the login failed (HTTP ${resp.status})` };
  }
  try {
    store?.setItem(SESSION_KEY, json.session);
  } catch (e) {
    return { ok: false, message: `this browser keeps no session for the panel (${(e as Error).message})` };
  }
  return { ok: true };
}
