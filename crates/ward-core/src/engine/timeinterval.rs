//! Recurring time windows with Alertmanager's `time_intervals` semantics (its `timeinterval`
//! package): is an instant inside, and when does the next occurrence start and end.
//!
//! Time comes in as Unix milliseconds and is read on the wall clock of the interval's
//! `location` (UTC when absent). Every field present must match, one element of a field is
//! enough, and an absent field matches everything:
//!
//! - `times`: `[start, end)` in minutes of the day; `end` may be `24:00`, a window never wraps
//!   past midnight.
//! - `weekdays`: inclusive ranges, the week starting on Sunday (`monday:friday`, `sunday`).
//! - `days_of_month`: inclusive ranges, negative counting from the month's end (`-1` is the
//!   last day); a range starting after the month's last day is skipped, its end clamped to it.
//! - `months` (names or 1–12) and `years`: inclusive ranges.
//!
//! **Occurrences** are the maximal contiguous spans of instants inside: `Sun 02:00–04:00` gives
//! 02:00..04:00 each Sunday; an interval without `times` gives whole days, and adjacent days
//! merge (`Sat,Sun` is one span from Saturday 00:00 to Monday 00:00). In a [`TimeIntervals`]
//! list, spans of different intervals that touch merge too: `Mon–Fri 22:00–24:00` plus
//! `Tue–Sat 00:00–06:00` is one nightly span. A span is followed at most [`SEARCH_DAYS`] either
//! way and clipped there (an interval with no fields never ends).
//!
//! **Daylight saving time.** An occurrence is exactly the set of instants whose wall-clock time
//! is inside the window, so [`TimeInterval::contains`] and [`TimeInterval::current_or_next`]
//! never disagree. For a boundary in a repeated hour (autumn) or a skipped one (spring) this is
//! what jiff's `compatible` disambiguation gives in the usual cases: a start in a repeated hour
//! takes its first instance, and a window starting at a skipped 02:00 starts at the 03:00 that
//! follows. It departs from `compatible` only where that would contradict the wall clock: a
//! window starting at a skipped 02:30 starts at the transition (03:00, whose wall-clock time is
//! after 02:30), not at 03:30; a window ending at 02:30 in a repeated hour is left at the first
//! 02:30 and entered again at the second 02:00 (two occurrences), as Alertmanager's wall-clock
//! test would also say.
//!
//! **Compared with Alertmanager's parser** this one also takes three-letter names (`mon`, `jan`),
//! `H:MM`, and bare numbers in TOML (`years = [2026]`); it rejects what can only be a mistake:
//! empty lists (they would never match), months outside 1–12, years outside 1–9999, and `Local`
//! (the engine does not depend on the machine's zone). A zone is looked up once, when the
//! interval is built: jiff reads the system tzdb, or its bundled copy where there is none.

use std::fmt;
use std::str::FromStr;

use jiff::Timestamp;
use jiff::civil::{Date, DateTime};
use jiff::tz::{AmbiguousOffset, TimeZone};
use serde::{Deserialize, Serialize};

/// How far [`TimeInterval::current_or_next`] and friends search, and where long spans are clipped.
pub const SEARCH_DAYS: i64 = 400;

const DAY_MS: i64 = 86_400_000;
const HORIZON_MS: i64 = SEARCH_DAYS * DAY_MS;
/// Boundaries are computed a week of instants at a time: most searches end in the first chunk.
const CHUNK_MS: i64 = 7 * DAY_MS;
const MINUTES_PER_DAY: i16 = 24 * 60;

const WEEKDAYS: [&str; 7] = [
    "sunday",
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
];
const MONTHS: [&str; 12] = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
];

/// What is wrong with an interval, naming the field and the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TimeIntervalError {
    #[error(
        "times: {value:?} is not a time of day: write HH:MM from 00:00 to 23:59 (24:00 only as an end)"
    )]
    BadTime { value: String },
    #[error("times: the start {start} must be before the end {end}")]
    StartNotBeforeEnd { start: String, end: String },
    #[error(
        "times: {start}–{end} ends before it starts, and a window cannot cross midnight: split it in two windows, {start}–24:00 and 00:00–{end} on the next day"
    )]
    WrapsMidnight { start: String, end: String },
    #[error(
        "{field}: the list is empty and would never match: leave the field out to match always"
    )]
    EmptyList { field: &'static str },
    #[error("{field}: {value:?} is not a range: write one value or two joined by ':'")]
    BadRange { field: &'static str, value: String },
    #[error("weekdays: {value:?} is not a weekday: use sunday … saturday (or sun … sat, any case)")]
    UnknownWeekday { value: String },
    #[error("months: {value:?} is not a month: use january … december (or jan … dec) or 1 … 12")]
    UnknownMonth { value: String },
    #[error(
        "days_of_month: {value:?}: there is no day 0: days run 1 … 31, or -1 … -31 counting from the month's end"
    )]
    DayZero { value: String },
    #[error(
        "days_of_month: {value:?} is not a day of the month: use 1 … 31, or -1 … -31 counting from the month's end"
    )]
    BadDay { value: String },
    #[error(
        "days_of_month: {value:?}: a range that starts counting from the month's end must end so too"
    )]
    NegativeStartPositiveEnd { value: String },
    #[error("years: {value:?} is not a year from 1 to 9999")]
    BadYear { value: String },
    #[error("{field}: {value:?} starts after it ends{hint}")]
    Backwards {
        field: &'static str,
        value: String,
        hint: &'static str,
    },
    #[error("location: {value:?} is not a known IANA time zone (like Europe/Berlin or UTC){hint}")]
    UnknownZone { value: String, hint: &'static str },
    #[error("{input:?}: {why}")]
    ShortForm { input: String, why: String },
}

