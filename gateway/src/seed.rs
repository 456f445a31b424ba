//! Demo data: `marketplace seed --demo` gives a newcomer a living
//! marketplace (sellers with profiles, gigs in every subcategory, buyers);
//! `--bulk N` adds N generated gigs for benchmarks; `--load-users N` makes
//! N verified accounts (`load00001`, ...) each with a fresh session and a
//! long-lived access token, for the load generator; `--load-gigs K` makes K
//! sellers (`loadseller00001`, ...) with a profile and one active gig each,
//! for `loadgen checkout`. Everything goes through
//! the same paths as real users: accounts through the store, gigs through
//! their shard actors, so the search index follows through the outbox.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context as _;
use chrono::TimeDelta;
use domain::account::{Email, NewUser, Password, ProfileUpdate, Role, User, Username};
use domain::auth::NewSession;
use domain::gig::{GigCommand, GigInput, PackageInput, Taxonomy};
use domain::ids::{GigId, SessionId, UserId};
use domain::ports::StoreError;
use domain::seller::{LanguageInput, SellerProfileInput};

use crate::state::AppState;
use crate::tokens::AccessTokens;

/// The password of every demo account.
pub const DEMO_PASSWORD: &str = "marketplace-demo";

/// Demo sellers: the category they work in, username, name, country,
/// one-liner and skills.
type DemoSeller = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static [&'static str],
);

const SELLERS: &[DemoSeller] = &[
    (
        "graphics-design",
        "maya_designs",
        "Maya Okafor",
        "NG",
        "Brand identities that people remember",
        &["logo design", "branding", "illustrator"],
    ),
    (
        "programming-tech",
        "pixelforge",
        "Tomasz Nowak",
        "PL",
        "Full-stack developer, ten years of shipping",
        &["rust", "react", "postgresql"],
    ),
    (
        "digital-marketing",
        "growthwithraj",
        "Raj Patel",
        "IN",
        "Performance marketing for small businesses",
        &["google ads", "seo", "analytics"],
    ),
    (
        "writing-translation",
        "wordsmith_ella",
        "Ella Fischer",
        "DE",
        "Copy that sells, in English and German",
        &["copywriting", "translation", "proofreading"],
    ),
    (
        "video-animation",
        "studio_lumen",
        "Lucía Romero",
        "ES",
        "Motion design and explainer videos",
        &["after effects", "animation", "video editing"],
    ),
    (
        "music-audio",
        "beatsmith",
        "Kwame Mensah",
        "GH",
        "Mixing, mastering and original music",
        &["mixing", "mastering", "music production"],
    ),
    (
        "business",
        "bizbuilder",
        "Carlos Mendes",
        "BR",
        "Business plans and financial models",
        &["business plan", "excel", "market research"],
    ),
    (
        "data-ai",
        "datawise",
        "Anna Lindqvist",
        "SE",
        "Data analysis and machine learning you can trust",
        &["python", "machine learning", "sql"],
    ),
];

const BUYERS: &[(&str, &str)] = &[
    ("coffee_and_code", "Sam Rivera"),
    ("greenleaf_shop", "Priya Shah"),
    ("northwind_ltd", "Jonas Berg"),
];

const PROMISES: &[(&str, &str)] = &[
    (
        "I will create a professional {sub} for your business",
        "professional",
    ),
    ("I will deliver a custom {sub} in record time", "fast"),
    ("I will help you with expert {sub} for startups", "startup"),
];

fn email(username: &str) -> String {
    format!("{}@demo.marketplace.localhost", username.replace('_', "."))
}

async fn demo_account(state: &AppState, username: &str, name: &str) -> anyhow::Result<User> {
    let parsed = Username::parse(username).map_err(|e| anyhow::anyhow!("{e}"))?;
    if let Some(user) = state.accounts.user_by_username(&parsed).await? {
        return Ok(user);
    }
    let password =
        Password::parse("password", DEMO_PASSWORD).map_err(|e| anyhow::anyhow!("{e}"))?;
    let email = Email::parse(&email(username)).map_err(|e| anyhow::anyhow!("{e}"))?;
    let user = state
        .create_account(email, parsed, &password, Role::User, true)
        .await
        .map_err(|e| anyhow::anyhow!("creating {username}: {e}"))?;
    let update = ProfileUpdate {
        display_name: Some(Some(name.to_string())),
        ..ProfileUpdate::default()
    };
    Ok(state
        .accounts
        .update_profile(user.id, &update, state.clock.now())
        .await?)
}

