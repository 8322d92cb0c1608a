#!/bin/sh
# test_scale.sh — a library indexed in shards by a scheduler, merged, searched
# by scatter-gather and copied page by page (issue 16, docs/SCALE.md).
#
# Starts a one-node Slurm cluster on localhost (munged, slurmctld, slurmd as
# root; proctrack/linuxproc, task/none; ports chosen free), submits a 4-task
# array job running `ram-index --files-from LIST --shard I/4` over the
# held-out pictures with the bundled default model, one thread per task,
# cancels task 2 mid-run (scancel: SIGTERM), resubmits it, merges the shards
# with `ram-index --merge`, and checks against one single ram-index run over
# every file:
#   - the content keys and every stored probability are equal (per path);
#   - the inferences of every run add up to the distinct pictures (plus at
#     most the one image the SIGTERM cut short: the batch is not lost);
#   - integrity-check and PRAGMA integrity_check pass on every shard;
#   - build/ram-search over the 4 shards returns the single index's top-k for
#     10 queries (and the documented UNION ALL SQL does too);
#   - a copy of a shard made with SQLite's backup API (the shell's .backup)
#     serves the same answers with 0 inferences.
#   - the merged index equals the single one (dates too), a second merge
#     stores nothing, a shard of another model is refused;
#   - the slicing rule is stable (the list spelled otherwise, plus new names);
#   - re-sharding 4 shards into 3 (--merge --shard I/3 --root): no inference,
#     every row in one new shard, the old shards unchanged, and the new shards
#     are the slices --shard I/3 indexes.
# Before that, --shard over a folder: 8 pictures, each in one of 4 shards.
# Under the sanitizers (RAM_SANITIZE=1) 80 of the 260 pictures are indexed.
# Then the same with GNU parallel (--joblog, --resume-failed): a job killed
# with SIGTERM, the command rerun. The daemons are stopped by their process
# ids, on failure too. A machine where slurmd cannot start fails, saying why.
cd "$(dirname "$0")/.." || exit 2
B=${RAM_BUILD:-build}
ROOT=$(pwd)
fail() { echo "FAIL: scale.$1: $2"; }
pass() { echo "PASS: scale.$1"; }
for f in "$B/ram-index" "$B/ram-search" "$B/ram.so" models/default.ram; do
  [ -e "$f" ] || { fail build "$f is missing (run make first)"; exit 1; }
done
for c in sqlite3 python3 munged slurmctld slurmd sbatch squeue scancel sinfo parallel; do
  command -v $c >/dev/null 2>&1 ||
    { fail deps "$c is not installed (Debian: slurm-wlm, munge, parallel, sqlite3; make deps installs them)"; exit 1; }
done
parallel --version 2>/dev/null | grep -q 'GNU parallel' ||
  { fail deps "parallel is not GNU parallel (moreutils' parallel? Debian package: parallel)"; exit 1; }
B=$(cd "$B" && pwd)
# Under the ASan suite tests/run.sh preloads the sanitizer runtimes into this
# script's programs: only the sqlite3 shells that load ram.so need them (not
# dd, munged, the Slurm daemons or parallel; ram-index and ram-search are
# instrumented themselves).
PRE=${LD_PRELOAD:-}
unset LD_PRELOAD
xsqlite3() { if [ -n "$PRE" ]; then LD_PRELOAD="$PRE" sqlite3 "$@"; else sqlite3 "$@"; fi; }
RAM_MODEL="$ROOT/models/default.ram"; export RAM_MODEL
T=$(mktemp -d)
DAEMONS=""
JOBS=""
# SIGTERM to each daemon this script started, SIGKILL after 10 s, then reaped
stop_daemons() {
  # this test's jobs first (on a failure some may still run: slurmstepd outlives slurmd)
  [ -n "$JOBS" ] && timeout 5 scancel $JOBS 2>/dev/null
  JOBS=""
  for p in $DAEMONS; do kill "$p" 2>/dev/null; done
  for p in $DAEMONS; do
    n=0
    while kill -0 "$p" 2>/dev/null && [ $n -lt 100 ]; do sleep 0.1; n=$((n + 1)); done
    kill -KILL "$p" 2>/dev/null
    wait "$p" 2>/dev/null
  done
  DAEMONS=""
}
trap 'stop_daemons; rm -rf "$T"' EXIT
trap 'exit 1' INT TERM
cd "$T" || exit 2

