#!/usr/bin/env bash
# Install WordNet 3.0 for NLTK (METEOR's synonym stage) without a network download.
#
# Debian's `wordnet-base` + `wordnet-sense-index` ship the WordNet 3.0 database in
# /usr/share/wordnet.  NLTK's reader needs the same files under
# <NLTK_DATA>/corpora/wordnet plus the `lexnames` file Debian does not ship.  The files are
# COPIED (never symlinked or hard-linked: NLTK's path sandbox refuses links) into
#     ${NLTK_DATA:-$HOME/nltk_data}/corpora/wordnet
# and `lexnames` (WordNet 3.0, 45 lines, `NN<TAB>name<TAB>syntactic category`) is written.
#
# Idempotent: when the target folder is already complete nothing is installed or copied
# (apt is skipped).  With a network, `python -c "import nltk; nltk.download('wordnet')"`
# is the alternative.
#
# Usage: scripts/install_wordnet.sh            (NLTK_DATA selects the data root)
set -euo pipefail

DATA_ROOT="${NLTK_DATA:-$HOME/nltk_data}"
# NLTK_DATA may hold several folders separated by ':'; install into the first one.
DATA_ROOT="${DATA_ROOT%%:*}"
TARGET="$DATA_ROOT/corpora/wordnet"
SRC=/usr/share/wordnet

# Files NLTK's WordNetCorpusReader opens (lexnames is written by this script).
REQUIRED=(lexnames index.noun index.verb index.adj index.adv
          data.noun data.verb data.adj data.adv
          noun.exc verb.exc adj.exc adv.exc index.sense)
DEBIAN_PKGS=(wordnet-base wordnet-sense-index)

complete() {   # $1: folder
  local f
  for f in "${REQUIRED[@]}"; do
    [[ -f "$1/$f" && ! -L "$1/$f" ]] || return 1
  done
  [[ "$(grep -c . "$1/lexnames")" == 45 ]] || return 1
}

if complete "$TARGET"; then
  echo "install_wordnet: WordNet already complete in $TARGET"
  exit 0
fi

missing_src=0
for f in "${REQUIRED[@]}"; do
  [[ "$f" == lexnames ]] && continue
  [[ -f "$SRC/$f" ]] || missing_src=1
done
if (( missing_src )); then
  echo "install_wordnet: installing Debian packages ${DEBIAN_PKGS[*]}"
  SUDO=""
  if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  if ! $SUDO apt-get install -y -q --no-install-recommends "${DEBIAN_PKGS[@]}"; then
    $SUDO apt-get update -q
    $SUDO apt-get install -y -q --no-install-recommends "${DEBIAN_PKGS[@]}"
  fi
fi

mkdir -p "$TARGET"
# Plain copies of the regular files (cp -L dereferences any link in the source; no -l/-s).
for f in "$SRC"/*; do
  [[ -f "$f" ]] || continue
  dest="$TARGET/$(basename "$f")"
  rm -f "$dest"
  cp -L "$f" "$dest"
  chmod 0644 "$dest"
done

# WordNet 3.0 `lexnames` (see lexnames(5WN)): file number, lexicographer file name,
# syntactic category (1 noun, 2 verb, 3 adjective, 4 adverb).
rm -f "$TARGET/lexnames"
printf '%s\t%s\t%s\n' \
  00 adj.all 3 \
  01 adj.pert 3 \
  02 adv.all 4 \
  03 noun.Tops 1 \
  04 noun.act 1 \
  05 noun.animal 1 \
  06 noun.artifact 1 \
  07 noun.attribute 1 \
  08 noun.body 1 \
  09 noun.cognition 1 \
  10 noun.communication 1 \
  11 noun.event 1 \
  12 noun.feeling 1 \
  13 noun.food 1 \
  14 noun.group 1 \
  15 noun.location 1 \
  16 noun.motive 1 \
  17 noun.object 1 \
  18 noun.person 1 \
  19 noun.phenomenon 1 \
  20 noun.plant 1 \
  21 noun.possession 1 \
  22 noun.process 1 \
  23 noun.quantity 1 \
  24 noun.relation 1 \
  25 noun.shape 1 \
  26 noun.state 1 \
  27 noun.substance 1 \
  28 noun.time 1 \
  29 verb.body 2 \
  30 verb.change 2 \
  31 verb.cognition 2 \
  32 verb.communication 2 \
  33 verb.competition 2 \
  34 verb.consumption 2 \
  35 verb.contact 2 \
  36 verb.creation 2 \
  37 verb.emotion 2 \
  38 verb.motion 2 \
  39 verb.perception 2 \
  40 verb.possession 2 \
  41 verb.social 2 \
  42 verb.stative 2 \
  43 verb.weather 2 \
  44 adj.ppl 3 \
  > "$TARGET/lexnames"
chmod 0644 "$TARGET/lexnames"

if ! complete "$TARGET"; then
  echo "install_wordnet: ERROR: $TARGET is still incomplete" >&2
  exit 1
fi
echo "install_wordnet: WordNet 3.0 installed in $TARGET"
echo "install_wordnet: NLTK finds it through NLTK_DATA=$DATA_ROOT (default ~/nltk_data is searched without it)"
