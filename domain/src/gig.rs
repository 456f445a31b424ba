//! Gigs: what sellers offer, in one to three packages.
//!
//! [`GigInput::validate`] turns what a seller typed into [`GigContent`];
//! [`decide`] is the pure rule for every change to a gig: given the gig as
//! stored (if any), a command and who asks, it returns the gig to store or
//! why not. The gig shard actor only loads, decides, persists and publishes.

use std::collections::HashSet;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::ids::{GigId, UserId};
use crate::money::{Currency, Money};
use crate::validation::{text, FieldError, ValidationErrors};

pub const MAX_TAGS: usize = 5;
pub const MAX_FAQ: usize = 10;
pub const MAX_MEDIA: usize = 5;
/// Cheapest package: 5.00 in the marketplace currency.
pub const MIN_PRICE_MINOR: i64 = 500;
/// Dearest package: 50,000.00.
pub const MAX_PRICE_MINOR: i64 = 5_000_000;
pub const MAX_DELIVERY_DAYS: u32 = 90;
pub const MAX_REVISIONS: u32 = 20;

/// A category of the fixed taxonomy, with its subcategories.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Category {
    pub slug: String,
    pub name: String,
    pub subcategories: Vec<Subcategory>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Subcategory {
    pub slug: String,
    pub name: String,
}

/// The whole taxonomy, as seeded in the database.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Taxonomy {
    pub categories: Vec<Category>,
}

impl Taxonomy {
    pub fn category(&self, slug: &str) -> Option<&Category> {
        self.categories.iter().find(|c| c.slug == slug)
    }

    pub fn subcategory(&self, category: &str, slug: &str) -> Option<&Subcategory> {
        self.category(category)?
            .subcategories
            .iter()
            .find(|s| s.slug == slug)
    }
}

/// The three package tiers, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PackageTier {
    Basic,
    Standard,
    Premium,
}

impl PackageTier {
    pub fn as_str(self) -> &'static str {
        match self {
            PackageTier::Basic => "basic",
            PackageTier::Standard => "standard",
            PackageTier::Premium => "premium",
        }
    }
}

impl FromStr for PackageTier {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "basic" => Ok(Self::Basic),
            "standard" => Ok(Self::Standard),
            "premium" => Ok(Self::Premium),
            _ => Err(()),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Package {
    pub tier: PackageTier,
    pub name: String,
    pub description: String,
    pub price: Money,
    pub delivery_days: u32,
    pub revisions: u32,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Faq {
    pub question: String,
    pub answer: String,
}

/// An image attached to a gig, stored through the media port under `key`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GigMedia {
    pub key: String,
    pub content_type: String,
    pub width: u32,
    pub height: u32,
    pub bytes: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GigStatus {
    Draft,
    Active,
    Paused,
    /// Taken down by an admin.
    Removed,
}

impl GigStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            GigStatus::Draft => "draft",
            GigStatus::Active => "active",
            GigStatus::Paused => "paused",
            GigStatus::Removed => "removed",
        }
    }
}

impl FromStr for GigStatus {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "draft" => Ok(Self::Draft),
            "active" => Ok(Self::Active),
            "paused" => Ok(Self::Paused),
            "removed" => Ok(Self::Removed),
            _ => Err(()),
        }
    }
}

/// The seller-editable part of a gig, valid.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GigContent {
    pub title: String,
    pub description: String,
    pub category: String,
    pub subcategory: String,
    pub tags: Vec<String>,
    pub faq: Vec<Faq>,
    /// One to three, at most one per tier, sorted by tier.
    pub packages: Vec<Package>,
}

/// A gig as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Gig {
    pub id: GigId,
    pub seller_id: UserId,
    pub content: GigContent,
    pub media: Vec<GigMedia>,
    pub status: GigStatus,
    /// Incremented by every write; a write names the version it replaces.
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub deleted_at: Option<DateTime<Utc>>,
    /// While an admin has removed the gig: the status it had before, which
    /// restoring it brings back.
    pub removed_from: Option<GigStatus>,
}

impl Gig {
    /// Whether buyers can find and order it.
    pub fn is_public(&self) -> bool {
        self.status == GigStatus::Active && self.deleted_at.is_none()
    }

