//! Error reporting shared by the core modules.

/// An error and its causes on one line (`a: b: c`), skipping a cause whose
/// text the line already contains (many errors repeat their source).
pub fn one_line(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(cause) = cur {
        let msg = cause.to_string();
        if !out.contains(&msg) {
            out.push_str(": ");
            out.push_str(&msg);
        }
        cur = cause.source();
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn causes_are_joined_once() {
        let err = Wrap(std::io::Error::other("connection refused"));
        assert_eq!(
            super::one_line(&err),
            "could not connect: connection refused"
        );
        // A cause already quoted in the message is not repeated.
        let quoted = Quoted(Wrap(std::io::Error::other("x")));
        assert_eq!(super::one_line(&quoted), "failed (could not connect): x");
    }

    #[derive(Debug)]
    struct Wrap(std::io::Error);
    impl std::fmt::Display for Wrap {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("could not connect")
        }
    }
    impl std::error::Error for Wrap {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }

    #[derive(Debug)]
    struct Quoted(Wrap);
    impl std::fmt::Display for Quoted {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "failed ({})", self.0)
        }
    }
    impl std::error::Error for Quoted {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }
}
