//! CPU time and peak memory of this process and all of its descendants.
//!
//! `getrusage(RUSAGE_CHILDREN)` only counts children that have exited *and been waited for*,
//! so a process pool's live workers would be invisible to it. [`Usage::now`] therefore adds,
//! on Linux, every live descendant found in `/proc` (its `utime + stime` and its `VmHWM`).
//!
//! Peak RSS of the tree = this process's peak (`VmHWM`) + the sum of live descendants'
//! peaks: an upper bound on the tree's simultaneous peak (the peaks need not coincide), exact
//! for a single process. [`reset_peak`] restarts this process's peak, so that measurements
//! taken one after another each get their own (reaped children are not counted: their peak
//! belongs to an earlier measurement).
//!
//! [`MachineCpu`] reads the other side: how busy the whole machine was, so that a caller can
//! tell how much of it other programs took while it measured (the tour does, before it
//! judges a claim on timings).

use std::collections::HashMap;
use std::time::Duration;

/// A snapshot of the resources used so far by the process tree.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Usage {
    /// User + system CPU time of the tree.
    pub cpu: Duration,
    /// Peak resident set size of the tree, in bytes (see the module docs).
    pub peak_rss_bytes: u64,
}

impl Usage {
    /// Reads the current totals.
    pub fn now() -> Usage {
        let own = rusage(libc::RUSAGE_SELF);
        let reaped = rusage(libc::RUSAGE_CHILDREN);
        let (live_cpu, live_rss) = live_descendants();
        let own_peak = read_hwm(std::process::id()).unwrap_or(own.1);
        Usage {
            cpu: own.0 + reaped.0 + live_cpu,
            peak_rss_bytes: own_peak + live_rss,
        }
    }

    /// CPU time used between `earlier` and `self`.
    pub fn cpu_since(&self, earlier: &Usage) -> Duration {
        self.cpu.saturating_sub(earlier.cpu)
    }
}

/// Restarts this process's peak RSS from its current RSS (Linux: `clear_refs` 5); false
/// where that is not possible (then peaks are lifetime peaks).
pub fn reset_peak() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// CPU% of `cores` cores over `wall`: 100% is every core busy the whole time.
pub fn cpu_percent(cpu: Duration, wall: Duration, cores: usize) -> f64 {
    if wall.is_zero() || cores == 0 {
        return 0.0;
    }
    cpu.as_secs_f64() / wall.as_secs_f64() / cores as f64 * 100.0
}

fn rusage(who: libc::c_int) -> (Duration, u64) {
    // SAFETY: `getrusage` fills the zeroed struct we own; `who` is one of the two constants.
    let usage = unsafe {
        let mut u: libc::rusage = std::mem::zeroed();
        if libc::getrusage(who, &mut u) != 0 {
            return (Duration::ZERO, 0);
        }
        u
    };
    let time = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec.max(0) as u64) + Duration::from_micros(t.tv_usec.max(0) as u64)
    };
    // ru_maxrss is in KiB on Linux.
    (
        time(usage.ru_utime) + time(usage.ru_stime),
        usage.ru_maxrss.max(0) as u64 * 1024,
    )
}

/// CPU time and summed peak RSS of every live descendant of this process (Linux `/proc`;
/// zero elsewhere).
fn live_descendants() -> (Duration, u64) {
    let me = std::process::id();
    process_tree(me)
        .into_iter()
        .filter(|&pid| pid != me)
        .fold((Duration::ZERO, 0), |(cpu, rss), pid| {
            (cpu + cpu_time(pid), rss + read_hwm(pid).unwrap_or(0))
        })
}

/// `root` and every live process descended from it (Linux `/proc`; just `root` elsewhere).
///
/// Read from each thread's `children` file where the kernel has them: a few reads for a
/// small tree, where scanning every process of the machine costs a millisecond or two of
/// CPU, which a measurement of a short batch would count as its own.
pub fn process_tree(root: u32) -> Vec<u32> {
    if let Some(tree) = tree_by_children(root) {
        return tree;
    }
    tree_by_scan(root)
}

/// [`process_tree`] through `/proc/PID/task/TID/children`; `None` where the kernel has no
/// such files.
fn tree_by_children(root: u32) -> Option<Vec<u32>> {
    let me = std::process::id();
    if !std::path::Path::new(&format!("/proc/{me}/task/{me}/children")).exists() {
        return None;
    }
    let mut tree = vec![root];
    let mut i = 0;
    while i < tree.len() {
        let pid = tree[i];
        if let Ok(threads) = std::fs::read_dir(format!("/proc/{pid}/task")) {
            for thread in threads.flatten() {
                let children = std::fs::read_to_string(thread.path().join("children"));
                tree.extend(
                    children
                        .iter()
                        .flat_map(|c| c.split_whitespace())
                        .filter_map(|c| c.parse::<u32>().ok()),
                );
            }
        }
        i += 1;
    }
    Some(tree)
}