# The pictures, named relative to the databases' folder (every shard, the
# merged index and the single index live in $T, so their rows name a file
# alike). The list is sorted; --shard picks each task's lines.
mkdir pics slurm par
cp "$ROOT"/tests/data/heldout/*.png "$ROOT"/tests/data/heldout/*.jpg pics/
# (80 of them under the sanitizers, where a picture takes about 15 times longer)
if [ "${RAM_SANITIZE:-0}" = 1 ]; then
  ls pics | sed 's|^|pics/|' | head -n 80 >list
else
  ls pics | sed 's|^|pics/|' >list
fi
N=$(wc -l <list)
BATCH=4
IDX="$B/ram-index"

# One ram-index run over every file: the reference.
"$IDX" --files-from list all.db --threads 1 --batch $BATCH 2>all.err ||
  { fail single_run "$(cat all.err)"; exit 1; }
DISTINCT=$(sqlite3 all.db "SELECT count(DISTINCT key) FROM photos_images")
ROWS=$(sqlite3 all.db "SELECT count(*) FROM photos_files")
[ "$ROWS" = "$N" ] && pass single_run || fail single_run "$ROWS rows for $N files"

# --shard over a folder (the name relative to it decides): 4 slices of 8
# pictures hold each picture once.
mkdir few
ls pics | head -n 8 | while read -r f; do cp "pics/$f" few/; done
for i in 0 1 2 3; do "$IDX" few "few$i.db" --shard $i/4 --threads 1 2>"few$i.err" || cat "few$i.err"; done
got=$(for i in 0 1 2 3; do sqlite3 "few$i.db" "SELECT path FROM photos_files"; done | sort | tr '\n' ' ')
want=$(ls few | sed 's|^|few/|' | sort | tr '\n' ' ')
nonempty=$(for i in 0 1 2 3; do sqlite3 "few$i.db" "SELECT count(*) > 0 FROM photos_files"; done | grep -c 1)
[ "$got" = "$want" ] && [ "$nonempty" -ge 2 ] && pass shard_folder || fail shard_folder "rows '$got', files '$want', $nonempty shards not empty"

# path, key, probabilities, date and its source of a table, one line per row,
# sorted by path.
dump() { sqlite3 "$1" "SELECT f.path || ' ' || hex(i.key) || ' ' || hex(i.probs) || ' ' || quote(m.taken) || ' ' || quote(m.taken_source) FROM photos_files f JOIN photos_images i ON i.id = f.img LEFT JOIN photos_meta m ON m.id = f.id ORDER BY f.path"; }
dump all.db >all.dump
# The inferences a run reports ("...; N inferences" or "interrupted; ... (N inferences)").
inferences() { sed -n 's/.*[ (]\([0-9][0-9]*\) inferences.*/\1/p' "$@" | awk '{s += $1} END {print s + 0}'; }
QUERIES="a red circle|a blue square|a green triangle|a yellow star|a striped heart|a dotted cross|three pink rings|a large orange arrow|a purple shape on a black background|many small cyan shapes"
search() { "$B/ram-search" --k 5 "$@" 2>>"$T/search.err" | cut -f1,3; }
# the single index's answer to query $1 (computed once)
single() {
  f="$T/single.$(printf '%s' "$1" | tr -c 'a-z' _)"
  [ -f "$f" ] || search "$1" all.db >"$f"
  cat "$f"
}

