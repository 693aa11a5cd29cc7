"""WebDataset shard format and the final-shards stage."""
