//! Data in and out (issue 9), end to end: the real CLI and engine, hangar-demo apps writing
//! notes through the proxy, and the real PostgreSQL and MariaDB of `scripts/test-db.sh`
//! (HANGAR_TEST_PG_URL, HANGAR_TEST_MYSQL_URL). A test that needs a server fails, saying how to
//! start them, when its URL is not set.
//!
//! - backup → delete --drop-db → restore → the notes are back (SQLite, PostgreSQL database,
//!   PostgreSQL schema, MariaDB); a restore under a new name runs beside the original with
//!   data of its own; an upgrade leaves an automatic backup that restores;
//! - `import nocobase` from a NocoBase `applications` table built after the documented
//!   collection (plugin-multi-app-manager: name, displayName, cname, pinned, icon, status,
//!   options JSON, sort, createdAt, updatedAt) on each dialect: dry run, run, second run,
//!   conflicts.

use crate::common;

use std::time::Duration;

use common::notes::{add_note, note_bodies};
use common::sql::{
    assert_left_nothing, count_try as count, data_service, exists, ident, my, on_db, pg, sql, uniq,
    Object,
};
use common::*;
use serde_json::{json, Value};

// ---- apps ------------------------------------------------------------------------------------

/// The bodies of the app's notes, sorted.
fn notes(e: &TestEngine, app: &str) -> Vec<String> {
    let mut v = note_bodies(e, app);
    v.sort();
    v
}

