//! Configuration without recompiling: environment variables and a TOML file.
//!
//! | environment | TOML key | meaning | values |
//! |---|---|---|---|
//! | `PINSTACK_WORKERS` | `workers` | worker threads | a positive integer |
//! | `PINSTACK_NUMA` | `numa` | NUMA policy | `off`, `pin`, `bind` |
//! | `PINSTACK_STACK_SIZE` | `default_stack_size` | default task stack, bytes | 8 KiB to 8 MiB; `K`/`M` suffixes allowed |
//! | `PINSTACK_CONFIG` | — | path of the TOML file | a path |
//!
//! Precedence, highest first: an explicit `Builder` call, the environment
//! variable, the TOML file, the built-in default (as with tokio's
//! `TOKIO_WORKER_THREADS` and Go's `GOMAXPROCS`: code that sets a value on
//! purpose keeps it). A bad value is an error naming the key, the value and
//! the accepted values.

use pinstack_numa::NumaPolicy;
use std::io;
use std::path::Path;

/// Settings read from the environment and the config file. `None`: not set.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct External {
    pub(crate) workers: Option<usize>,
    pub(crate) numa: Option<NumaPolicy>,
    pub(crate) default_stack_size: Option<usize>,
}

fn invalid(key: &str, value: &str, accepted: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("pinstack configuration: {key} = {value:?} is not valid; accepted: {accepted}"),
    )
}

fn parse_workers(key: &str, v: &str) -> io::Result<usize> {
    match v.trim().parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(invalid(key, v, "a positive integer")),
    }
}

fn parse_numa(key: &str, v: &str) -> io::Result<NumaPolicy> {
    v.trim()
        .parse()
        .map_err(|_| invalid(key, v, "off, pin, bind"))
}

fn parse_size(key: &str, v: &str) -> io::Result<usize> {
    let t = v.trim();
    let (num, mult) = match t.as_bytes().last() {
        Some(b'k' | b'K') => (&t[..t.len() - 1], 1024),
        Some(b'm' | b'M') => (&t[..t.len() - 1], 1024 * 1024),
        _ => (t, 1),
    };
    num.trim()
        .parse::<usize>()
        .ok()
        .and_then(|n| n.checked_mul(mult))
        .filter(|&n| n > 0)
        .ok_or_else(|| invalid(key, v, "a size in bytes, e.g. 65536, 64K or 1M"))
}

impl External {
    /// Reads `PINSTACK_CONFIG` (if set) and then the environment variables,
    /// which override the file.
    pub(crate) fn load() -> io::Result<External> {
        let mut ext = match std::env::var_os("PINSTACK_CONFIG") {
            Some(path) => External::from_file(Path::new(&path))?,
            None => External::default(),
        };
        ext.apply_env(|k| std::env::var(k).ok())?;
        Ok(ext)
    }

    /// Overrides with the variables `get` returns.
    pub(crate) fn apply_env(&mut self, get: impl Fn(&str) -> Option<String>) -> io::Result<()> {
        if let Some(v) = get("PINSTACK_WORKERS") {
            self.workers = Some(parse_workers("PINSTACK_WORKERS", &v)?);
        }
        if let Some(v) = get("PINSTACK_NUMA") {
            self.numa = Some(parse_numa("PINSTACK_NUMA", &v)?);
        }
        if let Some(v) = get("PINSTACK_STACK_SIZE") {
            self.default_stack_size = Some(parse_size("PINSTACK_STACK_SIZE", &v)?);
        }
        Ok(())
    }

    pub(crate) fn from_file(path: &Path) -> io::Result<External> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("pinstack configuration file {}: {e}", path.display()),
            )
        })?;
        External::from_toml(&text).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("pinstack configuration file {}: {e}", path.display()),
            )
        })
    }

    pub(crate) fn from_toml(text: &str) -> io::Result<External> {
        let table: toml::Table = text.parse().map_err(|e| {
            io::Error::new(io::ErrorKind::InvalidData, format!("not valid TOML: {e}"))
        })?;
        let mut ext = External::default();
        for (key, value) in &table {
            let as_text = match value {
                toml::Value::String(s) => s.clone(),
                toml::Value::Integer(i) => i.to_string(),
                other => other.to_string(),
            };
            match key.as_str() {
                "workers" => ext.workers = Some(parse_workers("workers", &as_text)?),
                "numa" => ext.numa = Some(parse_numa("numa", &as_text)?),
                "default_stack_size" => {
                    ext.default_stack_size = Some(parse_size("default_stack_size", &as_text)?)
                }
                other => {
                    return Err(invalid(
                        other,
                        &as_text,
                        "keys workers, numa, default_stack_size",
                    ))
                }
            }
        }
        Ok(ext)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_keys_and_errors() {
        let e = External::from_toml("workers = 4\nnuma = \"bind\"\ndefault_stack_size = \"32K\"\n")
            .unwrap();
        assert_eq!(e.workers, Some(4));
        assert_eq!(e.numa, Some(NumaPolicy::Bind));
        assert_eq!(e.default_stack_size, Some(32 * 1024));
        let err = External::from_toml("numa = \"sometimes\"").unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("numa") && msg.contains("sometimes") && msg.contains("off, pin, bind"),
            "{msg}"
        );
        let err = External::from_toml("wokers = 2").unwrap_err();
        assert!(err.to_string().contains("wokers"), "{err}");
        assert!(External::from_toml("workers = 0").is_err());
        assert!(External::from_toml("this is not toml").is_err());
    }

    #[test]
    fn env_overrides_file() {
        let mut e = External::from_toml("workers = 4\nnuma = \"pin\"").unwrap();
        e.apply_env(|k| (k == "PINSTACK_NUMA").then(|| "BIND".to_string()))
            .unwrap();
        assert_eq!(e.numa, Some(NumaPolicy::Bind));
        assert_eq!(e.workers, Some(4));
        let err = e
            .apply_env(|k| (k == "PINSTACK_WORKERS").then(|| "many".into()))
            .unwrap_err();
        assert!(err.to_string().contains("PINSTACK_WORKERS"), "{err}");
    }
}
