//! Believable generated gigs, for benchmarks and `marketplace seed --bulk`.
//!
//! Deterministic: the same seed and count give the same gigs on every
//! machine (ChaCha8). Categories and subcategories are the taxonomy seeded
//! by the `gigs` migration (same slugs and names); titles, tags and
//! descriptions come from word lists per subcategory; sellers specialise in
//! one category and own several gigs; prices, delivery times, levels and
//! ratings follow skewed distributions like a real marketplace's.

use chrono::{DateTime, Duration, TimeZone, Utc};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use uuid::Uuid;

use crate::model::{GigDocument, SellerLevel};

/// A subcategory with the words its gigs are made of.
pub struct SyntheticSubcategory {
    pub slug: &'static str,
    pub name: &'static str,
    pub verbs: &'static [&'static str],
    pub nouns: &'static [&'static str],
    pub tags: &'static [&'static str],
}

/// A category of the taxonomy.
pub struct SyntheticCategory {
    pub slug: &'static str,
    pub name: &'static str,
    /// Typical cheapest price, in minor units.
    pub base_price: i64,
    pub subcategories: &'static [SyntheticSubcategory],
}

macro_rules! sub {
    ($slug:expr, $name:expr, [$($v:expr),*], [$($n:expr),*], [$($t:expr),*]) => {
        SyntheticSubcategory { slug: $slug, name: $name, verbs: &[$($v),*], nouns: &[$($n),*], tags: &[$($t),*] }
    };
}

