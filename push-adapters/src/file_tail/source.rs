//! Reading one followed path as a single stream of lines across rotations: the file now at the
//! path, plus files that still hold unread lines of it (a renamed-away file, a rotated copy).
//!
//! Blocking file I/O: the follower calls [`TailSource::step`] on a blocking thread.

use super::events::Events;
use super::line::{Line, LineSplitter};
use super::rotation::{self, Change, FileId, FINGERPRINT_BYTES};
use std::collections::VecDeque;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// Bytes read from a file per step.
const CHUNK_BYTES: usize = 64 * 1024;

/// What one [`TailSource::step`] found.
#[derive(Debug)]
pub enum Step {
    /// Progress: these lines (possibly none, when only part of a line was read), and more may be
    /// ready at once.
    Lines(Vec<Line>),
    /// Nothing to read now: wait for a change.
    Idle,
}

/// An open file and how far it was read.
struct Segment {
    file: File,
    id: FileId,
    /// Bytes read so far.
    offset: u64,
    /// The last bytes read, to recognise a truncated-and-rewritten file.
    fingerprint: Vec<u8>,
}

impl Segment {
    fn open(path: &Path) -> io::Result<Segment> {
        let file = File::open(path)?;
        let id = FileId::of(&file.metadata()?);
        Ok(Segment {
            file,
            id,
            offset: 0,
            fingerprint: Vec::new(),
        })
    }

    fn read_chunk(&self, buffer: &mut [u8]) -> io::Result<usize> {
        loop {
            match self.file.read_at(buffer, self.offset) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                other => return other,
            }
        }
    }

    /// Whether the file still holds, just before the read position, the bytes read there.
    fn still_holds_what_was_read(&self) -> io::Result<bool> {
        let now = read_before(&self.file, self.offset, self.fingerprint.len())?;
        Ok(rotation::same_content(&self.fingerprint, &now))
    }

    fn accept(&mut self, chunk: &[u8]) {
        self.offset += chunk.len() as u64;
        rotation::advance_fingerprint(&mut self.fingerprint, chunk);
    }
}

/// The lines of one path, in order, across rotations.
pub struct TailSource {
    path: PathBuf,
    rotated_copy: PathBuf,
    /// Files that hold unread lines older than the live file's: read to their end first.
    draining: VecDeque<Segment>,
    /// The file at the path, once it exists.
    live: Option<Segment>,
    /// Whether the next open is the first one, which starts at the end unless `from_start`.
    first_open: bool,
    from_start: bool,
    splitter: LineSplitter,
    buffer: Vec<u8>,
    events: Events,
}

impl TailSource {
    /// A source for `path`; nothing is opened before the first step. Lines are kept up to
    /// `keep_bytes` (longer ones are cut).
    pub fn new(path: PathBuf, from_start: bool, keep_bytes: usize, events: Events) -> Self {
        let mut copy_name = path.file_name().unwrap_or_default().to_os_string();
        copy_name.push(".1");
        TailSource {
            rotated_copy: path.with_file_name(copy_name),
            path,
            draining: VecDeque::new(),
            live: None,
            first_open: true,
            from_start,
            splitter: LineSplitter::new(keep_bytes),
            buffer: vec![0; CHUNK_BYTES],
            events,
        }
    }

    /// Opens the file if it exists and was not opened yet, fixing where reading starts: after
    /// this, every line appended is read. Called once at start; `step` does it otherwise.
    pub fn open_if_present(&mut self) -> io::Result<()> {
        if self.live.is_none() {
            self.open_live()?;
        }
        Ok(())
    }

