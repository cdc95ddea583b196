//! Every app its own database (issue 4), end to end: the real CLI and engine, real hangar-demo
//! apps writing notes through the proxy, and the real PostgreSQL and MariaDB servers of
//! `scripts/test-db.sh` (HANGAR_TEST_PG_URL, HANGAR_TEST_MYSQL_URL; superuser URLs). A test that
//! needs a server fails, saying how to start them, when its URL is not set.
//!
//! Every name made on a server carries a per-run suffix, so runs and tests never collide.

use crate::common;

use std::sync::{RwLock, RwLockReadGuard};
use std::time::Duration;

use common::notes::*;
use common::sql::*;
use common::*;
use serde_json::{json, Value};
use sqlx::Connection;

// ---- servers ---------------------------------------------------------------------------------

/// PostgreSQL copies template1 for every new database and refuses while anyone is connected
/// to it; one test does that on purpose, so every database creation here takes this lock.
static PG_CREATES: RwLock<()> = RwLock::new(());

fn pg_create_lock() -> RwLockReadGuard<'static, ()> {
    PG_CREATES.read().unwrap_or_else(|p| p.into_inner())
}

// ---- apps ------------------------------------------------------------------------------------

/// No `secret` in `list --json`, `status --json`, the API's answers, or any log file.
fn assert_secret_nowhere(e: &TestEngine, secret: &str, names: &[&str]) {
    assert!(secret.len() >= 16, "a real password: {secret}");
    let mut seen = vec![
        ("list --json".to_string(), e.ok(&["list", "--json"])),
        ("list".to_string(), e.ok(&["list"])),
        (
            "GET /apps".to_string(),
            e.api(reqwest::Method::GET, "/apps", None).1.to_string(),
        ),
        (
            "GET /engine".to_string(),
            e.api(reqwest::Method::GET, "/engine", None).1.to_string(),
        ),
    ];
    for n in names {
        seen.push((format!("status {n}"), e.ok(&["status", n, "--json"])));
        seen.push((format!("status {n} (table)"), e.ok(&["status", n])));
        seen.push((
            format!("GET /apps/{n}"),
            e.api(reqwest::Method::GET, &format!("/apps/{n}"), None)
                .1
                .to_string(),
        ));
    }
    let mut logs = vec![e.home_path().join("serve.log")];
    if let Ok(dir) = std::fs::read_dir(e.home_path().join("logs")) {
        logs.extend(dir.flatten().map(|d| d.path()));
    }
    for l in logs {
        seen.push((
            l.display().to_string(),
            std::fs::read_to_string(&l).unwrap_or_default(),
        ));
    }
    for (what, text) in seen {
        assert!(
            !text.contains(secret),
            "a password shows in {what}:\n{text}"
        );
    }
}

// ---- SQLite ------------------------------------------------------------------------------------

