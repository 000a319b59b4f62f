//! The state dir's folders and files (run folders, journals, step logs, status files): created
//! private (`0700`/`0600`) whatever the umask, or shared with the state dir's group
//! (`2770`/`0660`); never world-readable (SPEC §10). Below the journal and the step monitor, which
//! both write them. Also reading a step log's tail back (the screen's earlier attempts, a
//! watcher).

use std::fs::{File, OpenOptions};
use std::path::Path;

// ── Run folders and their files: private, or shared with the state dir's group ─────────────────
//
// SPEC §10: run folders are created 0700 and their files 0600 whatever the umask; when the state
// dir is shared with a group (group-writable, or setgid), 2770 and 0660 for that group instead.
// Nothing is ever world-readable. A shared run folder carries the setgid bit, so that a file
// created in it knows from its folder alone whether it is shared, and with which group.

/// How a new folder or file is shared: with nobody, or with one group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sharing {
    Private,
    Group(u32),
}

/// Whether a folder shares what is created in it with its group: group-writable, or setgid.
fn sharing_of(dir: &Path) -> std::io::Result<Sharing> {
    use std::os::unix::fs::MetadataExt as _;
    let meta = std::fs::metadata(dir)?;
    Ok(if meta.mode() & 0o2020 != 0 {
        Sharing::Group(meta.gid())
    } else {
        Sharing::Private
    })
}

/// Gives a folder or file we created its permissions: exactly `private` (the umask plays no part),
/// or `shared` for the group. Where the group cannot be given (we are not in it), it stays private.
fn set_access(
    path: &Path,
    file: Option<&File>,
    sharing: Sharing,
    private: u32,
    shared: u32,
) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    let mode = match sharing {
        Sharing::Private => private,
        Sharing::Group(gid) => {
            let given = match file {
                Some(f) => std::os::unix::fs::fchown(f, None, Some(gid)),
                None => std::os::unix::fs::chown(path, None, Some(gid)),
            };
            if given.is_ok() { shared } else { private }
        }
    };
    let perms = std::fs::Permissions::from_mode(mode);
    match file {
        Some(f) => f.set_permissions(perms),
        None => std::fs::set_permissions(path, perms),
    }
}

/// The folder holding `path` (`.` for a bare name such as `journal.jsonl`).
fn folder_of(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Creates the state dir (private: `0700`) and its `runs` folder where they are missing.
pub fn create_state_dirs(state_dir: &Path, runs: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt as _;
    if !state_dir.is_dir() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(state_dir)?;
    }
    match create_run_dir(runs) {
        Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => Err(e),
        _ => Ok(()),
    }
}

/// Creates one folder of a run (`runs/`, the run folder, `logs/`): `0700`, or `2770` for the
/// group when its parent is shared. Fails with `AlreadyExists` when it is there already.
pub fn create_run_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt as _;
    let parent = folder_of(dir);
    let sharing = sharing_of(parent)?;
    std::fs::DirBuilder::new().mode(0o700).create(dir)?;
    set_access(dir, None, sharing, 0o700, 0o2770)
}

/// Opens a file of a run folder with `options`, creating it if they say so: a new file is `0600`,
/// or `0660` for the group when its folder is shared, whatever the umask. An existing file keeps
/// its permissions.
pub fn open_private(path: &Path, options: &OpenOptions) -> std::io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let parent = folder_of(path);
    // Never readable by others, not even for the moment before the permissions are set.
    let created = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path);
    match created {
        Ok(file) => {
            set_access(path, Some(&file), sharing_of(parent)?, 0o600, 0o660)?;
            drop(file);
            // Reopened with what the caller asked for, now that it exists (`create_new` is
            // satisfied: this call created it).
            let mut options = options.clone();
            options.create_new(false).create(false);
            options.open(path)
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            let mut opts = options.clone();
            opts.create(false);
            opts.open(path)
        }
        Err(e) => Err(e),
    }
}

/// Creates a folder below the state dir (`locks/`) as the run folders are: `0700`, or `2770` for
/// the group when the state dir is shared (creating the state dir itself first when missing).
pub fn create_folder(state_dir: &Path, dir: &Path) -> std::io::Result<()> {
    create_state_dirs(state_dir, &state_dir.join("runs"))?;
    match create_run_dir(dir) {
        Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => Err(e),
        _ => Ok(()),
    }
}

/// Opens a file for reading and writing without emptying it, creating it `0600` (`0660` for a
/// shared state dir's group) when it is missing: lock files.
pub fn open_private_rw(path: &Path) -> std::io::Result<File> {
    open_private(path, OpenOptions::new().read(true).write(true).create(true))
}

/// Gives something `runbook` created in a run folder by other means than `create_private_file`
/// (the control socket) the same access: `0600`, or `0660` for a shared state dir's group.
pub fn give_access(path: &Path) -> std::io::Result<()> {
    set_access(path, None, sharing_of(folder_of(path))?, 0o600, 0o660)
}

/// Creates (or empties) a file in a run folder, `0600` (`0660` for a shared state dir's group)
/// whatever the umask: step logs and every other file `runbook` writes in a run folder.
pub fn create_private_file(path: &Path) -> std::io::Result<File> {
    open_private(path, OpenOptions::new().write(true).create(true).truncate(true))
}

/// Creates `STATE_DIR/runs/NAME` and its `logs/` (a run rebuilt from the shared store), with the
/// same permissions as a run started here. Fails when it exists.
pub fn create_named_run_dir(state_dir: &Path, name: &str) -> std::io::Result<std::path::PathBuf> {
    let runs = state_dir.join("runs");
    create_state_dirs(state_dir, &runs)?;
    let dir = runs.join(name);
    create_run_dir(&dir)?;
    create_run_dir(&dir.join("logs"))?;
    Ok(dir)
}

/// What the holder of a lock file wrote in it, read again for up to a second (the holder writes
/// just after it takes the lock) until `settled` says it is whole.
pub fn read_holder(file: &mut File, settled: impl Fn(&str) -> bool) -> String {
    use std::io::{Read, Seek};
    let mut holder = String::new();
    for _ in 0..40 {
        holder.clear();
        let _ = file.rewind();
        let _ = file.read_to_string(&mut holder);
        if settled(&holder) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(25));
    }
    holder
}

/// The end of a file (a step's log): at most `max` bytes, from a line's start; the error in
/// words (`no log: FILE does not exist`).
pub fn read_tail(path: &Path, max: u64) -> Result<Vec<u8>, String> {
    use std::io::{Read, Seek, SeekFrom};
    let read = std::fs::File::open(path).and_then(|mut f| {
        let len = f.metadata()?.len();
        let skip = len.saturating_sub(max);
        f.seek(SeekFrom::Start(skip))?;
        let mut bytes = Vec::new();
        f.read_to_end(&mut bytes)?;
        if skip > 0 {
            let cut = memchr::memchr(b'\n', &bytes).map_or(0, |i| i + 1);
            bytes.drain(..cut);
        }
        Ok(bytes)
    });
    read.map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => format!("no log: {} does not exist", path.display()),
        _ => format!("cannot read {}: {e}", path.display()),
    })
}
