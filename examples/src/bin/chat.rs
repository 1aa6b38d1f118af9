//! pinstack's chat server, and its demo.
//!
//! * `chat [--addr A --workers N ...]`: serve (IRC subset) until Ctrl-C or
//!   `SIGTERM`, then say goodbye to every client and exit 0.
//! * `chat --demo [--clients N --rooms R --rate M --duration D]`: start the
//!   server in a child process, drive it with the load generator from this
//!   process, and print a short table (defaults: 10,000 clients in 100 rooms,
//!   1,000 messages/s for 10 s).
//! * `chat --compare ...`: the same load against the tokio twin too, with
//!   pinstack/tokio ratios.

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use pinstack::signal::{Signals, SIGINT, SIGTERM};
use pinstack_examples::chat::load::{self, LoadConfig, LoadReport};
use pinstack_examples::chat::{pinstack_server, tokio_server, ChatConfig};
use pinstack_examples::flags::{exit_with, Flags};
use pinstack_examples::{raise_nofile_limit, raise_nofile_limit_to, Shutdown};

const USAGE: &str = "\
usage: chat [server flags]                 serve until Ctrl-C / SIGTERM
       chat --demo [load flags]            server + load generator, prints a table
       chat --compare [load flags]         the same on pinstack and on tokio, with ratios
       chat --hold N [--compare] [--connect-timeout D (300s)]
                     [--ping-interval D (server's, 120s)] [load flags]
                                           hold N idle registered clients, print RSS per client

host setup (as root, e.g. in a bare VM; before any mode):
            --sysctl NAME=VALUE (repeatable) --loopback-up

load flags: --clients N (10000) --rooms R (100) --rate MSGS_PER_S (1000)
            --duration D (10s) --workers N (2, server workers)
server flags: see `chat_tokio --help` (same flags)";

fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    if let Err(e) = pinstack_examples::apply_host_flags("chat", &mut args) {
        eprintln!("chat: host setup failed: {e}");
        std::process::exit(1);
    }
    match args.first().map(String::as_str) {
        Some("--serve") => serve_child(&args[1..]),
        Some("--demo") => demo(&args[1..], false),
        Some("--compare") => demo(&args[1..], true),
        Some("--hold") => hold(&args[1..]),
        Some("--help" | "-h") => println!("{USAGE}"),
        _ => serve_standalone(args),
    }
}

fn serve_standalone(args: Vec<String>) {
    let config = ChatConfig::from_flags(Flags::new(args)).unwrap_or_else(|e| exit_with(&e, USAGE));
    report_nofile("chat");
    // Ctrl-C or SIGTERM (systemd, Kubernetes): stop accepting, say goodbye
    // to every client, and exit 0.
    let shutdown = Shutdown::new();
    let signals = Signals::new(&[SIGINT, SIGTERM]).unwrap_or_else(|e| {
        eprintln!("chat: cannot catch SIGINT/SIGTERM: {e}");
        std::process::exit(1);
    });
    let sd = shutdown.clone();
    std::thread::spawn(move || {
        if let Ok(sig) = signals.recv() {
            eprintln!("chat: signal {sig}: closing every connection");
            sd.trigger();
        }
    });
    let r = pinstack_server::run(&config, &shutdown, |addr| {
        println!("listening on {addr} pid {}", std::process::id());
    });
    if let Err(e) = r {
        eprintln!("chat: {e}");
        std::process::exit(1);
    }
}

fn report_nofile(who: &str) {
    match raise_nofile_limit() {
        Ok(l) => eprintln!("{who}: {l}"),
        Err(e) => eprintln!("{who}: cannot raise RLIMIT_NOFILE: {e}"),
    }
}

/// Child mode: serve with the named twin until stdin closes.
fn serve_child(args: &[String]) {
    let (twin, rest) = args.split_first().unwrap_or_else(|| {
        exit_with(
            &pinstack_examples::flags::FlagError::Invalid("--serve needs a twin".into()),
            USAGE,
        )
    });
    let config =
        ChatConfig::from_flags(Flags::new(rest.to_vec())).unwrap_or_else(|e| exit_with(&e, USAGE));
    match raise_nofile_limit_to(config.max_clients as u64 + 1024) {
        Ok(l) => eprintln!("chat --serve {twin}: {l}"),
        Err(e) => eprintln!("chat --serve {twin}: cannot raise RLIMIT_NOFILE: {e}"),
    }
    let shutdown = Shutdown::new();
    let sd = shutdown.clone();
    std::thread::spawn(move || {
        // The parent closes our stdin (or dies): stop.
        let _ = std::io::copy(&mut std::io::stdin(), &mut std::io::sink());
        sd.trigger();
    });
    let ready = |addr: SocketAddr| {
        println!("listening on {addr}");
        let _ = std::io::stdout().flush();
    };
    let r = match twin.as_str() {
        "pinstack" => pinstack_server::run(&config, &shutdown, ready),
        "tokio" => tokio_server::run(&config, &shutdown, ready),
        other => exit_with(
            &pinstack_examples::flags::FlagError::Invalid(format!(
                "unknown twin {other:?}: pinstack or tokio"
            )),
            USAGE,
        ),
    };
    if let Err(e) = r {
        eprintln!("chat --serve {twin}: {e}");
        std::process::exit(1);
    }
}

struct Demo {
    clients: usize,
    rooms: usize,
    rate: f64,
    duration: Duration,
    workers: usize,
}

fn parse_demo(args: &[String]) -> Demo {
    let mut d = Demo {
        clients: 10_000,
        rooms: 100,
        rate: 1000.0,
        duration: Duration::from_secs(10),
        workers: 2,
    };
    let mut flags = Flags::new(args.to_vec());
    let r: Result<(), pinstack_examples::flags::FlagError> = (|| {
        while let Some(name) = flags.next_flag()? {
            match name.as_str() {
                "clients" => d.clients = flags.value(&name)?,
                "rooms" => d.rooms = flags.value(&name)?,
                "rate" => d.rate = flags.value(&name)?,
                "duration" => {
                    let v: String = flags.value(&name)?;
                    d.duration = pinstack_examples::flags::parse_duration(&v).ok_or_else(|| {
                        pinstack_examples::flags::FlagError::Invalid(format!(
                            "--duration {v:?}: e.g. 10s or 500ms"
                        ))
                    })?;
                }
                "workers" => d.workers = flags.value(&name)?,
                _ => return Err(flags.unknown(&name)),
            }
        }
        Ok(())
    })();
    if let Err(e) = r {
        exit_with(&e, USAGE);
    }
    d
}

/// Starts `chat --serve TWIN` and returns it with its address.
fn start_server(
    twin: &str,
    workers: usize,
    extra: &[String],
) -> std::io::Result<(Child, SocketAddr)> {
    let exe = std::env::current_exe()?;
    let mut child = Command::new(exe)
        .args([
            "--serve",
            twin,
            "--addr",
            "127.0.0.1:0",
            "--workers",
            &workers.to_string(),
        ])
        .args(["--max-clients", "200000", "--sendq", "1024"])
        .args(extra)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()?;
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| std::io::Error::other("no stdout"))?;
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line)?;
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .and_then(|a| a.parse().ok())
        .ok_or_else(|| {
            std::io::Error::other(format!("the {twin} server did not start: {line:?}"))
        })?;
    Ok((child, addr))
}

