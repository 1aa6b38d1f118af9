//! One-off host settings for a fresh machine where the program runs as root,
//! such as the `numa-vm` guest used by `scripts/chat-hold-vm`: kernel
//! settings (`/proc/sys/...`) and the loopback interface, which a bare
//! guest kernel leaves down.
//!
//! Nothing here runs unless asked for with `--sysctl NAME=VALUE` or
//! `--loopback-up` ([`apply_host_flags`]); on a normal host these are set
//! once by the administrator (see the README's host settings).

use std::io;

use crate::sys;

/// Sets the kernel setting `name` (dotted, as `sysctl` names it, e.g.
/// `net.core.somaxconn`) to `value` and returns the previous value.
///
/// # Errors
///
/// Reading or writing `/proc/sys/...` (e.g. not root, unknown name).
pub fn set_sysctl(name: &str, value: &str) -> io::Result<String> {
    if name.is_empty() || name.contains('/') || name.contains("..") {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("bad sysctl name {name:?}"),
        ));
    }
    let path = format!("/proc/sys/{}", name.replace('.', "/"));
    let old = std::fs::read_to_string(&path)
        .map_err(|e| io::Error::new(e.kind(), format!("{path}: {e}")))?;
    std::fs::write(&path, value).map_err(|e| io::Error::new(e.kind(), format!("{path}: {e}")))?;
    Ok(old.split_whitespace().collect::<Vec<_>>().join(" "))
}

/// Brings the loopback interface `lo` up (a no-op if it is up already).
///
/// # Errors
///
/// The `socket`/`ioctl` error (bringing an interface up needs
/// `CAP_NET_ADMIN`).
pub fn loopback_up() -> io::Result<()> {
    sys::interface_up("lo")
}

/// Applies and removes every `--sysctl NAME=VALUE` and `--loopback-up` in
/// `args`, saying on stderr what it set (prefixed with `who`), so a
/// benchmark's output records the settings it ran with.
///
/// # Errors
///
/// A malformed `--sysctl`, or the first setting that could not be applied.
pub fn apply_host_flags(who: &str, args: &mut Vec<String>) -> io::Result<()> {
    let mut rest = Vec::with_capacity(args.len());
    let mut it = std::mem::take(args).into_iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--loopback-up" => {
                loopback_up()?;
                eprintln!("{who}: loopback interface lo is up");
            }
            "--sysctl" => {
                let kv = it.next().unwrap_or_default();
                let (k, v) = kv.split_once('=').ok_or_else(|| {
                    io::Error::new(
                        io::ErrorKind::InvalidInput,
                        format!("--sysctl {kv:?}: NAME=VALUE"),
                    )
                })?;
                let old = set_sysctl(k.trim(), v.trim())?;
                eprintln!("{who}: sysctl {} = {} (was {old})", k.trim(), v.trim());
            }
            _ => rest.push(a),
        }
    }
    *args = rest;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_flags_are_removed_and_others_kept() {
        // Writing a sysctl needs root; reading one back to itself does not
        // change anything, but writing may be refused: only the parsing is
        // checked here.
        let mut args: Vec<String> = ["--hold", "10", "--sysctl", "nonsense", "--compare"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let e = apply_host_flags("test", &mut args).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        let mut args: Vec<String> = ["--hold", "10", "--compare"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        apply_host_flags("test", &mut args).unwrap();
        assert_eq!(args, ["--hold", "10", "--compare"]);
    }

    #[test]
    fn bad_sysctl_names_are_refused() {
        for n in ["", "../etc/passwd", "a/b"] {
            let e = set_sysctl(n, "1").unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{n:?}");
        }
    }
}
