//! Rotation detection, as pure decisions over what `stat` and a few re-read bytes say, so every
//! case is unit-tested without a file system.
//!
//! Two ways a log gets rotated:
//! - **rename and create**: the path now names another file (another inode). The old file is
//!   still open here and is read to its end before the new one.
//! - **copy and truncate**: the same file shrinks to zero and grows again. Bytes written after
//!   the last read and before the truncation live only in the copy, so the copy (`<path>.1`, as
//!   logrotate names it) is read from where reading stopped, when its bytes up to that point are
//!   the ones read here.
//!
//! A truncated file that has already grown back past the read position is recognised by the
//! bytes just before that position: they are kept after each read (the *fingerprint*) and
//! compared with what the file holds there now.

/// Which file an open handle or a path refers to: device and inode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileId {
    /// Device number.
    pub dev: u64,
    /// Inode number.
    pub ino: u64,
}

impl FileId {
    /// The id of the file `metadata` describes.
    #[cfg(unix)]
    pub fn of(metadata: &std::fs::Metadata) -> FileId {
        use std::os::unix::fs::MetadataExt;
        FileId {
            dev: metadata.dev(),
            ino: metadata.ino(),
        }
    }
}

/// How many bytes before the read position are remembered to recognise the same content.
pub const FINGERPRINT_BYTES: usize = 256;

/// What became of the followed file, judged when reading reached its end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// Same file, nothing new yet.
    Unchanged,
    /// Same file, grown since the read (a write raced the check): read again.
    Grew,
    /// Same file, now shorter than what was read: truncated (copy-truncate rotation).
    Truncated,
    /// The path names another file now (rename-and-create rotation, or delete and create).
    Replaced(FileId),
    /// Nothing at the path (renamed away and not yet recreated, or deleted): keep reading the
    /// open file, which the writer may still append to.
    Missing,
}

/// Compares the open file (`followed`, read up to `offset`) with what is at the path now
/// (`at_path`: its id and length, or `None` if there is nothing).
pub fn classify(followed: FileId, offset: u64, at_path: Option<(FileId, u64)>) -> Change {
    match at_path {
        None => Change::Missing,
        Some((id, _)) if id != followed => Change::Replaced(id),
        Some((_, len)) if len < offset => Change::Truncated,
        Some((_, len)) if len > offset => Change::Grew,
        Some(_) => Change::Unchanged,
    }
}

/// Whether the bytes now found just before the read position (`now`) are the ones read there
/// (`remembered`); when they differ the file was truncated and rewritten past that position.
pub fn same_content(remembered: &[u8], now: &[u8]) -> bool {
    remembered == now
}

/// Whether a rotated copy can supply the bytes missed when the followed file was truncated
/// after being read up to `offset`: it must be another file, at least that long, and hold the
/// remembered bytes just before `offset`.
pub fn copy_continues(
    followed: FileId,
    offset: u64,
    remembered: &[u8],
    copy: FileId,
    copy_len: u64,
    copy_bytes_before_offset: &[u8],
) -> bool {
    copy != followed && copy_len >= offset && remembered == copy_bytes_before_offset
}

/// Keeps the last [`FINGERPRINT_BYTES`] bytes read: `fingerprint` after `chunk` was read.
pub fn advance_fingerprint(fingerprint: &mut Vec<u8>, chunk: &[u8]) {
    if chunk.len() >= FINGERPRINT_BYTES {
        fingerprint.clear();
        fingerprint.extend_from_slice(&chunk[chunk.len() - FINGERPRINT_BYTES..]);
        return;
    }
    fingerprint.extend_from_slice(chunk);
    let excess = fingerprint.len().saturating_sub(FINGERPRINT_BYTES);
    fingerprint.drain(..excess);
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: FileId = FileId { dev: 1, ino: 10 };
    const B: FileId = FileId { dev: 1, ino: 11 };

    #[test]
    fn classifies_what_is_at_the_path() {
        assert_eq!(classify(A, 100, Some((A, 100))), Change::Unchanged);
        assert_eq!(classify(A, 100, Some((A, 150))), Change::Grew);
        assert_eq!(classify(A, 100, Some((A, 0))), Change::Truncated);
        assert_eq!(classify(A, 100, Some((A, 99))), Change::Truncated);
        assert_eq!(classify(A, 100, Some((B, 0))), Change::Replaced(B));
        assert_eq!(classify(A, 100, Some((B, 500))), Change::Replaced(B));
        assert_eq!(classify(A, 100, None), Change::Missing);
        // Same inode number on another device is another file.
        let other_device = FileId { dev: 2, ino: 10 };
        assert_eq!(
            classify(A, 0, Some((other_device, 0))),
            Change::Replaced(other_device)
        );
    }

    #[test]
    fn fingerprint_keeps_the_last_bytes_read() {
        let mut fp = Vec::new();
        advance_fingerprint(&mut fp, b"hello ");
        advance_fingerprint(&mut fp, b"world");
        assert_eq!(fp, b"hello world");
        let big: Vec<u8> = (0..1000u32).map(|i| (i % 251) as u8).collect();
        advance_fingerprint(&mut fp, &big);
        assert_eq!(fp, &big[1000 - FINGERPRINT_BYTES..]);
        advance_fingerprint(&mut fp, b"xy");
        assert_eq!(fp.len(), FINGERPRINT_BYTES);
        assert_eq!(&fp[FINGERPRINT_BYTES - 2..], b"xy");
        assert_eq!(
            &fp[..FINGERPRINT_BYTES - 2],
            &big[1000 - FINGERPRINT_BYTES + 2..]
        );
    }

    #[test]
    fn truncated_and_regrown_is_told_by_content() {
        assert!(same_content(b"line 41\nline 42\n", b"line 41\nline 42\n"));
        assert!(!same_content(b"line 41\nline 42\n", b"line 01\nline 02\n"));
    }

    #[test]
    fn a_copy_is_used_only_if_it_holds_what_was_read() {
        let seen = b"line 42\n";
        assert!(copy_continues(A, 800, seen, B, 900, seen));
        assert!(copy_continues(A, 800, seen, B, 800, seen));
        // Too short: an older rotation, not the copy of what was read.
        assert!(!copy_continues(A, 800, seen, B, 700, seen));
        // Different bytes at that position: not our data.
        assert!(!copy_continues(A, 800, seen, B, 900, b"line 07\n"));
        // The followed file itself is no copy.
        assert!(!copy_continues(A, 800, seen, A, 900, seen));
    }
}
