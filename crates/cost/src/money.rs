//! Money and quantities: exact decimals, parsed strictly, rounded only for display.

use std::fmt;
use std::str::FromStr as _;

use rust_decimal::{Decimal, RoundingStrategy};
use serde::Deserializer;

use crate::CostError;

/// Hours in a billing month, as AWS, Azure and infracost count them (365 × 24 / 12).
pub const HOURS_PER_MONTH: Decimal = Decimal::from_parts(730, 0, 0, false, 0);

/// Days in a billing month (730 h / 24), for prices quoted per day.
pub fn days_per_month() -> Decimal {
    HOURS_PER_MONTH / Decimal::from(24)
}

/// Parses a non-negative USD amount: `300`, `299.99`, `$300`, `1,200` (commas as thousands
/// separators are accepted; whitespace around is ignored).
///
/// # Errors
/// [`CostError::BadAmount`] for anything else, including negative amounts and percentages.
pub fn parse_usd(text: &str) -> Result<Decimal, CostError> {
    let t = text.trim();
    let t = t.strip_prefix('$').unwrap_or(t).trim_start();
    parse_amount(t, "an amount in USD such as `300` or `$299.99`")
}

/// Parses a non-negative plain decimal number (commas as thousands separators allowed).
///
/// # Errors
/// [`CostError::BadAmount`], naming `expected`.
pub fn parse_amount(text: &str, expected: &'static str) -> Result<Decimal, CostError> {
    let bad = || CostError::BadAmount {
        text: text.to_owned(),
        expected,
    };
    let cleaned: String = text.trim().chars().filter(|c| *c != ',').collect();
    if cleaned.is_empty() || !cleaned.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return Err(bad());
    }
    let value = Decimal::from_str(&cleaned).map_err(|_| bad())?;
    Ok(value)
}

/// Rounds to cents (half away from zero), for display, always with two decimals: `73` becomes
/// `73.00`, so a rounded amount reads the same in JSON as on an invoice.
pub fn round_cents(value: Decimal) -> Decimal {
    let mut cents = value.round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero);
    cents.rescale(2);
    cents
}

/// `1234.5` -> `1,234.50`.
pub fn display_usd(value: Decimal) -> String {
    let rounded = round_cents(value);
    let negative = rounded.is_sign_negative() && !rounded.is_zero();
    let text = format!("{:.2}", rounded.abs());
    let (int, frac) = text.split_once('.').unwrap_or((&text, "00"));
    let mut grouped = String::new();
    for (i, ch) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(ch);
    }
    format!("{}{grouped}.{frac}", if negative { "-" } else { "" })
}

/// A unit price for display: at least 2 decimals, up to the catalog's precision.
pub fn display_price(value: Decimal) -> String {
    let n = value.normalize();
    if n.scale() <= 2 {
        format!("{:.2}", n)
    } else {
        n.to_string()
    }
}

/// A quantity for display: exact, without trailing zeros, thousands grouped.
pub fn display_quantity(value: Decimal) -> String {
    let n = value.normalize();
    let text = n.to_string();
    let (int, frac) = match text.split_once('.') {
        Some((i, f)) => (i.to_owned(), Some(f.to_owned())),
        None => (text.clone(), None),
    };
    let mut grouped = String::new();
    for (i, ch) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 && ch.is_ascii_digit() {
            grouped.push(',');
        }
        grouped.push(ch);
    }
    match frac {
        // Quantities such as 30.41666… days are shown to 4 places; the JSON keeps them exact.
        Some(f) if f.len() > 4 => {
            let r = n.round_dp_with_strategy(4, RoundingStrategy::MidpointAwayFromZero);
            let (_, f4) = r
                .to_string()
                .split_once('.')
                .map_or((String::new(), String::new()), |(a, b)| {
                    (a.to_owned(), b.to_owned())
                });
            format!("{grouped}.{f4}")
        }
        Some(f) => format!("{grouped}.{f}"),
        None => grouped,
    }
}

pub(crate) fn decimal_from_i64<E: serde::de::Error>(v: i64) -> Result<Decimal, E> {
    if v < 0 {
        return Err(E::custom(format!(
            "invalid value {v}: expected a non-negative number"
        )));
    }
    Ok(Decimal::from(v))
}

