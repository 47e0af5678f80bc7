#!/usr/bin/env sh
# Rebuild data/sample from the hftbacktest capture it was cut from (origin: data/README.md).
# Usage: data/rebuild-sample.sh [path/to/btcusdt_20240808.gz]
set -eu
src="${1:-../shared/fixtures/binance_usdm_btcusdt_20240808.gz}"
cd "$(dirname "$0")/.."
python=${PYTHON:-python}
rm -rf data/sample
"$python" -m ticktape import "$src" --archive data/sample --end 2024-08-08T23:55:40Z
"$python" -m ticktape compact --archive data/sample
"$python" -m ticktape verify --archive data/sample
