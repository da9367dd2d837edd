-- Accounts that change under their sessions. Every session carries its
-- account's generation from the login; changing the role, disabling or
-- deleting the account moves the generation on, which ends all of its
-- sessions at the origin and the edge. A deleted account keeps its row
-- (orders and events point at it), without its name or password.
ALTER TABLE users
    ADD COLUMN generation  INTEGER NOT NULL DEFAULT 0,
    ADD COLUMN disabled_at TIMESTAMPTZ,
    ADD COLUMN deleted_at  TIMESTAMPTZ;