pub(crate) fn decimal_from_f64<E: serde::de::Error>(v: f64) -> Result<Decimal, E> {
    if !v.is_finite() {
        return Err(E::custom(format!(
            "invalid value {v}: expected a finite, non-negative number"
        )));
    }
    if v < 0.0 {
        return Err(E::custom(format!(
            "invalid value {v}: expected a non-negative number"
        )));
    }
    // Through the shortest decimal text of the float, so `10.5` is exactly 10.5.
    Decimal::from_str(&v.to_string())
        .or_else(|_| Decimal::from_scientific(&format!("{v:e}")))
        .map_err(|_| E::custom(format!("invalid value {v}: number out of range")))
}

/// The largest quantity (GB, capacity units) a spec may give: 10^12, a billion terabytes.
///
/// Far beyond any real environment, and low enough that quantity × 730 h × any catalog price,
/// summed over every line a config file can hold, stays inside `Decimal`'s range: the estimator
/// never overflows (rust_decimal panics on overflow).
pub const MAX_QUANTITY: Decimal = Decimal::from_parts(3_567_587_328, 232, 0, false, 0);

struct QuantityVisitor {
    expecting: &'static str,
    usd: bool,
}

impl QuantityVisitor {
    /// Quantities above [`MAX_QUANTITY`] are refused; USD amounts are only compared, never
    /// multiplied, so they keep `Decimal`'s range.
    fn bounded<E: serde::de::Error>(&self, value: Result<Decimal, E>) -> Result<Decimal, E> {
        let value = value?;
        if !self.usd && value > MAX_QUANTITY {
            return Err(E::custom(format!(
                "invalid value {}: expected a non-negative number of at most {}",
                value.normalize(),
                display_quantity(MAX_QUANTITY)
            )));
        }
        Ok(value)
    }
}

impl serde::de::Visitor<'_> for QuantityVisitor {
    type Value = Decimal;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.expecting)
    }
    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Decimal, E> {
        self.bounded(decimal_from_i64(v))
    }
    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Decimal, E> {
        self.bounded(Ok(Decimal::from(v)))
    }
    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Decimal, E> {
        self.bounded(decimal_from_f64(v))
    }
    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Decimal, E> {
        if self.usd {
            parse_usd(v).map_err(E::custom)
        } else {
            self.bounded(parse_amount(v, "a non-negative number").map_err(E::custom))
        }
    }
}

/// Deserialises a non-negative quantity (GB, capacity units) from a number or a numeric string.
///
/// # Errors
/// The deserializer's error for negative, non-numeric or non-finite values.
pub fn de_quantity<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Decimal, D::Error> {
    deserializer.deserialize_any(QuantityVisitor {
        expecting: "a non-negative number",
        usd: false,
    })
}

/// Deserialises an optional non-negative USD amount from a number or a string (`"$300"`).
///
/// # Errors
/// The deserializer's error for negative or non-numeric values.
pub fn de_opt_usd<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Decimal>, D::Error> {
    deserializer
        .deserialize_any(QuantityVisitor {
            expecting: "a non-negative amount in USD (`300` or `\"$300\"`)",
            usd: true,
        })
        .map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    #[test]
    fn usd_parsing_is_strict() {
        assert_eq!(parse_usd("300").unwrap(), d("300"));
        assert_eq!(parse_usd(" $1,200.50 ").unwrap(), d("1200.50"));
        for bad in ["", "$", "-5", "10%", "3e2", "300 USD", "ten", "1.2.3"] {
            assert!(parse_usd(bad).is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn display_rounds_half_away_from_zero_and_groups() {
        assert_eq!(display_usd(d("60.736")), "60.74");
        assert_eq!(display_usd(d("0.005")), "0.01");
        assert_eq!(display_usd(d("1234567.5")), "1,234,567.50");
        assert_eq!(display_usd(d("-12.345")), "-12.35");
        assert_eq!(display_usd(Decimal::ZERO), "0.00");
        assert_eq!(display_price(d("0.0416")), "0.0416");
        assert_eq!(display_price(d("0.1")), "0.10");
        assert_eq!(display_quantity(d("1460")), "1,460");
        assert_eq!(display_quantity(days_per_month()), "30.4167");
    }

    #[test]
    fn cents_always_have_two_decimals() {
        assert_eq!(round_cents(d("73")).to_string(), "73.00");
        assert_eq!(round_cents(d("60.736")).to_string(), "60.74");
        assert_eq!(round_cents(d("0.005")).to_string(), "0.01");
    }

    #[test]
    fn hours_per_month_is_730() {
        assert_eq!(HOURS_PER_MONTH, Decimal::from(730));
    }
}