fn package(
    tier: &str,
    name: &str,
    description: String,
    price: i64,
    days: i64,
    revisions: i64,
) -> PackageInput {
    PackageInput {
        tier: tier.into(),
        name: name.into(),
        description,
        price_minor: price,
        currency: "USD".into(),
        delivery_days: days,
        revisions,
    }
}

/// A believable gig for one subcategory; `n` varies wording and prices.
fn demo_gig(
    taxonomy: &Taxonomy,
    category: usize,
    sub: usize,
    n: usize,
    tags: &[&str],
) -> Option<GigInput> {
    let category = taxonomy.categories.get(category)?;
    let subcategory = category.subcategories.get(sub)?;
    let sub_name = subcategory.name.to_lowercase();
    let (pattern, flavour) = PROMISES[n % PROMISES.len()];
    let title = pattern.replace("{sub}", &sub_name);
    let base = 1_500 + i64::try_from((n * 37 + sub * 11) % 40).unwrap_or(0) * 500;
    let mut tags: Vec<String> = tags.iter().take(3).map(|t| t.to_string()).collect();
    tags.push(
        sub_name
            .chars()
            .filter(|c| c.is_alphanumeric() || *c == ' ')
            .take(30)
            .collect(),
    );
    tags.push(flavour.into());
    let mut seen = std::collections::HashSet::new();
    tags.retain(|t| seen.insert(t.to_lowercase()));
    Some(GigInput {
        title: title.chars().take(80).collect(),
        description: format!(
            "Looking for {sub_name} that gets results? I have helped more than a hundred clients in {cat} \
             and I work closely with you from the first brief to the final files. You get clear \
             communication, on-time delivery and revisions until you are happy.",
            cat = category.name.to_lowercase()
        ),
        category: category.slug.clone(),
        subcategory: subcategory.slug.clone(),
        tags,
        faq: vec![(
            "What do you need from me to start?".into(),
            "A short description of your project, examples you like and your deadline.".into(),
        )],
        packages: vec![
            package("basic", "Starter", format!("A focused {sub_name} for one need"), base, 5, 1),
            package("standard", "Standard", format!("A complete {sub_name} with extras"), base * 2, 4, 3),
            package("premium", "Premium", "Everything, with priority support".to_string(), base * 4, 3, 5),
        ],
    })
}

/// Fills an empty marketplace with demo sellers, buyers and gigs.
pub async fn demo(state: &AppState) -> anyhow::Result<usize> {
    let taxonomy = state.taxonomy.clone();
    anyhow::ensure!(
        !taxonomy.categories.is_empty(),
        "the category taxonomy is empty"
    );
    for (username, name) in BUYERS {
        demo_account(state, username, name).await?;
    }
    let mut created = 0;
    for (i, (category_slug, username, name, country, one_liner, skills)) in
        SELLERS.iter().enumerate()
    {
        let user = demo_account(state, username, name).await?;
        let update = ProfileUpdate {
            country: domain::account::Country::parse(country).ok().map(Some),
            ..ProfileUpdate::default()
        };
        state
            .accounts
            .update_profile(user.id, &update, state.clock.now())
            .await?;
        if state.accounts.seller_profile(user.id).await?.is_none() {
            let profile = SellerProfileInput {
                full_name: name.to_string(),
                one_liner: one_liner.to_string(),
                description: format!(
                    "{one_liner}. I answer within a few hours and deliver on time."
                ),
                languages: vec![LanguageInput {
                    language: "English".into(),
                    level: "fluent".into(),
                }],
                skills: skills.iter().map(|s| s.to_string()).collect(),
                ..SellerProfileInput::default()
            }
            .validate()
            .map_err(|e| anyhow::anyhow!("demo seller profile: {e}"))?;
            state
                .accounts
                .create_seller_profile(user.id, &profile, state.clock.now())
                .await?;
        }
        if !state.gigs.gigs_by_seller(user.id, false).await?.is_empty() {
            continue;
        }
        // Each seller works in one category, in all its subcategories.
        let category = taxonomy
            .categories
            .iter()
            .position(|c| c.slug == *category_slug)
            .unwrap_or(i % taxonomy.categories.len());
        {
            let subs = taxonomy.categories[category].subcategories.len();
            for sub in 0..subs {
                let Some(input) = demo_gig(&taxonomy, category, sub, i + sub, skills) else {
                    continue;
                };
                let content = input
                    .validate(&taxonomy)
                    .map_err(|e| anyhow::anyhow!("demo gig: {e}"))?;
                publish_gig(state, user.id, content)
                    .await
                    .context("creating a demo gig")?;
                created += 1;
            }
        }
    }
    state.gig_actors.flush_index().await?;
    Ok(created)
}

