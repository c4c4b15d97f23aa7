#!/usr/bin/env bash
# Builds and installs hoopctl from this checkout (into ~/.local by default,
# PREFIX=/usr/local for a system install), with shell completions, and
# installs Claude Code from npm when it is missing and npm is available.
#
#   ./install.sh                 # hoopctl + completions (+ Claude Code if npm is present)
#   NO_CLAUDE=1 ./install.sh     # skip Claude Code
set -euo pipefail
cd "$(dirname "$0")"
PREFIX="${PREFIX:-$HOME/.local}"

if ! command -v cargo >/dev/null 2>&1; then
  echo "error: cargo is needed to build hoopctl (https://rustup.rs)" >&2
  exit 1
fi

echo "==> building hoopctl (release) into $PREFIX/bin"
cargo install --locked --path . --root "$PREFIX" --force

bin="$PREFIX/bin/hoopctl"
share="${XDG_DATA_HOME:-$HOME/.local/share}"
[ "$PREFIX" = "$HOME/.local" ] || share="$PREFIX/share"
mkdir -p "$share/bash-completion/completions" "$share/zsh/site-functions" "$share/fish/vendor_completions.d"
"$bin" completions bash > "$share/bash-completion/completions/hoopctl"
"$bin" completions zsh > "$share/zsh/site-functions/_hoopctl"
"$bin" completions fish > "$share/fish/vendor_completions.d/hoopctl.fish"
echo "==> completions installed under $share"

if [ -z "${NO_CLAUDE:-}" ] && ! command -v claude >/dev/null 2>&1; then
  if command -v npm >/dev/null 2>&1; then
    echo "==> installing Claude Code (npm install -g @anthropic-ai/claude-code)"
    if [ -w "$(npm prefix -g)" ]; then npm install -g @anthropic-ai/claude-code
    else sudo npm install -g @anthropic-ai/claude-code; fi
  else
    echo "note: Claude Code is not installed and npm is missing; see https://docs.claude.com/claude-code" >&2
  fi
fi

case ":$PATH:" in
  *":$PREFIX/bin:"*) ;;
  *) echo "note: add $PREFIX/bin to your PATH (export PATH=\"$PREFIX/bin:\$PATH\")" >&2 ;;
esac
echo "==> done: $("$bin" --version)"
