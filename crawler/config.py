"""Typed, documented defaults of the crawl stage: discovery (Scrapy), the demo web and the downloader."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class DownloadConfig:
    """The ingest/download engine (`wukong download`)."""

    # Input columns; Wukong's released CSVs use `url` and `caption`.
    url_col: str = "url"
    caption_col: str = "caption"
    # Extra input columns copied into the parquet index and KEY.json.
    save_additional_columns: list[str] = field(default_factory=list)
    # Rows per partition; one partition becomes one raw shard.
    rows_per_shard: int = 10_000
    # Concurrency: requests in flight per process, and per host.
    concurrency: int = 256
    per_host_connections: int = 64
    # Timeouts in seconds; `total` bounds a whole request so a body that never ends is cut off.
    connect_timeout: float = 10.0
    read_timeout: float = 20.0
    total_timeout: float = 60.0
    # Retries for transient failures only (timeouts, resets, 429, 5xx), with exponential backoff.
    retries: int = 2
    backoff_base: float = 0.5
    backoff_max: float = 8.0
    max_redirects: int = 5
    # Bodies larger than this are cut off while streaming.
    max_bytes: int = 20 * 1024 * 1024
    user_agent: str = "wukong-pipeline/0.1 (+{contact})"
    contact_url: str = "https://github.com/wukong-pipeline/wukong-pipeline"
    # X-Robots-Tag values that opt an image out (as img2dataset).
    disallowed_robots_tags: list[str] = field(default_factory=lambda: ["noai", "noimageai", "noindex"])
    # Address guard: private, loopback and link-local targets are refused unless allowed.
    allow_private: bool = False
    # Specific private targets allowed: host, IP or CIDR, optionally with :port.
    allowed_addresses: list[str] = field(default_factory=list)
    # Output image: size, resize mode (no, keep_ratio, center_crop, border) and JPEG quality.
    image_size: int = 224
    resize_mode: str = "border"
    jpeg_quality: int = 95
    # Decompression-bomb guard, in pixels of the original image.
    max_image_pixels: int = 89_478_485
    # Ray tasks in parallel (0: one per CPU Ray sees).
    processes: int = 0


@dataclass
class CrawlConfig:
    """Query-seeded discovery with Scrapy (`wukong crawl`)."""

    queries_file: str | None = None
    search_url: str | None = None
    start_urls: list[str] = field(default_factory=list)
    max_results_per_query: int = 1000


@dataclass
class DemoWebConfig:
    """The bundled demo web served on 127.0.0.1 (`wukong demo-web`)."""

    seed: int = 0
    port: int = 0