fn backups(e: &TestEngine, app: &str) -> Vec<Value> {
    serde_json::from_str::<Value>(&e.ok(&["backups", app, "--json"]))
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

/// The archive `hangar backup` made: its file name, from the CLI's own words.
fn backup(e: &TestEngine, app: &str) -> String {
    let out = e.ok(&["backup", app]);
    assert!(out.starts_with(&format!("backed up {app} to ")), "{out}");
    let path = out
        .split(" to ")
        .nth(1)
        .unwrap()
        .split(" (")
        .next()
        .unwrap()
        .to_string();
    assert!(std::path::Path::new(&path).is_file(), "{path}");
    assert!(
        path.starts_with(e.home_path().join("backups").to_str().unwrap()),
        "{path}"
    );
    path
}

/// Notes in, backup, delete with the database dropped, restore: the notes are back, in a
/// database made anew. Returns the archive.
fn round_trip(e: &TestEngine, app: &str, create_args: &[&str], gone: impl Fn() -> bool) -> String {
    let mut args = vec!["create", app];
    args.extend_from_slice(create_args);
    e.ok(&args);
    e.ok(&["start", app]);
    add_note(e, app, "first note");
    add_note(e, app, "second note");
    std::fs::write(
        e.home_path().join("apps").join(app).join("upload.txt"),
        "a file of the app",
    )
    .unwrap();
    let archive = backup(e, app);

    let out = e.ok(&["delete", app, "--drop-db", "--yes"]);
    assert!(
        out.contains("a backup taken just before"),
        "a dropping delete backs up first: {out}"
    );
    assert!(gone(), "the database was dropped");
    assert!(!e.home_path().join("apps").join(app).exists());
    let auto = backups(e, app);
    assert!(
        auto.iter()
            .any(|b| b["reason"] == "before-delete" && b["automatic"] == true),
        "{auto:?}"
    );

    let out = e.ok(&["restore", &archive]);
    assert!(out.starts_with(&format!("restored {app} ")), "{out}");
    assert!(!gone(), "a database was made anew");
    assert_eq!(
        e.status(app),
        "stopped",
        "an on-visit app waits for its visit"
    );
    e.ok(&["start", app]);
    assert_eq!(notes(e, app), vec!["first note", "second note"]);
    assert_eq!(
        std::fs::read_to_string(e.home_path().join("apps").join(app).join("upload.txt")).unwrap(),
        "a file of the app",
        "the data folder is back"
    );
    archive
}

/// Restore under a new name beside the original: both run, and their notes part ways.
fn beside(e: &TestEngine, app: &str, archive: &str) -> String {
    let copy = uniq("cp");
    let out = e.ok(&["restore", archive, "--as", &copy]);
    assert!(out.starts_with(&format!("restored {copy} ")), "{out}");
    e.ok(&["start", &copy]);
    assert_eq!(e.status(app), "running");
    assert_ne!(
        e.app(app)["port"],
        e.app(&copy)["port"],
        "a port of its own"
    );
    assert_ne!(
        e.app(app)["db"],
        e.app(&copy)["db"],
        "a database of its own"
    );
    assert_eq!(notes(e, &copy), vec!["first note", "second note"]);
    add_note(e, &copy, "only in the copy");
    add_note(e, app, "only in the original");
    assert_eq!(
        notes(e, &copy),
        vec!["first note", "only in the copy", "second note"]
    );
    assert_eq!(
        notes(e, app),
        vec!["first note", "only in the original", "second note"]
    );
    copy
}

#[test]
fn sqlite_backup_delete_restore_and_a_copy_beside() {
    let e = TestEngine::start();
    let app = uniq("sq");
    let file = e.home_path().join("apps").join(&app).join("db.sqlite");
    let archive = round_trip(&e, &app, &[], || !file.exists());
    beside(&e, &app, &archive);
    // An archive in backups/ is also found by its name alone.
    let name = std::path::Path::new(&archive)
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    let err = e.fails(&["restore", &name]);
    assert!(err.contains("exists") && err.contains("--as"), "{err}");
}

#[test]
fn postgres_database_backup_delete_restore_and_a_copy_beside() {
    let pg = pg();
    let e = TestEngine::start_with(&data_service(&pg));
    let app = uniq("pd");
    let id = ident(&app);
    let probe = on_db(&pg, "postgres");
    let archive = round_trip(&e, &app, &[], || !exists(&probe, Object::PgDatabase, &id));
    beside(&e, &app, &archive);
}

#[test]
fn postgres_schema_backup_delete_restore_and_a_copy_beside() {
    let pg = pg();
    let e = TestEngine::start_with(&data_service(&pg));
    let app = uniq("ps");
    let id = ident(&app);
    let archive = round_trip(&e, &app, &["--db", "schema"], || {
        !exists(&pg, Object::PgSchema, &id)
    });
    let copy = beside(&e, &app, &archive);
    // The copy's rows are in its own schema, the original's in its.
    let copy_id = ident(&copy);
    assert_eq!(
        count(&pg, &format!("SELECT COUNT(*) FROM {copy_id}.notes")).unwrap(),
        3
    );
    assert_eq!(
        count(&pg, &format!("SELECT COUNT(*) FROM {id}.notes")).unwrap(),
        3
    );
}

#[test]
fn mariadb_backup_delete_restore_and_a_copy_beside() {
    let my = my();
    let e = TestEngine::start_with(&data_service(&my));
    let app = uniq("md");
    let id = ident(&app);
    let archive = round_trip(&e, &app, &[], || !exists(&my, Object::MyDatabase, &id));
    beside(&e, &app, &archive);
}

#[test]
fn restore_refuses_what_it_cannot_do_and_leaves_nothing() {
    let e = TestEngine::start();
    let app = uniq("rf");
    e.ok(&["create", &app]);
    e.ok(&["start", &app]);
    add_note(&e, &app, "kept");
    let archive = backup(&e, &app);
    // Not an archive.
    let junk = e.home_path().join("junk.tar.gz");
    std::fs::write(&junk, "not gzip").unwrap();
    let err = e.fails(&["restore", junk.to_str().unwrap(), "--as", "x1"]);
    assert!(err.contains("not a Hangar backup"), "{err}");
    // A bad new name: create's own rule.
    let err = e.fails(&["restore", &archive, "--as", "Bad Name"]);
    assert!(err.contains("lowercase letter"), "{err}");
    // A SQLite dump goes into a SQLite file, nowhere else.
    let err = e.fails(&["restore", &archive, "--as", "x2", "--db", "schema"]);
    assert!(err.contains("SQLite"), "{err}");
    let names = e.names();
    assert_eq!(names.len(), 2, "nothing half-restored: {names:?}");
    assert!(!e.home_path().join("apps/x1").exists() && !e.home_path().join("apps/x2").exists());
}

#[test]
fn an_upgrade_leaves_an_automatic_backup_that_restores() {
    let mut e = TestEngine::start_with_env("", &[("HANGAR_DEMO_SCHEMA", "1")]);
    let app = uniq("up");
    e.ok(&["create", &app]);
    e.ok(&["start", &app]);
    add_note(&e, &app, "written on v1");
    e.ok(&["stop", &app]);
    assert!(
        backups(&e, &app).is_empty(),
        "no upgrade, no automatic backup"
    );

    e.stop_engine();
    e.set_env("HANGAR_DEMO_SCHEMA", "2");
    e.spawn();
    let out = e.ok(&["upgrade", &app]);
    assert!(out.contains("upgraded"), "{out}");
    let list = backups(&e, &app);
    let auto: Vec<&Value> = list
        .iter()
        .filter(|b| b["reason"] == "before-upgrade")
        .collect();
    assert_eq!(auto.len(), 1, "{list:?}");
    assert!(
        e.log_text(&app).contains("before the upgrade"),
        "the app's log says so"
    );
    assert!(e.ok(&["backup", "--list"]).contains("before-upgrade"));

    // The backup holds the v1 database; restored beside, it is upgraded on its first start.
    let copy = uniq("old");
    e.ok(&["restore", auto[0]["name"].as_str().unwrap(), "--as", &copy]);
    e.ok(&["start", &copy]);
    assert_eq!(notes(&e, &copy), vec!["written on v1"]);
    assert!(
        e.log_text(&copy)
            .contains("upgrading from hangar-demo 0.1.0+schema.1"),
        "{}",
        e.log_text(&copy)
    );
}

#[test]
fn backup_all_into_a_folder_and_progress_through_the_api() {
    let e = TestEngine::start();
    let (a, b) = (uniq("ba"), uniq("bb"));
    e.ok(&["create", &a]);
    e.ok(&["create", &b]);
    let out_dir = tempfile::tempdir().unwrap();
    let out = e.ok(&["backup", "--all", "-o", out_dir.path().to_str().unwrap()]);
    for n in ["main", a.as_str(), b.as_str()] {
        assert!(
            out.contains(&format!("backed up {n} to {}", out_dir.path().display())),
            "{out}"
        );
    }
    assert_eq!(
        std::fs::read_dir(out_dir.path()).unwrap().count(),
        3,
        "no partial files left"
    );
    assert!(
        backups(&e, &a).is_empty(),
        "-o DIR is not the home's backups/"
    );
    // The API: a job, polled until done.
    let (status, v) = e.api(
        reqwest::Method::POST,
        &format!("/apps/{a}/backup"),
        Some(json!({})),
    );
    assert_eq!(status, 202, "{v}");
    let id = v["job"]["id"].as_str().unwrap().to_string();
    let mut last = Value::Null;
    wait_until("the backup job", Duration::from_secs(60), || {
        last = e.api(reqwest::Method::GET, &format!("/jobs/{id}"), None).1;
        last["state"] != "running"
    });
    assert_eq!(last["state"], "done", "{last}");
    assert_eq!(last["result"]["app"], a.as_str());
    assert!(last["bytes"].as_u64().unwrap() > 0);
    let (status, v) = e.api(reqwest::Method::POST, "/apps/nope/backup", Some(json!({})));
    assert_eq!(status, 404, "{v}");
}

// ---- hostile archives (issue 15) -----------------------------------------------------------

/// One entry of an archive: its header and its bytes.
type Entry = (tar::Header, Vec<u8>);

fn entries_of(archive: &str) -> Vec<Entry> {
    use std::io::Read;
    let f = std::fs::File::open(archive).unwrap();
    let mut input = tar::Archive::new(flate2::read::GzDecoder::new(f));
    input
        .entries()
        .unwrap()
        .map(|e| {
            let mut e = e.unwrap();
            let mut bytes = Vec::new();
            e.read_to_end(&mut bytes).unwrap();
            (e.header().clone(), bytes)
        })
        .collect()
}

fn path_of(h: &tar::Header) -> String {
    h.path().unwrap().display().to_string()
}

/// Write `entries` as a .tar.gz at `to` (each header's size and checksum set again).
fn write_archive(to: &std::path::Path, entries: Vec<Entry>) {
    let out = std::fs::File::create(to).unwrap();
    let mut output = tar::Builder::new(flate2::write::GzEncoder::new(
        out,
        flate2::Compression::best(),
    ));
    for (mut header, bytes) in entries {
        if header.entry_type().is_file() {
            header.set_size(bytes.len() as u64);
        }
        header.set_cksum();
        output.append(&header, bytes.as_slice()).unwrap();
    }
    output.into_inner().unwrap().finish().unwrap();
}

/// A header for `path` of type `kind`, mode 0644.
fn header(path: &str, kind: tar::EntryType, link: Option<&str>) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_path(path).unwrap();
    h.set_entry_type(kind);
    h.set_mode(0o644);
    h.set_size(0);
    if let Some(l) = link {
        h.set_link_name(l).unwrap();
    }
    h
}

