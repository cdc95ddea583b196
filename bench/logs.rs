//! The log path, in process: (1) throughput of an app's output through the engine's real path
//! (a pipe read by `logs::pump`: split, stamp, offer to viewers, queue, write to rotating files)
//! with the peak memory of this process; (2) latency from a line written into a pipe until a
//! live subscriber has it (p50, p99).

use std::time::{Duration, Instant};

use hangar::base::config::Rotation;
use hangar::run::logs::{pump, AppLog, Stream};
use tokio::io::AsyncWriteExt;

fn vm(key: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(key))?
                .split_whitespace()
                .nth(1)?
                .parse()
                .ok()
        })
        .unwrap_or(0)
        * 1024
}

#[tokio::main]
async fn main() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("bench.log");
    let log = AppLog::open(path.clone(), Rotation::default());
    let rss_before = vm("VmRSS:");

    // (1) Throughput: 5 M lines of ~60 bytes written into a socket pair by another task.
    const N: u64 = 5_000_000;
    let (mut w, r) = tokio::net::UnixStream::pair().expect("socket pair");
    let writer = tokio::spawn(async move {
        let mut buf = Vec::with_capacity(1 << 20);
        let mut i = 0u64;
        while i < N {
            buf.clear();
            while buf.len() < (1 << 20) - 128 && i < N {
                buf.extend_from_slice(
                    format!("GET /api/notes 200 1ms request {i:>10} from 127.0.0.1\n").as_bytes(),
                );
                i += 1;
            }
            w.write_all(&buf).await.expect("write");
        }
        drop(w);
    });
    let t = Instant::now();
    let reader = tokio::spawn(pump(r, Stream::Out, log.clone()));
    writer.await.expect("writer");
    reader.await.expect("pump");
    let pumped = t.elapsed();
    // Wait until the file writer has it all.
    let last = format!("request {:>10} from", N - 1);
    loop {
        let tail = hangar::run::logs::tail(&path, 1);
        if tail.first().is_some_and(|l| l.text.contains(&last)) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let written = t.elapsed();
    let files = hangar::run::logs::log_files(&path).len();
    println!("| what | figure |");
    println!("| --- | --- |");
    println!(
        "| lines from a pipe into rotating files | {:.2} M lines/s ({N} lines in {:.2} s; dropped {}; {files} files of at most 10 MiB kept) |",
        N as f64 / written.as_secs_f64() / 1e6,
        written.as_secs_f64(),
        log.dropped()
    );
    println!(
        "| of which reading, splitting, stamping and queueing | {:.2} M lines/s |",
        N as f64 / pumped.as_secs_f64() / 1e6
    );
    println!(
        "| memory: RSS before, peak (VmHWM) | {:.1} MiB, {:.1} MiB |",
        rss_before as f64 / 1048576.0,
        vm("VmHWM:") as f64 / 1048576.0
    );

    // (2) Latency: one line every 2 ms into a pipe; a subscriber notes when each arrives.
    let mut sub = log.subscribe();
    let (mut w, r) = tokio::net::UnixStream::pair().expect("socket pair");
    tokio::spawn(pump(r, Stream::Out, log.clone()));
    const M: usize = 2000;
    let recv = tokio::spawn(async move {
        let mut got = Vec::with_capacity(M);
        while got.len() < M {
            match sub.recv().await {
                Ok(l) if l.text.starts_with("lat ") => got.push(Instant::now()),
                Ok(_) => {}
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(_) => break,
            }
        }
        got
    });
    let mut sent = Vec::with_capacity(M);
    for i in 0..M {
        sent.push(Instant::now());
        w.write_all(format!("lat {i}\n").as_bytes())
            .await
            .expect("write");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let got = recv.await.expect("receiver");
    let mut lat: Vec<Duration> = got.iter().zip(&sent).map(|(g, s)| *g - *s).collect();
    lat.sort();
    let pct = |p: f64| lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)];
    println!(
        "| line written into a pipe until a live subscriber has it ({M} lines) | p50 {:.0} µs, p99 {:.0} µs, max {:.0} µs |",
        pct(0.5).as_secs_f64() * 1e6,
        pct(0.99).as_secs_f64() * 1e6,
        lat.last().copied().unwrap_or_default().as_secs_f64() * 1e6
    );
}
