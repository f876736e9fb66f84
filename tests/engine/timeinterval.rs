//! Recurring time intervals through the public API: Alertmanager's documented examples read
//! from TOML, instants in and out (end-exclusive, zones, DST), the next occurrence, and the
//! operators' short form.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use jiff::Timestamp;
use serde::Deserialize;
use ward::engine::timeinterval::{
    Occurrence, TimeInterval, TimeIntervalError, TimeIntervalSpec, TimeIntervals,
};

fn ms(text: &str) -> i64 {
    text.parse::<Timestamp>().unwrap().as_millisecond()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Window {
    interval: TimeInterval,
}

fn toml_interval(body: &str) -> TimeInterval {
    toml::from_str::<Window>(&format!("interval = {{ {body} }}"))
        .unwrap_or_else(|e| panic!("{body}: {e}"))
        .interval
}

fn toml_error(body: &str) -> String {
    match toml::from_str::<Window>(&format!("interval = {{ {body} }}")) {
        Ok(_) => panic!("{body} should be rejected"),
        Err(e) => e.to_string(),
    }
}

fn short(text: &str) -> TimeInterval {
    TimeInterval::parse_short(text).unwrap_or_else(|e| panic!("{text}: {e}"))
}

/// Alertmanager's documented examples (docs/configuration.md, `time_interval`), each with
/// instants just inside and just outside.
type Case = (
    &'static str,
    &'static [&'static str],
    &'static [&'static str],
);
const DOC_EXAMPLES: &[Case] = &[
    (
        r#"times = [{ start_time = "09:00", end_time = "17:00" }], weekdays = ["monday:friday"]"#,
        // 2026-07-06 is a Monday.
        &[
            "2026-07-06T09:00:00Z",
            "2026-07-06T16:59:59.999Z",
            "2026-07-10T12:00:00Z",
        ],
        &[
            "2026-07-06T08:59:59.999Z",
            "2026-07-06T17:00:00Z",
            "2026-07-11T12:00:00Z",
            "2026-07-05T12:00:00Z",
        ],
    ),
    (
        r#"weekdays = ["monday:wednesday", "saturday", "sunday"]"#,
        &[
            "2026-07-06T00:00:00Z",
            "2026-07-08T23:59:59.999Z",
            "2026-07-11T12:00:00Z",
            "2026-07-12T12:00:00Z",
        ],
        &["2026-07-09T00:00:00Z", "2026-07-10T23:59:59Z"],
    ),
    (
        r#"days_of_month = ["1:5", "-3:-1"]"#,
        &[
            "2026-02-01T00:00:00Z",
            "2026-02-05T23:59:59Z",
            // February 2026 has 28 days: -3 is the 26th.
            "2026-02-26T00:00:00Z",
            "2026-02-28T23:59:59Z",
            // 2024 is a leap year: -3 is the 27th.
            "2024-02-27T00:00:00Z",
            // January: -3 is the 29th.
            "2026-01-29T00:00:00Z",
        ],
        &[
            "2026-02-06T00:00:00Z",
            "2026-02-25T23:59:59Z",
            "2024-02-26T12:00:00Z",
            "2026-01-28T23:59:59Z",
        ],
    ),
    (
        r#"days_of_month = ["1:31"]"#,
        // Clamped to the month's end.
        &["2026-02-28T12:00:00Z", "2026-04-30T12:00:00Z"],
        &[],
    ),
    (
        r#"days_of_month = ["30:31"]"#,
        &["2026-01-30T00:00:00Z", "2026-04-30T00:00:00Z"],
        // Starts after February's last day: skipped.
        &["2026-02-28T12:00:00Z", "2026-03-01T00:00:00Z"],
    ),
    (
        r#"months = ["may:august"]"#,
        &["2026-05-01T00:00:00Z", "2026-08-31T23:59:59.999Z"],
        &["2026-04-30T23:59:59.999Z", "2026-09-01T00:00:00Z"],
    ),
    (
        r#"months = ["1:3", "may:august", "december"]"#,
        &[
            "2026-01-01T00:00:00Z",
            "2026-03-31T12:00:00Z",
            "2026-06-15T00:00:00Z",
            "2026-12-31T23:59:59Z",
        ],
        &["2026-04-15T00:00:00Z", "2026-11-30T23:59:59Z"],
    ),
    (
        r#"years = ["2020:2022", "2030"]"#,
        &[
            "2020-01-01T00:00:00Z",
            "2022-12-31T23:59:59.999Z",
            "2030-06-01T00:00:00Z",
        ],
        &[
            "2019-12-31T23:59:59.999Z",
            "2023-01-01T00:00:00Z",
            "2029-12-31T23:59:59Z",
        ],
    ),
    (
        // The Grafana/Alertmanager provisioning example: every field at once.
        r#"times = [{ start_time = "06:00", end_time = "23:59" }], location = "UTC",
               weekdays = ["monday:wednesday", "saturday", "sunday"],
               months = ["1:3", "may:august", "december"], years = ["2020:2022", "2030"],
               days_of_month = ["1:5", "-3:-1"]"#,
        // 2020-06-01 is a Monday; 2020-06-28 a Sunday (-3 of June).
        &["2020-06-01T06:00:00Z", "2020-06-28T23:58:59Z"],
        &[
            "2020-06-01T05:59:59Z",
            "2020-06-01T23:59:00Z",
            // A Thursday.
            "2020-06-04T12:00:00Z",
            // April.
            "2020-04-01T12:00:00Z",
            "2023-01-01T12:00:00Z",
        ],
    ),
    (
        // Wall-clock hours in the interval's location (the docs use Australia/Sydney).
        r#"times = [{ start_time = "09:00", end_time = "17:00" }], weekdays = ["monday:friday"],
               location = "Australia/Sydney""#,
        // 09:00 AEST (UTC+10) on Monday 2026-07-06 is 23:00Z on Sunday.
        &["2026-07-05T23:00:00Z", "2026-07-06T06:59:59Z"],
        &[
            "2026-07-05T22:59:59Z",
            "2026-07-06T07:00:00Z",
            "2026-07-06T09:00:00Z",
        ],
    ),
];