    pub fn price_range(&self) -> (i64, i64) {
        let prices = self.content.packages.iter().map(|p| p.price.amount_minor);
        (
            prices.clone().min().unwrap_or_default(),
            prices.max().unwrap_or_default(),
        )
    }

    pub fn fastest_delivery_days(&self) -> u32 {
        self.content
            .packages
            .iter()
            .map(|p| p.delivery_days)
            .min()
            .unwrap_or_default()
    }
}

/// Packages as typed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PackageInput {
    pub tier: String,
    pub name: String,
    pub description: String,
    pub price_minor: i64,
    pub currency: String,
    pub delivery_days: i64,
    pub revisions: i64,
}

/// A gig's content as typed, before validation.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GigInput {
    pub title: String,
    pub description: String,
    pub category: String,
    pub subcategory: String,
    pub tags: Vec<String>,
    pub faq: Vec<(String, String)>,
    pub packages: Vec<PackageInput>,
}

impl From<&GigContent> for GigInput {
    fn from(content: &GigContent) -> Self {
        Self {
            title: content.title.clone(),
            description: content.description.clone(),
            category: content.category.clone(),
            subcategory: content.subcategory.clone(),
            tags: content.tags.clone(),
            faq: content
                .faq
                .iter()
                .map(|f| (f.question.clone(), f.answer.clone()))
                .collect(),
            packages: content
                .packages
                .iter()
                .map(|p| PackageInput {
                    tier: p.tier.as_str().to_string(),
                    name: p.name.clone(),
                    description: p.description.clone(),
                    price_minor: p.price.amount_minor,
                    currency: p.price.currency.code().to_string(),
                    delivery_days: i64::from(p.delivery_days),
                    revisions: i64::from(p.revisions),
                })
                .collect(),
        }
    }
}

fn in_range(field: String, value: i64, min: i64, max: i64, unit: &str) -> Result<u32, FieldError> {
    if value < min || value > max {
        return Err(FieldError::new(
            field,
            "out_of_range",
            format!("must be between {min} and {max} {unit}"),
        ));
    }
    u32::try_from(value).map_err(|_| FieldError::new("value", "out_of_range", "is out of range"))
}

/// A tag: 2 to 30 characters, lowercased, letters, digits, spaces and `-`.
fn tag(field: String, raw: &str) -> Result<String, FieldError> {
    let value = text(&field, raw, 2, 30)?.to_lowercase();
    if value
        .chars()
        .all(|c| c.is_alphanumeric() || c == ' ' || c == '-')
    {
        Ok(value.split_whitespace().collect::<Vec<_>>().join(" "))
    } else {
        Err(FieldError::new(
            field,
            "invalid",
            "may only contain letters, digits, spaces and '-'",
        ))
    }
}

