-- A presale: a window before the general opening in which only holders of a
-- presale code may buy. A code binds to the first account that uses it.
ALTER TABLE events
    ADD COLUMN presale_opens_at  TIMESTAMPTZ,
    ADD COLUMN presale_closes_at TIMESTAMPTZ,
    ADD CONSTRAINT presale_window CHECK (
        (presale_opens_at IS NULL AND presale_closes_at IS NULL)
        OR (presale_opens_at < presale_closes_at AND presale_closes_at <= opens_at)
    );

CREATE TABLE presale_codes (
    event_id   BIGINT NOT NULL REFERENCES events (id) ON DELETE CASCADE,
    code       TEXT NOT NULL,
    user_id    BIGINT REFERENCES users (id),
    bound_at   TIMESTAMPTZ,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (event_id, code),
    CHECK ((user_id IS NULL) = (bound_at IS NULL))
);

-- One code per account and event: a second code adds nothing.
CREATE UNIQUE INDEX presale_codes_one_per_user ON presale_codes (event_id, user_id)
    WHERE user_id IS NOT NULL;
