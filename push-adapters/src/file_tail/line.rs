//! Lines: cutting a byte stream into lines with bounded memory, and turning a line into an event
//! payload (the JSON itself, `{"line": ...}`, or a cut line marked `"truncated": true`).

use serde_json::value::RawValue;

/// One line of a file, without its `\n` (and without a `\r` before it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// The line's first bytes: all of them unless the line was longer than the splitter keeps.
    pub bytes: Vec<u8>,
    /// How long the line really was, in bytes.
    pub original_len: usize,
}

impl Line {
    /// Whether `bytes` holds only the beginning of the line.
    pub fn is_cut(&self) -> bool {
        self.bytes.len() < self.original_len
    }
}

/// Cuts a stream of chunks into lines, keeping at most `keep` bytes of any one line in memory
/// (the rest is counted, not stored), so a file without newlines cannot exhaust memory.
#[derive(Debug)]
pub struct LineSplitter {
    keep: usize,
    pending: Vec<u8>,
    pending_len: usize,
}

impl LineSplitter {
    /// A splitter that keeps the first `keep` bytes of each line.
    pub fn new(keep: usize) -> Self {
        LineSplitter {
            keep,
            pending: Vec::new(),
            pending_len: 0,
        }
    }

    /// Feeds the next chunk of the stream; every line it completes is pushed onto `out`.
    pub fn push(&mut self, mut chunk: &[u8], out: &mut Vec<Line>) {
        while let Some(end) = chunk.iter().position(|&b| b == b'\n') {
            self.append(&chunk[..end]);
            out.push(self.take());
            chunk = &chunk[end + 1..];
        }
        self.append(chunk);
    }

    /// The unfinished last line, if any bytes of one are buffered: used when the stream it
    /// belongs to ends for good (a rotated file that was read to its end).
    pub fn flush(&mut self) -> Option<Line> {
        (self.pending_len > 0).then(|| self.take())
    }

    /// Whether part of a line is buffered.
    pub fn has_partial(&self) -> bool {
        self.pending_len > 0
    }

    fn append(&mut self, bytes: &[u8]) {
        let room = self.keep.saturating_sub(self.pending.len());
        self.pending
            .extend_from_slice(&bytes[..bytes.len().min(room)]);
        self.pending_len += bytes.len();
    }

    fn take(&mut self) -> Line {
        let mut bytes = std::mem::take(&mut self.pending);
        let mut original_len = std::mem::take(&mut self.pending_len);
        // A `\r\n` line ending: the `\r` is the last byte of the line, kept only if the line
        // fitted (a cut line's last byte is not stored, so there is nothing to strip).
        if original_len == bytes.len() && bytes.last() == Some(&b'\r') {
            bytes.pop();
            original_len -= 1;
        }
        Line {
            bytes,
            original_len,
        }
    }
}

/// The event payload for `line`, never longer than `limit` bytes of JSON:
/// - a line that is valid JSON (and fits) is the payload as is;
/// - any other line is `{"line":"<text>"}` (invalid UTF-8 replaced by U+FFFD);
/// - a line whose payload would exceed `limit` is cut:
///   `{"line":"<first bytes that fit>","truncated":true,"original_bytes":<length of the line>}`.
///
/// `limit` must leave room for the marker: at least [`MIN_LIMIT`] bytes.
pub fn payload(line: &Line, limit: usize) -> Payload {
    let limit = limit.max(MIN_LIMIT);
    if !line.is_cut() && line.bytes.len() <= limit {
        if let Ok(json) = serde_json::from_slice::<Box<RawValue>>(&line.bytes) {
            return Payload { json, cut: false };
        }
        let text = String::from_utf8_lossy(&line.bytes);
        let wrapped = serde_json::json!({ "line": text }).to_string();
        if wrapped.len() <= limit {
            return Payload {
                json: raw(wrapped),
                cut: false,
            };
        }
    }
    Payload {
        json: raw(truncated(line, limit)),
        cut: true,
    }
}

/// A line's event payload.
#[derive(Debug)]
pub struct Payload {
    /// The JSON to publish.
    pub json: Box<RawValue>,
    /// Whether the line had to be cut to fit the limit.
    pub cut: bool,
}

/// The smallest payload limit a line can be cut to: room for the marker fields and a few bytes.
pub const MIN_LIMIT: usize = 128;

fn truncated(line: &Line, limit: usize) -> String {
    let text = String::from_utf8_lossy(&line.bytes);
    let encode = |prefix: &str| {
        serde_json::json!({
            "line": prefix,
            "truncated": true,
            "original_bytes": line.original_len,
        })
        .to_string()
    };
    let overhead = encode("").len();
    let mut prefix = cut_at_char(&text, limit.saturating_sub(overhead));
    // Escapes (`\"`, `\u0001`) make the JSON longer than the text. Every byte removed from the
    // text shortens the JSON by at least one byte, so removing the excess once is enough; the
    // loop bound is only a guard.
    for _ in 0..4 {
        let encoded = encode(prefix);
        if encoded.len() <= limit {
            return encoded;
        }
        let excess = encoded.len() - limit;
        prefix = cut_at_char(prefix, prefix.len().saturating_sub(excess));
    }
    encode("")
}

