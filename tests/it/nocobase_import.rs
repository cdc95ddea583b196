//! `import nocobase` onto a home with the `nocobase` preset: the imported sub-app starts the real
//! NocoBase (never the demo app) on the database NocoBase's multi-app manager gave it, installs
//! itself there on its first start, and answers under its prefix. Needs the real NocoBase
//! (`scripts/install-nocobase.sh`) and the throwaway PostgreSQL; fails when either is missing.

use crate::common;

use std::time::Duration;

use common::nocobase::{nocobase_app, path_with_node};
use common::sql::*;
use common::*;
use serde_json::{json, Value};

#[test]
fn an_imported_sub_app_runs_nocobase_on_its_own_database() {
    let pg = pg();
    let app = nocobase_app();
    let path = path_with_node(&app);
    let u = uniq("");
    let (main_db, sub) = (format!("nbmain_{u}"), format!("a_nb{u}"));
    sql(
        &pg,
        &[
            &format!("CREATE DATABASE {main_db}"),
            &format!("CREATE DATABASE {sub}"),
        ],
    );
    // The main database's multi-app table, as the manager defines it, with one sub-app in
    // new-database mode that never started (its database is empty).
    let main_url = on_db(&pg, &main_db);
    sql(
        &main_url,
        &[
            "CREATE TABLE applications (name varchar(255) PRIMARY KEY, \"displayName\" varchar(255), \
             cname varchar(255) UNIQUE, pinned boolean, status varchar(255), options jsonb)",
            &format!(
                "INSERT INTO applications (name, \"displayName\", pinned, status, options) VALUES \
                 ('{sub}', 'Imported', false, 'running', '{}')",
                json!({"autoStart": false, "dbConnType": "new_database"})
            ),
        ],
    );
    let toml = format!(
        "[runtimes.nocobase]\npreset = \"nocobase\"\ncwd = {:?}\n",
        app.display().to_string()
    );
    let e = TestEngine::start_with_env(&toml, &[("PATH", &path)]);
    let v: Value =
        serde_json::from_str(&e.ok(&["import", "nocobase", "--from", &main_url, "--json"]))
            .unwrap();
    assert_eq!(v["runtime"], "nocobase", "{v}");
    let (_, shown) = e.api(reqwest::Method::GET, &format!("/apps/{sub}"), None);
    assert_eq!(shown["runtime"], "nocobase", "{shown}");

    // Its first visit starts NocoBase, which installs itself into the empty database.
    let health = format!("/_app/{sub}/api/__health_check");
    e.ok(&["start", &sub]);
    wait_until(
        "the imported NocoBase to answer its health check",
        Duration::from_secs(600),
        || e.get(&health) == (200, "ok".to_string()),
    );
    let sub_url = on_db(&pg, &sub);
    let tables = |name: &str| {
        count(
            &sub_url,
            &format!("SELECT COUNT(*) FROM information_schema.tables WHERE table_name = '{name}'"),
        )
    };
    assert!(
        tables("applicationPlugins") + tables("application_plugins") > 0,
        "NocoBase's own tables"
    );
    assert_eq!(tables("notes"), 0, "the demo app never ran on it");
    e.ok(&["stop", &sub]);
    // Attached, so never dropped by Hangar.
    e.ok(&["delete", &sub, "--yes"]);
    assert!(tables("applicationPlugins") + tables("application_plugins") > 0);
}
