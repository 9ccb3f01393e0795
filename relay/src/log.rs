//! How the relay's log lines look: events carry a target (the subsystem:
//! `dhcp`, `proxy`, `tftp`, `http`, `console`, `target`, `boot`, `qemu`,
//! `control`, `relay`, `ra`) and fields; this module renders them.
//!
//! Call sites name what happened in the message and put every value in a
//! field, so `RELAY_LOG_FORMAT=json` gives a machine the same events with
//! nothing to parse out of prose:
//!
//! ```text
//! info!(target: "tftp", client = %peer, file = %name, bytes, ms, "sent");
//! ```
//!
//! The human line puts the fields that say *who* and *what* where a reader
//! looks for them, and the rest after the message:
//!
//! ```text
//! <time> <LEVEL> <target>[ <target_name>]: [<client> ][<file>: ]<message>[ key=value ...][: <error>]
//! tftp: 10.77.0.50:2070 chainloader.0: sent bytes=276504 ms=512 retransmissions=0
//! target desk: reset command: plug says ok
//! dhcp: saving leases: writing /var/lib/relay/leases.json: No space left on device
//! ```
//!
//! The field names are the contract (tests and scripts match on them):
//! - `target_name`: the configured machine (`[[target]] name`);
//! - `client`: the peer, a MAC for DHCP, an address for TFTP and HTTP;
//! - `file`: the file asked for or served;
//! - `error`: why something failed, rendered last after a colon;
//! - everything else (`rule`, `bytes`, `ms`, `ip`, ...) as `key=value`.

use std::fmt::{self, Write as _};

use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::{FormatTime, SystemTime};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// Which rendering `init` installs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// One line per event for a person at a terminal or a journal.
    Human,
    /// One JSON object per event (tracing-subscriber's), for tools.
    Json,
}

impl Format {
    /// `RELAY_LOG_FORMAT=json` selects JSON; anything else, or nothing, the
    /// human lines.
    pub fn from_env() -> Format {
        match std::env::var("RELAY_LOG_FORMAT").as_deref() {
            Ok("json") => Format::Json,
            _ => Format::Human,
        }
    }
}

/// Installs the global subscriber: `RELAY_LOG` filters (default `info`),
/// output goes to stderr.
pub fn init(format: Format) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("RELAY_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match format {
        Format::Json => builder.json().flatten_event(true).init(),
        Format::Human => builder.event_format(HumanLine::new()).init(),
    }
}

/// The human rendering described in the module documentation.
pub struct HumanLine {
    timer: SystemTime,
    ansi: bool,
}

impl HumanLine {
    pub fn new() -> HumanLine {
        HumanLine { timer: SystemTime, ansi: std::io::IsTerminal::is_terminal(&std::io::stderr()) }
    }

    /// Without the colours, whatever stderr is (for tests).
    pub fn plain() -> HumanLine {
        HumanLine { timer: SystemTime, ansi: false }
    }
}

impl Default for HumanLine {
    fn default() -> Self {
        HumanLine::new()
    }
}

impl<S, N> FormatEvent<S, N> for HumanLine
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(&self, _ctx: &FmtContext<'_, S, N>, mut w: Writer<'_>, event: &Event<'_>) -> fmt::Result {
        self.timer.format_time(&mut w)?;
        let level = *event.metadata().level();
        if self.ansi {
            let colour = match level {
                tracing::Level::ERROR => "31",
                tracing::Level::WARN => "33",
                tracing::Level::INFO => "32",
                _ => "34",
            };
            write!(w, " \x1b[{colour}m{level:>5}\x1b[0m ")?;
        } else {
            write!(w, " {level:>5} ")?;
        }
        let mut fields = Fields::default();
        event.record(&mut fields);
        writeln!(w, "{}", fields.line(event.metadata().target()))
    }
}

/// An event's fields, sorted into the places the line gives them.
#[derive(Default)]
struct Fields {
    message: String,
    target_name: Option<String>,
    client: Option<String>,
    file: Option<String>,
    error: Option<String>,
    /// The rest, in the order the call site wrote them.
    rest: Vec<(&'static str, String)>,
}

impl Fields {
    fn put(&mut self, field: &Field, value: String) {
        match field.name() {
            "message" => self.message = value,
            "target_name" => self.target_name = Some(value),
            "client" => self.client = Some(value),
            "file" => self.file = Some(value),
            "error" => self.error = Some(value),
            other => self.rest.push((other, value)),
        }
    }

