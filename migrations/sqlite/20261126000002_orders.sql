-- Orders, custom offers, checkout keys, the double-entry ledger, refunds,
-- provider events and seller withdrawals.
--
-- Same conventions as the earlier migrations: UUIDs as 16-byte BLOBs (they
-- compare byte-wise, in the same order as PostgreSQL's UUID), times as
-- RFC 3339 UTC text (it sorts in time order), JSON as serde_json text. The
-- tables, columns and constraints are the same as in the PostgreSQL
-- migration; unique constraints the store reports as conflicts are matched
-- by `<table>_<column>` (SQLite names the columns, PostgreSQL the
-- constraint).
--
-- An order and an offer are each stored whole as JSON in `data` (the serde
-- form of `Order` and `Offer`, which is what is read back); the other
-- columns copy the parts that are queried or constrained, and are written
-- in the same statement as `data`, so they never disagree. `version` counts
-- writes: an update names the version it replaces.

-- Custom offers. `order_id` is the order checked out from the offer (set
-- once, in the transaction that inserts the order; no foreign key, as the
-- order refers back here). `expires_at` matters while `status` is
-- 'pending'.
CREATE TABLE offers (
    id              BLOB PRIMARY KEY NOT NULL,
    conversation_id BLOB NOT NULL REFERENCES conversations (id),
    seller_id       BLOB NOT NULL REFERENCES users (id),
    buyer_id        BLOB NOT NULL REFERENCES users (id),
    status          TEXT NOT NULL
        CHECK (status IN ('pending', 'accepted', 'declined', 'withdrawn', 'expired')),
    expires_at      TEXT NOT NULL,
    order_id        BLOB,
    data            TEXT NOT NULL,
    version         INTEGER NOT NULL,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL
);

-- A conversation's offers, newest first.
CREATE INDEX offers_conversation_id_idx ON offers (conversation_id, created_at DESC);
-- Pending offers by expiry, for the clock.
CREATE INDEX offers_pending_expires_at_idx ON offers (expires_at) WHERE status = 'pending';

-- Orders. One order per offer (`offer_id` unique) and per payment intent
-- (`payment_provider`, `payment_intent_id` unique; both NULL before an
-- intent exists). `deadline` is the next time the clock has something to do
-- with the order (NULL: nothing), as the caller computed it with the
-- change. `gig_id` has no foreign key: the terms are frozen in `data`.
CREATE TABLE orders (
    id                BLOB PRIMARY KEY NOT NULL,
    buyer_id          BLOB NOT NULL REFERENCES users (id),
    seller_id         BLOB NOT NULL REFERENCES users (id),
    conversation_id   BLOB REFERENCES conversations (id),
    offer_id          BLOB REFERENCES offers (id),
    gig_id            BLOB,
    status            TEXT NOT NULL CHECK (status IN ('awaiting_payment',
        'awaiting_requirements', 'in_progress', 'delivered', 'revision_requested',
        'completed', 'cancelled', 'disputed')),
    payment_provider  TEXT,
    payment_intent_id TEXT,
    total_minor       INTEGER NOT NULL,
    currency          TEXT NOT NULL,
    deadline          TEXT,
    data              TEXT NOT NULL,
    version           INTEGER NOT NULL,
    created_at        TEXT NOT NULL,
    updated_at        TEXT NOT NULL,
    CHECK ((payment_provider IS NULL) = (payment_intent_id IS NULL)),
    CONSTRAINT orders_offer_id_key UNIQUE (offer_id),
    CONSTRAINT orders_payment_intent_key UNIQUE (payment_provider, payment_intent_id)
);

-- A user's orders as buyer or seller, newest first (ids are UUID v7, so
-- they order by time), with and without a status filter.
CREATE INDEX orders_buyer_id_idx ON orders (buyer_id, id);
CREATE INDEX orders_buyer_status_idx ON orders (buyer_id, status, id);
CREATE INDEX orders_seller_id_idx ON orders (seller_id, id);
CREATE INDEX orders_seller_status_idx ON orders (seller_id, status, id);
-- Orders by deadline, for the clock.
CREATE INDEX orders_deadline_idx ON orders (deadline) WHERE deadline IS NOT NULL;

