// Hash routes, so every page (the log viewer above all) has its own URL that a new window or the
// desktop shell can open: #/, #/new, #/apps/NAME, #/apps/NAME/edit, #/logs/NAME.
// A path form (/logs/NAME) is turned into the hash form on load; the engine serves index.html
// for such paths.

export type Route =
  | { page: 'apps' }
  | { page: 'new' }
  | { page: 'detail'; name: string }
  | { page: 'edit'; name: string }
  | { page: 'logs'; name: string }
  | { page: 'notfound'; path: string };

export function parseRoute(hash: string): Route {
  const raw = hash.replace(/^#/, '').split('?')[0] || '/';
  const parts = raw.split('/').filter(Boolean).map((p) => {
    try {
      return decodeURIComponent(p);
    } catch {
      return p;
    }
  });
  if (parts.length === 0 || (parts.length === 1 && parts[0] === 'apps')) return { page: 'apps' };
  if (parts.length === 1 && parts[0] === 'new') return { page: 'new' };
  if (parts[0] === 'apps' && parts.length === 2) return { page: 'detail', name: parts[1] };
  if (parts[0] === 'apps' && parts.length === 3 && parts[2] === 'edit') return { page: 'edit', name: parts[1] };
  if (parts[0] === 'logs' && parts.length === 2) return { page: 'logs', name: parts[1] };
  return { page: 'notfound', path: raw };
}

export function href(r: Route): string {
  switch (r.page) {
    case 'apps':
      return '#/';
    case 'new':
      return '#/new';
    case 'detail':
      return `#/apps/${encodeURIComponent(r.name)}`;
    case 'edit':
      return `#/apps/${encodeURIComponent(r.name)}/edit`;
    case 'logs':
      return `#/logs/${encodeURIComponent(r.name)}`;
    default:
      return '#/';
  }
}

class Router {
  route = $state<Route>({ page: 'apps' });
  /** `?bare` in the hash: no top bar (a separate log window). */
  bare = $state(false);
  start() {
    if (!location.hash && location.pathname !== '/' && !location.pathname.endsWith('/index.html')) {
      history.replaceState(null, '', `/#${location.pathname}${location.search}`);
    }
    const update = () => {
      this.route = parseRoute(location.hash);
      this.bare = /[?&]bare\b/.test(location.hash);
    };
    window.addEventListener('hashchange', update);
    update();
  }
  go(r: Route) {
    location.hash = href(r);
  }
}

export const router = new Router();
