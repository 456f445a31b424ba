//! HTTP routes, one module per resource. Each module's `router()` carries
//! its OpenAPI description along with the handlers.

pub mod auth;
pub mod conversations;
pub mod email_preferences;
pub mod gigs;
pub mod me;
pub mod notifications;
pub mod ops;
pub mod orders;
pub mod payments;
pub mod reports;
pub mod reviews;
pub mod saved;
pub mod search;
pub mod seller;
pub mod users;