#[test]
fn sqlite_new_database_attached_file_and_clear_refusals() {
    let e = TestEngine::start();
    // New database without a data service: a SQLite file in the app's folder.
    let out = e.ok(&["create", "sq1"]);
    assert!(out.contains("sqlite:"), "{out}");
    e.ok(&["start", "sq1"]);
    add_note(&e, "sq1", "in my own file");
    let own = e.home_path().join("apps/sq1/db.sqlite");
    let in_file = |path: &std::path::Path| -> i64 {
        rt().block_on(async {
            let opts = sqlx::sqlite::SqliteConnectOptions::new().filename(path);
            let mut c = sqlx::SqliteConnection::connect_with(&opts).await.unwrap();
            let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM notes")
                .fetch_one(&mut c)
                .await
                .unwrap();
            let _ = c.close().await;
            n
        })
    };
    assert_eq!(in_file(&own), 1);

    // New connection: an existing SQLite file, tested, attached, never dropped.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("shared notes.db");
    rt().block_on(async {
        let opts = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(&file)
            .create_if_missing(true);
        let c = sqlx::SqliteConnection::connect_with(&opts).await.unwrap();
        let _ = c.close().await;
    });
    let url = format!("sqlite://{}", file.display());
    let out = e.ok(&["create", "sq2", "--db", &url]);
    assert!(out.contains("created sq2"), "{out}");
    e.ok(&["start", "sq2"]);
    add_note(&e, "sq2", "in the attached file");
    assert_eq!(in_file(&file), 1);
    assert_eq!(note_bodies(&e, "sq1"), vec!["in my own file"]);
    let err = e.fails(&["delete", "sq2", "--drop-db", "--yes"]);
    assert!(
        err.contains("attached") && err.contains("never drops"),
        "{err}"
    );
    assert!(e.listed("sq2"), "a refused delete deletes nothing");
    let out = e.ok(&["delete", "sq2"]);
    assert!(out.contains("kept: attached database"), "{out}");
    assert!(file.exists(), "an attached file is never removed");
    assert_eq!(in_file(&file), 1);

    // A URL that does not work is refused with the reason, and nothing is saved.
    let missing = dir.path().join("no-such-folder/x.db");
    let err = e.fails(&[
        "create",
        "sq3",
        "--db",
        &format!("sqlite://{}", missing.display()),
    ]);
    assert!(
        err.contains("cannot use") && err.contains("nothing was saved"),
        "{err}"
    );
    assert!(!e.listed("sq3"));
    assert!(!e.home_path().join("apps/sq3").exists());
    let err = e.fails(&["create", "sq3", "--db", "sqlite:notes.db"]);
    assert!(err.contains("absolute"), "{err}");
    let err = e.fails(&["create", "sq3", "--db", "schema"]);
    assert!(err.contains("needs a PostgreSQL data service"), "{err}");
    let err = e.fails(&["create", "sq3", "--db", "oracle://x"]);
    assert!(err.contains("accepted: new-database, schema"), "{err}");
    assert!(!e.listed("sq3"));

    // One mapping from names to database identifiers; two names that meet are refused.
    e.ok(&["create", "c1-b"]);
    let err = e.fails(&["create", "c1_b"]);
    assert!(
        err.contains("c1-b") && err.contains("hangar_c1_b") && err.contains("choose another name"),
        "{err}"
    );
    assert!(!e.listed("c1_b"));

    // --drop-db removes the SQLite file Hangar made.
    let out = e.ok(&["delete", "sq1", "--drop-db", "--yes"]);
    assert!(out.contains("dropped: SQLite database"), "{out}");
    assert!(!own.exists());
}

// ---- PostgreSQL --------------------------------------------------------------------------------

#[test]
fn postgres_new_database_schema_and_url_each_keep_notes_where_promised() {
    let pg = pg();
    let e = TestEngine::start_with(&data_service(&pg));
    let (d, s, x) = (uniq("pd"), uniq("ps"), uniq("px"));
    let attach_db = uniq("htest_attach_");
    {
        let _g = pg_create_lock();
        sql(&pg, &[&format!("CREATE DATABASE \"{attach_db}\"")]);
        e.ok(&["create", &d]);
        e.ok(&["create", &s, "--db", "schema"]);
    }
    let attach_url = on_db(&pg, &attach_db);
    let out = e.ok(&["create", &x, "--db", &attach_url]);
    assert!(
        !out.contains("hangar-test"),
        "the create answer hides the password: {out}"
    );
    for a in [&d, &s, &x] {
        e.ok(&["start", a]);
        add_note(&e, a, &format!("note of {a}"));
    }
    // New database: its own database, owned by its own role.
    let (id_d, id_s) = (ident(&d), ident(&s));
    assert_eq!(
        count(&on_db(&pg, &id_d), "SELECT COUNT(*) FROM public.notes"),
        1
    );
    assert_eq!(pg_database_owner(&pg, &id_d), id_d);
    // Schema mode: a schema in the data service's database, owned by the app's role.
    assert_eq!(
        count(&pg, &format!("SELECT COUNT(*) FROM \"{id_s}\".notes")),
        1
    );
    assert_eq!(pg_schema_owner(&pg, &id_s), id_s);
    // The search path travels in DATABASE_URL itself: sqlx honours it without DB_SCHEMA.
    let s_url = stored_url(&e, &s);
    assert!(s_url.contains("options=-c%20search_path%3D"), "{s_url}");
    assert_eq!(text(&s_url, "SHOW search_path"), id_s);
    assert_eq!(count(&s_url, "SELECT COUNT(*) FROM notes"), 1);
    // New connection: the notes are in the operator's database.
    assert_eq!(count(&attach_url, "SELECT COUNT(*) FROM notes"), 1);

    // Passwords: nowhere but the registry.
    let d_pw = password_of(&stored_url(&e, &d));
    let s_pw = password_of(&s_url);
    for secret in [d_pw.as_str(), s_pw.as_str()] {
        assert_secret_nowhere(&e, secret, &[&d, &s, &x]);
    }
    let list = e.ok(&["list", "--json"]);
    assert!(!list.contains("hangar-test"), "{list}");

    // --drop-db never drops an attached database, and says why.
    let err = e.fails(&["delete", &x, "--drop-db", "--yes"]);
    assert!(
        err.contains("attached") && err.contains("never drops"),
        "{err}"
    );
    e.ok(&["delete", &x]);
    assert_eq!(how_many(&pg, Object::PgDatabase, &attach_db), 1);
    assert_eq!(count(&attach_url, "SELECT COUNT(*) FROM notes"), 1);

    // --drop-db drops exactly what was made: database and role; schema and role.
    let out = e.ok(&["delete", &d, "--drop-db", "--yes"]);
    assert!(
        out.contains(&format!("dropped: PostgreSQL database {id_d}")),
        "{out}"
    );
    assert!(
        out.contains(&format!("dropped: PostgreSQL role {id_d}")),
        "{out}"
    );
    let out = e.ok(&["delete", &s, "--drop-db", "--yes"]);
    assert!(
        out.contains(&format!("dropped: PostgreSQL schema {id_s}")),
        "{out}"
    );
    for id in [&id_d, &id_s] {
        assert_left_nothing(&pg, id);
    }
    assert_eq!(how_many(&pg, Object::PgDatabase, "postgres"), 1);
    drop(e);
    sql(&pg, &[&format!("DROP DATABASE \"{attach_db}\"")]);
}

