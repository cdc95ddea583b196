// Hangar's launcher of one NocoBase instance as one process (the `nocobase` preset).
// It is a word of the preset's command, where Hangar expands dollar-brace variables: no template
// literals here (a unit test of src/base/config.rs checks it).
// Run in the NocoBase app folder: `node --preserve-symlinks -e <this file> start|upgrade`
// (or `node --preserve-symlinks <this file> start|upgrade`); other NocoBase commands pass through.
// 1. NocoBase's own CLI set-up (cli-v1 initEnv: the app folder's .env, defaults, and the API,
//    WebSocket and plugin-statics paths prefixed by APP_PUBLIC_PATH), but the shared
//    node_modules/@nocobase/app/dist/client/index.html is left alone;
// 2. a package root of this instance under STORAGE_PATH: dist/client hard-linked (the static
//    server does not follow symlinks) with its own index.html rendered for its prefix, so two
//    instances with different prefixes on one code tree never overwrite each other's page;
// 3. a gateway socket left by a killed run removed (two live runs never share a STORAGE_PATH);
// 4. `start` on an instance never installed (no STORAGE_PATH/.hangar-installed) is
//    `start --quickstart`: it installs into the empty database or schema (an installed one, such
//    as an imported app's, is upgraded instead), and the mark is written once the health path
//    answers `ok`; every later start is a plain start (upgrades are Hangar's `upgrade` step,
//    when @nocobase/app's version moved);
// 5. Hangar's DB_DIALECT=mysql on a MariaDB server (SELECT VERSION()) becomes NocoBase's own
//    `mariadb` dialect;
// 6. the server entry point run in this process (no yarn, sh or pm2 wrappers).
const path = require('path');
const fs = require('fs');
const req = require('module').createRequire(path.join(process.cwd(), 'package.json'));
const util = req('@nocobase/cli-v1/src/util');
process.env.NOCOBASE_EXTRACT_CLIENT_ASSETS = 'true'; // leave the shared index.html alone
util.initEnv();
delete process.env.NOCOBASE_EXTRACT_CLIENT_ASSETS;
const shared = path.dirname(req.resolve('@nocobase/app/package.json'));
const version = req('@nocobase/app/package.json').version;
const own = path.join(process.env.STORAGE_PATH, 'app-package');
const mark = path.join(own, '.version');
if (!fs.existsSync(mark) || fs.readFileSync(mark, 'utf8') !== version) {
  fs.rmSync(own, { recursive: true, force: true });
  const copy = (from, to) => {
    fs.mkdirSync(to, { recursive: true });
    for (const e of fs.readdirSync(from, { withFileTypes: true })) {
      const a = path.join(from, e.name), b = path.join(to, e.name);
      if (e.isDirectory()) copy(a, b);
      else if (!e.name.startsWith('index.html')) {
        try {
          fs.linkSync(a, b);
        } catch (err) {
          if (err.code !== 'EXDEV') throw err;
          fs.copyFileSync(a, b); // another file system: a copy
        }
      }
    }
  };
  copy(path.join(shared, 'dist', 'client'), path.join(own, 'dist', 'client'));
  const tpl = path.join(shared, 'dist', 'client', 'index.html.tpl');
  const src = fs.existsSync(tpl) ? tpl : path.join(shared, 'dist', 'client', 'index.html');
  fs.copyFileSync(src, path.join(own, 'dist', 'client', 'index.html.tpl'));
  fs.copyFileSync(src, path.join(own, 'dist', 'client', 'index.html'));
  fs.writeFileSync(mark, version);
}
process.env.APP_PACKAGE_ROOT = own;
const socket = process.env.SOCKET_PATH
  ? path.resolve(process.cwd(), process.env.SOCKET_PATH)
  : path.join(process.env.STORAGE_PATH, 'gateway.sock');
fs.rmSync(socket, { force: true });
util.buildIndexHtml();
// Hangar says `mysql` for MySQL and MariaDB alike; NocoBase has a dialect for each.
async function mariadbOrMysql() {
  if (process.env.DB_DIALECT !== 'mysql') return;
  let conn;
  try {
    conn = await req('mysql2/promise').createConnection({
      host: process.env.DB_HOST,
      port: Number(process.env.DB_PORT || 3306),
      user: process.env.DB_USER,
      password: process.env.DB_PASSWORD,
      database: process.env.DB_DATABASE,
    });
    const [rows] = await conn.query('SELECT VERSION() AS v');
    if (/mariadb/i.test(String(rows[0].v))) process.env.DB_DIALECT = 'mariadb';
  } catch (err) {
    console.error('hangar: cannot tell MySQL from MariaDB (' + err.message + "); NocoBase's mysql dialect is used");
  } finally {
    if (conn) await conn.end().catch(() => {});
  }
}

mariadbOrMysql().then(() => {
  const entry = req.resolve('@nocobase/app/lib/index.js');
  // Under -e there is no script in argv (and no require.main).
  const args = process.argv.slice(require.main ? 2 : 1);
  const installed = path.join(process.env.STORAGE_PATH, '.hangar-installed');
  if (args[0] === 'start' && !args.includes('--quickstart') && !fs.existsSync(installed)) {
    console.log('hangar: first start of this instance: start --quickstart (installs into an empty database)');
    args.push('--quickstart');
    const http = require('http');
    const url =
      'http://127.0.0.1:' + process.env.APP_PORT + process.env.API_BASE_PATH + '__health_check';
    const poll = setInterval(() => {
      http
        .get(url, (res) => {
          let body = '';
          res.setEncoding('utf8');
          res.on('data', (c) => (body += c.slice(0, 64)));
          res.on('end', () => {
            if (res.statusCode === 200 && body.trim() === 'ok' && !fs.existsSync(installed)) {
              fs.writeFileSync(installed, version);
              console.log('hangar: installed; later starts are plain starts');
              clearInterval(poll);
            }
          });
        })
        .on('error', () => {});
    }, 100);
    poll.unref();
  }
  process.argv = [process.argv[0], entry, ...args];
  req(entry);
});
