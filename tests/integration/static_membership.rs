//! Static membership (`group_instance_id = "{{ pod_name }}"`), end to end: two
//! trigger processes in one group, each a static member named by its
//! SPIN_VARIABLE_POD_NAME, as deploy/ names them after their pod. One is
//! stopped (SIGTERM, as Kubernetes stops a pod) and started again under the same
//! name while records keep arriving. The group's own state (Kafka's
//! kafka-consumer-groups) and the assignment events the triggers log show that no
//! partition moved and the group did not rebalance; every user's revision
//! equals its number of records, so nothing was applied twice.


use std::time::Duration;

use serde_json::json;
use crate::support::kafka::{broker_script, create_topic, produce, test_port};
use crate::support::{eventually, group, AppSpec, Host, Protocol};

const PARTITIONS: u32 = 4;
const USERS: usize = 200;
const ROUNDS: usize = 6;

crate::under_both_protocols!(a_static_member_restarted_within_its_session_keeps_its_partitions);

fn a_static_member_restarted_within_its_session_keeps_its_partitions(protocol: Protocol) {
    // A session long enough for a restart (the broker's per-group config under
    // KIP-848, the client's under the classic protocol), short of the test's patience.
    let spec = AppSpec { protocol, kafka_client: protocol.session_timeout(60_000), ..AppSpec::default() };
    create_topic(&spec.topic, PARTITIONS);
    let port = test_port();
    if protocol == Protocol::Consumer {
        broker_script(&["group-config", &spec.group, &port.to_string(), "consumer.session.timeout.ms=60000"]);
    }
    let dir = tempfile::tempdir().unwrap();
    let manifest = spec.write_manifest(dir.path());
    // One state directory: both triggers apply to one SQLite file, as on one machine.
    let state = dir.path().join(".spin");
    let db = state.join("sqlite_db.db");
    let start = |pod: &str| Host::start(&manifest, &state, &["kafka"], &[("SPIN_VARIABLE_POD_NAME", pod)]);
    let describe = || group::describe(&spec.group, &spec.topic, port);

    // A first, then B: B then joins a group where A holds every partition, so
    // its only event is the assignment of its share (were B first, its log
    // would also show the hand-over to A, which the check below counts).
    let mut a = start("trigger-a");
    a.wait_for_output("kafka partitions assigned", Duration::from_secs(60));
    let mut b = start("trigger-b");
    b.wait_for_output("kafka partitions assigned", Duration::from_secs(60));
    let mut before = describe();
    eventually("the group settled with a share for each member", Duration::from_secs(60), || {
        before = describe();
        before.settled()
            && before.members.len() == 2
            && before.members.iter().all(|m| !m.partitions.is_empty())
            && before.members.iter().map(|m| m.partitions.len()).sum::<usize>() == PARTITIONS as usize
    });
    let shares = before.assignment_by_instance();
    assert_eq!(shares.keys().collect::<Vec<_>>(), ["trigger-a", "trigger-b"], "{before:?}");

    let users: Vec<String> = (0..USERS).map(|_| uuid::Uuid::new_v4().to_string()).collect();
    let round = |r: usize| -> Vec<(Option<String>, Vec<u8>)> {
        users.iter().map(|u| (Some(u.clone()), json!({"user_id": u, "first_name": format!("r{r}")}).to_string().into_bytes())).collect()
    };
    let all_at = |revision: i64| {
        let Some(have) = crate::support::try_revisions(&db) else { return false };
        users.iter().all(|u| have.get(u) == Some(&revision))
    };
    for r in 0..ROUNDS / 2 {
        produce(&spec.topic, &round(r));
    }
    eventually("the first half applied", Duration::from_secs(120), || all_at((ROUNDS / 2) as i64));

    // A pod restart: SIGTERM, then the same name again. Records arrive meanwhile.
    let status = a.terminate();
    assert!(status.success(), "{status:?}");
    produce(&spec.topic, &round(ROUNDS / 2));
    let mut a = start("trigger-a");
    let reassigned = a.wait_for_output("kafka partitions assigned", Duration::from_secs(60));
    for r in ROUNDS / 2 + 1..ROUNDS {
        produce(&spec.topic, &round(r));
    }
    eventually("every record applied", Duration::from_secs(120), || all_at(ROUNDS as i64));

    let after = describe();
    assert_eq!(after.assignment_by_instance(), shares, "a partition moved: before {before:?}, after {after:?}");
    let (b_before, b_after) = (before.member("trigger-b").unwrap(), after.member("trigger-b").unwrap());
    assert_eq!(b_after.member_id, b_before.member_id, "the other member rejoined");
    if protocol == Protocol::Consumer {
        // KIP-848 bumps the group epoch on every rebalance and a member's epoch on
        // every new assignment: neither moved.
        assert_eq!(after.epoch, before.epoch, "the group rebalanced: before {before:?}, after {after:?}");
        assert_eq!(b_after.epoch, b_before.epoch, "the other member got a new assignment");
    }
    // The restarted member got its own partitions back, and the other member's
    // partitions were never revoked (an eager classic rebalance revokes them all).
    let expected = |pod: &str| {
        let list: Vec<String> = shares[pod].iter().map(i32::to_string).collect();
        format!("{}[{}]", spec.topic, list.join(","))
    };
    assert!(reassigned.contains(&expected("trigger-a")), "{reassigned}");
    let b_log = b.drain_output();
    let b_events: Vec<&str> = b_log.lines().filter(|l| l.contains("kafka partitions")).collect();
    assert_eq!(b_events.len(), 1, "the other member's assignment changed: {b_events:#?}");
    assert!(b_events[0].contains("assigned") && b_events[0].contains(&expected("trigger-b")), "{b_events:#?}");

    // Applied once each: revision counts the upserts of a user.
    let have = crate::support::revisions(&db);
    for user in &users {
        assert_eq!(have.get(user), Some(&(ROUNDS as i64)), "{user}");
    }
    let skipped: i64 = rusqlite::Connection::open(&db)
        .unwrap()
        .query_row("SELECT COALESCE(SUM(skipped), 0) FROM kafka_offsets", [], |r| r.get(0))
        .unwrap();
    assert_eq!(skipped, 0, "records were delivered twice (and skipped)");
    drop(a);
    drop(b);
}