#[test]
fn alertmanager_documented_examples() {
    for (body, inside, outside) in DOC_EXAMPLES {
        let interval = toml_interval(body);
        for at in *inside {
            assert!(interval.contains(ms(at)), "{body}: {at} should be inside");
        }
        for at in *outside {
            assert!(!interval.contains(ms(at)), "{body}: {at} should be outside");
        }
    }
}

#[test]
fn the_end_is_exclusive() {
    let interval = toml_interval(
        r#"times = [{ start_time = "02:00", end_time = "04:00" }], weekdays = ["sunday"]"#,
    );
    // 2026-01-04 is a Sunday.
    assert!(!interval.contains(ms("2026-01-04T01:59:59.999Z")));
    assert!(interval.contains(ms("2026-01-04T02:00:00Z")));
    assert!(interval.contains(ms("2026-01-04T03:59:59.999Z")));
    assert!(!interval.contains(ms("2026-01-04T04:00:00Z")));
    let to_midnight = short("Sun 22:00-24:00");
    assert!(to_midnight.contains(ms("2026-01-04T23:59:59.999Z")));
    assert!(!to_midnight.contains(ms("2026-01-05T00:00:00Z")));
}

#[test]
fn the_location_decides_the_wall_clock() {
    let berlin = toml_interval(
        r#"times = [{ start_time = "02:00", end_time = "04:00" }], weekdays = ["sunday"], location = "Europe/Berlin""#,
    );
    let utc = short("Sun 02:00-04:00");
    assert_eq!(berlin.location(), "Europe/Berlin");
    assert_eq!(utc.location(), "UTC");
    // In January Berlin is UTC+1: its 02:00–04:00 is 01:00Z–03:00Z.
    for (at, in_berlin, in_utc) in [
        ("2026-01-04T00:59:59Z", false, false),
        ("2026-01-04T01:00:00Z", true, false),
        ("2026-01-04T02:30:00Z", true, true),
        ("2026-01-04T03:00:00Z", false, true),
        ("2026-01-04T04:00:00Z", false, false),
    ] {
        assert_eq!(berlin.contains(ms(at)), in_berlin, "Berlin at {at}");
        assert_eq!(utc.contains(ms(at)), in_utc, "UTC at {at}");
    }
    // In July (UTC+2) the same window is 00:00Z–02:00Z.
    assert!(berlin.contains(ms("2026-07-05T00:00:00Z")));
    assert!(!berlin.contains(ms("2026-07-05T02:00:00Z")));
    // Late Saturday in UTC is already Sunday in Berlin.
    let sunday_berlin = short("Sun Europe/Berlin");
    assert!(sunday_berlin.contains(ms("2026-01-03T23:30:00Z")));
    assert!(!short("Sun").contains(ms("2026-01-03T23:30:00Z")));
}

