#!/usr/bin/env bash
# The long runs still owed to the paper-experiments issue (teachers, then the figures), one at a
# time, in the order below.  Idempotent: every step resumes its run directory (a finished step
# returns within seconds), so after a kill, or in a new session, start it again:
#
#   nohup tools/paper_runs.sh >> ~/a3cs-runs/queue.log 2>&1 &
#
# Run directories live in $A3CS_RUNS (default ~/a3cs-runs), outside the repository; nothing here
# is committed by the script.  A finished teacher is shipped by hand after its 30-game check
# (`a3cs teacher ship RUN --game GAME --out STAGING`, then copy, or `--force`), see
# a3cs_plugin/teachers/README.md; the figures' PNG/MD/JSON go to docs/results/ the same way.
#
# Only one heavy job at a time on a 2-core machine: the trainings use every core for the update
# (--update-threads), and a second job beside them slows both several times over.
#
# Environment: A3CS_RUNS, A3CS (the command, default `a3cs`), A3CS_PRECISION (default `auto`:
# bf16 only on CPUs with native bf16), A3CS_UPDATE_THREADS (default: the core count),
# A3CS_ONLY (a space-separated list of step names to run; default all).
set -euo pipefail
R=${A3CS_RUNS:-$HOME/a3cs-runs}
A3CS=${A3CS:-a3cs}
PREC=${A3CS_PRECISION:-auto}
UT=${A3CS_UPDATE_THREADS:-$(nproc)}
ONLY=${A3CS_ONLY:-}
mkdir -p "$R"

want() { [ -z "$ONLY" ] || [[ " $ONLY " == *" $1 "* ]]; }
stamp() { echo "== $(date -u +%FT%TZ) $*"; }

# train NAME ARGS...: a teacher run into $R/NAME (resumed when it has a checkpoint)
train() {
  local name=$1; shift
  want "$name" || return 0
  stamp "train $name"
  $A3CS train --out "$R/$name" --resume --precision "$PREC" --update-threads "$UT" \
    --checkpoint-every 250k --no-progress "$@"
}

# figure FIG GAME: `a3cs reproduce FIG --budget cpu --games GAME` into $R/FIG-GAME, one run of the
# figure per core at once (--jobs 0; each run uses one torch thread)
figure() {
  local fig=$1 game=$2 name="$1-$2"
  want "$name" || return 0
  stamp "reproduce $name"
  local resume=()
  [ -d "$R/$name" ] && resume=(--resume)
  $A3CS reproduce "$fig" --budget cpu --games "$game" --out "$R/$name" --jobs 0 "${resume[@]}"
}

# the four teachers are shipped (Qbert 3.5M frames, SpaceInvaders 4.5M: the runs below, finished
# steps return at once); the figures come first, then the teachers' longer runs for the Pong and
# Breakout targets (19, 150) and the two CPU-budget teachers' continuations.  Fig. 3 for Pong is
# done (docs/results/fig3.*); redo it only if the Pong teacher changes.
train qbert35          --agent nature_cnn --game Qbert --frames 3.5M --seed 1
train spaceinvaders45  --agent nature_cnn --game SpaceInvaders --frames 4.5M --seed 1
figure fig2 Pong
figure fig1 Pong
figure fig3 Breakout
figure fig2 Breakout
figure fig1 Breakout
train breakout-ft2     --agent nature_cnn --game Breakout --init Breakout --frames 16M --seed 3
train pong40           --agent nature_cnn --game Pong --frames 40M --seed 4
train qbert-ft         --agent nature_cnn --game Qbert --init Qbert --frames 6.5M --seed 1
train spaceinvaders-ft --agent nature_cnn --game SpaceInvaders --init SpaceInvaders --frames 5.5M --seed 1
stamp "queue done"
