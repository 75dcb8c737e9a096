-- purpose: webhooks: an outbox of moderation events, and per-video delivery cursors over the comment stream
-- Moderation actions (rare) write their webhook event here in their own transaction.
-- Comments are not copied here: the insert merger's hot INSERT would do twice the
-- work; their deliveries are read from `comments` past each video's cursor instead.
CREATE TABLE webhook_outbox (
    id              bigserial PRIMARY KEY,
    video_id        text NOT NULL,
    type            text NOT NULL,
    payload         jsonb NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    -- a node is delivering it until then (a node that dies lets it go at that time)
    claimed_until   timestamptz
);
CREATE INDEX webhook_outbox_due ON webhook_outbox (next_attempt_at, id);

-- A video's stream entries up to `seq` have been delivered (comments as
-- comment.stored; moderation events in the stream are reported by the outbox).
-- Seqs of one video commit in order (its counter row lock), so everything past the
-- cursor that is visible is exactly what is left, with no gap.
CREATE TABLE webhook_cursors (
    video_id        text PRIMARY KEY,
    seq             bigint NOT NULL,
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    claimed_until   timestamptz
);

-- One row once webhooks were first turned on: the comments stored before then are
-- not delivered (cursors start at each video's head then).
CREATE TABLE webhook_state (
    one        boolean PRIMARY KEY DEFAULT true CHECK (one),
    started_at timestamptz NOT NULL DEFAULT now()
);