fn run_load(twin: &str, d: &Demo) -> std::io::Result<LoadReport> {
    run_load_with(twin, d, &[], |_| {})
}

fn run_load_with(
    twin: &str,
    d: &Demo,
    server_flags: &[String],
    tweak: impl FnOnce(&mut LoadConfig),
) -> std::io::Result<LoadReport> {
    let (mut child, addr) = start_server(twin, d.workers, server_flags)?;
    let mut cfg = LoadConfig::new(addr);
    cfg.clients = d.clients;
    cfg.rooms = d.rooms;
    cfg.rate = d.rate;
    cfg.duration = d.duration;
    cfg.server_pid = Some(child.id());
    tweak(&mut cfg);
    eprintln!(
        "chat: {twin}: {} clients in {} rooms, {} msgs/s for {:?} ...",
        d.clients, d.rooms, d.rate, d.duration
    );
    let report = load::run(&cfg);
    drop(child.stdin.take()); // tells the server to stop
    let _ = child.wait();
    report
}

fn demo(args: &[String], compare: bool) {
    let d = parse_demo(args);
    report_nofile("chat");
    let twins: &[&str] = if compare {
        &["pinstack", "tokio"]
    } else {
        &["pinstack"]
    };
    let mut reports = Vec::new();
    for twin in twins {
        match run_load(twin, &d) {
            Ok(r) => reports.push((*twin, r)),
            Err(e) => {
                eprintln!("chat: {twin} run failed: {e}");
                std::process::exit(1);
            }
        }
    }
    print_table(&reports);
    let lost: u64 = reports
        .iter()
        .filter_map(|(_, r)| r.steady.as_ref())
        .map(|s| s.lost + s.duplicates + s.misrouted)
        .sum();
    if lost > 0 {
        std::process::exit(1);
    }
}

/// Reads one figure of a report.
type Getter = fn(&LoadReport) -> Option<f64>;