/// The Alertmanager YAML shape of one interval, as read from and written to configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TimeIntervalSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub times: Option<Vec<TimeRangeSpec>>,
    /// `monday:friday`, `sunday`: the week starts on Sunday.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weekdays: Option<Vec<String>>,
    /// `1:5`, `-3:-1`, `15` (or the number 15); negative counts from the month's end.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "texts_or_numbers"
    )]
    #[schemars(with = "Option<Vec<TextOrNumber>>")]
    pub days_of_month: Option<Vec<String>>,
    /// `may:august`, `1:3`, `december`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "texts_or_numbers"
    )]
    #[schemars(with = "Option<Vec<TextOrNumber>>")]
    pub months: Option<Vec<String>>,
    /// `2020:2022`, `2030`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "texts_or_numbers"
    )]
    #[schemars(with = "Option<Vec<TextOrNumber>>")]
    pub years: Option<Vec<String>>,
    /// An IANA zone such as `Europe/Berlin`; UTC when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
}

/// One `[start_time, end_time)` pair, `HH:MM` each.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TimeRangeSpec {
    pub start_time: String,
    pub end_time: String,
}

/// A range element written as text (`"1:5"`) or, for convenience in TOML, a bare number (`-1`).
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(untagged, expecting = "a range as text, like \"1:5\", or a number")]
enum TextOrNumber {
    Text(String),
    Number(i64),
}

fn texts_or_numbers<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Vec<String>>, D::Error> {
    let items = Option::<Vec<TextOrNumber>>::deserialize(deserializer)?;
    Ok(items.map(|items| {
        items
            .into_iter()
            .map(|item| match item {
                TextOrNumber::Text(text) => text,
                TextOrNumber::Number(n) => n.to_string(),
            })
            .collect()
    }))
}

/// A validated interval; see the module documentation for what it matches.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(try_from = "TimeIntervalSpec", into = "TimeIntervalSpec")]
pub struct TimeInterval {
    /// Minutes of the day, `[start, end)`.
    times: Option<Vec<(i16, i16)>>,
    /// 0 = Sunday.
    weekdays: Option<Vec<(i8, i8)>>,
    /// Negative counts from the month's end.
    days_of_month: Option<Vec<(i8, i8)>>,
    months: Option<Vec<(i8, i8)>>,
    years: Option<Vec<(i16, i16)>>,
    location: Location,
}

/// A zone and the name it was given by, which is what equality and serialisation use.
#[derive(Clone)]
struct Location {
    name: String,
    tz: TimeZone,
}

impl Location {
    fn utc() -> Self {
        Self {
            name: "UTC".to_owned(),
            tz: TimeZone::UTC,
        }
    }

    fn get(name: &str) -> Result<Self, TimeIntervalError> {
        let name = name.trim();
        if name.eq_ignore_ascii_case("utc") {
            return Ok(Self::utc());
        }
        let hint = if name.eq_ignore_ascii_case("local") {
            ": Ward does not use the machine's own zone, name it"
        } else {
            ""
        };
        match TimeZone::get(name) {
            Ok(tz) if hint.is_empty() => Ok(Self {
                name: tz.iana_name().unwrap_or(name).to_owned(),
                tz,
            }),
            _ => Err(TimeIntervalError::UnknownZone {
                value: name.to_owned(),
                hint,
            }),
        }
    }
}

impl PartialEq for Location {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

impl Eq for Location {}

impl fmt::Debug for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

/// One contiguous span inside an interval: `[start_ms, end_ms)` in Unix milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Occurrence {
    pub start_ms: i64,
    pub end_ms: i64,
}

impl Occurrence {
    pub fn contains(&self, at_ms: i64) -> bool {
        self.start_ms <= at_ms && at_ms < self.end_ms
    }
}

impl TimeInterval {
    /// Validates the Alertmanager-shaped spec.
    pub fn new(spec: TimeIntervalSpec) -> Result<Self, TimeIntervalError> {
        Ok(Self {
            times: validate_list("times", spec.times, |r| {
                time_range(&r.start_time, &r.end_time)
            })?,
            weekdays: validate_list("weekdays", spec.weekdays, |s| weekday_range(&s))?,
            days_of_month: validate_list("days_of_month", spec.days_of_month, |s| day_range(&s))?,
            months: validate_list("months", spec.months, |s| month_range(&s))?,
            years: validate_list("years", spec.years, |s| year_range(&s))?,
            location: match spec.location {
                Some(name) => Location::get(&name)?,
                None => Location::utc(),
            },
        })
    }

