//! Printing a typed error with its causes.
//!
//! The library's errors are `thiserror` enums whose Display is their own
//! context only and whose `source()` is the cause, as `anyhow`'s
//! `.context()` chains were; `Chain` prints them as `anyhow`'s `{:#}` did:
//! the error, then each cause after ": ".

use std::error::Error;
use std::fmt;

/// An error and its causes on one line: `context: cause: cause`.
pub struct Chain<'a>(pub &'a (dyn Error + 'static));

impl fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        let mut cause = self.0.source();
        while let Some(c) = cause {
            write!(f, ": {c}")?;
            cause = c.source();
        }
        Ok(())
    }
}

/// `Chain` of any error, as a `String`.
pub fn chain(e: &(dyn Error + 'static)) -> String {
    Chain(e).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chain_reads_as_anyhow_printed_it() {
        let e = crate::policy::config::Config::load(std::path::Path::new("/nonexistent/relay.toml")).unwrap_err();
        assert_eq!(e.to_string(), "reading config /nonexistent/relay.toml");
        assert_eq!(chain(&e), "reading config /nonexistent/relay.toml: No such file or directory (os error 2)");
        let e = crate::tagging::parse_option("300", "x").unwrap_err();
        assert_eq!(chain(&e), "\"300\" is not an option code (1-254): number too large to fit in target type");
    }
}