#[test]
fn a_deleted_app_keeps_its_postgres_database_unless_dropped_and_a_new_one_is_refused() {
    let pg = pg();
    let e = TestEngine::start_with(&data_service(&pg));
    let k = uniq("pk");
    {
        let _g = pg_create_lock();
        e.ok(&["create", &k]);
    }
    e.ok(&["start", &k]);
    add_note(&e, &k, "kept");
    let out = e.ok(&["delete", &k]);
    assert!(out.contains("kept: database"), "{out}");
    let id = ident(&k);
    assert_eq!(count(&on_db(&pg, &id), "SELECT COUNT(*) FROM notes"), 1);
    // A new app of that name would find the old data (NocoBase #3188): refused instead.
    let err = e.fails(&["create", &k]);
    assert!(
        err.contains(&format!("already has a database named {id}")),
        "{err}"
    );
    assert!(!e.listed(&k));
    drop(e);
    sql(
        &pg,
        &[
            &format!("DROP DATABASE \"{id}\""),
            &format!("DROP ROLE \"{id}\""),
        ],
    );
}

// ---- MariaDB -----------------------------------------------------------------------------------

#[test]
fn mariadb_new_database_and_url_work_and_schema_mode_is_refused() {
    let my = my();
    let e = TestEngine::start_with(&data_service(&my));
    let (d, x) = (uniq("md"), uniq("mx"));
    let attach_db = uniq("htest_attach_");
    sql(&my, &[&format!("CREATE DATABASE `{attach_db}`")]);
    let out = e.ok(&["create", &d]);
    let id = ident(&d);
    assert!(out.contains(&format!("mysql://{id}@")), "{out}");
    let attach_url = on_db(&my, &attach_db);
    e.ok(&["create", &x, "--db", &attach_url]);
    for a in [&d, &x] {
        e.ok(&["start", a]);
        add_note(&e, a, &format!("note of {a}"));
    }
    assert_eq!(count(&my, &format!("SELECT COUNT(*) FROM `{id}`.notes")), 1);
    assert_eq!(how_many(&my, Object::MyUser, &id), 1);
    assert_eq!(count(&attach_url, "SELECT COUNT(*) FROM notes"), 1);

    let err = e.fails(&["create", "ms1", "--db", "schema"]);
    assert!(err.contains("schema mode is PostgreSQL only"), "{err}");
    assert!(!e.listed("ms1"));

    let pw = password_of(&stored_url(&e, &d));
    assert_secret_nowhere(&e, &pw, &[&d, &x]);
    assert!(!e.ok(&["list", "--json"]).contains("hangar-test"));

    let err = e.fails(&["delete", &x, "--drop-db", "--yes"]);
    assert!(err.contains("attached"), "{err}");
    e.ok(&["delete", &x]);
    assert_eq!(count(&attach_url, "SELECT COUNT(*) FROM notes"), 1);

    let out = e.ok(&["delete", &d, "--drop-db", "--yes"]);
    assert!(
        out.contains(&format!("dropped: MySQL database {id}")),
        "{out}"
    );
    assert!(out.contains("dropped: MySQL user"), "{out}");
    assert_left_nothing(&my, &id);
    drop(e);
    sql(&my, &[&format!("DROP DATABASE `{attach_db}`")]);
}

// ---- rights ------------------------------------------------------------------------------------

