//! The state file: every object, the virtual clock and the resourceVersion counter, written
//! atomically (temporary file, fsync, rename) a moment after changes and at shutdown, so a
//! process killed mid-way loses at most the last moments. A `.lock` file held with an
//! exclusive lock (`File::try_lock`) keeps two simulators off one state file. The file holds
//! Secrets' data, so it is created with mode 0600.

use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::SimError;

const FORMAT: &str = "ferry-sim-state/v1";

/// What the state file holds.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Snapshot {
    pub(crate) format: String,
    pub(crate) virtual_time: String,
    pub(crate) resource_version: u64,
    pub(crate) objects: Vec<StoredObject>,
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct StoredObject {
    pub(crate) group: String,
    pub(crate) resource: String,
    pub(crate) object: Value,
}

impl Snapshot {
    pub(crate) fn new(
        virtual_time: String,
        resource_version: u64,
        objects: Vec<StoredObject>,
    ) -> Self {
        Snapshot {
            format: FORMAT.to_owned(),
            virtual_time,
            resource_version,
            objects,
        }
    }
}

/// The open state file and its held lock.
#[derive(Debug)]
pub(crate) struct StateFile {
    path: PathBuf,
    _lock: File,
}

fn lock_path(path: &Path) -> PathBuf {
    let mut name = path
        .file_name()
        .map(std::ffi::OsString::from)
        .unwrap_or_default();
    name.push(".lock");
    path.with_file_name(name)
}

fn io(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> SimError {
    let path = path.to_owned();
    move |source| SimError::StateIo {
        action,
        path,
        source,
    }
}

impl StateFile {
    /// Locks the state file and reads it when it exists.
    pub(crate) fn open(path: &Path) -> Result<(StateFile, Option<Snapshot>), SimError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(io("create the directory of", path))?;
        }
        let lock = lock_path(path);
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(&lock)
            .map_err(io("lock", path))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(SimError::StateLocked {
                    path: path.to_owned(),
                    lock,
                });
            }
            Err(std::fs::TryLockError::Error(err)) => return Err(io("lock", path)(err)),
        }
        let snapshot = match std::fs::read(path) {
            Ok(bytes) => {
                let snapshot: Snapshot =
                    serde_json::from_slice(&bytes).map_err(|source| SimError::StateFormat {
                        path: path.to_owned(),
                        source,
                    })?;
                if snapshot.format != FORMAT {
                    return Err(SimError::StateFormat {
                        path: path.to_owned(),
                        source: serde::de::Error::custom(format!(
                            "format {:?}, expected {FORMAT:?}",
                            snapshot.format
                        )),
                    });
                }
                Some(snapshot)
            }
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => None,
            Err(err) => return Err(io("read", path)(err)),
        };
        Ok((
            StateFile {
                path: path.to_owned(),
                _lock: file,
            },
            snapshot,
        ))
    }

    /// Writes a snapshot atomically.
    pub(crate) fn write(&self, snapshot: &Snapshot) -> Result<(), SimError> {
        let bytes = serde_json::to_vec(snapshot).map_err(|source| SimError::StateFormat {
            path: self.path.clone(),
            source,
        })?;
        let mut tmp_name = self
            .path
            .file_name()
            .map(std::ffi::OsString::from)
            .unwrap_or_default();
        tmp_name.push(".tmp");
        let tmp = self.path.with_file_name(tmp_name);
        let mut file = OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(io("write", &self.path))?;
        file.write_all(&bytes).map_err(io("write", &self.path))?;
        file.sync_all().map_err(io("write", &self.path))?;
        drop(file);
        std::fs::rename(&tmp, &self.path).map_err(io("write", &self.path))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_opener_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sim.json");
        let (first, snapshot) = StateFile::open(&path).unwrap();
        assert!(snapshot.is_none());
        first
            .write(&Snapshot::new("2024-01-01T00:00:00Z".into(), 7, Vec::new()))
            .unwrap();
        let err = StateFile::open(&path).unwrap_err();
        assert!(matches!(err, SimError::StateLocked { .. }), "{err}");
        use std::os::unix::fs::PermissionsExt as _;
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        drop(first);
        let (_, snapshot) = StateFile::open(&path).unwrap();
        assert_eq!(snapshot.unwrap().resource_version, 7);
    }

    #[test]
    fn foreign_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sim.json");
        std::fs::write(&path, "{\"hello\": 1}").unwrap();
        assert!(matches!(
            StateFile::open(&path).unwrap_err(),
            SimError::StateFormat { .. }
        ));
    }
}
