//! `/proc/self/numa_maps`: the kernel's own account of each mapping's
//! memory policy and of how many of its pages sit on each node.
//!
//! A line looks like
//!
//! ```text
//! 7f3a4c000000 bind:0 anon=1024 dirty=1024 active=0 N0=1024 kernelpagesize_kB=4
//! ^start       ^policy ^key=value fields and bare words (heap, stack, huge)
//! ```
//!
//! numa_maps gives only the start of each mapping, so
//! [`numa_maps_entry`] first finds the mapping holding an address in
//! `/proc/self/maps` (same mappings, with their ends), then the numa_maps
//! line with that start. The two files are read one after the other; a
//! concurrent `mmap`/`munmap` by another thread in between can make the
//! lookup miss (`NotFound`), never return another mapping's line.

use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::io;

/// One mapping's line of `/proc/<pid>/numa_maps`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NumaMapsEntry {
    /// Start address of the mapping.
    pub start: usize,
    /// The policy column as the kernel prints it: `default`, `bind:0`,
    /// `prefer:1`, `interleave:0-3`, `local`, `bind=static:0`, ...
    pub policy: String,
    /// Pages present per node (`N0=12` gives `{0: 12}`); nodes with no page
    /// are absent.
    pub node_pages: BTreeMap<usize, u64>,
    /// `anon=`: anonymous pages present.
    pub anon: Option<u64>,
    /// `dirty=`: dirty pages.
    pub dirty: Option<u64>,
    /// `mapped=`: file pages mapped.
    pub mapped: Option<u64>,
    /// `file=`: the mapped file, as the kernel escapes it.
    pub file: Option<String>,
    /// `kernelpagesize_kB=`: the page size the counts are in.
    pub kernel_page_size_kb: Option<u64>,
    /// Other `key=value` fields (`active`, `swapcache`, `writeback`, ...).
    pub other: BTreeMap<String, String>,
    /// Bare words: `heap`, `stack`, `huge`.
    pub flags: Vec<String>,
}

impl NumaMapsEntry {
    /// Pages of this mapping present on `node`.
    pub fn pages_on(&self, node: usize) -> u64 {
        self.node_pages.get(&node).copied().unwrap_or(0)
    }

    /// Pages of this mapping present on any node.
    pub fn total_pages(&self) -> u64 {
        self.node_pages.values().sum()
    }
}

/// Parses the text of a `numa_maps` file, one entry per line.
///
/// ```
/// let text = "7f3a4c000000 bind:0 anon=1024 dirty=1024 active=0 N0=1024 kernelpagesize_kB=4\n\
///             55d1e0a00000 default heap anon=3 dirty=3 N0=2 N1=1 kernelpagesize_kB=4\n";
/// let entries = pinstack_numa::parse_numa_maps(text)?;
/// assert_eq!(entries[0].start, 0x7f3a4c000000);
/// assert_eq!(entries[0].policy, "bind:0");
/// assert_eq!(entries[0].pages_on(0), 1024);
/// assert_eq!(entries[1].pages_on(1), 1);
/// assert_eq!(entries[1].flags, ["heap"]);
/// # Ok::<(), pinstack_numa::ParseNumaMapsError>(())
/// ```
///
/// # Errors
///
/// [`ParseNumaMapsError`] naming the line for a line without a hex start
/// address and a policy, or with a malformed `N<node>=` or count field.
pub fn parse_numa_maps(text: &str) -> Result<Vec<NumaMapsEntry>, ParseNumaMapsError> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(parse_line)
        .collect()
}

