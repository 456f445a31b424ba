-- Gigs, the category taxonomy they are filed under, and the search outbox.
--
-- The taxonomy rows are the same as in the SQLite migration.

CREATE TABLE categories (
    slug     TEXT PRIMARY KEY,
    name     TEXT NOT NULL,
    position INTEGER NOT NULL
);

CREATE TABLE subcategories (
    category_slug TEXT NOT NULL REFERENCES categories (slug),
    slug          TEXT NOT NULL,
    name          TEXT NOT NULL,
    position      INTEGER NOT NULL,
    PRIMARY KEY (category_slug, slug)
);

-- A gig's category and subcategory must be a pair of the taxonomy. Tags,
-- FAQ, packages and media are JSON arrays of the domain types. `version`
-- counts writes: an update names the version it replaces.
CREATE TABLE gigs (
    id          UUID PRIMARY KEY,
    seller_id   UUID NOT NULL REFERENCES users (id),
    title       TEXT NOT NULL,
    description TEXT NOT NULL,
    category    TEXT NOT NULL,
    subcategory TEXT NOT NULL,
    tags        JSONB NOT NULL,
    faq         JSONB NOT NULL,
    packages    JSONB NOT NULL,
    media       JSONB NOT NULL,
    status      TEXT NOT NULL CHECK (status IN ('draft', 'active', 'paused', 'removed')),
    version     BIGINT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL,
    deleted_at  TIMESTAMPTZ,
    FOREIGN KEY (category, subcategory) REFERENCES subcategories (category_slug, slug)
);

-- A seller's gigs, newest first.
CREATE INDEX gigs_seller_id_idx ON gigs (seller_id, created_at);
-- Public gigs by category, newest first (browsing without the search tier).
CREATE INDEX gigs_public_category_idx ON gigs (category, subcategory, created_at)
    WHERE status = 'active' AND deleted_at IS NULL;

-- Gigs whose search index entry is out of date, oldest first. No foreign key:
-- an entry must outlive its gig so the indexer learns to drop it.
CREATE TABLE search_outbox (
    id         BIGSERIAL PRIMARY KEY,
    gig_id     UUID NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);

INSERT INTO categories (slug, name, position) VALUES
    ('graphics-design',     'Graphics & Design',      1),
    ('programming-tech',    'Programming & Tech',     2),
    ('digital-marketing',   'Digital Marketing',      3),
    ('writing-translation', 'Writing & Translation',  4),
    ('video-animation',     'Video & Animation',      5),
    ('music-audio',         'Music & Audio',          6),
    ('business',            'Business',               7),
    ('data-ai',             'Data & AI Services',     8);

INSERT INTO subcategories (category_slug, slug, name, position) VALUES
    ('graphics-design', 'logo-design',         'Logo Design',                1),
    ('graphics-design', 'brand-style-guides',  'Brand Style Guides',         2),
    ('graphics-design', 'illustration',        'Illustration',               3),
    ('graphics-design', 'website-app-design',  'Website & App Design',       4),
    ('graphics-design', 'social-media-design', 'Social Media Design',        5),
    ('graphics-design', 'packaging-design',    'Packaging & Label Design',   6),

    ('programming-tech', 'web-development',       'Web Development',         1),
    ('programming-tech', 'mobile-apps',           'Mobile App Development',  2),
    ('programming-tech', 'ecommerce-development', 'E-Commerce Development',  3),
    ('programming-tech', 'desktop-applications',  'Desktop Applications',    4),
    ('programming-tech', 'devops-cloud',          'DevOps & Cloud',          5),
    ('programming-tech', 'cybersecurity',         'Cybersecurity',           6),

    ('digital-marketing', 'search-engine-optimization', 'Search Engine Optimization (SEO)', 1),
    ('digital-marketing', 'social-media-marketing',     'Social Media Marketing',           2),
    ('digital-marketing', 'search-engine-marketing',    'Search Engine Marketing (SEM)',    3),
    ('digital-marketing', 'content-marketing',          'Content Marketing',                4),
    ('digital-marketing', 'email-marketing',            'E-mail Marketing',                 5),

    ('writing-translation', 'articles-blog-posts', 'Articles & Blog Posts',  1),
    ('writing-translation', 'copywriting',         'Copywriting',            2),
    ('writing-translation', 'translation',         'Translation',            3),
    ('writing-translation', 'proofreading-editing', 'Proofreading & Editing', 4),
    ('writing-translation', 'technical-writing',   'Technical Writing',      5),
    ('writing-translation', 'resume-writing',      'Resume Writing',         6),

    ('video-animation', 'video-editing',        'Video Editing',          1),
    ('video-animation', 'animated-explainers',  'Animated Explainers',    2),
    ('video-animation', 'short-video-ads',      'Short Video Ads',        3),
    ('video-animation', 'logo-animation',       'Logo Animation',         4),
    ('video-animation', 'subtitles-captions',   'Subtitles & Captions',   5),

    ('music-audio', 'voice-over',           'Voice Over',             1),
    ('music-audio', 'mixing-mastering',     'Mixing & Mastering',     2),
    ('music-audio', 'producers-composers',  'Producers & Composers',  3),
    ('music-audio', 'podcast-production',   'Podcast Production',     4),
    ('music-audio', 'sound-design',         'Sound Design',           5),

    ('business', 'virtual-assistant',     'Virtual Assistant',      1),
    ('business', 'market-research',       'Market Research',        2),
    ('business', 'business-plans',        'Business Plans',         3),
    ('business', 'project-management',    'Project Management',     4),
    ('business', 'financial-consulting',  'Financial Consulting',   5),

    ('data-ai', 'data-analysis',    'Data Analysis & Visualization', 1),
    ('data-ai', 'data-entry',       'Data Entry',                    2),
    ('data-ai', 'data-engineering', 'Data Engineering',              3),
    ('data-ai', 'machine-learning', 'Machine Learning',              4),
    ('data-ai', 'ai-chatbots',      'AI Chatbots',                   5),
    ('data-ai', 'ai-applications',  'AI Applications',               6);
