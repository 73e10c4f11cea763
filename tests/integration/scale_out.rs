//! Scale-out on one shared PostgreSQL, shown on real parts: two HTTP host
//! processes and two Kafka trigger processes in one consumer group, 20,000
//! records over 3 partitions while HTTP clients write the same users, and one
//! trigger stopped mid-stream. At the end the survivor holds every partition,
//! every record was applied, each user holds its last write in partition order,
//! nothing was dead-lettered and every HTTP answer was a 200 or 201.
//!
//! How the trigger leaves is chosen by `SCALE_OUT_KILL`: by default `9`
//! (SIGKILL: no revoke, no final commit, the dead member found only by session
//! expiry), or `15` (SIGTERM: the trigger drains and leaves the group
//! mid-stream).
//!
//! It runs once per group protocol, one after the other (each run alone loads a
//! 2-core machine): KIP-848, where the survivor takes the dead member's
//! partitions one by one, and classic (eager).
//!
//! `TEST_PROCESS_LOG_DIR=<dir>` writes every process's output there as it runs.


use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use crate::support::kafka::{broker_script, brokers, committed_offsets, create_topic, end_offsets, produce, records_in, test_port};
use crate::support::{eventually, group, post_json, AppSpec, Host, Protocol, Store};

const RECORDS: usize = 20_000;
const USERS: usize = 1_000;
/// Users the HTTP clients also write (overlapping the Kafka ones).
const HTTP_USERS: usize = 200;
const PARTITIONS: i32 = 3;

#[test]
fn two_http_hosts_and_two_triggers_share_one_postgres_and_survive_a_kill() {
    for protocol in [Protocol::Consumer, Protocol::Classic] {
        eprintln!("scale-out: group protocol {}", protocol.as_str());
        scale_out(protocol);
    }
}

