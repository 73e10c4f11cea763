//! A consumer group as the broker sees it: `scripts/kafka-broker describe-group`
//! (Kafka's own kafka-consumer-groups tool), parsed. Tests assert membership
//! and assignment from this, not from timing.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

/// One member of the group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub member_id: String,
    /// `group.instance.id` of a static member.
    pub instance_id: Option<String>,
    pub partitions: BTreeSet<i32>,
    /// KIP-848 only: the member's epoch, and the epoch of its target assignment.
    pub epoch: Option<i64>,
    pub target_epoch: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    /// Stable, PreparingRebalance, Reconciling, Empty, ...
    pub state: String,
    /// KIP-848 only: bumped by every change of membership or assignment.
    pub epoch: Option<i64>,
    pub members: Vec<Member>,
}

impl Group {
    /// Static members' partitions by instance id.
    pub fn assignment_by_instance(&self) -> BTreeMap<String, BTreeSet<i32>> {
        self.members
            .iter()
            .filter_map(|m| Some((m.instance_id.clone()?, m.partitions.clone())))
            .collect()
    }

    pub fn member(&self, instance_id: &str) -> Option<&Member> {
        self.members.iter().find(|m| m.instance_id.as_deref() == Some(instance_id))
    }

    /// Every member has reached its target assignment (always true for classic groups).
    pub fn settled(&self) -> bool {
        self.state == "Stable" && self.members.iter().all(|m| m.epoch == m.target_epoch)
    }
}

fn dash(value: &str) -> Option<&str> {
    (value != "-").then_some(value)
}

/// "topic:0,1,2" (or "-") to the partitions of `topic`.
fn partitions(assignment: &str, topic: &str) -> BTreeSet<i32> {
    let Some(assignment) = dash(assignment) else { return BTreeSet::new() };
    assignment
        .split(';')
        .filter_map(|t| t.split_once(':'))
        .filter(|(t, _)| *t == topic)
        .flat_map(|(_, list)| list.split(',').map(|p| p.parse().expect("partition number")))
        .collect()
}

/// Rows of the table whose header line contains `marker`, as column -> value.
fn table<'a>(text: &'a str, marker: &str) -> Vec<BTreeMap<&'a str, &'a str>> {
    let mut lines = text.lines().skip_while(|l| !(l.starts_with("GROUP") && l.contains(marker)));
    let Some(header) = lines.next() else { return Vec::new() };
    let columns: Vec<&str> = header.split_whitespace().collect();
    lines
        .take_while(|l| !l.trim().is_empty())
        .map(|row| columns.iter().copied().zip(row.split_whitespace()).collect())
        .collect()
}

/// The group `group` on the broker at `port`, its assignment of `topic`.
pub fn describe(group: &str, topic: &str, port: u16) -> Group {
    let output = Command::new(super::root().join("scripts/kafka-broker"))
        .args(["describe-group", group, &port.to_string()])
        .output()
        .expect("run scripts/kafka-broker describe-group");
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(output.status.success(), "describe-group {group}: {text}{}", String::from_utf8_lossy(&output.stderr));
    let state = table(&text, "STATE");
    let state = state.first().unwrap_or_else(|| panic!("no state table:\n{text}"));
    let number = |row: &BTreeMap<&str, &str>, column: &str| row.get(column).copied().and_then(dash).map(|v| v.parse().unwrap());
    let members = table(&text, "CONSUMER-ID")
        .iter()
        .map(|row| Member {
            member_id: row["CONSUMER-ID"].to_owned(),
            instance_id: row.get("GROUP-INSTANCE-ID").copied().and_then(dash).map(str::to_owned),
            partitions: partitions(row.get("CURRENT-ASSIGNMENT").or(row.get("ASSIGNMENT")).copied().unwrap_or("-"), topic),
            epoch: number(row, "CURRENT-EPOCH"),
            target_epoch: number(row, "TARGET-EPOCH"),
        })
        .collect();
    Group { state: state["STATE"].to_owned(), epoch: number(state, "GROUP-EPOCH"), members }
}
