//! Typed identifiers. Each wraps a UUID so a user id cannot be passed where a
//! session id is expected.

use std::fmt;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            /// A new, time-ordered identifier (UUID v7).
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }

            pub const fn from_uuid(uuid: Uuid) -> Self {
                Self(uuid)
            }

            pub const fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl std::str::FromStr for $name {
            type Err = uuid::Error;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self)
            }
        }
    };
}

id_type!(
    /// Identifies an account.
    UserId
);
id_type!(
    /// Identifies a login session: the family of refresh tokens issued from
    /// one login, rotated on every refresh.
    SessionId
);
id_type!(
    /// Identifies a gig.
    GigId
);
id_type!(
    /// Identifies a conversation between two users.
    ConversationId
);
id_type!(
    /// Identifies a stored chat message.
    MessageId
);
id_type!(
    /// Identifies an order.
    OrderId
);
id_type!(
    /// Identifies a custom offer a seller sends in a conversation.
    OfferId
);
id_type!(
    /// Identifies a seller's withdrawal request.
    WithdrawalId
);
id_type!(
    /// Identifies an item in the moderation queue (a report, a flagged
    /// message, a dispute, ...).
    ItemId
);