-- A buyer's checkout idempotency keys: a retried checkout finds the order
-- the first one placed. `fingerprint` tells a retry from a different request
-- under the same key. The order is inserted after its key, in the same
-- transaction: the foreign key is checked at commit.
CREATE TABLE checkout_keys (
    buyer_id    BLOB NOT NULL REFERENCES users (id),
    key         TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    order_id    BLOB NOT NULL REFERENCES orders (id) DEFERRABLE INITIALLY DEFERRED,
    created_at  TEXT NOT NULL,
    PRIMARY KEY (buyer_id, key)
);

-- Seller withdrawals of available earnings.
CREATE TABLE withdrawals (
    id           BLOB PRIMARY KEY NOT NULL,
    seller_id    BLOB NOT NULL REFERENCES users (id),
    amount_minor INTEGER NOT NULL CHECK (amount_minor > 0),
    currency     TEXT NOT NULL,
    requested_at TEXT NOT NULL
);

-- A seller's withdrawals, newest first.
CREATE INDEX withdrawals_seller_id_idx ON withdrawals (seller_id, requested_at);

-- Ledger transactions, numbered in the order they were stored. Each is
-- about an order or a withdrawal. `kind` is `TransactionKind::as_str()`.
CREATE TABLE ledger_transactions (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    kind          TEXT NOT NULL
        CHECK (kind IN ('payment', 'settlement', 'refund', 'clearance', 'withdrawal')),
    order_id      BLOB REFERENCES orders (id),
    withdrawal_id BLOB REFERENCES withdrawals (id),
    currency      TEXT NOT NULL,
    created_at    TEXT NOT NULL
);

-- An order's transactions, in order.
CREATE INDEX ledger_transactions_order_id_idx ON ledger_transactions (order_id, id)
    WHERE order_id IS NOT NULL;

-- The lines of a transaction, in their order; they sum to zero. `account`
-- is the `Account`'s text form (`escrow`, `seller_pending:<user id>`, ...);
-- a debit is positive, a credit negative.
CREATE TABLE ledger_postings (
    transaction_id INTEGER NOT NULL REFERENCES ledger_transactions (id),
    position       INTEGER NOT NULL,
    account        TEXT NOT NULL,
    amount_minor   INTEGER NOT NULL,
    PRIMARY KEY (transaction_id, position)
);

-- Each seller account's balance (seller_pending:, seller_available:,
-- seller_withdrawn:): the sum of its postings, kept up to date in the
-- transaction that stores them, so a withdrawal can check and spend the
-- available balance in one statement. The platform-wide accounts
-- (provider, escrow, platform_revenue) have no row here: every payment
-- touches them, and one row each would make all payments wait on each
-- other; their balances are summed from the postings when asked.
CREATE TABLE account_balances (
    account       TEXT PRIMARY KEY NOT NULL,
    balance_minor INTEGER NOT NULL
);

-- Refunds owed to buyers, stored with the order change that decided them
-- and sent to the provider afterwards; 'pending' until the provider
-- answered.
CREATE TABLE refunds (
    id                 BLOB PRIMARY KEY NOT NULL,
    order_id           BLOB NOT NULL REFERENCES orders (id),
    provider           TEXT NOT NULL,
    intent_id          TEXT NOT NULL,
    amount_minor       INTEGER NOT NULL CHECK (amount_minor > 0),
    currency           TEXT NOT NULL,
    status             TEXT NOT NULL CHECK (status IN ('pending', 'succeeded', 'failed')),
    provider_refund_id TEXT,
    created_at         TEXT NOT NULL
);

-- An order's refunds, oldest first.
CREATE INDEX refunds_order_id_idx ON refunds (order_id, created_at);
-- Refunds still to send, oldest first.
CREATE INDEX refunds_pending_idx ON refunds (created_at) WHERE status = 'pending';

-- Provider events already applied, so a second delivery is recognised.
-- `data` is the whole `PaymentEvent` as JSON, for the record.
CREATE TABLE payment_events (
    provider    TEXT NOT NULL,
    event_id    TEXT NOT NULL,
    data        TEXT NOT NULL,
    received_at TEXT NOT NULL,
    PRIMARY KEY (provider, event_id)
);
