#!/usr/bin/env bash
# Makes the small media under examples/assets/ with the project's own means: ffmpeg draws
# face-like portraits (270x480, the size the integration tests render fastest) and espeak-ng
# speaks short voice-overs (about 1.5 s, mono, low bitrate). Re-run to regenerate; the output
# is committed so nobody needs espeak-ng to try talk.
set -euo pipefail
cd "$(dirname "$0")/../examples/assets"
mkdir -p faces voices

# portrait NAME SKIN_RGB HAIR_RGB BG_RGB
portrait() {
  local out=$1 skin=$2 hair=$3 bg=$4
  IFS=, read -r sr sg sb <<<"$skin"
  IFS=, read -r hr hg hb <<<"$hair"
  IFS=, read -r br bgc bb <<<"$bg"
  # Regions (in order of precedence): eyes, mouth, face, hair, shoulders, background.
  local eye="(lt(hypot(X-110,Y-205),9)+lt(hypot(X-160,Y-205),9))"
  local mouth="lt(pow((X-135)/26,2)+pow((Y-270)/7,2),1)"
  local face="lt(pow((X-135)/68,2)+pow((Y-225)/92,2),1)"
  local hairr="lt(pow((X-135)/78,2)+pow((Y-185)/80,2),1)*lt(Y,200)"
  local body="lt(pow((X-135)/125,2)+pow((Y-480)/150,2),1)"
  pick() { # $1 eye $2 mouth $3 face $4 hair $5 body $6 bg
    echo "if(${eye},$1,if(${mouth},$2,if(${face},$3,if(${hairr},$4,if(${body},$5,$6)))))"
  }
  ffmpeg -v error -y -f lavfi -i "color=c=black:s=270x480:d=1" -frames:v 1 \
    -vf "format=rgb24,geq=r='$(pick 30 150 "$sr" "$hr" 60 "$br")':g='$(pick 30 40 "$sg" "$hg" 80 "$bgc")':b='$(pick 40 50 "$sb" "$hb" 140 "$bb")'" \
    -q:v 6 "$out"
}

# voice NAME TEXT
voice() {
  local out=$1 text=$2
  espeak-ng -s 190 -w "$out.wav" "$text"
  ffmpeg -v error -y -i "$out.wav" -t 1.6 -ac 1 -ar 22050 -b:a 32k "$out"
  rm -f "$out.wav"
}

portrait portrait.jpg 230,190,160 70,45,30 200,220,235
voice voice.mp3 "Hello, I am talking now."

portrait faces/ada.jpg 225,185,150 40,30,25 235,215,200
portrait faces/grace.jpg 190,140,110 20,20,20 210,235,215
voice voices/ada.mp3 "Hi, I am Ada."
voice voices/grace.mp3 "Hello from Grace."

du -ch portrait.jpg voice.mp3 faces voices | tail -1