#[test]
fn spring_forward_shortens_the_window() {
    // 2026-03-29, last Sunday of March: Berlin goes from 02:00 CET to 03:00 CEST at 01:00Z.
    let interval = short("Sun 02:00-04:00 Europe/Berlin");
    assert!(
        !interval.contains(ms("2026-03-29T00:59:59.999Z")),
        "01:59 CET"
    );
    assert!(interval.contains(ms("2026-03-29T01:00:00Z")), "03:00 CEST");
    assert!(
        interval.contains(ms("2026-03-29T01:59:59.999Z")),
        "03:59 CEST"
    );
    assert!(!interval.contains(ms("2026-03-29T02:00:00Z")), "04:00 CEST");
    assert_eq!(
        interval.current_or_next(ms("2026-03-28T12:00:00Z")),
        Some(Occurrence {
            start_ms: ms("2026-03-29T01:00:00Z"),
            end_ms: ms("2026-03-29T02:00:00Z"),
        }),
        "one hour long"
    );
    // A start inside the skipped hour: the window opens at the transition, when the wall clock
    // jumps past 02:30.
    assert_eq!(
        short("Sun 02:30-04:00 Europe/Berlin").current_or_next(ms("2026-03-28T12:00:00Z")),
        Some(Occurrence {
            start_ms: ms("2026-03-29T01:00:00Z"),
            end_ms: ms("2026-03-29T02:00:00Z"),
        })
    );
}

#[test]
fn fall_back_lengthens_the_window() {
    // 2026-10-25, last Sunday of October: Berlin goes from 03:00 CEST back to 02:00 CET at 01:00Z.
    let interval = short("Sun 02:00-04:00 Europe/Berlin");
    assert!(
        !interval.contains(ms("2026-10-24T23:59:59.999Z")),
        "01:59 CEST"
    );
    assert!(interval.contains(ms("2026-10-25T00:00:00Z")), "02:00 CEST");
    assert!(
        interval.contains(ms("2026-10-25T01:30:00Z")),
        "02:30 CET, the second time"
    );
    assert!(
        interval.contains(ms("2026-10-25T02:59:59.999Z")),
        "03:59 CET"
    );
    assert!(!interval.contains(ms("2026-10-25T03:00:00Z")), "04:00 CET");
    assert_eq!(
        interval.current_or_next(ms("2026-10-25T01:30:00Z")),
        Some(Occurrence {
            start_ms: ms("2026-10-25T00:00:00Z"),
            end_ms: ms("2026-10-25T03:00:00Z"),
        }),
        "three hours long"
    );
}