/// The taxonomy of the `gigs` migration, with word lists.
pub const TAXONOMY: &[SyntheticCategory] = &[
    SyntheticCategory {
        slug: "graphics-design",
        name: "Graphics & Design",
        base_price: 2500,
        subcategories: &[
            sub!(
                "logo-design",
                "Logo Design",
                ["design", "create", "craft"],
                [
                    "logo",
                    "minimalist logo",
                    "mascot logo",
                    "signature logo",
                    "logo design"
                ],
                [
                    "logo design",
                    "logo",
                    "minimalist",
                    "branding",
                    "vector",
                    "mascot"
                ]
            ),
            sub!(
                "brand-style-guides",
                "Brand Style Guides",
                ["create", "design", "build"],
                [
                    "brand style guide",
                    "brand identity",
                    "brand book",
                    "visual identity"
                ],
                ["brand identity", "style guide", "branding", "brand book"]
            ),
            sub!(
                "illustration",
                "Illustration",
                ["draw", "illustrate", "paint"],
                [
                    "children book illustration",
                    "portrait illustration",
                    "cartoon character",
                    "digital art"
                ],
                [
                    "illustration",
                    "digital art",
                    "cartoon",
                    "character design",
                    "drawing"
                ]
            ),
            sub!(
                "website-app-design",
                "Website & App Design",
                ["design", "redesign", "create"],
                [
                    "website ui",
                    "landing page design",
                    "mobile app ui",
                    "figma prototype"
                ],
                [
                    "ui design",
                    "ux design",
                    "figma",
                    "web design",
                    "landing page"
                ]
            ),
            sub!(
                "social-media-design",
                "Social Media Design",
                ["design", "create"],
                [
                    "instagram posts",
                    "social media banners",
                    "youtube thumbnails",
                    "facebook ads design"
                ],
                ["social media", "instagram", "thumbnail", "banner", "canva"]
            ),
            sub!(
                "packaging-design",
                "Packaging & Label Design",
                ["design", "create"],
                [
                    "product packaging",
                    "label design",
                    "box packaging",
                    "coffee bag design"
                ],
                [
                    "packaging design",
                    "label design",
                    "product label",
                    "box design"
                ]
            ),
        ],
    },
    SyntheticCategory {
        slug: "programming-tech",
        name: "Programming & Tech",
        base_price: 5000,
        subcategories: &[
            sub!(
                "web-development",
                "Web Development",
                ["develop", "build", "fix", "code"],
                [
                    "wordpress website",
                    "react web app",
                    "django website",
                    "python web scraper",
                    "laravel website",
                    "nextjs website"
                ],
                [
                    "web development",
                    "wordpress",
                    "react",
                    "python",
                    "javascript",
                    "php",
                    "nextjs"
                ]
            ),
            sub!(
                "mobile-apps",
                "Mobile App Development",
                ["develop", "build", "publish"],
                ["flutter app", "react native app", "ios app", "android app"],
                [
                    "mobile app",
                    "flutter",
                    "react native",
                    "ios",
                    "android",
                    "swift"
                ]
            ),
            sub!(
                "ecommerce-development",
                "E-Commerce Development",
                ["build", "set up", "customize"],
                [
                    "shopify store",
                    "woocommerce store",
                    "dropshipping store",
                    "magento store"
                ],
                [
                    "shopify",
                    "ecommerce",
                    "woocommerce",
                    "dropshipping",
                    "online store"
                ]
            ),
            sub!(
                "desktop-applications",
                "Desktop Applications",
                ["develop", "build"],
                [
                    "python desktop app",
                    "electron app",
                    "windows application",
                    "java desktop tool"
                ],
                ["desktop app", "python", "electron", "java", "c sharp"]
            ),
            sub!(
                "devops-cloud",
                "DevOps & Cloud",
                ["set up", "configure", "deploy"],
                [
                    "aws infrastructure",
                    "kubernetes cluster",
                    "docker setup",
                    "ci cd pipeline"
                ],
                [
                    "devops",
                    "aws",
                    "kubernetes",
                    "docker",
                    "terraform",
                    "linux"
                ]
            ),
            sub!(
                "cybersecurity",
                "Cybersecurity",
                ["audit", "secure", "test"],
                [
                    "website security",
                    "penetration test",
                    "malware removal",
                    "security audit"
                ],
                [
                    "cybersecurity",
                    "penetration testing",
                    "security",
                    "malware removal"
                ]
            ),
        ],
    },
    SyntheticCategory {
        slug: "digital-marketing",
        name: "Digital Marketing",
        base_price: 3000,
        subcategories: &[
            sub!(
                "search-engine-optimization",
                "Search Engine Optimization (SEO)",
                ["do", "boost", "improve"],
                [
                    "on page seo",
                    "seo backlinks",
                    "local seo",
                    "technical seo audit",
                    "keyword research"
                ],
                [
                    "seo",
                    "backlinks",
                    "keyword research",
                    "google ranking",
                    "local seo"
                ]
            ),
            sub!(
                "social-media-marketing",
                "Social Media Marketing",
                ["manage", "grow", "promote"],
                [
                    "instagram account",
                    "tiktok marketing",
                    "facebook page",
                    "linkedin growth"
                ],
                [
                    "social media marketing",
                    "instagram",
                    "tiktok",
                    "facebook",
                    "growth"
                ]
            ),
            sub!(
                "search-engine-marketing",
                "Search Engine Marketing (SEM)",
                ["set up", "manage", "optimize"],
                [
                    "google ads campaign",
                    "ppc campaign",
                    "bing ads",
                    "shopping ads"
                ],
                ["google ads", "ppc", "sem", "adwords"]
            ),
            sub!(
                "content-marketing",
                "Content Marketing",
                ["plan", "write", "create"],
                ["content strategy", "content calendar", "blog strategy"],
                ["content marketing", "content strategy", "blogging"]
            ),
            sub!(
                "email-marketing",
                "E-mail Marketing",
                ["design", "set up", "write"],
                [
                    "email campaign",
                    "mailchimp newsletter",
                    "klaviyo flows",
                    "email sequence"
                ],
                ["email marketing", "mailchimp", "klaviyo", "newsletter"]
            ),
        ],
    },
    SyntheticCategory {
        slug: "writing-translation",
        name: "Writing & Translation",
        base_price: 1500,
        subcategories: &[
            sub!(
                "articles-blog-posts",
                "Articles & Blog Posts",
                ["write"],
                ["seo blog post", "article", "blog content", "health article"],
                [
                    "blog writing",
                    "article writing",
                    "seo writing",
                    "content writing"
                ]
            ),
            sub!(
                "copywriting",
                "Copywriting",
                ["write"],
                [
                    "sales copy",
                    "website copy",
                    "product descriptions",
                    "ad copy"
                ],
                [
                    "copywriting",
                    "sales copy",
                    "website content",
                    "product description"
                ]
            ),
            sub!(
                "translation",
                "Translation",
                ["translate"],
                [
                    "english to spanish",
                    "german to english",
                    "french documents",
                    "japanese subtitles"
                ],
                ["translation", "spanish", "german", "french", "japanese"]
            ),
            sub!(
                "proofreading-editing",
                "Proofreading & Editing",
                ["proofread", "edit"],
                [
                    "english text",
                    "book manuscript",
                    "academic paper",
                    "business documents"
                ],
                ["proofreading", "editing", "grammar", "manuscript"]
            ),
            sub!(
                "technical-writing",
                "Technical Writing",
                ["write"],
                [
                    "api documentation",
                    "user manual",
                    "white paper",
                    "software documentation"
                ],
                [
                    "technical writing",
                    "documentation",
                    "user manual",
                    "white paper"
                ]
            ),
            sub!(
                "resume-writing",
                "Resume Writing",
                ["write", "rewrite"],
                ["resume", "cover letter", "linkedin profile", "cv"],
                ["resume writing", "cover letter", "cv", "linkedin"]
            ),
        ],
    },
    SyntheticCategory {
        slug: "video-animation",
        name: "Video & Animation",
        base_price: 4000,
        subcategories: &[
            sub!(
                "video-editing",
                "Video Editing",
                ["edit"],
                [
                    "youtube videos",
                    "wedding video",
                    "podcast video",
                    "gaming montage"
                ],
                ["video editing", "youtube", "premiere pro", "final cut"]
            ),
            sub!(
                "animated-explainers",
                "Animated Explainers",
                ["create", "animate"],
                [
                    "explainer video",
                    "whiteboard animation",
                    "2d animation",
                    "motion graphics"
                ],
                [
                    "explainer video",
                    "animation",
                    "motion graphics",
                    "2d animation"
                ]
            ),
            sub!(
                "short-video-ads",
                "Short Video Ads",
                ["create", "edit"],
                [
                    "tiktok ads",
                    "instagram reels",
                    "facebook video ad",
                    "ugc video"
                ],
                ["video ads", "reels", "tiktok", "ugc"]
            ),
            sub!(
                "logo-animation",
                "Logo Animation",
                ["animate", "create"],
                ["logo animation", "intro animation", "3d logo reveal"],
                ["logo animation", "intro", "logo reveal", "after effects"]
            ),
            sub!(
                "subtitles-captions",
                "Subtitles & Captions",
                ["add", "create"],
                ["subtitles", "closed captions", "srt files"],
                ["subtitles", "captions", "transcription"]
            ),
        ],
    },
    SyntheticCategory {
        slug: "music-audio",
        name: "Music & Audio",
        base_price: 3000,
        subcategories: &[
            sub!(
                "voice-over",
                "Voice Over",
                ["record", "voice"],
                [
                    "voice over",
                    "british voice over",
                    "audiobook narration",
                    "commercial voice"
                ],
                ["voice over", "narration", "audiobook", "voice actor"]
            ),
            sub!(
                "mixing-mastering",
                "Mixing & Mastering",
                ["mix", "master"],
                ["your song", "hip hop track", "podcast audio", "vocals"],
                ["mixing", "mastering", "audio engineering", "vocals"]
            ),
            sub!(
                "producers-composers",
                "Producers & Composers",
                ["produce", "compose"],
                ["hip hop beat", "film score", "jingle", "lofi track"],
                ["music production", "beats", "composer", "jingle"]
            ),
            sub!(
                "podcast-production",
                "Podcast Production",
                ["edit", "produce"],
                ["podcast episodes", "podcast intro", "podcast show notes"],
                ["podcast editing", "podcast", "audio editing"]
            ),
            sub!(
                "sound-design",
                "Sound Design",
                ["create", "design"],
                ["sound effects", "game audio", "ui sounds"],
                ["sound design", "sound effects", "game audio"]
            ),
        ],
    },
    SyntheticCategory {
        slug: "business",
        name: "Business",
        base_price: 3500,
        subcategories: &[
            sub!(
                "virtual-assistant",
                "Virtual Assistant",
                ["be", "work as"],
                ["virtual assistant", "personal assistant", "admin assistant"],
                [
                    "virtual assistant",
                    "admin support",
                    "data entry",
                    "email management"
                ]
            ),
            sub!(
                "market-research",
                "Market Research",
                ["do", "conduct"],
                ["market research", "competitor analysis", "industry report"],
                [
                    "market research",
                    "competitor analysis",
                    "business research"
                ]
            ),
            sub!(
                "business-plans",
                "Business Plans",
                ["write", "create"],
                [
                    "business plan",
                    "pitch deck",
                    "financial model",
                    "startup plan"
                ],
                ["business plan", "pitch deck", "startup", "investor"]
            ),
            sub!(
                "project-management",
                "Project Management",
                ["manage", "organize"],
                [
                    "your project",
                    "jira board",
                    "notion workspace",
                    "asana setup"
                ],
                ["project management", "jira", "notion", "agile", "scrum"]
            ),
            sub!(
                "financial-consulting",
                "Financial Consulting",
                ["prepare", "do"],
                [
                    "bookkeeping",
                    "financial statements",
                    "tax planning",
                    "quickbooks setup"
                ],
                ["bookkeeping", "accounting", "quickbooks", "finance"]
            ),
        ],
    },
    SyntheticCategory {
        slug: "data-ai",
        name: "Data & AI Services",
        base_price: 6000,
        subcategories: &[
            sub!(
                "data-analysis",
                "Data Analysis & Visualization",
                ["analyze", "visualize"],
                [
                    "excel data",
                    "power bi dashboard",
                    "tableau dashboard",
                    "sales data"
                ],
                ["data analysis", "power bi", "tableau", "excel", "dashboard"]
            ),
            sub!(
                "data-entry",
                "Data Entry",
                ["do", "handle"],
                [
                    "data entry",
                    "copy paste work",
                    "excel data entry",
                    "product listing"
                ],
                ["data entry", "excel", "copy paste", "typing"]
            ),
            sub!(
                "data-engineering",
                "Data Engineering",
                ["build", "design"],
                [
                    "etl pipeline",
                    "data warehouse",
                    "airflow dags",
                    "spark jobs"
                ],
                ["data engineering", "etl", "sql", "airflow", "spark"]
            ),
            sub!(
                "machine-learning",
                "Machine Learning",
                ["build", "train"],
                [
                    "machine learning model",
                    "computer vision model",
                    "nlp model",
                    "recommendation system"
                ],
                [
                    "machine learning",
                    "python",
                    "deep learning",
                    "tensorflow",
                    "pytorch"
                ]
            ),
            sub!(
                "ai-chatbots",
                "AI Chatbots",
                ["build", "develop"],
                [
                    "ai chatbot",
                    "chatgpt bot",
                    "customer support bot",
                    "whatsapp bot"
                ],
                ["chatbot", "chatgpt", "openai", "ai agent"]
            ),
            sub!(
                "ai-applications",
                "AI Applications",
                ["build", "integrate"],
                [
                    "ai web app",
                    "llm integration",
                    "rag application",
                    "ai automation"
                ],
                ["ai", "llm", "openai", "automation", "langchain"]
            ),
        ],
    },
];

