//! What the operating system allows and measures: open-file limits,
//! the ephemeral port range, and resident memory from `/proc`.

use anyhow::Context as _;

/// File descriptors this process needs besides one per session (stdio,
/// the runtime, the token file).
const OWN_SPARE_FILES: u64 = 64;
/// File descriptors the server needs besides one per session (listener,
/// database, search index, logs).
pub const SERVER_SPARE_FILES: u64 = 100;

/// Lifts this process's soft limit on open files to the hard limit and
/// checks that `sessions` connections fit under it.
pub fn raise_open_files_limit(sessions: usize) -> anyhow::Result<u64> {
    let soft =
        rlimit::increase_nofile_limit(u64::MAX).context("raising the open files soft limit")?;
    let (_, hard) =
        rlimit::getrlimit(rlimit::Resource::NOFILE).context("reading the open files limit")?;
    check_files("loadgen", soft, hard, sessions, OWN_SPARE_FILES)?;
    Ok(soft)
}

/// Fails when `sessions` sockets plus `spare` other files exceed `soft`.
pub fn check_files(
    who: &str,
    soft: u64,
    hard: u64,
    sessions: usize,
    spare: u64,
) -> anyhow::Result<()> {
    let needed = u64::try_from(sessions)
        .unwrap_or(u64::MAX)
        .saturating_add(spare);
    anyhow::ensure!(
        soft >= needed,
        "{who} may open {soft} files (soft limit; hard limit {hard}) but {sessions} sessions \
         need about {needed}: use at most {} sessions per process, or raise the hard limit \
         (`ulimit -Hn`, which needs root or CAP_SYS_RESOURCE)",
        soft.saturating_sub(spare)
    );
    Ok(())
}

/// The server's open-files limits (soft, hard), from `/proc/PID/limits`.
pub fn open_files_limit_of(pid: u32) -> anyhow::Result<(u64, u64)> {
    let path = format!("/proc/{pid}/limits");
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    parse_open_files_limit(&text).with_context(|| format!("no `Max open files` line in {path}"))
}

fn parse_open_files_limit(limits: &str) -> Option<(u64, u64)> {
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    let mut numbers = line["Max open files".len()..].split_whitespace();
    let parse = |s: Option<&str>| match s? {
        "unlimited" => Some(u64::MAX),
        n => n.parse().ok(),
    };
    Some((parse(numbers.next())?, parse(numbers.next())?))
}

/// How many local ports one source address can use for outgoing
/// connections (`net.ipv4.ip_local_port_range`).
pub fn ephemeral_ports() -> anyhow::Result<u64> {
    let path = "/proc/sys/net/ipv4/ip_local_port_range";
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {path}"))?;
    let mut range = text.split_whitespace().map(str::parse::<u64>);
    match (range.next(), range.next()) {
        (Some(Ok(low)), Some(Ok(high))) if high >= low => Ok(high - low + 1),
        _ => anyhow::bail!("cannot read the port range in {path}: {text:?}"),
    }
}

/// Resident memory of a process in KiB (`VmRSS` of `/proc/PID/status`);
/// `None` for this process.
pub fn rss_kib(pid: Option<u32>) -> anyhow::Result<u64> {
    let path = match pid {
        Some(pid) => format!("/proc/{pid}/status"),
        None => "/proc/self/status".to_string(),
    };
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    parse_rss_kib(&text).with_context(|| format!("no VmRSS line in {path}"))
}

fn parse_rss_kib(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let mut parts = line["VmRSS:".len()..].split_whitespace();
    let value = parts.next()?.parse().ok()?;
    (parts.next()? == "kB").then_some(value)
}

/// `1234567` KiB as `1205.6 MiB`.
pub fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_files_are_read() {
        let status = "Name:\tmarketplace\nVmPeak:\t  200 kB\nVmRSS:\t   51234 kB\nThreads:\t3\n";
        assert_eq!(parse_rss_kib(status), Some(51234));
        assert_eq!(parse_rss_kib("Name: x\n"), None);
        let limits = "Limit                     Soft Limit           Hard Limit           Units     \n\
                      Max processes             unlimited            unlimited            processes \n\
                      Max open files            1024                 20000                files     \n";
        assert_eq!(parse_open_files_limit(limits), Some((1024, 20000)));
        let unlimited =
            "Max open files            unlimited            unlimited            files\n";
        assert_eq!(
            parse_open_files_limit(unlimited),
            Some((u64::MAX, u64::MAX))
        );
    }

    #[test]
    fn this_process_is_measured() {
        assert!(rss_kib(None).unwrap() > 0);
        assert!(rss_kib(Some(std::process::id())).unwrap() > 0);
        let (soft, hard) = open_files_limit_of(std::process::id()).unwrap();
        assert!(soft <= hard);
        assert!(ephemeral_ports().unwrap() > 0);
    }

    #[test]
    fn too_many_sessions_for_the_limit_is_a_clear_error() {
        check_files("loadgen", 20000, 20000, 19000, 64).unwrap();
        let error = check_files("the server (pid 7)", 20000, 20000, 19950, 100)
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("the server (pid 7) may open 20000 files"),
            "{error}"
        );
        assert!(error.contains("use at most 19900 sessions"), "{error}");
    }

    #[test]
    fn the_soft_limit_goes_up_to_the_hard_limit() {
        let soft = raise_open_files_limit(10).unwrap();
        let (now, hard) = rlimit::getrlimit(rlimit::Resource::NOFILE).unwrap();
        assert_eq!((soft, now), (hard, hard));
        assert!(raise_open_files_limit(usize::MAX).is_err());
    }
}
