#!/usr/bin/env bash
# The kit as its users get it: packs ContrastSeg.Core and ContrastSeg.Lab into a local feed, checks their metadata, then,
# in a temporary folder outside the repository, (1) a console project that references ContrastSeg.Core from that feed,
# (2) an F# script with #r "nuget: ContrastSeg.Core" and (3) an F# script with #r "nuget: ContrastSeg.Lab" each train
# 3 steps of the cpu preset on the Fashion-MNIST subset inside the package (no download). The script (2) must load
# libtorch from the NuGet cache without TorchSharp's 478 MB copy. docs/using-the-kit.md is the user's side of this.
#
# Usage: bash eng/package-check.sh            (after eng/setup.sh; reuses the NuGet cache, about 1.5 min warm)
# Needs the NuGet registry for what the cache lacks. Leaves nothing behind but the packages under test in the NuGet
# cache (an earlier copy of the same version there is replaced first: NuGet never re-extracts a version it has).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
started=$(date +%s)
say() { echo "package-check ($(( $(date +%s) - started )) s): $*"; }
fail() { echo "package-check: FAILED: $*" >&2; exit 1; }

version=$(dotnet msbuild "$repo/src/ContrastSeg.Core/ContrastSeg.Core.csproj" -getProperty:Version -nologo)
[[ "$version" =~ ^[0-9]+\.[0-9]+\.[0-9]+ ]] || fail "no version from Directory.Build.props (got '$version')"
work=$(mktemp -d "${TMPDIR:-/tmp}/contrastseg-package-check.XXXXXX")
case "$work/" in "$repo"/*) fail "$work lies inside the repository; set TMPDIR to a folder outside it";; esac
trap 'rm -rf "$work"' EXIT
feed=$work/feed

say "packing $version into $feed"
for project in ContrastSeg.Core ContrastSeg.Lab; do
  dotnet pack "$repo/src/$project" -c Release -o "$feed" -v quiet -nologo > "$work/pack-$project.log" 2>&1 \
    || { cat "$work/pack-$project.log"; fail "dotnet pack src/$project"; }
done

# Metadata: licence, readme, description, no exact pins (NuGet reports downgrades against [x]), the data in Core.
for project in ContrastSeg.Core ContrastSeg.Lab; do
  nupkg=$feed/$project.$version.nupkg
  [[ -f "$nupkg" ]] || fail "$nupkg was not written"
  nuspec=$(unzip -p "$nupkg" "$project.nuspec")
  for needed in '<license type="expression">MIT</license>' '<readme>README.md</readme>' '<authors>ContrastSeg contributors</authors>'; do
    grep -qF "$needed" <<< "$nuspec" || fail "$project.nuspec lacks $needed"
  done
  grep -q '<description>Package Description</description>' <<< "$nuspec" && fail "$project has the placeholder description"
  pinned=$(grep -o '<dependency id="[^"]*" version="\[[^],]*\]"' <<< "$nuspec" || true)
  [[ -z "$pinned" ]] || fail "$project pins exact versions: $pinned"
  # The listing first: `unzip -l | grep -q` under pipefail fails at random (grep exits at its match, unzip gets SIGPIPE).
  listing=$(unzip -l "$nupkg")
  grep -q ' LICENSE$' <<< "$listing" || fail "$project.$version.nupkg has no LICENSE"
  say "$project.$version.nupkg: $(stat -c %s "$nupkg") bytes; dependencies: $(grep -o '<dependency id="[^"]*" version="[^"]*"' <<< "$nuspec" | sed 's/<dependency id="\([^"]*\)" version="\([^"]*\)"/\1 \2/' | paste -sd, -)"
done
listing=$(unzip -l "$feed/ContrastSeg.Core.$version.nupkg")
grep -q 'contentFiles/any/any/data/fashion-mnist-subset/train-images-idx3-ubyte.gz' <<< "$listing" \
  || fail "ContrastSeg.Core.$version.nupkg lacks the Fashion-MNIST subset"

# NuGet keeps the first copy of a version it extracted: drop our own packages of this version from the cache.
packages=$(dotnet nuget locals global-packages --list | sed 's/^global-packages: //; s:/*$::')
rm -rf "$packages/contrastseg.core/$version" "$packages/contrastseg.lab/$version"
consolidated=$(ls -d "$packages"/torchsharp/*/lib/*/cpu 2>/dev/null || true)

cat > "$work/NuGet.config" <<EOF
<?xml version="1.0" encoding="utf-8"?>
<configuration>
  <packageSources>
    <clear />
    <add key="local" value="$feed" />
    <add key="nuget.org" value="https://api.nuget.org/v3/index.json" />
  </packageSources>
</configuration>
EOF

# The three consumers train the same thing: the cpu preset, 10 labelled scenes, 3 steps, on the package's own data.
settings='"Optimizer.Steps=3"; "Optimizer.WarmupSteps=0"; "EvalEvery=3"'

# (1) A console project (what `dotnet new console && dotnet add package ContrastSeg.Core` makes), for this OS only.
mkdir -p "$work/app"
cat > "$work/app/app.csproj" <<EOF
<Project Sdk="Microsoft.NET.Sdk">
  <PropertyGroup>
    <OutputType>Exe</OutputType>
    <TargetFramework>net10.0</TargetFramework>
    <ImplicitUsings>enable</ImplicitUsings>
    <Nullable>enable</Nullable>
    <RuntimeIdentifier>\$(NETCoreSdkRuntimeIdentifier)</RuntimeIdentifier>
    <SelfContained>false</SelfContained>
  </PropertyGroup>
  <ItemGroup>
    <PackageReference Include="ContrastSeg.Core" Version="$version" />
  </ItemGroup>
</Project>
EOF
cat > "$work/app/Program.cs" <<EOF
using ContrastSeg.Data;
using ContrastSeg.Runtime;
using ContrastSeg.Training;

var data = FashionMnistSource.FindEmbeddedFolder() ?? throw new InvalidOperationException("the package's Fashion-MNIST subset is not beside the program");
Console.WriteLine("embedded data: " + data);
var config = ConfigOverrides.Apply(TrainPresets.Cpu(TrainingStage.CrossEntropy, labelled: 10),
    [${settings//;/,}, "Data.Root=" + data, "OutputRoot=" + args[0]]).Validate();
var result = Runs.Train(config);
Console.WriteLine(\$"trained {result.Steps} steps in {result.Seconds:F1} s, validation mIoU {100 * result.Validation!.MeanIoU:F2} %");
Console.WriteLine("natives: " + TorchRuntime.Status.NativeLibraries);
EOF
say "console project: restore, build, train"
(cd "$work/app" && dotnet run -c Release -- "$work/runs-app") > "$work/app.log" 2>&1 || { tail -40 "$work/app.log"; fail "the console project"; }
grep -q '^trained 3 steps' "$work/app.log" || { tail -40 "$work/app.log"; fail "the console project did not train 3 steps"; }
grep -q "^embedded data: $work/app/bin/" "$work/app.log" || { grep embedded "$work/app.log"; fail "the console project did not use the data copied beside it"; }
say "console project: $(grep -E '^(trained|natives)' "$work/app.log" | paste -sd';' -); bin/ $(du -sh "$work/app/bin" | cut -f1)"
rm -rf "$work/app/bin" "$work/app/obj" # libtorch for this OS: about 0.5 GB

# (2) An F# script with the packed Core from the NuGet cache: the kit loads libtorch from there itself.
mkdir -p "$work/script"
cat > "$work/script/train.fsx" <<EOF
#i "nuget: $feed"
#r "nuget: ContrastSeg.Core, $version"
open ContrastSeg.Data
open ContrastSeg.Runtime
open ContrastSeg.Training
// Any kit call loads libtorch; call it before using TorchSharp directly.
printfn "natives: %s" (TorchRuntime.EnsureInitialized().NativeLibraries)
let data = FashionMnistSource.FindEmbeddedFolder() |> Option.ofObj |> Option.defaultWith (fun () -> failwith "no Fashion-MNIST subset in the package")
printfn "embedded data: %s" data
let config = ConfigOverrides.Apply(TrainPresets.Cpu(TrainingStage.CrossEntropy, System.Nullable 10), [ $settings; "Data.Root=" + data; "OutputRoot=$work/runs-script" ]).Validate()
let result = Runs.Train config
printfn "trained %d steps in %.1f s, validation mIoU %.2f %%" result.Steps result.Seconds (100.0 * result.Validation.MeanIoU)
EOF
say "F# script with #r \"nuget: ContrastSeg.Core, $version\""
(cd "$work/script" && dotnet fsi train.fsx) > "$work/script.log" 2>&1 || { tail -40 "$work/script.log"; fail "the F# script"; }
grep -q '^trained 3 steps' "$work/script.log" || { tail -40 "$work/script.log"; fail "the F# script did not train 3 steps"; }
grep -q '^natives: preloaded from the NuGet packages folder' "$work/script.log" || { grep natives "$work/script.log"; fail "the F# script did not load libtorch from the NuGet cache"; }
grep -q "^embedded data: $packages/contrastseg.core/$version/contentFiles/" "$work/script.log" || { grep embedded "$work/script.log"; fail "the F# script did not find the data in the package"; }
if [[ -z "$consolidated" ]]; then
  after=$(ls -d "$packages"/torchsharp/*/lib/*/cpu 2>/dev/null || true)
  [[ -z "$after" ]] || fail "TorchSharp copied libtorch into $after (its fallback ran)"
else
  say "note: $consolidated existed before (an earlier TorchSharp fallback); the 'natives' line above is the check"
fi
say "F# script: $(grep -E '^(trained|natives)' "$work/script.log" | paste -sd';' -)"

# (3) The Lab's commands from a script (the same code as `dotnet fsi scripts/train.fsx` in the repository).
cat > "$work/script/lab.fsx" <<EOF
#i "nuget: $feed"
#r "nuget: ContrastSeg.Lab, $version"
let data = ContrastSeg.Data.FashionMnistSource.FindEmbeddedFolder()
exit (ContrastSeg.Lab.Cli.train [| "--labelled"; "10"; "--data-root"; data; "--set"; "Optimizer.Steps=3"; "--set"; "Optimizer.WarmupSteps=0"; "--set"; "EvalEvery=3"; "--set"; "OutputRoot=$work/runs-lab" |])
EOF
say "F# script with #r \"nuget: ContrastSeg.Lab, $version\""
(cd "$work/script" && dotnet fsi lab.fsx) > "$work/lab.log" 2>&1 || { tail -40 "$work/lab.log"; fail "the Lab script"; }
grep -q '^done: .*(3 steps' "$work/lab.log" || { tail -40 "$work/lab.log"; fail "the Lab script did not train 3 steps"; }
say "Lab script: $(grep '^done:' "$work/lab.log")"
say "passed"
