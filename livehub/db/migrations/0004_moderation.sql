-- purpose: moderation events in each video's ordered stream, bans, per-video chat settings, and the moderation log
-- A video's stream holds comments and moderation events in one seq order: a deletion,
-- a pin or a settings change takes the video's next seq from its counter row, exactly
-- as a comment does, so resuming from any position stays exact and gapless.
ALTER TABLE comments
    ADD COLUMN kind text NOT NULL DEFAULT 'comment'
        CHECK (kind IN ('comment', 'deleted', 'pinned', 'settings')),
    -- deleted: the deleted comment's seq; pinned: the pinned seq (NULL: unpinned)
    ADD COLUMN target_seq bigint,
    -- on a comment: when it was deleted; replays then send a tombstone, never the text
    ADD COLUMN deleted_at timestamptz;

-- Deleting a pinned comment blanks the pin events that carry its text; only pin
-- events are indexed, so inserting comments costs nothing more.
CREATE INDEX comments_pins ON comments (video_id, target_seq) WHERE kind = 'pinned';

-- Per-video chat settings; NULL columns fall back to the server's settings.
CREATE TABLE video_settings (
    video_id          text PRIMARY KEY,
    closed            boolean,
    slow_mode_seconds double precision CHECK (slow_mode_seconds >= 0),
    max_message_chars integer CHECK (max_message_chars > 0),
    pinned_seq        bigint,
    updated_at        timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE bans (
    video_id   text NOT NULL,
    user_id    text NOT NULL,
    expires_at timestamptz,  -- NULL: permanent
    created_by text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (video_id, user_id)
);

-- Who did what to which target, when: every moderation action, newest last.
CREATE TABLE moderation_log (
    id         bigserial PRIMARY KEY,
    video_id   text NOT NULL,
    actor      text NOT NULL,
    action     text NOT NULL,
    target     text,
    detail     jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX moderation_log_video ON moderation_log (video_id, id);