/// A generated search document as a seller would have typed it.
fn synthetic_input(doc: &search::GigDocument) -> GigInput {
    let days = i64::from(doc.delivery_days_min.max(1));
    let mut packages = vec![package(
        "basic",
        "Basic",
        format!("The essentials of {}", doc.subcategory_name.to_lowercase()),
        doc.price_min,
        days,
        1,
    )];
    if doc.price_max > doc.price_min {
        packages.push(package(
            "premium",
            "Premium",
            "Everything, with priority support".to_string(),
            doc.price_max,
            days,
            3,
        ));
    }
    GigInput {
        title: doc.title.clone(),
        description: doc.description.clone(),
        category: doc.category.clone(),
        subcategory: doc.subcategory.clone(),
        tags: doc.tags.iter().take(5).cloned().collect(),
        faq: Vec::new(),
        packages,
    }
}

/// Adds `count` generated gigs, spread over generated sellers.
pub async fn bulk(state: &AppState, count: usize, seed: u64) -> anyhow::Result<usize> {
    let taxonomy = state.taxonomy.clone();
    anyhow::ensure!(
        !taxonomy.categories.is_empty(),
        "the category taxonomy is empty"
    );
    let sellers_needed = count.div_ceil(100).max(1);
    let mut sellers = Vec::with_capacity(sellers_needed);
    for i in 0..sellers_needed {
        let username = format!("bulk_seller_{i}");
        let user = demo_account(state, &username, &format!("Bulk Seller {i}")).await?;
        if state.accounts.seller_profile(user.id).await?.is_none() {
            let profile = generated_profile(&format!("Bulk Seller {i}"), "benchmarks")?;
            state
                .accounts
                .create_seller_profile(user.id, &profile, state.clock.now())
                .await?;
        }
        sellers.push(user);
    }
    // Writes to different shards run concurrently.
    let mut tasks = tokio::task::JoinSet::new();
    let mut created = 0;
    let mut skipped = 0;
    for (n, generated) in search::synthetic::synthetic_gigs(seed, count).enumerate() {
        let seller = sellers[n % sellers.len()].id;
        let Ok(content) = synthetic_input(&generated).validate(&taxonomy) else {
            skipped += 1;
            continue;
        };
        let actors = state.gig_actors.clone();
        let now = state.clock.now();
        tasks.spawn(async move {
            let id = GigId::new();
            actors
                .execute(
                    id,
                    GigCommand::Create {
                        id,
                        content,
                        publish: true,
                    },
                    seller,
                    now,
                )
                .await
        });
        if tasks.len() >= 64 {
            if let Some(result) = tasks.join_next().await {
                result??;
                created += 1;
            }
        }
    }
    while let Some(result) = tasks.join_next().await {
        result??;
        created += 1;
    }
    if skipped > 0 {
        tracing::warn!(
            skipped,
            "generated gigs that did not pass validation were skipped"
        );
    }
    state.gig_actors.flush_index().await?;
    Ok(created)
}

/// The password of every load-test account.
pub const LOAD_PASSWORD: &str = "marketplace-load";

/// Load-test accounts are written this many at a time.
const LOAD_CONCURRENCY: usize = 64;

/// The username of the `n`th load-test account (from 1): `load00001`.
pub fn load_username(n: usize) -> String {
    format!("load{n:05}")
}

/// A load-test account with a session opened for it just now.
#[derive(Clone, Debug)]
pub struct LoadUser {
    pub id: UserId,
    pub username: String,
    pub access_token: String,
}

/// What [`load_users`] made.
#[derive(Debug)]
pub struct LoadUsers {
    /// In username order.
    pub users: Vec<LoadUser>,
    pub created: usize,
    pub reused: usize,
}

/// Makes sure `load00001` .. `loadN` exist (verified, password
/// [`LOAD_PASSWORD`]), reusing the ones that do, and opens one new session
/// for each, as a login would, with an access token that lives `token_ttl`.
///
/// The password is hashed once and the hash shared by every new account,
/// so thousands of accounts take seconds, not minutes of argon2.
pub async fn load_users(
    state: &AppState,
    count: usize,
    token_ttl: TimeDelta,
) -> anyhow::Result<LoadUsers> {
    anyhow::ensure!(count > 0, "--load-users needs at least one account");
    anyhow::ensure!(
        token_ttl > TimeDelta::zero(),
        "the token lifetime must be positive"
    );
    let hash = load_password_hash(state).await?;
    let tokens = Arc::new(state.tokens.with_ttl(token_ttl));
    let (users, created) = seed_each(count, |n| {
        let (state, hash, tokens) = (state.clone(), hash.clone(), tokens.clone());
        async move { load_user(&state, n, &hash, &tokens).await }
    })
    .await?;
    Ok(LoadUsers {
        reused: users.len() - created,
        created,
        users,
    })
}

