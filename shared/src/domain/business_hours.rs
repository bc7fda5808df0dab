//! A line's business hours (docs/configuration.md, docs/using.md): an IANA time zone plus weekly opening ranges, used to
//! send a customer the "we're closed" auto-reply and to say when the business opens again.
//!
//! Ranges are local civil (wall-clock) times of the zone, so hours follow DST the way a person
//! reads them: "09:00–17:30" is 09:00–17:30 local in both summer and winter, and a range that
//! falls in a spring-forward gap simply doesn't occur that day. The zone database is compiled in
//! (jiff's `tzdb-bundle-always`) because Lambda images have no `/usr/share/zoneinfo`.
//!
//! ```json
//! "business_hours": {
//!   "time_zone": "America/New_York",
//!   "weekly": [
//!     { "days": ["mon", "tue", "wed", "thu", "fri"], "open": "09:00", "close": "17:30" },
//!     { "days": ["fri"], "open": "22:00", "close": "02:00" }
//!   ]
//! }
//! ```
//!
//! - `days`: non-empty, no repeats, only `mon` `tue` `wed` `thu` `fri` `sat` `sun` (strict: no
//!   full names or capitals, so a config has one spelling).
//! - `open`, `close`: `HH:MM`, two digits each, 24-hour; `close` may be `24:00`, `open` may not.
//!   The range is `[open, close)`: open at `open`, closed at `close`. `close < open` runs past
//!   midnight into the next day; `open == close` is rejected as ambiguous (nothing or all day).
//! - `weekly`: non-empty (a line without hours omits `business_hours`). Ranges may overlap or
//!   touch; the business is open when any range covers the local time.

use std::fmt;

use jiff::civil::{DateTime, Weekday};
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp, ZonedDateTime};
use serde::de::Error as _;
use serde::{Deserialize, Deserializer};

const DAY_MINUTES: i64 = 24 * 60;
const WEEK_MINUTES: i64 = 7 * DAY_MINUTES;
const NANOS_PER_MINUTE: i64 = 60_000_000_000;
const WEEK_NANOS: i64 = WEEK_MINUTES * NANOS_PER_MINUTE;

/// How many constant-offset stretches of the zone `next_opening` walks through before giving
/// up. Real zones change offset at most a few times a year and any stretch longer than a week
/// contains an opening, so this bound is never reached; it only keeps the loop finite.
const MAX_OFFSET_STRETCHES: usize = 64;

/// When a line answers: parsed from the `business_hours` object of a line (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(from = "BusinessHoursRaw")]
pub struct BusinessHours {
    zone: Zone,
    /// The union of all ranges as sorted, disjoint, non-touching `[start, end)` minutes of the
    /// local week (Monday 00:00 = 0, Sunday 24:00 = `WEEK_MINUTES`).
    spans: Vec<(i64, i64)>,
    /// Minutes of the local week where closed turns into open: the span starts, except a
    /// Monday 00:00 start that merely continues a span ending Sunday 24:00. Empty when open
    /// around the clock.
    openings: Vec<i64>,
}

impl BusinessHours {
    /// Whether the business is open at `at`, judged by the zone's local wall-clock time then.
    pub fn is_open(&self, at: Timestamp) -> bool {
        let local = week_nanos(self.zone.tz.to_datetime(at));
        self.spans.iter().any(|&(start, end)| start * NANOS_PER_MINUTE <= local && local < end * NANOS_PER_MINUTE)
    }

