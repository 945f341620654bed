//! The virtual clock every controller runs on, and the one place the simulator reads the wall
//! clock.
//!
//! Virtual time advances `speed` times as fast as the wall clock (measured with the monotonic
//! [`Instant`]), from an anchor. Changing the speed re-anchors, so virtual time never jumps.

use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use jiff::{SignedDuration, Timestamp};

/// The wall clock. Libraries are handed a clock (HOUSE-STYLE rule 9); the simulator's clock is
/// this shim plus the monotonic clock, and [`crate::SimBuilder::start_time`] injects the start.
pub(crate) fn wall_now() -> SystemTime {
    #[expect(
        clippy::disallowed_methods,
        reason = "the simulator's clock shim: the one place ferry-sim reads the wall clock"
    )]
    SystemTime::now()
}

/// A timestamp from a `SystemTime` (clamped to jiff's range).
pub(crate) fn timestamp_of(time: SystemTime) -> Timestamp {
    Timestamp::try_from(time).unwrap_or(Timestamp::UNIX_EPOCH)
}

#[derive(Debug)]
struct Anchor {
    wall: Instant,
    virtual_time: Timestamp,
    speed: f64,
}

/// Virtual time: `anchor + (wall elapsed since anchor) * speed`.
#[derive(Debug)]
pub(crate) struct VirtualClock {
    anchor: Mutex<Anchor>,
}

impl VirtualClock {
    pub(crate) fn new(start: Timestamp, speed: f64) -> Self {
        VirtualClock {
            anchor: Mutex::new(Anchor {
                wall: Instant::now(),
                virtual_time: start,
                speed,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Anchor> {
        self.anchor
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The current virtual time.
    pub(crate) fn now(&self) -> Timestamp {
        let anchor = self.lock();
        Self::at(&anchor, Instant::now())
    }

    fn at(anchor: &Anchor, wall: Instant) -> Timestamp {
        let elapsed = wall.saturating_duration_since(anchor.wall).as_secs_f64() * anchor.speed;
        let elapsed = SignedDuration::try_from_secs_f64(elapsed).unwrap_or(SignedDuration::MAX);
        anchor
            .virtual_time
            .saturating_add(elapsed)
            .unwrap_or(anchor.virtual_time)
    }

    /// Changes the speed from now on.
    pub(crate) fn set_speed(&self, speed: f64) {
        let mut anchor = self.lock();
        let wall = Instant::now();
        let now = Self::at(&anchor, wall);
        *anchor = Anchor {
            wall,
            virtual_time: now,
            speed,
        };
    }

    /// Wall time until the virtual clock reaches `target` (zero when it has).
    pub(crate) fn wall_until(&self, target: Timestamp) -> Duration {
        let anchor = self.lock();
        let now = Self::at(&anchor, Instant::now());
        let ahead = now.duration_until(target);
        if ahead.is_negative() || ahead.is_zero() {
            return Duration::ZERO;
        }
        Duration::try_from_secs_f64(ahead.as_secs_f64() / anchor.speed).unwrap_or(Duration::MAX)
    }
}

/// Kubernetes `Time`: RFC 3339 in UTC with whole seconds.
pub(crate) fn format_time(t: Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// Kubernetes `MicroTime`: RFC 3339 in UTC with microseconds.
pub(crate) fn format_micro_time(t: Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

/// Parses a Kubernetes `Time` or `MicroTime`.
pub(crate) fn parse_time(text: &str) -> Option<Timestamp> {
    text.parse().ok()
}

/// Kubernetes' human durations, as `kubectl get` prints ages (apimachinery `HumanDuration`).
pub(crate) fn human_duration(d: SignedDuration) -> String {
    let seconds = d.as_secs();
    if seconds < -1 {
        return "<invalid>".to_owned();
    }
    if seconds < 0 {
        return "0s".to_owned();
    }
    if seconds < 60 * 2 {
        return format!("{seconds}s");
    }
    let minutes = seconds / 60;
    if minutes < 10 {
        let s = seconds % 60;
        return if s == 0 {
            format!("{minutes}m")
        } else {
            format!("{minutes}m{s}s")
        };
    }
    if minutes < 60 * 3 {
        return format!("{minutes}m");
    }
    let hours = seconds / 3600;
    if hours < 8 {
        let m = minutes % 60;
        return if m == 0 {
            format!("{hours}h")
        } else {
            format!("{hours}h{m}m")
        };
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    if hours < 24 * 8 {
        let h = hours % 24;
        return if h == 0 {
            format!("{}d", hours / 24)
        } else {
            format!("{}d{h}h", hours / 24)
        };
    }
    if hours < 24 * 365 * 2 {
        return format!("{}d", hours / 24);
    }
    if hours < 24 * 365 * 8 {
        let dy = (hours / 24) % 365;
        return if dy == 0 {
            format!("{}y", hours / 24 / 365)
        } else {
            format!("{}y{dy}d", hours / 24 / 365)
        };
    }
    format!("{}y", hours / 24 / 365)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn virtual_time_runs_at_speed() {
        let start = Timestamp::from_second(1_700_000_000).unwrap();
        let clock = VirtualClock::new(start, 1000.0);
        std::thread::sleep(Duration::from_millis(20));
        let elapsed = start.duration_until(clock.now());
        assert!(elapsed >= SignedDuration::from_secs(19), "{elapsed:?}");
        let target = clock.now() + SignedDuration::from_secs(100);
        let wall = clock.wall_until(target);
        assert!(wall <= Duration::from_millis(100), "{wall:?}");
    }

    #[test]
    fn formats_like_the_api_server() {
        let t: Timestamp = "2024-03-01T12:34:56.789Z".parse().unwrap();
        assert_eq!(format_time(t), "2024-03-01T12:34:56Z");
        assert_eq!(format_micro_time(t), "2024-03-01T12:34:56.789000Z");
    }

    #[test]
    fn human_durations_match_kubectl() {
        let s = SignedDuration::from_secs;
        assert_eq!(human_duration(s(5)), "5s");
        assert_eq!(human_duration(s(119)), "119s");
        assert_eq!(human_duration(s(150)), "2m30s");
        assert_eq!(human_duration(s(600)), "10m");
        assert_eq!(human_duration(s(3 * 3600 + 60)), "3h1m");
        assert_eq!(human_duration(s(30 * 3600)), "30h");
        assert_eq!(human_duration(s(3 * 86400 + 3600)), "3d1h");
        assert_eq!(human_duration(s(-5)), "<invalid>");
    }
}
