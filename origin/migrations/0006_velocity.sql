-- The door's velocity limits of an event: tries per minute of an account and
-- of a client address, as JSON like the admission setting.
ALTER TABLE events ADD COLUMN velocity JSONB NOT NULL
    DEFAULT '{"account_per_min": 30, "address_per_min": 6000}'::jsonb;
