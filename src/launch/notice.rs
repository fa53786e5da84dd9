//! The launcher's own lines on stderr: what each says (a [`Notice`]: its level, a short
//! stable event name, the replica or host it is about, its text), and the one function that
//! writes them ([`say`]), in the run's [`LogFormat`]: `procnet: text` (the default), or one
//! JSON object per line (`--log-format json`, fields in docs/cluster.md), for a log shipper.
//!
//! The format is the process's, set once at the start ([`set_format`]), since lines are said
//! from every part of the launcher; the relay of node output (`super::logs`) asks it too.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;

/// How the launcher writes its lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// `procnet: text`, and node lines after `name.replica | `.
    #[default]
    Text,
    /// A JSON object per line: the launcher's lines on stderr, and each node line on the
    /// stream it came from.
    Json,
}

impl std::str::FromStr for LogFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<LogFormat, String> {
        match s {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            _ => Err(format!("unknown log format `{s}`; use `text` or `json`")),
        }
    }
}

static JSON: AtomicBool = AtomicBool::new(false);

/// Write this process's lines in `format` from now on.
pub fn set_format(format: LogFormat) {
    JSON.store(format == LogFormat::Json, Ordering::Relaxed);
}

/// The format this process writes its lines in.
pub fn format() -> LogFormat {
    if JSON.load(Ordering::Relaxed) {
        LogFormat::Json
    } else {
        LogFormat::Text
    }
}

/// How much a line matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// What happened, as planned.
    Info,
    /// Something went wrong and the run goes on (a restart, a rollback, dropped records).
    Warn,
    /// The run failed.
    Error,
}

/// One line of the launcher's.
#[derive(Debug, Clone, PartialEq)]
pub struct Notice {
    /// How much it matters.
    pub level: Level,
    /// What happened, as a stable kebab-case name (`replica-restarted`, `rollback`, ...).
    pub event: &'static str,
    /// The replica it is about (`name.replica`), if one.
    pub replica: Option<String>,
    /// The host of `[hosts]` it is about, if one.
    pub host: Option<String>,
    /// The line as text.
    pub message: String,
    /// Lines that go with it (an external replica's environment, reasons for drops): in
    /// text, each on a line of its own, after [`Notice::detail_lead`].
    pub detail: Vec<String>,
    /// What goes before each detail line in text: an indent, or the launcher's prefix and
    /// an indent (as reasons for drops always had).
    pub detail_lead: &'static str,
    /// Said only in JSON: the run's milestones, which the text format leaves unsaid.
    pub json_only: bool,
}

impl Notice {
    /// A line at `level` saying `message`, for `event`.
    pub fn new(level: Level, event: &'static str, message: impl Into<String>) -> Notice {
        Notice {
            level,
            event,
            replica: None,
            host: None,
            message: message.into(),
            detail: Vec::new(),
            detail_lead: "  ",
            json_only: false,
        }
    }

    /// An `info` line.
    pub fn info(event: &'static str, message: impl Into<String>) -> Notice {
        Notice::new(Level::Info, event, message)
    }

    /// A `warn` line.
    pub fn warn(event: &'static str, message: impl Into<String>) -> Notice {
        Notice::new(Level::Warn, event, message)
    }

    /// An `error` line.
    pub fn error(event: &'static str, message: impl Into<String>) -> Notice {
        Notice::new(Level::Error, event, message)
    }

    /// About replica `id` (`name.replica`).
    pub fn about(mut self, id: impl Into<String>) -> Notice {
        self.replica = Some(id.into());
        self
    }

    /// About host `name`.
    pub fn on_host(mut self, name: impl Into<String>) -> Notice {
        self.host = Some(name.into());
        self
    }

    /// With these lines after it, indented in text.
    pub fn with_detail(mut self, detail: Vec<String>) -> Notice {
        self.detail = detail;
        self
    }

    /// With these lines after it, each a line of the launcher's in text (`procnet:   ...`).
    pub fn with_reasons(mut self, reasons: Vec<String>) -> Notice {
        self.detail = reasons;
        self.detail_lead = "procnet:   ";
        self
    }

    /// Said only in JSON.
    pub fn json_only(mut self) -> Notice {
        self.json_only = true;
        self
    }

    /// The notice in `format`, with its line ends; empty if it is not said in that format.
    pub fn render(&self, format: LogFormat, now: SystemTime) -> String {
        match format {
            LogFormat::Text if self.json_only => String::new(),
            LogFormat::Text => {
                let mut text = format!("procnet: {}\n", self.message);
                for line in &self.detail {
                    text.push_str(&format!("{}{line}\n", self.detail_lead));
                }
                text
            }
            LogFormat::Json => {
                let (node, replica) = split_id(self.replica.as_deref());
                let line = JsonLine {
                    ts: rfc3339_millis(now),
                    level: self.level,
                    event: self.event,
                    node,
                    replica,
                    host: self.host.as_deref(),
                    message: &self.message,
                    detail: &self.detail,
                };
                serde_json::to_string(&line).expect("a line serializes") + "\n"
            }
        }
    }
}

