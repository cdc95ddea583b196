//! `hangar export`: the real nginx accepts and serves the exported config; the Kubernetes
//! manifests parse back into k8s-openapi's typed models and keep every route.

use crate::common;

use std::process::Command;
use std::time::Duration;

use common::*;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Secret, Service};
use k8s_openapi::api::networking::v1::Ingress;
use serde::Deserialize;

fn nginx_bin() -> String {
    for p in ["/usr/sbin/nginx", "/usr/bin/nginx"] {
        if std::path::Path::new(p).exists() {
            return p.to_string();
        }
    }
    panic!("nginx is missing: scripts/install-deps.sh test installs it");
}

/// A minimal nginx.conf around the exported http-context file, all paths in `dir`, which
/// `nginx -t` accepts.
fn nginx_conf(dir: &std::path::Path, include: &std::path::Path) -> std::path::PathBuf {
    let conf = dir.join("nginx.conf");
    std::fs::write(
        &conf,
        format!(
            "daemon off;\nworker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log;\nevents {{ worker_connections 256; }}\nhttp {{\n    access_log off;\n    client_body_temp_path {d}/body;\n    proxy_temp_path {d}/proxy;\n    fastcgi_temp_path {d}/fastcgi;\n    uwsgi_temp_path {d}/uwsgi;\n    scgi_temp_path {d}/scgi;\n    include {inc};\n}}\n",
            d = dir.display(),
            inc = include.display()
        ),
    )
    .unwrap();
    let test = Command::new(nginx_bin())
        .arg("-t")
        .arg("-p")
        .arg(dir)
        .arg("-c")
        .arg(&conf)
        .output()
        .unwrap();
    assert!(
        test.status.success(),
        "nginx -t refused the export: {}",
        String::from_utf8_lossy(&test.stderr)
    );
    conf
}

struct Nginx(std::process::Child);
impl Drop for Nginx {
    fn drop(&mut self) {
        // SIGTERM lets the master end its workers; SIGKILL would orphan them.
        unsafe { libc::kill(self.0.id() as i32, libc::SIGTERM) };
        let _ = self.0.wait();
    }
}

fn check_through_nginx(e: &TestEngine, direct: bool) {
    let dir = tempfile::tempdir().unwrap();
    let listen = free_port();
    let file = dir.path().join("hangar.conf");
    let mut args = vec!["export", "nginx", "--listen"];
    let listen_s = listen.to_string();
    args.push(&listen_s);
    if direct {
        args.push("--direct");
    }
    let file_s = file.display().to_string();
    args.extend(["-o", &file_s]);
    e.ok(&args);
    let conf = nginx_conf(dir.path(), &file);
    let _nginx = Nginx(
        Command::new(nginx_bin())
            .arg("-p")
            .arg(dir.path())
            .arg("-c")
            .arg(&conf)
            .spawn()
            .unwrap(),
    );
    wait_until("nginx to listen", Duration::from_secs(10), || {
        std::net::TcpStream::connect(("127.0.0.1", listen)).is_ok()
    });
    let get = |host: &str, path: &str| {
        let resp = e
            .http
            .get(format!("http://127.0.0.1:{listen}{path}"))
            .header("Host", host)
            .send()
            .unwrap();
        (resp.status().as_u16(), resp.text().unwrap_or_default())
    };
    let (status, body) = get("localhost", "/_app/x1/api/info");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"app\":\"x1\""), "{body}");
    let (status, body) = get("shop.example.test", "/_app/x2/api/info");
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains("\"app\":\"x2\""),
        "the domain leads to x2: {body}"
    );
    let (status, body) = get("localhost", "/api/info");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"app\":\"main\""), "{body}");
}

#[test]
fn nginx_accepts_and_serves_the_exported_routes() {
    let e = TestEngine::start();
    e.ok(&["create", "x1", "--start-mode", "with-main"]);
    // Through Hangar's own proxy, the domain app keeps the prefix the app expects.
    e.ok(&[
        "create",
        "x2",
        "--start-mode",
        "with-main",
        "--domain",
        "shop.example.test",
    ]);
    e.wait_status("x1", "running", Duration::from_secs(30));
    e.wait_status("x2", "running", Duration::from_secs(30));
    e.wait_status("main", "running", Duration::from_secs(30));
    check_through_nginx(&e, false);
}

#[test]
fn nginx_direct_mode_config_is_valid() {
    let e = TestEngine::start();
    e.ok(&["create", "x1", "--start-mode", "with-main"]);
    e.ok(&["create", "x2", "--domain", "shop.example.test"]);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("hangar.conf");
    e.ok(&[
        "export",
        "nginx",
        "--direct",
        "--listen",
        &free_port().to_string(),
        "-o",
        &file.display().to_string(),
    ]);
    let text = std::fs::read_to_string(&file).unwrap();
    let x1_port = e.app("x1")["port"].as_u64().unwrap();
    assert!(
        text.contains(&format!("server 127.0.0.1:{x1_port};")),
        "{text}"
    );
    assert!(text.contains("server_name shop.example.test;"), "{text}");
    nginx_conf(dir.path(), &file);
}