# checks NAME LOG...: the shards NAME-shard0..3.db (their runs' logs LOG...)
# against the single run. (Every database is in $T, beside pics/: their rows
# name the files alike.)
checks() {
  name=$1 dir=$1; shift
  # every file in exactly one shard, and the union equals the single index
  sum=0
  for i in 0 1 2 3; do sum=$((sum + $(sqlite3 "$dir-shard$i.db" "SELECT count(*) FROM photos_files"))); done
  for i in 0 1 2 3; do dump "$dir-shard$i.db"; done | sort >"$dir/union.dump"
  sort all.dump | cmp -s - "$dir/union.dump" && [ "$sum" = "$N" ] && pass "$name.shards_partition" ||
    fail "$name.shards_partition" "$sum rows in the shards for $N files, or keys/probabilities differ: $(sort all.dump | diff - "$dir/union.dump" | head -3)"
  # merged into one serving index by entry: no inference
  "$IDX" --merge "$dir-serving.db" "$dir"-shard0.db "$dir"-shard1.db "$dir"-shard2.db "$dir"-shard3.db 2>"$dir/merge.err"
  rc=$?
  grep -q "^ram-index: merged 4 shards: $N new, 0 unchanged, 0 changed; 0 inferences$" "$dir/merge.err" && [ $rc = 0 ] &&
    dump "$dir-serving.db" | cmp -s - all.dump && pass "$name.merge" || fail "$name.merge" "rc=$rc $(cat "$dir/merge.err")"
  "$IDX" --merge "$dir-serving.db" "$dir"-shard0.db "$dir"-shard1.db "$dir"-shard2.db "$dir"-shard3.db 2>"$dir/merge2.err"
  grep -q "^ram-index: merged 4 shards: 0 new, $N unchanged, 0 changed; 0 inferences$" "$dir/merge2.err" &&
    pass "$name.merge_again" || fail "$name.merge_again" "$(cat "$dir/merge2.err")"
  # a shard of another model is refused, naming the shard and the reason
  head -n 1 list >one.list
  rm -f other.db
  "$IDX" --files-from one.list other.db --model "$B/models/golden_ram_plus_clip.ram" 2>/dev/null
  "$IDX" --merge "$dir-serving.db" other.db 2>"$dir/merge3.err"
  rc=$?
  [ $rc = 1 ] && grep -q "^ram-index: --merge other.db: its table photos was made with another model or preprocessing (digest [0-9a-f]*\.\.\., prep1 exif=1) than photos uses" "$dir/merge3.err" &&
    dump "$dir-serving.db" | cmp -s - all.dump && pass "$name.merge_other_model" || fail "$name.merge_other_model" "rc=$rc $(cat "$dir/merge3.err")"
  # inferences: the distinct pictures, plus at most the one image whose
  # inference the SIGTERM cut short (the images staged in its batch were
  # stored before the task stopped: a SIGKILL would lose up to a batch)
  inf=$(inferences "$@")
  [ "$inf" -ge "$DISTINCT" ] && [ "$inf" -le $((DISTINCT + 1)) ] && pass "$name.inferences" ||
    fail "$name.inferences" "$inf inferences over the runs for $DISTINCT distinct pictures (batch $BATCH)"
  # integrity of every shard and of the merged index
  bad=
  for db in "$dir"-shard0.db "$dir"-shard1.db "$dir"-shard2.db "$dir"-shard3.db "$dir-serving.db"; do
    r=$(xsqlite3 -cmd ".load $B/ram" "$db" "PRAGMA integrity_check; INSERT INTO photos(photos) VALUES('integrity-check');" 2>&1)
    [ "$r" = ok ] || bad="$bad $db: $r"
  done
  [ -z "$bad" ] && pass "$name.integrity" || fail "$name.integrity" "$bad"
  # scatter-gather: the same top-5 as the single index, 10 queries
  bad=
  : >"$T/search.err"
  IFS='|'
  for qq in $QUERIES; do
    a=$(single "$qq")
    s=$(search "$qq" "$dir"-shard0.db "$dir"-shard1.db "$dir"-shard2.db "$dir"-shard3.db)
    [ -n "$a" ] && [ "$a" = "$s" ] || bad="$bad [$qq: single '$a', shards '$s']"
  done
  unset IFS
  # the documented SQL: UNION ALL of each ATTACHed shard's MATCH ... AND k
  u=$(xsqlite3 -cmd ".load $B/ram" -cmd "ATTACH '$dir-shard0.db' AS s0" -cmd "ATTACH '$dir-shard1.db' AS s1" \
        -cmd "ATTACH '$dir-shard2.db' AS s2" -cmd "ATTACH '$dir-shard3.db' AS s3" -separator '	' :memory: \
        "SELECT printf('%.9g', score), path FROM (
           SELECT path, score FROM s0.photos WHERE photos MATCH 'a red circle' AND k = 5 UNION ALL
           SELECT path, score FROM s1.photos WHERE photos MATCH 'a red circle' AND k = 5 UNION ALL
           SELECT path, score FROM s2.photos WHERE photos MATCH 'a red circle' AND k = 5 UNION ALL
           SELECT path, score FROM s3.photos WHERE photos MATCH 'a red circle' AND k = 5)
         ORDER BY score DESC LIMIT 5" 2>&1)
  a=$(single 'a red circle')
  [ -n "$a" ] && [ "$u" = "$a" ] || bad="$bad [UNION ALL SQL: '$u', single '$a']"
  [ -z "$bad" ] && ! grep -qv ' 0 inferences$' "$T/search.err" && pass "$name.scatter_gather" ||
    fail "$name.scatter_gather" "$bad $(grep -v ' 0 inferences$' "$T/search.err" | head -3)"
  # a page copy (SQLite's backup API) of a shard answers alike, 0 inferences
  rm -f "$dir-copy0.db"
  sqlite3 "$dir-shard0.db" ".backup '$dir-copy0.db'"
  : >"$T/search.err"
  a=$(search --tag red "$dir"-shard0.db "$dir"-shard1.db "$dir"-shard2.db "$dir"-shard3.db)
  c=$(search --tag red "$dir"-copy0.db "$dir"-shard1.db "$dir"-shard2.db "$dir"-shard3.db)
  m1=$(search 'a red circle' "$dir"-shard0.db)
  m2=$(search 'a red circle' "$dir"-copy0.db)
  [ -n "$a" ] && [ "$a" = "$c" ] && [ -n "$m1" ] && [ "$m1" = "$m2" ] && [ "$(grep -c ' 0 inferences$' "$T/search.err")" = 4 ] &&
    pass "$name.backup_copy" || fail "$name.backup_copy" "tag red: '$a' vs '$c'; MATCH: '$m1' vs '$m2'; $(cat "$T/search.err")"
}