#[test]
fn current_or_next_and_next_start() {
    let interval = short("Sun 02:00-04:00 Europe/Berlin");
    let this_week = Occurrence {
        start_ms: ms("2026-01-04T01:00:00Z"),
        end_ms: ms("2026-01-04T03:00:00Z"),
    };
    let next_week = Occurrence {
        start_ms: ms("2026-01-11T01:00:00Z"),
        end_ms: ms("2026-01-11T03:00:00Z"),
    };
    // Before: the next one.
    assert_eq!(
        interval.current_or_next(ms("2026-01-01T00:00:00Z")),
        Some(this_week)
    );
    // Inside, from its first millisecond to its last: this one.
    for at in [
        this_week.start_ms,
        ms("2026-01-04T02:00:00Z"),
        this_week.end_ms - 1,
    ] {
        assert_eq!(interval.current_or_next(at), Some(this_week), "at {at}");
        assert_eq!(interval.next_start(at), Some(next_week.start_ms), "at {at}");
        assert_eq!(interval.next_occurrence(at), Some(next_week), "at {at}");
    }
    // Just after: next week's.
    assert_eq!(interval.current_or_next(this_week.end_ms), Some(next_week));
    // Strictly after: a start exactly at `after` is not the next one.
    assert_eq!(
        interval.next_start(this_week.start_ms - 1),
        Some(this_week.start_ms)
    );
    assert_eq!(
        interval.next_start(this_week.start_ms),
        Some(next_week.start_ms)
    );
}

