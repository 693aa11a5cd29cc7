"""Typed, documented defaults of the crawl stage: discovery (Scrapy), the demo web and the downloader."""

from __future__ import annotations

from dataclasses import dataclass, field

# `download.resize_mode` values, as img2dataset names them (crawler.imaging implements them).
RESIZE_MODES = ("no", "keep_ratio", "keep_ratio_largest", "center_crop", "border")


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
    # Input format when the file name does not tell (csv, tsv, parquet, jsonl, txt); "" = from suffix.
    input_format: str = ""
    # Whether csv/tsv inputs start with a header row (Wukong's and img2dataset's do).
    input_has_header: bool = True
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
    # Resolved addresses are reused this long (seconds); the guard checks them when resolved.
    dns_cache_ttl: int = 300
    # Longest accepted response header line/field, in bytes.
    max_header_bytes: int = 16_384
    # Bodies larger than this are cut off while streaming.
    max_bytes: int = 20 * 1024 * 1024
    # User-Agent header; {contact} is replaced by contact_url, so site owners can reach us.
    user_agent: str = "wukong-pipeline/0.1 (+{contact})"
    contact_url: str = "https://github.com/wukong-pipeline/wukong-pipeline"
    # Honour robots.txt (RFC 9309; fetched once per origin and partition, matched on our agent token).
    respect_robots_txt: bool = True
    # A robots.txt answered with 5xx means "disallow all" per RFC 9309 unless true. (No answer at all
    # is the requesting URL's own, retried error.)
    robots_unreachable_allows: bool = False
    # robots.txt bodies are cut off at this size (RFC 9309 asks crawlers to read at least 500 KiB).
    robots_max_bytes: int = 500 * 1024
    # X-Robots-Tag values that opt an image out (as img2dataset).
    disallowed_robots_tags: list[str] = field(default_factory=lambda: ["noai", "noimageai", "noindex"])
    # Address guard: private, loopback and link-local targets are refused unless allowed.
    allow_private: bool = False
    # Specific private targets allowed: host, IP or CIDR, optionally with :port.
    allowed_addresses: list[str] = field(default_factory=list)
    # Output image: size, resize mode (no, keep_ratio, keep_ratio_largest, center_crop, border), JPEG quality.
    image_size: int = 224
    resize_mode: str = "border"
    jpeg_quality: int = 95
    # Never upscale images smaller than the output size (img2dataset's resize_only_if_bigger).
    resize_only_if_bigger: bool = False
    # Resampling filters (nearest, box, bilinear, hamming, bicubic, lanczos); box = area averaging.
    downscale_filter: str = "box"
    upscale_filter: str = "lanczos"
    # JPEGs are decoded reduced (DCT scaling) to at least this many times the output size.
    decode_oversample: float = 1.0
    # Padding colour of the border mode, and background of transparent images (RGB).
    border_color: list[int] = field(default_factory=lambda: [255, 255, 255])
    # Decompression-bomb guard, in pixels of the original image.
    max_image_pixels: int = 89_478_485
    # Ray tasks in parallel (0: one per CPU Ray sees).
    processes: int = 0
    # Bodies up to this size are decoded on the event loop's thread (a few ms each); larger ones on
    # `decode_threads` threads (Pillow releases the GIL) so they never stall the sockets. 0: all threaded.
    inline_decode_max_bytes: int = 512 * 1024
    # Threads per task for large bodies (0: everything on the event loop's thread).
    decode_threads: int = 2
    # In a run's last wave, when fewer partitions run than `processes`, the running ones decode every
    # body on their `decode_threads` threads, so the cores the finished partitions left idle help.
    use_idle_cores: bool = True
    # Images hashed together in one batched DCT.
    phash_batch: int = 64
    # Seconds between progress reports from a running partition to the driver.
    progress_interval: float = 1.0
    # Ray retries of a partition task whose worker died (the shard is redone from scratch).
    task_max_retries: int = 3


