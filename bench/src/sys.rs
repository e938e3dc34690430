//! What the load generator asks of the operating system: a clock shared by processes, the
//! open-file limit, and a process's resident memory.

use std::net::{Ipv4Addr, SocketAddr};

/// Nanoseconds on the monotonic clock: the epoch every process of one run shares, so a send
/// time stamped by the publisher can be compared with a receive time in a subscriber process.
pub fn now_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_MONOTONIC always exists on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    (ts.tv_sec as u64) * 1_000_000_000 + ts.tv_nsec as u64
}

/// Raises the soft limit of open files to the hard limit and returns the new soft limit.
pub fn raise_nofile() -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `limit` is a valid, writable rlimit.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return 1024;
    }
    if limit.rlim_cur < limit.rlim_max {
        let raised = libc::rlimit {
            rlim_cur: limit.rlim_max,
            rlim_max: limit.rlim_max,
        };
        // SAFETY: `raised` is a valid rlimit; raising the soft limit up to the hard one is allowed.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            return raised.rlim_max;
        }
    }
    limit.rlim_cur
}

/// Resident memory of process `pid` in KiB (`VmRSS` of `/proc/<pid>/status`).
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Cores and memory (GiB) of this machine, for the results line.
pub fn machine() -> (u64, f64) {
    // SAFETY: sysconf has no memory-safety preconditions.
    let (cores, pages, page_size) = unsafe {
        (
            libc::sysconf(libc::_SC_NPROCESSORS_ONLN),
            libc::sysconf(libc::_SC_PHYS_PAGES),
            libc::sysconf(libc::_SC_PAGESIZE),
        )
    };
    let gib = (pages.max(0) as f64) * (page_size.max(0) as f64) / (1u64 << 30) as f64;
    (cores.max(1) as u64, (gib * 10.0).round() / 10.0)
}

/// A target given as `http://127.0.0.1:PORT`, `ws://...` or `IP:PORT`: its socket address.
/// Only loopback addresses are accepted: this tool loads servers on this machine and no other.
pub fn loopback_addr(url: &str) -> anyhow::Result<SocketAddr> {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split('/').next().unwrap_or(rest);
    let authority = authority
        .strip_prefix("localhost:")
        .map(|port| format!("127.0.0.1:{port}"))
        .unwrap_or_else(|| authority.to_string());
    let addr: SocketAddr = authority
        .parse()
        .map_err(|e| anyhow::anyhow!("{url:?}: expected http://IP:PORT ({e})"))?;
    if !addr.ip().is_loopback() {
        anyhow::bail!(
            "{url:?} is not a loopback address: herald-bench only loads servers on this machine"
        );
    }
    Ok(addr)
}

/// The source address of load-generator connection `index`: spread over 127.0.0.2 ..
/// 127.0.0.(1+count), so that more connections fit than one address has ephemeral ports.
/// `None` (let the kernel choose) when `count` is 0.
pub fn source_addr(index: u64, count: u32) -> Option<Ipv4Addr> {
    if count == 0 {
        return None;
    }
    let host = 2 + (index % u64::from(count.min(250))) as u8;
    Some(Ipv4Addr::new(127, 0, 0, host))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_targets() {
        assert!(loopback_addr("http://127.0.0.1:8080").is_ok());
        assert!(loopback_addr("ws://127.0.0.3:1/ws").is_ok());
        assert!(loopback_addr("localhost:9").is_ok());
        assert!(loopback_addr("http://10.0.0.1:80").is_err());
        assert!(loopback_addr("http://example.com:80").is_err());
    }

    #[test]
    fn clock_moves_forward() {
        let a = now_ns();
        let b = now_ns();
        assert!(b >= a);
    }

    #[test]
    fn source_addresses_rotate() {
        assert_eq!(source_addr(0, 4), Some(Ipv4Addr::new(127, 0, 0, 2)));
        assert_eq!(source_addr(5, 4), Some(Ipv4Addr::new(127, 0, 0, 3)));
        assert_eq!(source_addr(5, 0), None);
    }
}
