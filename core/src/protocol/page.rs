//! Pages of REST listings (`GET /v1/channels`): the page size bounds and the opaque cursor.
//!
//! A cursor names the last item of the page it follows, so pages stay stable in name order
//! while channels come and go; clients pass it back verbatim and never parse it.

use super::error::HeraldError;
use crate::names::is_valid_name;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

/// Items on a page when the caller does not say.
pub const DEFAULT_PAGE_LIMIT: usize = 1000;
/// Most items on one page.
pub const MAX_PAGE_LIMIT: usize = 1000;

/// The cursor of the page that follows the item named `last`.
pub fn cursor_after(last: &str) -> String {
    URL_SAFE_NO_PAD.encode(last)
}

/// The name a cursor made by [`cursor_after`] follows.
pub fn decode_cursor(cursor: &str) -> Result<String, HeraldError> {
    URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .filter(|name| is_valid_name(name))
        .ok_or_else(|| {
            HeraldError::bad_request(
                "invalid `cursor`: pass back the `next` value of the previous page unchanged",
            )
        })
}

/// Checks a requested page size: 1 to [`MAX_PAGE_LIMIT`], [`DEFAULT_PAGE_LIMIT`] when absent.
pub fn page_limit(limit: Option<usize>) -> Result<usize, HeraldError> {
    match limit {
        None => Ok(DEFAULT_PAGE_LIMIT),
        Some(n @ 1..=MAX_PAGE_LIMIT) => Ok(n),
        Some(_) => Err(HeraldError::bad_request(format!(
            "`limit` must be between 1 and {MAX_PAGE_LIMIT}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_bad_ones_are_refused() {
        for name in ["chat", "room.a@b:c", "x"] {
            assert_eq!(decode_cursor(&cursor_after(name)).unwrap(), name);
        }
        for bad in ["", "!!", "%41", &cursor_after("a b")] {
            assert!(decode_cursor(bad).is_err(), "{bad}");
        }
        assert_eq!(page_limit(None).unwrap(), DEFAULT_PAGE_LIMIT);
        assert_eq!(page_limit(Some(5)).unwrap(), 5);
        assert!(page_limit(Some(0)).is_err());
        assert!(page_limit(Some(MAX_PAGE_LIMIT + 1)).is_err());
    }
}
