// Server-sent events read with fetch (not EventSource), so a request carries the panel's bearer
// session (EventSource sends no headers), a 404 can be told from a dropped connection, and
// reconnection is ours. No cookie is sent.

export interface SseMessage {
  event: string;
  data: string;
}

/** An incremental parser of the `text/event-stream` format. */
export class SseParser {
  private buf = '';
  private event = '';
  private data: string[] = [];

  /** Feed a chunk of text; returns the messages it completed. */
  push(chunk: string): SseMessage[] {
    this.buf += chunk;
    const out: SseMessage[] = [];
    let start = 0;
    for (;;) {
      let nl = -1;
      let skip = 1;
      for (let i = start; i < this.buf.length; i++) {
        const c = this.buf.charCodeAt(i);
        if (c === 10) {
          nl = i;
          break;
        }
        if (c === 13) {
          if (i + 1 >= this.buf.length) break; // wait: CR LF may be split
          nl = i;
          skip = this.buf.charCodeAt(i + 1) === 10 ? 2 : 1;
          break;
        }
      }
      if (nl < 0) break;
      const line = this.buf.slice(start, nl);
      start = nl + skip;
      if (line === '') {
        if (this.data.length) out.push({ event: this.event || 'message', data: this.data.join('\n') });
        this.event = '';
        this.data = [];
        continue;
      }
      if (line.startsWith(':')) continue;
      const colon = line.indexOf(':');
      const field = colon < 0 ? line : line.slice(0, colon);
      let value = colon < 0 ? '' : line.slice(colon + 1);
      if (value.startsWith(' ')) value = value.slice(1);
      if (field === 'event') this.event = value;
      else if (field === 'data') this.data.push(value);
    }
    this.buf = this.buf.slice(start);
    return out;
  }
}

export interface StreamHandle {
  close(): void;
}

export interface StreamOptions {
  /** Sent with each (re)connection; a function is asked each time (a session may change). */
  headers?: Record<string, string> | (() => Record<string, string>);
  onMessage(msgs: SseMessage[]): void;
  /** Called each time the stream is (re)connected. */
  onOpen?(): void;
  /** Called when the connection drops or fails; `status` is the HTTP status if there was one. */
  onError?(status: number | null, message: string): void;
  /** Called with 404 (the route does not exist here): the stream then stops for good. */
  onMissing?(): void;
  /** Reconnect delays grow to this (ms). */
  maxDelay?: number;
}

/** Follow an SSE URL, reconnecting with backoff until closed. */
export function followStream(url: string, opts: StreamOptions): StreamHandle {
  let closed = false;
  let ctrl: AbortController | null = null;
  let delay = 250;
  const maxDelay = opts.maxDelay ?? 5000;
  const run = async () => {
    while (!closed) {
      ctrl = new AbortController();
      let status: number | null = null;
      try {
        const resp = await fetch(url, {
          headers: { Accept: 'text/event-stream', ...(typeof opts.headers === 'function' ? opts.headers() : (opts.headers ?? {})) },
          credentials: 'omit',
          signal: ctrl.signal,
          cache: 'no-store',
        });
        status = resp.status;
        if (resp.status === 404) {
          opts.onMissing?.();
          return;
        }
        if (!resp.ok || !resp.body) throw new Error(`HTTP ${resp.status}`);
        delay = 250;
        opts.onOpen?.();
        const reader = resp.body.pipeThrough(new TextDecoderStream()).getReader();
        const parser = new SseParser();
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          const msgs = parser.push(value);
          if (msgs.length) opts.onMessage(msgs);
        }
        if (!closed) opts.onError?.(null, 'the stream ended');
      } catch (e) {
        if (closed) return;
        opts.onError?.(status, (e as Error).message);
      }
      if (closed) return;
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(maxDelay, delay * 2);
    }
  };
  void run();
  return {
    close() {
      closed = true;
      ctrl?.abort();
    },
  };
}
