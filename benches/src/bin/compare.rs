//! `compare WORKLOAD [--quick] [--n N]`: runs workloads on pinstack and its
//! baseline side by side and prints one line per figure (BENCHMARKS.md).
//! `compare all` runs every registered workload. Diagnostics go to stderr;
//! stdout holds only figure lines.

use std::process::ExitCode;

use pinstack_benches::child::CHILD_ARG;
use pinstack_benches::workloads::{self, Opts};

const USAGE: &str = "usage: compare WORKLOAD [--quick] [--n N]   (WORKLOAD: a name or `all`)";

fn parse(args: &[String]) -> Result<(String, Opts), String> {
    let mut workload = None;
    let mut opts = Opts::default();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--quick" => opts.quick = true,
            "--n" => {
                let v = it.next().ok_or("--n needs a value")?;
                let n = v.parse().map_err(|e| format!("--n {v}: {e}"))?;
                opts.n = Some(n);
            }
            "-h" | "--help" => return Err(String::new()),
            s if s.starts_with('-') => return Err(format!("unknown option {s}")),
            s if workload.is_none() => workload = Some(s.to_string()),
            s => return Err(format!("unexpected argument {s}")),
        }
    }
    let workload = workload.ok_or("missing WORKLOAD")?;
    Ok((workload, opts))
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some(CHILD_ARG) {
        let Some(name) = args.get(1) else {
            eprintln!("{CHILD_ARG} needs a child name");
            return ExitCode::from(2);
        };
        return match workloads::run_child(name, &args[2..]) {
            Ok(line) => {
                println!("{line}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("child {name}: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let (workload, opts) = match parse(&args) {
        Ok(v) => v,
        Err(msg) => {
            if !msg.is_empty() {
                eprintln!("compare: {msg}");
            }
            eprintln!("{USAGE}");
            eprintln!("known workloads: {}", workloads::names().join(", "));
            return ExitCode::from(2);
        }
    };
    let names = if workload == "all" {
        workloads::names()
    } else {
        vec![workload.as_str()]
    };
    for name in names {
        match workloads::run(name, &opts) {
            Ok(figures) => {
                for f in figures {
                    println!("{f}");
                }
            }
            Err(e) => {
                eprintln!("compare: {name}: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    ExitCode::SUCCESS
}