    /// The operator's short form: `[weekdays] [times] [zone]`, e.g. `Sun 02:00-04:00
    /// Europe/Berlin`, `Mon-Fri 09:00–17:00`, `Sat,Sun Europe/Berlin` (all day), `22:00-24:00`
    /// (daily). Weekdays and times may be comma lists; either may be left out but not both; the
    /// zone, last, defaults to UTC. A weekday range may wrap (`Fri-Mon` is `Fri–Sat,Sun–Mon`);
    /// a time range may not (split it in two windows); an end of `00:00` means `24:00`.
    pub fn parse_short(input: &str) -> Result<Self, TimeIntervalError> {
        let err = |why: String| TimeIntervalError::ShortForm {
            input: input.to_owned(),
            why,
        };
        let tokens = short_tokens(input);
        let mut weekdays = None;
        let mut times = None;
        let mut location = None;
        for (i, token) in tokens.iter().enumerate() {
            if token.starts_with(|c: char| c.is_ascii_digit()) {
                if times.is_some() {
                    return Err(err(format!(
                        "times given twice ({token}): list them with commas, as 02:00-04:00,14:00-15:00"
                    )));
                }
                times = Some(short_times(token)?);
            } else if let Some(days) = short_weekdays(token)? {
                if weekdays.is_some() {
                    return Err(err(format!(
                        "weekdays given twice ({token}): list them with commas, as Sat,Sun"
                    )));
                }
                weekdays = Some(days);
            } else if i + 1 == tokens.len() {
                location = Some(Location::get(token)?);
            } else {
                return Err(err(format!(
                    "{token:?} is not weekdays (Mon-Fri, Sat,Sun), times (02:00-04:00) or, last, a time zone"
                )));
            }
        }
        if weekdays.is_none() && times.is_none() {
            return Err(err(
                "give weekdays, times or both, as in \"Sun 02:00-04:00 Europe/Berlin\"".to_owned(),
            ));
        }
        Ok(Self {
            times,
            weekdays,
            days_of_month: None,
            months: None,
            years: None,
            location: location.unwrap_or_else(Location::utc),
        })
    }

    /// The zone's name as configured (canonical IANA spelling when it was looked up).
    pub fn location(&self) -> &str {
        &self.location.name
    }

    /// The Alertmanager-shaped spec this interval serialises to.
    pub fn to_spec(&self) -> TimeIntervalSpec {
        TimeIntervalSpec::from(self.clone())
    }

    /// Is the wall-clock time of `at_ms` in the interval's zone inside? False outside the years
    /// jiff can represent (−9999 … 9999).
    pub fn contains(&self, at_ms: i64) -> bool {
        Timestamp::from_millisecond(at_ms)
            .is_ok_and(|ts| self.contains_civil(self.location.tz.to_datetime(ts)))
    }

    /// The occurrence containing `at_ms`, else the next one within [`SEARCH_DAYS`].
    pub fn current_or_next(&self, at_ms: i64) -> Option<Occurrence> {
        current_or_next(std::slice::from_ref(self), at_ms)
    }

    /// The start of the first occurrence starting strictly after `after_ms`, within
    /// [`SEARCH_DAYS`].
    pub fn next_start(&self, after_ms: i64) -> Option<i64> {
        next_start(std::slice::from_ref(self), after_ms)
    }

    /// The first occurrence starting strictly after `after_ms`, within [`SEARCH_DAYS`].
    pub fn next_occurrence(&self, after_ms: i64) -> Option<Occurrence> {
        next_occurrence(std::slice::from_ref(self), after_ms)
    }

    fn contains_civil(&self, dt: DateTime) -> bool {
        let minute = i16::from(dt.hour()) * 60 + i16::from(dt.minute());
        self.date_matches(dt.date())
            && self.times.as_ref().is_none_or(|times| {
                times
                    .iter()
                    .any(|&(start, end)| start <= minute && minute < end)
            })
    }

    fn date_matches(&self, date: Date) -> bool {
        fn any<T: PartialOrd + Copy>(ranges: Option<&Vec<(T, T)>>, value: T) -> bool {
            ranges.is_none_or(|ranges| ranges.iter().any(|&(b, e)| b <= value && value <= e))
        }
        let weekday = date.weekday().to_sunday_zero_offset();
        any(self.weekdays.as_ref(), weekday)
            && any(self.months.as_ref(), date.month())
            && any(self.years.as_ref(), date.year())
            && self.days_of_month.as_ref().is_none_or(|ranges| {
                ranges
                    .iter()
                    .any(|&(b, e)| day_in(b, e, date.day(), date.days_in_month()))
            })
    }

    /// Every instant in `[lo, hi)` where [`Self::contains`] may change: each local midnight, each
    /// window boundary on a matching day (both instances in a repeated hour, none in a skipped
    /// one), and each offset transition (which is where a skipped boundary takes effect).
    fn push_boundaries(&self, lo: Timestamp, hi: Timestamp, out: &mut Vec<i64>) {
        let tz = &self.location.tz;
        let from = lo
            .checked_sub(jiff::SignedDuration::from_millis(1))
            .unwrap_or(lo);
        out.extend(
            tz.following(from)
                .map(|t| t.timestamp())
                .take_while(|&t| t < hi)
                .map(Timestamp::as_millisecond),
        );
        // A repeated hour can show a date again after the next began; a day either way covers it.
        let first = tz.to_datetime(lo).date();
        let first = first.yesterday().unwrap_or(first);
        let last = tz.to_datetime(hi).date();
        let last = last.tomorrow().unwrap_or(last);
        let mut date = first;
        loop {
            push_civil(tz, date.at(0, 0, 0, 0), out);
            if let Some(times) = &self.times
                && self.date_matches(date)
            {
                for &(start, end) in times {
                    push_civil(tz, at_minute(date, start), out);
                    if end < MINUTES_PER_DAY {
                        push_civil(tz, at_minute(date, end), out);
                    }
                }
            }
            match date.tomorrow() {
                Ok(next) if date < last => date = next,
                _ => break,
            }
        }
    }
}

impl TryFrom<TimeIntervalSpec> for TimeInterval {
    type Error = TimeIntervalError;

    fn try_from(spec: TimeIntervalSpec) -> Result<Self, Self::Error> {
        Self::new(spec)
    }
}