#[test]
fn kubernetes_manifests_parse_back_into_typed_models_and_keep_every_route() {
    let e =
        TestEngine::start_with("[runtimes.stripped]\ncommand = [\"true\"]\nprefix = \"strip\"\n");
    e.ok(&[
        "create",
        "k1",
        "--domain",
        "k1.example.test",
        "--env",
        "COLOUR=blue",
    ]);
    e.ok(&["create", "k_2", "--runtime", "stripped"]);
    let yaml = e.ok(&[
        "export",
        "kubernetes",
        "--secrets",
        "--image",
        "registry.test/{runtime}:1",
    ]);
    let mut kinds: Vec<(String, String)> = Vec::new();
    let mut ingresses = Vec::new();
    for doc in serde_yaml_ng::Deserializer::from_str(&yaml) {
        let v = serde_json::Value::deserialize(doc).unwrap();
        let kind = v["kind"].as_str().unwrap().to_string();
        let name = v["metadata"]["name"].as_str().unwrap().to_string();
        match kind.as_str() {
            "Deployment" => {
                let d: Deployment = serde_json::from_value(v).unwrap();
                let c = &d.spec.unwrap().template.spec.unwrap().containers[0];
                assert!(
                    c.image.as_deref().unwrap().starts_with("registry.test/"),
                    "{:?}",
                    c.image
                );
                if name == "k1" {
                    let env = c.env.clone().unwrap();
                    assert!(env
                        .iter()
                        .any(|v| v.name == "COLOUR" && v.value.as_deref() == Some("blue")));
                    assert!(env
                        .iter()
                        .any(|v| v.name == "HANGAR_BASE_PATH"
                            && v.value.as_deref() == Some("/_app/k1")));
                }
            }
            "Service" => {
                serde_json::from_value::<Service>(v).unwrap();
            }
            "Secret" => {
                let s: Secret = serde_json::from_value(v).unwrap();
                let data = s.string_data.unwrap();
                assert!(data.contains_key("DATABASE_URL") && data.contains_key("APP_KEY"));
            }
            "PersistentVolumeClaim" => {
                serde_json::from_value::<PersistentVolumeClaim>(v).unwrap();
            }
            "Ingress" => ingresses.push(serde_json::from_value::<Ingress>(v).unwrap()),
            other => panic!("unexpected kind {other}"),
        }
        kinds.push((kind, name));
    }
    for app in ["main", "k1", "k-2"] {
        for kind in [
            "Deployment",
            "Service",
            "Ingress",
            "Secret",
            "PersistentVolumeClaim",
        ] {
            let want = match kind {
                "Secret" => format!("{app}-env"),
                "PersistentVolumeClaim" => format!("{app}-data"),
                _ => app.to_string(),
            };
            assert!(
                kinds.contains(&(kind.to_string(), want.clone())),
                "missing {kind} {want}"
            );
        }
    }
    // Every route Hangar serves has its Ingress rule.
    let routes: Vec<(Option<String>, String, String)> = ingresses
        .iter()
        .flat_map(|i| {
            let svc = i.metadata.name.clone().unwrap();
            i.spec
                .clone()
                .unwrap()
                .rules
                .unwrap()
                .into_iter()
                .flat_map(move |r| {
                    let svc = svc.clone();
                    r.http
                        .unwrap()
                        .paths
                        .into_iter()
                        .map(move |p| (r.host.clone(), p.path.unwrap(), svc.clone()))
                })
        })
        .collect();
    assert!(
        routes.contains(&(None, "/".into(), "main".into())),
        "{routes:?}"
    );
    assert!(
        routes.contains(&(None, "/_app/k1/".into(), "k1".into())),
        "{routes:?}"
    );
    assert!(
        routes.contains(&(Some("k1.example.test".into()), "/".into(), "k1".into())),
        "{routes:?}"
    );
    assert!(
        routes
            .iter()
            .any(|(h, p, s)| h.is_none() && p.starts_with("/_app/k_2") && s == "k-2"),
        "{routes:?}"
    );
}

#[test]
fn names_that_would_clash_as_kubernetes_names_cannot_both_exist() {
    // '_' and '-' are one character to the database mapping and to Kubernetes names alike, so
    // the clash is refused when the second app is created (export checks again, in case).
    let e = TestEngine::start();
    e.ok(&["create", "a_b"]);
    let err = e.fails(&["create", "a-b"]);
    assert!(err.contains("same database name"), "{err}");
    e.ok(&["export", "kubernetes", "a_b"]);
}

