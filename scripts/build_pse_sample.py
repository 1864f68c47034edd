"""Rebuild the shipped PSE market sample from the data bundled in PyPI ``fastquant==0.1.8.1``.

    .venv/bin/python scripts/build_pse_sample.py                 # downloads the wheel with pip
    .venv/bin/python scripts/build_pse_sample.py --wheel PATH    # or uses a wheel you already have

Writes ``src/crowdalpha/market/data/pse.parquet`` and ``PSE_PROVENANCE.md`` beside it. fastquant
is only downloaded (``pip download --no-deps``) into a temporary directory and read as a zip file;
it is never installed or imported. The cleaning rules are in ``crowdalpha.market.samples``.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import pandas as pd

from crowdalpha.market import samples
from crowdalpha.market.synthetic import write_parquet_deterministic

PACKAGE, VERSION = "fastquant", "0.1.8.1"
WHEEL_NAME = f"{PACKAGE}-{VERSION}-py3-none-any.whl"
WHEEL_SHA256 = "c7fac4401dba39ee237632025431f63cf5d207ee30a4857c4df6fa1f1316be97"
PRICES_MEMBER = "fastquant/data/merged_stock_data.zip"
TABLE_MEMBER = "fastquant/data/stock_table.csv"
LICENSE_MEMBER = f"{PACKAGE}-{VERSION}.dist-info/LICENSE"
METADATA_MEMBER = f"{PACKAGE}-{VERSION}.dist-info/METADATA"
DATA_DIR = Path(__file__).resolve().parents[1] / "src" / "crowdalpha" / "market" / "data"


def download_wheel(directory: Path) -> Path:
    """Return the path of the fastquant wheel downloaded by pip into ``directory`` (no dependencies)."""
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        f"{PACKAGE}=={VERSION}",
        "--no-deps",
        "-d",
        str(directory),
    ]
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return directory / WHEEL_NAME


def sha256(data: bytes) -> str:
    """Return the SHA-256 hex digest of ``data``."""
    return hashlib.sha256(data).hexdigest()


def read_wheel(wheel: Path) -> dict[str, Any]:
    """Return the price CSV bytes, stock table, license text, license classifiers and checksums."""
    wheel_bytes = wheel.read_bytes()
    if sha256(wheel_bytes) != WHEEL_SHA256:
        raise SystemExit(f"{wheel} has SHA-256 {sha256(wheel_bytes)}, expected {WHEEL_SHA256}")
    with zipfile.ZipFile(io.BytesIO(wheel_bytes)) as archive:
        outer = archive.read(PRICES_MEMBER)
        table_bytes = archive.read(TABLE_MEMBER)
        license_text = archive.read(LICENSE_MEMBER).decode()
        metadata = archive.read(METADATA_MEMBER).decode()
    # The .zip holds one member (stored under an absolute path of the author's machine) that is a
    # CSV, as fastquant's own pandas.read_csv(..., compression="infer") expects.
    with zipfile.ZipFile(io.BytesIO(outer)) as inner:
        (member,) = inner.namelist()
        csv_bytes = inner.read(member)
    classifiers = [line.split(":: ", 1)[-1] for line in metadata.splitlines() if "License ::" in line]
    return {
        "csv": csv_bytes,
        "table": pd.read_csv(io.BytesIO(table_bytes)),
        "license": license_text.strip(),
        "classifiers": classifiers,
        "checksums": {
            WHEEL_NAME: sha256(wheel_bytes),
            PRICES_MEMBER: sha256(outer),
            f"{PRICES_MEMBER} → {member.rsplit('/', 1)[-1]} (CSV)": sha256(csv_bytes),
            TABLE_MEMBER: sha256(table_bytes),
        },
    }


def provenance(source: dict[str, Any], build: samples.PseBuild, parquet: Path) -> str:
    """Return the text of PSE_PROVENANCE.md for this build."""
    counts = build.counts
    checksums = "\n".join(f"| `{name}` | `{digest}` |" for name, digest in source["checksums"].items())
    sectors = "\n".join(f"| {sector} | {n} |" for sector, n in sorted(counts["assets_per_sector"].items()))
    jumps = build.jumps.sort_values("log_jump")
    examples = pd.concat([jumps.head(3), jumps.tail(3)])
    example_rows = "\n".join(
        f"| {row.asset} | {row.date:%Y-%m-%d} | {row.kind} | {row.log_jump:+.3f} |"
        for row in examples.itertuples()
    )
    classifiers = ", ".join(source["classifiers"]) or "none"
    excluded = ", ".join(counts["excluded_symbols"]) or "none"
    without_sector = len(counts["symbols_without_sector"])
    tolerance = samples.JUMP_TOLERANCE
    adjusted = counts["corporate_actions_adjusted"]
    cap_window = samples.MARKET_CAP_WINDOW
    return f"""# PSE market sample — provenance