impl From<TimeInterval> for TimeIntervalSpec {
    fn from(interval: TimeInterval) -> Self {
        let ranges = |list: Option<Vec<(i8, i8)>>, name: fn(i8) -> String| {
            list.map(|list| {
                list.into_iter()
                    .map(|(b, e)| {
                        if b == e {
                            name(b)
                        } else {
                            format!("{}:{}", name(b), name(e))
                        }
                    })
                    .collect()
            })
        };
        Self {
            times: interval.times.map(|times| {
                times
                    .into_iter()
                    .map(|(start, end)| TimeRangeSpec {
                        start_time: hhmm(start),
                        end_time: hhmm(end),
                    })
                    .collect()
            }),
            weekdays: ranges(interval.weekdays, |d| WEEKDAYS[d as usize].to_owned()),
            days_of_month: ranges(interval.days_of_month, |d| d.to_string()),
            months: ranges(interval.months, |m| MONTHS[(m - 1) as usize].to_owned()),
            years: interval.years.map(|years| {
                years
                    .into_iter()
                    .map(|(b, e)| {
                        if b == e {
                            b.to_string()
                        } else {
                            format!("{b}:{e}")
                        }
                    })
                    .collect()
            }),
            location: (interval.location.name != "UTC").then_some(interval.location.name),
        }
    }
}

impl FromStr for TimeInterval {
    type Err = TimeIntervalError;

    /// The short form, as [`TimeInterval::parse_short`].
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse_short(s)
    }
}

/// The short form (`Mon–Fri 09:00–17:00 Europe/Berlin`) when the interval has only weekdays and
/// times; other fields are summarised before the zone (`days 1:5,-3:-1 May–Aug 2020–2022 UTC`).
impl fmt::Display for TimeInterval {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts: Vec<String> = Vec::new();
        let join = |ranges: &[(i8, i8)], sep: &str, name: &dyn Fn(i8) -> String| {
            ranges
                .iter()
                .map(|&(b, e)| {
                    if b == e {
                        name(b)
                    } else {
                        format!("{}{sep}{}", name(b), name(e))
                    }
                })
                .collect::<Vec<_>>()
                .join(",")
        };
        if let Some(weekdays) = &self.weekdays {
            parts.push(join(weekdays, "–", &|d| short_name(WEEKDAYS[d as usize])));
        }
        if let Some(times) = &self.times {
            let times: Vec<String> = times
                .iter()
                .map(|&(start, end)| format!("{}–{}", hhmm(start), hhmm(end)))
                .collect();
            parts.push(times.join(","));
        }
        if let Some(days) = &self.days_of_month {
            parts.push(format!("days {}", join(days, ":", &|d| d.to_string())));
        }
        if let Some(months) = &self.months {
            parts.push(join(months, "–", &|m| {
                short_name(MONTHS[(m - 1) as usize])
            }));
        }
        if let Some(years) = &self.years {
            let years: Vec<String> = years
                .iter()
                .map(|&(b, e)| {
                    if b == e {
                        b.to_string()
                    } else {
                        format!("{b}–{e}")
                    }
                })
                .collect();
            parts.push(years.join(","));
        }
        if parts.is_empty() {
            parts.push("always".to_owned());
        }
        write!(f, "{} {}", parts.join(" "), self.location.name)
    }
}

/// A named list of intervals, ORed: inside when any one is.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(transparent)]
pub struct TimeIntervals(pub Vec<TimeInterval>);

impl TimeIntervals {
    pub fn any_contains(&self, at_ms: i64) -> bool {
        any_contains(&self.0, at_ms)
    }

    /// The occurrence containing `at_ms`, else the next; spans of different intervals that touch
    /// or overlap merge into one.
    pub fn current_or_next(&self, at_ms: i64) -> Option<Occurrence> {
        current_or_next(&self.0, at_ms)
    }

    /// The first occurrence starting strictly after `after_ms`.
    pub fn next_occurrence(&self, after_ms: i64) -> Option<Occurrence> {
        next_occurrence(&self.0, after_ms)
    }

    /// The start of the first occurrence starting strictly after `after_ms`.
    pub fn next_start(&self, after_ms: i64) -> Option<i64> {
        next_start(&self.0, after_ms)
    }
}

/// The short forms joined by `; `.
impl fmt::Display for TimeIntervals {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, interval) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{interval}")?;
        }
        Ok(())
    }
}

// ---- Searching -------------------------------------------------------------------------------

/// The span of milliseconds jiff can represent.
fn ms_bounds() -> (i64, i64) {
    (
        Timestamp::MIN.as_millisecond(),
        Timestamp::MAX.as_millisecond(),
    )
}

fn any_contains(intervals: &[TimeInterval], at_ms: i64) -> bool {
    intervals.iter().any(|interval| interval.contains(at_ms))
}

/// The change points of the union in `[lo, hi)`, ascending.
fn boundaries(intervals: &[TimeInterval], lo: i64, hi: i64) -> Vec<i64> {
    let mut out = Vec::new();
    let (Ok(lo_ts), Ok(hi_ts)) = (
        Timestamp::from_millisecond(lo),
        Timestamp::from_millisecond(hi),
    ) else {
        return out;
    };
    for interval in intervals {
        interval.push_boundaries(lo_ts, hi_ts, &mut out);
    }
    out.retain(|&t| lo <= t && t < hi);
    out.sort_unstable();
    out.dedup();
    out
}

/// The first change point in `(after, limit]` where the union is `on` (and, with `edge`, was
/// not just before).
fn find_forward(
    intervals: &[TimeInterval],
    after: i64,
    limit: i64,
    on: bool,
    edge: bool,
) -> Option<i64> {
    let (min, max) = ms_bounds();
    let mut lo = after.saturating_add(1).max(min);
    let end = limit.min(max).saturating_add(1);
    while lo < end {
        let hi = lo.saturating_add(CHUNK_MS).min(end);
        let found = boundaries(intervals, lo, hi).into_iter().find(|&t| {
            any_contains(intervals, t) == on && (!edge || any_contains(intervals, t - 1) != on)
        });
        if found.is_some() {
            return found;
        }
        lo = hi;
    }
    None
}