/// An app on a runtime that `hangar reload` added is exported with that runtime (the runtimes
/// in force, not the ones the engine started with): its health path and prefix in the
/// manifests, its port and prefix in nginx's direct routes.
#[test]
fn an_app_on_a_runtime_added_by_reload_is_exported_with_it() {
    let e = TestEngine::start();
    let toml = e.home_path().join("hangar.toml");
    let first = std::fs::read_to_string(&toml).unwrap();
    let later = demo_runtime(
        "later",
        &[],
        "health = \"/ready-later\"\nprefix = \"strip\"",
    );
    std::fs::write(&toml, format!("{first}\n{later}")).unwrap();
    let out = e.ok(&["reload"]);
    // The watcher may have read it first.
    assert!(
        out.contains("added: later") || out.contains("no runtime changed"),
        "{out}"
    );
    let port = free_port().to_string();
    e.ok(&["create", "lat", "--runtime", "later", "--port", &port]);

    let k8s = e.ok(&["export", "kubernetes", "lat"]);
    assert!(k8s.contains("path: /ready-later"), "{k8s}");
    assert!(!k8s.contains("/_app/lat/ready-later"), "stripped: {k8s}");
    let nginx = e.ok(&["export", "nginx", "lat", "--direct"]);
    assert!(
        nginx.contains(&format!("server 127.0.0.1:{port};")),
        "{nginx}"
    );
    assert!(
        nginx.contains("proxy_pass http://hangar_app_lat/;"),
        "the prefix stripped: {nginx}"
    );
}

/// The secret values of a Kubernetes export (an app's `APP_KEY`, its own env, database
/// credentials) are written only with `--secrets`; without it their names stay, with empty
/// values. A file written with `-o` is 0600 (a file that was there already too), as `dump -o`.
#[test]
fn kubernetes_exports_leave_secrets_out_unless_asked_and_their_files_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let e = TestEngine::start();
    e.ok(&["create", "vault", "--env", "API_PASSWORD=hunter2-colour"]);
    let (s, setting) = e.api(reqwest::Method::POST, "/apps/vault/exec", None);
    assert_eq!(s, 200, "{setting}");
    let key = setting["env"]["APP_KEY"].as_str().unwrap().to_string();
    assert!(key.len() >= 16, "{setting}");

    type SecretAndEnv = (
        std::collections::BTreeMap<String, String>,
        Vec<(String, Option<String>)>,
    );
    let secret_of = |yaml: &str| -> SecretAndEnv {
        let mut data = Default::default();
        let mut env = Vec::new();
        for doc in serde_yaml_ng::Deserializer::from_str(yaml) {
            let v = serde_json::Value::deserialize(doc).unwrap();
            match v["kind"].as_str().unwrap() {
                "Secret" if v["metadata"]["name"] == "vault-env" => {
                    data = serde_json::from_value::<Secret>(v)
                        .unwrap()
                        .string_data
                        .unwrap();
                }
                "Deployment" if v["metadata"]["name"] == "vault" => {
                    let d: Deployment = serde_json::from_value(v).unwrap();
                    let c = &d.spec.unwrap().template.spec.unwrap().containers[0];
                    env = c
                        .env
                        .clone()
                        .unwrap()
                        .into_iter()
                        .map(|v| (v.name, v.value))
                        .collect();
                }
                _ => {}
            }
        }
        (data, env)
    };

    let plain = e.ok(&["export", "kubernetes", "vault"]);
    assert!(
        !plain.contains(&key) && !plain.contains("hunter2"),
        "{plain}"
    );
    let (data, env) = secret_of(&plain);
    assert_eq!(data.get("APP_KEY").map(String::as_str), Some(""), "{plain}");
    assert!(
        env.contains(&("API_PASSWORD".to_string(), Some(String::new()))),
        "{env:?}"
    );
    assert!(
        plain.contains("--secrets"),
        "it says how to get them: {plain}"
    );

    let full = e.ok(&["export", "kubernetes", "vault", "--secrets"]);
    let (data, env) = secret_of(&full);
    assert_eq!(data.get("APP_KEY"), Some(&key));
    assert!(
        env.contains(&("API_PASSWORD".to_string(), Some("hunter2-colour".into()))),
        "{env:?}"
    );

    // Files: new ones and ones that were there (0644) alike end 0600, for export and dump.
    let dir = tempfile::tempdir().unwrap();
    let there = dir.path().join("there.yaml");
    std::fs::write(&there, "old").unwrap();
    std::fs::set_permissions(&there, std::fs::Permissions::from_mode(0o644)).unwrap();
    let new = dir.path().join("new.yaml");
    for (file, args) in [
        (&new, vec!["export", "kubernetes", "vault", "--secrets"]),
        (&there, vec!["export", "kubernetes", "vault", "--secrets"]),
    ] {
        let mut a = args.clone();
        let f = file.to_str().unwrap();
        a.extend(["-o", f]);
        e.ok(&a);
        let mode = std::fs::metadata(file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{f}");
        assert!(std::fs::read_to_string(file).unwrap().contains(&key));
    }
    let dump = dir.path().join("apps.toml");
    std::fs::write(&dump, "old").unwrap();
    std::fs::set_permissions(&dump, std::fs::Permissions::from_mode(0o644)).unwrap();
    e.ok(&["dump", "--secrets", "-o", dump.to_str().unwrap()]);
    let mode = std::fs::metadata(&dump).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "dump over a 0644 file");
}