/// A [`Notice`] as JSON, in this field order.
#[derive(Serialize)]
struct JsonLine<'a> {
    ts: String,
    level: Level,
    event: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    node: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    replica: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    host: Option<&'a str>,
    message: &'a str,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    detail: &'a [String],
}

/// A replica id `name.replica` as its node's name and its index.
pub fn split_id(id: Option<&str>) -> (Option<&str>, Option<u32>) {
    match id.and_then(|id| id.rsplit_once('.')) {
        Some((node, index)) => match index.parse() {
            Ok(index) => (Some(node), Some(index)),
            Err(_) => (id, None),
        },
        None => (id, None),
    }
}

/// Say `notice` on stderr, in this process's format. A stderr that is gone (`procnet run
/// t.toml 2>&1 | head`) leaves nowhere to say anything: nothing panics.
pub fn say(notice: &Notice) {
    let text = notice.render(format(), SystemTime::now());
    if !text.is_empty() {
        say_raw(&text);
    }
}

/// Write `text` on stderr as it is, whole; nothing panics if stderr is gone.
pub fn say_raw(text: &str) {
    use std::io::Write;
    let _ = std::io::stderr().lock().write_all(text.as_bytes());
}

/// `at` as an RFC 3339 timestamp in UTC with milliseconds: `2025-01-31T12:00:00.250Z`.
pub fn rfc3339_millis(at: SystemTime) -> String {
    let since = at.duration_since(UNIX_EPOCH).unwrap_or_default();
    let (secs, millis) = (since.as_secs(), since.subsec_millis());
    let (days, rest) = (secs / 86_400, secs % 86_400);
    let (year, month, day) = civil_from_days(days as i64);
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{millis:03}Z", rest / 3600, rest % 3600 / 60, rest % 60)
}

/// The proleptic Gregorian date `days` after 1970-01-01 (Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn at(secs: u64, millis: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs) + Duration::from_millis(millis)
    }

    #[test]
    fn timestamps_are_rfc3339_utc_with_milliseconds() {
        assert_eq!(rfc3339_millis(at(0, 0)), "1970-01-01T00:00:00.000Z");
        // A leap day, and the last millisecond of a day.
        assert_eq!(rfc3339_millis(at(951_782_400, 5)), "2000-02-29T00:00:00.005Z");
        assert_eq!(rfc3339_millis(at(1_735_689_599, 999)), "2024-12-31T23:59:59.999Z");
        assert_eq!(rfc3339_millis(at(1_767_225_600, 250)), "2026-01-01T00:00:00.250Z");
    }

    #[test]
    fn text_is_the_line_as_it_always_was_and_milestones_are_json_only() {
        let n = Notice::warn("replica-restarted", "restarted node `w.1`").about("w.1");
        assert_eq!(n.render(LogFormat::Text, at(0, 0)), "procnet: restarted node `w.1`\n");
        let n = Notice::info("external-waiting", "waiting").with_detail(vec!["A=1 B=2".into()]);
        assert_eq!(n.render(LogFormat::Text, at(0, 0)), "procnet: waiting\n  A=1 B=2\n");
        let n = Notice::warn("records-rejected", "dropped").with_reasons(vec!["line 3".into()]);
        assert_eq!(n.render(LogFormat::Text, at(0, 0)), "procnet: dropped\nprocnet:   line 3\n");
        assert_eq!(Notice::info("run-started", "started").json_only().render(LogFormat::Text, at(0, 0)), "");
    }

    #[test]
    fn json_lines_name_the_node_and_replica_apart() {
        let n = Notice::error("node-failed", "node `my.node.2` failed: \"x\"").about("my.node.2");
        let line = n.render(LogFormat::Json, at(1_767_225_600, 250));
        assert!(line.ends_with('\n') && !line.trim_end().contains('\n'), "{line:?}");
        let v: serde_json::Value = serde_json::from_str(&line).expect("JSON");
        assert_eq!(
            v,
            serde_json::json!({
                "ts": "2026-01-01T00:00:00.250Z",
                "level": "error",
                "event": "node-failed",
                "node": "my.node",
                "replica": 2,
                "message": "node `my.node.2` failed: \"x\"",
            })
        );
        let host = Notice::info("host-joined", "joined").on_host("b").render(LogFormat::Json, at(0, 0));
        let v: serde_json::Value = serde_json::from_str(&host).expect("JSON");
        assert_eq!((v["host"].as_str(), v.get("node")), (Some("b"), None));
    }
}
