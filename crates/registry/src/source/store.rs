//! Files of a local image: in a directory, or entries of an uncompressed tar archive read in
//! place (the archive is indexed once; entries are read with a seek, never extracted).

use std::collections::HashMap;
use std::io::{Read as _, Seek as _};
use std::path::{Component, Path, PathBuf};

use bytes::Bytes;
use futures::StreamExt as _;
use tokio::io::{AsyncReadExt as _, AsyncSeekExt as _};

use super::shown;
use crate::client::BlobStream;
use crate::error::{Error, Result};

const READ_BUFFER: usize = 256 * 1024;
const MAX_LINK_HOPS: usize = 16;

#[derive(Debug, Clone)]
pub(crate) enum Entry {
    File { offset: u64, size: u64 },
    Link(String),
}

/// A directory or an indexed tar archive.
#[derive(Debug, Clone)]
pub(crate) enum Store {
    Dir(PathBuf),
    Tar {
        archive: PathBuf,
        entries: HashMap<String, Entry>,
    },
}

/// `./a/b` and `a//b` -> `a/b`; `..` is refused (`None`).
fn normalise(path: &str) -> Option<String> {
    let mut parts: Vec<&str> = Vec::new();
    for c in Path::new(path).components() {
        match c {
            Component::Normal(p) => parts.push(p.to_str()?),
            Component::CurDir | Component::RootDir => {}
            Component::ParentDir => {
                parts.pop()?;
            }
            Component::Prefix(_) => return None,
        }
    }
    Some(parts.join("/"))
}

impl Store {
    /// Indexes an uncompressed tar archive.
    pub(crate) async fn open_tar(archive: &Path) -> Result<Self> {
        let path = archive.to_owned();
        tokio::task::spawn_blocking(move || Self::index_tar(&path))
            .await
            .map_err(|e| Error::io(shown(archive), std::io::Error::other(e)))?
    }

    fn index_tar(archive: &Path) -> Result<Self> {
        let name = shown(archive);
        let mut file = std::fs::File::open(archive).map_err(|e| Error::io(&name, e))?;
        let mut magic = [0u8; 4];
        let n = file.read(&mut magic).map_err(|e| Error::io(&name, e))?;
        if n >= 2 && magic[..2] == [0x1f, 0x8b] {
            return Err(Error::source(
                &name,
                "the archive is gzip-compressed; ferry reads archives in place and needs them uncompressed (gunzip it first)",
            ));
        }
        if n == 4 && magic == [0x28, 0xb5, 0x2f, 0xfd] {
            return Err(Error::source(
                &name,
                "the archive is zstd-compressed; ferry needs it uncompressed (unzstd it first)",
            ));
        }
        file.rewind().map_err(|e| Error::io(&name, e))?;
        let mut tar = tar::Archive::new(file);
        let mut entries = HashMap::new();
        let iter = tar
            .entries_with_seek()
            .map_err(|e| Error::source(&name, format!("not a tar archive: {e}")))?;
        for entry in iter {
            let entry =
                entry.map_err(|e| Error::source(&name, format!("corrupt tar archive: {e}")))?;
            let Ok(path) = entry.path() else { continue };
            let Some(key) = path.to_str().and_then(normalise) else {
                continue;
            };
            let kind = entry.header().entry_type();
            if kind.is_file() || kind == tar::EntryType::Continuous {
                entries.insert(
                    key,
                    Entry::File {
                        offset: entry.raw_file_position(),
                        size: entry.size(),
                    },
                );
            } else if kind.is_symlink() || kind.is_hard_link() {
                let Ok(Some(target)) = entry.link_name() else {
                    continue;
                };
                let Some(target) = target.to_str() else {
                    continue;
                };
                // Symlinks are relative to the link's directory; hard links to the archive root.
                let resolved = if kind.is_symlink() {
                    let dir = Path::new(&key)
                        .parent()
                        .map(|p| p.to_string_lossy().to_string())
                        .unwrap_or_default();
                    normalise(&format!("{dir}/{target}"))
                } else {
                    normalise(target)
                };
                if let Some(resolved) = resolved {
                    entries.insert(key, Entry::Link(resolved));
                }
            }
        }
        Ok(Store::Tar {
            archive: archive.to_owned(),
            entries,
        })
    }

    pub(crate) fn describe(&self) -> String {
        match self {
            Store::Dir(d) => shown(d),
            Store::Tar { archive, .. } => shown(archive),
        }
    }

    fn tar_entry(&self, path: &str) -> Option<(u64, u64)> {
        let Store::Tar { entries, .. } = self else {
            return None;
        };
        let mut key = normalise(path)?;
        for _ in 0..MAX_LINK_HOPS {
            match entries.get(&key)? {
                Entry::File { offset, size } => return Some((*offset, *size)),
                Entry::Link(target) => key = target.clone(),
            }
        }
        None
    }

    /// The size of a file; `None` when it does not exist.
    pub(crate) async fn size(&self, path: &str) -> Result<Option<u64>> {
        match self {
            Store::Dir(dir) => match tokio::fs::metadata(dir.join(path)).await {
                Ok(m) if m.is_file() => Ok(Some(m.len())),
                Ok(_) => Ok(None),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(Error::io(shown(&dir.join(path)), e)),
            },
            Store::Tar { .. } => Ok(self.tar_entry(path).map(|(_, size)| size)),
        }
    }

