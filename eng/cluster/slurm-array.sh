#!/usr/bin/env bash
# The ablation grid as Slurm job arrays: one array task per cell (`ablations.fsx --plan plan.json --cell <key>`), then one job
# that rebuilds the tables (`--report-only`). Submit from the login node, in a checkout on shared storage that
# is built (`dotnet build -c Release`) and whose nodes have the .NET 10 SDK and eng/setup.sh's C++ runtime:
#
#   bash eng/cluster/slurm-array.sh            # submits everything and prints the job ids
#
# Cells that share a stage (a fine-tuning cell reusing another cell's pretraining, the classification weights,
# a teacher) must not train it at the same time, so the cells go in waves (`--list-keys --wave w`): one array
# per wave, each waiting for the previous one (afterok), then the report. See README, "Cluster job arrays".
#SBATCH --job-name=contrastseg
#SBATCH --cpus-per-task=4
#SBATCH --mem=8G
#SBATCH --time=12:00:00
#SBATCH --output=slurm-%x-%A_%a.out
#SBATCH --requeue             # a task lost with its node runs again and resumes from its checkpoints
#SBATCH --open-mode=append    # a requeued task's log keeps the first attempt
# No --array line here: its size is the number of cells in a wave, given at submission (--array=0-$((n - 1)));
# a command-line option overrides an #SBATCH line.
set -euo pipefail

# Shared storage, mounted at the same path on every node (rows record it, and the report reads the feature-space
# checkpoints through it). Environment variables override these.
RUNS=${RUNS:-/shared/contrastseg/runs/default}        # stage runs: checkpoints, config.json, metrics.jsonl
RESULTS=${RESULTS:-/shared/contrastseg/results/default} # rows/ (one JSON per cell, atomic writes), then the report
# The options that shape the cells, the same for every command of the grid (--data-root, --set, ...; values
# without spaces). sbatch passes the submitting shell's environment on, so the tasks see the same.
GRID_OPTIONS=${GRID_OPTIONS:---profile default}
read -r -a GRID <<< "$GRID_OPTIONS"
# sbatch options for every job, after the #SBATCH lines, which they override (e.g. --partition=short, or
# --cpus-per-task=1 on nodes with fewer CPUs; the report's too). Values without spaces.
SUBMIT_OPTIONS=${SUBMIT_OPTIONS:-}
read -r -a SUBMIT <<< "$SUBMIT_OPTIONS"

# A fixed thread count per task: libtorch's sums depend on it, so reruns on nodes of one CPU kind give the same numbers.
export CONTRASTSEG_THREADS=${SLURM_CPUS_PER_TASK:-${CONTRASTSEG_THREADS:-auto}}

ablations() { dotnet fsi scripts/ablations.fsx -- "${GRID[@]}" --runs "$RUNS" --output "$RESULTS" "$@"; }
# A job runs the Lab (what ablations.fsx forwards to) in place of this shell: one process, so Slurm's SIGTERM (scancel,
# requeue) reaches the training, which checkpoints before it stops. A shell or `dotnet fsi` (a launcher and a child) in
# between ended at once, and Slurm killed the rest before the checkpoint was written.
run_job() { exec dotnet src/ContrastSeg.Lab/bin/Release/net10.0/ContrastSeg.Lab.dll ablations "$@"; }

case "${1:-submit}" in
  submit)
    script=$(realpath "$0")
    cd "$(dirname "$script")/../.."   # the repository: sbatch records it as the tasks' working directory
    mkdir -p "$RESULTS"
    after=()
    for ((wave = 1; ; wave++)); do
      # The keys as a file on shared storage: every task of the array reads the list it was submitted with. --list-keys
      # also writes $RESULTS/plan.json, every cell's complete stage configs, which the tasks and the report run.
      keys="$RESULTS/keys-wave-$wave.txt"
      ablations --list-keys --wave "$wave" > "$keys"
      n=$(wc -l < "$keys")
      if ((n == 0)); then rm "$keys"; break; fi   # past the last wave
      job=$(sbatch --parsable "${after[@]}" --array="0-$((n - 1))" "${SUBMIT[@]}" "$script" cell "$keys")
      echo "wave $wave: $n cells, array job ${job%%;*}"
      # afterok on an array: every task of it succeeded; a failed cell cancels the later jobs instead of leaving
      # them pending (fix it, submit again: finished cells are reused from their rows).
      after=(--dependency="afterok:${job%%;*}" --kill-on-invalid-dep=yes)
    done
    job=$(sbatch --parsable "${after[@]}" --cpus-per-task=2 "${SUBMIT[@]}" "$script" report)
    echo "report: job ${job%%;*}"
    ;;
  cell)
    # Line k+1 of the wave's key list is task k's cell.
    task=${SLURM_ARRAY_TASK_ID:?"cell runs as a task of a Slurm array (bash $0 submits them)"}
    key=$(sed -n "$((task + 1))p" "$2")
    [[ -n $key ]] || { echo "no cell at line $((task + 1)) of $2" >&2; exit 2; }
    # The cell runs from the plan the submission wrote: no task composes configs again.
    run_job --plan "$RESULTS/plan.json" --cell "$key"
    ;;
  report)
    run_job --plan "$RESULTS/plan.json" --report-only
    ;;
  *)
    echo "usage: bash $0 [submit]   (cell <keys file> and report are the jobs it submits)" >&2; exit 2
    ;;
esac