/// The archive's manifest changed by `edit`.
fn edit_manifest(entries: &mut [Entry], edit: impl Fn(&mut Value)) {
    let (h, bytes) = &mut entries[0];
    assert_eq!(path_of(h), "hangar-backup.json");
    let mut m: Value = serde_json::from_slice(bytes).unwrap();
    edit(&mut m);
    *bytes = serde_json::to_vec(&m).unwrap();
}

/// Every file under `dir` with its bytes (what must stay as it was).
fn snapshot(dir: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let t = e.file_type().unwrap();
            if t.is_dir() {
                todo.push(e.path());
            } else {
                let bytes = std::fs::read(e.path()).unwrap_or_default();
                out.push((e.path().display().to_string(), bytes));
            }
        }
    }
    out.sort();
    out
}

/// A restore of `crafted` as `name` is refused with `says`, and leaves no app, no data folder
/// and no staging folder behind.
fn refused(e: &TestEngine, crafted: &std::path::Path, name: &str, says: &str) -> String {
    let err = e.fails(&["restore", crafted.to_str().unwrap(), "--as", name]);
    assert!(err.contains(says), "{says:?} in: {err}");
    assert!(!e.names().contains(&name.to_string()), "nothing restored");
    assert!(!e.home_path().join("apps").join(name).exists());
    let left: Vec<_> = std::fs::read_dir(e.home_path().join("backups"))
        .unwrap()
        .flatten()
        .map(|d| d.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(left.is_empty(), "staging left behind: {left:?}");
    err
}

/// Links, devices and FIFOs in an archive: today `data/db.sqlite` as a symbolic link to any
/// file plus a `db.sqlite` payload made `restore` overwrite that file. Every such entry is
/// refused, and everything outside the staging folder stays as it was.
#[test]
fn a_restore_refuses_links_fifos_and_devices_and_touches_nothing_outside() {
    let e = TestEngine::start();
    let app = uniq("hl");
    e.ok(&["create", &app]);
    e.ok(&["start", &app]);
    add_note(&e, &app, "a note");
    let archive = backup(&e, &app);
    let outside = tempfile::tempdir().unwrap();
    let victim = outside.path().join("victim.txt");
    std::fs::write(&victim, "keep me").unwrap();
    let victim_s = victim.to_str().unwrap().to_string();
    let before = snapshot(outside.path());

    let kinds: Vec<(&str, tar::EntryType, Option<&str>, &str)> = vec![
        (
            "data/db.sqlite",
            tar::EntryType::Symlink,
            Some(victim_s.as_str()),
            "symbolic link",
        ),
        (
            "data/hard",
            tar::EntryType::Link,
            Some(victim_s.as_str()),
            "hard link",
        ),
        ("data/pipe", tar::EntryType::Fifo, None, "FIFO"),
        ("data/tty", tar::EntryType::Char, None, "device"),
        ("data/disk", tar::EntryType::Block, None, "device"),
    ];
    for (i, (path, kind, link, says)) in kinds.into_iter().enumerate() {
        let mut entries = entries_of(&archive);
        // The crafted entry goes before the payload that would be written through it.
        let at = entries
            .iter()
            .position(|(h, _)| path_of(h).starts_with("data"))
            .unwrap_or(entries.len());
        entries.insert(at, (header(path, kind, link), Vec::new()));
        // A second entry of the same name with a payload (what would land in the victim).
        let mut payload = header(path, tar::EntryType::Regular, None);
        payload.set_mode(0o644);
        entries.push((payload, b"overwritten".to_vec()));
        let crafted = e.home_path().join(format!("crafted{i}.tar.gz"));
        write_archive(&crafted, entries);
        refused(&e, &crafted, &format!("{app}x{i}"), says);
        assert_eq!(snapshot(outside.path()), before, "{path}: outside changed");
        use std::os::unix::fs::MetadataExt;
        assert_eq!(std::fs::metadata(&victim).unwrap().nlink(), 1, "{path}");
    }

    // A `db.sqlite` that comes twice is refused too (files are made new, never written over).
    let mut entries = entries_of(&archive);
    let twice = entries
        .iter()
        .find(|(h, _)| path_of(h) == "db.sqlite")
        .cloned()
        .expect("a db.sqlite entry");
    entries.push(twice);
    let crafted = e.home_path().join("twice.tar.gz");
    write_archive(&crafted, entries);
    refused(&e, &crafted, &format!("{app}tw"), "twice");

    // The untouched archive still restores.
    e.ok(&["restore", &archive, "--as", &format!("{app}ok")]);
    e.ok(&["start", &format!("{app}ok")]);
    assert_eq!(notes(&e, &format!("{app}ok")), vec!["a note"]);
}

/// A few kilobytes that inflate past `restore_max_bytes` stop there, and what was unpacked
/// goes again.
#[test]
fn a_gzip_bomb_stops_at_restore_max_bytes() {
    let e = TestEngine::start_with("restore_max_bytes = 1048576\n");
    let app = uniq("gb");
    e.ok(&["create", &app]);
    let archive = backup(&e, &app);
    let mut entries = entries_of(&archive);
    entries.push((
        header("data/zeros", tar::EntryType::Regular, None),
        vec![0u8; 8 << 20],
    ));
    let crafted = e.home_path().join("bomb.tar.gz");
    write_archive(&crafted, entries);
    let size = std::fs::metadata(&crafted).unwrap().len();
    assert!(size < 64 << 10, "a small archive: {size} bytes");
    refused(&e, &crafted, &format!("{app}b"), "restore_max_bytes");
}

/// The manifest is checked like operator input: an empty `db_schema` made the schema rename
/// loop forever; a bad name, env entry or key is refused naming the field.
#[test]
fn a_manifest_is_checked_like_operator_input() {
    let pg = pg();
    let e = TestEngine::start_with(&data_service(&pg));
    let app = uniq("mf");
    e.ok(&["create", &app, "--db", "schema"]);
    e.ok(&["start", &app]);
    add_note(&e, &app, "in a schema");
    let archive = backup(&e, &app);
    let cases: Vec<(&str, Value, &str)> = vec![
        ("db_schema", json!(""), "schema name"),
        (
            "db_schema",
            json!("a\"; DROP SCHEMA public; --"),
            "schema name",
        ),
        ("name", json!("../../etc"), "lowercase letter"),
        ("app_key", json!(""), "app key"),
    ];
    for (i, (field, value, says)) in cases.into_iter().enumerate() {
        let mut entries = entries_of(&archive);
        edit_manifest(&mut entries, |m| m["app"][field] = value.clone());
        let crafted = e.home_path().join(format!("manifest{i}.tar.gz"));
        write_archive(&crafted, entries);
        let err = refused(&e, &crafted, &format!("{app}m{i}"), says);
        assert!(err.contains("manifest"), "{err}");
    }
    let mut entries = entries_of(&archive);
    edit_manifest(&mut entries, |m| {
        m["app"]["env"] = json!({ "DATABASE_URL": "postgres://elsewhere/x" })
    });
    let crafted = e.home_path().join("manifest-env.tar.gz");
    write_archive(&crafted, entries);
    refused(&e, &crafted, &format!("{app}me"), "env entry");
    e.ok(&["delete", &app, "--drop-db", "--yes"]);
}

/// `db.sql` with `\! touch FILE` appended (outside any COPY block).
fn with_shell_line(archive: &str, to: &std::path::Path, marker: &std::path::Path) {
    let mut entries = entries_of(archive);
    let (_, sql) = entries
        .iter_mut()
        .find(|(h, _)| path_of(h) == "db.sql")
        .expect("a db.sql entry");
    // What an attacker writes: without the lines that make today's clients refuse client
    // commands themselves (pg_dump's `\restrict KEY`, mariadb-dump's sandbox comment).
    let text = String::from_utf8(sql.clone()).unwrap();
    let mut kept: String = text
        .lines()
        .filter(|l| {
            !l.starts_with("\\restrict")
                && !l.starts_with("\\unrestrict")
                && !l.contains("enable the sandbox mode")
        })
        .map(|l| format!("{l}\n"))
        .collect();
    kept.push_str(&format!("\\! touch {}\n", marker.display()));
    *sql = kept.into_bytes();
    write_archive(to, entries);
}

/// psql and the mariadb client both run `\! command`: a dump's client commands never run.
#[test]
fn a_dump_with_a_shell_command_runs_it_on_neither_server() {
    for (server, url) in [("pg", pg()), ("my", my())] {
        let e = TestEngine::start_with(&data_service(&url));
        let app = uniq(&format!("sh{server}"));
        e.ok(&["create", &app]);
        e.ok(&["start", &app]);
        add_note(&e, &app, "a note");
        let archive = backup(&e, &app);
        let outside = tempfile::tempdir().unwrap();
        let marker = outside.path().join("ran");
        let crafted = e.home_path().join("shell.tar.gz");
        with_shell_line(&archive, &crafted, &marker);
        let copy = format!("{app}c");
        let err = e.fails(&["restore", crafted.to_str().unwrap(), "--as", &copy]);
        assert!(!marker.exists(), "{server}: the dump's \\! ran ({err})");
        assert!(!e.names().contains(&copy), "{server}: nothing restored");
        assert_left_nothing(&url, &ident(&copy));
        // What `hangar backup` wrote restores as before.
        e.ok(&["restore", &archive, "--as", &format!("{app}k")]);
        e.ok(&["start", &format!("{app}k")]);
        assert_eq!(notes(&e, &format!("{app}k")), vec!["a note"]);
        for a in [app.clone(), format!("{app}k")] {
            e.ok(&["delete", &a, "--drop-db", "--yes"]);
        }
    }
}

// ---- import ----------------------------------------------------------------------------------

/// The `applications` table as NocoBase's multi-app manager defines it, on each dialect.
fn applications_ddl(dialect: &str) -> String {
    match dialect {
        "postgres" => "CREATE TABLE applications (name varchar(255) PRIMARY KEY, \"displayName\" varchar(255), \
             cname varchar(255) UNIQUE, pinned boolean, icon varchar(255), status varchar(255) DEFAULT 'pending', \
             options jsonb, sort bigint, \"createdAt\" timestamptz, \"updatedAt\" timestamptz)".into(),
        "mysql" => "CREATE TABLE applications (name varchar(255) PRIMARY KEY, `displayName` varchar(255), \
             cname varchar(255) UNIQUE, pinned tinyint(1), icon varchar(255), status varchar(255) DEFAULT 'pending', \
             options json, sort bigint, `createdAt` datetime, `updatedAt` datetime)".into(),
        _ => "CREATE TABLE applications (name varchar(255) PRIMARY KEY, displayName varchar(255), \
             cname varchar(255) UNIQUE, pinned tinyint(1), icon varchar(255), status varchar(255) DEFAULT 'pending', \
             options json, sort integer, createdAt datetime, updatedAt datetime)".into(),
    }
}

fn insert_app(
    dialect: &str,
    name: &str,
    display: &str,
    cname: Option<&str>,
    pinned: bool,
    options: &Value,
) -> String {
    let cname = cname.map(|c| format!("'{c}'")).unwrap_or("NULL".into());
    format!(
        "INSERT INTO applications (name, {dn}, cname, pinned, status, options) VALUES ('{name}', '{display}', {cname}, {p}, 'running', '{o}')",
        dn = if dialect == "postgres" { "\"displayName\"" } else { "displayName" },
        p = if pinned { "true" } else { "false" },
        o = options.to_string().replace('\'', "''")
    )
}

/// These tests check where the data goes with the demo app (its notes), so they name it; the
/// default, a NocoBase runtime, is `import_runs_a_nocobase_runtime_never_the_demo`'s.
fn import(e: &TestEngine, from: &str, dry: bool) -> Value {
    let mut args = vec![
        "import",
        "nocobase",
        "--from",
        from,
        "--runtime",
        "demo",
        "--json",
    ];
    if dry {
        args.push("--dry-run");
    }
    serde_json::from_str(&e.ok(&args)).unwrap()
}

fn names(v: &Value, key: &str) -> Vec<String> {
    let mut n: Vec<String> = v[key]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap().to_string())
        .collect();
    n.sort();
    n
}