#[test]
fn a_past_years_bound_has_no_next_occurrence() {
    let past = toml_interval(r#"weekdays = ["sunday"], years = ["2020:2022"]"#);
    let now = ms("2026-06-01T00:00:00Z");
    assert!(!past.contains(now));
    assert_eq!(past.current_or_next(now), None);
    assert_eq!(past.next_start(now), None);
    // Too far ahead for the search.
    let far = toml_interval(r#"years = ["2030"]"#);
    assert_eq!(far.current_or_next(now), None);
    assert_eq!(
        far.current_or_next(ms("2029-06-01T00:00:00Z"))
            .map(|o| o.start_ms),
        Some(ms("2030-01-01T00:00:00Z"))
    );
}

#[test]
fn whole_days_merge_into_one_span() {
    let weekend = short("Sat,Sun Europe/Berlin");
    // Saturday 2026-01-03 00:00 CET to Monday 00:00 CET.
    let span = Occurrence {
        start_ms: ms("2026-01-02T23:00:00Z"),
        end_ms: ms("2026-01-04T23:00:00Z"),
    };
    assert_eq!(
        weekend.current_or_next(ms("2026-01-01T00:00:00Z")),
        Some(span)
    );
    assert_eq!(
        weekend.current_or_next(ms("2026-01-04T12:00:00Z")),
        Some(span)
    );
    let summer = toml_interval(r#"months = ["may:august"]"#);
    assert_eq!(
        summer.current_or_next(ms("2026-01-01T00:00:00Z")),
        Some(Occurrence {
            start_ms: ms("2026-05-01T00:00:00Z"),
            end_ms: ms("2026-09-01T00:00:00Z"),
        })
    );
}

#[test]
fn a_list_ors_its_intervals_and_merges_spans_that_touch() {
    // A nightly window across midnight, Alertmanager's way: two intervals.
    let nights = TimeIntervals(vec![
        short("Mon-Fri 22:00-24:00"),
        short("Tue-Sat 00:00-06:00"),
    ]);
    // 2026-01-05 is a Monday.
    assert!(nights.any_contains(ms("2026-01-05T23:00:00Z")));
    assert!(nights.any_contains(ms("2026-01-06T05:59:59Z")));
    assert!(!nights.any_contains(ms("2026-01-06T06:00:00Z")));
    assert!(
        !nights.any_contains(ms("2026-01-05T05:00:00Z")),
        "Monday early: Sunday night is off"
    );
    let monday_night = Occurrence {
        start_ms: ms("2026-01-05T22:00:00Z"),
        end_ms: ms("2026-01-06T06:00:00Z"),
    };
    assert_eq!(
        nights.current_or_next(ms("2026-01-05T12:00:00Z")),
        Some(monday_night)
    );
    assert_eq!(
        nights.current_or_next(ms("2026-01-06T03:00:00Z")),
        Some(monday_night)
    );
    assert_eq!(
        nights.next_occurrence(ms("2026-01-06T03:00:00Z")),
        Some(Occurrence {
            start_ms: ms("2026-01-06T22:00:00Z"),
            end_ms: ms("2026-01-07T06:00:00Z"),
        })
    );
    assert_eq!(
        nights.to_string(),
        "Mon–Fri 22:00–24:00 UTC; Tue–Sat 00:00–06:00 UTC"
    );
    let from_toml: TimeIntervals = toml::from_str::<std::collections::BTreeMap<String, TimeIntervals>>(
        r#"nights = [
            { weekdays = ["monday:friday"], times = [{ start_time = "22:00", end_time = "24:00" }] },
            { weekdays = ["tuesday:saturday"], times = [{ start_time = "00:00", end_time = "06:00" }] },
        ]"#,
    )
    .unwrap()
    .remove("nights")
    .unwrap();
    assert_eq!(from_toml, nights);
}

#[test]
fn toml_in_alertmanagers_shape_equals_the_short_form() {
    let interval = toml_interval(
        r#"times = [{start_time="02:00", end_time="04:00"}], weekdays = ["sunday"], location = "Europe/Berlin""#,
    );
    assert_eq!(interval, short("Sun 02:00-04:00 Europe/Berlin"));
    assert_eq!(interval.to_string(), "Sun 02:00–04:00 Europe/Berlin");
    // Numbers are accepted where Alertmanager takes numeric strings.
    assert_eq!(
        toml_interval(r#"days_of_month = [1, "-3:-1"], years = [2026], months = [5]"#),
        toml_interval(r#"days_of_month = ["1", "-3:-1"], years = ["2026"], months = ["may"]"#),
    );
    // Names in any case, and three-letter abbreviations.
    assert_eq!(
        toml_interval(r#"weekdays = ["Mon:FRI"], months = ["Jan:mar"]"#),
        toml_interval(r#"weekdays = ["monday:friday"], months = ["january:march"]"#),
    );
}

#[test]
fn serialisation_round_trips() {
    let interval = toml_interval(
        r#"times = [{ start_time = "06:00", end_time = "23:59" }, { start_time = "00:00", end_time = "01:00" }],
           weekdays = ["monday:wednesday", "saturday"], days_of_month = ["1:5", "-3:-1"],
           months = ["1:3", "december"], years = ["2020:2022", "2030"], location = "America/New_York""#,
    );
    let spec = interval.to_spec();
    assert_eq!(
        spec.weekdays,
        Some(vec!["monday:wednesday".to_owned(), "saturday".to_owned()])
    );
    assert_eq!(
        spec.months,
        Some(vec!["january:march".to_owned(), "december".to_owned()])
    );
    let json = serde_json::to_string(&interval).unwrap();
    assert_eq!(
        serde_json::from_str::<TimeInterval>(&json).unwrap(),
        interval
    );
    let toml_text = toml::to_string(&Window2 {
        interval: interval.clone(),
    })
    .unwrap();
    assert_eq!(
        toml::from_str::<Window2>(&toml_text).unwrap().interval,
        interval
    );
    assert_eq!(
        interval.to_string(),
        "Mon–Wed,Sat 06:00–23:59,00:00–01:00 days 1:5,-3:-1 Jan–Mar,Dec 2020–2022,2030 America/New_York"
    );
    // UTC is the default and is left out.
    assert_eq!(short("Sun").to_spec().location, None);
}

#[derive(serde::Serialize, Deserialize)]
struct Window2 {
    interval: TimeInterval,
}

#[test]
fn invalid_specs_name_the_field_and_the_value() {
    let cases = [
        (
            r#"times = [{ start_time = "04:00", end_time = "02:00" }]"#,
            "times: the start 04:00 must be before the end 02:00",
        ),
        (
            r#"times = [{ start_time = "04:00", end_time = "04:00" }]"#,
            "times: the start 04:00 must be before the end 04:00",
        ),
        (
            r#"times = [{ start_time = "4h", end_time = "05:00" }]"#,
            r#"times: "4h" is not a time of day"#,
        ),
        (
            r#"times = [{ start_time = "23:00", end_time = "24:30" }]"#,
            r#"times: "24:30" is not a time of day"#,
        ),
        (
            r#"times = [{ start_time = "23:00" }]"#,
            "missing field `end_time`",
        ),
        (
            r#"weekdays = ["funday"]"#,
            r#"weekdays: "funday" is not a weekday"#,
        ),
        (
            r#"weekdays = ["saturday:sunday"]"#,
            r#"weekdays: "saturday:sunday" starts after it ends: the week starts on Sunday"#,
        ),
        (
            r#"months = ["smarch"]"#,
            r#"months: "smarch" is not a month"#,
        ),
        (r"months = [13]", r#"months: "13" is not a month"#),
        (
            r#"months = ["december:january"]"#,
            r#"months: "december:january" starts after it ends"#,
        ),
        (
            r"days_of_month = [0]",
            r#"days_of_month: "0": there is no day 0"#,
        ),
        (
            r#"days_of_month = ["32"]"#,
            r#"days_of_month: "32" is not a day of the month"#,
        ),
        (
            r#"days_of_month = ["-3:5"]"#,
            r#"days_of_month: "-3:5": a range that starts counting from the month's end must end so too"#,
        ),
        (
            r#"days_of_month = ["10:5"]"#,
            r#"days_of_month: "10:5" starts after it ends"#,
        ),
        (
            r#"days_of_month = ["1:2:3"]"#,
            r#"days_of_month: "1:2:3" is not a range"#,
        ),
        (
            r#"years = ["2022:2020"]"#,
            r#"years: "2022:2020" starts after it ends"#,
        ),
        (r#"years = ["next"]"#, r#"years: "next" is not a year"#),
        (
            r"years = [true]",
            r#"a range as text, like "1:5", or a number"#,
        ),
        (
            r#"location = "Mars/Olympus_Mons""#,
            r#"location: "Mars/Olympus_Mons" is not a known IANA time zone"#,
        ),
        (
            r#"location = "Local""#,
            r#"location: "Local" is not a known IANA time zone (like Europe/Berlin or UTC): Ward does not use the machine's own zone, name it"#,
        ),
        (
            r"weekdays = []",
            "weekdays: the list is empty and would never match",
        ),
        (
            r#"time_zone = "Europe/Berlin""#,
            "unknown field `time_zone`",
        ),
    ];
    for (body, expected) in cases {
        let error = toml_error(body);
        assert!(
            error.contains(expected),
            "{body}: expected {expected:?} in\n{error}"
        );
    }
}

#[test]
fn the_validated_constructor() {
    let spec = TimeIntervalSpec {
        weekdays: Some(vec!["monday:friday".to_owned()]),
        location: Some("europe/berlin".to_owned()),
        ..TimeIntervalSpec::default()
    };
    let interval = TimeInterval::new(spec).unwrap();
    assert_eq!(
        interval.location(),
        "Europe/Berlin",
        "the canonical spelling"
    );
    assert_eq!(
        TimeInterval::new(TimeIntervalSpec {
            days_of_month: Some(vec!["0".to_owned()]),
            ..TimeIntervalSpec::default()
        }),
        Err(TimeIntervalError::DayZero {
            value: "0".to_owned()
        })
    );
}

#[test]
fn short_forms_parse_and_display() {
    for (input, shown) in [
        (
            "Sun 02:00-04:00 Europe/Berlin",
            "Sun 02:00–04:00 Europe/Berlin",
        ),
        (
            "Sun 02:00–04:00 Europe/Berlin",
            "Sun 02:00–04:00 Europe/Berlin",
        ),
        (
            "sunday 2:00 - 4:00 europe/berlin",
            "Sun 02:00–04:00 Europe/Berlin",
        ),
        ("Mon-Fri 09:00-17:00", "Mon–Fri 09:00–17:00 UTC"),
        ("Monday–Friday 09:00–17:00 UTC", "Mon–Fri 09:00–17:00 UTC"),
        ("Sat,Sun", "Sat,Sun UTC"),
        ("Sat, Sun Europe/Berlin", "Sat,Sun Europe/Berlin"),
        ("Sun Europe/Berlin", "Sun Europe/Berlin"),
        ("Fri-Mon 22:00-24:00", "Fri–Sat,Sun–Mon 22:00–24:00 UTC"),
        (
            "02:00-04:00,14:00-15:00 Asia/Tokyo",
            "02:00–04:00,14:00–15:00 Asia/Tokyo",
        ),
        ("tue,thu 12:00-13:00", "Tue,Thu 12:00–13:00 UTC"),
        // An end of 00:00 is the midnight that ends the day.
        ("Sun 22:00-00:00", "Sun 22:00–24:00 UTC"),
    ] {
        let interval = short(input);
        assert_eq!(interval.to_string(), shown, "{input}");
        assert_eq!(short(shown), interval, "{shown} round trip");
        assert_eq!(shown.parse::<TimeInterval>().unwrap(), interval);
    }
    // All of Sunday, Berlin time.
    let sunday = short("Sun Europe/Berlin");
    assert!(sunday.contains(ms("2026-01-03T23:00:00Z")));
    assert!(!sunday.contains(ms("2026-01-04T23:00:00Z")));
}

#[test]
fn short_form_errors_are_clear() {
    let cases = [
        (
            "Mon-Fri 22:00-06:00 UTC",
            "times: 22:00–06:00 ends before it starts, and a window cannot cross midnight: split it in two windows, 22:00–24:00 and 00:00–06:00 on the next day",
        ),
        (
            "Sun 04:00-04:00",
            "times: the start 04:00 must be before the end 04:00",
        ),
        ("Sun 25:00-26:00", r#"times: "25:00" is not a time of day"#),
        ("Sun 24:00-24:00", r#"times: "24:00" is not a time of day"#),
        (
            "Sun 02:00",
            r#""02:00": a time range is a start and an end, as 02:00-04:00"#,
        ),
        ("Sun,Funday", r#"weekdays: "Funday" is not a weekday"#),
        (
            "Funday 02:00-04:00",
            r#""Funday" is not weekdays (Mon-Fri, Sat,Sun), times (02:00-04:00) or, last, a time zone"#,
        ),
        (
            "Sun 02:00-04:00 Mars/Olympus_Mons",
            r#"location: "Mars/Olympus_Mons" is not a known IANA time zone"#,
        ),
        ("", "give weekdays, times or both"),
        ("Europe/Berlin", "give weekdays, times or both"),
        ("Sun Mon", "weekdays given twice"),
        ("02:00-03:00 04:00-05:00", "times given twice"),
    ];
    for (input, expected) in cases {
        let error = TimeInterval::parse_short(input)
            .map(|i| i.to_string())
            .expect_err(input)
            .to_string();
        assert!(
            error.contains(expected),
            "{input}: expected {expected:?} in\n{error}"
        );
    }
}

/// On a machine without tzdata zones still resolve: jiff falls back to its bundled copy, which
/// is compiled in only with the `tzdb-bundle-always` feature (on Linux).
#[test]
fn the_bundled_time_zone_database_is_compiled_in() {
    let bundled = jiff::tz::TimeZoneDatabase::bundled();
    let berlin = bundled.get("Europe/Berlin").unwrap();
    let at: Timestamp = "2026-03-29T01:00:00Z".parse().unwrap();
    assert_eq!(berlin.to_offset(at), jiff::tz::offset(2));
}
