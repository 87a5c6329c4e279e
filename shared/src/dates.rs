//! Working days, bank holidays and the dates of the next meetings after a conference.
//!
//! **Bank holidays** are those of England and Wales (Scotland and Northern Ireland
//! have others). Every year has eight:
//! - New Year's Day (1 January);
//! - Good Friday and Easter Monday, from the date of Easter Sunday in the Gregorian
//!   calendar;
//! - the early May bank holiday, the first Monday of May;
//! - the spring bank holiday, the last Monday of May;
//! - the summer bank holiday, the last Monday of August;
//! - Christmas Day (25 December) and Boxing Day (26 December).
//!
//! When New Year's Day, Christmas Day or Boxing Day falls on a Saturday or Sunday, the
//! holiday is taken on the next weekday that is not already a holiday. So New Year's
//! Day on a Saturday or Sunday gives the Monday after; Christmas on a Saturday gives
//! Monday 27 and Tuesday 28 December; Christmas on a Sunday gives Monday 26 and
//! Tuesday 27 December; Boxing Day on a Saturday gives Monday 28 December.
//!
//! Now and then a holiday is moved or an extra one is added by royal proclamation
//! (jubilees, royal weddings, a state funeral). The ones since 1995 are listed in
//! [`ONE_OFFS`]; a new one must be added there when it is announced. Years before
//! 1978 had no early May holiday; we apply today's rules to every year all the same.
//!
//! A **working day** is Monday to Friday, unless it is a bank holiday.
//!
//! **After a conference** held on a given day:
//! - the first core group meets within 10 working days: by the 10th working day after
//!   the conference, not counting the day of the conference itself. We use the same
//!   rule after every kind of conference;
//! - the next review conference is held within 3 calendar months of an initial or
//!   pre-birth conference, and within 6 calendar months of a review conference.
//!   Adding months keeps the day of the month, or takes the last day of the month
//!   when it is shorter (31 January plus one month is 28 or 29 February). As it is a
//!   deadline, a date that is not a working day is brought earlier, to the working day
//!   before it.

use time::macros::date;
use time::{Date, Month, Weekday};

use crate::model::ConferenceKind;

/// A change to the usual bank holidays, made for one year only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OneOff {
    /// A usual holiday moved to another day.
    Moved { from: Date, to: Date },
    /// A holiday added to the usual ones.
    Extra(Date),
}

/// The one-off changes to the bank holidays of England and Wales since 1995, with
/// their reasons.
pub const ONE_OFFS: &[(OneOff, &str)] = &[
    (
        OneOff::Moved {
            from: date!(1995 - 05 - 01),
            to: date!(1995 - 05 - 08),
        },
        "early May bank holiday moved for the 50th anniversary of VE Day",
    ),
    (OneOff::Extra(date!(1999 - 12 - 31)), "Millennium"),
    (
        OneOff::Moved {
            from: date!(2002 - 05 - 27),
            to: date!(2002 - 06 - 04),
        },
        "spring bank holiday moved for the Golden Jubilee",
    ),
    (OneOff::Extra(date!(2002 - 06 - 03)), "Golden Jubilee"),
    (
        OneOff::Extra(date!(2011 - 04 - 29)),
        "wedding of Prince William and Catherine Middleton",
    ),
    (
        OneOff::Moved {
            from: date!(2012 - 05 - 28),
            to: date!(2012 - 06 - 04),
        },
        "spring bank holiday moved for the Diamond Jubilee",
    ),
    (OneOff::Extra(date!(2012 - 06 - 05)), "Diamond Jubilee"),
    (
        OneOff::Moved {
            from: date!(2020 - 05 - 04),
            to: date!(2020 - 05 - 08),
        },
        "early May bank holiday moved for the 75th anniversary of VE Day",
    ),
    (
        OneOff::Moved {
            from: date!(2022 - 05 - 30),
            to: date!(2022 - 06 - 02),
        },
        "spring bank holiday moved for the Platinum Jubilee",
    ),
    (OneOff::Extra(date!(2022 - 06 - 03)), "Platinum Jubilee"),
    (
        OneOff::Extra(date!(2022 - 09 - 19)),
        "state funeral of Queen Elizabeth II",
    ),
    (
        OneOff::Extra(date!(2023 - 05 - 08)),
        "coronation of King Charles III",
    ),
];