impl GigInput {
    /// Checks every field against the rules and the taxonomy.
    pub fn validate(&self, taxonomy: &Taxonomy) -> Result<GigContent, ValidationErrors> {
        let mut errors = ValidationErrors::new();
        let title = errors.check(text("title", &self.title, 15, 80));
        let description = errors.check(text("description", &self.description, 50, 5000));

        let category = self.category.trim();
        let subcategory = self.subcategory.trim();
        match taxonomy.category(category) {
            None => errors.push(FieldError::new(
                "category",
                "unknown",
                "is not a category of the marketplace (see GET /api/v1/categories)",
            )),
            Some(_) if taxonomy.subcategory(category, subcategory).is_none() => {
                errors.push(FieldError::new(
                    "subcategory",
                    "unknown",
                    "is not a subcategory of this category",
                ))
            }
            Some(_) => {}
        }

        if self.tags.len() > MAX_TAGS {
            errors.push(FieldError::new(
                "tags",
                "too_many",
                format!("must have at most {MAX_TAGS} tags"),
            ));
        }
        let mut seen = HashSet::new();
        let mut tags = Vec::new();
        for (i, raw) in self.tags.iter().enumerate() {
            if let Some(tag) = errors.check(tag(format!("tags[{i}]"), raw)) {
                if seen.insert(tag.clone()) {
                    tags.push(tag);
                } else {
                    errors.push(FieldError::new(
                        format!("tags[{i}]"),
                        "duplicate",
                        "is listed twice",
                    ));
                }
            }
        }

        if self.faq.len() > MAX_FAQ {
            errors.push(FieldError::new(
                "faq",
                "too_many",
                format!("must have at most {MAX_FAQ} entries"),
            ));
        }
        let mut faq = Vec::new();
        for (i, (question, answer)) in self.faq.iter().enumerate() {
            let q = errors.check(text(&format!("faq[{i}].question"), question, 5, 200));
            let a = errors.check(text(&format!("faq[{i}].answer"), answer, 1, 1000));
            if let (Some(question), Some(answer)) = (q, a) {
                faq.push(Faq { question, answer });
            }
        }

        if self.packages.is_empty() || self.packages.len() > 3 {
            errors.push(FieldError::new(
                "packages",
                "count",
                "must have one to three packages",
            ));
        }
        let mut tiers = HashSet::new();
        let mut packages = Vec::new();
        for (i, input) in self.packages.iter().enumerate() {
            let field = |name: &str| format!("packages[{i}].{name}");
            let tier = errors.check(input.tier.parse::<PackageTier>().map_err(|()| {
                FieldError::new(
                    field("tier"),
                    "invalid",
                    "must be basic, standard or premium",
                )
            }));
            if let Some(tier) = tier {
                if !tiers.insert(tier) {
                    errors.push(FieldError::new(
                        field("tier"),
                        "duplicate",
                        "each tier may appear once",
                    ));
                }
            }
            let name = errors.check(text(&field("name"), &input.name, 1, 40));
            let description = errors.check(text(&field("description"), &input.description, 1, 300));
            let currency = errors.check(match Currency::parse(&input.currency) {
                Some(c) if c == Currency::MARKETPLACE => Ok(c),
                _ => Err(FieldError::new(
                    field("currency"),
                    "unsupported",
                    format!("prices are in {}", Currency::MARKETPLACE.code()),
                )),
            });
            let price = errors.check(
                in_range(
                    field("price"),
                    input.price_minor,
                    MIN_PRICE_MINOR,
                    MAX_PRICE_MINOR,
                    "minor units",
                )
                .map(|_| input.price_minor),
            );
            let days = errors.check(in_range(
                field("delivery_days"),
                input.delivery_days,
                1,
                i64::from(MAX_DELIVERY_DAYS),
                "days",
            ));
            let revisions = errors.check(in_range(
                field("revisions"),
                input.revisions,
                0,
                i64::from(MAX_REVISIONS),
                "revisions",
            ));
            if let (
                Some(tier),
                Some(name),
                Some(description),
                Some(currency),
                Some(amount_minor),
                Some(delivery_days),
                Some(revisions),
            ) = (tier, name, description, currency, price, days, revisions)
            {
                packages.push(Package {
                    tier,
                    name,
                    description,
                    price: Money {
                        amount_minor,
                        currency,
                    },
                    delivery_days,
                    revisions,
                });
            }
        }
        packages.sort_by_key(|p| p.tier);

        errors.finish(|| {
            Some(GigContent {
                title: title?,
                description: description?,
                category: category.to_string(),
                subcategory: subcategory.to_string(),
                tags,
                faq,
                packages,
            })
        })
    }
}

/// A change a seller (or the system) asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GigCommand {
    Create {
        id: GigId,
        content: GigContent,
        publish: bool,
    },
    Update {
        content: GigContent,
    },
    Pause,
    /// Publishes a draft or resumes a paused gig.
    Resume,
    Delete,
    AddMedia(GigMedia),
    RemoveMedia {
        key: String,
    },
    /// An admin takes the gig off the marketplace (admins only).
    Remove,
    /// An admin puts a removed gig back as it was (admins only).
    Restore,
}

/// Who asks for a gig change: its seller, or an admin moderating.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Editor {
    Seller(UserId),
    Admin(UserId),
}

