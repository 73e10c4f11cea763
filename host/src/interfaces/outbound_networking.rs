//! A component's `allowed_outbound_hosts`, matched the way Spin matches it, so
//! a component that reaches a database here also reaches it under Spin and a
//! component refused by Spin is refused here too.
//!
//! An entry is `<scheme>://<host>[:<port>]`: scheme `*` or one word; host `*`,
//! `*.suffix`, a CIDR range (`10.0.0.0/8`), or a literal name or address;
//! port `*`, a number, or a range `a..b` (end exclusive), defaulting to the
//! scheme's well-known port (postgres 5432). Templates (`{{ var }}`) are
//! rendered before parsing. This host only provides outbound PostgreSQL, so an
//! entry naming another scheme is refused when the component is prepared.

use std::net::IpAddr;
use std::ops::Range;

use anyhow::{bail, Context, Result};
use url::Host;

/// The parsed allow-list of one component.
#[derive(Debug, Clone, Default)]
pub struct AllowedHosts {
    entries: Vec<Entry>,
}

#[derive(Debug, Clone, PartialEq)]
struct Entry {
    /// `None`: any scheme (`*://`).
    scheme: Option<String>,
    host: HostPattern,
    port: PortPattern,
}

#[derive(Debug, Clone, PartialEq)]
enum HostPattern {
    Any,
    /// `*.example.com`, stored as `.example.com`.
    AnySubdomain(String),
    Literal(Host),
    Cidr(ipnet::IpNet),
    /// `self`: the app itself (HTTP only; never a database).
    ToSelf,
}

#[derive(Debug, Clone, PartialEq)]
enum PortPattern {
    Any,
    Port(u16),
    Range(Range<u16>),
}

/// The schemes this host can connect to on a component's behalf.
const PROVIDED_SCHEMES: &[&str] = &["postgres"];

impl AllowedHosts {
    /// Parses rendered entries; an entry for an outbound service this host
    /// does not provide is an error naming it.
    pub fn parse(entries: &[String]) -> Result<Self> {
        if entries.len() == 1 && entries[0] == "insecure:allow-all" {
            bail!("'insecure:allow-all' is not allowed - use '*://*:*' instead if you really want to allow all outbound traffic'");
        }
        let entries = entries
            .iter()
            .map(|e| Entry::parse(e).with_context(|| format!("allowed_outbound_hosts entry {e:?}")))
            .collect::<Result<Vec<_>>>()?;
        for entry in &entries {
            if let Some(scheme) = &entry.scheme {
                if !PROVIDED_SCHEMES.contains(&scheme.as_str()) {
                    bail!(
                        "allowed_outbound_hosts entry \"{scheme}://…\": this host provides outbound connections only for {}",
                        PROVIDED_SCHEMES.iter().map(|s| format!("{s}://")).collect::<Vec<_>>().join(", ")
                    );
                }
            }
        }
        Ok(AllowedHosts { entries })
    }

    /// Whether `scheme://host[:port]` may be reached (`port` `None` = the
    /// scheme's default).
    pub fn allows(&self, scheme: &str, host: &str, port: Option<u16>) -> bool {
        let Ok(host) = Host::parse(host) else { return false };
        let Some(port) = port.or_else(|| well_known_port(scheme)) else { return false };
        self.entries.iter().any(|e| {
            e.scheme.as_deref().is_none_or(|s| s == scheme) && e.host.allows(&host) && e.port.allows(port)
        })
    }
}

impl Entry {
    fn parse(text: &str) -> Result<Self> {
        let text = text.trim();
        let Some((scheme, rest)) = text.split_once("://") else {
            bail!("it does not contain a scheme (e.g., 'postgres://' or '*://')");
        };
        let (host, port) = rest.rsplit_once(':').unwrap_or((rest, ""));
        let port = match port.split_once('/') {
            Some((_, path)) if !path.is_empty() => bail!("it has a path but is not allowed to"),
            Some((port, _)) => port,
            None => port,
        };
        let port = PortPattern::parse(port, scheme)?;
        let scheme = match scheme {
            "*" => None,
            s if !s.is_empty() && s.chars().all(char::is_alphabetic) => Some(s.to_owned()),
            s => bail!("invalid scheme {s:?}: only alphabetic characters are allowed"),
        };
        Ok(Entry { scheme, host: HostPattern::parse(host)?, port })
    }
}

impl HostPattern {
    fn parse(host: &str) -> Result<Self> {
        let host = host.trim();
        if host == "*" {
            return Ok(Self::Any);
        }
        if host == "self" || host == "self.alt" {
            return Ok(Self::ToSelf);
        }
        if host.starts_with('{') {
            bail!("host lists are not yet supported");
        }
        if let Ok(net) = host.parse::<ipnet::IpNet>() {
            return Ok(Self::Cidr(net.trunc()));
        }
        let host = host.trim_end_matches('/');
        if host.contains('/') {
            bail!("a host must not include a path");
        }
        if let Some(domain) = host.strip_prefix("*.") {
            if domain.contains('*') {
                bail!("wildcards are allowed only as prefixes");
            }
            return Ok(Self::AnySubdomain(format!(".{domain}")));
        }
        if host.contains('*') {
            bail!("wildcards are allowed only as subdomains");
        }
        Ok(Self::Literal(Host::parse(host).with_context(|| format!("invalid host {host:?}"))?))
    }

