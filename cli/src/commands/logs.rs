//! Reading the logs back: `audit` (a search, newest first) and
//! `usage:export` (every matching usage row, oldest first, streamed).

use std::io::{BufWriter, Write};

use heratio_keys_core::model::now_ms;
use heratio_keys_core::{AuditQuery, Dsn, Error, ErrorKind, UsageQuery};

use super::{ok, open_store, parse_when, plural, to_json};
use crate::args::{AuditArgs, ExportArgs, ExportFormat};
use crate::output::{short_time, AuditJson, Table, UsageRowJson, USAGE_CSV_HEADER};
use crate::{exit, Failure, Outcome};

/// `--since` / `--until` as milliseconds, checked to be in order.
fn window(since: Option<&str>, until: Option<&str>) -> Result<(Option<i64>, Option<i64>), Failure> {
    let now = now_ms();
    let since = since.map(|t| parse_when("--since", t, now)).transpose()?;
    let until = until.map(|t| parse_when("--until", t, now)).transpose()?;
    if let (Some(s), Some(u)) = (since, until) {
        if s >= u {
            return Err(Failure::usage("--since must be before --until"));
        }
    }
    Ok((since, until))
}

pub(super) fn audit(dsn: &Dsn, json: bool, a: AuditArgs) -> Result<Outcome, Failure> {
    let (since, until) = window(a.since.as_deref(), a.until.as_deref())?;
    let (target_type, target_id) = a.target.map_or((None, None), |(t, id)| (Some(t), id));
    let query = AuditQuery {
        actor: a.actor,
        action: a.action,
        target_type,
        target_id,
        since,
        until,
        offset: a.offset,
        limit: a.limit,
    };
    let store = open_store(dsn)?;
    let (rows, total) = store.audit_query(&query)?;
    if json {
        let list: Vec<AuditJson> = rows.iter().map(AuditJson::from).collect();
        return ok(to_json(&list)?);
    }
    if rows.is_empty() {
        return ok(if total == 0 {
            "No audit rows match.\n".to_owned()
        } else {
            format!(
                "No audit rows past row {} ({} match).\n",
                query.offset,
                plural(total, "row", "rows")
            )
        });
    }
    let mut table = Table::new(&[
        "ID",
        "TIME (UTC)",
        "ACTOR",
        "SOURCE",
        "ACTION",
        "TARGET",
        "DETAIL",
    ]);
    for e in &rows {
        let source = match &e.ip {
            Some(ip) => format!("{} {ip}", e.source),
            None => e.source.clone(),
        };
        table.row(vec![
            e.id.to_string(),
            short_time(e.at),
            e.actor.clone(),
            source,
            e.action.clone(),
            e.target_id.map_or_else(
                || e.target_type.clone(),
                |id| format!("{}:{id}", e.target_type),
            ),
            e.detail.clone().unwrap_or_default(),
        ]);
    }
    let mut out = table.render();
    let shown = u64::try_from(rows.len()).unwrap_or(u64::MAX);
    if query.offset > 0 || shown < total {
        out.push_str(&format!(
            "\nRows {}-{} of {} (newest first); --offset {} for the next page.\n",
            query.offset + 1,
            query.offset + shown,
            total,
            query.offset + shown
        ));
    }
    ok(out)
}

/// Size of the output buffer: rows reach stdout in blocks this big.
const EXPORT_BUFFER: usize = 64 * 1024;

pub(super) fn usage_export(dsn: &Dsn, json: bool, a: ExportArgs) -> Result<Outcome, Failure> {
    let format = match (json, a.format) {
        (true, Some(ExportFormat::Csv)) => {
            return Err(Failure::usage(
                "--json asks for JSON lines: it cannot be combined with --format csv",
            ))
        }
        (true, _) => ExportFormat::Json,
        (false, format) => format.unwrap_or(ExportFormat::Csv),
    };
    let (since, until) = window(a.since.as_deref(), a.until.as_deref())?;
    let query = UsageQuery {
        client_id: a.client,
        kind: a.kind,
        status: a.status,
        since,
        until,
        ..UsageQuery::default()
    };
    let store = open_store(dsn)?;
    let mut sink = Sink {
        out: BufWriter::with_capacity(EXPORT_BUFFER, std::io::stdout().lock()),
        failed: None,
        // The header goes out with the first row (or after an empty export),
        // so a store error leaves stdout empty.
        header: (format == ExportFormat::Csv).then_some(USAGE_CSV_HEADER),
    };
    let mut line = String::with_capacity(256);
    let result = store
        .export_usage(&query, &mut |entry| {
            line.clear();
            let row = UsageRowJson::from(&entry);
            match format {
                ExportFormat::Csv => row.push_csv(&mut line),
                ExportFormat::Json => {
                    // Serialising these fields cannot fail.
                    line.push_str(&serde_json::to_string(&row).unwrap_or_default());
                    line.push('\n');
                }
            }
            sink.write(&line)
        })
        .and_then(|_| sink.write(""))
        .and_then(|()| sink.flush());
    match (result, sink.failed) {
        (Ok(()), _) => ok(String::new()),
        // A closed pipe (`keygen usage:export | head`) is not an error.
        (Err(_), Some(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => ok(String::new()),
        (Err(_), Some(e)) => Err(Failure {
            code: exit::INTERNAL,
            message: format!("cannot write to standard output: {e}"),
        }),
        (Err(e), None) => Err(Failure::from(e)),
    }
}

/// Standard output, buffered, remembering why a write failed (the store
/// only sees that the sink stopped).
struct Sink<W: Write> {
    out: BufWriter<W>,
    failed: Option<std::io::Error>,
    header: Option<&'static str>,
}

impl<W: Write> Sink<W> {
    fn write(&mut self, text: &str) -> Result<(), Error> {
        let header = self.header.take().unwrap_or("");
        let written = self
            .out
            .write_all(header.as_bytes())
            .and_then(|()| self.out.write_all(text.as_bytes()));
        self.check(written)
    }

    fn flush(&mut self) -> Result<(), Error> {
        let flushed = self.out.flush();
        self.check(flushed)
    }

    fn check(&mut self, result: std::io::Result<()>) -> Result<(), Error> {
        result.map_err(|e| {
            self.failed = Some(e);
            Error::new(ErrorKind::Internal, "cannot write to standard output")
        })
    }
}
