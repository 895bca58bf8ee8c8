//! Users that exist before the hub starts, written into the hub's database through
//! JupyterHub's own ORM (`fixtures/hub/seed_users.py`), as users that accumulated before a
//! restart would be. The REST API is too slow for this (measured: ~115 users/s for bulk
//! creation, ~150 activity updates/s; 10,000 users would take minutes).

use std::time::{Duration, SystemTime};

use serde::Serialize;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct SeedPlan {
    pub users: Vec<SeedUser>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SeedUser {
    pub name: String,
    /// How long ago the user was last active; `None` = never active (never started).
    pub idle_for: Option<Duration>,
    pub admin: bool,
    /// Stopped named servers: (name, idle for).
    pub named_servers: Vec<(String, Option<Duration>)>,
}

#[derive(Serialize)]
struct SeedNamed<'a> {
    name: &'a str,
    last_activity: Option<String>,
}

#[derive(Serialize)]
struct SeedRow<'a> {
    name: &'a str,
    last_activity: Option<String>,
    admin: bool,
    named_servers: Vec<SeedNamed<'a>>,
}

#[derive(Serialize)]
struct SeedInput<'a> {
    db_url: &'a str,
    users: Vec<SeedRow<'a>>,
}

fn iso(now: SystemTime, ago: Option<Duration>) -> Option<String> {
    ago.map(|a| humantime::format_rfc3339_millis(now - a).to_string())
}

impl SeedPlan {
    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }

    /// The input of `seed_users.py`, timestamps relative to `now`.
    pub fn to_json(&self, db_url: &str, now: SystemTime) -> serde_json::Value {
        let users = self
            .users
            .iter()
            .map(|u| SeedRow {
                name: &u.name,
                last_activity: iso(now, u.idle_for),
                admin: u.admin,
                named_servers: u.named_servers.iter().map(|(n, idle)| SeedNamed { name: n, last_activity: iso(now, *idle) }).collect(),
            })
            .collect();
        serde_json::to_value(SeedInput { db_url, users }).expect("seed input serialises")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_relative_to_now_and_never_active_is_null() {
        let plan = SeedPlan {
            users: vec![
                SeedUser { name: "a".into(), idle_for: None, admin: false, named_servers: vec![] },
                SeedUser {
                    name: "b".into(),
                    idle_for: Some(Duration::from_secs(3600)),
                    admin: true,
                    named_servers: vec![("s1".into(), Some(Duration::from_secs(60)))],
                },
            ],
        };
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(86_400);
        let v = plan.to_json("sqlite:///x.sqlite", now);
        assert_eq!(v["users"][0]["last_activity"], serde_json::Value::Null);
        assert_eq!(v["users"][1]["last_activity"], "1970-01-01T23:00:00.000Z");
        assert_eq!(v["users"][1]["named_servers"][0]["last_activity"], "1970-01-01T23:59:00.000Z");
        assert_eq!(v["users"][1]["admin"], true);
    }
}
