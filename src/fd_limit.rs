//! The process's open-file limit (`RLIMIT_NOFILE`): every client handle is a descriptor,
//! so the limit bounds how many clients a server can hold, and how many connections a load
//! generator can open. Read it to size a client limit; raise it (up to the hard limit)
//! before opening many sockets.

use std::io;

/// An open-file limit: the soft limit in force and the hard ceiling it may be raised to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FdLimit {
    /// The limit in force.
    pub soft: u64,
    /// How far an unprivileged process may raise `soft`.
    pub hard: u64,
}

/// The open-file limit, read with `getrlimit`.
///
/// # Errors
/// As `getrlimit(2)` (not expected on Linux).
pub fn get() -> io::Result<FdLimit> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `limit` is a valid rlimit for getrlimit to write.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(FdLimit {
        soft: limit.rlim_cur,
        hard: limit.rlim_max,
    })
}

/// The soft limit in force, as a count of descriptors (1024 if it cannot be read).
pub fn current() -> usize {
    get().map_or(1024, |l| usize::try_from(l.soft).unwrap_or(usize::MAX))
}

/// Raises the soft limit to `needed`, or as close to it as the hard limit allows; never
/// lowers it. Returns the limit in force afterwards, which may still be below `needed`.
///
/// # Examples
/// ```
/// let limit = muxd::fd_limit::raise(256)?;
/// assert!(limit.soft >= 256 || limit.soft == limit.hard);
/// # Ok::<(), std::io::Error>(())
/// ```
///
/// # Errors
/// If the limit cannot be read. A refused `setrlimit` is not an error: the returned limit
/// shows what is in force.
pub fn raise(needed: usize) -> io::Result<FdLimit> {
    let limit = get()?;
    let wanted = u64::try_from(needed).unwrap_or(u64::MAX);
    if limit.soft >= wanted {
        return Ok(limit);
    }
    let raised = libc::rlimit {
        rlim_cur: wanted.min(limit.hard),
        rlim_max: limit.hard,
    };
    // SAFETY: `raised` is a valid rlimit for setrlimit to read.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } != 0 {
        return Ok(limit);
    }
    get()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raise_never_lowers_and_stays_under_the_hard_limit() {
        let before = get().unwrap();
        let after = raise(1).unwrap();
        assert_eq!(after, before, "asking for less changes nothing");
        let want = usize::try_from(before.hard).unwrap_or(usize::MAX);
        let after = raise(want).unwrap();
        assert!(after.soft >= before.soft && after.soft <= after.hard);
        assert_eq!(current(), usize::try_from(after.soft).unwrap_or(usize::MAX));
    }
}
