// Injected by Hangar's desktop shell into its windows. On the engine's control panel (served on
// the API origin), a click on a log link opens the app's own log window (one per app, reused)
// instead of replacing the control panel. Pages built into the shell are left alone.
(() => {
  if (location.protocol !== 'http:') return;
  const LOGS = /^#\/logs\/([^?/]+)/;
  document.addEventListener('click', (e) => {
    if (e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
    if (/[?&]bare\b/.test(location.hash)) return; // already a log window
    const a = e.target instanceof Element ? e.target.closest('a[href^="#/logs/"]') : null;
    const m = a && LOGS.exec(a.getAttribute('href') || '');
    const tauri = window.__TAURI__;
    if (!m || !tauri) return;
    e.preventDefault();
    e.stopImmediatePropagation();
    let name = m[1];
    try { name = decodeURIComponent(name); } catch (_) { /* keep it as written */ }
    tauri.core.invoke('open_logs', { name }).catch((err) => console.error('open_logs', err));
  }, true);
})();