/// The bank holidays of England and Wales in `year`, earliest first.
///
/// Panics for a year outside the range of [`Date`] (beyond ±9999).
pub fn bank_holidays(year: i32) -> Vec<Date> {
    let mut days = Vec::with_capacity(11);
    add_with_substitute(&mut days, ymd(year, Month::January, 1));

    let easter = easter_sunday(year);
    days.push(easter - time::Duration::days(2));
    days.push(easter + time::Duration::days(1));

    days.push(first_monday(year, Month::May));
    days.push(last_monday(year, Month::May));
    days.push(last_monday(year, Month::August));

    add_with_substitute(&mut days, ymd(year, Month::December, 25));
    add_with_substitute(&mut days, ymd(year, Month::December, 26));

    for (change, _) in ONE_OFFS {
        match *change {
            OneOff::Moved { from, to } if from.year() == year => {
                days.retain(|d| *d != from);
                days.push(to);
            }
            OneOff::Extra(day) if day.year() == year => days.push(day),
            _ => {}
        }
    }

    days.sort_unstable();
    days.dedup();
    days
}

/// Whether `date` is a working day: Monday to Friday, and not a bank holiday.
pub fn is_working_day(date: Date) -> bool {
    !is_weekend(date) && !bank_holidays(date.year()).contains(&date)
}

/// The date `days` working days after `from`, not counting `from` itself. With no
/// holidays in the way, 10 working days after a Monday is the Monday two weeks later.
/// Zero days gives `from` itself, whatever day it is.
pub fn add_working_days(from: Date, days: u32) -> Date {
    let mut date = from;
    let mut left = days;
    while left > 0 {
        date = next_day(date);
        if is_working_day(date) {
            left -= 1;
        }
    }
    date
}

/// `date` plus `months` calendar months. The day of the month stays the same, or
/// becomes the last day of the month when that month is shorter: 31 January plus one
/// month is 28 February, or 29 February in a leap year.
///
/// Panics if the result is beyond the range of [`Date`] (year ±9999).
pub fn add_calendar_months(date: Date, months: u32) -> Date {
    let index = i64::from(date.year()) * 12 + i64::from(u8::from(date.month()) - 1);
    let index = index + i64::from(months);
    let year = i32::try_from(index.div_euclid(12)).expect("a year within range");
    let month = Month::try_from(index.rem_euclid(12) as u8 + 1).expect("a month from 1 to 12");
    ymd(year, month, date.day().min(month.length(year)))
}

/// The last days by which the meetings after a conference must be held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NextMeetings {
    /// The first core group: within 10 working days of the conference.
    pub core_group_by: Date,
    /// The next review conference: within 3 months of an initial or pre-birth
    /// conference, within 6 months of a review.
    pub review_by: Date,
}

/// The last days for the meetings after a conference of `kind` held on `held`. A
/// pre-birth conference is followed like an initial one.
///
/// `None` for a conference held in the calendar's last year (9999): its meetings
/// would fall after the end of the calendar [`Date`] holds. They fall within six
/// months and three weeks of the conference, so any earlier year has room for them.
pub fn next_meetings(held: Date, kind: ConferenceKind) -> Option<NextMeetings> {
    if held.year() >= Date::MAX.year() {
        return None;
    }
    let months = match kind {
        ConferenceKind::Initial | ConferenceKind::PreBirth => 3,
        ConferenceKind::Review => 6,
    };
    let mut review_by = add_calendar_months(held, months);
    while !is_working_day(review_by) {
        review_by = review_by.previous_day().expect("a date within range");
    }
    Some(NextMeetings {
        core_group_by: add_working_days(held, 10),
        review_by,
    })
}

