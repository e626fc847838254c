"""Defaults the command line shows in its help, defined here and imported by the modules that
use them (store, export, serve): this module imports nothing, so `newsetl --help` and the
parser every command builds load none of those modules (as newsetl.filters for the reports)."""

LOCK_TIMEOUT = 600.0  # seconds a run waits for another run on the same warehouse (--lock-timeout)
FORMATS = ("table", "line", "csv", "json", "ndjson", "markdown", "parquet")  # output formats (export)
DEPLOYMENT_NAME = "scheduled"  # `newsetl serve`'s deployment: news-etl/NAME
PRESETS = ("news", "hugo", "jekyll", "eleventy", "astro")  # whose front-matter keys records use (mapping, --preset)
