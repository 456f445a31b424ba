//! A small, hand-made marketplace whose every answer is known.

use chrono::{DateTime, TimeZone, Utc};
use search::{GigDocument, GigHit, SellerLevel, Sort};
use uuid::Uuid;

pub fn id(n: u128) -> Uuid {
    Uuid::from_u128(n)
}

fn at(y: i32, m: u32, d: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, m, d, 12, 0, 0).unwrap()
}

#[allow(clippy::too_many_arguments)]
fn gig(
    n: u128,
    title: &str,
    description: &str,
    tags: &[&str],
    (category, category_name): (&str, &str),
    (subcategory, subcategory_name): (&str, &str),
    (seller_username, seller_name, seller_level): (&str, &str, SellerLevel),
    price_min: i64,
    delivery_days_min: u32,
    (rating_avg, rating_count): (f32, u32),
    created_at: DateTime<Utc>,
) -> GigDocument {
    GigDocument {
        gig_id: id(n),
        title: title.into(),
        description: description.into(),
        tags: tags.iter().map(|t| (*t).to_owned()).collect(),
        category: category.into(),
        category_name: category_name.into(),
        subcategory: subcategory.into(),
        subcategory_name: subcategory_name.into(),
        seller_id: Uuid::from_u128(1000 + n),
        seller_username: seller_username.into(),
        seller_name: seller_name.into(),
        seller_level,
        price_min,
        price_max: price_min * 3,
        delivery_days_min,
        rating_avg,
        rating_count,
        image_url: Some(format!("/media/gigs/{n}.webp")),
        created_at,
    }
}

const GD: (&str, &str) = ("graphics-design", "Graphics & Design");
const PT: (&str, &str) = ("programming-tech", "Programming & Tech");
const DM: (&str, &str) = ("digital-marketing", "Digital Marketing");
const WT: (&str, &str) = ("writing-translation", "Writing & Translation");
const VA: (&str, &str) = ("video-animation", "Video & Animation");
const DA: (&str, &str) = ("data-ai", "Data & AI Services");

/// Twelve gigs. Deliberate ties: gigs 4 and 12 cost the same, gigs 5 and
/// 12 have the same rating and review count, gigs 11 and 12 were created
/// at the same instant.
pub fn gigs() -> Vec<GigDocument> {
    use SellerLevel::*;
    vec![
        gig(
            1,
            "I will design a modern minimalist logo for your brand",
            "Clean vector marks delivered with source files.",
            &["logo design", "minimalist", "branding"],
            GD,
            ("logo-design", "Logo Design"),
            ("amina_studio", "Amina Okafor", TopRated),
            2500,
            2,
            (4.9, 120),
            at(2025, 6, 1),
        ),
        gig(
            2,
            "I will design a mascot logo",
            "Playful characters for teams and streamers.",
            &["logo", "mascot", "cartoon"],
            GD,
            ("logo-design", "Logo Design"),
            ("bruno_draws", "Bruno Costa", Level2),
            5000,
            5,
            (4.6, 40),
            at(2025, 3, 10),
        ),
        gig(
            3,
            "I will create a brand style guide",
            "Colours, typography and logo usage rules in one document.",
            &["branding", "brand identity"],
            GD,
            ("brand-style-guides", "Brand Style Guides"),
            ("chen_brands", "Chen Wei", Level1),
            15000,
            7,
            (4.8, 15),
            at(2024, 11, 20),
        ),
        gig(
            4,
            "I will develop a python web scraper",
            "Scrape any site into CSV or JSON, with scheduling.",
            &["python", "scraping", "automation"],
            PT,
            ("web-development", "Web Development"),
            ("dara_codes", "Dara Jensen", Level1),
            4000,
            3,
            (5.0, 8),
            at(2025, 8, 5),
        ),
        gig(
            5,
            "I will build a django website in python",
            "Full stack sites with admin panels and deployment.",
            &["python", "django", "web development"],
            PT,
            ("web-development", "Web Development"),
            ("elena_dev", "Elena Fischer", Level2),
            20000,
            10,
            (4.7, 60),
            at(2025, 1, 15),
        ),
        gig(
            6,
            "I will build a react web app",
            "Single page applications with hooks and tests.",
            &["react", "javascript", "web development"],
            PT,
            ("web-development", "Web Development"),
            ("farid_js", "Farid Haddad", TopRated),
            30000,
            14,
            (4.9, 200),
            at(2024, 9, 1),
        ),
        gig(
            7,
            "I will build a react native mobile app",
            "Cross platform apps published to both stores.",
            &["react native", "mobile app", "ios"],
            PT,
            ("mobile-apps", "Mobile App Development"),
            ("grace_mobile", "Grace Ito", New),
            50000,
            21,
            (0.0, 0),
            at(2025, 9, 30),
        ),
        gig(
            8,
            "I will reach more customers with facebook ads",
            "Campaign setup, audiences and weekly reports.",
            &["facebook ads", "marketing"],
            DM,
            ("social-media-marketing", "Social Media Marketing"),
            ("hiro_ads", "Hiro Tanaka", New),
            3000,
            3,
            (4.2, 12),
            at(2025, 7, 7),
        ),
        gig(
            9,
            "I will write seo blog posts",
            "Researched articles that rank and read well.",
            &["seo", "blog writing"],
            WT,
            ("articles-blog-posts", "Articles & Blog Posts"),
            ("ines_writes", "Ines Dubois", Level1),
            1500,
            4,
            (4.5, 30),
            at(2025, 2, 2),
        ),
        gig(
            10,
            "I will animate your logo intro",
            "Smooth reveals for videos and channels.",
            &["logo animation", "intro", "after effects"],
            VA,
            ("logo-animation", "Logo Animation"),
            ("jonas_motion", "Jonas Bauer", Level2),
            3500,
            2,
            (4.8, 75),
            at(2025, 5, 5),
        ),
        gig(
            11,
            "I will translate english to spanish",
            "Native speaker, accurate and natural.",
            &["translation", "spanish"],
            WT,
            ("translation", "Translation"),
            ("kemi_lingua", "Kemi Mensah", TopRated),
            1000,
            1,
            (4.9, 300),
            at(2025, 4, 4),
        ),
        gig(
            12,
            "I will do data analysis in python and excel",
            "Cleaning, pivot tables and charts.",
            &["data analysis", "python", "excel"],
            DA,
            ("data-analysis", "Data Analysis & Visualization"),
            ("lucas_data", "Lucas Silva", Level1),
            4000,
            3,
            (4.7, 60),
            at(2025, 4, 4),
        ),
    ]
}

pub fn ids(hits: &[GigHit]) -> Vec<u128> {
    hits.iter().map(|h| h.gig_id.as_u128()).collect()
}

pub fn sorted(mut v: Vec<u128>) -> Vec<u128> {
    v.sort_unstable();
    v
}

/// The fixture ids in the order `sort` must give (ties by gig id).
pub fn expected_order(sort: Sort) -> Vec<u128> {
    let mut docs = gigs();
    docs.sort_by(|a, b| {
        let primary = match sort {
            Sort::PriceAsc => a.price_min.cmp(&b.price_min),
            Sort::PriceDesc => b.price_min.cmp(&a.price_min),
            Sort::Rating => b
                .rating_avg
                .total_cmp(&a.rating_avg)
                .then(b.rating_count.cmp(&a.rating_count)),
            Sort::Newest | Sort::Relevance => b.created_at.cmp(&a.created_at),
        };
        primary.then(a.gig_id.cmp(&b.gig_id))
    });
    docs.iter().map(|d| d.gig_id.as_u128()).collect()
}