/// One load-test account (found or created) and a new session for it; true
/// when the account was created.
async fn load_user(
    state: &AppState,
    n: usize,
    password_hash: &str,
    tokens: &AccessTokens,
) -> anyhow::Result<(LoadUser, bool)> {
    let name = load_username(n);
    let (user, created) = load_account(state, &name, password_hash).await?;
    let now = state.clock.now();
    let refresh_token = adapters::token::generate();
    let session = state
        .sessions
        .create_session(&NewSession {
            id: SessionId::new(),
            user_id: user.id,
            refresh_token_hash: adapters::token::hash(&refresh_token),
            created_at: now,
            expires_at: now + state.refresh_ttl(),
            user_agent: Some("marketplace seed --load-users".into()),
            ip: None,
        })
        .await
        .with_context(|| format!("opening a session for {name}"))?;
    let access_token = tokens
        .issue(user.id, session.id, now)
        .with_context(|| format!("signing a token for {name}"))?;
    Ok((
        LoadUser {
            id: user.id,
            username: name,
            access_token,
        },
        created,
    ))
}

/// The hash of [`LOAD_PASSWORD`], computed once for every load-test account.
async fn load_password_hash(state: &AppState) -> anyhow::Result<Arc<str>> {
    let password =
        Password::parse("password", LOAD_PASSWORD).map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(state
        .hasher
        .hash(&password)
        .await
        .context("hashing the load-test password")?
        .into())
}

/// The load-test account `name` (verified, with the given password hash),
/// found or created; true when it was created.
async fn load_account(
    state: &AppState,
    name: &str,
    password_hash: &str,
) -> anyhow::Result<(User, bool)> {
    let username = Username::parse(name).map_err(|e| anyhow::anyhow!("{name}: {e}"))?;
    let (user, created) = match state.accounts.user_by_username(&username).await? {
        Some(user) => (user, false),
        None => {
            let now = state.clock.now();
            let email = Email::parse(&format!("{name}@load.marketplace.localhost"))
                .map_err(|e| anyhow::anyhow!("{name}: {e}"))?;
            let new = NewUser {
                id: UserId::new(),
                email,
                username: username.clone(),
                password_hash: password_hash.to_string(),
                role: Role::User,
                email_verified_at: Some(now),
                created_at: now,
            };
            match state.accounts.create_user(&new).await {
                Ok(user) => (user, true),
                // Made meanwhile by another seed run: use that one.
                Err(StoreError::Conflict(field)) => {
                    match state.accounts.user_by_username(&username).await? {
                        Some(user) => (user, false),
                        None => anyhow::bail!("{name}: its {field} belongs to another account"),
                    }
                }
                Err(e) => return Err(anyhow::Error::new(e).context(format!("creating {name}"))),
            }
        }
    };
    anyhow::ensure!(
        user.can_sign_in(),
        "{name} exists but cannot sign in (suspended or deleted)"
    );
    Ok((user, created))
}