#[test]
fn postgres_without_createdb_is_refused_naming_the_right_and_nothing_is_created() {
    let pg = pg();
    let nocreate = Account::pg(&pg, "htest_nocreate_", "NOCREATEDB NOCREATEROLE", &[]);
    let e = TestEngine::start_with(&data_service(&nocreate.url));
    let n1 = uniq("pn");
    let err = e.fails(&["create", &n1]);
    assert!(
        err.contains("may not create databases")
            && err.contains("lacks CREATEDB")
            && err.contains(&nocreate.name),
        "{err}"
    );
    assert!(err.contains("nothing was created"), "{err}");
    let err = e.fails(&["create", &n1, "--db", "schema"]);
    assert!(
        err.contains("may not create schemas")
            && err.contains("lacks the CREATE privilege on that database"),
        "{err}"
    );
    assert!(!e.listed(&n1));
    assert_left_nothing(&pg, &ident(&n1));
    drop(e);
    nocreate.remove();
}

#[test]
fn postgres_without_createrole_creates_with_the_service_account_and_says_so() {
    let pg = pg();
    let dbonly = Account::pg(&pg, "htest_dbonly_", "CREATEDB NOCREATEROLE", &[]);
    let e = TestEngine::start_with(&data_service(&dbonly.url));
    let n2 = uniq("pn");
    let out = {
        let _g = pg_create_lock();
        e.ok(&["create", &n2])
    };
    assert!(
        out.contains("note:") && out.contains("may not create roles") && out.contains("CREATEROLE"),
        "{out}"
    );
    let id2 = ident(&n2);
    assert_eq!(pg_database_owner(&pg, &id2), dbonly.name);
    assert!(e.app(&n2)["db"]
        .as_str()
        .unwrap()
        .contains(&format!("{}@", dbonly.name)));
    e.ok(&["start", &n2]);
    add_note(&e, &n2, "through the service account");
    let out = e.ok(&["delete", &n2, "--drop-db", "--yes"]);
    assert!(
        out.contains(&format!("dropped: PostgreSQL database {id2}")),
        "{out}"
    );
    assert!(
        !out.contains("role"),
        "no role was made, none is dropped: {out}"
    );
    assert_left_nothing(&pg, &id2);
    assert_eq!(how_many(&pg, Object::PgRole, &dbonly.name), 1);
    drop(e);
    dbonly.remove();
}

/// A non-superuser with CREATEDB and CREATEROLE (and CREATE on its database): roles of the
/// apps' own, which it may make the owners, and drop again.
#[test]
fn postgres_with_createdb_and_createrole_gives_each_app_a_role_of_its_own() {
    let pg = pg();
    let creator = Account::pg(
        &pg,
        "htest_creator_",
        "CREATEDB CREATEROLE",
        &["GRANT CREATE ON DATABASE postgres TO {role}"],
    );
    let e = TestEngine::start_with(&data_service(&creator.url));
    let (n4, n5) = (uniq("pn"), uniq("pn"));
    {
        let _g = pg_create_lock();
        let out = e.ok(&["create", &n4]);
        assert!(!out.contains("note:"), "{out}");
    }
    let out = e.ok(&["create", &n5, "--db", "schema"]);
    assert!(!out.contains("note:"), "{out}");
    let (id4, id5) = (ident(&n4), ident(&n5));
    assert_eq!(pg_database_owner(&pg, &id4), id4);
    assert_eq!(pg_schema_owner(&pg, &id5), id5);
    for a in [&n4, &n5] {
        e.ok(&["start", a]);
        add_note(&e, a, "own role");
        e.ok(&["delete", a, "--drop-db", "--yes"]);
    }
    for id in [&id4, &id5] {
        assert_left_nothing(&pg, id);
    }
    drop(e);
    creator.remove();
}

#[test]
fn mariadb_without_create_is_refused_naming_the_right_and_nothing_is_created() {
    let my = my();
    let none = Account::my(&my, "htest_none_", &["GRANT SELECT ON *.* TO {user}"]);
    let e = TestEngine::start_with(&data_service(&none.url));
    let m1 = uniq("mn");
    let err = e.fails(&["create", &m1]);
    assert!(
        err.contains("may not create databases")
            && err.contains("lacks the CREATE privilege")
            && err.contains(&none.name),
        "{err}"
    );
    assert!(!e.listed(&m1));
    assert_left_nothing(&my, &ident(&m1));
    drop(e);
    none.remove();
}