    /// Reads what is there to read: rotated files first, then the live one.
    pub fn step(&mut self) -> io::Result<Step> {
        if let Some(segment) = self.draining.front() {
            let n = segment.read_chunk(&mut self.buffer)?;
            let mut lines = Vec::new();
            if n > 0 {
                let chunk = &self.buffer[..n];
                self.splitter.push(chunk, &mut lines);
                if let Some(segment) = self.draining.front_mut() {
                    segment.accept(chunk);
                }
            } else {
                // Read to its end: its last line is as complete as it will ever be.
                self.draining.pop_front();
                lines.extend(self.splitter.flush());
                self.events.rotated_file_done(&self.path);
            }
            return Ok(Step::Lines(lines));
        }
        if self.live.is_none() && !self.open_live()? {
            return Ok(Step::Idle);
        }
        let Some(live) = &self.live else {
            return Ok(Step::Idle);
        };
        let n = live.read_chunk(&mut self.buffer)?;
        if n > 0 {
            if !live.still_holds_what_was_read()? {
                // Truncated and already written past where reading stopped.
                return Ok(Step::Lines(self.truncated()?));
            }
            let mut lines = Vec::new();
            let chunk = &self.buffer[..n];
            self.splitter.push(chunk, &mut lines);
            if let Some(live) = &mut self.live {
                live.accept(chunk);
            }
            return Ok(Step::Lines(lines));
        }
        let at_path = match std::fs::metadata(&self.path) {
            Ok(metadata) => Some((FileId::of(&metadata), metadata.len())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(e),
        };
        match rotation::classify(live.id, live.offset, at_path) {
            Change::Unchanged | Change::Missing => Ok(Step::Idle),
            Change::Grew => Ok(Step::Lines(Vec::new())),
            Change::Truncated => Ok(Step::Lines(self.truncated()?)),
            Change::Replaced(_) => {
                // Read the old file to its end (the writer may have added a last line since),
                // then the new one from its start.
                if let Some(old) = self.live.take() {
                    self.draining.push_back(old);
                }
                self.events.rotated_by_rename(&self.path);
                Ok(Step::Lines(Vec::new()))
            }
        }
    }

    /// Opens the file at the path; `false` if there is none yet.
    fn open_live(&mut self) -> io::Result<bool> {
        // A file that is not there at the first attempt is read from its start once it
        // appears: every line of it was written after the adapter started.
        let first = self.first_open;
        let mut segment = match Segment::open(&self.path) {
            Ok(segment) => segment,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                if first {
                    self.first_open = false;
                    self.events.waiting_for_file(&self.path);
                }
                return Ok(false);
            }
            Err(e) => return Err(e),
        };
        self.first_open = false;
        if first && !self.from_start {
            // Start at the end, remembering the bytes before it so a truncation is noticed. A
            // line being written right now is taken whole: start after the last newline, if it
            // is among those bytes.
            let len = segment.file.metadata()?.len();
            let mut fingerprint = read_before(&segment.file, len, FINGERPRINT_BYTES)?;
            let mut offset = len;
            if let Some(newline) = fingerprint.iter().rposition(|&b| b == b'\n') {
                offset -= (fingerprint.len() - newline - 1) as u64;
                fingerprint.truncate(newline + 1);
            }
            segment.offset = offset;
            segment.fingerprint = fingerprint;
        }
        self.events.opened(&self.path, segment.offset);
        self.live = Some(segment);
        Ok(true)
    }

    /// The live file was truncated after being read up to its offset: read the rest of what
    /// was there from the rotated copy if it holds it, then the live file from its start.
    /// Returns the unfinished line when continuity is lost (no usable copy).
    fn truncated(&mut self) -> io::Result<Vec<Line>> {
        let Some(live) = &mut self.live else {
            return Ok(Vec::new());
        };
        let unread_from = live.offset;
        let copy = match Segment::open(&self.rotated_copy) {
            Ok(copy) => Some(copy),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(e),
        };
        let mut recovered = None;
        if let Some(mut copy) = copy {
            let len = copy.file.metadata()?.len();
            let before = if len >= unread_from {
                read_before(&copy.file, unread_from, live.fingerprint.len())?
            } else {
                Vec::new()
            };
            if rotation::copy_continues(
                live.id,
                unread_from,
                &live.fingerprint,
                copy.id,
                len,
                &before,
            ) {
                copy.offset = unread_from;
                copy.fingerprint = before;
                recovered = Some(copy);
            }
        }
        live.offset = 0;
        live.fingerprint.clear();
        let mut lines = Vec::new();
        match recovered {
            Some(copy) => {
                self.events
                    .rotated_by_copy(&self.path, &self.rotated_copy, unread_from);
                self.draining.push_back(copy);
            }
            None => {
                self.events.truncated_without_copy(&self.path, unread_from);
                // The unfinished line will not be continued: hand it on as it is.
                lines.extend(self.splitter.flush());
            }
        }
        Ok(lines)
    }
}