/// [`process_tree`] by reading every process's parent from `/proc/*/stat`.
fn tree_by_scan(root: u32) -> Vec<u32> {
    let mut parent_of = HashMap::new();
    if let Ok(entries) = std::fs::read_dir("/proc") {
        for entry in entries.flatten() {
            let pid = entry
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<u32>().ok());
            if let Some(pid) = pid
                && let Some((ppid, _)) = read_stat(pid)
            {
                parent_of.insert(pid, ppid);
            }
        }
    }
    let mut tree = vec![root];
    let mut i = 0;
    while i < tree.len() {
        let parent = tree[i];
        tree.extend(
            parent_of
                .iter()
                .filter(|&(_, &pp)| pp == parent)
                .map(|(&p, _)| p),
        );
        i += 1;
    }
    tree
}

/// User + system CPU time a process has used so far (zero if it is gone).
///
/// `/proc/PID/stat` counts in clock ticks (10 ms here), which truncates: over a one-second
/// window the 33 processes of a prefork server can lose a third of a CPU-second between them.
/// The scheduler's own count (`/proc/PID/task/*/schedstat`, nanoseconds) is exact but forgets
/// threads that have exited. Each is a lower bound of the truth, so the larger one is taken.
pub fn cpu_time(pid: u32) -> Duration {
    let ticks = read_stat(pid).map_or(Duration::ZERO, |(_, ticks)| {
        Duration::from_secs_f64(ticks as f64 / clock_ticks_per_s())
    });
    ticks.max(scheduled_time(pid))
}

/// CPU time the calling thread has used so far (`CLOCK_THREAD_CPUTIME_ID`): with the wall
/// time of a span, it tells how much of the span the thread was really on a core.
pub fn thread_cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `clock_gettime` writes one `timespec` into the struct we own; the clock id is
    // a constant every Linux has. Exercised by `a_spinning_thread_is_on_a_core`.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return Duration::ZERO;
    }
    Duration::new(
        ts.tv_sec.max(0) as u64,
        ts.tv_nsec.clamp(0, 999_999_999) as u32,
    )
}

/// Clock ticks per second, the unit of `/proc`'s CPU counters.
fn clock_ticks_per_s() -> f64 {
    // SAFETY: `sysconf` has no preconditions.
    unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64
}

/// The time the scheduler ran each live thread of `pid`, summed (zero where /proc lacks it).
fn scheduled_time(pid: u32) -> Duration {
    let Ok(threads) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Duration::ZERO;
    };
    threads
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("schedstat")).ok())
        .filter_map(|text| text.split_whitespace().next()?.parse::<u64>().ok())
        .map(Duration::from_nanos)
        .sum()
}

/// How busy the whole machine has been since it booted (`/proc/stat`).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct MachineCpu {
    /// CPU time spent running programs: user, nice, system, and steal (time the hypervisor
    /// gave to other machines, which is just as lost to us). Interrupt time is left out: on
    /// kernels that account it apart, the packets of our own loopback traffic land there,
    /// not in our processes' system time, and would be counted as someone else's work.
    pub busy: Duration,
    /// `busy` plus idle and I/O wait: all the CPU time there was.
    pub total: Duration,
}

impl MachineCpu {
    /// Reads the counters now; `None` where `/proc/stat` cannot be read.
    pub fn now() -> Option<MachineCpu> {
        Self::parse(&std::fs::read_to_string("/proc/stat").ok()?)
    }

    /// Parses the aggregate `cpu` line of a `/proc/stat` text.
    pub fn parse(stat: &str) -> Option<MachineCpu> {
        let line = stat.lines().find(|l| l.starts_with("cpu "))?;
        let field: Vec<u64> = line
            .split_whitespace()
            .skip(1)
            .map(|f| f.parse().unwrap_or(0))
            .collect();
        let at = |i: usize| field.get(i).copied().unwrap_or(0);
        let (user, nice, system, idle, iowait, steal) = (at(0), at(1), at(2), at(3), at(4), at(7));
        let hz = clock_ticks_per_s();
        let time = |ticks: u64| Duration::from_secs_f64(ticks as f64 / hz);
        let busy = user + nice + system + steal;
        Some(MachineCpu {
            busy: time(busy),
            total: time(busy + idle + iowait),
        })
    }

    /// The busy and total time between `earlier` and `self`.
    pub fn since(&self, earlier: &MachineCpu) -> MachineCpu {
        MachineCpu {
            busy: self.busy.saturating_sub(earlier.busy),
            total: self.total.saturating_sub(earlier.total),
        }
    }
}

/// Proportional set size of a process (`/proc/PID/smaps_rollup`): shared pages are counted
/// once across the processes sharing them. Zero where /proc does not say.
pub fn pss_bytes(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup"))
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("Pss:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kib| kib.parse::<u64>().ok())
        })
        .map_or(0, |kib| kib * 1024)
}

/// `(ppid, utime + stime in clock ticks)` from `/proc/PID/stat`.
fn read_stat(pid: u32) -> Option<(u32, u64)> {
    read_times(pid).map(|(ppid, user, system)| (ppid, user + system))
}