const ADJECTIVES: &[&str] = &[
    "professional",
    "modern",
    "unique",
    "custom",
    "high quality",
    "stunning",
    "responsive",
    "creative",
    "fast",
    "clean",
    "premium",
    "simple",
    "elegant",
    "affordable",
];
const ENDINGS: &[&str] = &[
    "",
    "",
    "",
    " for your business",
    " for your brand",
    " for your startup",
    " in 24 hours",
    " with unlimited revisions",
    " for small business",
    " that converts",
];
const FIRST_NAMES: &[&str] = &[
    "amina", "bruno", "chen", "dara", "elena", "farid", "grace", "hiro", "ines", "jonas", "kemi",
    "lucas", "maya", "nikhil", "olga", "pablo", "quinn", "rosa", "sami", "tariq", "uma", "victor",
    "wen", "ximena", "yusuf", "zoe",
];
const LAST_NAMES: &[&str] = &[
    "adeyemi", "bauer", "costa", "dubois", "evans", "fischer", "garcia", "haddad", "ito", "jensen",
    "kowalski", "lopez", "mensah", "nguyen", "okafor", "patel", "rossi", "silva", "tanaka",
    "usman", "varga", "wright", "yilmaz", "zhang",
];
const CLOSINGS: &[&str] = &[
    "Message me before ordering so we can discuss your project.",
    "Fast delivery and friendly communication guaranteed.",
    "Your satisfaction is my priority; revisions are included.",
    "Check my portfolio and reviews, then let's get started.",
];

