-- purpose: each node's viewer count per video, summed over fresh rows to publish a total
CREATE TABLE viewer_counts (
    -- a node is one worker process; its id is random per start, so a dead node's
    -- rows simply stop being refreshed and age out of every sum
    node_id    text NOT NULL,
    video_id   text NOT NULL,
    count      integer NOT NULL CHECK (count >= 0),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (video_id, node_id)
);
-- the periodic sweep of rows left by nodes that died
CREATE INDEX viewer_counts_updated_at ON viewer_counts (updated_at);