fn scale_out(protocol: Protocol) {
    let store = Store::postgres();
    let Store::Postgres(db) = store.clone() else { unreachable!() };
    let spec = AppSpec {
        protocol,
        // A dead member is noticed after 20 s, not librdkafka's default 45 s
        // (shorter sessions expire spuriously on a loaded machine): the
        // client's setting under the classic protocol, the group's config
        // under KIP-848 (set below).
        kafka_client: protocol.session_timeout(20_000),
        ..AppSpec::default()
    };
    if protocol == Protocol::Consumer {
        broker_script(&["group-config", &spec.group, &test_port().to_string(), "consumer.session.timeout.ms=20000"]);
    }
    create_topic(&spec.topic, PARTITIONS as u32);
    let dir = tempfile::tempdir().unwrap();
    let manifest = spec.write_manifest(dir.path());
    let env = store.env();
    let mut env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    env.push(("TRIGGER_KAFKA_PG_POOL_SIZE", "8"));
    let start = |name: &str, trigger: &str| Host::start(&manifest, &dir.path().join(name), &[trigger], &env);
    let http = [start("http-a", "http"), start("http-b", "http")];
    let mut victim = start("kafka-a", "kafka");
    let mut survivor = start("kafka-b", "kafka");
    victim.wait_for_output("kafka partitions assigned", Duration::from_secs(60));
    survivor.wait_for_output("kafka partitions assigned", Duration::from_secs(60));

    // Each record sets first_name to its sequence number; keyed by user, so a
    // user's records share a partition and the last one produced must win.
    let users: Vec<String> = (0..USERS).map(|_| uuid::Uuid::new_v4().to_string()).collect();
    let mut records = Vec::with_capacity(RECORDS);
    let mut last_of: HashMap<&str, String> = HashMap::new();
    let mut writes: HashMap<&str, i64> = HashMap::new();
    for seq in 0..RECORDS {
        let user = users[(seq * 7919) % USERS].as_str();
        let value = format!("k{seq}");
        records.push((Some(user.to_owned()), json!({"user_id": user, "first_name": value}).to_string().into_bytes()));
        last_of.insert(user, value);
        *writes.entry(user).or_default() += 1;
    }

    // HTTP clients write last_name of overlapping users through both hosts
    // until the stream is done; each user from one client, in order.
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..4)
        .map(|c| {
            let bases: Vec<String> = http.iter().map(|h| h.base_url.clone()).collect();
            let mine: Vec<String> = users[..HTTP_USERS].iter().skip(c).step_by(4).cloned().collect();
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut last = HashMap::new();
                let mut statuses: HashMap<u16, usize> = HashMap::new();
                let mut round = 0;
                while !stop.load(Ordering::Relaxed) || round == 0 {
                    for (i, user) in mine.iter().enumerate() {
                        let name = format!("h{round}");
                        let reply = post_json(&bases[(i + round) % 2], &json!({"user_id": user, "last_name": name}));
                        *statuses.entry(reply.status).or_default() += 1;
                        if reply.status == 200 || reply.status == 201 {
                            let entry: &mut (String, i64) = last.entry(user.clone()).or_default();
                            *entry = (name, entry.1 + 1);
                        } else {
                            eprintln!("scale-out: POST got {}: {}", reply.status, reply.body);
                        }
                    }
                    round += 1;
                    // Paced: the point is overlap with the stream, not load.
                    std::thread::sleep(Duration::from_millis(100));
                }
                (last, statuses)
            })
        })
        .collect();

    // The furthest record applied (its sequence number, from first_name);
    // None while the table does not exist yet.
    let applied = || -> Option<i64> {
        crate::support::postgres::client(&db)
            .query_one("SELECT COALESCE(MAX(substr(first_name, 2)::bigint), 0) FROM user_info WHERE first_name LIKE 'k%'", &[])
            .map(|r| r.get(0))
            .ok()
    };
    // The stream comes from a thread in paced chunks, so the trigger is stopped
    // while records are still arriving and some of its own are in flight.
    let started = std::time::Instant::now();
    let phase = |what: &str| eprintln!("scale-out: {what} after {:.1?}", started.elapsed());
    let stream = {
        let (topic, records) = (spec.topic.clone(), records.clone());
        std::thread::spawn(move || {
            for chunk in records.chunks(500) {
                produce(&topic, chunk);
                std::thread::sleep(Duration::from_millis(100));
            }
        })
    };
    eventually("a fifth of the stream applied", Duration::from_secs(600), || applied().is_some_and(|n| n >= (RECORDS / 5) as i64));
    let applied_at_stop = applied().expect("user_info exists once records were applied");
    match std::env::var("SCALE_OUT_KILL").as_deref() {
        Ok("15") => drop(victim.terminate()), // drains and leaves the group mid-stream
        _ => victim.kill(),                    // no revoke, no final commit
    }
    phase(&format!("one trigger stopped with record {applied_at_stop} applied"));
    assert!(applied_at_stop < RECORDS as i64 - 1, "the trigger was stopped mid-stream");
    stream.join().unwrap();
    phase("stream produced");

    let deadline = std::time::Instant::now() + Duration::from_secs(600);
    loop {
        let mut client = crate::support::postgres::client(&db);
        let rows = client.query("SELECT user_id, first_name FROM user_info", &[]).unwrap();
        let have: HashMap<String, String> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
        if last_of.iter().all(|(u, v)| have.get(*u) == Some(v)) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "not every user's last record applied; survivor:\n{}", survivor.drain_output());
        std::thread::sleep(Duration::from_millis(500));
    }
    phase("every user's last record applied");
    stop.store(true, Ordering::Relaxed);
    let (http_last, statuses): (Vec<HashMap<String, (String, i64)>>, Vec<HashMap<u16, usize>>) =
        clients.into_iter().map(|c| c.join().unwrap()).unzip();
    // Every answer the HTTP clients received, by status: only 200 and 201.
    let mut received: HashMap<u16, usize> = HashMap::new();
    for (status, n) in statuses.iter().flatten() {
        *received.entry(*status).or_default() += n;
    }
    eprintln!("scale-out: HTTP answers by status: {received:?}");
    assert!(received.keys().all(|s| *s == 200 || *s == 201), "HTTP answers other than 200/201: {received:?}");
    assert!(received.values().sum::<usize>() >= HTTP_USERS, "the HTTP clients made every write: {received:?}");

    // Every partition committed to its end after the kill, which only the
    // survivor could do; and its last assignment is the whole topic.
    let group_offsets_at_end =
        || committed_offsets(&brokers(), &spec.group, &spec.topic, PARTITIONS) == end_offsets(&brokers(), &spec.topic, PARTITIONS);
    eventually("the group's committed offsets at the end of every partition", Duration::from_secs(60), group_offsets_at_end);
    // The group's own view: the survivor alone, holding every partition (under
    // KIP-848 it logs only the partitions each assignment adds).
    let survivor_log = survivor.drain_output();
    let state = group::describe(&spec.group, &spec.topic, test_port());
    assert_eq!(state.members.len(), 1, "survivor alone in the group: {state:?}\n{survivor_log}");
    assert_eq!(state.members[0].partitions, (0..PARTITIONS).collect(), "survivor holds all partitions: {state:?}");

    // Every write landed exactly once: Kafka's last first_name (checked
    // above), HTTP's last last_name, and a revision counting every write to
    // the user, no more (a redelivered record is skipped, not applied again)
    // and no fewer.
    let mut client = crate::support::postgres::client(&db);
    for user in &users {
        let row = client
            .query_one("SELECT last_name, revision FROM user_info WHERE user_id = $1", &[user])
            .unwrap();
        let http = http_last.iter().find_map(|m| m.get(user));
        let expected_last_name = http.map_or("", |(name, _)| name.as_str());
        assert_eq!(row.get::<_, String>(0), expected_last_name, "HTTP's last write to {user}");
        let total = writes[user.as_str()] + http.map_or(0, |(_, n)| *n);
        assert_eq!(row.get::<_, i64>(1), total, "{user}: revision against {total} writes");
    }
    assert_eq!(records_in(&brokers(), &spec.dead_letter_topic), 0, "nothing dead-lettered");
    for mut h in http {
        let out = h.drain_output();
        // What the host and the component print when a request fails.
        for sign in ["failed:", "user-http: database", "panicked"] {
            assert!(!out.contains(sign), "HTTP host errors ({sign:?}):\n{out}");
        }
    }
}
