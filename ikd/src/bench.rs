//! The load-test driver (`ikd --bench-initiate N [--inflight K] --connection NAME`): starts
//! N setups of one connection, each a new main mode followed by one quick mode, at most K
//! at a time, counts the installed SA pairs and the failed exchanges, and prints one
//! `bench-result:` line on stdout when every setup has ended.
//!
//! What it does not do: measure CPU (the caller reads /proc for both daemons), retry failed
//! setups, or delete SAs between setups (the daemon's shutdown sends the deletes
//! [`REPORT_PAUSE`] after the result line, so the peer's CPU can be read without them). Meant for `kernel = "none"`, where installing an SA costs nothing.

use std::time::{Duration, Instant};

use ikengine::ChildName;

/// A setup that neither completes nor fails for this long ends the run as failed (longer
/// than the default retransmission schedule, 63 s).
pub(crate) const STALL: Duration = Duration::from_secs(90);

/// The pause between the result line and the deletes.
pub(crate) const REPORT_PAUSE: Duration = Duration::from_millis(500);

/// What the command line asked for.
#[derive(Debug, Clone)]
pub(crate) struct BenchArgs {
    pub(crate) setups: u32,
    pub(crate) inflight: u32,
    pub(crate) connection: String,
}

/// Progress of a run.
#[derive(Debug)]
pub(crate) struct Bench {
    pub(crate) child: ChildName,
    pub(crate) total: u32,
    inflight: u32,
    started: u32,
    pub(crate) established: u32,
    pub(crate) failed: u32,
    first: Option<Instant>,
    last: Option<Instant>,
    progress: Instant,
}

impl Bench {
    pub(crate) fn new(args: &BenchArgs, now: Instant) -> Self {
        Self {
            child: ChildName::from(args.connection.as_str()),
            total: args.setups,
            inflight: args.inflight.max(1),
            started: 0,
            established: 0,
            failed: 0,
            first: None,
            last: None,
            progress: now,
        }
    }

    /// Whether another setup may start now (and counts it as started).
    pub(crate) fn take_start(&mut self, now: Instant) -> bool {
        let running = self.started - self.established - self.failed;
        if self.started < self.total && running < self.inflight {
            self.started += 1;
            self.first.get_or_insert(now);
            true
        } else {
            false
        }
    }

    /// Records a setup's end.
    pub(crate) fn finished(&mut self, now: Instant, ok: bool) {
        if self.established + self.failed >= self.started {
            return;
        }
        if ok {
            self.established += 1;
        } else {
            self.failed += 1;
        }
        self.last = Some(now);
        self.progress = now;
    }

    /// Every setup ended (or the run stalled: the rest count as failed).
    pub(crate) fn done(&mut self, now: Instant) -> bool {
        if self.established + self.failed < self.total && now.duration_since(self.progress) > STALL
        {
            self.failed = self.total - self.established;
        }
        self.established + self.failed >= self.total
    }

    /// Setups not established (failed, stalled, or not run because of a signal).
    pub(crate) fn missing(&self) -> u32 {
        self.total - self.established
    }

    /// From the first start to the last end.
    pub(crate) fn wall(&self) -> Duration {
        match (self.first, self.last) {
            (Some(a), Some(b)) => b.saturating_duration_since(a),
            _ => Duration::ZERO,
        }
    }

    /// The result line.
    pub(crate) fn report(&self, main_modes: u64, quick_modes: u64) -> String {
        let wall = self.wall().as_secs_f64();
        let rate = if wall > 0.0 {
            f64::from(self.established) / wall
        } else {
            0.0
        };
        format!(
            "bench-result: connection={} setups={} inflight={} established={} failed={} \
             wall={wall:.3}s setups_per_s={rate:.1} main_modes={main_modes} quick_modes={quick_modes}",
            self.child, self.total, self.inflight, self.established, self.failed
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_at_most_inflight_and_ends_after_all() {
        let t = Instant::now();
        let args = BenchArgs {
            setups: 3,
            inflight: 2,
            connection: "c".into(),
        };
        let mut b = Bench::new(&args, t);
        assert!(b.take_start(t));
        assert!(b.take_start(t));
        assert!(!b.take_start(t));
        b.finished(t, true);
        assert!(b.take_start(t));
        assert!(!b.take_start(t));
        b.finished(t, false);
        assert!(!b.done(t));
        b.finished(t + Duration::from_secs(1), true);
        // An extra end (a late event) is not counted.
        b.finished(t, true);
        assert!(b.done(t));
        assert_eq!((b.established, b.failed, b.missing()), (2, 1, 1));
        assert_eq!(b.wall(), Duration::from_secs(1));
        assert!(b.report(3, 3).contains("established=2 failed=1"));
    }

    #[test]
    fn a_stalled_run_counts_the_rest_as_failed() {
        let t = Instant::now();
        let args = BenchArgs {
            setups: 2,
            inflight: 1,
            connection: "c".into(),
        };
        let mut b = Bench::new(&args, t);
        assert!(b.take_start(t));
        assert!(!b.done(t + Duration::from_secs(1)));
        assert!(b.done(t + STALL + Duration::from_secs(1)));
        assert_eq!((b.established, b.failed), (0, 2));
    }
}