/// The start of the span containing `at` (which the union contains), or `floor` if it began
/// earlier than that.
fn find_start_backward(intervals: &[TimeInterval], at: i64, floor: i64) -> i64 {
    let floor = floor.max(ms_bounds().0);
    let mut hi = at.saturating_add(1);
    while hi > floor {
        let lo = hi.saturating_sub(CHUNK_MS).max(floor);
        if let Some(start) = boundaries(intervals, lo, hi)
            .into_iter()
            .rev()
            .find(|&t| !any_contains(intervals, t - 1))
        {
            return start;
        }
        hi = lo;
    }
    floor
}

/// The span starting at `start` (or containing `from`, which is on), clipped at the horizon.
fn span_from(intervals: &[TimeInterval], start: i64, from: i64) -> Occurrence {
    let limit = from.saturating_add(HORIZON_MS);
    let end = find_forward(intervals, from, limit, false, false).unwrap_or(limit);
    Occurrence {
        start_ms: start,
        end_ms: end,
    }
}

fn current_or_next(intervals: &[TimeInterval], at_ms: i64) -> Option<Occurrence> {
    if intervals.is_empty() {
        return None;
    }
    if any_contains(intervals, at_ms) {
        let start = find_start_backward(intervals, at_ms, at_ms.saturating_sub(HORIZON_MS));
        return Some(span_from(intervals, start, at_ms));
    }
    next_occurrence_from(intervals, at_ms, false)
}

fn next_occurrence(intervals: &[TimeInterval], after_ms: i64) -> Option<Occurrence> {
    next_occurrence_from(intervals, after_ms, true)
}

fn next_occurrence_from(
    intervals: &[TimeInterval],
    after_ms: i64,
    edge: bool,
) -> Option<Occurrence> {
    let start = find_forward(
        intervals,
        after_ms,
        after_ms.saturating_add(HORIZON_MS),
        true,
        edge,
    )?;
    Some(span_from(intervals, start, start))
}

fn next_start(intervals: &[TimeInterval], after_ms: i64) -> Option<i64> {
    if intervals.is_empty() {
        return None;
    }
    find_forward(
        intervals,
        after_ms,
        after_ms.saturating_add(HORIZON_MS),
        true,
        true,
    )
}

/// Every instant whose wall-clock time in `tz` is `dt`: none in a gap, two in a fold.
fn push_civil(tz: &TimeZone, dt: DateTime, out: &mut Vec<i64>) {
    match tz.to_ambiguous_timestamp(dt).offset() {
        AmbiguousOffset::Unambiguous { offset } => {
            out.extend(offset.to_timestamp(dt).map(Timestamp::as_millisecond));
        }
        AmbiguousOffset::Gap { .. } => {}
        AmbiguousOffset::Fold { before, after } => {
            out.extend(before.to_timestamp(dt).map(Timestamp::as_millisecond));
            out.extend(after.to_timestamp(dt).map(Timestamp::as_millisecond));
        }
    }
}

fn at_minute(date: Date, minute: i16) -> DateTime {
    date.at((minute / 60) as i8, (minute % 60) as i8, 0, 0)
}

/// Alertmanager's rule: negative days count from the end; a range starting after the month's
/// last day is skipped; the end is clamped to it.
fn day_in(begin: i8, end: i8, day: i8, days_in_month: i8) -> bool {
    let resolve = |d: i8| if d < 0 { days_in_month + d + 1 } else { d };
    let (begin, end) = (resolve(begin), resolve(end).min(days_in_month));
    begin <= days_in_month && begin <= day && day <= end
}

// ---- Parsing ---------------------------------------------------------------------------------

fn validate_list<S, T>(
    field: &'static str,
    list: Option<Vec<S>>,
    parse: impl Fn(S) -> Result<T, TimeIntervalError>,
) -> Result<Option<Vec<T>>, TimeIntervalError> {
    match list {
        None => Ok(None),
        Some(list) if list.is_empty() => Err(TimeIntervalError::EmptyList { field }),
        Some(list) => list
            .into_iter()
            .map(parse)
            .collect::<Result<_, _>>()
            .map(Some),
    }
}

/// `HH:MM` (or `H:MM`) as minutes of the day; `24:00` is 1440, only sensible as an end.
fn parse_hhmm(text: &str) -> Result<i16, TimeIntervalError> {
    let bad = || TimeIntervalError::BadTime {
        value: text.to_owned(),
    };
    let (h, m) = text.trim().split_once(':').ok_or_else(bad)?;
    if !(1..=2).contains(&h.len()) || m.len() != 2 {
        return Err(bad());
    }
    let number = |s: &str| {
        s.bytes()
            .all(|b| b.is_ascii_digit())
            .then(|| s.parse::<i16>().ok())
            .flatten()
    };
    match (number(h), number(m)) {
        (Some(24), Some(0)) => Ok(MINUTES_PER_DAY),
        (Some(h @ 0..=23), Some(m @ 0..=59)) => Ok(h * 60 + m),
        _ => Err(bad()),
    }
}

fn hhmm(minute: i16) -> String {
    format!("{:02}:{:02}", minute / 60, minute % 60)
}

fn time_range(start: &str, end: &str) -> Result<(i16, i16), TimeIntervalError> {
    let (s, e) = (parse_hhmm(start)?, parse_hhmm(end)?);
    if s >= e {
        return Err(TimeIntervalError::StartNotBeforeEnd {
            start: start.trim().to_owned(),
            end: end.trim().to_owned(),
        });
    }
    Ok((s, e))
}