    /// The first instant strictly after `at` at which the business goes from closed to open
    /// (for "we open again Monday 09:00"), in the line's zone. `None` when it never closes, so
    /// never opens (e.g. every day `00:00`–`24:00`).
    ///
    /// While the zone's UTC offset stays the same, local time advances with real time, so the
    /// next opening in such a stretch is plain modular arithmetic on the local week; where the
    /// offset changes (DST), the change itself may open the business (local time jumping into a
    /// range), and openings whose wall time is skipped don't happen.
    pub fn next_opening(&self, at: Timestamp) -> Option<ZonedDateTime> {
        if self.openings.is_empty() {
            return None;
        }
        let tz = &self.zone.tz;
        let mut transitions = tz.following(at);
        let mut from = at;
        for stretch in 0..MAX_OFFSET_STRETCHES {
            let until = transitions.next().map(|t| t.timestamp());
            // `from` is an offset change: opening right there if the jump lands in open time.
            if stretch > 0
                && self.is_open(from)
                && from.checked_sub(SignedDuration::from_nanos(1)).is_ok_and(|b| !self.is_open(b))
            {
                return Some(from.to_zoned_datetime(tz.clone()));
            }
            let local = week_nanos(tz.to_datetime(from));
            // A delta of zero is `from` itself: excluded (not after `at`, or handled above).
            let delta = self
                .openings
                .iter()
                .map(|&opening| match (opening * NANOS_PER_MINUTE - local).rem_euclid(WEEK_NANOS) {
                    0 => WEEK_NANOS,
                    d => d,
                })
                .min()?;
            let candidate = from.checked_add(SignedDuration::from_nanos(delta)).ok()?;
            match until {
                Some(change) if candidate >= change => from = change,
                _ => return Some(candidate.to_zoned_datetime(tz.clone())),
            }
        }
        None
    }

    /// The zone's IANA name, canonical spelling (`America/New_York`).
    pub fn time_zone_name(&self) -> &str {
        &self.zone.name
    }
}

/// Nanoseconds since Monday 00:00 of the week of a local civil time.
fn week_nanos(local: DateTime) -> i64 {
    let day = i64::from(local.weekday().to_monday_zero_offset());
    let time = local.time();
    let minutes = day * DAY_MINUTES + i64::from(time.hour()) * 60 + i64::from(time.minute());
    minutes * NANOS_PER_MINUTE + i64::from(time.second()) * 1_000_000_000 + i64::from(time.subsec_nanosecond())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BusinessHoursRaw {
    time_zone: Zone,
    #[serde(deserialize_with = "non_empty_weekly")]
    weekly: Vec<WeeklyRange>,
}

impl From<BusinessHoursRaw> for BusinessHours {
    fn from(raw: BusinessHoursRaw) -> Self {
        let mut pieces = Vec::new();
        for range in &raw.weekly {
            let open = i64::from(range.open.0);
            let close = i64::from(range.close.0);
            let length = if close > open { close - open } else { close + DAY_MINUTES - open };
            for day in &range.days {
                let start = i64::from(day.weekday().to_monday_zero_offset()) * DAY_MINUTES + open;
                let end = start + length;
                // Sunday's overnight range wraps into Monday of the same (repeating) week.
                if end <= WEEK_MINUTES {
                    pieces.push((start, end));
                } else {
                    pieces.push((start, WEEK_MINUTES));
                    pieces.push((0, end - WEEK_MINUTES));
                }
            }
        }
        pieces.sort_unstable();
        let mut spans: Vec<(i64, i64)> = Vec::new();
        for (start, end) in pieces {
            match spans.last_mut() {
                Some(last) if start <= last.1 => last.1 = last.1.max(end),
                _ => spans.push((start, end)),
            }
        }
        let wraps = spans.first().is_some_and(|s| s.0 == 0) && spans.last().is_some_and(|s| s.1 == WEEK_MINUTES);
        let openings = spans.iter().map(|s| s.0).filter(|&start| !(wraps && start == 0)).collect();
        Self { zone: raw.time_zone, spans, openings }
    }
}

fn non_empty_weekly<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<WeeklyRange>, D::Error> {
    let weekly = Vec::<WeeklyRange>::deserialize(deserializer)?;
    if weekly.is_empty() {
        return Err(D::Error::custom(
            "at least one range is required (omit `business_hours` for a line without hours)",
        ));
    }
    Ok(weekly)
}

/// An IANA zone, looked up once at parse time; compared and shown by its canonical name.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
struct Zone {
    name: String,
    tz: TimeZone,
}

impl TryFrom<String> for Zone {
    type Error = String;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        let unknown = || format!("unknown IANA time zone `{value}` (e.g. `America/New_York`)");
        let tz = TimeZone::get(&value).map_err(|_| unknown())?;
        // `Etc/Unknown` resolves but has no IANA name: it is a placeholder, not a zone.
        let name = tz.iana_name().ok_or_else(unknown)?.to_owned();
        Ok(Self { name, tz })
    }
}