/// `(ppid, utime, stime)` in clock ticks from `/proc/PID/stat`.
fn read_times(pid: u32) -> Option<(u32, u64, u64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: fields start after the last ')'.
    let rest = &text[text.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ppid = fields.get(1)?.parse().ok()?;
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((ppid, utime, stime))
}

/// The system (kernel) part of a process's CPU time so far, in clock ticks as `/proc` counts
/// it; with [`cpu_time`], how much of a server's work was the kernel's (its TCP stack, for a
/// server of tiny responses). Zero if it is gone.
pub fn system_time(pid: u32) -> Duration {
    read_times(pid).map_or(Duration::ZERO, |(_, _, system)| {
        Duration::from_secs_f64(system as f64 / clock_ticks_per_s())
    })
}

/// Peak RSS (`VmHWM`) of a process, in bytes.
fn read_hwm(pid: u32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = text.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_time_grows_with_work_and_rss_is_positive() {
        let before = Usage::now();
        let mut x = 0u64;
        for i in 0..20_000_000u64 {
            x = x.wrapping_add(i * i);
        }
        std::hint::black_box(x);
        let after = Usage::now();
        assert!(after.cpu_since(&before) > Duration::ZERO);
        assert!(after.peak_rss_bytes > 0);
    }

    #[test]
    fn a_live_child_is_counted() {
        let mut child = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .unwrap();
        let (_, live_rss) = live_descendants();
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(live_rss > 0, "the live child's peak RSS is found");
    }

    #[test]
    fn the_process_tree_holds_a_child_and_pss_is_read() {
        let mut child = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .unwrap();
        let tree = process_tree(std::process::id());
        let pss = pss_bytes(std::process::id());
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(
            tree.contains(&child.id()) && tree[0] == std::process::id(),
            "{tree:?}"
        );
        assert!(pss > 0);
    }

    #[test]
    fn machine_cpu_counts_user_system_and_steal_as_busy() {
        let hz = clock_ticks_per_s();
        let stat = "cpu  100 10 50 800 20 5 7 30 0 0\ncpu0 50 5 25 400 10 2 3 15 0 0\n";
        let m = MachineCpu::parse(stat).unwrap();
        let ticks = |d: Duration| (d.as_secs_f64() * hz).round() as u64;
        assert_eq!(ticks(m.busy), 100 + 10 + 50 + 30);
        assert_eq!(ticks(m.total), 190 + 800 + 20);
        assert!(MachineCpu::parse("intr 1 2 3").is_none());
        let later = MachineCpu::now().unwrap();
        assert!(later.since(&later).busy.is_zero());
    }

    #[test]
    fn cpu_time_of_this_process_counts_its_work_precisely() {
        let before = cpu_time(std::process::id());
        let own = rusage(libc::RUSAGE_SELF).0;
        let mut x = 0u64;
        // Spin until getrusage (exact) says 30 ms of CPU went by, however busy the machine.
        while rusage(libc::RUSAGE_SELF).0 < own + Duration::from_millis(30) {
            for _ in 0..10_000 {
                x = x.wrapping_add(std::hint::black_box(1));
            }
        }
        std::hint::black_box(x);
        let used = cpu_time(std::process::id()).saturating_sub(before);
        // Ticks alone may lose up to one tick at each end; other test threads only add.
        assert!(used >= Duration::from_millis(20), "{used:?}");
    }

    #[test]
    fn a_spinning_thread_is_on_a_core_and_a_sleeping_one_is_not() {
        let before = thread_cpu_time();
        std::thread::sleep(Duration::from_millis(20));
        let slept = thread_cpu_time() - before;
        assert!(slept < Duration::from_millis(10), "{slept:?}");
        let start = thread_cpu_time();
        let mut x = 0u64;
        while thread_cpu_time() - start < Duration::from_millis(5) {
            x = x.wrapping_add(std::hint::black_box(1));
        }
        std::hint::black_box(x);
        assert!(thread_cpu_time() - start >= Duration::from_millis(5));
    }

    #[test]
    fn both_ways_of_reading_the_tree_find_a_grandchild() {
        let mut child = std::process::Command::new("sh")
            .args(["-c", "sleep 5 & wait"])
            .spawn()
            .unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let mut tree = process_tree(child.id());
        while tree.len() < 2 && std::time::Instant::now() < deadline {
            std::thread::yield_now();
            tree = process_tree(child.id());
        }
        let mut scanned = tree_by_scan(child.id());
        let _ = std::process::Command::new("pkill")
            .args(["-P", &child.id().to_string()])
            .status();
        child.kill().unwrap();
        child.wait().unwrap();
        assert_eq!(tree.len(), 2, "sh and its sleep: {tree:?}");
        tree.sort_unstable();
        scanned.sort_unstable();
        assert_eq!(tree, scanned);
    }

    #[test]
    fn cpu_percent_is_per_core() {
        let p = cpu_percent(Duration::from_secs(1), Duration::from_secs(1), 2);
        assert!((p - 50.0).abs() < 1e-9);
        assert_eq!(cpu_percent(Duration::from_secs(1), Duration::ZERO, 2), 0.0);
    }
}