#[test]
fn mariadb_without_create_user_creates_with_the_service_account_and_says_so() {
    let my = my();
    let nouser = Account::my(
        &my,
        "htest_nouser_",
        &["GRANT SELECT, INSERT, UPDATE, DELETE, CREATE, DROP, ALTER, INDEX, REFERENCES ON *.* TO {user}"],
    );
    let e = TestEngine::start_with(&data_service(&nouser.url));
    let m2 = uniq("mn");
    let out = e.ok(&["create", &m2]);
    assert!(
        out.contains("note:")
            && out.contains("may not create users")
            && out.contains("CREATE USER"),
        "{out}"
    );
    e.ok(&["start", &m2]);
    add_note(&e, &m2, "through the service account");
    let mid2 = ident(&m2);
    assert_eq!(
        count(&my, &format!("SELECT COUNT(*) FROM `{mid2}`.notes")),
        1
    );
    let out = e.ok(&["delete", &m2, "--drop-db", "--yes"]);
    assert!(
        out.contains(&format!("dropped: MySQL database {mid2}")) && !out.contains("MySQL user"),
        "{out}"
    );
    assert_left_nothing(&my, &mid2);
    drop(e);
    nouser.remove();
}

// ---- failures midway ---------------------------------------------------------------------------

#[test]
fn a_database_already_there_is_refused_before_the_role_is_made() {
    let pg = pg();
    let e = TestEngine::start_with(&data_service(&pg));
    let c = uniq("pc");
    let cid = ident(&c);
    {
        let _g = pg_create_lock();
        sql(&pg, &[&format!("CREATE DATABASE \"{cid}\"")]);
    }
    let err = e.fails(&["create", &c]);
    assert!(
        err.contains(&format!("already has a database named {cid}")),
        "{err}"
    );
    assert_eq!(how_many(&pg, Object::PgRole, &cid), 0);
    assert!(!e.listed(&c));
    sql(&pg, &[&format!("DROP DATABASE \"{cid}\"")]);
}

/// The role is made, then CREATE DATABASE fails (its template is in use): the role goes.
#[test]
fn a_failed_create_database_drops_the_role_made_before_it() {
    let pg = pg();
    let e = TestEngine::start_with(&data_service(&pg));
    let m = uniq("pm");
    let mid = ident(&m);
    let err = {
        let _g = PG_CREATES.write().unwrap_or_else(|p| p.into_inner());
        let runtime = rt();
        let holder = runtime
            .block_on(sqlx::PgConnection::connect(&on_db(&pg, "template1")))
            .unwrap();
        let err = e.fails(&["create", &m]);
        runtime.block_on(holder.close()).unwrap();
        err
    };
    assert!(err.contains("creating the database failed"), "{err}");
    assert!(
        err.contains(&format!("PostgreSQL role {mid}")) && err.contains("dropped again"),
        "{err}"
    );
    assert_left_nothing(&pg, &mid);
    assert!(!e.listed(&m));
    assert!(!e.home_path().join("apps").join(&m).exists());
}

/// MariaDB: user and database made, then the grant is refused: both go.
#[test]
fn a_refused_mariadb_grant_drops_the_user_and_database_made_before_it() {
    let my = my();
    let nogrant = Account::my(
        &my,
        "htest_nogrant_",
        &["GRANT CREATE, DROP, CREATE USER ON *.* TO {user} WITH GRANT OPTION"],
    );
    let e = TestEngine::start_with(&data_service(&nogrant.url));
    let g = uniq("mg");
    let gid = ident(&g);
    let err = e.fails(&["create", &g]);
    assert!(
        err.contains("granting the user its database failed"),
        "{err}"
    );
    assert!(err.contains("dropped again"), "{err}");
    assert_left_nothing(&my, &gid);
    assert!(!e.listed(&g));
    drop(e);
    nogrant.remove();
}

// ---- isolation ---------------------------------------------------------------------------------

#[test]
fn postgres_apps_cannot_see_each_others_notes() {
    let pg = pg();
    let e = TestEngine::start_with(&data_service(&pg));
    let (a, b, s1, s2) = (uniq("ia"), uniq("ib"), uniq("is"), uniq("it"));
    {
        let _g = pg_create_lock();
        e.ok(&["create", &a]);
        e.ok(&["create", &b]);
    }
    e.ok(&["create", &s1, "--db", "schema"]);
    e.ok(&["create", &s2, "--db", "schema"]);
    for app in [&a, &b, &s1, &s2] {
        e.ok(&["start", app]);
        add_note(&e, app, &format!("secret of {app}"));
    }
    for app in [&a, &b, &s1, &s2] {
        assert_eq!(note_bodies(&e, app), vec![format!("secret of {app}")]);
    }
    // b's own role cannot even connect to a's database.
    let b_url = stored_url(&e, &b);
    let into_a = on_db(&b_url, &ident(&a));
    let err = count_try(&into_a, "SELECT COUNT(*) FROM notes").expect_err("b reads a");
    assert!(err.contains("permission denied"), "{err}");
    // s2's role cannot read s1's schema in the shared database.
    let s2_url = stored_url(&e, &s2);
    let err = count_try(
        &s2_url,
        &format!("SELECT COUNT(*) FROM \"{}\".notes", ident(&s1)),
    )
    .expect_err("s2 reads s1");
    assert!(err.contains("permission denied"), "{err}");
    assert_eq!(count(&s2_url, "SELECT COUNT(*) FROM notes"), 1);
    for app in [&a, &b, &s1, &s2] {
        e.ok(&["delete", app, "--drop-db", "--yes"]);
    }
}

