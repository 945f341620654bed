//! CronJob schedules: the five-field cron syntax (with ranges, steps, lists, month and weekday
//! names, and the `@hourly`-style macros) evaluated in UTC.
//!
//! Written here rather than taken from a crate: the cron crates on crates.io either use the
//! six/seven-field Quartz syntax or are built on chrono or jiff 0.2 types, and the simulator
//! needs only "the next minute matching these sets" on its own clock (about a hundred lines).

use jiff::civil::DateTime;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp, ToSpan as _};

/// A parsed schedule: the allowed values of each field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Schedule {
    minutes: Vec<bool>,
    hours: Vec<bool>,
    days: Vec<bool>,
    months: Vec<bool>,
    weekdays: Vec<bool>,
    days_restricted: bool,
    weekdays_restricted: bool,
}

const MONTHS: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];
const WEEKDAYS: [&str; 7] = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];

fn parse_value(text: &str, names: &[&str], offset: u32) -> Option<u32> {
    if let Ok(n) = text.parse() {
        return Some(n);
    }
    let lower = text.to_ascii_lowercase();
    names
        .iter()
        .position(|n| *n == lower)
        .map(|i| u32::try_from(i).unwrap_or(0) + offset)
}

fn parse_field(
    text: &str,
    min: u32,
    max: u32,
    names: &[&str],
    name_offset: u32,
    what: &str,
) -> Result<(Vec<bool>, bool), String> {
    let mut allowed = vec![false; (max + 1) as usize];
    for part in text.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((r, s)) => (
                r,
                s.parse::<u32>()
                    .map_err(|_| format!("invalid step {s:?} in the {what} field"))?,
            ),
            None => (part, 1),
        };
        if step == 0 {
            return Err(format!("a step of zero in the {what} field"));
        }
        let (lo, hi) = if range == "*" || range == "?" {
            (min, max)
        } else if let Some((a, b)) = range.split_once('-') {
            let a = parse_value(a, names, name_offset)
                .ok_or_else(|| format!("invalid value {a:?} in the {what} field"))?;
            let b = parse_value(b, names, name_offset)
                .ok_or_else(|| format!("invalid value {b:?} in the {what} field"))?;
            (a, b)
        } else {
            let v = parse_value(range, names, name_offset)
                .ok_or_else(|| format!("invalid value {range:?} in the {what} field"))?;
            (v, if part.contains('/') { max } else { v })
        };
        if lo < min || hi > max || lo > hi {
            return Err(format!(
                "{part:?} is out of range {min}-{max} in the {what} field"
            ));
        }
        let mut v = lo;
        while v <= hi {
            allowed[v as usize] = true;
            v += step;
        }
    }
    // as in Vixie cron: a field starting with '*' does not restrict the day
    let restricted = !(text.starts_with('*') || text == "?");
    Ok((allowed, restricted))
}

impl Schedule {
    pub(crate) fn parse(text: &str) -> Result<Schedule, String> {
        let text = text.trim();
        if text.starts_with("TZ=") || text.starts_with("CRON_TZ=") {
            return Err(
                "cannot use TZ or CRON_TZ in schedule, use timeZone field instead".to_owned(),
            );
        }
        let expanded = match text {
            "@yearly" | "@annually" => "0 0 1 1 *",
            "@monthly" => "0 0 1 * *",
            "@weekly" => "0 0 * * 0",
            "@daily" | "@midnight" => "0 0 * * *",
            "@hourly" => "0 * * * *",
            other => other,
        };
        let fields: Vec<&str> = expanded.split_whitespace().collect();
        if fields.len() != 5 {
            return Err(format!(
                "expected exactly 5 fields, found {}: {text:?}",
                fields.len()
            ));
        }
        let (minutes, _) = parse_field(fields[0], 0, 59, &[], 0, "minute")?;
        let (hours, _) = parse_field(fields[1], 0, 23, &[], 0, "hour")?;
        let (days, days_restricted) = parse_field(fields[2], 1, 31, &[], 0, "day of month")?;
        let (months, _) = parse_field(fields[3], 1, 12, &MONTHS, 1, "month")?;
        let (mut weekdays, weekdays_restricted) =
            parse_field(fields[4], 0, 7, &WEEKDAYS, 0, "day of week")?;
        if weekdays[7] {
            weekdays[0] = true;
        }
        Ok(Schedule {
            minutes,
            hours,
            days,
            months,
            weekdays,
            days_restricted,
            weekdays_restricted,
        })
    }

    fn day_matches(&self, dt: DateTime) -> bool {
        let dom = self.days[dt.day() as usize];
        let dow = self.weekdays[dt.weekday().to_sunday_zero_offset() as usize];
        match (self.days_restricted, self.weekdays_restricted) {
            (true, true) => dom || dow,
            (true, false) => dom,
            (false, true) => dow,
            (false, false) => true,
        }
    }

    /// The first matching minute strictly after `after`, within five years.
    pub(crate) fn next_after(&self, after: Timestamp) -> Option<Timestamp> {
        let start = after
            .checked_add(SignedDuration::from_secs(
                60 - after.as_second().rem_euclid(60),
            ))
            .ok()?;
        let mut dt = TimeZone::UTC.to_datetime(start);
        let limit = dt.checked_add(5.years()).ok()?;
        while dt < limit {
            // skip to the start of the next month, day, hour or minute that may match
            dt = if !self.months[dt.month() as usize] {
                let next = dt.first_of_month().checked_add(1.month()).ok()?;
                next.with().hour(0).minute(0).build().ok()?
            } else if !self.day_matches(dt) {
                let next = dt.checked_add(1.day()).ok()?;
                next.with().hour(0).minute(0).build().ok()?
            } else if !self.hours[dt.hour() as usize] {
                let next = dt.checked_add(1.hour()).ok()?;
                next.with().minute(0).build().ok()?
            } else if !self.minutes[dt.minute() as usize] {
                dt.checked_add(1.minute()).ok()?
            } else {
                return TimeZone::UTC.to_timestamp(dt).ok();
            };
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    #[test]
    fn next_times() {
        let every5 = Schedule::parse("*/5 * * * *").unwrap();
        assert_eq!(
            every5.next_after(ts("2024-01-01T00:02:30Z")),
            Some(ts("2024-01-01T00:05:00Z"))
        );
        assert_eq!(
            every5.next_after(ts("2024-01-01T00:05:00Z")),
            Some(ts("2024-01-01T00:10:00Z"))
        );
        let daily = Schedule::parse("@daily").unwrap();
        assert_eq!(
            daily.next_after(ts("2024-01-01T10:00:00Z")),
            Some(ts("2024-01-02T00:00:00Z"))
        );
        let weekdays = Schedule::parse("30 9 * * mon-fri").unwrap();
        // 2024-01-06 is a Saturday
        assert_eq!(
            weekdays.next_after(ts("2024-01-06T00:00:00Z")),
            Some(ts("2024-01-08T09:30:00Z"))
        );
        let feb = Schedule::parse("0 0 29 feb *").unwrap();
        assert_eq!(
            feb.next_after(ts("2024-03-01T00:00:00Z")),
            Some(ts("2028-02-29T00:00:00Z"))
        );
    }

    #[test]
    fn rejects_bad_schedules() {
        for bad in [
            "* * * *",
            "60 * * * *",
            "*/0 * * * *",
            "TZ=UTC * * * * *",
            "a b c d e",
        ] {
            assert!(Schedule::parse(bad).is_err(), "{bad}");
        }
    }
}
