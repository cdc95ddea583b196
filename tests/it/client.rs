//! The typed client (`hangar::api::client`) against a real engine: every method reaches its
//! route (the client's paths and the server's router agree) and reads the answer into the type
//! the server wrote it from (the two sides share one contract). The CLI covers the verbs it
//! uses; this covers the rest too (edit, name check, connection test, history, host, events).

use crate::common;

use std::time::Duration;

use common::*;
use futures_util::StreamExt;
use hangar::api::client::{AppEvent, Client, ClientError};
use hangar::api::types::{BackupBody, Current, ExportQuery, SearchParams};
use hangar::base::home::Home;
use hangar::base::jobs::JobState;
use hangar::engine::backup::RestoreRequest;
use hangar::engine::import::ImportRequest;
use hangar::engine::CreateApp;
use hangar::run::monitor::Live;
use hangar::store::registry::AppEdit;

/// The next item of a stream, within 30 s.
async fn next<S: futures_util::Stream + Unpin>(s: &mut S, what: &str) -> S::Item {
    tokio::time::timeout(Duration::from_secs(30), s.next())
        .await
        .unwrap_or_else(|_| panic!("no {what} within 30 s"))
        .unwrap_or_else(|| panic!("the {what} stream ended"))
}

/// Poll a job until it ends.
async fn finish(c: &Client, job: JobState) -> JobState {
    for _ in 0..600 {
        let s = c.job(&job.id).await.expect("the job");
        if s.state != "running" {
            return s;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("job {} did not end within 30 s", job.id);
}

#[test]
fn every_route_through_the_typed_client() {
    // The harness's blocking HTTP client keeps a runtime of its own: the engine is made (and
    // dropped) outside the one the typed client runs on.
    let e = TestEngine::start();
    tokio::runtime::Runtime::new()
        .expect("a runtime")
        .block_on(every_route(&e));
}

async fn every_route(e: &TestEngine) {
    let c = Client::connect(&Home::at(e.home_path()), false)
        .await
        .expect("connect");

    let info = c.engine().await.expect("engine");
    assert_eq!(info.api_port, e.api_port);
    assert_eq!(info.proxy_port, e.proxy_port);
    assert!(info.runtimes.contains(&info.main_runtime), "{info:?}");
    // The panel's bulk actions run as many at once as the engine's own.
    assert_eq!(info.start_parallel, hangar::engine::START_PARALLEL);

    let bad = c.validate_name("Not A Name").await.expect("validate");
    assert!(!bad.ok && bad.message.is_some(), "{bad:?}");
    assert!(c.validate_name("fresh").await.expect("validate").ok);

    let mut events = Box::pin(c.events().await.expect("events"));
    let created = c
        .create(&CreateApp {
            name: "typed".into(),
            ..Default::default()
        })
        .await
        .expect("create");
    assert_eq!(created.name, "typed");
    assert!(c
        .list()
        .await
        .expect("list")
        .iter()
        .any(|a| a.name == "typed"));
    loop {
        if let AppEvent::App(v) = next(&mut events, "event").await.expect("an event") {
            if v.name == "typed" {
                break;
            }
        }
    }

    let edited = c
        .edit(
            "typed",
            &AppEdit {
                display_name: Some("Typed One".into()),
                ..Default::default()
            },
        )
        .await
        .expect("edit");
    assert_eq!(edited.display_name, "Typed One");
    assert_eq!(
        c.status("typed").await.expect("status").display_name,
        "Typed One"
    );

    // Read through pids, not statuses: the status's Rust type is the engine's business.
    let started = c.start("typed").await.expect("start").pid;
    let restarted = c.restart("typed").await.expect("restart").pid;
    assert!(started.is_some() && restarted.is_some() && started != restarted);
    let mut follow = Box::pin(c.follow_logs("typed", 5).await.expect("follow"));
    next(&mut follow, "log line").await.expect("a line");
    assert!(!c.logs("typed", 5).await.expect("logs").is_empty());
    let found = c
        .search_logs(
            "typed",
            &SearchParams {
                q: Some(" ".into()),
                limit: Some(3),
                ..Default::default()
            },
        )
        .await
        .expect("search");
    assert!(
        found.files_searched >= 1 && found.lines.len() <= 3,
        "{found:?}"
    );

    let m = c.metrics("typed", "5m").await.expect("metrics");
    assert_eq!(
        (m.history.name.as_str(), m.history.range_seconds),
        ("typed", 300)
    );
    let h = c.metrics("@host", "1h").await.expect("host metrics");
    assert!(matches!(h.current, None | Some(Current::Host(_))), "{h:?}");
    let mut ticks = Box::pin(c.metrics_stream().await.expect("metrics stream"));
    let first = next(&mut ticks, "tick").await.expect("a tick");
    assert!(matches!(first, Live::Tick(_)), "{first:?}");
    assert!(!c.host().await.expect("host").sampler.is_empty());

    assert_eq!(c.stop("typed").await.expect("stop").pid, None);
    assert_eq!(c.upgrade("typed").await.expect("upgrade").name, "typed");
    let all = c.upgrade_all().await.expect("upgrade all");
    assert!(all.iter().any(|r| r.name == "typed"), "{all:?}");

    let nginx = c
        .export(
            "nginx",
            &ExportQuery {
                app: Some("typed".into()),
                ..Default::default()
            },
        )
        .await
        .expect("export");
    assert!(nginx.contains("typed"), "{nginx}");

    let tried = c
        .db_test("postgres://127.0.0.1:1/none")
        .await
        .expect("db test");
    assert!(!tried.ok && tried.message.is_some(), "{tried:?}");

    let job = c
        .backup("typed", &BackupBody::default())
        .await
        .expect("backup");
    let done = finish(&c, job).await;
    assert_eq!(done.state, "done", "{done:?}");
    let list = c.backups(Some("typed")).await.expect("backups");
    assert_eq!(list.backups.len(), 1, "{:?}", list.backups);
    let job = c
        .restore(&RestoreRequest {
            file: list.backups[0].name.clone(),
            as_name: Some("typed2".into()),
            db: None,
        })
        .await
        .expect("restore");
    let done = finish(&c, job).await;
    assert_eq!(done.state, "done", "{done:?}");
    assert_eq!(c.status("typed2").await.expect("restored").name, "typed2");

    let refused = c
        .import_nocobase(&ImportRequest {
            from: "ftp://nowhere".into(),
            dry_run: true,
            runtime: None,
        })
        .await
        .expect_err("a refused import");
    let ClientError::Api { status, error } = refused else {
        panic!("not an API refusal: {refused:?}");
    };
    assert_eq!((status, error.code.as_str()), (400, "invalid"));
    assert_eq!(error.field.as_deref(), Some("from"));

    let missing = c.status("nope").await.expect_err("no such app");
    assert!(
        matches!(&missing, ClientError::Api { status: 404, error } if error.code == "not_found"),
        "{missing:?}"
    );
    assert!(c
        .login_code()
        .await
        .expect("login code")
        .url
        .contains("/login?code="));

    assert_eq!(
        c.delete("typed", false).await.expect("delete").name,
        "typed"
    );
    loop {
        if let AppEvent::Removed(r) = next(&mut events, "event").await.expect("an event") {
            if r.name == "typed" {
                break;
            }
        }
    }
    assert!(c.kill().await.expect("kill").stopping);
}