/// Easter Sunday in `year`, by the Gregorian computus (the "anonymous" algorithm
/// published by Meeus, Jones and Butcher).
pub fn easter_sunday(year: i32) -> Date {
    let a = year.rem_euclid(19);
    let b = year.div_euclid(100);
    let c = year.rem_euclid(100);
    let d = b / 4;
    let e = b % 4;
    let f = (b + 8) / 25;
    let g = (b - f + 1) / 3;
    let h = (19 * a + b - d - g + 15).rem_euclid(30);
    let i = c / 4;
    let k = c % 4;
    let l = (32 + 2 * e + 2 * i - h - k).rem_euclid(7);
    let m = (a + 11 * h + 22 * l) / 451;
    let n = h + l - 7 * m + 114;
    let month = if n / 31 == 3 {
        Month::March
    } else {
        Month::April
    };
    ymd(year, month, (n % 31 + 1) as u8)
}

fn ymd(year: i32, month: Month, day: u8) -> Date {
    Date::from_calendar_date(year, month, day).expect("a date within range")
}

fn next_day(date: Date) -> Date {
    date.next_day().expect("a date within range")
}

fn is_weekend(date: Date) -> bool {
    matches!(date.weekday(), Weekday::Saturday | Weekday::Sunday)
}

/// The first Monday of `month`.
fn first_monday(year: i32, month: Month) -> Date {
    let first = ymd(year, month, 1);
    let to_monday = (7 - first.weekday().number_days_from_monday()) % 7;
    first + time::Duration::days(i64::from(to_monday))
}

/// The last Monday of `month`.
fn last_monday(year: i32, month: Month) -> Date {
    let last = ymd(year, month, month.length(year));
    last - time::Duration::days(i64::from(last.weekday().number_days_from_monday()))
}