/// Writes one line per account, `<user_id> <username> <access_token>`,
/// readable by the owner only (the tokens sign in as those accounts).
pub fn write_load_tokens(path: &Path, users: &[LoadUser]) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let file = options
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    let mut out = std::io::BufWriter::new(file);
    for user in users {
        writeln!(out, "{} {} {}", user.id, user.username, user.access_token)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    out.flush()
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// The username of the `n`th load-test seller (from 1): `loadseller00001`.
pub fn load_seller_username(n: usize) -> String {
    format!("loadseller{n:05}")
}

/// A load-test seller's active gig.
#[derive(Clone, Debug)]
pub struct LoadGig {
    pub id: GigId,
    pub seller_id: UserId,
}

/// What [`load_gigs`] made.
#[derive(Debug)]
pub struct LoadGigs {
    /// In seller order.
    pub gigs: Vec<LoadGig>,
    /// Gigs created (the others were the seller's existing active gig).
    pub created: usize,
    pub reused: usize,
}

/// Makes sure the sellers `loadseller00001` .. `loadsellerK` exist
/// (verified, password [`LOAD_PASSWORD`], with a seller profile) and that
/// each has an active gig with the three packages, reusing what exists.
/// Gigs go through their shard actors, as a seller's would.
pub async fn load_gigs(state: &AppState, count: usize) -> anyhow::Result<LoadGigs> {
    anyhow::ensure!(count > 0, "--load-gigs needs at least one gig");
    anyhow::ensure!(
        !state.taxonomy.categories.is_empty(),
        "the category taxonomy is empty"
    );
    let hash = load_password_hash(state).await?;
    let (gigs, created) = seed_each(count, |n| {
        let (state, hash) = (state.clone(), hash.clone());
        async move { load_gig(&state, n, &hash).await }
    })
    .await?;
    state.gig_actors.flush_index().await?;
    Ok(LoadGigs {
        reused: gigs.len() - created,
        created,
        gigs,
    })
}

/// Runs `make(1..=count)`, [`LOAD_CONCURRENCY`] at a time; the results in
/// order, and how many of them were created (the others found).
async fn seed_each<T, F, Fut>(count: usize, make: F) -> anyhow::Result<(Vec<T>, usize)>
where
    T: Send + 'static,
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<(T, bool)>> + Send + 'static,
{
    let mut tasks = tokio::task::JoinSet::new();
    let mut made = Vec::with_capacity(count);
    for n in 1..=count {
        let task = make(n);
        tasks.spawn(async move { task.await.map(|made| (n, made)) });
        if tasks.len() >= LOAD_CONCURRENCY {
            if let Some(result) = tasks.join_next().await {
                made.push(result??);
            }
        }
    }
    while let Some(result) = tasks.join_next().await {
        made.push(result??);
    }
    made.sort_by_key(|(n, _)| *n);
    let created = made.iter().filter(|(_, (_, created))| *created).count();
    Ok((
        made.into_iter().map(|(_, (item, _))| item).collect(),
        created,
    ))
}

/// The `n`th load-test seller (found or created, with a profile) and its
/// active gig; true when the gig was created.
async fn load_gig(
    state: &AppState,
    n: usize,
    password_hash: &str,
) -> anyhow::Result<(LoadGig, bool)> {
    let name = load_seller_username(n);
    let (user, _) = load_account(state, &name, password_hash).await?;
    if state.accounts.seller_profile(user.id).await?.is_none() {
        let profile = generated_profile(&format!("Load Seller {n}"), "load tests")?;
        match state
            .accounts
            .create_seller_profile(user.id, &profile, state.clock.now())
            .await
        {
            // Made meanwhile by another seed run.
            Ok(_) | Err(StoreError::Conflict(_)) => {}
            Err(e) => return Err(anyhow::Error::new(e).context(format!("profile of {name}"))),
        }
    }
    if let Some(gig) = state.gigs.gigs_by_seller(user.id, true).await?.first() {
        return Ok((
            LoadGig {
                id: gig.id,
                seller_id: user.id,
            },
            false,
        ));
    }
    let taxonomy = &state.taxonomy;
    let category = n % taxonomy.categories.len();
    let content = demo_gig(taxonomy, category, 0, n, &["load test"])
        .with_context(|| format!("category {category} has no subcategory"))?
        .validate(taxonomy)
        .map_err(|e| anyhow::anyhow!("load gig: {e}"))?;
    let id = publish_gig(state, user.id, content)
        .await
        .with_context(|| format!("creating the gig of {name}"))?;
    Ok((
        LoadGig {
            id,
            seller_id: user.id,
        },
        true,
    ))
}

/// Writes one line per gig, `<gig_id> <seller_id>` (the `loadgen checkout`
/// gig file).
pub fn write_load_gigs(path: &Path, gigs: &[LoadGig]) -> anyhow::Result<()> {
    use std::io::Write as _;
    let file =
        std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let mut out = std::io::BufWriter::new(file);
    for gig in gigs {
        writeln!(out, "{} {}", gig.id, gig.seller_id)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    out.flush()
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// Creates and publishes a gig of `seller` through the gig actors.
async fn publish_gig(
    state: &AppState,
    seller: UserId,
    content: domain::gig::GigContent,
) -> anyhow::Result<GigId> {
    let id = GigId::new();
    state
        .gig_actors
        .execute(
            id,
            GigCommand::Create {
                id,
                content,
                publish: true,
            },
            seller,
            state.clock.now(),
        )
        .await?;
    Ok(id)
}

/// A generated seller's profile.
fn generated_profile(
    full_name: &str,
    purpose: &str,
) -> anyhow::Result<domain::seller::SellerProfile> {
    SellerProfileInput {
        full_name: full_name.into(),
        one_liner: format!("Generated for {purpose}"),
        description: "A generated seller.".into(),
        languages: vec![LanguageInput {
            language: "English".into(),
            level: "native".into(),
        }],
        ..SellerProfileInput::default()
    }
    .validate()
    .map_err(|e| anyhow::anyhow!("generated seller profile: {e}"))
}
