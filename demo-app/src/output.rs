//! Line output for a process whose stdout and stderr are pipes read by a supervisor.
//!
//! Every line is written and flushed at once, and a closed pipe is never a panic
//! (`println!` would panic on EPIPE; a demo app that lost its reader keeps serving).

use std::io::Write;

/// Writes one line to stdout and flushes it.
pub fn out(line: impl AsRef<str>) {
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "{}", line.as_ref());
    let _ = stdout.flush();
}

/// Writes one line to stderr and flushes it.
pub fn err(line: impl AsRef<str>) {
    let mut stderr = std::io::stderr().lock();
    let _ = writeln!(stderr, "{}", line.as_ref());
    let _ = stderr.flush();
}
