//! Who is connected: a count of open sessions per user. Only the first
//! session opening and the last one closing change what others see.

use std::collections::HashMap;

use domain::ids::UserId;
use parking_lot::Mutex;

/// What a session opening or closing changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PresenceChange {
    /// The user's first session: they came online.
    CameOnline,
    /// The user's last session: they went offline.
    WentOffline,
    /// The user has other sessions; nothing changed for others.
    Unchanged,
}

/// Counts open sessions per user (across the cluster, with Redis).
pub trait Presence: Send + Sync {
    fn connected(&self, user: UserId) -> PresenceChange;
    fn disconnected(&self, user: UserId) -> PresenceChange;
    fn is_online(&self, user: UserId) -> bool;
    /// Users with a session open.
    fn online_users(&self) -> usize;
}

/// Presence on a single node.
#[derive(Default)]
pub struct LocalPresence {
    sessions: Mutex<HashMap<UserId, u32>>,
}

impl LocalPresence {
    pub fn new() -> Self {
        Self::default()
    }
}

impl Presence for LocalPresence {
    fn connected(&self, user: UserId) -> PresenceChange {
        let mut sessions = self.sessions.lock();
        let count = sessions.entry(user).or_insert(0);
        *count += 1;
        if *count == 1 {
            PresenceChange::CameOnline
        } else {
            PresenceChange::Unchanged
        }
    }

    fn disconnected(&self, user: UserId) -> PresenceChange {
        let mut sessions = self.sessions.lock();
        match sessions.get_mut(&user) {
            Some(count) if *count > 1 => {
                *count -= 1;
                PresenceChange::Unchanged
            }
            Some(_) => {
                sessions.remove(&user);
                PresenceChange::WentOffline
            }
            None => PresenceChange::Unchanged,
        }
    }

    fn is_online(&self, user: UserId) -> bool {
        self.sessions.lock().contains_key(&user)
    }

    fn online_users(&self) -> usize {
        self.sessions.lock().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_first_and_last_sessions_change_presence() {
        let presence = LocalPresence::new();
        let user = UserId::new();
        assert!(!presence.is_online(user));
        assert_eq!(presence.connected(user), PresenceChange::CameOnline);
        assert_eq!(presence.connected(user), PresenceChange::Unchanged);
        assert!(presence.is_online(user));
        assert_eq!(presence.online_users(), 1);
        assert_eq!(presence.disconnected(user), PresenceChange::Unchanged);
        assert_eq!(presence.disconnected(user), PresenceChange::WentOffline);
        assert_eq!(presence.disconnected(user), PresenceChange::Unchanged);
        assert!(!presence.is_online(user));
    }
}
