-- Accounts and events: who may do what, and what is for sale when.

CREATE TABLE users (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    username      TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    role          TEXT NOT NULL CHECK (role IN ('customer', 'operator', 'admin')),
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE events (
    id               BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    owner_id         BIGINT NOT NULL REFERENCES users (id),
    name             TEXT NOT NULL,
    venue            TEXT NOT NULL,
    description      TEXT NOT NULL,
    visible_at       TIMESTAMPTZ NOT NULL,
    opens_at         TIMESTAMPTZ NOT NULL,
    closes_at        TIMESTAMPTZ NOT NULL,
    per_user_limit   INTEGER NOT NULL CHECK (per_user_limit > 0),
    per_order_limit  INTEGER NOT NULL CHECK (per_order_limit > 0 AND per_order_limit <= per_user_limit),
    payment_window_s INTEGER NOT NULL CHECK (payment_window_s > 0),
    dedup_window_s   INTEGER NOT NULL CHECK (dedup_window_s >= 0),
    admission        JSONB NOT NULL,
    buckets          INTEGER NOT NULL CHECK (buckets > 0),
    status           TEXT NOT NULL DEFAULT 'draft'
                     CHECK (status IN ('draft', 'pending_review', 'approved', 'rejected', 'cancelled')),
    review_note      TEXT,
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    CHECK (visible_at <= opens_at AND opens_at < closes_at)
);

CREATE INDEX events_public ON events (opens_at) WHERE status = 'approved';
CREATE INDEX events_owner ON events (owner_id);

CREATE TABLE tiers (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id    BIGINT NOT NULL REFERENCES events (id) ON DELETE CASCADE,
    position    INTEGER NOT NULL,
    name        TEXT NOT NULL,
    price_cents BIGINT NOT NULL CHECK (price_cents >= 0),
    stock       INTEGER NOT NULL CHECK (stock > 0),
    UNIQUE (event_id, position)
);

CREATE INDEX tiers_event ON tiers (event_id);