    fn allows(&self, host: &Host) -> bool {
        match (self, host) {
            (Self::Any, _) => true,
            (Self::AnySubdomain(suffix), Host::Domain(domain)) => domain.ends_with(suffix.as_str()),
            (Self::Literal(literal), host) => host == literal,
            (Self::Cidr(net), Host::Ipv4(ip)) => net.contains(&IpAddr::V4(*ip)),
            (Self::Cidr(net), Host::Ipv6(ip)) => net.contains(&IpAddr::V6(*ip)),
            _ => false,
        }
    }
}

impl PortPattern {
    fn parse(port: &str, scheme: &str) -> Result<Self> {
        if port.is_empty() {
            return well_known_port(scheme).map(Self::Port).with_context(|| {
                format!("no port was provided and the scheme {scheme:?} does not have a known default port number")
            });
        }
        if port == "*" {
            return Ok(Self::Any);
        }
        if port.starts_with('{') {
            bail!("port lists are not yet supported");
        }
        if let Some((start, end)) = port.split_once("..") {
            let number = |p: &str| p.parse::<u16>().with_context(|| format!("port range {port:?} contains non-number"));
            return Ok(Self::Range(number(start)?..number(end)?));
        }
        Ok(Self::Port(port.parse().with_context(|| format!("port {port:?} is not a number"))?))
    }

    fn allows(&self, port: u16) -> bool {
        match self {
            Self::Any => true,
            Self::Port(p) => *p == port,
            Self::Range(r) => r.contains(&port),
        }
    }
}

fn well_known_port(scheme: &str) -> Option<u16> {
    match scheme {
        "postgres" => Some(5432),
        "mysql" => Some(3306),
        "redis" => Some(6379),
        "mqtt" => Some(1883),
        "http" => Some(80),
        "https" => Some(443),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts(entries: &[&str]) -> AllowedHosts {
        AllowedHosts::parse(&entries.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
    }

    #[test]
    fn matching_follows_spin() {
        let allowed = hosts(&["postgres://db.internal", "postgres://10.1.0.0/16:6000..6002", "postgres://*.example.com:*"]);
        assert!(allowed.allows("postgres", "db.internal", Some(5432)));
        assert!(allowed.allows("postgres", "db.internal", None), "default port");
        assert!(!allowed.allows("postgres", "db.internal", Some(5433)));
        assert!(!allowed.allows("postgres", "other.internal", Some(5432)));
        assert!(allowed.allows("postgres", "10.1.2.3", Some(6001)));
        assert!(!allowed.allows("postgres", "10.1.2.3", Some(6002)), "range end is exclusive");
        assert!(!allowed.allows("postgres", "10.2.0.1", Some(6000)));
        assert!(allowed.allows("postgres", "pg.eu.example.com", Some(1)));
        assert!(!allowed.allows("postgres", "example.com", Some(5432)), "a subdomain wildcard needs a subdomain");
        assert!(hosts(&["*://*:*"]).allows("postgres", "anything", Some(1)));
        assert!(!hosts(&[]).allows("postgres", "127.0.0.1", Some(5432)));
        assert!(hosts(&["postgres://127.0.0.1:*"]).allows("postgres", "127.0.0.1", Some(40000)));
        assert!(!hosts(&["postgres://localhost:*"]).allows("postgres", "127.0.0.1", Some(40000)), "names are not resolved");
    }

    #[test]
    fn refuses_what_spin_refuses_and_what_this_host_lacks() {
        let parse = |e: &str| AllowedHosts::parse(&[e.to_owned()]);
        for bad in ["db.internal", "postgres://*db.internal", "postgres://a/b:5432", "postgres://h:nope", "ftp://h", "insecure:allow-all"] {
            assert!(parse(bad).is_err(), "{bad} should be refused");
        }
        let err = parse("redis://cache:6379").unwrap_err().to_string();
        assert!(err.contains("postgres://"), "{err}");
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn any_entry_parses_or_errs_never_panics(
                entry in "(postgres|mysql|\\*|)(://)?[a-z0-9.*\\[\\]:/{}-]{0,30}(:[0-9*.]{0,12})?|\\PC{0,40}",
                host in "[a-z0-9.:\\[\\]-]{0,30}",
                port in proptest::option::of(any::<u16>()),
            ) {
                if let Ok(allowed) = AllowedHosts::parse(&[entry]) {
                    let _ = allowed.allows("postgres", &host, port);
                }
            }
        }
    }
}