fn parse_line(line: &str) -> Result<NumaMapsEntry, ParseNumaMapsError> {
    let err = |why: String| ParseNumaMapsError {
        line: line.to_owned(),
        why,
    };
    let mut words = line.split_whitespace();
    let start = words.next().ok_or_else(|| err("empty line".into()))?;
    let start = usize::from_str_radix(start, 16)
        .map_err(|_| err(format!("{start:?} is not a hex address")))?;
    let policy = words
        .next()
        .ok_or_else(|| err("no policy column".into()))?
        .to_owned();
    let mut entry = NumaMapsEntry {
        start,
        policy,
        ..NumaMapsEntry::default()
    };
    for word in words {
        let Some((key, value)) = word.split_once('=') else {
            entry.flags.push(word.to_owned());
            continue;
        };
        let count = || {
            value
                .parse::<u64>()
                .map_err(|_| err(format!("{word:?}: {value:?} is not a count")))
        };
        match key {
            "anon" => entry.anon = Some(count()?),
            "dirty" => entry.dirty = Some(count()?),
            "mapped" => entry.mapped = Some(count()?),
            "kernelpagesize_kB" => entry.kernel_page_size_kb = Some(count()?),
            "file" => entry.file = Some(value.to_owned()),
            _ => match key.strip_prefix('N').map(str::parse::<usize>) {
                Some(Ok(node)) => {
                    entry.node_pages.insert(node, count()?);
                }
                Some(Err(_)) | None => {
                    entry.other.insert(key.to_owned(), value.to_owned());
                }
            },
        }
    }
    Ok(entry)
}

/// The `/proc/self/numa_maps` entry of the mapping that holds `addr`.
///
/// ```no_run
/// let data = vec![1u8; 1 << 20];
/// let entry = pinstack_numa::numa_maps_entry(data.as_ptr())?;
/// println!("policy {}, pages on node 0: {}", entry.policy, entry.pages_on(0));
/// # Ok::<(), std::io::Error>(())
/// ```
///
/// # Errors
///
/// `NotFound` if no mapping holds `addr`, or the kernel has no numa_maps
/// (built without `CONFIG_NUMA`); `InvalidData` for unparsable content;
/// I/O errors reading `/proc`.
pub fn numa_maps_entry(addr: *const u8) -> io::Result<NumaMapsEntry> {
    let addr = addr as usize;
    let maps = fs::read_to_string("/proc/self/maps").map_err(|e| annotate("/proc/self/maps", e))?;
    let start = mapping_start(&maps, addr).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::NotFound,
            format!("no mapping holds address {addr:#x} (/proc/self/maps)"),
        )
    })?;
    let text = fs::read_to_string("/proc/self/numa_maps")
        .map_err(|e| annotate("/proc/self/numa_maps", e))?;
    let entries =
        parse_numa_maps(&text).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
    entries.into_iter().find(|e| e.start == start).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::NotFound,
            format!("/proc/self/numa_maps has no line for the mapping at {start:#x} holding {addr:#x}"),
        )
    })
}

/// The start of the `/proc/<pid>/maps` line (`start-end perms ...`) whose
/// range holds `addr`.
fn mapping_start(maps: &str, addr: usize) -> Option<usize> {
    mapping_ranges(maps)
        .find(|&(start, end)| start <= addr && addr < end)
        .map(|(start, _)| start)
}

/// The `start..end` ranges of the lines of a `/proc/<pid>/maps` text.
fn mapping_ranges(maps: &str) -> impl Iterator<Item = (usize, usize)> + '_ {
    maps.lines().filter_map(|line| {
        let range = line.split_whitespace().next()?;
        let (start, end) = range.split_once('-')?;
        Some((
            usize::from_str_radix(start, 16).ok()?,
            usize::from_str_radix(end, 16).ok()?,
        ))
    })
}

/// The calling process's mappings as sorted `(start, end)` ranges, from
/// `/proc/self/maps`.
pub(crate) fn self_mappings() -> io::Result<Vec<(usize, usize)>> {
    let maps = fs::read_to_string("/proc/self/maps").map_err(|e| annotate("/proc/self/maps", e))?;
    Ok(mapping_ranges(&maps).collect())
}

