//! The chainloader's boot configuration: which kernel and modules to fetch,
//! and their command lines; and where to look for it (PXELINUX style).
//!
//! # Syntax
//!
//! One directive per line:
//!
//! ```text
//! # a comment
//! kernel  PATH [ARG...]          (GRUB 2 spelling: multiboot2 PATH [ARG...])
//! module  PATH [ARG...]          (GRUB 2 spelling: module2 [--nounzip] PATH [ARG...])
//! loader_name TEXT...            (the boot loader name the kernel sees, MBI tag 2)
//! ```
//!
//! `loader_name` replaces the default name in the boot information,
//! `chainloader.0 <version> (GRUB 2 compatible)`. The default contains
//! "GRUB " followed by a version that is not 0 because kernels test for
//! that to decide whether the loader behaves like GRUB 2: Xen (4.17,
//! `loader_is_grub2` in xen/arch/x86/setup.c) otherwise strips the first
//! word of its own and of every module's command line, taking it for an
//! image name as GRUB Legacy passed. Words after the directive are joined
//! with single spaces; at most one `loader_name` line.
//!
//! Blank lines, leading whitespace and CRLF line ends are fine. Exactly one
//! kernel line is required; module lines may come before or after it and
//! keep their order (GRUB itself wants the kernel first; order does not
//! matter here).
//!
//! # Words and command lines, as GRUB 2 makes them
//!
//! A line is split into words the way GRUB 2's script lexer does it, and
//! the command line a kernel or module receives is what GRUB 2 (2.06, as
//! shipped by Debian) builds from those words in `grub_create_loader_cmdline`:
//!
//! * words are separated by runs of spaces and tabs; the kernel sees them
//!   joined by single spaces (`multiboot2 /k a b  c` gives `a b c`);
//! * `#` at the start of a word begins a comment that runs to the end of
//!   the line; inside a word (`a#b`) it is an ordinary character, as in
//!   GRUB. So `console=ttyS0 # serial` passes `console=ttyS0`;
//! * `'...'` quotes literally; `"..."` quotes with `\"`, `\\` and `\$` as
//!   escapes; outside quotes `\c` stands for `c`;
//! * a word that contains a space is passed wrapped in double quotes, and
//!   every `\`, `'` and `"` in a word is passed with a backslash in front
//!   (so `'a b'` arrives as `"a b"` and `it's` as `it\'s`), exactly as GRUB
//!   2.06 does;
//! * what this file cannot do the way GRUB would is refused with a clear
//!   error rather than guessed: variables (`$x`, which GRUB expands),
//!   unquoted `{ } | & ; < >` (GRUB script syntax), a trailing backslash
//!   (line continuation) and a quote left open at the end of the line.
//!
//! # Paths
//!
//! Paths are names on the TFTP server, relative to its root: `/nautilus.bin`
//! and `nautilus.bin` are the same file, and GRUB's `(pxe)` / `(tftp)`
//! device prefix is accepted and dropped (`(pxe)/nautilus.bin`). `Entry::path`
//! holds the name as it is sent in the RRQ (see [`tftp_path`]): without the
//! device and leading slashes, which every TFTP server resolves against its
//! root (tftp-hpa with or without `-s`, dnsmasq, QEMU, the relay).

#[cfg(test)]
mod tests;

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;

/// The directory of per-client config files on the TFTP server.
pub const CONFIG_DIR: &str = "chainloader.cfg";

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The TFTP file name (root-relative, no device, no leading `/`).
    pub path: String,
    /// The command line the kernel or module receives, as GRUB 2 would
    /// build it from the words after PATH (see the module documentation).
    pub args: String,
    /// `module2 --nounzip`: do not decompress a gzip file.
    pub nounzip: bool,
    /// The line of the config file (1-based), for messages.
    pub line: usize,
    /// PATH began at the server's root (`/x`, `(pxe)/x`): over HTTP it
    /// resolves against the server, not against the config file's URL.
    pub rooted: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BootConfig {
    pub kernel: Entry,
    pub modules: Vec<Entry>,
    /// `loader_name`: the boot loader name for MBI tag 2, if set.
    pub loader_name: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    /// 1-based; 0 when the error is about the whole file.
    pub line: usize,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{CONFIG_DIR}: {}", self.message)
        } else {
            write!(f, "{CONFIG_DIR} line {}: {}", self.line, self.message)
        }
    }
}