/// Adds a holiday, or when it falls on a weekend, its substitute: the next weekday
/// that is not already a holiday.
fn add_with_substitute(days: &mut Vec<Date>, holiday: Date) {
    let mut day = holiday;
    while is_weekend(day) || days.contains(&day) {
        day = next_day(day);
    }
    days.push(day);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bank_holidays_of_ordinary_years() {
        assert_eq!(
            bank_holidays(2019),
            [
                date!(2019 - 01 - 01),
                date!(2019 - 04 - 19),
                date!(2019 - 04 - 22),
                date!(2019 - 05 - 06),
                date!(2019 - 05 - 27),
                date!(2019 - 08 - 26),
                date!(2019 - 12 - 25),
                date!(2019 - 12 - 26),
            ]
        );
        assert_eq!(
            bank_holidays(2024),
            [
                date!(2024 - 01 - 01),
                date!(2024 - 03 - 29),
                date!(2024 - 04 - 01),
                date!(2024 - 05 - 06),
                date!(2024 - 05 - 27),
                date!(2024 - 08 - 26),
                date!(2024 - 12 - 25),
                date!(2024 - 12 - 26),
            ]
        );
        assert_eq!(
            bank_holidays(2025),
            [
                date!(2025 - 01 - 01),
                date!(2025 - 04 - 18),
                date!(2025 - 04 - 21),
                date!(2025 - 05 - 05),
                date!(2025 - 05 - 26),
                date!(2025 - 08 - 25),
                date!(2025 - 12 - 25),
                date!(2025 - 12 - 26),
            ]
        );
    }

    #[test]
    fn christmas_and_new_year_on_a_weekend_move_to_the_next_weekdays() {
        // Christmas 2021 was a Saturday: Monday 27 and Tuesday 28 December.
        assert_eq!(
            bank_holidays(2021),
            [
                date!(2021 - 01 - 01),
                date!(2021 - 04 - 02),
                date!(2021 - 04 - 05),
                date!(2021 - 05 - 03),
                date!(2021 - 05 - 31),
                date!(2021 - 08 - 30),
                date!(2021 - 12 - 27),
                date!(2021 - 12 - 28),
            ]
        );
        // New Year's Day 2022 was a Saturday: Monday 3 January.
        assert_eq!(bank_holidays(2022)[0], date!(2022 - 01 - 03));
        // New Year's Day 2023 was a Sunday: Monday 2 January.
        assert_eq!(bank_holidays(2023)[0], date!(2023 - 01 - 02));
        // Christmas 2022 was a Sunday: Monday 26 and Tuesday 27 December.
        let end_of_2022 = &bank_holidays(2022)[8..];
        assert_eq!(end_of_2022, [date!(2022 - 12 - 26), date!(2022 - 12 - 27)]);
        // Christmas 2011 was a Sunday too.
        assert!(bank_holidays(2011).ends_with(&[date!(2011 - 12 - 26), date!(2011 - 12 - 27)]));
        // Boxing Day 2026 is a Saturday: Christmas Friday 25, then Monday 28.
        assert!(bank_holidays(2026).ends_with(&[date!(2026 - 12 - 25), date!(2026 - 12 - 28)]));
        assert!(!is_working_day(date!(2026 - 12 - 28)));
        assert!(is_working_day(date!(2026 - 12 - 29)));
        // Christmas 2027 is a Saturday.
        assert!(bank_holidays(2027).ends_with(&[date!(2027 - 12 - 27), date!(2027 - 12 - 28)]));
    }

    #[test]
    fn easter_by_the_gregorian_computus() {
        let known = [
            (1995, date!(1995 - 04 - 16)),
            (2000, date!(2000 - 04 - 23)),
            (2002, date!(2002 - 03 - 31)),
            (2008, date!(2008 - 03 - 23)),
            (2011, date!(2011 - 04 - 24)),
            (2019, date!(2019 - 04 - 21)),
            (2024, date!(2024 - 03 - 31)),
            (2025, date!(2025 - 04 - 20)),
            (2027, date!(2027 - 03 - 28)),
            (2038, date!(2038 - 04 - 25)),
            (2100, date!(2100 - 03 - 28)),
        ];
        for (year, easter) in known {
            assert_eq!(easter_sunday(year), easter, "Easter {year}");
        }
        let easter_days = |year: i32| -> Vec<Date> {
            let easter = easter_sunday(year);
            bank_holidays(year)
                .into_iter()
                .filter(|d| (-2..=1).contains(&(*d - easter).whole_days()))
                .collect()
        };
        assert_eq!(
            easter_days(2024),
            [date!(2024 - 03 - 29), date!(2024 - 04 - 01)]
        );
        assert_eq!(
            easter_days(2025),
            [date!(2025 - 04 - 18), date!(2025 - 04 - 21)]
        );
        assert_eq!(
            easter_days(2019),
            [date!(2019 - 04 - 19), date!(2019 - 04 - 22)]
        );
        // The latest possible Easter: 25 April 2038.
        assert_eq!(
            easter_days(2038),
            [date!(2038 - 04 - 23), date!(2038 - 04 - 26)]
        );
    }

    #[test]
    fn one_off_bank_holidays() {
        assert_eq!(
            bank_holidays(2022),
            [
                date!(2022 - 01 - 03),
                date!(2022 - 04 - 15),
                date!(2022 - 04 - 18),
                date!(2022 - 05 - 02),
                date!(2022 - 06 - 02),
                date!(2022 - 06 - 03),
                date!(2022 - 08 - 29),
                date!(2022 - 09 - 19),
                date!(2022 - 12 - 26),
                date!(2022 - 12 - 27),
            ]
        );
        assert!(is_working_day(date!(2022 - 05 - 30)));
        assert_eq!(
            bank_holidays(2023),
            [
                date!(2023 - 01 - 02),
                date!(2023 - 04 - 07),
                date!(2023 - 04 - 10),
                date!(2023 - 05 - 01),
                date!(2023 - 05 - 08),
                date!(2023 - 05 - 29),
                date!(2023 - 08 - 28),
                date!(2023 - 12 - 25),
                date!(2023 - 12 - 26),
            ]
        );
        assert_eq!(
            bank_holidays(2020),
            [
                date!(2020 - 01 - 01),
                date!(2020 - 04 - 10),
                date!(2020 - 04 - 13),
                date!(2020 - 05 - 08),
                date!(2020 - 05 - 25),
                date!(2020 - 08 - 31),
                date!(2020 - 12 - 25),
                date!(2020 - 12 - 28),
            ]
        );
        assert_eq!(
            bank_holidays(2012),
            [
                date!(2012 - 01 - 02),
                date!(2012 - 04 - 06),
                date!(2012 - 04 - 09),
                date!(2012 - 05 - 07),
                date!(2012 - 06 - 04),
                date!(2012 - 06 - 05),
                date!(2012 - 08 - 27),
                date!(2012 - 12 - 25),
                date!(2012 - 12 - 26),
            ]
        );
        assert_eq!(
            bank_holidays(2002),
            [
                date!(2002 - 01 - 01),
                date!(2002 - 03 - 29),
                date!(2002 - 04 - 01),
                date!(2002 - 05 - 06),
                date!(2002 - 06 - 03),
                date!(2002 - 06 - 04),
                date!(2002 - 08 - 26),
                date!(2002 - 12 - 25),
                date!(2002 - 12 - 26),
            ]
        );
        assert!(bank_holidays(2011).contains(&date!(2011 - 04 - 29)));
        assert!(bank_holidays(1995).contains(&date!(1995 - 05 - 08)));
        assert!(!bank_holidays(1995).contains(&date!(1995 - 05 - 01)));
        // Christmas 1999 was a Saturday, then the Millennium, then New Year's Day 2000
        // on a Saturday.
        assert!(bank_holidays(1999).ends_with(&[
            date!(1999 - 12 - 27),
            date!(1999 - 12 - 28),
            date!(1999 - 12 - 31),
        ]));
        assert_eq!(bank_holidays(2000)[0], date!(2000 - 01 - 03));
    }

    #[test]
    fn the_one_offs_table_is_consistent() {
        for (change, reason) in ONE_OFFS {
            match *change {
                OneOff::Moved { from, to } => {
                    // What was moved was a usual Monday holiday of the same year.
                    assert_eq!(from.weekday(), Weekday::Monday, "{reason}");
                    assert_eq!(from.year(), to.year(), "{reason}");
                    assert!(!bank_holidays(from.year()).contains(&from), "{reason}");
                    assert!(bank_holidays(to.year()).contains(&to), "{reason}");
                }
                OneOff::Extra(day) => assert!(bank_holidays(day.year()).contains(&day), "{reason}"),
            }
        }
    }

    #[test]
    fn every_bank_holiday_is_a_weekday() {
        for year in 1995..=2100 {
            let days = bank_holidays(year);
            assert!(days.len() >= 8, "{year}");
            assert!(days.windows(2).all(|w| w[0] < w[1]), "{year}");
            assert!(
                days.iter().all(|d| !is_weekend(*d) && d.year() == year),
                "{year}"
            );
        }
    }

    #[test]
    fn working_days() {
        assert!(is_working_day(date!(2025 - 06 - 02)));
        assert!(!is_working_day(date!(2025 - 06 - 07)));
        assert!(!is_working_day(date!(2025 - 06 - 08)));
        assert!(!is_working_day(date!(2025 - 12 - 25)));
        // Ten working days after a Monday with no holidays: the Monday two weeks later.
        assert_eq!(
            add_working_days(date!(2025 - 06 - 02), 10),
            date!(2025 - 06 - 16)
        );
        assert_eq!(
            add_working_days(date!(2025 - 06 - 02), 0),
            date!(2025 - 06 - 02)
        );
        // From a Saturday, the first working day is the Monday.
        assert_eq!(
            add_working_days(date!(2025 - 06 - 07), 1),
            date!(2025 - 06 - 09)
        );
        // From Friday 18 December 2026, over Christmas (Friday 25, Monday 28) and New
        // Year (Friday 1 January 2027): 21, 22, 23, 24, 29, 30, 31 December, then 4, 5
        // and 6 January.
        assert_eq!(
            add_working_days(date!(2026 - 12 - 18), 10),
            date!(2027 - 01 - 06)
        );
        // From Thursday 17 April 2025, over Easter (Friday 18, Monday 21) and the early
        // May holiday (Monday 5): 22-25 April, 28 April-2 May, then 6 May.
        assert_eq!(
            add_working_days(date!(2025 - 04 - 17), 10),
            date!(2025 - 05 - 06)
        );
    }

    #[test]
    fn calendar_months() {
        assert_eq!(
            add_calendar_months(date!(2023 - 11 - 30), 3),
            date!(2024 - 02 - 29)
        );
        assert_eq!(
            add_calendar_months(date!(2024 - 02 - 29), 6),
            date!(2024 - 08 - 29)
        );
        assert_eq!(
            add_calendar_months(date!(2025 - 11 - 30), 3),
            date!(2026 - 02 - 28)
        );
        assert_eq!(
            add_calendar_months(date!(2023 - 01 - 31), 1),
            date!(2023 - 02 - 28)
        );
        assert_eq!(
            add_calendar_months(date!(2024 - 01 - 31), 1),
            date!(2024 - 02 - 29)
        );
        assert_eq!(
            add_calendar_months(date!(2024 - 08 - 31), 6),
            date!(2025 - 02 - 28)
        );
        assert_eq!(
            add_calendar_months(date!(2024 - 10 - 15), 3),
            date!(2025 - 01 - 15)
        );
        assert_eq!(
            add_calendar_months(date!(2024 - 12 - 31), 12),
            date!(2025 - 12 - 31)
        );
        assert_eq!(
            add_calendar_months(date!(2024 - 05 - 31), 0),
            date!(2024 - 05 - 31)
        );
    }

    #[test]
    fn next_meetings_after_an_initial_conference() {
        // Thursday 30 November 2023: core group by Thursday 14 December; review by
        // Thursday 29 February 2024.
        let next = next_meetings(date!(2023 - 11 - 30), ConferenceKind::Initial).unwrap();
        assert_eq!(
            next,
            NextMeetings {
                core_group_by: date!(2023 - 12 - 14),
                review_by: date!(2024 - 02 - 29),
            }
        );
        // A pre-birth conference is followed like an initial one.
        assert_eq!(
            next_meetings(date!(2023 - 11 - 30), ConferenceKind::PreBirth).unwrap(),
            next
        );
        // Three months after Friday 28 November 2025 is Saturday 28 February 2026:
        // brought back to Friday 27 February.
        let next = next_meetings(date!(2025 - 11 - 28), ConferenceKind::Initial).unwrap();
        assert_eq!(next.review_by, date!(2026 - 02 - 27));
        // Three months after Thursday 25 September 2025 is Christmas Day: brought back
        // to Wednesday 24 December.
        let next = next_meetings(date!(2025 - 09 - 25), ConferenceKind::Initial).unwrap();
        assert_eq!(next.review_by, date!(2025 - 12 - 24));
    }

    #[test]
    fn a_conference_in_the_calendars_last_year_has_no_next_meetings() {
        let last_day_with_room = next_meetings(date!(9998 - 12 - 31), ConferenceKind::Review);
        assert_eq!(
            last_day_with_room.map(|n| (n.core_group_by, n.review_by)),
            Some((date!(9999 - 01 - 15), date!(9999 - 06 - 30)))
        );
        for kind in [ConferenceKind::Initial, ConferenceKind::Review] {
            assert_eq!(next_meetings(date!(9999 - 01 - 01), kind), None);
            assert_eq!(next_meetings(date!(9999 - 12 - 31), kind), None);
        }
    }

    #[test]
    fn next_meetings_after_a_review_conference() {
        // Thursday 29 February 2024: core group by Thursday 14 March (1-14 March has no
        // holidays); review by Thursday 29 August.
        let next = next_meetings(date!(2024 - 02 - 29), ConferenceKind::Review).unwrap();
        assert_eq!(
            next,
            NextMeetings {
                core_group_by: date!(2024 - 03 - 14),
                review_by: date!(2024 - 08 - 29),
            }
        );
        // Six months after Friday 26 June 2026 is Saturday 26 December; Friday 25 is
        // Christmas Day, so the review is due by Thursday 24 December.
        let next = next_meetings(date!(2026 - 06 - 26), ConferenceKind::Review).unwrap();
        assert_eq!(next.review_by, date!(2026 - 12 - 24));
        // Its core group: 29 and 30 June, 1-3 July, 6-10 July.
        assert_eq!(next.core_group_by, date!(2026 - 07 - 10));
    }
}
