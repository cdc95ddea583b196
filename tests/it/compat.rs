//! The compatibility suite: ordinary programs, started confined by Landlock (the default) with
//! no `cwd`, `writable` or `confine` key added for them, run as they do outside Hangar — a
//! shell wrapper around a venv's python, `python3` as `PATH` finds it (a pyenv shim on the
//! test machine), a script in a user folder named in argv reading another user folder named
//! there, node through `sh -c`, programs that write under `HOME` (a real Jupyter Server from
//! PyPI, scripts/install-jupyter.sh) — while the same apps still cannot read the home's token,
//! registry.db, another app's data folder, nor the key stores of the user the engine runs as
//! (its `HOME` is a folder of the test's, with a `~/.ssh/id_rsa`).

use crate::common;

use std::path::{Path, PathBuf};

use common::*;

/// A probe app in Python: serves `/` with `ok`; `/read?path=` a file's bytes, `/write?path=`
/// writes a file, `/named` the note in the folder named by its first argument, `/home` its
/// HOME, `/abstract?path=` connects to that abstract Unix socket; a refusal is 403 with the
/// errno's name. At its start it makes `~/.local/share/x`,
/// as programs that keep settings under HOME do.
const PY_APP: &str = r#"import errno, http.server, os, socket, sys, urllib.parse
named = sys.argv[1]
os.makedirs(os.path.expanduser('~/.local/share/x'), exist_ok=True)
with open(os.path.expanduser('~/.local/share/x/started'), 'w') as f:
    f.write('yes')
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        u = urllib.parse.urlparse(self.path)
        p = urllib.parse.parse_qs(u.query).get('path', [''])[0]
        try:
            if u.path == '/':
                body = b'ok'
            elif u.path == '/read':
                with open(p, 'rb') as f:
                    body = f.read()
            elif u.path == '/write':
                with open(p, 'w') as f:
                    f.write('written')
                body = b'ok'
            elif u.path == '/named':
                with open(os.path.join(named, 'note.txt'), 'rb') as f:
                    body = f.read()
            elif u.path == '/home':
                body = os.path.expanduser('~').encode()
            elif u.path == '/abstract':
                s = socket.socket(socket.AF_UNIX)
                try:
                    s.connect('\0' + p)
                finally:
                    s.close()
                body = b'ok'
            else:
                self.send_response(404)
                self.end_headers()
                return
            self.send_response(200)
        except OSError as e:
            body = errno.errorcode.get(e.errno, str(e)).encode()
            self.send_response(403)
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
http.server.HTTPServer(('127.0.0.1', int(os.environ['PORT'])), H).serve_forever()
"#;

/// A node app that serves `/` with `node ok`.
const NODE_APP: &str = r#"require('http').createServer((q, s) => s.end('node ok'))
  .listen(Number(process.env.PORT), '127.0.0.1');
"#;

