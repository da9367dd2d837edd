-- Orders written by the order worker from the reservation streams, and the outbox
-- through which expired or cancelled orders give their stock back exactly once.

CREATE TABLE orders (
    id           UUID PRIMARY KEY,
    event_id     BIGINT NOT NULL,
    tier_id      BIGINT NOT NULL,
    user_id      BIGINT NOT NULL,
    bucket       INTEGER NOT NULL,
    quantity     INTEGER NOT NULL CHECK (quantity > 0),
    amount_cents BIGINT NOT NULL CHECK (amount_cents >= 0),
    status       TEXT NOT NULL DEFAULT 'awaiting_payment'
                 CHECK (status IN ('awaiting_payment', 'paid', 'expired', 'cancelled')),
    created_at   TIMESTAMPTZ NOT NULL,
    written_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at   TIMESTAMPTZ NOT NULL,
    paid_at      TIMESTAMPTZ,
    closed_at    TIMESTAMPTZ,
    payment_ref  TEXT
);

CREATE INDEX orders_by_user ON orders (user_id, created_at DESC);
CREATE INDEX orders_by_event ON orders (event_id, tier_id, status);
CREATE INDEX orders_due ON orders (expires_at) WHERE status = 'awaiting_payment';

CREATE TABLE release_outbox (
    order_id    UUID PRIMARY KEY REFERENCES orders (id),
    event_id    BIGINT NOT NULL,
    tier_id     BIGINT NOT NULL,
    user_id     BIGINT NOT NULL,
    bucket      INTEGER NOT NULL,
    quantity    INTEGER NOT NULL,
    reason      TEXT NOT NULL CHECK (reason IN ('expired', 'cancelled')),
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    released_at TIMESTAMPTZ
);

CREATE INDEX release_outbox_pending ON release_outbox (created_at) WHERE released_at IS NULL;
