//! Where each file comes from, and fetching it with bounded retries.
//!
//! A file is fetched by TFTP from the boot server, or by HTTP when its
//! path is an `http://` URL. A config that itself came by HTTP (option 209
//! or 210, or the DHCP boot file, as an `http://` URL) makes its relative
//! paths resolve against its own URL and its `/rooted` paths against its
//! server, as a browser resolves links: the config and the kernel can then
//! live side by side on any web server.

use crate::net::http::HttpFetchError;
use crate::net::{self, lease::Lease, Net};
use crate::{arch::cpu, println};
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use bootproto::config::{self, Entry};
use bootproto::http::{is_http_url, Url, UrlError};
use bootproto::tftp;
use core::fmt;
use core::net::Ipv4Addr;

/// Attempts per file when the server does not answer or the connection
/// breaks; 2 s, then 6 s between them: together longer than a relay
/// restarted by its systemd unit is away (RestartSec=5, then it listens at
/// once), so an HTTP download broken by the restart is resumed by the
/// retry (a refused connection fails at once; TFTP's own timeouts are
/// longer).
const ATTEMPTS: u32 = 3;
const FIRST_WAIT_MS: u64 = 2000;
const WAIT_FACTOR: u64 = 3;
/// Redirects followed per file.
const MAX_REDIRECTS: u32 = 3;

#[derive(Clone, Debug)]
pub enum Source {
    Tftp { server: Ipv4Addr, name: String },
    Http(Url),
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Tftp { name, .. } => f.write_str(name),
            Source::Http(u) => write!(f, "{u}"),
        }
    }
}

/// Why a fetch failed. A server's answer is final; silence and broken
/// connections are tried again and end in [`FetchError::GaveUp`].
#[derive(Debug)]
pub enum FetchError {
    /// The TFTP server answered with ERROR `code` (1: file not found).
    TftpRemote { server: Ipv4Addr, name: String, code: u16, message: String },
    /// The HTTP server's final answer (a 404, say), or a failure that
    /// another connection cannot fix.
    Http { url: Url, err: HttpFetchError },
    /// A redirect to a URL that does not parse.
    BadRedirect { url: Url, err: UrlError },
    /// A TFTP failure another attempt cannot fix (the file does not fit).
    TftpFinal { name: String, err: tftp::Error },
    /// Every attempt failed without an answer; the last one's reason.
    GaveUp(Transient),
}

impl FetchError {
    /// The file simply is not there: the config search moves on to its
    /// next candidate.
    pub fn not_found(&self) -> bool {
        match self {
            FetchError::TftpRemote { code, .. } => *code == 1,
            FetchError::Http { err, .. } => {
                matches!(err, HttpFetchError::Http(bootproto::http::Error::Status { status: 404 | 410, .. }))
            }
            _ => false,
        }
    }
}

impl fmt::Display for FetchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FetchError::TftpRemote { server, name, code, message } => {
                write!(f, "TFTP error {code} from {server}: {message}: /{name}")
            }
            FetchError::Http { url, err } => write!(f, "{err}: {url}"),
            FetchError::BadRedirect { url, err } => write!(f, "{url}: redirect to a bad URL: {err}"),
            FetchError::TftpFinal { name, err } => write!(f, "{name}: {err}"),
            FetchError::GaveUp(t) => t.fmt(f),
        }
    }
}

/// A failure worth another attempt (a timeout, a broken connection).
#[derive(Debug)]
pub enum Transient {
    Tftp { name: String, err: tftp::Error },
    Http { url: Url, err: HttpFetchError },
}

impl fmt::Display for Transient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Transient::Tftp { name, err } => write!(f, "{name}: {err}"),
            Transient::Http { url, err } => write!(f, "{url}: {err}"),
        }
    }
}

/// A URL from DHCP or the config that does not parse.
#[derive(Debug)]
pub enum ResolveError {
    /// An `http://` URL as DHCP gave it (option 209, 210, the boot file).
    Url { text: String, err: UrlError },
    /// A config entry's path, against the config's URL.
    Entry { line: usize, path: String, err: UrlError },
}

impl fmt::Display for ResolveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ResolveError::Url { text, err } => write!(f, "{text}: {err}"),
            ResolveError::Entry { line, path, err } => write!(f, "line {line}: {path}: {err}"),
        }
    }
}

/// A place the config may be, and what its relative paths are relative to.
#[derive(Clone, Debug)]
pub struct ConfigPlace {
    pub source: Source,
    /// For a config fetched by HTTP: the URL its relative paths resolve
    /// against. The config's own URL when DHCP named it whole (option 209
    /// or the boot file); the path prefix (option 210) when the config was
    /// found below it, as PXELINUX resolves names against its prefix, so
    /// that a config reads the same by TFTP and by HTTP.
    pub relative_to: Option<Url>,
}

