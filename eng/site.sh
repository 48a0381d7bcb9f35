#!/usr/bin/env bash
# Builds the documentation site with fsdocs (the tool manifest's fsdocs-tool) from docs/, README.md (the home page) and
# the notebooks (as pages, with outputs when executed copies are given), then fails on fsdocs errors or a relative link
# that leads to no file. Usage, from the repository root, after `dotnet build -c Release` and `dotnet tool restore`:
#   bash eng/site.sh [folder of executed notebooks]      -> artifacts/site/index.html
set -euo pipefail
cd "$(dirname "$0")/.."
lab=src/ContrastSeg.Lab/bin/Release/net10.0/ContrastSeg.Lab.dll
[[ -f "$lab" ]] || { echo "site: $lab is missing: run dotnet build -c Release first"; exit 1; }
staging=artifacts/site-input
site=artifacts/site
if [[ $# -gt 0 ]]; then dotnet "$lab" docs-site stage "$staging" --notebooks "$1"; else dotnet "$lab" docs-site stage "$staging"; fi
rm -rf "$site"
# --noapidocs --ignoreprojects: a site of guides, no API reference (which would build every project again);
# --strict: an error in a page fails the build. SITE_ROOT is where the site is served (default: a server's root).
root=${SITE_ROOT:-/}
dotnet fsdocs build --input "$staging" --output "$site" --noapidocs --ignoreprojects --strict \
  --parameters root "$root" fsdocs-collection-name ContrastSeg fsdocs-logo-src img/logo.png fsdocs-favicon-src img/logo.png \
    fsdocs-logo-link "${root}index.html" fsdocs-license-link "${root}repository/LICENSE" \
    fsdocs-release-notes-link "${root}changelog.html" fsdocs-repository-link "${root}development.html"
dotnet "$lab" docs-site check "$site" --root "$root"