/// Up to `len` bytes of `file` just before `offset` (fewer near the start of the file, or if the
/// file is now shorter).
fn read_before(file: &File, offset: u64, len: usize) -> io::Result<Vec<u8>> {
    let len = len.min(usize::try_from(offset).unwrap_or(usize::MAX));
    let start = offset - len as u64;
    let mut bytes = vec![0; len];
    let mut filled = 0;
    while filled < len {
        match file.read_at(&mut bytes[filled..], start + filled as u64) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    bytes.truncate(filled);
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use herald_core::metrics::Metrics;
    use std::io::Write;

    fn source(path: &Path, from_start: bool) -> TailSource {
        TailSource::new(
            path.to_path_buf(),
            from_start,
            1024,
            Events::new(&Metrics::new()),
        )
    }

    /// Every line readable now, stepping until the source is idle.
    fn drain(source: &mut TailSource) -> Vec<String> {
        let mut out = Vec::new();
        for _ in 0..10_000 {
            match source.step().unwrap() {
                Step::Lines(lines) => out.extend(
                    lines
                        .into_iter()
                        .map(|l| String::from_utf8_lossy(&l.bytes).into_owned()),
                ),
                Step::Idle => return out,
            }
        }
        panic!("source never became idle");
    }

    fn append(path: &Path, text: &str) {
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .unwrap();
        file.write_all(text.as_bytes()).unwrap();
    }

    #[test]
    fn starts_at_the_end_unless_from_start() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.log");
        append(&path, "old 1\nold 2\n");
        let mut tail = source(&path, false);
        let mut all = source(&path, true);
        assert!(drain(&mut tail).is_empty());
        assert_eq!(drain(&mut all), vec!["old 1", "old 2"]);
        // A line being written at start is taken whole.
        append(&path, "in prog");
        let mut late = source(&path, false);
        assert!(drain(&mut late).is_empty());
        append(&path, "ress\n");
        assert_eq!(drain(&mut late), vec!["in progress"]);
        assert_eq!(drain(&mut tail), vec!["in progress"]);
        append(&path, "new 1\nnew");
        assert_eq!(drain(&mut tail), vec!["new 1"]);
        append(&path, " 2\n");
        assert_eq!(drain(&mut tail), vec!["new 2"]);
    }

    #[test]
    fn a_file_created_later_is_read_from_its_start() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("later.log");
        let mut tail = source(&path, false);
        assert!(drain(&mut tail).is_empty());
        append(&path, "first\nsecond\n");
        assert_eq!(drain(&mut tail), vec!["first", "second"]);
    }

    #[test]
    fn follows_rename_and_create_reading_the_old_file_to_its_end() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.log");
        append(&path, "");
        let mut tail = source(&path, false);
        assert!(drain(&mut tail).is_empty());
        append(&path, "a1\na2\n");
        assert_eq!(drain(&mut tail), vec!["a1", "a2"]);
        // Written before the rename, not yet read; the last line unfinished.
        append(&path, "a3\na4");
        std::fs::rename(&path, dir.path().join("app.log.1")).unwrap();
        // Renamed away, nothing new at the path yet: the open file is still read.
        assert_eq!(drain(&mut tail), vec!["a3"]);
        append(&dir.path().join("app.log.1"), " (finished late)\n");
        append(&path, "b1\nb2\n");
        assert_eq!(drain(&mut tail), vec!["a4 (finished late)", "b1", "b2"]);
    }

    #[test]
    fn copy_truncate_reads_the_unread_rest_from_the_copy() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.log");
        append(&path, "");
        let mut tail = source(&path, false);
        assert!(drain(&mut tail).is_empty());
        append(&path, "line 1\nline 2\n");
        assert_eq!(drain(&mut tail), vec!["line 1", "line 2"]);
        append(&path, "line 3\nline 4\n");
        std::fs::copy(&path, dir.path().join("app.log.1")).unwrap();
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(0)
            .unwrap();
        // The file grows back past the old read position before the adapter looks again.
        append(
            &path,
            "line 5 is a much longer line than the others\nline 6\n",
        );
        assert_eq!(
            drain(&mut tail),
            vec![
                "line 3",
                "line 4",
                "line 5 is a much longer line than the others",
                "line 6"
            ]
        );
    }

    #[test]
    fn truncation_without_a_copy_restarts_at_the_beginning() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.log");
        append(&path, "");
        let mut tail = source(&path, false);
        assert!(drain(&mut tail).is_empty());
        append(&path, "one\ntwo\nhalf");
        assert_eq!(drain(&mut tail), vec!["one", "two"]);
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(0)
            .unwrap();
        append(&path, "fresh\n");
        // The unfinished line is handed on as it was, then the new content.
        assert_eq!(drain(&mut tail), vec!["half", "fresh"]);
    }

    #[test]
    fn a_copy_that_is_not_ours_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.log");
        append(
            &dir.path().join("app.log.1"),
            "something else entirely, from an older rotation\n",
        );
        append(&path, "");
        let mut tail = source(&path, false);
        assert!(drain(&mut tail).is_empty());
        append(&path, "x1\nx2\n");
        assert_eq!(drain(&mut tail), vec!["x1", "x2"]);
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(0)
            .unwrap();
        append(&path, "y1\n");
        assert_eq!(drain(&mut tail), vec!["y1"]);
    }
}