impl fmt::Display for ConfigPlace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.source.fmt(f)
    }
}

/// The config file candidates: an `http://` URL in option 209 (or the boot
/// file) is fetched by HTTP, and so are the names below an `http://`
/// option 210; otherwise PXELINUX's TFTP names.
pub fn config_candidates(lease: &Lease, mac: [u8; 6], server: Ipv4Addr) -> Result<Vec<ConfigPlace>, ResolveError> {
    let whole = |s: &str| {
        parse_url(s).map(|u| alloc::vec![ConfigPlace { source: Source::Http(u.clone()), relative_to: Some(u) }])
    };
    let prefix = lease.path_prefix.clone().unwrap_or_default();
    let names: Vec<String> = match &lease.config_file {
        Some(f) if is_http_url(f) => return whole(f),
        Some(f) => alloc::vec![config::tftp_path(f).into()],
        None => match lease.bootfile.as_deref() {
            // An HTTP boot file for chainloader.0 itself names its config.
            Some(b) if is_http_url(b) => return whole(b),
            _ => config::candidates(mac, lease.ip.octets()),
        },
    };
    if is_http_url(&prefix) {
        let base = parse_url(&prefix)?;
        return names
            .iter()
            .map(|n| {
                let u = base.join(n).map_err(|err| ResolveError::Url { text: format!("{prefix}{n}"), err })?;
                Ok(ConfigPlace { source: Source::Http(u), relative_to: Some(base.clone()) })
            })
            .collect();
    }
    Ok(names
        .into_iter()
        .map(|n| ConfigPlace { source: Source::Tftp { server, name: format!("{prefix}{n}") }, relative_to: None })
        .collect())
}

fn parse_url(s: &str) -> Result<Url, ResolveError> {
    Url::parse(s).map_err(|err| ResolveError::Url { text: s.into(), err })
}

/// Where a config entry's file comes from, given where the config came from.
pub fn resolve(e: &Entry, config_from: &ConfigPlace) -> Result<Source, ResolveError> {
    let bad = |err| ResolveError::Entry { line: e.line, path: e.path.clone(), err };
    if is_http_url(&e.path) {
        return parse_url(&e.path).map(Source::Http);
    }
    match (&config_from.relative_to, &config_from.source) {
        (Some(base), _) => {
            let reference = if e.rooted { format!("/{}", e.path) } else { e.path.clone() };
            base.join(&reference).map(Source::Http).map_err(bad)
        }
        (None, Source::Tftp { server, .. }) => Ok(Source::Tftp { server: *server, name: e.path.clone() }),
        (None, Source::Http(u)) => u.join(&e.path).map(Source::Http).map_err(bad),
    }
}

/// One file, with up to [`ATTEMPTS`] attempts when the server does not
/// answer or the connection breaks. An answer from the server that the
/// file is missing or refused is final: asking again will not change it.
pub fn fetch_with_retry(net: &mut Net, src: &Source, dest: &mut [u8], quiet: bool) -> Result<net::Fetched, FetchError> {
    let mut wait = FIRST_WAIT_MS;
    let mut src = src.clone();
    let mut redirects = 0;
    let mut attempt = 1;
    loop {
        let transient = match &src {
            Source::Tftp { server, name } => match net.tftp_get(*server, name, dest, name, quiet) {
                Ok(f) => return Ok(f),
                // Asking again gets the same file, too large for the room
                // left, again.
                Err(err @ (tftp::Error::TooLarge { .. } | tftp::Error::Sink(_))) => {
                    return Err(FetchError::TftpFinal { name: name.clone(), err })
                }
                Err(tftp::Error::Remote { code, message }) => {
                    return Err(FetchError::TftpRemote { server: *server, name: name.clone(), code, message })
                }
                Err(err) => Transient::Tftp { name: name.clone(), err },
            },
            Source::Http(url) => {
                let show = format!("{url}");
                match net.http_get(url, dest, &show, quiet) {
                    Ok(f) => return Ok(f),
                    Err(HttpFetchError::Http(e)) if e.redirect().is_some() && redirects < MAX_REDIRECTS => {
                        let to = url
                            .join(e.redirect().unwrap_or_default())
                            .map_err(|err| FetchError::BadRedirect { url: url.clone(), err })?;
                        println!("{url}: {e}");
                        redirects += 1;
                        src = Source::Http(to);
                        continue;
                    }
                    Err(err) if !err.is_transient() => return Err(FetchError::Http { url: url.clone(), err }),
                    Err(err) => Transient::Http { url: url.clone(), err },
                }
            }
        };
        println!("{transient} (attempt {attempt} of {ATTEMPTS})");
        if attempt == ATTEMPTS {
            return Err(FetchError::GaveUp(transient));
        }
        cpu::delay_ms(wait);
        wait *= WAIT_FACTOR;
        attempt += 1;
    }
}
