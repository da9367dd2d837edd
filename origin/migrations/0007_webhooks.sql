-- The outbox of order events and their webhook deliveries.
--
-- Every change of an order's status is recorded in order_events by a trigger
-- on orders, so in the same transaction as the change whichever code path
-- makes it; the same trigger queues one delivery per endpoint that wants the
-- event. An order's events are numbered in the order they happened (seq).
-- An event carries no copy of the order: the order as it was right after the
-- change is the row as it is now with the event's status (only the status and
-- paid_at ever change, and paid is final), put together when it is sent.

CREATE TABLE order_events (
    seq        BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- The idempotency key: the same on every delivery of this event.
    id         UUID NOT NULL DEFAULT gen_random_uuid(),
    order_id   UUID NOT NULL,
    event_id   BIGINT NOT NULL,
    user_id    BIGINT NOT NULL,
    type       TEXT NOT NULL CHECK (type IN ('order.queued', 'order.awaiting_payment',
                   'order.paid', 'order.expired', 'order.cancelled')),
    created_at TIMESTAMPTZ NOT NULL
);

CREATE INDEX order_events_by_user ON order_events (user_id, seq DESC);

-- Where deliveries go: the deployment's endpoints (event_id NULL, from
-- RUSHGATE_WEBHOOK_URLS, signed with RUSHGATE_WEBHOOK_SECRET) and an event's
-- own (from the console, with their own secret).
CREATE TABLE webhook_endpoints (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id   BIGINT REFERENCES events (id) ON DELETE CASCADE,
    url        TEXT NOT NULL,
    secret     TEXT,
    types      TEXT[] NOT NULL,
    rate_per_s INTEGER NOT NULL CHECK (rate_per_s > 0),
    burst      INTEGER NOT NULL CHECK (burst > 0),
    enabled    BOOLEAN NOT NULL DEFAULT true,
    -- The leaky bucket: the theoretical time of the next send, µs since the epoch.
    tat_us     BIGINT NOT NULL DEFAULT 0,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    CHECK ((event_id IS NULL) = (secret IS NULL))
);

CREATE UNIQUE INDEX webhook_endpoints_deployment ON webhook_endpoints (url)
    WHERE event_id IS NULL;

-- One row per event and endpoint. A pending row is due at next_at; a worker
-- that takes it moves next_at past its request's timeout (a lease), so a
-- worker that dies leaves it due again. An order's deliveries to one endpoint
-- go in seq order: a row waits while an earlier one of its order is not
-- delivered (a dead one holds the rest back, at next_at infinity, until it is
-- retried).
CREATE TABLE webhook_deliveries (
    endpoint_id  BIGINT NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    event_seq    BIGINT NOT NULL REFERENCES order_events (seq),
    order_id     UUID NOT NULL,
    event_id     BIGINT NOT NULL,
    state        TEXT NOT NULL DEFAULT 'pending'
                 CHECK (state IN ('pending', 'delivered', 'dead')),
    attempts     INTEGER NOT NULL DEFAULT 0,
    next_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    delivered_at TIMESTAMPTZ,
    last_error   TEXT,
    PRIMARY KEY (endpoint_id, event_seq)
);

CREATE INDEX webhook_deliveries_due ON webhook_deliveries (endpoint_id, next_at, event_seq)
    WHERE state = 'pending';
CREATE INDEX webhook_deliveries_open ON webhook_deliveries (endpoint_id, order_id, event_seq)
    WHERE state <> 'delivered';
CREATE INDEX webhook_deliveries_by_event ON webhook_deliveries (event_id, state);
-- Delivered rows past the retention (RUSHGATE_WEBHOOK_KEEP_DAYS) are pruned.
CREATE INDEX webhook_deliveries_delivered ON webhook_deliveries (delivered_at)
    WHERE state = 'delivered';

-- Queues a delivery of each new event to every enabled endpoint that wants it.
CREATE FUNCTION webhook_fan_out(seqs BIGINT[]) RETURNS VOID
LANGUAGE sql AS $$
    INSERT INTO webhook_deliveries (endpoint_id, event_seq, order_id, event_id)
    SELECT w.id, e.seq, e.order_id, e.event_id
    FROM order_events e
    JOIN webhook_endpoints w
      ON w.enabled AND (w.event_id IS NULL OR w.event_id = e.event_id) AND e.type = ANY (w.types)
    WHERE e.seq = ANY (seqs)
$$;

-- A written order was queued (at its reservation) and now awaits payment.
CREATE FUNCTION order_events_on_insert() RETURNS TRIGGER
LANGUAGE plpgsql AS $$
DECLARE
    seqs BIGINT[];
BEGIN
    WITH added AS (
        INSERT INTO order_events (order_id, event_id, user_id, type, created_at)
        SELECT n.id, n.event_id, n.user_id, 'order.' || s.status,
               CASE s.k WHEN 1 THEN n.created_at ELSE now() END
        FROM new_orders n
        CROSS JOIN LATERAL (VALUES (1, 'queued'), (2, n.status)) AS s (k, status)
        ORDER BY n.created_at, n.id, s.k
        RETURNING seq
    )
    SELECT array_agg(seq) INTO seqs FROM added;
    IF seqs IS NOT NULL THEN
        PERFORM webhook_fan_out(seqs);
    END IF;
    RETURN NULL;
END $$;

-- An order's status changed (paid, expired, cancelled).
CREATE FUNCTION order_events_on_update() RETURNS TRIGGER
LANGUAGE plpgsql AS $$
DECLARE
    seqs BIGINT[];
BEGIN
    WITH added AS (
        INSERT INTO order_events (order_id, event_id, user_id, type, created_at)
        SELECT n.id, n.event_id, n.user_id, 'order.' || n.status, now()
        FROM new_orders n JOIN old_orders o ON o.id = n.id
        WHERE n.status IS DISTINCT FROM o.status
        ORDER BY n.id
        RETURNING seq
    )
    SELECT array_agg(seq) INTO seqs FROM added;
    IF seqs IS NOT NULL THEN
        PERFORM webhook_fan_out(seqs);
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER order_events_insert AFTER INSERT ON orders
    REFERENCING NEW TABLE AS new_orders
    FOR EACH STATEMENT EXECUTE FUNCTION order_events_on_insert();

CREATE TRIGGER order_events_update AFTER UPDATE ON orders
    REFERENCING OLD TABLE AS old_orders NEW TABLE AS new_orders
    FOR EACH STATEMENT EXECUTE FUNCTION order_events_on_update();
