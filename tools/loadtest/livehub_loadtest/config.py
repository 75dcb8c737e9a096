"""The load test's settings: one frozen value, built by ``cli`` and sent to every process."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class LoadConfig:
    host: str  # for the Host header
    family: int  # socket address family of ``addr``
    addr: tuple  # resolved (ip, port)
    base_path: str  # URL path prefix, usually ""
    target: str  # "livehub" or "nchan"
    run_id: str  # unique per run: in video names and in every message
    viewers: int
    videos: int
    rate: float  # comments/s over all posters (open loop)
    posters: int
    closed_loop: bool
    duration_s: float  # posting phase
    ramp_s: float  # viewers connect spread over this
    settle_s: float  # pause between all viewers connected and posting
    drain_s: float  # at most this long after posting for stragglers
    connect_timeout_s: float
    post_timeout_s: float
    resume_fraction: float
    resume_pause_s: float
    resume_at_s: float  # seconds into the posting phase when resuming viewers drop
    message_bytes: int  # pad messages to this size (0: no padding)
    procs: int
    jwt_secret: str | None
    server_pids: tuple[int, ...]
    # Database PIDs (e.g. the postmaster: its backends are its children), measured
    # apart from the server so "server CPU" and "Postgres CPU" are both reported.
    db_pids: tuple[int, ...] = ()
    # Where viewers connect, as (host, family, addr) each; empty: where posts go.
    # Viewer i uses entry (i // videos) % len, so every video has viewers on each.
    viewer_targets: tuple[tuple[str, int, tuple], ...] = ()
    # How viewers subscribe: "sse" (GET .../stream) or "ws" (livehub's GET .../ws).
    transport: str = "sse"
    # livehub: share of accepted comments a moderator deletes during posting (deleter.py)
    delete_fraction: float = 0.0

    @property
    def marker(self) -> bytes:
        """What every message of this run starts with (see ``sse.find_token``)."""
        return f"lt {self.run_id} ".encode()

    def video_name(self, index: int) -> str:
        return f"lt-{self.run_id}-{index}"

    def video_path(self, index: int) -> str:
        return f"{self.base_path}/comments/{self.video_name(index)}"

    def viewer_target(self, viewer: int) -> int:
        """Index into ``viewer_targets`` of viewer ``viewer`` (0 when there is none)."""
        n = len(self.viewer_targets)
        return (viewer // self.videos) % n if n > 1 else 0

    def is_resumer(self, viewer: int) -> bool:
        """Whether viewer ``viewer`` drops and resumes; spreads the fraction evenly."""
        f = self.resume_fraction
        return f > 0 and int((viewer + 1) * f) != int(viewer * f)