/// `a:b` or `a`, trimmed, as its two ends.
fn split_range<'a>(
    field: &'static str,
    text: &'a str,
) -> Result<(&'a str, &'a str), TimeIntervalError> {
    let text = text.trim();
    let (begin, end) = text.split_once(':').unwrap_or((text, text));
    let (begin, end) = (begin.trim(), end.trim());
    if begin.is_empty() || end.is_empty() || end.contains(':') {
        return Err(TimeIntervalError::BadRange {
            field,
            value: text.to_owned(),
        });
    }
    Ok((begin, end))
}

/// A full name or a prefix of three letters or more, any case.
fn name_index(names: &[&str], text: &str) -> Option<usize> {
    let text = text.to_ascii_lowercase();
    (text.len() >= 3)
        .then(|| names.iter().position(|name| name.starts_with(&text)))
        .flatten()
}

fn short_name(name: &str) -> String {
    let mut chars = name.chars();
    chars
        .next()
        .map(|c| c.to_ascii_uppercase().to_string() + &chars.take(2).collect::<String>())
        .unwrap_or_default()
}

fn weekday(text: &str) -> Result<i8, TimeIntervalError> {
    name_index(&WEEKDAYS, text)
        .map(|i| i as i8)
        .ok_or_else(|| TimeIntervalError::UnknownWeekday {
            value: text.to_owned(),
        })
}

fn weekday_range(text: &str) -> Result<(i8, i8), TimeIntervalError> {
    let (b, e) = split_range("weekdays", text)?;
    let (b, e) = (weekday(b)?, weekday(e)?);
    if b > e {
        return Err(TimeIntervalError::Backwards {
            field: "weekdays",
            value: text.trim().to_owned(),
            hint: ": the week starts on Sunday, so list the two parts (friday:saturday, sunday:monday)",
        });
    }
    Ok((b, e))
}

fn month(text: &str) -> Result<i8, TimeIntervalError> {
    name_index(&MONTHS, text)
        .map(|i| i as i8 + 1)
        .or_else(|| text.parse::<i8>().ok().filter(|m| (1..=12).contains(m)))
        .ok_or_else(|| TimeIntervalError::UnknownMonth {
            value: text.to_owned(),
        })
}

fn month_range(text: &str) -> Result<(i8, i8), TimeIntervalError> {
    let (b, e) = split_range("months", text)?;
    let (b, e) = (month(b)?, month(e)?);
    if b > e {
        return Err(TimeIntervalError::Backwards {
            field: "months",
            value: text.trim().to_owned(),
            hint: ": a range cannot wrap the new year, so list the two parts (november:december, january:february)",
        });
    }
    Ok((b, e))
}

fn day(text: &str) -> Result<i8, TimeIntervalError> {
    match text.parse::<i8>() {
        Ok(0) => Err(TimeIntervalError::DayZero {
            value: text.to_owned(),
        }),
        Ok(d) if (-31..=31).contains(&d) => Ok(d),
        _ => Err(TimeIntervalError::BadDay {
            value: text.to_owned(),
        }),
    }
}

/// Alertmanager's checks: a negative start needs a negative end, and the range must be in order
/// in a 28-day month.
fn day_range(text: &str) -> Result<(i8, i8), TimeIntervalError> {
    let (b, e) = split_range("days_of_month", text)?;
    let (b, e) = (day(b)?, day(e)?);
    if b < 0 && e > 0 {
        return Err(TimeIntervalError::NegativeStartPositiveEnd {
            value: text.trim().to_owned(),
        });
    }
    let in_28 = |d: i8| if d < 0 { 28 + d + 1 } else { d };
    if in_28(b) > in_28(e) {
        return Err(TimeIntervalError::Backwards {
            field: "days_of_month",
            value: text.trim().to_owned(),
            hint: "",
        });
    }
    Ok((b, e))
}

fn year(text: &str) -> Result<i16, TimeIntervalError> {
    text.parse::<i16>()
        .ok()
        .filter(|y| (1..=9999).contains(y))
        .ok_or_else(|| TimeIntervalError::BadYear {
            value: text.to_owned(),
        })
}

fn year_range(text: &str) -> Result<(i16, i16), TimeIntervalError> {
    let (b, e) = split_range("years", text)?;
    let (b, e) = (year(b)?, year(e)?);
    if b > e {
        return Err(TimeIntervalError::Backwards {
            field: "years",
            value: text.trim().to_owned(),
            hint: "",
        });
    }
    Ok((b, e))
}

/// Splits on whitespace after turning dashes into `-` and gluing pieces around `-` and `,`, so
/// `Sat, Sun 02:00 – 04:00` reads as `Sat,Sun` and `02:00-04:00`.
fn short_tokens(input: &str) -> Vec<String> {
    let input = input.replace(['–', '—'], "-");
    let mut tokens: Vec<String> = Vec::new();
    for word in input.split_whitespace() {
        match tokens.last_mut() {
            Some(last) if last.ends_with(['-', ',']) || word.starts_with(['-', ',']) => {
                last.push_str(word);
            }
            _ => tokens.push(word.to_owned()),
        }
    }
    tokens
}

/// `Mon-Fri`, `Sat,Sun`, `Fri-Mon` (wraps: two ranges); `None` when the first item is no
/// weekday, so the token may be a zone.
fn short_weekdays(token: &str) -> Result<Option<Vec<(i8, i8)>>, TimeIntervalError> {
    let first = token.split([',', '-']).next().unwrap_or(token);
    if name_index(&WEEKDAYS, first).is_none() {
        return Ok(None);
    }
    let mut ranges = Vec::new();
    for item in token.split(',') {
        let (b, e) = item.split_once('-').unwrap_or((item, item));
        let (b, e) = (weekday(b)?, weekday(e)?);
        if b <= e {
            ranges.push((b, e));
        } else {
            ranges.push((b, 6));
            ranges.push((0, e));
        }
    }
    Ok(Some(ranges))
}