fn err(line: usize, message: impl Into<String>) -> ConfigError {
    ConfigError { line, message: message.into() }
}

pub fn parse(text: &str) -> Result<BootConfig, ConfigError> {
    let mut kernel: Option<Entry> = None;
    let mut modules = Vec::new();
    let mut loader_name: Option<(usize, String)> = None;
    for (i, raw) in text.split('\n').enumerate() {
        let n = i + 1;
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        let words = split_words(line).map_err(|m| err(n, m))?;
        let Some((directive, rest)) = words.split_first() else {
            continue;
        };
        match directive.as_str() {
            "kernel" | "multiboot2" => {
                if let Some(first) = &kernel {
                    return Err(err(n, format!("a second kernel line (the first is line {})", first.line)));
                }
                kernel = Some(entry(n, directive, rest, false)?);
            }
            "module" | "module2" => modules.push(entry(n, directive, rest, true)?),
            "loader_name" => {
                if let Some((first, _)) = &loader_name {
                    return Err(err(n, format!("a second loader_name line (the first is line {first})")));
                }
                if rest.is_empty() {
                    return Err(err(n, "loader_name: missing TEXT"));
                }
                let name = rest.join(" ");
                if name.contains('\0') {
                    return Err(err(n, "loader_name: TEXT must not contain a NUL character"));
                }
                loader_name = Some((n, name));
            }
            "multiboot" => {
                return Err(err(
                    n,
                    "'multiboot' loads Multiboot 1 kernels, which are not supported; use 'multiboot2' or 'kernel'",
                ))
            }
            other => {
                return Err(err(
                    n,
                    format!(
                        "unknown directive '{other}' (expected kernel, multiboot2, module, module2 or loader_name)"
                    ),
                ))
            }
        }
    }
    let kernel = kernel.ok_or_else(|| err(0, "no kernel line ('kernel PATH [CMDLINE...]')"))?;
    Ok(BootConfig { kernel, modules, loader_name: loader_name.map(|(_, name)| name) })
}

fn entry(line: usize, directive: &str, words: &[String], is_module: bool) -> Result<Entry, ConfigError> {
    let mut words = words;
    let mut nounzip = false;
    if is_module && words.first().map(String::as_str) == Some("--nounzip") {
        nounzip = true;
        words = &words[1..];
    }
    let Some((path, args)) = words.split_first() else {
        return Err(err(line, format!("{directive}: missing PATH")));
    };
    let name = tftp_path(path);
    if name.is_empty() {
        return Err(err(line, format!("{directive}: '{path}' names no file")));
    }
    if path.starts_with('(') {
        check_device(path).map_err(|m| err(line, m))?;
    }
    let rooted = path.starts_with('/') || path.starts_with('(');
    Ok(Entry { path: name.to_string(), args: grub_cmdline(args), nounzip, line, rooted })
}

fn check_device(path: &str) -> Result<(), String> {
    let Some(close) = path.find(')') else {
        return Err(format!("'{path}': device name without ')'"));
    };
    let dev = &path[1..close];
    if dev == "pxe" || dev == "tftp" {
        Ok(())
    } else if dev.starts_with("tftp,") || dev.starts_with("pxe,") {
        Err(format!("'{path}': files come from the boot server; naming another server is not supported"))
    } else {
        Err(format!("'{path}': only network files can be loaded (device '({dev})')"))
    }
}

