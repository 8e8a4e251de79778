//! Redis's description: two processes per member (server and sentinel),
//! configuration files from templates, the seed's and the joiners' args, the
//! discovery port; bad templates point at file:line:column; every Redis
//! scenario resolves.
use std::net::IpAddr;

use super::*;

const REDIS: &str = include_str!("../../../../lab/systems/redis.toml");

fn member(name: &str) -> MemberContext {
    let addr = |n: u8| -> IpAddr { format!("10.0.0.{n}").parse().unwrap() };
    MemberContext {
        name: name.into(),
        cluster: "demo".into(),
        data_dir: format!("/tmp/{name}/data").into(),
        heartbeat_ms: 50,
        election_timeout_ms: (250, 500),
        members: vec![
            ("n1".into(), addr(1)),
            ("n2".into(), addr(2)),
            ("n3".into(), addr(3)),
        ],
    }
}

#[test]
fn redis_members_get_files_a_sentinel_and_seed_or_join_args() {
    let mut system = System::with_defaults(REDIS, "redis.toml").unwrap();
    system.set_option("min-replicas-to-write", "1").unwrap();
    let seed = system.member_args(&member("n1")).unwrap();
    assert_eq!(seed, ["/tmp/n1/data/redis.conf"]);
    let joiner = system.member_args(&member("n2")).unwrap();
    assert_eq!(
        joiner,
        ["/tmp/n2/data/redis.conf", "--replicaof", "10.0.0.1", "6379"]
    );
    let files = system.member_files(&member("n2")).unwrap();
    let (redis_conf, sentinel_conf) = (&files[0], &files[1]);
    assert_eq!(
        redis_conf.0,
        std::path::Path::new("/tmp/n2/data/redis.conf")
    );
    assert!(
        redis_conf.1.contains("bind 10.0.0.2\nport 6379\n"),
        "{}",
        redis_conf.1
    );
    assert!(redis_conf.1.contains("min-replicas-to-write 1\n"));
    assert!(redis_conf.1.contains("min-replicas-max-lag 10\n"));
    // Quorum = a majority of the three sentinels.
    assert!(
        sentinel_conf
            .1
            .contains("sentinel monitor splitlab 10.0.0.1 6379 2\n"),
        "{}",
        sentinel_conf.1
    );
    assert!(sentinel_conf.1.contains("port 26379\n"));
    assert!(
        sentinel_conf
            .1
            .contains("down-after-milliseconds splitlab 5000\n")
    );
    let companions = system.companions(&member("n2"));
    // The sentinel binary may be missing on a machine without Redis; the
    // rendering is what is checked here.
    if let Ok(companions) = companions {
        assert_eq!(companions.len(), 1);
        assert_eq!(companions[0].args, ["/tmp/n2/data/sentinel.conf"]);
        assert_eq!(companions[0].log, "sentinel.log");
    }
    assert_eq!(
        system.protocol(),
        client::Protocol::RedisSentinel {
            discovery_port: 26379
        }
    );
    assert!(system.observed());
    assert!(system.not_applicable().contains_key("log_agreement"));
}

#[test]
fn bad_files_companions_and_ports_point_at_the_file() {
    let path = "path = \"redis.conf\"";
    let escape = "path = \"../redis.conf\"";
    let log = "log = \"sentinel.log\"";
    super::tests::assert_refused(
        REDIS,
        "r.toml",
        &[
            (
                "sentinel monitor splitlab {seed_addr}",
                "sentinel {seedaddr}",
                "r.toml:",
                "unknown placeholder {seedaddr}",
            ),
            (
                "{option:failover-timeout}",
                "{option:failover-timeuot}",
                "",
                "{option:failover-timeuot}",
            ),
            (
                path,
                escape,
                "r.toml:37:8: a file's path must be relative",
                "",
            ),
            (
                "discovery = 26379",
                "",
                "",
                "protocol redis-sentinel asks a discovery service",
            ),
            (log, "logfile = \"sentinel.log\"", "r.toml:", "logfile"),
        ],
    );
}

#[test]
fn every_redis_scenario_loads_and_resolves_its_system() {
    let seen = super::tests::every_scenario_resolves_to("redis", "redis");
    assert!(seen >= 3, "only {seen} redis scenarios");
}