#[test]
fn mariadb_apps_cannot_see_each_others_notes() {
    let my = my();
    let e = TestEngine::start_with(&data_service(&my));
    let (a, b) = (uniq("ma"), uniq("mb"));
    for app in [&a, &b] {
        e.ok(&["create", app]);
        e.ok(&["start", app]);
        add_note(&e, app, &format!("secret of {app}"));
    }
    assert_eq!(note_bodies(&e, &a), vec![format!("secret of {a}")]);
    let b_url = stored_url(&e, &b);
    let err = count_try(
        &b_url,
        &format!("SELECT COUNT(*) FROM `{}`.notes", ident(&a)),
    )
    .expect_err("b reads a");
    assert!(err.contains("denied"), "{err}");
    assert_eq!(count(&b_url, "SELECT COUNT(*) FROM notes"), 1);
    for app in [&a, &b] {
        e.ok(&["delete", app, "--drop-db", "--yes"]);
    }
}

// ---- upgrade -----------------------------------------------------------------------------------

#[test]
fn an_app_made_on_schema_v1_is_upgraded_on_start_with_its_notes_kept() {
    let mut e = TestEngine::start_with_env("", &[("HANGAR_DEMO_SCHEMA", "1")]);
    e.ok(&["create", "up1", "--start-mode", "with-main"]);
    e.ok(&["start", "up1"]);
    let (_, info) = e.get("/_app/up1/api/info");
    let info: Value = serde_json::from_str(&info).unwrap();
    assert_eq!(info["schema_version"], 1, "{info}");
    add_note(&e, "up1", "written on v1");

    e.stop_engine();
    e.set_env("HANGAR_DEMO_SCHEMA", "2");
    e.spawn();
    e.wait_status("up1", "running", Duration::from_secs(60));
    let log = e.log_text("up1");
    assert!(
        log.contains("upgrading from hangar-demo 0.1.0+schema.1 to hangar-demo 0.1.0+schema.2"),
        "the start ran the upgrade: {log}"
    );
    assert!(
        log.contains("upgraded to hangar-demo 0.1.0+schema.2"),
        "{log}"
    );
    let (_, info) = e.get("/_app/up1/api/info");
    let info: Value = serde_json::from_str(&info).unwrap();
    assert_eq!(info["schema_version"], 2, "{info}");
    add_note(&e, "up1", "written on v2");
    let all = notes(&e, "up1");
    let bodies: Vec<&str> = all.iter().map(|n| n["body"].as_str().unwrap()).collect();
    assert_eq!(bodies, vec!["written on v1", "written on v2"]);
    assert_eq!(all[1]["author"], "tests", "v2 keeps the author column");
}

