//! The runbook format: the model (`model`), reading and checking a file (`parse`), how problems are
//! shown (`diagnostic`), and the printed outline (`plan`).

pub mod approval;
pub mod diagnostic;
pub mod import;
pub mod model;
pub mod notify;
pub mod parse;
pub mod plan;

pub use model::*;
pub use parse::{LoadError, load};

/// Why a file the tool reads (a runbook, a checklist, a journal, a secret) was not read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("no such file")]
    NotFound,
    #[error("permission denied")]
    PermissionDenied,
    #[error("is a folder")]
    Folder,
    /// A FIFO, a device, a socket: reading it could block, or never end.
    #[error("is {0}, not a regular file")]
    NotRegular(&'static str),
    #[error("is larger than {}, the most that is read from such a file", size_text(*limit))]
    TooLarge { limit: u64 },
    #[error("cannot read: {0}")]
    Io(std::io::Error),
}

impl From<std::io::Error> for ReadError {
    fn from(e: std::io::Error) -> ReadError {
        match e.kind() {
            std::io::ErrorKind::NotFound => ReadError::NotFound,
            std::io::ErrorKind::PermissionDenied => ReadError::PermissionDenied,
            _ => ReadError::Io(e),
        }
    }
}

/// Reads a regular file of at most `limit` bytes, and nothing else: a FIFO, a device (`/dev/zero`)
/// or a socket is refused before a byte is read, without blocking (the file is opened
/// non-blocking and checked once open, so that nothing swapped in meanwhile slips through), and
/// never more than `limit + 1` bytes are read, whatever the file claims its size is.
pub fn read_regular_file(path: &std::path::Path, limit: u64) -> Result<Vec<u8>, ReadError> {
    use std::io::Read as _;
    use std::os::unix::fs::{FileTypeExt as _, OpenOptionsExt as _};
    let kind = |t: std::fs::FileType| -> Result<(), ReadError> {
        if t.is_dir() {
            Err(ReadError::Folder)
        } else if t.is_file() {
            Ok(())
        } else if t.is_fifo() {
            Err(ReadError::NotRegular("a named pipe (FIFO)"))
        } else if t.is_char_device() {
            Err(ReadError::NotRegular("a character device"))
        } else if t.is_block_device() {
            Err(ReadError::NotRegular("a block device"))
        } else if t.is_socket() {
            Err(ReadError::NotRegular("a socket"))
        } else {
            Err(ReadError::NotRegular("a special file"))
        }
    };
    kind(std::fs::metadata(path)?.file_type())?;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)?;
    let meta = file.metadata()?;
    kind(meta.file_type())?;
    if meta.len() > limit {
        return Err(ReadError::TooLarge { limit });
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(limit + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(ReadError::TooLarge { limit });
    }
    Ok(bytes)
}

/// A size as people read it: `4 MiB`, `64 KiB`, `100 bytes`.
pub fn size_text(bytes: u64) -> String {
    if bytes >= 1024 * 1024 && bytes.is_multiple_of(1024 * 1024) {
        format!("{} MiB", bytes / 1024 / 1024)
    } else if bytes >= 1024 && bytes.is_multiple_of(1024) {
        format!("{} KiB", bytes / 1024)
    } else {
        format!("{bytes} bytes")
    }
}