fn reason_of(v: &Value, name: &str) -> String {
    v["conflicts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == name)
        .map(|r| r["reason"].as_str().unwrap_or("").to_string())
        .unwrap_or_else(|| panic!("{name} is not a conflict: {v}"))
}

/// Dry run, run, second run: the common part of every dialect's import test. `good` are the
/// rows that become apps; the others must be conflicts.
fn import_three_times(e: &TestEngine, from: &str, good: &[&str], bad: &[&str]) -> Value {
    let before = e.list().len();
    let dry = import(e, from, true);
    assert_eq!(dry["dry_run"], true);
    assert_eq!(names(&dry, "created"), sorted(good), "{dry}");
    assert_eq!(names(&dry, "conflicts"), sorted(bad), "{dry}");
    assert_eq!(e.list().len(), before, "a dry run changes nothing");
    let text = e.ok(&[
        "import",
        "nocobase",
        "--from",
        from,
        "--runtime",
        "demo",
        "--dry-run",
    ]);
    assert!(
        text.contains("would create") && text.contains("dry run"),
        "{text}"
    );
    assert!(
        !text.contains("hangar-test"),
        "no password in the report: {text}"
    );

    let run = import(e, from, false);
    assert_eq!(names(&run, "created"), sorted(good), "{run}");
    assert_eq!(names(&run, "conflicts"), sorted(bad), "{run}");
    assert_eq!(e.list().len(), before + good.len());

    let again = import(e, from, false);
    assert!(
        again["created"].as_array().unwrap().is_empty(),
        "a second run changes nothing: {again}"
    );
    assert_eq!(names(&again, "skipped"), sorted(good), "{again}");
    assert_eq!(e.list().len(), before + good.len());
    run
}

fn sorted(v: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = v.iter().map(|s| s.to_string()).collect();
    v.sort();
    v
}

#[test]
fn import_from_postgres_attaches_databases_and_schemas() {
    let pg = pg();
    let e = TestEngine::start();
    let u = uniq("");
    let main_db = format!("nbmain_{u}");
    let (a, s, c, missing) = (
        format!("a_db{u}"),
        format!("a_sc{u}"),
        format!("a_cn{u}"),
        format!("a_gone{u}"),
    );
    let legacy = format!("legacy_{u}");
    let taken = format!("a_taken{u}");
    sql(
        &pg,
        &[
            &format!("CREATE DATABASE {main_db}"),
            &format!("CREATE DATABASE {a}"),
            &format!("CREATE DATABASE {legacy}"),
        ],
    );
    let main_url = on_db(&pg, &main_db);
    let pg_url = url::Url::parse(&pg).unwrap();
    sql(
        &main_url,
        &[
            &applications_ddl("postgres"),
            &format!("CREATE SCHEMA {s}"),
            &insert_app(
                "postgres",
                &a,
                "Shop",
                Some(&format!("shop-{u}.example.com")),
                true,
                &json!({"autoStart": false}),
            ),
            &insert_app(
                "postgres",
                &s,
                "Schema app",
                None,
                false,
                &json!({"dbConnType": "new_schema", "autoStart": true}),
            ),
            &insert_app(
                "postgres",
                &c,
                "Elsewhere",
                None,
                false,
                &json!({"dbConnType": "new_connection", "database": {
            "dialect": "postgres", "host": "127.0.0.1", "port": pg_url.port().unwrap(), "username": "postgres",
            "password": "hangar-test", "database": legacy}}),
            ),
            &insert_app("postgres", &missing, "No database", None, false, &json!({})),
            &insert_app(
                "postgres",
                "Bad-Name",
                "Upper case",
                None,
                false,
                &json!({}),
            ),
            &insert_app("postgres", "main", "Reserved", None, false, &json!({})),
            &insert_app("postgres", &taken, "Taken", None, false, &json!({})),
        ],
    );
    // A Hangar app already has one row's name, with another database.
    e.ok(&["create", &taken]);

    let run = import_three_times(
        &e,
        &main_url,
        &[&a, &s, &c],
        &[&missing, "Bad-Name", "main", &taken],
    );
    assert!(reason_of(&run, "Bad-Name").contains("lowercase"), "{run}");
    assert!(reason_of(&run, "main").contains("reserved"), "{run}");
    assert!(
        reason_of(&run, &taken).contains("taken by a different app"),
        "{run}"
    );
    assert!(
        reason_of(&run, &missing).contains("cannot be used"),
        "{run}"
    );

    // The imported apps: attached, as the rows say, and they run on the legacy data.
    let app = e.app(&a);
    assert_eq!(app["display_name"], "Shop");
    assert_eq!(app["domain"], format!("shop-{u}.example.com"));
    assert_eq!(app["pinned"], true);
    assert_eq!(app["start_mode"], "on-visit");
    assert_eq!(e.app(&s)["start_mode"], "with-main");
    assert!(e.app(&s)["db"]
        .as_str()
        .unwrap()
        .contains(&format!("schema {s}")));
    for n in [&a, &s, &c] {
        e.ok(&["start", n]);
        add_note(&e, n, "on legacy data");
    }
    assert_eq!(
        count(&on_db(&pg, &a), "SELECT COUNT(*) FROM notes").unwrap(),
        1
    );
    assert_eq!(
        count(&main_url, &format!("SELECT COUNT(*) FROM {s}.notes")).unwrap(),
        1
    );
    assert_eq!(
        count(&on_db(&pg, &legacy), "SELECT COUNT(*) FROM notes").unwrap(),
        1
    );
    // Never dropped by Hangar.
    let err = e.fails(&["delete", &a, "--drop-db", "--yes"]);
    assert!(err.contains("attached"), "{err}");
    e.ok(&["delete", &a, "--yes"]);
    assert_eq!(
        count(&on_db(&pg, &a), "SELECT COUNT(*) FROM notes").unwrap(),
        1,
        "the legacy data stays"
    );
}

#[test]
fn import_from_mariadb() {
    let my = my();
    let e = TestEngine::start();
    let u = uniq("");
    let main_db = format!("nbmain_{u}");
    let (a, b, missing) = (
        format!("a_one{u}"),
        format!("a_two{u}"),
        format!("a_gone{u}"),
    );
    sql(
        &my,
        &[
            &format!("CREATE DATABASE {main_db}"),
            &format!("CREATE DATABASE {a}"),
            &format!("CREATE DATABASE {b}"),
        ],
    );
    let main_url = on_db(&my, &main_db);
    sql(
        &main_url,
        &[
            &applications_ddl("mysql"),
            &insert_app(
                "mysql",
                &a,
                "One",
                None,
                true,
                &json!({"autoStart": true, "dbConnType": "new_database"}),
            ),
            &insert_app("mysql", &b, "Two", None, false, &json!({})),
            &insert_app("mysql", &missing, "Gone", None, false, &json!({})),
            &insert_app(
                "mysql",
                "schema_here",
                "Schema on MySQL",
                None,
                false,
                &json!({"dbConnType": "new_schema"}),
            ),
        ],
    );
    let run = import_three_times(&e, &main_url, &[&a, &b], &[&missing, "schema_here"]);
    assert!(
        reason_of(&run, "schema_here").contains("PostgreSQL only"),
        "{run}"
    );
    assert_eq!(e.app(&a)["start_mode"], "with-main");
    assert_eq!(e.app(&a)["pinned"], true);
    e.ok(&["start", &b]);
    add_note(&e, &b, "on legacy data");
    assert_eq!(
        count(&on_db(&my, &b), "SELECT COUNT(*) FROM notes").unwrap(),
        1
    );
}

#[test]
fn import_from_sqlite() {
    let e = TestEngine::start();
    let dir = tempfile::tempdir().unwrap();
    let main_file = dir.path().join("main.sqlite");
    let url = format!("sqlite://{}?mode=rwc", main_file.display());
    sql(
        &url,
        &[
            &applications_ddl("sqlite"),
            &insert_app(
                "sqlite",
                "a_first",
                "First",
                Some("first.example.com"),
                false,
                &json!({}),
            ),
            &insert_app(
                "sqlite",
                "a_second",
                "Second",
                None,
                true,
                &json!({"database": {"dialect": "sqlite", "storage": dir.path().join("elsewhere.sqlite").display().to_string()}}),
            ),
            &insert_app(
                "sqlite",
                "a_rel",
                "Relative",
                None,
                false,
                &json!({"database": {"dialect": "sqlite", "storage": "storage/db/a_rel.sqlite"}}),
            ),
            &insert_app("sqlite", "a_badjson", "Bad", None, false, &json!({})),
            "UPDATE applications SET options = '{not json' WHERE name = 'a_badjson'",
        ],
    );
    // The sub-apps' own files, where NocoBase made them.
    for f in ["a_first.sqlite", "elsewhere.sqlite"] {
        sql(
            &format!("sqlite://{}?mode=rwc", dir.path().join(f).display()),
            &["CREATE TABLE legacy_marker (x integer)"],
        );
    }
    let from = format!("sqlite://{}", main_file.display());
    let run = import_three_times(&e, &from, &["a_first", "a_second"], &["a_rel", "a_badjson"]);
    assert!(reason_of(&run, "a_rel").contains("relative"), "{run}");
    assert!(reason_of(&run, "a_badjson").contains("not JSON"), "{run}");
    assert_eq!(e.app("a_first")["domain"], "first.example.com");
    e.ok(&["start", "a_first"]);
    add_note(&e, "a_first", "beside the main file");
    assert_eq!(notes(&e, "a_first"), vec!["beside the main file"]);
    assert!(
        e.app("a_first")["db"]
            .as_str()
            .unwrap()
            .ends_with(&format!("{}/a_first.sqlite", dir.path().display())),
        "NocoBase's place: beside the main database"
    );
    assert!(e.app("a_second")["db"]
        .as_str()
        .unwrap()
        .ends_with("elsewhere.sqlite"));
    // A domain now taken by an imported app makes a clear conflict elsewhere.
    let err = e.fails(&["create", "other", "--domain", "first.example.com"]);
    assert!(err.contains("a_first"), "{err}");
}

#[test]
fn import_runs_a_nocobase_runtime_never_the_demo() {
    let dir = tempfile::tempdir().unwrap();
    let main_file = dir.path().join("main.sqlite");
    sql(
        &format!("sqlite://{}?mode=rwc", main_file.display()),
        &[
            &applications_ddl("sqlite"),
            // Never started: NocoBase has not made its file yet.
            &insert_app("sqlite", "a_fresh", "Fresh", None, false, &json!({})),
            &insert_app(
                "sqlite",
                "a_nowhere",
                "Nowhere",
                None,
                false,
                &json!({"database": {"dialect": "sqlite", "storage": "/nonexistent-hangar-dir/a.sqlite"}}),
            ),
        ],
    );
    let from = format!("sqlite://{}", main_file.display());

    // A home without a NocoBase runtime: refused, saying what to add; nothing is made.
    let plain = TestEngine::start();
    let before = plain.names();
    let err = plain.fails(&["import", "nocobase", "--from", &from]);
    assert!(
        err.contains("preset = \"nocobase\"") && err.contains("--runtime"),
        "{err}"
    );
    let err = plain.fails(&["import", "nocobase", "--from", &from, "--runtime", "nope"]);
    assert!(err.contains("\"nope\"") && err.contains("demo"), "{err}");
    assert_eq!(plain.names(), before, "a refused import makes nothing");

    // With one: the imported apps run it without being told, a second run changes nothing.
    let code = tempfile::tempdir().unwrap();
    let e = TestEngine::start_with(&format!(
        "[runtimes.nocobase]\npreset = \"nocobase\"\ncwd = {:?}\n",
        code.path().display().to_string()
    ));
    let v: Value =
        serde_json::from_str(&e.ok(&["import", "nocobase", "--from", &from, "--json"])).unwrap();
    assert_eq!(v["runtime"], "nocobase", "{v}");
    assert_eq!(names(&v, "created"), vec!["a_fresh"], "{v}");
    assert!(reason_of(&v, "a_nowhere").contains("folder"), "{v}");
    let app = e.app("a_fresh");
    let (_, shown) = e.api(reqwest::Method::GET, "/apps/a_fresh", None);
    assert_eq!(shown["runtime"], "nocobase", "{shown}");
    assert!(
        app["db"]
            .as_str()
            .unwrap()
            .ends_with(&format!("{}/a_fresh.sqlite", dir.path().display())),
        "{app}"
    );
    assert!(
        !dir.path().join("a_fresh.sqlite").exists(),
        "the import makes no file; the app does on its first start"
    );
    let again: Value =
        serde_json::from_str(&e.ok(&["import", "nocobase", "--from", &from, "--json"])).unwrap();
    assert_eq!(names(&again, "skipped"), vec!["a_fresh"], "{again}");
    // The same row under another runtime is a different app: a conflict, not a silent change.
    let other: Value = serde_json::from_str(&e.ok(&[
        "import",
        "nocobase",
        "--from",
        &from,
        "--runtime",
        "demo",
        "--json",
    ]))
    .unwrap();
    assert!(
        reason_of(&other, "a_fresh").contains("runtime nocobase"),
        "{other}"
    );
}
