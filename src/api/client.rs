//! The API's client, for the CLI: finds the engine of a home (starting one in the background
//! when none runs, as pm2 does) and turns API errors into one clear sentence.

use std::process::Stdio;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::base::home::Home;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("{message}")]
    Api {
        status: u16,
        code: String,
        field: Option<String>,
        message: String,
    },
    #[error("no engine runs on {0}; start one with `hangar serve`")]
    NoEngine(String),
    #[error("cannot reach the engine at {addr}: {source}")]
    Unreachable {
        addr: String,
        source: reqwest::Error,
    },
    #[error("the engine did not come up within {secs} s; see {log}")]
    Timeout { secs: u64, log: String },
    #[error("cannot start the engine: {0}")]
    Spawn(std::io::Error),
    #[error(transparent)]
    Home(#[from] crate::base::home::HomeError),
    #[error("unexpected answer from the engine: {0}")]
    Decode(String),
}

pub struct Client {
    base: String,
    token: String,
    http: reqwest::Client,
}

impl Client {
    /// Connect to the engine of `home`; with `autostart`, start one in the background first
    /// when none runs.
    pub async fn connect(home: &Home, autostart: bool) -> Result<Client, ClientError> {
        if !home.engine_running() {
            if !autostart {
                return Err(ClientError::NoEngine(home.root().display().to_string()));
            }
            start_background(home)?;
            eprintln!(
                "hangar: started the engine in the background (home {})",
                home.root().display()
            );
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            if let (Some(info), Ok(token)) = (home.engine_info(), home.read_token()) {
                let client = Client {
                    base: format!("http://{}/api/v1", info.api),
                    token,
                    http: reqwest::Client::builder()
                        .no_proxy()
                        .build()
                        .map_err(|e| ClientError::Decode(e.to_string()))?,
                };
                match client.get::<Value>("/engine").await {
                    Ok(_) => return Ok(client),
                    Err(e) if std::time::Instant::now() > deadline => return Err(e),
                    Err(_) => {}
                }
            } else if std::time::Instant::now() > deadline {
                return Err(ClientError::Timeout {
                    secs: 30,
                    log: home.engine_log().display().to_string(),
                });
            }
            if !home.engine_running() && !autostart {
                return Err(ClientError::NoEngine(home.root().display().to_string()));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    pub fn token(&self) -> &str {
        &self.token
    }

    /// One request: the answer's text on success, the API's error otherwise.
    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<String, ClientError> {
        let unreachable = |source| ClientError::Unreachable {
            addr: self.base.clone(),
            source,
        };
        let url = format!("{}{path}", self.base);
        let mut req = self.http.request(method, &url).bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req.send().await.map_err(unreachable)?;
        let status = resp.status();
        let text = resp.text().await.map_err(unreachable)?;
        if status.is_success() {
            Ok(text)
        } else {
            Err(api_error(status, &text))
        }
    }

    pub async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<T, ClientError> {
        let text = self.send(method, path, body).await?;
        serde_json::from_str(&text).map_err(|e| ClientError::Decode(format!("{e}: {text}")))
    }

    /// A GET whose answer is plain text.
    pub async fn get_text(&self, path: &str) -> Result<String, ClientError> {
        self.send(Method::GET, path, None).await
    }

    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        self.call(Method::GET, path, None).await
    }

    pub async fn post<T: DeserializeOwned>(
        &self,
        path: &str,
        body: &Value,
    ) -> Result<T, ClientError> {
        self.call(Method::POST, path, Some(body)).await
    }

    /// A server-sent event stream: each `data:` payload, in order.
    pub async fn stream(
        &self,
        path: &str,
    ) -> Result<impl futures_util::Stream<Item = Result<String, ClientError>>, ClientError> {
        use futures_util::StreamExt;
        let url = format!("{}{path}", self.base);
        let resp = self
            .http
            .get(&url)
            .bearer_auth(&self.token)
            .send()
            .await
            .map_err(|source| ClientError::Unreachable {
                addr: self.base.clone(),
                source,
            })?;
        if !resp.status().is_success() {
            let status = resp.status();
            let text = resp.text().await.unwrap_or_default();
            return Err(api_error(status, &text));
        }
        let base = self.base.clone();
        let mut buf = String::new();
        let s = resp.bytes_stream().flat_map(move |chunk| {
            let mut out = Vec::new();
            match chunk {
                Ok(bytes) => {
                    buf.push_str(&String::from_utf8_lossy(&bytes));
                    while let Some(i) = buf.find("\n\n") {
                        let event: String = buf.drain(..i + 2).collect();
                        let data: Vec<&str> = event
                            .lines()
                            .filter_map(|l| l.strip_prefix("data:"))
                            .map(|d| d.strip_prefix(' ').unwrap_or(d))
                            .collect();
                        if !data.is_empty() {
                            out.push(Ok(data.join("\n")));
                        }
                    }
                }
                Err(source) => out.push(Err(ClientError::Unreachable {
                    addr: base.clone(),
                    source,
                })),
            }
            futures_util::stream::iter(out)
        });
        Ok(s)
    }
}

fn api_error(status: StatusCode, text: &str) -> ClientError {
    let v: Value = serde_json::from_str(text).unwrap_or(Value::Null);
    let e = &v["error"];
    ClientError::Api {
        status: status.as_u16(),
        code: e["code"].as_str().unwrap_or("").to_string(),
        field: e["field"].as_str().map(String::from),
        message: e["message"]
            .as_str()
            .map(String::from)
            .unwrap_or_else(|| format!("{status}: {text}")),
    }
}

/// Start `hangar serve` for `home`, detached, its output going to the engine's log.
fn start_background(home: &Home) -> Result<(), ClientError> {
    home.prepare()?;
    let exe = std::env::current_exe().map_err(ClientError::Spawn)?;
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(home.engine_log())
        .map_err(ClientError::Spawn)?;
    let log2 = log.try_clone().map_err(ClientError::Spawn)?;
    let mut cmd = std::process::Command::new(exe);
    cmd.arg("--home")
        .arg(home.root())
        .arg("serve")
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log2);
    // A session of its own: the engine outlives this command and its terminal.
    // SAFETY: setsid is async-signal-safe.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut cmd, || {
            libc::setsid();
            Ok(())
        });
    }
    cmd.spawn().map_err(ClientError::Spawn)?;
    Ok(())
}