fn annotate(path: &str, err: io::Error) -> io::Error {
    let hint = if err.kind() == io::ErrorKind::NotFound {
        " (is /proc mounted, and the kernel built with CONFIG_NUMA?)"
    } else {
        ""
    };
    io::Error::new(err.kind(), format!("{path}: {err}{hint}"))
}

/// A `numa_maps` line could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseNumaMapsError {
    line: String,
    why: String,
}

impl fmt::Display for ParseNumaMapsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unparsable numa_maps line {:?}: {}", self.line, self.why)
    }
}

impl std::error::Error for ParseNumaMapsError {}

#[cfg(test)]
mod tests {
    use super::*;

    /// Written in the format of Linux 6.x numa_maps, one line per field kind.
    const SAMPLE: &str = "\
55f0c8a00000 default file=/usr/bin/cat mapped=5 N0=5 kernelpagesize_kB=4
55f0c9e2a000 default heap anon=33 dirty=33 active=0 N0=33 kernelpagesize_kB=4
7f5c10000000 bind:0 anon=1024 dirty=1024 active=0 N0=1024 kernelpagesize_kB=4
7f5c20000000 interleave:0-1 anon=8 dirty=8 N0=4 N1=4 kernelpagesize_kB=4
7f5c30000000 bind=static:1
7f5c40000000 prefer:1 huge anon=2 dirty=2 N1=2 kernelpagesize_kB=2048
7ffd5a1e4000 default stack anon=3 dirty=3 active=0 swapcache=1 N0=3 kernelpagesize_kB=4
";

    #[test]
    fn parses_every_field_kind() {
        let e = parse_numa_maps(SAMPLE).unwrap();
        assert_eq!(e.len(), 7);
        assert_eq!(e[0].file.as_deref(), Some("/usr/bin/cat"));
        assert_eq!(e[0].mapped, Some(5));
        assert_eq!(e[1].flags, ["heap"]);
        assert_eq!(e[1].other.get("active").map(String::as_str), Some("0"));
        assert_eq!(
            (e[2].start, e[2].policy.as_str(), e[2].anon, e[2].dirty),
            (0x7f5c10000000, "bind:0", Some(1024), Some(1024))
        );
        assert_eq!(e[2].pages_on(0), 1024);
        assert_eq!(e[2].pages_on(1), 0);
        assert_eq!(e[3].node_pages, BTreeMap::from([(0, 4), (1, 4)]));
        assert_eq!(e[3].total_pages(), 8);
        assert_eq!(e[4].policy, "bind=static:1");
        assert_eq!(e[4].total_pages(), 0);
        assert_eq!(
            (e[5].flags.as_slice(), e[5].kernel_page_size_kb),
            (&["huge".to_owned()][..], Some(2048))
        );
        assert_eq!(e[6].other.get("swapcache").map(String::as_str), Some("1"));
    }

    #[test]
    fn rejects_malformed_lines_naming_them() {
        for (line, why) in [
            ("zz default", "\"zz\" is not a hex address"),
            ("7f00", "no policy column"),
            ("7f00 default N0=x", "\"N0=x\": \"x\" is not a count"),
            ("7f00 default anon=-1", "is not a count"),
        ] {
            let msg = parse_numa_maps(line).unwrap_err().to_string();
            assert!(msg.contains(why) && msg.contains(line), "{msg}");
        }
    }

    #[test]
    fn finds_the_mapping_holding_an_address() {
        let maps = "\
55f0c8a00000-55f0c8a05000 r--p 00000000 08:01 1234 /usr/bin/cat
7f5c10000000-7f5c10400000 rw-p 00000000 00:00 0
";
        assert_eq!(mapping_start(maps, 0x7f5c10000000), Some(0x7f5c10000000));
        assert_eq!(mapping_start(maps, 0x7f5c103fffff), Some(0x7f5c10000000));
        assert_eq!(mapping_start(maps, 0x7f5c10400000), None);
        assert_eq!(mapping_start(maps, 0x55f0c8a04000), Some(0x55f0c8a00000));
    }
}
