//! The host's own switches read from the environment (`TRIGGER_KAFKA_*`
//! modes): one of a few names, unset or empty meaning the default, anything
//! else a startup error that names the variable and the choices.

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
    parse(variable, std::env::var(variable).ok().as_deref(), choices)
}
