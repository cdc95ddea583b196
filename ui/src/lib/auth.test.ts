import { describe, expect, it } from 'vitest';
import { takeLoginCode } from './api';
import { authHeader, exchangeCode, forgetSession, loginCodeOf, readSession, SESSION_KEY, type KeyStore } from './auth';

class Mem implements KeyStore {
  m = new Map<string, string>();
  getItem(k: string) {
    return this.m.get(k) ?? null;
  }
  setItem(k: string, v: string) {
    this.m.set(k, v);
  }
  removeItem(k: string) {
    this.m.delete(k);
  }
}

/** A fetch that answers once with `status` and `body`, and records what it was asked. */
function fakeFetch(status: number, body: unknown) {
  const asked: Array<{ url: string; init: RequestInit }> = [];
  const f = (async (url: string, init: RequestInit) => {
    asked.push({ url, init });
    return new Response(JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json' } });
  }) as unknown as typeof fetch;
  return { f, asked };
}

describe('the panel login', () => {
  it('reads a login code only from a login link', () => {
    expect(loginCodeOf({ pathname: '/login', search: '?code=abc' })).toBe('abc');
    expect(loginCodeOf({ pathname: '/login', search: '' })).toBeNull();
    expect(loginCodeOf({ pathname: '/', search: '?code=abc' })).toBeNull();
  });

  it('trades the code for a session kept in the origin storage, sent as a bearer, never a cookie', async () => {
    const store = new Mem();
    const { f, asked } = fakeFetch(200, { session: 's3cret', expires_in_seconds: 60 });
    expect(await exchangeCode('c0de', store, 'http://127.0.0.1:9', f)).toEqual({ ok: true });
    expect(asked).toHaveLength(1);
    expect(asked[0].url).toBe('http://127.0.0.1:9/login');
    expect(asked[0].init.method).toBe('POST');
    expect(asked[0].init.credentials).toBe('omit');
    expect(JSON.parse(String(asked[0].init.body))).toEqual({ code: 'c0de' });
    expect(store.getItem(SESSION_KEY)).toBe('s3cret');
    expect(authHeader(readSession(store))).toEqual({ Authorization: 'Bearer s3cret' });
    forgetSession(store);
    expect(authHeader(readSession(store))).toEqual({});
  });

  it("says why a used code does not log in, and keeps what was there", async () => {
    const store = new Mem();
    store.setItem(SESSION_KEY, 'old');
    const { f } = fakeFetch(403, { error: { code: 'forbidden', message: 'this login link cannot be used: it was already used' } });
    const out = await exchangeCode('used', store, '', f);
    expect(out).toEqual({ ok: false, message: 'this login link cannot be used: it was already used' });
    expect(store.getItem(SESSION_KEY)).toBe('old');
  });

  it('takes the code out of the address bar before the router sees it, keeping the route', () => {
    const replaced: string[] = [];
    const hist = { replaceState: (_d: unknown, _t: string, url?: string | URL | null) => void replaced.push(String(url)) };
    const link = { pathname: '/login', search: '?code=abc', hash: '#/logs/shop?bare' };
    expect(takeLoginCode(link, hist)).toBe('abc');
    expect(replaced).toEqual(['/#/logs/shop?bare']);
    expect(takeLoginCode({ pathname: '/', search: '?code=abc', hash: '' }, hist)).toBeNull();
    expect(replaced).toHaveLength(1);
  });

  it('a page with no storage has no session', () => {
    expect(readSession(null)).toBeNull();
    const throwing = { getItem: () => { throw new Error('denied'); }, setItem() {}, removeItem() {} };
    expect(readSession(throwing)).toBeNull();
  });
});
