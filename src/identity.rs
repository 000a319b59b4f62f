//! Who is driving and where: the operator's name and the host's, as the journal, the run's lock
//! and the screen show them. Below everything that records or shows them.

/// The operator's name: `$USER`, `$LOGNAME`, or the account of this process.
pub fn operator() -> String {
    for var in ["USER", "LOGNAME"] {
        if let Ok(v) = std::env::var(var)
            && !v.is_empty()
        {
            return v;
        }
    }
    nix::unistd::User::from_uid(nix::unistd::getuid())
        .ok()
        .flatten()
        .map(|u| u.name)
        .unwrap_or_else(|| format!("uid{}", nix::unistd::getuid()))
}

/// This process's Unix user, from the kernel (never `$USER`): who asks, as a driver names it.
pub fn unix_user() -> String {
    let uid = nix::unistd::getuid();
    nix::unistd::User::from_uid(uid)
        .ok()
        .flatten()
        .map_or_else(|| format!("uid{uid}"), |u| u.name)
}

/// This machine's name, or `localhost` when it has none that can be read.
pub fn host() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_else(|| "localhost".into())
}