/// Python as the test's PATH finds it (the program itself, not a shim).
fn real_python() -> String {
    let out = std::process::Command::new("python3")
        .args(["-c", "import sys; print(sys.executable)"])
        .output()
        .expect("python3 is needed (scripts/install-deps.sh installs it)");
    assert!(out.status.success(), "python3 does not run");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A folder of the test outside /tmp (in the build's own temporary folder), as a user's
/// folders are: /tmp is writable to every app, which would prove nothing.
fn user_folder() -> tempfile::TempDir {
    tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("a folder in the build's tmp")
}

/// What the probe app `app` answers at `path`: (status, body).
fn ask(e: &TestEngine, app: &str, path: &str, file: Option<&Path>) -> (u16, String) {
    let mut req = e.http.get(e.proxy_url(&format!("/_app/{app}{path}")));
    if let Some(f) = file {
        req = req.query(&[("path", f.display().to_string())]);
    }
    let resp = req.send().expect("proxy request");
    (resp.status().as_u16(), resp.text().unwrap_or_default())
}

/// A runtime that strips the prefix and is ready at `/`.
fn runtime(name: &str, command: &[&str]) -> String {
    let words: Vec<String> = command.iter().map(|w| format!("{w:?}")).collect();
    format!(
        "[runtimes.{name}]\ncommand = [{}]\nhealth = \"/\"\nprefix = \"strip\"\n",
        words.join(", ")
    )
}

#[test]
fn ordinary_programs_run_confined_and_the_secrets_stay_out_of_reach() {
    // The user's folders: their HOME (with a key), their tools, their data.
    let user = user_folder();
    let me = user.path().join("me");
    let tools = user.path().join("tools");
    let data = user.path().join("data");
    for d in [me.join(".ssh"), tools.clone(), data.clone()] {
        std::fs::create_dir_all(d).unwrap();
    }
    std::fs::write(me.join(".ssh/id_rsa"), "PRIVATE KEY").unwrap();
    std::fs::write(tools.join("app.py"), PY_APP).unwrap();
    std::fs::write(tools.join("app.js"), NODE_APP).unwrap();
    std::fs::write(data.join("note.txt"), "a note of mine").unwrap();
    // A venv made the usual way; its python3 is a link to the interpreter elsewhere.
    let venv = user.path().join("venv");
    let made = std::process::Command::new(real_python())
        .args(["-m", "venv", "--without-pip"])
        .arg(&venv)
        .status()
        .expect("python3 -m venv");
    assert!(made.success());

    let serve = "-m http.server $PORT --bind 127.0.0.1";
    let toml = [
        runtime(
            "wrapped",
            &[
                "sh",
                "-c",
                &format!("exec {}/bin/python3 {serve}", venv.display()),
            ],
        ),
        runtime("onpath", &["sh", "-c", &format!("exec python3 {serve}")]),
        runtime(
            "node",
            &[
                "sh",
                "-c",
                &format!("exec node {}", tools.join("app.js").display()),
            ],
        ),
    ]
    .concat();
    let me_s = me.display().to_string();
    let e = TestEngine::start_with_env(&toml, &[("HOME", &me_s)]);
    for (name, rt) in [("venv", "wrapped"), ("shim", "onpath"), ("js", "node")] {
        e.ok(&["create", name, "--runtime", rt]);
    }
    let app_py = tools.join("app.py").display().to_string();
    let data_s = data.display().to_string();
    e.ok(&["create", "script", "--", "python3", &app_py, &data_s]);

    // Each serves, confined.
    std::fs::write(e.home_path().join("apps/venv/hello.txt"), "from a venv").unwrap();
    assert_eq!(
        ask(&e, "venv", "/hello.txt", None),
        (200, "from a venv".into())
    );
    assert_eq!(ask(&e, "shim", "/", None).0, 200);
    assert_eq!(ask(&e, "js", "/", None), (200, "node ok".into()));
    assert_eq!(ask(&e, "script", "/", None), (200, "ok".into()));
    for app in ["venv", "shim", "js", "script"] {
        let log = e.log_text(app);
        assert!(log.contains("confined by Landlock"), "{app}: {log}");
    }

    // The script read the folder named in its argv, and wrote under its own HOME.
    assert_eq!(
        ask(&e, "script", "/named", None),
        (200, "a note of mine".into())
    );
    let home = std::fs::canonicalize(e.home_path()).unwrap();
    let own_home = home.join("apps/script/home");
    assert_eq!(
        ask(&e, "script", "/home", None),
        (200, own_home.display().to_string())
    );
    assert_eq!(
        std::fs::read_to_string(own_home.join(".local/share/x/started")).unwrap(),
        "yes"
    );
    // `hangar exec` gives a program the same HOME.
    let out = e.hangar(&["exec", "script", "--", "sh", "-c", "printf %s \"$HOME\""]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        own_home.display().to_string()
    );

    // Out of reach: the token, the registry, another app's data folder, the user's key.
    std::fs::write(home.join("apps/venv/secret.txt"), "venv's").unwrap();
    for secret in [
        home.join("token"),
        home.join("registry.db"),
        home.join("apps/venv/secret.txt"),
        me.join(".ssh/id_rsa"),
    ] {
        assert!(secret.is_file(), "{}", secret.display());
        assert_eq!(
            ask(&e, "script", "/read", Some(&secret)),
            (403, "EACCES".into()),
            "a confined app read {}",
            secret.display()
        );
    }
    // It writes neither another app's folder nor the user's folders it was only named.
    for target in [home.join("apps/venv/planted"), data.join("planted")] {
        assert_eq!(
            ask(&e, "script", "/write", Some(&target)),
            (403, "EACCES".into()),
            "{}",
            target.display()
        );
        assert!(!target.exists());
    }
    // An abstract Unix socket made outside it (here by the test) is out of its reach
    // (Landlock ABI 6: its scope).
    let name = format!("hangar-compat-{}", std::process::id());
    let addr =
        <std::os::unix::net::SocketAddr as std::os::linux::net::SocketAddrExt>::from_abstract_name(
            &name,
        )
        .unwrap();
    let _listener = std::os::unix::net::UnixListener::bind_addr(&addr).unwrap();
    std::os::unix::net::UnixStream::connect_addr(&addr).expect("the test reaches its own socket");
    assert_eq!(
        ask(&e, "script", "/abstract", Some(Path::new(&name))),
        (403, "EPERM".into())
    );
    // The start line says what it writes and reads.
    let log = e.log_text("script");
    assert!(
        log.contains(&format!("it writes {}", home.join("apps/script").display()))
            && log.contains(&format!("(its HOME is {})", own_home.display()))
            && log.contains("reads and runs the rest of the system but not Hangar's home"),
        "{log}"
    );
}

/// A runtime's `cwd` (code every instance shares) is read, never written; a folder its
/// `writable` lists is written.
#[test]
fn a_runtimes_cwd_is_read_only_and_its_writable_folders_are_written() {
    let user = user_folder();
    let shared = user.path().join("shared");
    let out = user.path().join("out");
    for d in [&shared, &out] {
        std::fs::create_dir_all(d).unwrap();
    }
    std::fs::write(shared.join("app.py"), PY_APP).unwrap();
    std::fs::write(shared.join("note.txt"), "shared code").unwrap();
    let toml = format!(
        "{}cwd = {:?}\nwritable = [{:?}]\n",
        runtime("code", &["python3", "app.py", "."]),
        shared.display().to_string(),
        out.display().to_string()
    );
    let e = TestEngine::start_with(&toml);
    e.ok(&["create", "c", "--runtime", "code"]);
    assert_eq!(ask(&e, "c", "/named", None), (200, "shared code".into()));
    assert_eq!(
        ask(&e, "c", "/write", Some(&shared.join("planted"))),
        (403, "EACCES".into())
    );
    assert!(!shared.join("planted").exists());
    assert_eq!(
        ask(&e, "c", "/write", Some(&out.join("made"))),
        (200, "ok".into())
    );
    assert_eq!(
        std::fs::read_to_string(out.join("made")).unwrap(),
        "written"
    );
}

/// Jupyter Server (PyPI), installed by scripts/install-jupyter.sh, or HANGAR_TEST_JUPYTER.
fn jupyter() -> PathBuf {
    let p = match std::env::var("HANGAR_TEST_JUPYTER") {
        Ok(p) if !p.is_empty() => PathBuf::from(p),
        _ => PathBuf::from(std::env::var("HOME").unwrap_or_default())
            .join(".cache/hangar/venv-jupyter-server/bin/jupyter-server"),
    };
    assert!(
        p.is_file(),
        "{} is missing: run scripts/install-jupyter.sh (or set HANGAR_TEST_JUPYTER to the jupyter-server it prints)",
        p.display()
    );
    p
}

/// A real Jupyter Server, which makes `~/.local/share/jupyter/runtime` at its start (it died
/// on that confined before apps had a HOME of their own), runs confined under its prefix.
#[test]
fn a_real_jupyter_server_runs_confined() {
    let bin = jupyter();
    let user = user_folder();
    let me = user.path().join("me");
    std::fs::create_dir_all(&me).unwrap();
    let toml = format!(
        "[runtimes.jupyter]\ncommand = [{:?}, \"--no-browser\", \"--allow-root\", \"--port=${{PORT}}\", \"--ServerApp.ip=127.0.0.1\", \"--ServerApp.base_url=${{HANGAR_BASE_PATH}}/\", \"--IdentityProvider.token=\"]\nhealth = \"/api\"\nprefix = \"keep\"\nstart_timeout = 120\n",
        bin.display().to_string()
    );
    let me_s = me.display().to_string();
    let e = TestEngine::start_with_env(&toml, &[("HOME", &me_s)]);
    e.ok(&["create", "nb", "--runtime", "jupyter"]);
    let r = e
        .http
        .get(e.proxy_url("/_app/nb/api"))
        .send()
        .expect("proxy request");
    assert_eq!(r.status().as_u16(), 200, "{}", e.log_text("nb"));
    assert!(r.text().unwrap().contains("\"version\""));
    let log = e.log_text("nb");
    assert!(log.contains("confined by Landlock"), "{log}");
    let runtime = e
        .home_path()
        .join("apps/nb/home/.local/share/jupyter/runtime");
    assert!(runtime.is_dir(), "{log}");
    // Nothing went into the engine user's HOME.
    assert!(!me.join(".local").exists());
    assert_eq!(e.status("nb"), "running");
}
