"""The bundled demo web: a generated site (search endpoint, article pages, images, robots.txt)
served on 127.0.0.1, with its ground truth, and a zero-shot evaluation set of the same distribution.

- `generate.generate_demo_web(root, cfg)` writes the site and `ground_truth.parquet`;
- `server.DemoWebServer(root)` serves it (and fills the ground truth's absolute URLs);
- `evalset.generate_evalset(out, task)` writes held-out images, one folder per class.
"""
