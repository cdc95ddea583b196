//! The notes of a `hangar-demo` app, written and read through the proxy: what the tests put
//! in an app's database and look for afterwards.
#![allow(dead_code)]

use serde_json::{json, Value};

use super::TestEngine;

/// Add a note through the app's API; it must be created (201).
pub fn add_note(e: &TestEngine, app: &str, body: &str) {
    let resp = e
        .http
        .post(e.proxy_url(&format!("/_app/{app}/api/notes")))
        .json(&json!({ "body": body, "author": "tests" }))
        .send()
        .unwrap();
    assert_eq!(
        resp.status().as_u16(),
        201,
        "{}",
        resp.text().unwrap_or_default()
    );
}

/// The app's notes, as its API lists them (oldest first).
pub fn notes(e: &TestEngine, app: &str) -> Vec<Value> {
    let (status, body) = e.get(&format!("/_app/{app}/api/notes"));
    assert_eq!(status, 200, "{body}");
    serde_json::from_str::<Value>(&body)
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

/// The bodies of the app's notes, oldest first.
pub fn note_bodies(e: &TestEngine, app: &str) -> Vec<String> {
    notes(e, app)
        .iter()
        .map(|n| n["body"].as_str().unwrap_or("").to_string())
        .collect()
}
