//! Positions in a target's stream, and the opaque tokens clients hold them as.

use std::fmt;

/// Where an event sits in a target's stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    /// The store's epoch: a position from another epoch recovers nothing.
    pub epoch: u64,
    /// The event's sequence number (0: the stream was empty).
    pub seq: u64,
    /// When the position was taken (ms since the Unix epoch): a position whose event is gone
    /// can still recover while nothing after it can have aged out.
    pub ms: u64,
}

impl Position {
    /// Parses a token [`Position`]'s `Display` wrote; `None` for anything else.
    pub fn parse(token: &str) -> Option<Position> {
        let mut parts = token.split('-');
        let mut next = || -> Option<u64> {
            let part = parts.next()?;
            let canonical = !part.is_empty()
                && part.len() <= 16
                && (part == "0" || !part.starts_with('0'))
                && part.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
            canonical.then(|| u64::from_str_radix(part, 16).ok())?
        };
        let position = Position {
            epoch: next()?,
            seq: next()?,
            ms: next()?,
        };
        parts.next().is_none().then_some(position)
    }
}

/// The token form: three lowercase hex numbers joined by `-`. Clients never parse it.
impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:x}-{:x}-{:x}", self.epoch, self.seq, self.ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_nothing_else_parses() {
        let p = Position {
            epoch: 0x1234,
            seq: 0,
            ms: 1_700_000_000_000,
        };
        assert_eq!(Position::parse(&p.to_string()), Some(p));
        for bad in [
            "", "1-2", "1-2-3-4", "1-02-3", "x-1-2", "1--2", "1-2-3 ", "A-1-2",
        ] {
            assert_eq!(Position::parse(bad), None, "{bad:?}");
        }
        assert_eq!(Position::parse(&format!("{}-1-1", "f".repeat(17))), None);
    }
}