struct Seller {
    id: Uuid,
    username: String,
    name: String,
    level: SellerLevel,
    category: usize,
}

/// Deterministic generated gigs (see the module documentation).
pub struct SyntheticGigs {
    rng: ChaCha8Rng,
    sellers: Vec<Seller>,
    remaining: usize,
    epoch: DateTime<Utc>,
}

/// `count` generated gigs from `seed`.
pub fn synthetic_gigs(seed: u64, count: usize) -> SyntheticGigs {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let seller_count = (count / 4).max(1);
    let sellers = (0..seller_count)
        .map(|i| {
            let first = pick(&mut rng, FIRST_NAMES);
            let last = pick(&mut rng, LAST_NAMES);
            let level = match rng.gen_range(0..100) {
                0..=39 => SellerLevel::New,
                40..=69 => SellerLevel::Level1,
                70..=89 => SellerLevel::Level2,
                _ => SellerLevel::TopRated,
            };
            Seller {
                id: uuid(&mut rng),
                username: format!("{first}_{last}{i}"),
                name: format!("{} {}", capitalize(first), capitalize(last)),
                level,
                category: rng.gen_range(0..TAXONOMY.len()),
            }
        })
        .collect();
    SyntheticGigs {
        rng,
        sellers,
        remaining: count,
        epoch: Utc
            .with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
            .single()
            .unwrap_or_default(),
    }
}