@dataclass
class CrawlConfig:
    """Query-seeded discovery with Scrapy (`wukong crawl`).

    Politeness across partitions: every partition of a run gets an equal share of the per-domain
    budget (`per_domain_rate`, `per_domain_concurrency`) divided by the partitions that run at once,
    so the sum over a cluster never exceeds the budget for any one domain.
    """

    # Query list, one query per line (`wukong queries` writes one); None: no query seeding.
    queries_file: str | None = None
    # Search endpoint, a URL template with {query} (URL-encoded), {page} (1-based) and/or {offset}.
    search_url: str | None = None
    # Start URLs: pages whose pairs are extracted and whose on-domain links are followed.
    start_urls: list[str] = field(default_factory=list)
    # `wukong queries`: how many of the most frequent words of jieba's dictionary (or a word list).
    query_count: int = 200_000
    # Words shorter than this (characters) are not queries: single characters are too vague.
    query_min_chars: int = 2
    # jieba part-of-speech tags excluded from queries: function words, pronouns, numerals,
    # measure words, interjections, and person names (privacy).
    query_exclude_pos: list[str] = field(default_factory=lambda: [
        "r", "rr", "rz", "rg", "p", "c", "u", "ul", "uj", "uz", "uv", "ud", "ug", "d", "df", "dg",
        "m", "mq", "mg", "q", "e", "y", "o", "h", "k", "x", "nr", "nrfg", "nrt"])
    # Extra stop words, one per line (added to the bundled list crawler/query_stopwords.txt).
    query_stopwords_file: str | None = None
    # Wukong kept at most 1000 results per query.
    max_results_per_query: int = 1000
    # Results per search page, used only for {offset} in the template.
    results_per_page: int = 10
    # Search pages of HTML: CSS selector of one result entry; the image inside gives the URL.
    result_css: str = ".result"
    # CSS selector (inside an entry) of the caption text; empty: the image's alt/title.
    result_caption_css: str = ""
    # CSS selector (inside an entry) of the link to the source page; empty: the entry's first <a>.
    result_page_css: str = ""
    # Search pages of JSON: dotted path to the result list (e.g. "data.results"); empty: HTML.
    result_json_path: str = ""
    # Keys of one JSON result entry.
    json_image_key: str = "image_url"
    json_caption_key: str = "caption"
    json_page_key: str = "page_url"
    # Visit the source page of each search result to extract its other pairs.
    follow_result_pages: bool = True
    # Follow on-domain links of article pages, up to this many hops from a seed (0: none). The next
    # pages of a paginated list (or article) are the same list and do not count as a hop.
    depth_limit: int = 2
    # Pages followed one after another through pagination links at most (0: no limit but the page cap).
    max_pagination_chain: int = 1000
    # Pages fetched per partition at most (0: no cap), resumed runs included.
    max_pages_per_partition: int = 20_000
    # Domains whose pages are fetched; empty: the hosts of the start URLs and the search endpoint.
    # Image URLs on other hosts are still recorded as candidates.
    allowed_domains: list[str] = field(default_factory=list)
    obey_robots_txt: bool = True
    # X-Robots-Tag / <meta name=robots> values that opt a page's images out.
    opt_out_robots_tags: list[str] = field(default_factory=lambda: ["noai", "noimageai", "noindex", "none"])
    # Per-domain budget over the whole run (all partitions): requests per second (0: no delay)
    # and requests in flight. AutoThrottle may slow down further when a server answers slowly.
    per_domain_rate: float = 2.0
    per_domain_concurrency: int = 8
    autothrottle: bool = True
    # Requests in flight per partition process, over all domains.
    concurrent_requests: int = 32
    download_timeout: float = 30.0
    # Retries of a failed page (timeouts, 5xx, 429); Scrapy's retry middleware.
    retry_times: int = 2
    # Pages larger than this are dropped.
    max_page_bytes: int = 10 * 1024 * 1024
    user_agent: str = "wukong-pipeline/0.1 (+https://github.com/wukong-pipeline/wukong-pipeline)"
    # Address guard, as the downloader: private, loopback and link-local targets are refused
    # unless allowed globally or listed (host, IP or CIDR, optionally with :port).
    allow_private: bool = False
    allowed_addresses: list[str] = field(default_factory=list)
    # Texts longer than this (characters) are prose, never captions.
    max_caption_chars: int = 256
    # Wrappers searched outward from an image for the caption line below it.
    caption_levels: int = 4
    # A line below an image with no caption sign (centring, caption class, 摄/图为/...) is its caption
    # only when at most this long (characters) and one clause; longer ones are prose.
    plain_caption_max_chars: int = 25
    # A centred line below an image without caption words: at most this long (characters).
    centred_caption_max_chars: int = 120
    # A page has an article body when its best text block holds this much non-link text (characters);
    # pages with less (galleries, image lists) are searched whole, minus page chrome.
    min_body_chars: int = 200
    # Image URLs matching this regular expression are placeholders, never pairs.
    placeholder_pattern: str = (r"(?i)(^data:|blank\.(gif|png)|spacer\.(gif|png)|placeholder|transparent\.(gif|png)"
                                r"|lazy[-_]?load|loading\.(gif|svg))")
    # Also pair a page's og:image with its og:title (the page's headline rather than a caption of the
    # picture; off by default). Pairs record their caption_source ("og").
    og_image_pairs: bool = False
    # Queries per partition at most; each partition is one Scrapy process run as a Ray task.
    queries_per_partition: int = 500
    # Start URLs per partition at most (a host's start URLs stay in one partition when they fit).
    start_urls_per_partition: int = 200
    # Partitions crawled at once (0: one per CPU Ray sees).
    parallel_partitions: int = 0
    # Candidates that pass the text rules are downloaded in the same run.
    download: bool = True
    # Scrapy log level of the partition processes.
    log_level: str = "WARNING"