# ---------------------------------------------------------------- Slurm
# free TCP ports for slurmctld and slurmd
PORTS=$(python3 -c 'import socket
s = [socket.socket() for _ in range(2)]
for x in s: x.bind(("127.0.0.1", 0))
print(" ".join(str(x.getsockname()[1]) for x in s))')
set -- $PORTS
CTLD_PORT=$1 SLURMD_PORT=$2
H=$(hostname -s)
mkdir -p munge state spool
chmod 700 munge
dd if=/dev/urandom of=munge/munge.key bs=1024 count=1 2>/dev/null && chmod 600 munge/munge.key
munged -F -f --key-file="$T/munge/munge.key" --socket="$T/munge/sock" --pid-file="$T/munge/pid" \
  --log-file="$T/munge/log" --seed-file="$T/munge/seed" 2>munge/stderr &
MUNGED=$!
DAEMONS="$DAEMONS $MUNGED"
cat >slurm.conf <<EOF
ClusterName=ramtest
SlurmctldHost=$H(127.0.0.1)
SlurmUser=root
SlurmdUser=root
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
AuthType=auth/munge
AuthInfo=socket=$T/munge/sock
CredType=cred/munge
StateSaveLocation=$T/state
SlurmdSpoolDir=$T/spool
SlurmctldPidFile=$T/slurmctld.pid
SlurmdPidFile=$T/slurmd.pid
SlurmctldLogFile=$T/slurmctld.log
SlurmdLogFile=$T/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobCompType=jobcomp/none
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
SchedulerType=sched/builtin
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ReturnToService=2
MpiDefault=none
KillWait=5
NodeName=$H NodeAddr=127.0.0.1 CPUs=2 State=UNKNOWN
PartitionName=ram Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
SLURM_CONF="$T/slurm.conf"; export SLURM_CONF
# Each wait below is bounded by the clock (a client call to a dead
# controller can take seconds) and stops as soon as a daemon has died.
logs() { for f in "$@"; do [ -s "$f" ] && printf ' %s: %s' "$f" "$(tail -n 3 "$f" | tr '\n' ' ')"; done; }
dead() { for p in "$@"; do kill -0 "$p" 2>/dev/null || return 0; done; return 1; }
END=$(($(date +%s) + 10))
until munge -S "$T/munge/sock" -n >/dev/null 2>&1; do
  if dead $MUNGED || [ "$(date +%s)" -ge $END ]; then
    fail slurm_start "munged did not start:$(logs munge/stderr munge/log)"; exit 1
  fi
  sleep 0.1
done
slurmctld -D -i -f "$T/slurm.conf" 2>slurmctld.stderr &
CTLD=$!
slurmd -D -f "$T/slurm.conf" 2>slurmd.stderr &
SLURMD=$!
DAEMONS="$DAEMONS $CTLD $SLURMD"
END=$(($(date +%s) + 30))
until [ "$(timeout 5 sinfo -h -o %T 2>/dev/null)" = idle ]; do
  why=
  dead $CTLD && why="slurmctld exited"
  dead $SLURMD && why="${why:+$why, }slurmd exited"
  [ -z "$why" ] && [ "$(date +%s)" -ge $END ] && why="slurmd did not register with slurmctld in 30 s (node state '$(timeout 5 sinfo -h -o %T 2>&1)')"
  if [ -n "$why" ]; then
    fail slurm_start "$why:$(logs slurmd.stderr slurmd.log slurmctld.stderr slurmctld.log)"; exit 1
  fi
  sleep 0.2
done
pass slurm_start
cat >task.sh <<EOF
#!/bin/sh
# one array task: its slice of the list into its own shard
# (N is the layout's, not the array's: a resubmitted task is an array of one)
exec "$IDX" --files-from list --shard "\$SLURM_ARRAY_TASK_ID/4" "slurm-shard\$SLURM_ARRAY_TASK_ID.db" --threads 1 --batch $BATCH
EOF
chmod +x task.sh
# waits until job $1 has left the queue (60 s at most)
wait_job() {
  end=$(($(date +%s) + 60))
  while [ -n "$(timeout 5 squeue -h -j "$1" 2>/dev/null)" ] && ! dead $CTLD $SLURMD; do
    if [ "$(date +%s)" -ge $end ]; then
      fail slurm_job "job $1 still queued after 60 s: $(timeout 5 squeue -j "$1" 2>&1)$(logs slurmd.log slurmctld.log)"
      return 1
    fi
    sleep 0.1
  done
  if dead $CTLD $SLURMD; then fail slurm_job "a Slurm daemon died during job $1:$(logs slurmd.log slurmctld.log)"; return 1; fi
}
JOB=$(sbatch --parsable --array=0-3 -c 1 --chdir="$T" -o "$T/slurm/task%a.%A.out" task.sh 2>&1) ||
  { fail slurm_submit "$JOB"; exit 1; }
JOBS="$JOB"
# task 2, once it has committed its first batch: cancelled (SIGTERM, as a pre-emption)
i=0
until [ "$(sqlite3 -cmd '.timeout 2000' slurm-shard2.db 'SELECT count(*) FROM photos_files' 2>/dev/null)" -ge $BATCH ] 2>/dev/null; do
  i=$((i + 1)); [ $i -lt 3000 ] || break
  sleep 0.02
done
# Held stopped while Slurm delivers the SIGTERM: on an idle machine the other
# 67 pictures take ~0.3 s, less than scancel's round trip, and the task would
# finish before the signal. Resumed once the signal is pending (or after 10 s).
PID2=$(pgrep -f -- "--shard 2/4 slurm-shard2.db" | head -n 1)
[ -n "$PID2" ] && kill -STOP "$PID2" 2>/dev/null
scancel "${JOB}_2"
if [ -n "$PID2" ]; then
  i=0
  term_pending() { # SIGTERM (15: bit 14) in the process's or its thread's pending set
    for m in $(sed -n 's/^\(ShdPnd\|SigPnd\):[[:space:]]*//p' "/proc/$1/status" 2>/dev/null); do
      [ $((0x$m & 16384)) -ne 0 ] && return 0
    done
    return 1
  }
  while kill -0 "$PID2" 2>/dev/null && [ $i -lt 500 ] && ! term_pending "$PID2"; do
    i=$((i + 1)); sleep 0.02
  done
  kill -CONT "$PID2" 2>/dev/null
fi
wait_job "$JOB"
grep -q '^ram-index: interrupted; the work done is kept' slurm/task2.*.out && pass slurm_task_killed ||
  fail slurm_task_killed "task 2 was not stopped mid-run (ram-index pid ${PID2:-not found}): $(cat slurm/task2.*.out | tail -2)"
JOB2=$(sbatch --parsable --array=2 -c 1 --chdir="$T" -o "$T/slurm/task%a.%A.out" task.sh 2>&1) ||
  { fail slurm_resubmit "$JOB2"; exit 1; }
JOBS="$JOB $JOB2"
wait_job "$JOB2"
grep -q "^ram-index: [0-9]* new, [1-9][0-9]* unchanged," slurm/task2.$JOB2.out && pass slurm_resumed ||
  fail slurm_resumed "$(tail -2 slurm/task2.$JOB2.out)"
checks slurm slurm/task*.out
# Re-sharding, 4 shards into 3 without the model: `--merge NEW --shard I/3
# --root .` (the list's names are relative to $T) keeps the rows of slice I.
# 0 inferences, the old shards' bytes unchanged; every row lands in exactly
# one new shard, with its key, probabilities and date (the union equals the
# single index); and each new shard is what `--shard I/3` indexes: a run of
# the new layout over the list finds every file of its slice stored (0 new,
# 0 inferences, every row unchanged).
sums() { for i in 0 1 2 3; do cksum <"slurm-shard$i.db"; done; }
before=$(sums)
bad=
for i in 0 1 2; do
  "$IDX" --merge "re-shard$i.db" --shard $i/3 --root . slurm-shard0.db slurm-shard1.db slurm-shard2.db slurm-shard3.db \
    2>"re$i.err" || bad="$bad [rc $?]"
  grep -q "^ram-index: merged 4 shards: [1-9][0-9]* new, 0 unchanged, 0 changed, [1-9][0-9]* of other slices than $i/3 left out; 0 inferences$" "re$i.err" ||
    bad="$bad [$(cat "re$i.err")]"
done
for i in 0 1 2; do dump "re-shard$i.db"; done | sort >re.dump
sort all.dump | cmp -s - re.dump && [ -z "$bad" ] && [ "$(sums)" = "$before" ] && pass reshard ||
  fail reshard "$bad $(sort all.dump | diff - re.dump | head -3) old shards $( [ "$(sums)" = "$before" ] && echo untouched || echo CHANGED)"
out=
for i in 0 1 2; do
  had=$(sqlite3 "re-shard$i.db" "SELECT count(*) FROM photos_files")
  "$IDX" --files-from list --shard $i/3 "re-shard$i.db" --threads 1 2>"re-run$i.err"
  out="$out $(grep '^ram-index: [0-9]* new, ' "re-run$i.err" | sed "s/^ram-index: \([0-9]*\) new, \([0-9]*\) unchanged,.*; \([0-9]*\) inferences$/\1:\2:\3:$had/")"
done
# each field new:unchanged:inferences:rows before: 0:rows:0:rows
bad=$(echo $out | tr ' ' '\n' | awk -F: 'NF != 4 || $1 != 0 || $3 != 0 || $2 != $4 {print}')
[ -z "$bad" ] && [ "$(echo $out | wc -w)" = 3 ] && pass reshard_layout || fail reshard_layout "new:unchanged:inferences:rows per new shard:$out"
# --shard without --root, and a row outside --root: refused, nothing stored
"$IDX" --merge re-bad.db --shard 0/3 slurm-shard0.db 2>re-bad1.err
rc1=$?
"$IDX" --merge re-bad.db --shard 0/3 --root few slurm-shard0.db 2>re-bad2.err
rc2=$?
[ $rc1 = 1 ] && grep -q "^ram-index: --merge with --shard 0/3 needs --root DIR" re-bad1.err && [ $rc2 = 1 ] &&
  grep -q "^ram-index: --merge slurm-shard0.db: $(pwd -P)/pics/[^ ]* is not under --root $(pwd -P)/few, so its slice is unknown" re-bad2.err &&
  [ "$(sqlite3 re-bad.db "SELECT count(*) FROM photos_files" 2>/dev/null || echo 0)" = 0 ] && pass reshard_refused ||
  fail reshard_refused "rc $rc1 $rc2: $(cat re-bad1.err re-bad2.err)"
# The rule is stable: the same list spelled otherwise ("./pics//x") plus 4
# new names (copies of pictures, embedded again only when their slice is
# another shard than the original's) leaves every old file in its shard
# (each shard finds all its rows unchanged) and adds each new name once.
mkdir more
ls pics | head -n 4 | while read -r f; do cp "pics/$f" "more/$f"; done
{ sed 's|^pics/|./pics//|' list; ls more | sed 's|^|more/|'; } >list2
out=
for i in 0 1 2 3; do
  had=$(sqlite3 "slurm-shard$i.db" "SELECT count(*) FROM photos_files")
  "$IDX" --files-from list2 --shard $i/4 "slurm-shard$i.db" --threads 1 2>"stable$i.err"
  out="$out $(grep '^ram-index: [0-9]* new, ' "stable$i.err" | sed "s/^ram-index: \([0-9]*\) new, \([0-9]*\) unchanged,.*; \([0-9]*\) inferences$/\1:\2:\3:$had/")"
done
# each field new:unchanged:inferences:rows before; unchanged must equal rows before
bad=$(echo $out | tr ' ' '\n' | awk -F: '$2 != $4 || $3 > $1 {print}')
added=$(echo $out | tr ' ' '\n' | awk -F: '{s += $1} END {print s}')
[ -z "$bad" ] && [ "$added" = 4 ] && pass shard_stable || fail shard_stable "new:unchanged:inferences:rows before per shard:$out"
stop_daemons
pids_left=$(ps -eo pid=,comm= | awk '$2 ~ /^(slurmd|slurmctld|munged|slurmstepd)$/ {print $1}' | while read -r p; do
  grep -qs "$T" /proc/"$p"/cmdline && echo "$p"; done)
[ -z "$pids_left" ] && pass slurm_stopped || fail slurm_stopped "still running: $pids_left"

# ---------------------------------------------------------------- GNU parallel
# 4 jobs, 2 at a time; job 2 is sent SIGTERM once it has committed a batch;
# the same command with --resume-failed reruns it alone.
pjob() {
  parallel --joblog par/joblog --resume-failed -j 2 \
    "sh -c 'echo \$\$ >par/pid{}; exec \"$IDX\" --files-from list --shard {}/4 par-shard{}.db --threads 1 --batch $BATCH' 2>par/run{}.\$\$.err" ::: 0 1 2 3
}
pjob >/dev/null 2>&1 &
PAR=$!
i=0
until [ "$(sqlite3 par-shard2.db 'SELECT count(*) FROM photos_files' 2>/dev/null)" -ge $BATCH ] 2>/dev/null; do
  i=$((i + 1)); [ $i -lt 3000 ] || break
  sleep 0.02
done
[ -s par/pid2 ] && kill -TERM "$(cat par/pid2)"
wait $PAR
rc1=$?
pjob >/dev/null 2>&1
rc2=$?
# joblog (sequence number = shard + 1): job 2 failed (exit 130) once, then
# succeeded; the others ran once
jl=$(awk 'NR > 1 {print $1 "=" $7}' par/joblog | sort | tr '\n' ' ')
[ $rc1 = 1 ] && [ $rc2 = 0 ] && [ "$jl" = "1=0 2=0 3=0 3=130 4=0 " ] && pass parallel_resume_failed ||
  fail parallel_resume_failed "exit $rc1 then $rc2, joblog: $jl"
checks par par/run*.err
exit 0