fn pick<'a>(rng: &mut ChaCha8Rng, items: &'a [&'a str]) -> &'a str {
    items.choose(rng).copied().unwrap_or_default()
}

fn uuid(rng: &mut ChaCha8Rng) -> Uuid {
    uuid::Builder::from_random_bytes(rng.gen()).into_uuid()
}

fn capitalize(word: &str) -> String {
    let mut chars = word.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

fn article(noun_phrase: &str) -> &'static str {
    if noun_phrase.ends_with('s') {
        ""
    } else if noun_phrase.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an "
    } else {
        "a "
    }
}

impl SyntheticGigs {
    fn gig(&mut self) -> GigDocument {
        let rng = &mut self.rng;
        let seller = &self.sellers[rng.gen_range(0..self.sellers.len())];
        let category = if rng.gen_bool(0.8) {
            &TAXONOMY[seller.category]
        } else {
            &TAXONOMY[rng.gen_range(0..TAXONOMY.len())]
        };
        let sub = &category.subcategories[rng.gen_range(0..category.subcategories.len())];
        let verb = pick(rng, sub.verbs);
        let noun = pick(rng, sub.nouns);
        let adjective = pick(rng, ADJECTIVES);
        let ending = pick(rng, ENDINGS);
        let phrase = format!("{adjective} {noun}");
        let title = format!("I will {verb} {}{phrase}{ending}", article(&phrase));

        let mut tags: Vec<String> = sub.tags.iter().map(|t| (*t).to_owned()).collect();
        tags.shuffle(rng);
        tags.truncate(rng.gen_range(3..=5).min(tags.len()));

        let years = rng.gen_range(2..=15);
        let description = format!(
            "{title}. I have {years} years of experience in {} and {}, and I deliver {noun} work that fits your needs. {}",
            sub.name.to_lowercase(),
            tags.first().map(String::as_str).unwrap_or("design"),
            pick(rng, CLOSINGS),
        );

        // Cheapest package: skewed towards the category's base price.
        let factor: f64 = [0.2, 0.4, 0.6, 1.0, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0]
            .choose(rng)
            .copied()
            .unwrap_or(1.0);
        let price_min =
            (((category.base_price as f64 * factor) / 500.0).round() as i64).max(1) * 500;
        let price_max = price_min * rng.gen_range(1..=6);
        let delivery_days_min = *[1u32, 1, 2, 2, 3, 3, 3, 5, 5, 7, 7, 10, 14]
            .choose(rng)
            .unwrap_or(&3);

        let (rating_avg, rating_count) = if rng.gen_bool(0.15) {
            (0.0, 0)
        } else {
            let base: f32 = match seller.level {
                SellerLevel::New => 3.8,
                SellerLevel::Level1 => 4.2,
                SellerLevel::Level2 => 4.5,
                SellerLevel::TopRated => 4.7,
            };
            let rating = ((base + rng.gen_range(0.0f32..=(5.0 - base))) * 10.0).round() / 10.0;
            let ceiling = match seller.level {
                SellerLevel::New => 20,
                SellerLevel::Level1 => 150,
                SellerLevel::Level2 => 600,
                SellerLevel::TopRated => 3000,
            };
            (rating.min(5.0), rng.gen_range(1..=ceiling))
        };

        let gig_id = uuid(rng);
        let age = Duration::seconds(rng.gen_range(0..2 * 365 * 24 * 3600));
        GigDocument {
            gig_id,
            title,
            description,
            tags,
            category: category.slug.to_owned(),
            category_name: category.name.to_owned(),
            subcategory: sub.slug.to_owned(),
            subcategory_name: sub.name.to_owned(),
            seller_id: seller.id,
            seller_username: seller.username.clone(),
            seller_name: seller.name.clone(),
            seller_level: seller.level,
            price_min,
            price_max,
            delivery_days_min,
            rating_avg,
            rating_count,
            image_url: Some(format!("/media/gigs/{gig_id}/cover.webp")),
            created_at: self.epoch - age,
        }
    }
}

