//! The hub's processes, when they run on this machine: their CPU time and
//! resident memory, from /proc (summed over the nodes of a cluster).

pub struct ServerProcess(pub u32);

/// Every node measured.
pub struct Servers(pub Vec<ServerProcess>);

impl Servers {
    pub fn cpu_s(&self) -> Option<f64> {
        self.0.iter().map(ServerProcess::cpu_s).sum()
    }

    pub fn rss_kb(&self) -> Option<f64> {
        self.0.iter().map(ServerProcess::rss_kb).sum()
    }
}

impl ServerProcess {
    /// User and system CPU time, in seconds. /proc counts it in clock
    /// ticks, whose rate the system tells (it is not always 100 Hz).
    pub fn cpu_s(&self) -> Option<f64> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.0)).ok()?;
        // Fields after the command name, which may contain spaces.
        let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
        let ticks: f64 =
            fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
        Some(ticks / rustix::param::clock_ticks_per_second() as f64)
    }

    pub fn rss_kb(&self) -> Option<f64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.0)).ok()?;
        let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
        line.split_whitespace().nth(1)?.parse().ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process() {
        let me = ServerProcess(std::process::id());
        // Some work, so that the CPU time is not zero.
        let mut x = 0u64;
        for i in 0..20_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        assert!(x != 1);
        assert!(me.cpu_s().is_some_and(|s| s > 0.0));
        assert!(me.rss_kb().is_some_and(|kb| kb > 100.0));
    }
}