impl From<UserId> for Editor {
    fn from(user: UserId) -> Self {
        Editor::Seller(user)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum GigError {
    #[error("no such gig")]
    NotFound,
    #[error("only the seller of a gig may change it")]
    NotOwner,
    #[error("only an admin may remove or restore a gig")]
    AdminOnly,
    #[error("a gig that is {from} cannot be {action}")]
    InvalidTransition {
        from: &'static str,
        action: &'static str,
    },
    #[error("a gig has at most {MAX_MEDIA} images")]
    TooManyMedia,
    #[error("the gig has no image {0}")]
    NoSuchMedia(String),
    #[error("the gig changed meanwhile, retry")]
    VersionConflict,
}

/// What [`decide`] asks the caller to store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GigChange {
    /// The gig after the change, with its version incremented.
    pub gig: Gig,
    /// The version the stored gig must still have; `None` for a new gig.
    pub expected_version: Option<i64>,
    /// Media removed by this change, to delete from the media store.
    pub removed_media: Vec<GigMedia>,
}

/// The rule for every change to a gig.
///
/// A seller changes their own gigs and cannot touch a gig an admin removed
/// except to delete it; an admin only removes and restores.
pub fn decide(
    current: Option<&Gig>,
    command: GigCommand,
    editor: impl Into<Editor>,
    now: DateTime<Utc>,
) -> Result<GigChange, GigError> {
    let actor = match editor.into() {
        Editor::Admin(_) => return moderate(current, command, now),
        Editor::Seller(actor) => actor,
    };
    let current = match (current, command) {
        (
            None,
            GigCommand::Create {
                id,
                content,
                publish,
            },
        ) => {
            return Ok(GigChange {
                gig: Gig {
                    id,
                    seller_id: actor,
                    content,
                    media: Vec::new(),
                    status: if publish {
                        GigStatus::Active
                    } else {
                        GigStatus::Draft
                    },
                    version: 1,
                    created_at: now,
                    updated_at: now,
                    deleted_at: None,
                    removed_from: None,
                },
                expected_version: None,
                removed_media: Vec::new(),
            })
        }
        (None, _) => return Err(GigError::NotFound),
        (Some(gig), command) => (gig, command),
    };
    let (gig, command) = current;
    if gig.deleted_at.is_some() {
        return Err(GigError::NotFound);
    }
    if gig.seller_id != actor {
        // Other people may not even learn that a hidden gig exists.
        return Err(if gig.is_public() {
            GigError::NotOwner
        } else {
            GigError::NotFound
        });
    }
    let mut next = gig.clone();
    let mut removed_media = Vec::new();
    let refuse = |action| GigError::InvalidTransition {
        from: gig.status.as_str(),
        action,
    };
    match command {
        GigCommand::Create { .. } => return Err(refuse("created again")),
        GigCommand::Update { content } => {
            if gig.status == GigStatus::Removed {
                return Err(refuse("edited"));
            }
            next.content = content;
        }
        GigCommand::Pause => match gig.status {
            GigStatus::Active => next.status = GigStatus::Paused,
            _ => return Err(refuse("paused")),
        },
        GigCommand::Resume => match gig.status {
            GigStatus::Draft | GigStatus::Paused => next.status = GigStatus::Active,
            _ => return Err(refuse("resumed")),
        },
        GigCommand::Delete => {
            next.deleted_at = Some(now);
            removed_media = std::mem::take(&mut next.media);
        }
        GigCommand::AddMedia(media) => {
            if gig.status == GigStatus::Removed {
                return Err(refuse("edited"));
            }
            if next.media.len() >= MAX_MEDIA {
                return Err(GigError::TooManyMedia);
            }
            next.media.push(media);
        }
        GigCommand::RemoveMedia { key } => {
            let position = next
                .media
                .iter()
                .position(|m| m.key == key)
                .ok_or(GigError::NoSuchMedia(key))?;
            removed_media.push(next.media.remove(position));
        }
        GigCommand::Remove | GigCommand::Restore => return Err(GigError::AdminOnly),
    }
    next.version = gig.version + 1;
    next.updated_at = now;
    Ok(GigChange {
        gig: next,
        expected_version: Some(gig.version),
        removed_media,
    })
}

/// An admin's change: remove a gig (remembering its status) or restore a
/// removed one to that status. Deleted gigs are gone for admins too.
fn moderate(
    current: Option<&Gig>,
    command: GigCommand,
    now: DateTime<Utc>,
) -> Result<GigChange, GigError> {
    let gig = current
        .filter(|g| g.deleted_at.is_none())
        .ok_or(GigError::NotFound)?;
    let refuse = |action| GigError::InvalidTransition {
        from: gig.status.as_str(),
        action,
    };
    let mut next = gig.clone();
    match command {
        GigCommand::Remove => {
            if gig.status == GigStatus::Removed {
                return Err(refuse("removed"));
            }
            next.removed_from = Some(gig.status);
            next.status = GigStatus::Removed;
        }
        GigCommand::Restore => {
            if gig.status != GigStatus::Removed {
                return Err(refuse("restored"));
            }
            next.status = gig.removed_from.unwrap_or(GigStatus::Paused);
            next.removed_from = None;
        }
        _ => return Err(GigError::NotOwner),
    }
    next.version = gig.version + 1;
    next.updated_at = now;
    Ok(GigChange {
        gig: next,
        expected_version: Some(gig.version),
        removed_media: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn taxonomy() -> Taxonomy {
        Taxonomy {
            categories: vec![Category {
                slug: "programming-tech".into(),
                name: "Programming & Tech".into(),
                subcategories: vec![Subcategory {
                    slug: "web-development".into(),
                    name: "Web Development".into(),
                }],
            }],
        }
    }

    fn package(tier: &str, price: i64) -> PackageInput {
        PackageInput {
            tier: tier.into(),
            name: "Starter".into(),
            description: "A landing page".into(),
            price_minor: price,
            currency: "USD".into(),
            delivery_days: 3,
            revisions: 1,
        }
    }

    fn input() -> GigInput {
        GigInput {
            title: "I will build your landing page".into(),
            description:
                "A fast, accessible landing page built with care, tested on every browser you name."
                    .into(),
            category: "programming-tech".into(),
            subcategory: "web-development".into(),
            tags: vec!["Landing Page".into(), "html".into()],
            faq: vec![("Do you host it?".into(), "No, but I help.".into())],
            packages: vec![package("premium", 30_000), package("basic", 5_000)],
        }
    }

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap()
    }

    #[test]
    fn valid_input_is_normalised() {
        let content = input().validate(&taxonomy()).unwrap();
        assert_eq!(content.tags, ["landing page", "html"]);
        assert_eq!(content.packages[0].tier, PackageTier::Basic);
        assert_eq!(content.packages[1].tier, PackageTier::Premium);
        assert_eq!(
            GigInput::from(&content).validate(&taxonomy()).unwrap(),
            content
        );
    }

    #[test]
    fn bad_input_lists_every_field() {
        let mut bad = input();
        bad.category = "cooking".into();
        bad.tags = vec![
            "a".into(),
            "bb".into(),
            "cc".into(),
            "dd".into(),
            "ee".into(),
            "ff".into(),
        ];
        bad.packages = vec![package("basic", -1), package("basic", 10_000_000_000)];
        let fields: Vec<_> = bad
            .validate(&taxonomy())
            .unwrap_err()
            .errors()
            .iter()
            .map(|e| e.field.clone())
            .collect();
        assert_eq!(
            fields,
            [
                "category",
                "tags",
                "tags[0]",
                "packages[0].price",
                "packages[1].tier",
                "packages[1].price"
            ]
        );
        let mut none = input();
        none.packages.clear();
        assert_eq!(
            none.validate(&taxonomy()).unwrap_err().errors()[0].field,
            "packages"
        );
        let mut euro = input();
        euro.packages[0].currency = "EUR".into();
        assert_eq!(
            euro.validate(&taxonomy()).unwrap_err().errors()[0].code,
            "unsupported"
        );
    }

    #[test]
    fn admins_remove_and_restore_and_sellers_cannot() {
        let seller = UserId::new();
        let admin = Editor::Admin(UserId::new());
        let content = input().validate(&taxonomy()).unwrap();
        let id = GigId::new();
        let create = GigCommand::Create {
            id,
            content,
            publish: true,
        };
        let active = decide(None, create, seller, now()).unwrap().gig;
        // Only admins remove and restore.
        assert_eq!(
            decide(Some(&active), GigCommand::Remove, seller, now()).unwrap_err(),
            GigError::AdminOnly
        );
        let removed = decide(Some(&active), GigCommand::Remove, admin, now())
            .unwrap()
            .gig;
        assert_eq!(removed.status, GigStatus::Removed);
        assert_eq!(removed.removed_from, Some(GigStatus::Active));
        assert!(!removed.is_public());
        assert!(decide(Some(&removed), GigCommand::Remove, admin, now()).is_err());
        // The seller can neither bring it back nor edit it.
        for command in [
            GigCommand::Resume,
            GigCommand::Pause,
            GigCommand::Restore,
            GigCommand::Update {
                content: removed.content.clone(),
            },
        ] {
            assert!(decide(Some(&removed), command, seller, now()).is_err());
        }
        // Admins do nothing else.
        assert_eq!(
            decide(Some(&active), GigCommand::Pause, admin, now()).unwrap_err(),
            GigError::NotOwner
        );
        let restored = decide(Some(&removed), GigCommand::Restore, admin, now()).unwrap();
        assert_eq!(restored.gig.status, GigStatus::Active);
        assert_eq!(restored.gig.removed_from, None);
        assert_eq!(restored.expected_version, Some(removed.version));
        assert!(decide(Some(&restored.gig), GigCommand::Restore, admin, now()).is_err());
        // A paused gig comes back paused; a deleted one is gone for admins too.
        let paused = decide(Some(&active), GigCommand::Pause, seller, now())
            .unwrap()
            .gig;
        let removed = decide(Some(&paused), GigCommand::Remove, admin, now())
            .unwrap()
            .gig;
        let back = decide(Some(&removed), GigCommand::Restore, admin, now())
            .unwrap()
            .gig;
        assert_eq!(back.status, GigStatus::Paused);
        let deleted = decide(Some(&paused), GigCommand::Delete, seller, now())
            .unwrap()
            .gig;
        assert_eq!(
            decide(Some(&deleted), GigCommand::Remove, admin, now()).unwrap_err(),
            GigError::NotFound
        );
    }

    #[test]
    fn lifecycle_and_ownership() {
        let seller = UserId::new();
        let content = input().validate(&taxonomy()).unwrap();
        let created = decide(
            None,
            GigCommand::Create {
                id: GigId::new(),
                content,
                publish: false,
            },
            seller,
            now(),
        )
        .unwrap();
        assert_eq!(created.gig.status, GigStatus::Draft);
        assert_eq!(created.expected_version, None);
        let gig = created.gig;
        assert_eq!(
            decide(Some(&gig), GigCommand::Pause, seller, now()),
            Err(GigError::InvalidTransition {
                from: "draft",
                action: "paused"
            })
        );
        assert_eq!(
            decide(Some(&gig), GigCommand::Resume, UserId::new(), now()),
            Err(GigError::NotFound)
        );
        let active = decide(Some(&gig), GigCommand::Resume, seller, now()).unwrap();
        assert_eq!(
            (
                active.gig.status,
                active.gig.version,
                active.expected_version
            ),
            (GigStatus::Active, 2, Some(1))
        );
        let paused = decide(Some(&active.gig), GigCommand::Pause, seller, now())
            .unwrap()
            .gig;
        assert!(!paused.is_public());
        let deleted = decide(Some(&paused), GigCommand::Delete, seller, now())
            .unwrap()
            .gig;
        assert_eq!(
            decide(Some(&deleted), GigCommand::Resume, seller, now()),
            Err(GigError::NotFound)
        );
    }

    #[test]
    fn media_is_bounded_and_removed_media_is_reported() {
        let seller = UserId::new();
        let content = input().validate(&taxonomy()).unwrap();
        let mut gig = decide(
            None,
            GigCommand::Create {
                id: GigId::new(),
                content,
                publish: true,
            },
            seller,
            now(),
        )
        .unwrap()
        .gig;
        for i in 0..MAX_MEDIA {
            let media = GigMedia {
                key: format!("k{i}"),
                content_type: "image/png".into(),
                width: 1,
                height: 1,
                bytes: 1,
            };
            gig = decide(Some(&gig), GigCommand::AddMedia(media), seller, now())
                .unwrap()
                .gig;
        }
        let extra = GigMedia {
            key: "x".into(),
            content_type: "image/png".into(),
            width: 1,
            height: 1,
            bytes: 1,
        };
        assert_eq!(
            decide(Some(&gig), GigCommand::AddMedia(extra), seller, now()),
            Err(GigError::TooManyMedia)
        );
        let change = decide(
            Some(&gig),
            GigCommand::RemoveMedia { key: "k2".into() },
            seller,
            now(),
        )
        .unwrap();
        assert_eq!(change.removed_media[0].key, "k2");
        assert_eq!(change.gig.media.len(), MAX_MEDIA - 1);
        let deleted = decide(Some(&change.gig), GigCommand::Delete, seller, now()).unwrap();
        assert_eq!(deleted.removed_media.len(), MAX_MEDIA - 1);
    }
}