impl fmt::Debug for Zone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Zone").field(&self.name).finish()
    }
}

#[derive(Deserialize)]
#[serde(try_from = "WeeklyRangeRaw")]
struct WeeklyRange {
    days: Vec<Day>,
    open: ClockTime,
    close: ClockTime,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WeeklyRangeRaw {
    #[serde(deserialize_with = "distinct_days")]
    days: Vec<Day>,
    #[serde(deserialize_with = "opening_time")]
    open: ClockTime,
    close: ClockTime,
}

impl TryFrom<WeeklyRangeRaw> for WeeklyRange {
    type Error = String;
    fn try_from(raw: WeeklyRangeRaw) -> Result<Self, Self::Error> {
        if raw.open == raw.close {
            return Err("`open` and `close` are equal: use 00:00 to 24:00 for a whole day".to_owned());
        }
        Ok(Self { days: raw.days, open: raw.open, close: raw.close })
    }
}

fn distinct_days<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<Day>, D::Error> {
    let days = Vec::<Day>::deserialize(deserializer)?;
    if days.is_empty() {
        return Err(D::Error::custom("at least one day is required"));
    }
    if days.iter().enumerate().any(|(i, day)| days[..i].contains(day)) {
        return Err(D::Error::custom("a day is listed twice"));
    }
    Ok(days)
}

fn opening_time<'de, D: Deserializer<'de>>(deserializer: D) -> Result<ClockTime, D::Error> {
    let open = ClockTime::deserialize(deserializer)?;
    if open.0 == ClockTime::END_OF_DAY {
        return Err(D::Error::custom("must be before 24:00 (a range opening at midnight opens at 00:00)"));
    }
    Ok(open)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Day {
    Mon,
    Tue,
    Wed,
    Thu,
    Fri,
    Sat,
    Sun,
}

impl Day {
    fn weekday(self) -> Weekday {
        match self {
            Day::Mon => Weekday::Monday,
            Day::Tue => Weekday::Tuesday,
            Day::Wed => Weekday::Wednesday,
            Day::Thu => Weekday::Thursday,
            Day::Fri => Weekday::Friday,
            Day::Sat => Weekday::Saturday,
            Day::Sun => Weekday::Sunday,
        }
    }
}

/// A wall-clock time as minutes since midnight, `00:00` to `24:00` inclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
struct ClockTime(u16);

impl ClockTime {
    const END_OF_DAY: u16 = 24 * 60;

    fn parse(input: &str) -> Result<Self, String> {
        let invalid = || "must be HH:MM (24-hour, 00:00 to 24:00)".to_owned();
        let b = input.as_bytes();
        if b.len() != 5 || b[2] != b':' || ![b[0], b[1], b[3], b[4]].iter().all(u8::is_ascii_digit) {
            return Err(invalid());
        }
        let hour = u16::from(b[0] - b'0') * 10 + u16::from(b[1] - b'0');
        let minute = u16::from(b[3] - b'0') * 10 + u16::from(b[4] - b'0');
        let minutes = hour * 60 + minute;
        if minute >= 60 || minutes > Self::END_OF_DAY {
            return Err(invalid());
        }
        Ok(Self(minutes))
    }
}

impl TryFrom<String> for ClockTime {
    type Error = String;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

#[cfg(test)]
mod tests {
    use jiff::civil;
    use proptest::prelude::*;

    use super::*;

    const EXAMPLE: &str = r#"{
        "time_zone": "America/New_York",
        "weekly": [
            { "days": ["mon", "tue", "wed", "thu", "fri"], "open": "09:00", "close": "17:30" },
            { "days": ["sat"], "open": "10:00", "close": "14:00" },
            { "days": ["fri"], "open": "22:00", "close": "02:00" }
        ]
    }"#;

    fn parse(json: &str) -> Result<BusinessHours, (String, String)> {
        let de = &mut serde_json::Deserializer::from_str(json);
        serde_path_to_error::deserialize(de).map_err(|e| (e.path().to_string(), e.inner().to_string()))
    }

    fn hours(zone: &str, weekly: &str) -> BusinessHours {
        parse(&format!(r#"{{ "time_zone": "{zone}", "weekly": [{weekly}] }}"#)).unwrap()
    }

    /// The instant of a local wall time in the schedule's zone (earlier one if ambiguous).
    fn local(hours: &BusinessHours, wall: &str) -> Timestamp {
        let tz = TimeZone::get(hours.time_zone_name()).unwrap();
        wall.parse::<civil::DateTime>().unwrap().to_zoned_datetime(tz).unwrap().timestamp()
    }

    fn utc(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn wall(z: &ZonedDateTime) -> String {
        z.datetime().strftime("%a %Y-%m-%dT%H:%M").to_string()
    }

    #[test]
    fn parses_the_spec_example() {
        let h = parse(EXAMPLE).unwrap();
        assert_eq!(h.time_zone_name(), "America/New_York");
        // Mon–Thu 09:00–17:30, Fri 09:00–17:30 and 22:00–Sat 02:00, Sat 10:00–14:00.
        let spans: Vec<_> = h.spans.iter().map(|&(s, e)| (s / 60, e / 60)).collect();
        assert_eq!(spans, [(9, 17), (33, 41), (57, 65), (81, 89), (105, 113), (118, 122), (130, 134)]);
    }

    #[test]
    fn zone_names_are_canonicalized_and_case_insensitive() {
        assert_eq!(
            hours("asia/KOLKATA", r#"{"days":["mon"],"open":"09:00","close":"10:00"}"#).time_zone_name(),
            "Asia/Kolkata"
        );
        assert_eq!(hours("UTC", r#"{"days":["mon"],"open":"09:00","close":"10:00"}"#).time_zone_name(), "UTC");
    }

    #[test]
    fn errors_name_the_field() {
        let cases = [
            (EXAMPLE.replace("\"sat\"", "\"saturday\""), "weekly[1].days[0]", "unknown variant"),
            (EXAMPLE.replace("\"tue\"", "\"Tue\""), "weekly[0].days[1]", "unknown variant"),
            (EXAMPLE.replace("\"10:00\"", "\"9:00\""), "weekly[1].open", "HH:MM"),
            (EXAMPLE.replace("\"14:00\"", "\"24:01\""), "weekly[1].close", "HH:MM"),
            (EXAMPLE.replace("\"14:00\"", "\"13:60\""), "weekly[1].close", "HH:MM"),
            (EXAMPLE.replace("\"14:00\"", "\"2pm\""), "weekly[1].close", "HH:MM"),
            (EXAMPLE.replace("\"10:00\"", "\"24:00\""), "weekly[1].open", "before 24:00"),
            (EXAMPLE.replace("\"14:00\"", "14"), "weekly[1].close", "expected a string"),
            (EXAMPLE.replace("America/New_York", "Mars/Olympus"), "time_zone", "unknown IANA time zone `Mars/Olympus`"),
            (EXAMPLE.replace("America/New_York", "Etc/Unknown"), "time_zone", "unknown IANA time zone"),
            (
                EXAMPLE.replace("\"close\": \"14:00\"", "\"close\": \"14:00\", \"note\": 1"),
                "weekly[1].note",
                "unknown field",
            ),
            (EXAMPLE.replace("\"weekly\"", "\"weakly\""), "weakly", "unknown field"),
            (EXAMPLE.replace("\"14:00\"", "\"10:00\""), "weekly[1]", "equal"),
            (EXAMPLE.replace("[\"sat\"]", "[]"), "weekly[1].days", "at least one day"),
            (EXAMPLE.replace("[\"sat\"]", "[\"sat\", \"sat\"]"), "weekly[1].days", "listed twice"),
            (r#"{ "time_zone": "UTC", "weekly": [] }"#.to_owned(), "weekly", "at least one range"),
            (EXAMPLE.replace("\"time_zone\": \"America/New_York\",", ""), ".", "missing field `time_zone`"),
        ];
        for (json, path, reason) in cases {
            let (got_path, got_reason) = parse(&json).unwrap_err();
            assert_eq!(got_path, path, "{got_reason}");
            assert!(got_reason.contains(reason), "{path}: {got_reason}");
        }
    }

    #[test]
    fn open_at_open_closed_at_close_on_weekdays() {
        let h = parse(EXAMPLE).unwrap();
        // 2025-06-06 is a Friday, in EDT.
        for (wall, open) in [
            ("2025-06-06T08:59:59", false),
            ("2025-06-06T09:00", true),
            ("2025-06-06T12:00", true),
            ("2025-06-06T17:29:59.999", true),
            ("2025-06-06T17:30", false),
            ("2025-06-07T09:59", false),
            ("2025-06-07T10:00", true),
            ("2025-06-07T14:00", false),
            ("2025-06-08T12:00", false),
            ("2025-06-09T09:00", true),
        ] {
            assert_eq!(h.is_open(local(&h, wall)), open, "{wall}");
        }
        assert!(h.is_open(utc("2025-06-06T13:00:00Z")), "09:00 EDT is 13:00 UTC");
        assert!(!h.is_open(utc("2025-06-06T12:59:00Z")));
    }

    #[test]
    fn overnight_range_runs_into_the_next_day() {
        let h = parse(EXAMPLE).unwrap();
        for (wall, open) in [
            ("2025-06-06T21:59", false),
            ("2025-06-06T23:00", true),
            ("2025-06-07T00:00", true),
            ("2025-06-07T01:59", true),
            ("2025-06-07T02:00", false),
            ("2025-06-05T23:00", false),
            ("2025-06-06T01:00", false),
        ] {
            assert_eq!(h.is_open(local(&h, wall)), open, "{wall}");
        }
    }

    #[test]
    fn midnight_closes_and_sunday_nights_wrap_into_monday() {
        let h = hours(
            "UTC",
            r#"{"days":["sun"],"open":"12:00","close":"24:00"},{"days":["sat"],"open":"23:00","close":"00:00"}"#,
        );
        assert!(h.is_open(utc("2025-06-08T23:59:59Z")), "Sunday before midnight");
        assert!(!h.is_open(utc("2025-06-09T00:00:00Z")), "Monday 00:00");
        assert!(h.is_open(utc("2025-06-07T23:30:00Z")), "Saturday 23:30");
        assert!(!h.is_open(utc("2025-06-08T00:00:00Z")), "`00:00` close ends at midnight");

        let h = hours("UTC", r#"{"days":["sun"],"open":"22:00","close":"01:00"}"#);
        assert!(h.is_open(utc("2025-06-09T00:30:00Z")), "Monday 00:30, from Sunday's range");
        assert!(!h.is_open(utc("2025-06-09T01:00:00Z")));
        assert_eq!(wall(&h.next_opening(utc("2025-06-09T00:30:00Z")).unwrap()), "Sun 2025-06-15T22:00");
    }

    #[test]
    fn the_local_weekday_decides_not_the_utc_one() {
        // Monday 09:00 in Kolkata (+05:30) is Monday 03:30 UTC.
        let h = hours("Asia/Kolkata", r#"{"days":["mon"],"open":"09:00","close":"10:00"}"#);
        assert!(h.is_open(utc("2025-06-02T03:30:00Z")));
        assert!(!h.is_open(utc("2025-06-02T03:29:00Z")));
        assert!(!h.is_open(utc("2025-06-02T09:30:00Z")), "09:30 on a UTC Monday is 15:00 local");

        // Monday 09:00 in Auckland (NZST, +12) is Sunday 21:00 UTC.
        let h = hours("Pacific/Auckland", r#"{"days":["mon"],"open":"09:00","close":"17:00"}"#);
        assert!(h.is_open(utc("2025-06-08T21:00:00Z")), "a UTC Sunday");
        assert!(!h.is_open(utc("2025-06-08T20:59:00Z")));
        assert!(!h.is_open(utc("2025-06-09T06:00:00Z")), "a UTC Monday, but 18:00 local");
        // In NZDT (+13) the same wall time is an hour earlier in UTC.
        assert!(h.is_open(utc("2025-12-07T20:00:00Z")));
        assert!(!h.is_open(utc("2025-12-07T19:59:00Z")));
    }

    #[test]
    fn spring_forward_skips_ranges_in_the_gap() {
        // 2025-03-09 (Sunday) in New York: 02:00 EST becomes 03:00 EDT (07:00 UTC).
        let h = hours("America/New_York", r#"{"days":["sun"],"open":"02:00","close":"03:00"}"#);
        assert!(!h.is_open(utc("2025-03-09T06:59:59Z")), "01:59:59 EST");
        assert!(!h.is_open(utc("2025-03-09T07:00:00Z")), "03:00 EDT");
        assert!(h.is_open(utc("2025-03-02T07:00:00Z")), "02:00 EST the Sunday before");
        let next = h.next_opening(utc("2025-03-08T12:00:00Z")).unwrap();
        assert_eq!(next.to_string(), "2025-03-16T02:00:00-04:00[America/New_York]");

        // A range straddling the gap opens at its start and runs on after the jump.
        let h = hours("America/New_York", r#"{"days":["sun"],"open":"01:30","close":"03:30"}"#);
        assert!(h.is_open(utc("2025-03-09T06:30:00Z")), "01:30 EST");
        assert!(h.is_open(utc("2025-03-09T07:29:00Z")), "03:29 EDT");
        assert!(!h.is_open(utc("2025-03-09T07:30:00Z")), "03:30 EDT");

        // A range starting in the gap opens when the jump lands inside it.
        let h = hours("America/New_York", r#"{"days":["sun"],"open":"02:30","close":"04:00"}"#);
        assert!(!h.is_open(utc("2025-03-09T06:59:59Z")));
        assert!(h.is_open(utc("2025-03-09T07:00:00Z")));
        let next = h.next_opening(utc("2025-03-09T05:00:00Z")).unwrap();
        assert_eq!(next.to_string(), "2025-03-09T03:00:00-04:00[America/New_York]");

        // Weekday hours are the same wall time on both sides of the change.
        let h = parse(EXAMPLE).unwrap();
        assert!(h.is_open(utc("2025-03-07T14:00:00Z")), "Friday 09:00 EST");
        assert!(!h.is_open(utc("2025-03-10T12:30:00Z")), "Monday 08:30 EDT");
        assert!(h.is_open(utc("2025-03-10T13:00:00Z")), "Monday 09:00 EDT");
        let next = h.next_opening(local(&h, "2025-03-08T15:00")).unwrap();
        assert_eq!(next.to_string(), "2025-03-10T09:00:00-04:00[America/New_York]");
    }

    #[test]
    fn fall_back_repeats_the_hour() {
        // 2025-11-02 (Sunday) in New York: 02:00 EDT (06:00 UTC) becomes 01:00 EST.
        let h = hours("America/New_York", r#"{"days":["sun"],"open":"01:00","close":"01:30"}"#);
        assert!(h.is_open(utc("2025-11-02T05:00:00Z")), "01:00 EDT");
        assert!(!h.is_open(utc("2025-11-02T05:30:00Z")), "01:30 EDT");
        assert!(h.is_open(utc("2025-11-02T06:00:00Z")), "01:00 EST, the second time round");
        assert!(!h.is_open(utc("2025-11-02T06:30:00Z")), "01:30 EST");
        let next = h.next_opening(utc("2025-11-02T05:45:00Z")).unwrap();
        assert_eq!(next.to_string(), "2025-11-02T01:00:00-05:00[America/New_York]");
        assert_eq!(next.timestamp(), utc("2025-11-02T06:00:00Z"));

        // A range covering the whole repeated hour doesn't reopen at the change.
        let h = hours("America/New_York", r#"{"days":["sun"],"open":"00:30","close":"03:00"}"#);
        assert!(h.is_open(utc("2025-11-02T06:00:00Z")));
        let next = h.next_opening(utc("2025-11-02T05:00:00Z")).unwrap();
        assert_eq!(next.to_string(), "2025-11-09T00:30:00-05:00[America/New_York]");

        let h = parse(EXAMPLE).unwrap();
        assert!(h.is_open(utc("2025-11-03T14:00:00Z")), "Monday 09:00 EST");
        assert!(!h.is_open(utc("2025-11-03T13:30:00Z")), "Monday 08:30 EST");
        let next = h.next_opening(local(&h, "2025-11-01T15:00")).unwrap();
        assert_eq!(next.to_string(), "2025-11-03T09:00:00-05:00[America/New_York]");
    }

    #[test]
    fn next_opening_is_the_next_closed_to_open_change() {
        let h = parse(EXAMPLE).unwrap();
        let next = |at: &str| h.next_opening(local(&h, at)).map(|z| wall(&z));
        assert_eq!(next("2025-06-06T18:00").as_deref(), Some("Fri 2025-06-06T22:00"), "Friday evening");
        assert_eq!(next("2025-06-07T03:00").as_deref(), Some("Sat 2025-06-07T10:00"));
        assert_eq!(next("2025-06-07T01:00").as_deref(), Some("Sat 2025-06-07T10:00"), "inside the overnight range");
        assert_eq!(next("2025-06-07T12:00").as_deref(), Some("Mon 2025-06-09T09:00"), "inside Saturday's range");
        assert_eq!(next("2025-06-09T09:00").as_deref(), Some("Tue 2025-06-10T09:00"), "strictly after an opening");
        assert_eq!(next("2025-06-09T08:59:59.999999999").as_deref(), Some("Mon 2025-06-09T09:00"));
        assert_eq!(
            h.next_opening(local(&h, "2025-06-07T12:00")).unwrap().time_zone(),
            &TimeZone::get("America/New_York").unwrap()
        );
    }

    #[test]
    fn touching_ranges_are_one_stretch_and_all_week_never_opens() {
        let h = hours(
            "UTC",
            r#"{"days":["sun"],"open":"20:00","close":"24:00"},{"days":["mon"],"open":"00:00","close":"01:00"}"#,
        );
        assert!(h.is_open(utc("2025-06-09T00:00:00Z")));
        let next = h.next_opening(utc("2025-06-08T21:00:00Z")).unwrap();
        assert_eq!(wall(&next), "Sun 2025-06-15T20:00", "Monday 00:00 continues Sunday's range");

        let all_week = r#"{"days":["mon","tue","wed","thu","fri","sat","sun"],"open":"00:00","close":"24:00"}"#;
        let h = hours("Europe/London", all_week);
        assert!(h.is_open(utc("2025-03-30T01:00:00Z")), "during London's spring-forward");
        assert!(h.is_open(utc("2025-06-09T00:00:00Z")));
        assert_eq!(h.next_opening(utc("2025-06-09T00:00:00Z")), None);

        // Open all week except Sunday 02:00–03:00: the only closed hour is skipped at the spring-forward.
        let h = hours(
            "America/New_York",
            r#"{"days":["mon","tue","wed","thu","fri","sat"],"open":"00:00","close":"24:00"},{"days":["sun"],"open":"00:00","close":"02:00"},{"days":["sun"],"open":"03:00","close":"24:00"}"#,
        );
        let next = h.next_opening(utc("2025-03-08T12:00:00Z")).unwrap();
        assert_eq!(next.to_string(), "2025-03-16T03:00:00-04:00[America/New_York]");
    }

    const ZONES: [&str; 10] = [
        "UTC",
        "America/New_York",
        "Europe/London",
        "Pacific/Auckland",
        "Asia/Kolkata",
        "Asia/Kathmandu",
        "Australia/Lord_Howe",
        "America/Sao_Paulo",
        "Pacific/Apia",
        "America/St_Johns",
    ];
    const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

    /// A range as generated: a day mask (bit 0 = Monday) and open/close in minutes.
    type RawRange = (u8, u16, u16);

    fn clock(minutes: u16) -> String {
        format!("{:02}:{:02}", minutes / 60, minutes % 60)
    }

    fn schedule_json(zone: &str, ranges: &[RawRange]) -> String {
        let weekly: Vec<String> = ranges
            .iter()
            .map(|&(mask, open, close)| {
                let days: Vec<String> =
                    (0..7).filter(|d| mask & (1 << d) != 0).map(|d| format!("\"{}\"", DAYS[d])).collect();
                format!(r#"{{"days":[{}],"open":"{}","close":"{}"}}"#, days.join(","), clock(open), clock(close))
            })
            .collect();
        format!(r#"{{"time_zone":"{zone}","weekly":[{}]}}"#, weekly.join(","))
    }

    /// The rule read literally: some range covers the local day and time, or yesterday's
    /// overnight range runs into today.
    fn brute_is_open(ranges: &[RawRange], tz: &TimeZone, at: Timestamp) -> bool {
        let local = tz.to_datetime(at);
        let today = usize::try_from(local.weekday().to_monday_zero_offset()).unwrap();
        let yesterday = (today + 6) % 7;
        let t = local.time();
        let now = (i64::from(t.hour()) * 60 + i64::from(t.minute())) * NANOS_PER_MINUTE
            + i64::from(t.second()) * 1_000_000_000
            + i64::from(t.subsec_nanosecond());
        ranges.iter().any(|&(mask, open, close)| {
            let (open, close) = (i64::from(open) * NANOS_PER_MINUTE, i64::from(close) * NANOS_PER_MINUTE);
            let on = |day: usize| mask & (1 << day) != 0;
            if close > open {
                on(today) && open <= now && now < close
            } else {
                (on(today) && now >= open) || (on(yesterday) && now < close)
            }
        })
    }

    fn range() -> impl Strategy<Value = RawRange> {
        // Quarter hours, so ranges often touch, overlap and meet DST changes.
        (1u8..128, 0u16..96, 0u16..=96).prop_map(|(mask, open, close)| (mask, open * 15, close * 15))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn is_open_and_next_opening_agree_with_brute_force(
            zone in 0..ZONES.len(),
            ranges in proptest::collection::vec(range(), 1..5),
            near_change in any::<bool>(),
            second in 946_684_800i64..2_208_988_800,
            nanos in 0i64..1_000_000_000,
            around in -10_000i64..10_000,
        ) {
            prop_assume!(ranges.iter().all(|&(_, open, close)| open != close));
            let h = parse(&schedule_json(ZONES[zone], &ranges)).unwrap();
            let tz = TimeZone::get(ZONES[zone]).unwrap();
            let mut at = Timestamp::from_second(second).unwrap() + SignedDuration::from_nanos(nanos);
            if near_change {
                // Within a week of an offset change, where the interesting cases are.
                if let Some(change) = tz.following(at).next() {
                    at = change.timestamp() + SignedDuration::from_mins(around) + SignedDuration::from_nanos(nanos);
                }
            }
            prop_assert_eq!(h.is_open(at), brute_is_open(&ranges, &tz, at));

            let nanosecond = SignedDuration::from_nanos(1);
            let opens_at = |t: Timestamp| brute_is_open(&ranges, &tz, t) && !brute_is_open(&ranges, &tz, t - nanosecond);
            // Every zone above has whole-minute offsets and changes, so openings fall on whole
            // UTC minutes: scan those after `at` for the first one, up to 30 days.
            let first_minute = Timestamp::from_second(at.as_second().div_euclid(60) * 60 + 60).unwrap();
            let brute = (0..30 * DAY_MINUTES).map(|k| first_minute + SignedDuration::from_mins(k)).find(|&t| opens_at(t));
            let next = h.next_opening(at);
            prop_assert_eq!(next.as_ref().map(|z| z.timestamp()), brute);
            if let Some(next) = next {
                let next = next.timestamp();
                prop_assert!(next > at);
                prop_assert!(h.is_open(next));
                let minute_before = next - SignedDuration::from_mins(1);
                prop_assert!(minute_before < at || !h.is_open(minute_before));
            }
        }
    }
}
