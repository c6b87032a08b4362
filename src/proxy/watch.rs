//! Noticing that files changed, by polling their size and modification time: works the same
//! for edited files, renamed-over files and Kubernetes' symlink-swapped secret volumes.

use std::hash::{DefaultHasher, Hash as _, Hasher as _};
use std::path::{Path, PathBuf};

/// How often watched files are looked at.
pub const POLL: std::time::Duration = std::time::Duration::from_secs(1);

/// A value that changes when any of `paths` (files, or directories walked one level per
/// nesting, at most 4 deep) changes size, modification time, or appears or disappears.
pub fn stamp(paths: &[PathBuf]) -> u64 {
    let mut h = DefaultHasher::new();
    for p in paths {
        stamp_path(p, 0, &mut h);
    }
    h.finish()
}

fn stamp_path(path: &Path, depth: usize, h: &mut DefaultHasher) {
    path.hash(h);
    let Ok(meta) = std::fs::metadata(path) else {
        0u8.hash(h);
        return;
    };
    meta.len().hash(h);
    meta.modified().ok().hash(h);
    if meta.is_dir() && depth < 4 {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
            .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
            .unwrap_or_default();
        entries.sort();
        for e in entries {
            stamp_path(&e, depth + 1, h);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_when_a_file_in_a_directory_changes() {
        let dir = tempfile::tempdir().unwrap();
        let paths = [dir.path().to_path_buf()];
        let before = stamp(&paths);
        assert_eq!(before, stamp(&paths));
        std::fs::write(dir.path().join("a.yaml"), "x").unwrap();
        let added = stamp(&paths);
        assert_ne!(before, added);
        std::fs::write(dir.path().join("a.yaml"), "xy").unwrap();
        assert_ne!(added, stamp(&paths));
    }
}
