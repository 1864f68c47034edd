"""Dataset products built from a market panel: Classic (obfuscated, era-based), Signals and
Crypto; Parquet writers and readers."""
