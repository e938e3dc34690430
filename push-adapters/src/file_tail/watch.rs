//! Waking a follower when its file changes: a file-system watch (inotify on Linux, through the
//! `notify` crate) on the file's directory, so creation, rename, truncation and writes are all
//! seen, even before the file exists. The follower also polls on a timer, so a missed or
//! unsupported watch (network file systems) only delays it.

use notify::{RecursiveMode, Watcher};
use std::ffi::OsString;
use std::path::Path;
use std::sync::Arc;

/// A live watch; dropping it stops watching.
pub struct DirectoryWatch {
    _watcher: notify::RecommendedWatcher,
}

/// Watches the directory of `path` and calls `wake.notify_one()` on any event about a file whose
/// name starts with the name of `path` (the file itself and its rotated copies). `None`, with a
/// warning, when the watch cannot be set up: the follower's polling then does the job alone.
pub fn watch_directory_of(path: &Path, wake: Arc<tokio::sync::Notify>) -> Option<DirectoryWatch> {
    let directory = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => Path::new(".").to_path_buf(),
    };
    let name: OsString = path.file_name().unwrap_or_default().to_os_string();
    let handler = move |event: notify::Result<notify::Event>| {
        let relevant = match &event {
            Ok(event) => event.paths.is_empty() || event.paths.iter().any(|p| concerns(p, &name)),
            // An error (e.g. the kernel queue overflowed) may hide a change: look anyway.
            Err(_) => true,
        };
        if relevant {
            wake.notify_one();
        }
    };
    let result = notify::recommended_watcher(handler).and_then(|mut watcher| {
        watcher
            .watch(&directory, RecursiveMode::NonRecursive)
            .map(|_| watcher)
    });
    match result {
        Ok(watcher) => Some(DirectoryWatch { _watcher: watcher }),
        Err(error) => {
            tracing::warn!(directory = %directory.display(), %error, "cannot watch directory; polling only");
            None
        }
    }
}

/// Whether an event path is about the followed file (`name`) or a file named after it.
fn concerns(path: &Path, name: &OsString) -> bool {
    path.file_name()
        .is_some_and(|file| file.as_encoded_bytes().starts_with(name.as_encoded_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn events_about_the_file_and_its_copies_concern_it() {
        let name = OsString::from("app.log");
        assert!(concerns(Path::new("/var/log/app.log"), &name));
        assert!(concerns(Path::new("/var/log/app.log.1"), &name));
        assert!(!concerns(Path::new("/var/log/other.log"), &name));
        assert!(!concerns(
            Path::new("/var/log"),
            &OsString::from("app.log.1")
        ));
    }

    #[tokio::test]
    async fn wakes_on_creation_and_writes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("later.log");
        let wake = Arc::new(tokio::sync::Notify::new());
        let _watch = watch_directory_of(&path, wake.clone()).expect("inotify works here");
        std::fs::write(dir.path().join("unrelated"), b"x").unwrap();
        std::fs::write(&path, b"line\n").unwrap();
        tokio::time::timeout(Duration::from_secs(5), wake.notified())
            .await
            .expect("woken by the creation");
    }
}
