-- When an event's door asks for a proof of work: "off", "auto" (under load, or
-- for a risky asker) or "always", as JSON like the admission setting.
ALTER TABLE events ADD COLUMN challenge JSONB NOT NULL DEFAULT '"auto"'::jsonb
    CHECK (challenge IN ('"off"'::jsonb, '"auto"'::jsonb, '"always"'::jsonb));