`pse.parquet` is a market panel (crowdalpha's panel contract) of Philippine Stock Exchange stocks,
derived from data bundled in the PyPI package **{PACKAGE} {VERSION}** (<https://github.com/enzoampil/fastquant>).
Regenerate it with `.venv/bin/python scripts/build_pse_sample.py`; the cleaning rules are implemented
and documented in `crowdalpha.market.samples` (`build_pse_panel`).

## Source

| file | SHA-256 |
|---|---|
{checksums}

- `{PRICES_MEMBER}`: fastquant's PSE price cache — one CSV (despite the `.zip` name inside the
  zip) with open, high, low, close and traded value (PHP) per stock and session. fastquant's
  `update_pse_data_cache` built it from PSE EDGE (`https://edge.pse.com.ph/common/DisclosureCht.ax`).
  {counts["raw_symbols"]} symbols, {counts["raw_sessions"]:,} sessions.
- `{TABLE_MEMBER}`: company name, symbol, sector, subsector, listing date of each PSE company.
  Sector becomes `sector`, subsector becomes `industry`.

The stock table lists the companies listed when fastquant built it, so stocks delisted before
then are absent: the sample has **survivorship bias** and no delistings.

## License

The wheel's `LICENSE` file is MIT (reproduced below); its README badge also says MIT. Its PyPI
metadata carries the classifier(s) "{classifiers}", which contradicts the LICENSE file; we rely
on the LICENSE file. The prices themselves originate from the Philippine Stock Exchange (PSE EDGE);
crowdalpha claims no rights in them beyond what fastquant's license grants.

```
{source["license"]}
```

## Cleaning rules (see `crowdalpha.market.samples`)

1. Missing, zero or negative close = no trade that session; only traded sessions are rows
   ({counts["zero_or_negative_close_rows"]} zero-price rows). A negative traded value is a data error and
   is treated as missing: the close is kept, `volume` is NaN ({counts["negative_traded_value_rows"]} rows).
2. Exchange-traded funds are dropped ({excluded}); sector `SME` is renamed
   `Small, Medium & Emerging Board` (the same board). Symbols without a sector: {without_sector}.
3. Unadjusted prices: a one-session log return outside [log 0.7 − {tolerance}, log 1.5 + {tolerance}]
   (beyond the PSE static thresholds of +50 % / −30 %) is impossible as a market move. If the next
   session undoes at least half of it, it is a **bad print** and the row is dropped
   ({counts["bad_prints_dropped"]} rows); otherwise it is a **corporate action** (split, reverse split,
   stock dividend) and all earlier closes of the stock are multiplied by the jump ratio, so that
   session's return is 0 and `close` is split-adjusted backwards ({adjusted} events).
   Genuine moves within the thresholds are kept as they are.
4. Illiquid rows dropped: mean traded value over the last {samples.LIQUIDITY_WINDOW} sessions (untraded = 0,
   counted from the stock's first trade) below PHP {samples.MIN_TRADED_VALUE_PHP:,.0f}
   ({counts["illiquid_rows_dropped"]:,} rows).
5. `volume` = traded value / close (shares, split-adjusted units): `close × volume` is the traded
   value in PHP. **`market_cap` is a proxy** (there is no shares-outstanding data):
   `close × 250 ×` mean shares traded per session over the last {cap_window} sessions, i.e. the cap
   of a stock with 100 % annual turnover. It orders stocks by trading size, not by true capitalisation.

All amounts are in PHP. Every rule only uses data up to the row's date.

Largest jumps handled by rule 3:

| asset | date | kind | log jump |
|---|---|---|---|
{example_rows}

## Result

| | |
|---|---|
| rows | {counts["rows"]:,} |
| assets | {counts["assets"]} |
| dates | {counts["dates"]:,} ({counts["first_date"]} … {counts["last_date"]}) |
| source cells with a close (incl. zero) | {counts["raw_rows_with_close"]:,} |
| traded rows after rules 1–3 | {counts["traded_rows_after_price_rules"]:,} |
| file size | {parquet.stat().st_size:,} bytes (Parquet, zstd) |

| sector | assets |
|---|---|
{sectors}

Columns: `date`, `asset` (= PSE symbol), `ticker` (= PSE symbol), `country` (`PH`), `sector`,
`industry`, `close` (float32, PHP, split-adjusted), `volume` (float32, shares), `market_cap`
(float32, PHP, proxy). No `raw_*` features: compute them from prices with `crowdalpha.market.features`.
"""


def main(argv: list[str] | None = None) -> int:
    """Build the sample; return the process exit code."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wheel", type=Path, help=f"an already downloaded {WHEEL_NAME}")
    parser.add_argument("--out-dir", type=Path, default=DATA_DIR, help="where to write the two files")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as scratch:
        wheel = args.wheel or download_wheel(Path(scratch))
        source = read_wheel(wheel)
    prices = samples.read_fastquant_prices(io.BytesIO(source["csv"]))
    build = samples.build_pse_panel(prices, source["table"])
    args.out_dir.mkdir(parents=True, exist_ok=True)
    parquet = args.out_dir / samples.SAMPLES["pse"]
    write_parquet_deterministic(build.panel, parquet)
    (args.out_dir / "PSE_PROVENANCE.md").write_text(provenance(source, build, parquet))
    counts = build.counts
    print(
        f"wrote {parquet} ({parquet.stat().st_size:,} bytes): {counts['rows']:,} rows, "
        f"{counts['assets']} assets, {counts['dates']:,} dates {counts['first_date']} … {counts['last_date']}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
