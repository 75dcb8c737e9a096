-- purpose: comments and the per-video sequence counter whose row lock orders writers
CREATE TABLE videos (
    video_id   text PRIMARY KEY,
    -- highest seq allocated; bumped in the inserting transaction, so no holes
    last_seq   bigint NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE comments (
    video_id   text NOT NULL,
    seq        bigint NOT NULL,
    user_id    text NOT NULL,
    message    text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    -- keyset pages in both directions and catch-up ranges all walk this index
    PRIMARY KEY (video_id, seq)
);