/// The longest prefix of `text` of at most `max` bytes that ends on a character boundary.
fn cut_at_char(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

fn raw(json: String) -> Box<RawValue> {
    RawValue::from_string(json).unwrap_or_else(|_| unreachable!("serde_json wrote valid JSON"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn split(chunks: &[&[u8]], keep: usize) -> (Vec<Line>, LineSplitter) {
        let mut splitter = LineSplitter::new(keep);
        let mut out = Vec::new();
        for chunk in chunks {
            splitter.push(chunk, &mut out);
        }
        (out, splitter)
    }

    fn texts(lines: &[Line]) -> Vec<String> {
        lines
            .iter()
            .map(|l| String::from_utf8_lossy(&l.bytes).into_owned())
            .collect()
    }

    #[test]
    fn splits_across_chunks_and_strips_crlf() {
        let (lines, mut splitter) = split(&[b"one\ntw", b"o\r\n\nthr", b"ee"], 100);
        assert_eq!(texts(&lines), vec!["one", "two", ""]);
        assert_eq!(lines[1].original_len, 3);
        assert!(splitter.has_partial());
        let last = splitter.flush().unwrap();
        assert_eq!(last.bytes, b"three");
        assert_eq!(splitter.flush(), None);
    }

    #[test]
    fn keeps_only_the_head_of_a_long_line_but_counts_it_all() {
        let long = vec![b'x'; 10_000];
        let (lines, _) = split(&[&long[..4000], &long[4000..], b"\nshort\n"], 16);
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0].bytes.len(), 16);
        assert_eq!(lines[0].original_len, 10_000);
        assert!(lines[0].is_cut());
        assert_eq!(lines[1].bytes, b"short");
    }

    fn payload_of(text: &[u8], limit: usize) -> Value {
        let line = Line {
            bytes: text.to_vec(),
            original_len: text.len(),
        };
        let payload = payload(&line, limit);
        let raw = payload.json.get();
        assert!(raw.len() <= limit.max(MIN_LIMIT), "{raw}");
        let value: Value = serde_json::from_str(raw).unwrap();
        assert_eq!(payload.cut, value.get("truncated").is_some(), "{raw}");
        value
    }

    #[test]
    fn json_lines_are_the_payload_others_are_wrapped() {
        assert_eq!(
            payload_of(br#"{"level":"info","n":1}"#, 1000),
            json!({"level":"info","n":1})
        );
        assert_eq!(payload_of(b"42", 1000), json!(42));
        assert_eq!(
            payload_of(b"plain text", 1000),
            json!({"line": "plain text"})
        );
        assert_eq!(payload_of(b"{broken", 1000), json!({"line": "{broken"}));
        assert_eq!(payload_of(b"", 1000), json!({"line": ""}));
        assert_eq!(
            payload_of(b"caf\xc3\xa9 \xff", 1000),
            json!({"line": "café \u{fffd}"})
        );
    }

    #[test]
    fn long_lines_are_cut_with_a_marker_within_the_limit() {
        let line = "a".repeat(1000);
        let value = payload_of(line.as_bytes(), 200);
        assert_eq!(value["truncated"], true);
        assert_eq!(value["original_bytes"], 1000);
        let kept = value["line"].as_str().unwrap();
        assert!(kept.len() > 100 && line.starts_with(kept), "{kept}");

        // Valid JSON that is too long is cut as text too.
        let big = format!(r#"{{"x":"{}"}}"#, "b".repeat(500));
        let value = payload_of(big.as_bytes(), 200);
        assert_eq!(value["truncated"], true);
        assert!(big.starts_with(value["line"].as_str().unwrap()));
    }

    #[test]
    fn cutting_respects_escapes_and_characters() {
        // Quotes double in JSON; control characters take six bytes.
        for text in ["\"".repeat(400), "\u{1}".repeat(400), "é".repeat(400)] {
            let value = payload_of(text.as_bytes(), 150);
            assert_eq!(value["truncated"], true, "{value}");
            assert!(text.starts_with(value["line"].as_str().unwrap()));
        }
        // Short line that only outgrows the limit once escaped.
        let value = payload_of("\u{1}".repeat(100).as_bytes(), 200);
        assert_eq!(value["truncated"], true);
        assert_eq!(value["original_bytes"], 100);
    }

    #[test]
    fn a_line_cut_by_the_splitter_reports_its_full_length() {
        let line = Line {
            bytes: b"head".to_vec(),
            original_len: 1_000_000,
        };
        let value: Value = serde_json::from_str(payload(&line, 1000).json.get()).unwrap();
        assert_eq!(
            value,
            json!({"line": "head", "truncated": true, "original_bytes": 1_000_000})
        );
    }
}