/// The TFTP file name for a config path: drops GRUB's `(pxe)` or `(tftp)`
/// device prefix and leading slashes, so that the name is relative to the
/// TFTP root. Idempotent.
pub fn tftp_path(p: &str) -> &str {
    let mut p = p;
    for dev in ["(pxe)", "(tftp)"] {
        if let Some(rest) = p.strip_prefix(dev) {
            p = rest;
        }
    }
    p.trim_start_matches('/')
}

/// Joins words into the command line GRUB 2.06 passes (its
/// `grub_create_loader_cmdline`): single spaces between words, a word with
/// a space in double quotes, and `\`, `'`, `"` escaped with a backslash.
pub fn grub_cmdline<S: AsRef<str>>(words: &[S]) -> String {
    let mut out = String::new();
    for (i, w) in words.iter().enumerate() {
        let w = w.as_ref();
        if i > 0 {
            out.push(' ');
        }
        let quote = w.contains(' ');
        if quote {
            out.push('"');
        }
        for c in w.chars() {
            if matches!(c, '\\' | '\'' | '"') {
                out.push('\\');
            }
            out.push(c);
        }
        if quote {
            out.push('"');
        }
    }
    out
}

/// Splits one line into words as GRUB 2's lexer does (see the module
/// documentation); a comment ends the line.
pub fn split_words(line: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        while matches!(chars.peek(), Some(' ' | '\t')) {
            chars.next();
        }
        match chars.peek() {
            None => break,
            Some('#') => break,
            _ => {}
        }
        let mut w = String::new();
        while let Some(&c) = chars.peek() {
            if c == ' ' || c == '\t' {
                break;
            }
            chars.next();
            match c {
                '\\' => match chars.next() {
                    Some(e) => w.push(e),
                    None => {
                        return Err("a backslash at the end of the line (line continuation) is not supported".into())
                    }
                },
                '\'' => loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(q) => w.push(q),
                        None => return Err("unterminated ' quote".into()),
                    }
                },
                '"' => loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.peek() {
                            Some(&e @ ('"' | '\\' | '$')) => {
                                chars.next();
                                w.push(e);
                            }
                            _ => w.push('\\'),
                        },
                        Some('$') => return Err(variable_error()),
                        Some(q) => w.push(q),
                        None => return Err("unterminated \" quote".into()),
                    }
                },
                '$' => return Err(variable_error()),
                '{' | '}' | '|' | '&' | ';' | '<' | '>' => {
                    return Err(format!(
                    "'{c}' is GRUB script syntax, which is not supported here; quote it ('{c}') to pass it literally"
                ))
                }
                other => w.push(other),
            }
        }
        words.push(w);
    }
    Ok(words)
}

fn variable_error() -> String {
    "variables ($name) are not supported; write the value, or quote a literal $ as '$' or \\$".into()
}

/// The config files to try, in order, PXELINUX style (when DHCP gave no
/// option 209): `chainloader.cfg/01-<mac>` (01 = Ethernet ARP type,
/// lowercase hex, dashes), then the client IP in uppercase hex and each
/// shorter prefix of it down to one digit, then `chainloader.cfg/default`.
pub fn candidates(mac: [u8; 6], ip: [u8; 4]) -> Vec<String> {
    let mut out = Vec::with_capacity(10);
    out.push(format!(
        "{CONFIG_DIR}/01-{:02x}-{:02x}-{:02x}-{:02x}-{:02x}-{:02x}",
        mac[0], mac[1], mac[2], mac[3], mac[4], mac[5]
    ));
    let hex = format!("{:02X}{:02X}{:02X}{:02X}", ip[0], ip[1], ip[2], ip[3]);
    for n in (1..=hex.len()).rev() {
        out.push(format!("{CONFIG_DIR}/{}", &hex[..n]));
    }
    out.push(format!("{CONFIG_DIR}/default"));
    out
}