@dataclass
class DemoWebConfig:
    """The bundled demo web served on 127.0.0.1 (`wukong demo-web`, `wukong crawl` with no target).

    Category shares are of all pairs; what is left after them are good Chinese pairs.
    """

    seed: int = 0
    # 0: a free port.
    port: int = 0
    host: str = "127.0.0.1"
    # Image-caption pairs on the site (the default runs end to end in a few minutes on 2 cores).
    pairs: int = 1000
    # Pairs per article page (drawn uniformly in this range).
    pairs_per_page_min: int = 3
    pairs_per_page_max: int = 8
    # Shares of bad images: too small, too thin/wide, corrupt bytes, non-image bodies,
    # 404, 500, slow (served late but fine), image responses opting out with X-Robots-Tag.
    share_too_small: float = 0.03
    share_too_thin: float = 0.03
    share_corrupt: float = 0.02
    share_not_image: float = 0.02
    share_broken_link: float = 0.02
    share_http_500: float = 0.02
    share_slow: float = 0.02
    share_opted_out_image: float = 0.01
    # Duplicates: byte-identical copies and near copies (re-encoded, rescaled, cropped, brightened).
    share_exact_dup: float = 0.03
    share_near_dup: float = 0.04
    # Bad or special captions.
    share_traditional: float = 0.03
    share_english: float = 0.02
    share_japanese: float = 0.02
    share_korean: float = 0.02
    share_mixed: float = 0.02
    share_boilerplate: float = 0.03
    share_sensitive: float = 0.02
    share_person_name: float = 0.02
    share_phone: float = 0.01
    share_email: float = 0.01
    # Pairs on pages that robots.txt disallows, and on pages that opt out with X-Robots-Tag.
    share_robots_disallowed: float = 0.03
    share_opted_out: float = 0.03
    # Pages (not pairs): slow article pages, pages failing once (500 then fine), broken links.
    share_slow_pages: float = 0.03
    share_flaky_pages: float = 0.03
    broken_page_links: int = 5
    slow_seconds: float = 1.5
    # Fraction of discoverable pairs listed by the search endpoint; the rest only on article pages.
    search_coverage: float = 0.8
    results_per_page: int = 10
    # Served image sizes of good pairs (longer side, pixels).
    image_min_side: int = 240
    image_max_side: int = 420
    # Good images differ from each other by more than this pHash distance, and near duplicates
    # stay within `near_dup_max_distance` of their original (dedup's radius is 4).
    min_distinct_phash_distance: int = 10
    near_dup_max_distance: int = 4
    jpeg_quality: int = 90
    # Crawl settings used against the demo web (loopback, our own server: no politeness delay).
    crawl_per_domain_rate: float = 0.0
    crawl_per_domain_concurrency: int = 16
    # Zero-shot evaluation set: images per class.
    eval_images_per_class: int = 20
