"""Discovery (Scrapy) and download (aiohttp) of image-text pairs."""