/// `02:00-04:00`, comma lists; an end of `00:00` is the midnight ending the day (`24:00`).
fn short_times(token: &str) -> Result<Vec<(i16, i16)>, TimeIntervalError> {
    token
        .split(',')
        .map(|item| {
            let (start, end) =
                item.split_once('-')
                    .ok_or_else(|| TimeIntervalError::ShortForm {
                        input: item.to_owned(),
                        why: "a time range is a start and an end, as 02:00-04:00".to_owned(),
                    })?;
            let s = parse_hhmm(start)?;
            if s == MINUTES_PER_DAY {
                return Err(TimeIntervalError::BadTime {
                    value: start.to_owned(),
                });
            }
            let e = match parse_hhmm(end)? {
                0 => MINUTES_PER_DAY,
                e => e,
            };
            if e < s {
                return Err(TimeIntervalError::WrapsMidnight {
                    start: hhmm(s),
                    end: hhmm(e),
                });
            }
            if e == s {
                return Err(TimeIntervalError::StartNotBeforeEnd {
                    start: hhmm(s),
                    end: hhmm(e),
                });
            }
            Ok((s, e))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn ms(text: &str) -> i64 {
        text.parse::<Timestamp>().unwrap().as_millisecond()
    }

    fn short(text: &str) -> TimeInterval {
        TimeInterval::parse_short(text).unwrap()
    }

    #[test]
    fn hhmm_accepts_24_00_only_as_the_day_end() {
        assert_eq!(parse_hhmm("00:00"), Ok(0));
        assert_eq!(parse_hhmm("9:05"), Ok(545));
        assert_eq!(parse_hhmm("23:59"), Ok(1439));
        assert_eq!(parse_hhmm("24:00"), Ok(1440));
        for bad in [
            "24:01", "12:60", "1200", "12:5", "-1:00", "ab:cd", "", "123:00", "12:00:00",
        ] {
            assert!(parse_hhmm(bad).is_err(), "{bad:?}");
        }
        assert!(time_range("24:00", "24:00").is_err());
    }

    #[test]
    fn negative_days_count_from_the_end_and_clamp() {
        // February 2026 has 28 days.
        assert!(day_in(-3, -1, 26, 28));
        assert!(!day_in(-3, -1, 25, 28));
        assert!(day_in(1, 31, 28, 28), "the end clamps to the month");
        assert!(
            !day_in(30, 31, 28, 28),
            "a range starting after the month is skipped"
        );
        assert!(
            day_in(-31, -1, 1, 28),
            "a start before the month begins at day 1"
        );
        assert!(day_in(1, -1, 15, 30));
    }

    #[test]
    fn boundaries_in_a_skipped_hour_fall_on_the_transition() {
        // Berlin springs forward at 01:00Z on 2026-03-29: 02:00–02:59 local never happens.
        let interval = short("Sun 02:30-03:30 Europe/Berlin");
        let lo = ms("2026-03-28T23:00:00Z");
        let points = boundaries(std::slice::from_ref(&interval), lo, lo + DAY_MS);
        assert!(
            points.contains(&ms("2026-03-29T01:00:00Z")),
            "the transition"
        );
        assert!(points.contains(&ms("2026-03-29T01:30:00Z")), "03:30 CEST");
        // The wall clock reads 03:00 at the transition, after 02:30: inside, as Alertmanager says.
        assert!(interval.contains(ms("2026-03-29T01:00:00Z")));
        assert_eq!(
            interval.current_or_next(lo),
            Some(Occurrence {
                start_ms: ms("2026-03-29T01:00:00Z"),
                end_ms: ms("2026-03-29T01:30:00Z"),
            })
        );
    }

    #[test]
    fn a_window_ending_in_a_repeated_hour_occurs_twice_that_night() {
        // Berlin falls back at 01:00Z on 2026-10-25: 02:00–02:59 local happens twice.
        let interval = short("Sun 01:00-02:30 Europe/Berlin");
        let first = interval
            .current_or_next(ms("2026-10-24T12:00:00Z"))
            .unwrap();
        assert_eq!(
            first,
            Occurrence {
                start_ms: ms("2026-10-24T23:00:00Z"),
                end_ms: ms("2026-10-25T00:30:00Z"),
            }
        );
        assert_eq!(
            interval.next_occurrence(first.start_ms),
            Some(Occurrence {
                start_ms: ms("2026-10-25T01:00:00Z"),
                end_ms: ms("2026-10-25T01:30:00Z"),
            })
        );
    }

    #[test]
    fn an_interval_with_no_fields_is_always_inside_and_clipped_at_the_horizon() {
        let always = TimeInterval::new(TimeIntervalSpec::default()).unwrap();
        let at = ms("2026-06-01T12:00:00Z");
        assert!(always.contains(at));
        assert_eq!(
            always.current_or_next(at),
            Some(Occurrence {
                start_ms: at - HORIZON_MS,
                end_ms: at + HORIZON_MS,
            })
        );
        assert_eq!(always.next_start(at), None);
        assert_eq!(always.to_string(), "always UTC");
    }

    #[test]
    fn the_schema_is_the_alertmanager_shape() {
        let schema = schemars::schema_for!(TimeInterval).to_value();
        assert_eq!(schema["additionalProperties"], serde_json::json!(false));
        let properties = schema["properties"].as_object().unwrap();
        let names: Vec<&str> = properties.keys().map(String::as_str).collect();
        assert_eq!(
            names,
            [
                "days_of_month",
                "location",
                "months",
                "times",
                "weekdays",
                "years"
            ]
        );
    }

    #[test]
    fn instants_jiff_cannot_represent_are_outside() {
        let always = TimeInterval::new(TimeIntervalSpec::default()).unwrap();
        assert!(!always.contains(i64::MAX));
        assert!(!always.contains(i64::MIN));
        assert_eq!(always.current_or_next(i64::MAX), None);
        assert_eq!(short("Sun").next_start(i64::MAX), None);
        let (_, max) = ms_bounds();
        assert_eq!(short("Sun").next_start(max - DAY_MS), None);
    }

    #[test]
    fn an_empty_list_has_no_occurrence() {
        let none = TimeIntervals::default();
        assert!(!none.any_contains(0));
        assert_eq!(none.current_or_next(0), None);
        assert_eq!(none.next_start(0), None);
    }

    const ZONES: [&str; 5] = [
        "UTC",
        "Europe/Berlin",
        "America/New_York",
        // Half-hour DST.
        "Australia/Lord_Howe",
        // DST transitions at midnight.
        "America/Santiago",
    ];

    fn interval_strategy() -> impl Strategy<Value = TimeInterval> {
        (
            0..ZONES.len(),
            0i8..7,
            0i8..7,
            // Often near the small hours, where offsets change.
            prop::collection::vec(
                (
                    prop_oneof![0i16..1440, 0i16..240],
                    prop_oneof![1i16..600, 1i16..120],
                ),
                0..3,
            ),
        )
            .prop_map(|(zone, a, b, times)| {
                let times: Vec<(i16, i16)> = times
                    .into_iter()
                    .map(|(start, len)| (start, (start + len).min(MINUTES_PER_DAY)))
                    .collect();
                TimeInterval {
                    times: (!times.is_empty()).then_some(times),
                    weekdays: Some(vec![(a.min(b), a.max(b))]),
                    days_of_month: None,
                    months: None,
                    years: None,
                    location: Location::get(ZONES[zone]).unwrap(),
                }
            })
    }

    /// `contains` and `current_or_next` agree: inside means an occurrence around the instant;
    /// outside means the next occurrence starts later, with nothing inside between.
    fn check_agreement(list: &TimeIntervals, at: i64, probes: &[f64]) -> Result<(), TestCaseError> {
        let occurrence = list.current_or_next(at).expect("a weekly window recurs");
        prop_assert!(occurrence.start_ms < occurrence.end_ms);
        prop_assert!(list.any_contains(occurrence.start_ms));
        prop_assert!(list.any_contains(occurrence.end_ms - 1));
        // Every weekday without times never ends: the span is clipped at the horizon.
        let clipped = occurrence.end_ms - occurrence.start_ms >= HORIZON_MS;
        if !clipped {
            prop_assert!(!list.any_contains(occurrence.start_ms - 1));
            prop_assert!(!list.any_contains(occurrence.end_ms));
        }
        if list.any_contains(at) {
            prop_assert!(occurrence.contains(at), "{occurrence:?} around {at}");
        } else {
            prop_assert!(occurrence.start_ms > at);
            for &p in probes {
                let between = at + ((occurrence.start_ms - at) as f64 * p) as i64;
                prop_assert!(
                    !list.any_contains(between),
                    "{between} before {occurrence:?}"
                );
            }
        }
        for &p in probes {
            let inside =
                occurrence.start_ms + ((occurrence.end_ms - occurrence.start_ms) as f64 * p) as i64;
            prop_assert!(list.any_contains(inside), "{inside} inside {occurrence:?}");
        }
        match list.next_start(at) {
            Some(next) => {
                prop_assert!(next > at && next >= occurrence.start_ms);
                prop_assert!(list.any_contains(next) && !list.any_contains(next - 1));
            }
            None => prop_assert!(clipped),
        }
        Ok(())
    }

    proptest! {
        #[test]
        fn contains_agrees_with_current_or_next(
            intervals in prop::collection::vec(interval_strategy(), 1..3),
            // 2020-01-01 to 2030-01-01.
            at in 1_577_836_800_000i64..1_893_456_000_000,
            probes in prop::collection::vec(0.0f64..1.0, 4),
        ) {
            check_agreement(&TimeIntervals(intervals), at, &probes)?;
        }

        /// The same within two days of the first interval's zone's offset changes.
        #[test]
        fn contains_agrees_with_current_or_next_around_dst(
            intervals in prop::collection::vec(interval_strategy(), 1..3),
            year in 2020i16..2030,
            nth in 0usize..3,
            offset in -2 * DAY_MS..2 * DAY_MS,
            probes in prop::collection::vec(0.0f64..1.0, 4),
        ) {
            let tz = &intervals[0].location.tz;
            let new_year = jiff::civil::date(year, 1, 1).at(0, 0, 0, 0);
            let from = tz.to_ambiguous_timestamp(new_year).compatible().unwrap();
            let transition = tz.following(from).nth(nth).map_or(from, |t| t.timestamp());
            let at = transition.as_millisecond() + offset;
            check_agreement(&TimeIntervals(intervals), at, &probes)?;
        }

        /// What `parse_short` makes, `Display` renders back to the same interval.
        #[test]
        fn short_form_round_trips(interval in interval_strategy()) {
            let text = interval.to_string();
            let parsed = TimeInterval::parse_short(&text).unwrap();
            prop_assert_eq!(&parsed, &interval, "{}", text);
            prop_assert_eq!(parsed.to_string(), text);
        }
    }
}
