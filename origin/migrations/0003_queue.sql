-- The fair queue: each queue event's secret draw seed (fixed at approval; its
-- SHA-256 is public from then on, the seed itself once the sale has closed),
-- the entrants the edge reported, and how far its frontier admitted them.

ALTER TABLE events ADD COLUMN draw_seed BYTEA CHECK (draw_seed IS NULL OR length(draw_seed) = 32);

CREATE TABLE queue_entrants (
    event_id  BIGINT NOT NULL REFERENCES events (id) ON DELETE CASCADE,
    user_id   BIGINT NOT NULL,
    joined_ms BIGINT NOT NULL,
    PRIMARY KEY (event_id, user_id)
);

CREATE TABLE queue_frontiers (
    event_id      BIGINT PRIMARY KEY REFERENCES events (id) ON DELETE CASCADE,
    drawn         DOUBLE PRECISION NOT NULL CHECK (drawn >= 0 AND drawn <= 1),
    late_until_ms BIGINT NOT NULL,
    admitted      BIGINT NOT NULL,
    updated_at    TIMESTAMPTZ NOT NULL DEFAULT now()
);