fn print_table(reports: &[(&str, LoadReport)]) {
    let f = |v: Option<f64>, prec: usize| v.map_or_else(|| "na".into(), |v| format!("{v:.prec$}"));
    println!(
        "{:<26}{}",
        "",
        reports
            .iter()
            .map(|(t, _)| format!("{t:>14}"))
            .collect::<String>()
            + if reports.len() == 2 { "     ratio" } else { "" }
    );
    let rows: Vec<(&str, Getter, usize)> = vec![
        ("clients connected", (|r| Some(r.connected as f64)), 0),
        (
            "messages sent",
            (|r| r.steady.as_ref().map(|s| s.sent as f64)),
            0,
        ),
        (
            "deliveries",
            (|r| r.steady.as_ref().map(|s| s.delivered as f64)),
            0,
        ),
        (
            "lost (must be 0)",
            (|r| {
                r.steady
                    .as_ref()
                    .map(|s| (s.lost + s.duplicates + s.misrouted) as f64)
            }),
            0,
        ),
        (
            "deliveries/s",
            (|r| r.steady.as_ref().map(|s| s.deliveries_per_s)),
            0,
        ),
        (
            "p50 latency (us)",
            (|r| r.steady.as_ref().map(|s| s.p50_us)),
            0,
        ),
        (
            "p99 latency (us)",
            (|r| r.steady.as_ref().map(|s| s.p99_us)),
            0,
        ),
        (
            "server CPU us/delivery",
            (|r| r.steady.as_ref().and_then(|s| s.cpu_us_per_delivery)),
            3,
        ),
        ("server RSS KiB/client", (|r| r.rss_kib_per_client), 2),
    ];
    for (name, get, prec) in rows {
        let vals: Vec<Option<f64>> = reports.iter().map(|(_, r)| get(r)).collect();
        let mut line = format!("{name:<26}");
        for v in &vals {
            line += &format!("{:>14}", f(*v, prec));
        }
        if let [Some(a), Some(b)] = vals[..] {
            if b != 0.0 {
                line += &format!("{:>10.2}", a / b);
            }
        }
        println!("{line}");
    }
}

/// `--hold N [--compare] [--hold-for D]`: N registered, idle clients held by
/// the server; reports how many were held and the server's RSS per client.
fn hold(args: &[String]) {
    let (n, rest) = args.split_first().unwrap_or_else(|| {
        exit_with(
            &pinstack_examples::flags::FlagError::Invalid("--hold needs a client count".into()),
            USAGE,
        )
    });
    let n: usize = n.parse().unwrap_or_else(|_| {
        exit_with(
            &pinstack_examples::flags::FlagError::Invalid(format!("--hold {n:?}: a client count")),
            USAGE,
        )
    });
    let compare = rest.iter().any(|a| a == "--compare");
    let mut rest: Vec<String> = rest.iter().filter(|a| *a != "--compare").cloned().collect();
    let mut take_duration = |name: &str| {
        let k = rest.iter().position(|a| a == name)?;
        let v = rest.get(k + 1).cloned().unwrap_or_default();
        rest.drain(k..(k + 2).min(rest.len()));
        if pinstack_examples::flags::parse_duration(&v).is_none() {
            exit_with(
                &pinstack_examples::flags::FlagError::Invalid(format!("{name} {v:?}: e.g. 300s")),
                USAGE,
            );
        }
        Some(v)
    };
    let connect_timeout = take_duration("--connect-timeout")
        .and_then(|v| pinstack_examples::flags::parse_duration(&v))
        .unwrap_or(Duration::from_secs(300));
    // Passed on to both servers: how long a client may idle before a PING.
    let server_flags: Vec<String> = take_duration("--ping-interval")
        .map(|v| vec!["--ping-interval".into(), v])
        .unwrap_or_default();
    let mut d = parse_demo(&rest);
    d.clients = n;
    d.duration = Duration::ZERO;
    match raise_nofile_limit_to(n as u64 + 1024) {
        Ok(l) => eprintln!("chat: {l}"),
        Err(e) => eprintln!("chat: cannot raise RLIMIT_NOFILE: {e}"),
    }
    let twins: &[&str] = if compare {
        &["pinstack", "tokio"]
    } else {
        &["pinstack"]
    };
    let mut reports = Vec::new();
    for twin in twins {
        let r = run_load_with(twin, &d, &server_flags, |cfg| {
            cfg.hold = Duration::from_secs(5);
            cfg.connect_timeout = connect_timeout;
        });
        match r {
            Ok(r) => reports.push((*twin, r)),
            Err(e) => {
                eprintln!("chat: {twin} hold failed: {e}");
                std::process::exit(1);
            }
        }
    }
    for (twin, r) in &reports {
        println!(
            "{twin}: clients_held={} connect_failures={} connect_s={:.1} \
             rss_kib_per_client_joined={} rss_kib_per_client={}",
            r.held,
            r.connect_failures,
            r.connect_time.as_secs_f64(),
            r.rss_kib_per_client
                .map_or_else(|| "na".into(), |v| format!("{v:.2}")),
            r.rss_kib_per_client_held
                .map_or_else(|| "na".into(), |v| format!("{v:.2}"))
        );
    }
    if let [(_, p), (_, t)] = &reports[..] {
        let ratio = |a: f64, b: f64| {
            if b == 0.0 {
                "na".to_string()
            } else {
                format!("{:.2}", a / b)
            }
        };
        println!(
            "workload=chat_hold metric=clients_held n={n} pinstack={} tokio={} ratio={} better=higher",
            p.held,
            t.held,
            ratio(p.held as f64, t.held as f64)
        );
        // Idle clients: measured at the end of the hold.
        if let (Some(a), Some(b)) = (p.rss_kib_per_client_held, t.rss_kib_per_client_held) {
            println!(
                "workload=chat_hold metric=rss_kib_per_client n={n} pinstack={a:.2} tokio={b:.2} ratio={}",
                ratio(a, b)
            );
        }
    }
    if reports.iter().any(|(_, r)| r.held < n) {
        std::process::exit(1);
    }
}
