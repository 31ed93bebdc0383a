//! Downloads that may be far larger than memory (the usage log, the audit
//! log): produced by a blocking store call on a thread of their own and
//! streamed to the client as they are produced, in chunks through a small
//! bounded channel. Memory is a few chunks whatever the range: the store
//! pages its rows, the channel holds at most [`QUEUED`] chunks, and a slow
//! client slows the producer instead of filling memory. A client that goes
//! away closes the channel, which stops the producer at its next chunk.
//!
//! Each export holds a thread and, on MySQL, a connection for its whole
//! length, so at most [`MAX_EXPORTS`] run at once; more are answered 503.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::{Body, Bytes};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use heratio_keys_core::model::{now_ms, rfc3339};
use heratio_keys_core::{Error, ErrorKind, KeyStore};
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};

use crate::error::AppError;

/// Exports running at once.
pub(crate) const MAX_EXPORTS: usize = 2;
/// Bytes gathered before a chunk is sent.
const CHUNK: usize = 64 * 1024;
/// Chunks waiting for the client at most.
const QUEUED: usize = 8;

/// The bound on exports running at once.
#[derive(Debug)]
pub(crate) struct Exports(Arc<Semaphore>);

impl Default for Exports {
    fn default() -> Self {
        Exports(Arc::new(Semaphore::new(MAX_EXPORTS)))
    }
}

type Chunk = Result<Bytes, std::io::Error>;

/// The receiving end of the channel as the body's stream.
struct Chunks(mpsc::Receiver<Chunk>);

impl futures_core::Stream for Chunks {
    type Item = Chunk;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Chunk>> {
        self.0.poll_recv(cx)
    }
}

/// Where a producer writes its lines. Lines are gathered into chunks of
/// about [`CHUNK`] bytes; a closed channel (the client left) is an error,
/// which stops the store's export.
pub(crate) struct Sink {
    tx: mpsc::Sender<Chunk>,
    buf: String,
}

impl Sink {
    pub(crate) fn line(&mut self, line: &str) -> heratio_keys_core::Result<()> {
        self.buf.push_str(line);
        self.buf.push('\n');
        if self.buf.len() >= CHUNK {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> heratio_keys_core::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(
            &mut self.buf,
            String::with_capacity(CHUNK),
        ));
        // Blocks while the client is behind: that is the back-pressure.
        self.tx
            .blocking_send(Ok(chunk))
            .map_err(|_| Error::new(ErrorKind::Unavailable, "the client went away"))
    }
}

/// What an export runs: the store, and the sink for its lines.
pub(crate) type Producer =
    Box<dyn FnOnce(&dyn KeyStore, &mut Sink) -> heratio_keys_core::Result<u64> + Send>;

/// A streamed download named `name-<time>.<ext>`, produced by `produce` on
/// a thread of its own. `Err` (a 503 page) when [`MAX_EXPORTS`] are running.
pub(crate) fn download(
    exports: &Exports,
    store: &Arc<dyn KeyStore>,
    content_type: &'static str,
    name: &str,
    ext: &str,
    produce: Producer,
) -> Result<Response, AppError> {
    let Ok(permit) = Arc::clone(&exports.0).try_acquire_owned() else {
        return Err(AppError::Busy(
            "Other exports are running. Try again in a moment.".to_owned(),
        ));
    };
    let (tx, rx) = mpsc::channel::<Chunk>(QUEUED);
    let store = Arc::clone(store);
    let what = format!("{name}.{ext}");
    let spawned = std::thread::Builder::new()
        .name("hk-web-export".to_owned())
        .spawn(move || run(&store, permit, tx, produce, &what));
    if spawned.is_err() {
        return Err(AppError::Internal);
    }
    let stamp: String = rfc3339(now_ms())
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .collect();
    let disposition = format!("attachment; filename=\"{name}-{stamp}.{ext}\"");
    let mut resp = (StatusCode::OK, Body::from_stream(Chunks(rx))).into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Ok(v) = HeaderValue::from_str(&disposition) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(resp)
}

/// The export thread: produce, flush the last chunk, and on a store error
/// end the body with an error, so the client sees a broken transfer rather
/// than a file that looks complete.
fn run(
    store: &Arc<dyn KeyStore>,
    permit: OwnedSemaphorePermit,
    tx: mpsc::Sender<Chunk>,
    produce: Producer,
    what: &str,
) {
    let mut sink = Sink {
        tx: tx.clone(),
        buf: String::with_capacity(CHUNK),
    };
    let result = produce(store.as_ref(), &mut sink).and_then(|n| sink.flush().map(|()| n));
    match result {
        Ok(n) => eprintln!("keygen serve: exported {n} rows ({what})"),
        Err(e) if e.kind() == ErrorKind::Unavailable && tx.is_closed() => {
            eprintln!("keygen serve: export of {what} stopped: the client went away");
        }
        Err(e) => {
            eprintln!("keygen serve: export of {what} failed: {e}");
            let _ = tx.blocking_send(Err(std::io::Error::other("export failed")));
        }
    }
    drop(permit);
}

/// One CSV record (RFC 4180: quoted when needed, `"` doubled). A field
/// that a spreadsheet would run as a formula (starting with `=`, `+`, `-`,
/// `@`, tab or carriage return) gets a leading `'`: names, endpoints and
/// details come from outside and must not become formulas when an auditor
/// opens the file.
pub(crate) fn csv_record(fields: &[&str]) -> String {
    let mut out = String::new();
    for (i, field) in fields.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let guarded;
        let field = if field.starts_with(['=', '+', '-', '@', '\t', '\r']) {
            guarded = format!("'{field}");
            guarded.as_str()
        } else {
            field
        };
        if field.contains([',', '"', '\n', '\r']) {
            out.push('"');
            out.push_str(&field.replace('"', "\"\""));
            out.push('"');
        } else {
            out.push_str(field);
        }
    }
    out
}

/// A timestamp for exports: RFC 3339 UTC with milliseconds.
pub(crate) fn time_ms(ms: i64) -> String {
    let s = rfc3339(ms);
    let base = s.strip_suffix('Z').unwrap_or(&s);
    format!("{base}.{:03}Z", ms.rem_euclid(1000))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quoting_and_formulas() {
        assert_eq!(csv_record(&["a", "b c", ""]), "a,b c,");
        assert_eq!(
            csv_record(&["x,y", "say \"hi\""]),
            "\"x,y\",\"say \"\"hi\"\"\""
        );
        assert_eq!(csv_record(&["line\nbreak"]), "\"line\nbreak\"");
        assert_eq!(
            csv_record(&["=HYPERLINK(1)", "-1", "@x"]),
            "'=HYPERLINK(1),'-1,'@x"
        );
        assert_eq!(csv_record(&["=a,b"]), "\"'=a,b\"");
    }

    #[test]
    fn millisecond_times() {
        assert_eq!(time_ms(1_500), "1970-01-01T00:00:01.500Z");
        assert_eq!(time_ms(0), "1970-01-01T00:00:00.000Z");
    }
}
