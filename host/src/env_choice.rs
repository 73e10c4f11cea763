//! The host's own knobs read from the environment (`TRIGGER_KAFKA_*`): a mode
//! (one of a few names) or a number. Unset or empty means the default;
//! anything else that does not parse is a startup error naming the variable
//! and what it expects, never silently the default.

use std::fmt::Display;
use std::str::FromStr;

/// Parses `value` of `variable` as one of `choices`; the first choice is the
/// default.
pub fn parse<T: Copy>(variable: &str, value: Option<&str>, choices: &[(&str, T)]) -> anyhow::Result<T> {
    let value = value.map(str::trim).unwrap_or("");
    if value.is_empty() {
        return Ok(choices[0].1);
    }
    match choices.iter().find(|(name, _)| *name == value) {
        Some((_, choice)) => Ok(*choice),
        None => {
            let names: Vec<&str> = choices.iter().map(|(name, _)| *name).collect();
            anyhow::bail!("{variable}={value:?}: expected one of {}", names.join(", "))
        }
    }
}

/// [`parse`] of the variable's value in this process's environment.
pub fn from_env<T: Copy>(variable: &str, choices: &[(&str, T)]) -> anyhow::Result<T> {
    parse(variable, value_of(variable)?.as_deref(), choices)
}

/// Parses `value` of `variable` as a number of at least `min`; unset or empty
/// is `default`.
pub fn parse_number<T>(variable: &str, value: Option<&str>, default: T, min: T) -> anyhow::Result<T>
where
    T: FromStr + PartialOrd + Display + Copy,
{
    let value = value.map(str::trim).unwrap_or("");
    if value.is_empty() {
        return Ok(default);
    }
    match value.parse::<T>() {
        Ok(n) if n >= min => Ok(n),
        _ => anyhow::bail!("{variable}={value:?}: expected a whole number of at least {min} (default {default})"),
    }
}

/// [`parse_number`] of the variable's value in this process's environment.
pub fn number_from_env<T>(variable: &str, default: T, min: T) -> anyhow::Result<T>
where
    T: FromStr + PartialOrd + Display + Copy,
{
    parse_number(variable, value_of(variable)?.as_deref(), default, min)
}

/// The variable's value; one that is not UTF-8 is an error too.
fn value_of(variable: &str) -> anyhow::Result<Option<String>> {
    match std::env::var(variable) {
        Ok(value) => Ok(Some(value)),
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(value)) => anyhow::bail!("{variable}={value:?}: not UTF-8"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_default_when_unset_and_fail_loudly_when_malformed() {
        assert_eq!(parse_number("V", None, 32usize, 1).unwrap(), 32);
        assert_eq!(parse_number("V", Some(" "), 32usize, 1).unwrap(), 32);
        assert_eq!(parse_number("V", Some(" 8 "), 32usize, 1).unwrap(), 8);
        for bad in ["4MiB", "-1", "0", "1e3"] {
            let e = parse_number("TRIGGER_KAFKA_X", Some(bad), 32usize, 1).unwrap_err().to_string();
            assert!(e.contains("TRIGGER_KAFKA_X") && e.contains(bad) && e.contains("at least 1"), "{e}");
        }
        assert_eq!(parse_number("V", Some("0"), 4usize, 0).unwrap(), 0);
    }

    #[test]
    fn modes_fail_loudly_too() {
        let choices = [("a", 1), ("b", 2)];
        assert_eq!(parse("V", None, &choices).unwrap(), 1);
        assert!(parse("V", Some("c"), &choices).unwrap_err().to_string().contains("expected one of a, b"));
    }
}