impl Iterator for SyntheticGigs {
    type Item = GigDocument;

    fn next(&mut self) -> Option<GigDocument> {
        if self.remaining == 0 {
            return None;
        }
        self.remaining -= 1;
        Some(self.gig())
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining, Some(self.remaining))
    }
}

impl ExactSizeIterator for SyntheticGigs {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generation_is_deterministic_and_believable() {
        let a: Vec<_> = synthetic_gigs(7, 500).collect();
        let b: Vec<_> = synthetic_gigs(7, 500).collect();
        assert_eq!(a, b);
        assert_ne!(a, synthetic_gigs(8, 500).collect::<Vec<_>>());
        for gig in &a {
            assert!(gig.title.starts_with("I will "), "{}", gig.title);
            assert!((3..=5).contains(&gig.tags.len()));
            assert!(gig.price_min >= 500 && gig.price_min <= gig.price_max);
            assert!((0.0..=5.0).contains(&gig.rating_avg));
            assert_eq!(gig.rating_avg == 0.0, gig.rating_count == 0);
            assert!(TAXONOMY.iter().any(|c| c.slug == gig.category
                && c.subcategories.iter().any(|s| s.slug == gig.subcategory)));
        }
        let categories: std::collections::HashSet<_> = a.iter().map(|g| &g.category).collect();
        assert_eq!(categories.len(), TAXONOMY.len());
    }
}