#[test]
fn hangar_upgrade_reports_each_app_and_keeps_notes_on_postgres() {
    let pg = pg();
    let mut e = TestEngine::start_with_env(&data_service(&pg), &[("HANGAR_DEMO_SCHEMA", "1")]);
    let (x, y) = (uniq("ux"), uniq("uy"));
    {
        let _g = pg_create_lock();
        e.ok(&["create", &x]);
        e.ok(&["create", &y]);
    }
    e.ok(&["start", &x]);
    add_note(&e, &x, "before the upgrade");
    e.ok(&["stop", &x]);
    // Nothing moved yet.
    let out = e.ok(&["upgrade", &x]);
    assert!(
        out.lines()
            .any(|l| l.starts_with(x.as_str()) && l.contains("up-to-date")),
        "{out}"
    );

    e.stop_engine();
    e.set_env("HANGAR_DEMO_SCHEMA", "2");
    e.spawn();
    assert_eq!(e.status(&x), "stopped", "a stopped app stays stopped");
    let out = e.ok(&["upgrade", &x]);
    assert!(out.starts_with("NAME"), "a table: {out}");
    assert!(
        out.lines().any(|l| l.starts_with(x.as_str())
            && l.contains("upgraded")
            && l.contains("hangar-demo 0.1.0+schema.1 → hangar-demo 0.1.0+schema.2")),
        "{out}"
    );
    assert_eq!(
        e.status(&x),
        "stopped",
        "an explicit upgrade does not start it"
    );
    assert!(e
        .log_text(&x)
        .contains("upgrading from hangar-demo 0.1.0+schema.1 to hangar-demo 0.1.0+schema.2"));
    let id = ident(&x);
    assert_eq!(
        count(&on_db(&pg, &id), "SELECT COUNT(*) FROM information_schema.columns WHERE table_name = 'notes' AND column_name = 'author'"),
        1,
        "the v2 column is there"
    );

    let out = e.ok(&["upgrade", "--all", "--json"]);
    let reports: Vec<Value> = serde_json::from_str(&out).unwrap();
    let of = |n: &str| reports.iter().find(|r| r["name"] == n).cloned().unwrap();
    assert_eq!(of(&x)["result"], "up-to-date");
    assert_eq!(
        of(&y)["result"],
        "up-to-date",
        "never ran: nothing to upgrade from"
    );
    assert_eq!(
        of("main")["result"],
        "up-to-date",
        "main was upgraded when the engine started"
    );
    let (status, body) = e.api(
        reqwest::Method::POST,
        &format!("/apps/{x}/upgrade"),
        Some(json!({})),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["result"], "up-to-date");
    let (status, _) = e.api(
        reqwest::Method::POST,
        "/apps/nosuchapp/upgrade",
        Some(json!({})),
    );
    assert_eq!(status, 404);
    let out = e.hangar(&["upgrade"]);
    assert!(!out.status.success(), "upgrade wants a name or --all");

    e.ok(&["start", &x]);
    assert_eq!(note_bodies(&e, &x), vec!["before the upgrade"]);
    for a in [&x, &y] {
        e.ok(&["delete", a, "--drop-db", "--yes"]);
    }
}

#[test]
fn upgrading_a_running_app_restarts_it_and_a_failed_upgrade_leaves_it_in_error() {
    let demo = demo_bin();
    let toml = format!(
        r#"
[runtimes.good]
command = ["{demo}", "serve", "--port", "${{PORT}}"]
health = "/_health"
upgrade = ["{demo}", "upgrade"]
version_command = ["cat", "version"]

[runtimes.bad]
command = ["{demo}", "serve", "--port", "${{PORT}}"]
health = "/_health"
upgrade = ["sh", "-c", "echo the-upgrade-says-no >&2; exit 7"]
version_command = ["cat", "version"]
"#,
        demo = demo.display()
    );
    let e = TestEngine::start_with(&toml);
    for (app, rt) in [("rg", "good"), ("rb", "bad")] {
        e.ok(&["create", app, "--runtime", rt]);
        std::fs::create_dir_all(e.home_path().join("apps").join(app)).unwrap();
        std::fs::write(
            e.home_path().join("apps").join(app).join("version"),
            "1.0\n",
        )
        .unwrap();
        e.ok(&["start", app]);
        add_note(&e, app, "kept");
        std::fs::write(
            e.home_path().join("apps").join(app).join("version"),
            "1.1\n",
        )
        .unwrap();
    }
    let pid = e.app("rg")["pid"].as_u64().unwrap();
    let out = e.ok(&["upgrade", "rg", "--json"]);
    let r: Vec<Value> = serde_json::from_str(&out).unwrap();
    assert_eq!(r[0]["result"], "upgraded", "{out}");
    assert_eq!(r[0]["from"], "1.0");
    assert_eq!(r[0]["to"], "1.1");
    e.wait_status("rg", "running", Duration::from_secs(60));
    assert_ne!(
        e.app("rg")["pid"].as_u64().unwrap(),
        pid,
        "stopped and started again"
    );
    assert_eq!(note_bodies(&e, "rg"), vec!["kept"]);

    let err = e.fails(&["upgrade", "rb"]);
    assert!(
        err.contains("rb was not upgraded") && err.contains("exit status: 7"),
        "{err}"
    );
    let rb = e.app("rb");
    assert_eq!(rb["status"], "error");
    assert!(rb["pid"].is_null(), "not started after a failed upgrade");
    assert!(
        rb["error"]
            .as_str()
            .unwrap()
            .contains("the-upgrade-says-no"),
        "the log excerpt is in the error: {rb}"
    );
    let out = e.hangar(&["upgrade", "--all"]);
    assert!(!out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("rb") && l.contains("failed")),
        "{stdout}"
    );
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("rg") && l.contains("up-to-date")),
        "{stdout}"
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("1 of"),
        "{out:?}"
    );
}