    /// A whole (small) file, refusing files over `max` bytes.
    pub(crate) async fn read(&self, path: &str, max: u64) -> Result<Option<Bytes>> {
        let Some(size) = self.size(path).await? else {
            return Ok(None);
        };
        if size > max {
            return Err(Error::source(
                format!("{}: {path}", self.describe()),
                format!("is {size} bytes; the limit for this file is {max}"),
            ));
        }
        let mut stream = self.open(path, 0).await?;
        let mut out = Vec::with_capacity(size as usize);
        while let Some(chunk) = stream.next().await {
            out.extend_from_slice(
                &chunk.map_err(|e| Error::io(format!("{}: {path}", self.describe()), e))?,
            );
        }
        Ok(Some(Bytes::from(out)))
    }

    /// A file's bytes from `offset` on.
    pub(crate) async fn open(&self, path: &str, offset: u64) -> Result<BlobStream> {
        let (file_path, start, len) = match self {
            Store::Dir(dir) => {
                let p = dir.join(path);
                let size = self
                    .size(path)
                    .await?
                    .ok_or_else(|| Error::source(self.describe(), format!("{path} is missing")))?;
                (p, offset, size.saturating_sub(offset))
            }
            Store::Tar { archive, .. } => {
                let (entry_offset, size) = self.tar_entry(path).ok_or_else(|| {
                    Error::source(
                        self.describe(),
                        format!("{path} is missing from the archive"),
                    )
                })?;
                (
                    archive.clone(),
                    entry_offset + offset,
                    size.saturating_sub(offset),
                )
            }
        };
        let mut file = tokio::fs::File::open(&file_path)
            .await
            .map_err(|e| Error::io(shown(&file_path), e))?;
        file.seek(std::io::SeekFrom::Start(start))
            .await
            .map_err(|e| Error::io(shown(&file_path), e))?;
        let reader = file.take(len);
        Ok(Box::pin(tokio_util::io::ReaderStream::with_capacity(
            reader,
            READ_BUFFER,
        )))
    }

    /// Hashes a whole file with `algorithm` (for archive entries whose digest is not recorded).
    pub(crate) async fn digest_of(&self, path: &str) -> Result<(crate::reference::Digest, u64)> {
        let mut stream = self.open(path, 0).await?;
        let mut hasher = crate::reference::Algorithm::Sha256.hasher();
        let mut size = 0u64;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| Error::io(format!("{}: {path}", self.describe()), e))?;
            size += chunk.len() as u64;
            hasher.update(&chunk);
        }
        Ok((hasher.finish(), size))
    }

    /// The first bytes of a file (to recognise compression).
    pub(crate) async fn head(&self, path: &str, n: usize) -> Result<Vec<u8>> {
        let mut stream = self.open(path, 0).await?;
        let mut out = Vec::new();
        while out.len() < n {
            match stream.next().await {
                Some(chunk) => {
                    out.extend_from_slice(&chunk.map_err(|e| Error::io(self.describe(), e))?)
                }
                None => break,
            }
        }
        out.truncate(n);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_normalise_without_escaping() {
        assert_eq!(normalise("./a//b/c").as_deref(), Some("a/b/c"));
        assert_eq!(normalise("a/../b").as_deref(), Some("b"));
        assert_eq!(normalise("../x"), None);
    }

    #[tokio::test]
    async fn tar_entries_are_read_in_place_and_links_followed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.tar");
        {
            let mut b = tar::Builder::new(std::fs::File::create(&path).unwrap());
            let data = b"hello, layer";
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_cksum();
            b.append_data(&mut h, "./x/layer.tar", &data[..]).unwrap();
            let mut l = tar::Header::new_gnu();
            l.set_entry_type(tar::EntryType::Symlink);
            l.set_size(0);
            l.set_cksum();
            b.append_link(&mut l, "y/layer.tar", "../x/layer.tar")
                .unwrap();
            b.finish().unwrap();
        }
        let store = Store::open_tar(&path).await.unwrap();
        assert_eq!(store.size("x/layer.tar").await.unwrap(), Some(12));
        let read = store.read("y/layer.tar", 100).await.unwrap().unwrap();
        assert_eq!(&read[..], b"hello, layer");
        let mut tail = store.open("x/layer.tar", 7).await.unwrap();
        assert_eq!(&tail.next().await.unwrap().unwrap()[..], b"layer");
        assert!(store.read("x/layer.tar", 5).await.is_err());
        assert_eq!(store.size("nope").await.unwrap(), None);
    }

    #[tokio::test]
    async fn compressed_archives_are_refused_clearly() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.tar.gz");
        std::fs::write(&path, [0x1f, 0x8b, 8, 0, 0, 0]).unwrap();
        let err = Store::open_tar(&path).await.unwrap_err().to_string();
        assert!(err.contains("gzip") && err.contains("gunzip"), "{err}");
    }
}