    fn line(&self, target: &str) -> String {
        // Events logged without `target:` carry their module path; the last
        // part of it says enough.
        let subsystem = target.rsplit("::").next().unwrap_or(target);
        let mut line = String::from(subsystem);
        if let Some(n) = &self.target_name {
            let _ = write!(line, " {n}");
        }
        line.push(':');
        if let Some(c) = &self.client {
            let _ = write!(line, " {c}");
        }
        if let Some(f) = &self.file {
            let _ = write!(line, " {}:", quoted_if_needed(f));
        }
        if !self.message.is_empty() {
            let _ = write!(line, " {}", self.message);
        }
        for (k, v) in &self.rest {
            let _ = write!(line, " {k}={}", quoted_if_needed(v));
        }
        if let Some(e) = &self.error {
            let _ = write!(line, ": {e}");
        }
        line
    }
}

/// A value as logfmt writes it: bare when it is one plain word, otherwise
/// in quotes with `"`, `\\` and control characters escaped, so that a
/// value from the wire (a file name with a space or a newline in it) can
/// neither split the line nor pass for another field. The JSON rendering
/// gets the value itself, and JSON's escaping.
fn quoted_if_needed(v: &str) -> std::borrow::Cow<'_, str> {
    let plain = !v.is_empty() && v.chars().all(|c| c.is_ascii_graphic() && c != '"' && c != '=' && c != '\\');
    if plain {
        v.into()
    } else {
        let mut q = String::with_capacity(v.len() + 2);
        q.push('"');
        for c in v.chars() {
            match c {
                '"' => q.push_str("\\\""),
                '\\' => q.push_str("\\\\"),
                c if c.is_control() => q.extend(c.escape_default()),
                c => q.push(c),
            }
        }
        q.push('"');
        q.into()
    }
}

impl Visit for Fields {
    // `%value` and `?value` both arrive here, already rendered by their
    // Display or Debug: call sites give strings with `%` (or as they are),
    // so that the JSON rendering carries them unquoted; the human line
    // quotes what needs it.
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.put(field, format!("{value:?}"));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, value.to_string());
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.put(field, crate::error::Chain(value).to_string());
    }
}

/// What the human subscriber renders, for the crate's unit tests.
#[cfg(test)]
pub(crate) mod capture {
    use std::sync::{Arc, Mutex};

    use tracing_subscriber::fmt::MakeWriter;

    use super::HumanLine;

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buffer {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Buffer {
        type Writer = Buffer;
        fn make_writer(&'a self) -> Buffer {
            self.clone()
        }
    }

    /// The lines `f` logs (INFO and above), each as its level and the rest
    /// of the line after the time.
    pub(crate) fn lines(f: impl FnOnce()) -> Vec<(String, String)> {
        let buf = Buffer::default();
        let subscriber = tracing_subscriber::fmt().event_format(HumanLine::plain()).with_writer(buf.clone()).finish();
        tracing::subscriber::with_default(subscriber, f);
        let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        text.lines()
            .filter_map(|l| {
                let (_time, rest) = l.split_once(' ')?;
                let (level, rest) = rest.trim_start().split_once(' ')?;
                Some((level.to_string(), rest.to_string()))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use tracing::{info, warn};

    use super::capture;

    /// The rendered lines, in the order logged.
    fn rendered(f: impl FnOnce()) -> Vec<String> {
        capture::lines(f).into_iter().map(|(_level, line)| line).collect()
    }

    #[test]
    fn who_and_what_come_first_and_the_rest_as_key_value() {
        let peer: std::net::SocketAddr = "10.77.0.50:2070".parse().unwrap();
        let lines = rendered(|| {
            info!(target: "tftp", client = %peer, file = "chainloader.0", bytes = 276504u64, ms = 512u64, "sent");
        });
        assert_eq!(lines, ["tftp: 10.77.0.50:2070 chainloader.0: sent bytes=276504 ms=512"]);
    }

    #[test]
    fn the_machine_name_follows_the_subsystem_and_the_error_comes_last() {
        let e = std::io::Error::other("No space left on device");
        let lines = rendered(|| {
            info!(target: "target", target_name = "desk", "reset command: plug says ok");
            warn!(target: "dhcp", error = %e, "saving leases");
            warn!(target: "dhcp", client = "52:54:00:12:34:56", rule = "builtin:ipxe", "REQUEST");
        });
        assert_eq!(
            lines,
            [
                "target desk: reset command: plug says ok",
                "dhcp: saving leases: No space left on device",
                "dhcp: 52:54:00:12:34:56 REQUEST rule=builtin:ipxe",
            ]
        );
    }

    #[test]
    fn values_that_could_split_the_line_are_quoted_and_escaped() {
        let lines = rendered(|| {
            info!(target: "tftp", file = "a b.bin", options = "blksize=1432 tsize=9", "sent");
            info!(target: "tftp", file = "x\ny=1", reason = "say \"hi\"", empty = "", "refused");
        });
        assert_eq!(
            lines,
            [
                "tftp: \"a b.bin\": sent options=\"blksize=1432 tsize=9\"",
                "tftp: \"x\\ny=1\": refused reason=\"say \\\"hi\\\"\" empty=\"\"",
            ]
        );
    }

    #[test]
    fn an_event_without_an_explicit_target_names_its_module() {
        let lines = rendered(|| info!("plain"));
        assert_eq!(lines, ["tests: plain"]);
    }
}