#[test]
fn test_connection_reports_the_servers_reason_without_the_password() {
    let e = TestEngine::start();
    let good = pg();
    let (status, v) = e.api(
        reqwest::Method::POST,
        "/db/test",
        Some(serde_json::json!({ "url": good })),
    );
    assert_eq!(status, 200);
    assert_eq!(v["ok"], true, "{v}");
    let bad = as_user(&pg(), "postgres", "wrong-password-123");
    let (_, v) = e.api(
        reqwest::Method::POST,
        "/db/test",
        Some(serde_json::json!({ "url": bad })),
    );
    assert_eq!(v["ok"], false, "{v}");
    let msg = v["message"].as_str().unwrap();
    assert!(
        msg.contains("password authentication failed"),
        "the server's reason: {msg}"
    );
    assert!(!msg.contains("wrong-password-123"), "{msg}");
    assert_eq!(e.list().len(), 1, "testing saves nothing");
}

/// A runtime whose command and upgrade name `${DATABASE_URL}` (the password inside): the
/// `starting:` and `upgrading` lines carry the template, so the password reaches no log file,
/// no answer of the API (issue 15).
#[test]
fn the_start_and_upgrade_lines_log_the_template_never_the_password() {
    let pg = pg();
    let demo = demo_bin().display().to_string();
    let runtime = |version: &str| {
        format!(
            "[runtimes.leaky]\n\
             command = [\"/bin/sh\", \"-c\", \"exec \\\"$0\\\" serve --port \\\"$1\\\"\", {demo:?}, \"${{PORT}}\", \"${{DATABASE_URL}}\"]\n\
             upgrade = [\"/bin/sh\", \"-c\", \"exec \\\"$0\\\" upgrade\", {demo:?}, \"${{DATABASE_URL}}\"]\n\
             version = \"{version}\"\n"
        )
    };
    let mut e = TestEngine::start_with(&format!("{}{}", data_service(&pg), runtime("1")));
    let app = uniq("lk");
    {
        let _g = pg_create_lock();
        e.ok(&["create", &app, "--runtime", "leaky"]);
    }
    e.ok(&["start", &app]);
    add_note(&e, &app, "kept");
    let password = password_of(&stored_url(&e, &app));
    let log = e.log_text(&app);
    assert!(log.contains("starting: /bin/sh -c"), "{log}");
    assert!(log.contains("${DATABASE_URL}"), "the template: {log}");
    e.ok(&["stop", &app]);

    // A new runtime version: the upgrade runs (after its automatic backup) on the next start.
    e.stop_engine();
    let toml = e.home_path().join("hangar.toml");
    let text = std::fs::read_to_string(&toml).unwrap();
    std::fs::write(&toml, text.replace("version = \"1\"", "version = \"2\"")).unwrap();
    e.spawn();
    e.ok(&["start", &app]);
    let log = e.log_text(&app);
    assert!(log.contains("upgrading from 1 to 2: /bin/sh -c"), "{log}");
    assert_eq!(note_bodies(&e, &app), vec!["kept"]);
    assert_secret_nowhere(&e, &password, &[&app]);
    e.ok(&["delete", &app, "--drop-db", "--yes"]);
}

/// `_` and `%` are wildcards in a database-level GRANT: the grant of an app named `X_a` (its
/// database `hangar_X_a`) also covered `hangar_Xba`. Each app now reaches its own database
/// only (issue 15).
#[test]
fn mariadb_grants_escape_wildcards_so_team_a_cannot_reach_teamba() {
    let my = my();
    let e = TestEngine::start_with(&data_service(&my));
    let base = uniq("t");
    let (a, b) = (format!("{base}_a"), format!("{base}ba"));
    for app in [&a, &b] {
        e.ok(&["create", app]);
        e.ok(&["start", app]);
        add_note(&e, app, &format!("secret of {app}"));
    }
    for (me, other) in [(&a, &b), (&b, &a)] {
        let url = stored_url(&e, me);
        let err = count_try(
            &url,
            &format!("SELECT COUNT(*) FROM `{}`.notes", ident(other)),
        )
        .expect_err("one app reads another's database");
        assert!(err.contains("denied"), "{me} reading {other}: {err}");
        assert_eq!(count(&url, "SELECT COUNT(*) FROM notes"), 1);
    }
    for app in [&a, &b] {
        e.ok(&["delete", app, "--drop-db", "--yes"]);
    }
}
