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
use bootproto::http::{is_http_url, Url};
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

/// Why a fetch failed, and whether the file simply is not there (the
/// config search moves on to its next candidate then).
#[derive(Debug)]
pub struct FetchError {
    pub not_found: bool,
    pub message: String,
}

impl fmt::Display for FetchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
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
pub fn config_candidates(lease: &Lease, mac: [u8; 6], server: Ipv4Addr) -> Result<Vec<ConfigPlace>, String> {
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
                let u = base.join(n).map_err(|e| format!("{prefix}{n}: {e}"))?;
                Ok(ConfigPlace { source: Source::Http(u), relative_to: Some(base.clone()) })
            })
            .collect();
    }
    Ok(names
        .into_iter()
        .map(|n| ConfigPlace { source: Source::Tftp { server, name: format!("{prefix}{n}") }, relative_to: None })
        .collect())
}

fn parse_url(s: &str) -> Result<Url, String> {
    Url::parse(s).map_err(|e| format!("{s}: {e}"))
}

/// Where a config entry's file comes from, given where the config came from.
pub fn resolve(e: &Entry, config_from: &ConfigPlace) -> Result<Source, String> {
    if is_http_url(&e.path) {
        return parse_url(&e.path).map(Source::Http);
    }
    match (&config_from.relative_to, &config_from.source) {
        (Some(base), _) => {
            let reference = if e.rooted { format!("/{}", e.path) } else { e.path.clone() };
            base.join(&reference).map(Source::Http).map_err(|err| format!("line {}: {}: {err}", e.line, e.path))
        }
        (None, Source::Tftp { server, .. }) => Ok(Source::Tftp { server: *server, name: e.path.clone() }),
        (None, Source::Http(u)) => {
            u.join(&e.path).map(Source::Http).map_err(|err| format!("line {}: {}: {err}", e.line, e.path))
        }
    }
}

/// Tries each config candidate in turn; one that is not there moves on to
/// the next. Returns the one found and its text.
pub fn fetch_config(
    net: &mut Net,
    candidates: &[ConfigPlace],
    staging: &mut [u8],
) -> Result<(ConfigPlace, String), String> {
    for c in candidates {
        match fetch_with_retry(net, &c.source, staging, true) {
            Ok(f) => {
                let text = core::str::from_utf8(&staging[..f.size as usize])
                    .map_err(|e| format!("{c}: not UTF-8 text ({e})"))?;
                return Ok((c.clone(), text.into()));
            }
            Err(e) if e.not_found => println!("config {c}: not found"),
            Err(e) => return Err(e.message),
        }
    }
    Err(format!("no boot config found (tried {} names)", candidates.len()))
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
                Err(e @ (tftp::Error::TooLarge { .. } | tftp::Error::Sink(_))) => {
                    return Err(FetchError { not_found: false, message: format!("{name}: {e}") })
                }
                Err(tftp::Error::Remote { code, message }) => {
                    return Err(FetchError {
                        not_found: code == 1,
                        message: format!("TFTP error {code} from {server}: {message}: /{name}"),
                    })
                }
                Err(e) => format!("{name}: {e}"),
            },
            Source::Http(url) => {
                let show = format!("{url}");
                match net.http_get(url, dest, &show, quiet) {
                    Ok(f) => return Ok(f),
                    Err(HttpFetchError::Http(e)) if e.redirect().is_some() && redirects < MAX_REDIRECTS => {
                        let to = url.join(e.redirect().unwrap_or_default()).map_err(|err| FetchError {
                            not_found: false,
                            message: format!("{url}: redirect to a bad URL: {err}"),
                        })?;
                        println!("{url}: {e}");
                        redirects += 1;
                        src = Source::Http(to);
                        continue;
                    }
                    Err(e) if !e.is_transient() => {
                        let not_found = matches!(
                            &e,
                            HttpFetchError::Http(bootproto::http::Error::Status { status: 404 | 410, .. })
                        );
                        return Err(FetchError { not_found, message: format!("{e}: {url}") });
                    }
                    Err(e) => format!("{url}: {e}"),
                }
            }
        };
        println!("{transient} (attempt {attempt} of {ATTEMPTS})");
        if attempt == ATTEMPTS {
            return Err(FetchError { not_found: false, message: transient });
        }
        cpu::delay_ms(wait);
        wait *= WAIT_FACTOR;
        attempt += 1;
    }
}
